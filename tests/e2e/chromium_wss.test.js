// A real browser over wss:// (issue 16): headless Chromium trusts the
// test's server certificate by its SPKI hash (--ignore-certificate-errors-
// spki-list), talks to a Lua echo app on a wss vhost, and reports through
// the recorder adapter on a ws vhost of another address.
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const b = require('./lib/browser');
const t = require('./lib/tls');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-chromium-wss-'));
after(async () => {
  b.killBrowsers();
  h.killAll();
  await h.sleep(200);
  try {
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  } catch { /* a straggling helper still writing: the OS temp dir will do */ }
});

test('headless Chromium echoes over wss through gcs', async () => {
  assert.ok(fs.existsSync(b.CHROMIUM), 'chromium is missing: make test installs it');
  t.makeCa(tmp);
  const srv = t.makeServerCert(tmp, 'srv');
  const r = h.recorderConfig(0, tmp);
  r.cfg.vhosts[0].ip = '127.0.0.2'; // ws; the wss vhost has 127.0.0.1
  r.cfg.adapters.push({ type: 'lua', apps: [{ name: 'echo', file_name: t.echoScript(tmp) }] });
  r.cfg.vhosts.push({ ip: '127.0.0.1', port: 0, protocol: 'wss', app: 'echo', ssl_keys_path: srv });
  const gcs = await h.startGcs(r.cfg, { wait: false });
  const [port] = await t.waitWss(gcs);
  const rec = h.listening(gcs.stderrText)[0].port; // logged before the wss line
  const page = 'file://' + path.join(h.SRC, 'tests/e2e/pages/wss.html') +
    `?port=${port}&rec=127.0.0.2:${rec}`;
  const browser = b.openPage(page, path.join(tmp, 'profile'),
    ['--ignore-certificate-errors-spki-list=' + t.spkiHash(srv + '.cert')]);
  const result = await b.pageReport(r.log);
  assert.deepStrictEqual(result, {
    code: 1000,
    text: 'hello over wss \u00e9\u20ac',
    bytes: [0, 1, 2, 250, 255],
    big: 70000,
    proto: 'proto wss',
  });
  b.killBrowser(browser);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});
