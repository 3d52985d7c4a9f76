// A real browser (headless Chromium from Debian) talks to gcs running the
// native echo adapter of examples/echo: text, binary and a 70 KB message
// come back intact and the browser's close completes with 1000. The page
// reports through a second app on the same port (the recorder adapter).
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const b = require('./lib/browser');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-chromium-'));
after(async () => {
  b.killBrowsers();
  h.killAll();
  await h.sleep(200);
  try {
    fs.rmSync(tmp, { recursive: true, force: true, maxRetries: 10, retryDelay: 100 });
  } catch { /* a straggling helper still writing: the OS temp dir will do */ }
});

test('headless Chromium echoes through gcs', async () => {
  assert.ok(fs.existsSync(b.CHROMIUM), 'chromium is missing: make test installs it');
  const r = h.recorderConfig(0, tmp);
  r.cfg.adapters.push({ type: 'native', dir: h.BUILD, name: 'echo',
                        apps: [{ name: 'echo', type_name: 'echo', file_name: 'echo' }] });
  r.cfg.vhosts.push({ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'echo' }); // the same port
  const gcs = await h.startGcs(r.cfg);
  const port = gcs.port;

  const page = 'file://' + path.join(h.SRC, 'tests/e2e/pages/echo.html') + '?port=' + port;
  const browser = b.openPage(page, path.join(tmp, 'profile'));
  const result = await b.pageReport(r.log);
  assert.deepStrictEqual(result, {
    code: 1000,
    text: 'hello from chromium \u00e9\u20ac',
    bytes: [0, 1, 2, 250, 255],
    big: 70000,
  });
  b.killBrowser(browser);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

// Text frames (issue 18): a Lua app with "message_type": "text" sends JSON
// the page parses with JSON.parse(e.data), no Blob in the way, and its
// NORMAL close with a code and a reason reaches the browser's close event.
test('headless Chromium gets text frames and a close code with a reason', async () => {
  assert.ok(fs.existsSync(b.CHROMIUM), 'chromium is missing: make test installs it');
  const dir = fs.mkdtempSync(path.join(tmp, 'text-'));
  const r = h.recorderConfig(0, dir);
  r.cfg.adapters.push({ type: 'lua', apps: [
    { name: 'txt', file_name: 'tests/e2e/scripts/messages.lua', message_type: 'text' }] });
  r.cfg.vhosts.push({ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'txt' }); // the same port
  const gcs = await h.startGcs(r.cfg);
  const page = 'file://' + path.join(h.SRC, 'tests/e2e/pages/text.html') + '?port=' + gcs.port;
  const browser = b.openPage(page, path.join(dir, 'profile'));
  const result = await b.pageReport(r.log);
  assert.deepStrictEqual(result, {
    types: ['string', 'string'],
    welcome: { hello: 'browser', n: 1 },
    last: 'bye',
    code: 4001,
    reason: 'room full',
  });
  b.killBrowser(browser);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});
