// A real browser over wss:// (issue 16): headless Chromium trusts the
// test's server certificate by its SPKI hash (--ignore-certificate-errors-
// spki-list), talks to a Lua echo app on a wss vhost, and reports through
// the recorder adapter on a ws vhost of another address.
const { test, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const t = require('./lib/tls');

const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-chromium-wss-'));
let browser;
function killBrowser() {
  if (browser && browser.exitCode === null) {
    try { process.kill(-browser.pid, 'SIGKILL'); } catch { browser.kill('SIGKILL'); }
  }
}
after(async () => {
  killBrowser();
  h.killAll();
  await h.sleep(200);
  try {
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  } catch { /* a straggling helper still writing: the OS temp dir will do */ }
});

test('headless Chromium echoes over wss through gcs', async () => {
  assert.ok(fs.existsSync(CHROMIUM), 'chromium is missing: make test installs it');
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
  browser = spawn(CHROMIUM, [
    '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--ignore-certificate-errors-spki-list=' + t.spkiHash(srv + '.cert'),
    '--user-data-dir=' + path.join(tmp, 'profile'), page,
  ], { stdio: 'ignore', detached: true });
  const ev = await h.waitEvents(r.log, (e) => e.some((l) => l.includes('/rec/report?r=')), 'the page report', 1200);
  const line = ev.find((l) => l.includes('/rec/report?r='));
  const result = JSON.parse(decodeURIComponent(line.split(' ')[2].split('?r=')[1]));
  assert.deepStrictEqual(result, {
    code: 1000,
    text: 'hello over wss \u00e9\u20ac',
    bytes: [0, 1, 2, 250, 255],
    big: 70000,
    proto: 'proto wss',
  });
  killBrowser();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});
