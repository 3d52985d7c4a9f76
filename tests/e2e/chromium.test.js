// A real browser (headless Chromium from Debian) talks to gcs running the
// native echo adapter of examples/echo: text, binary and a 70 KB message
// come back intact, and the browser's close completes with 1000.
const { test, after } = require('node:test');
const assert = require('node:assert');
const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const GCS = process.env.GCS;
const BUILD = process.env.GC_BUILD_DIR;
const SRC = process.env.GC_SOURCE_DIR || path.resolve(__dirname, '../..');
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => { const p = s.address().port; s.close(() => resolve(p)); });
    s.on('error', reject);
  });
}

async function waitForPort(port) {
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error('gcs did not listen on ' + port);
}

let gcs;
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-chromium-'));
after(() => {
  if (gcs && gcs.exitCode === null) gcs.kill('SIGKILL');
  fs.rmSync(tmp, { recursive: true, force: true });
});

test('headless Chromium echoes through gcs', async () => {
  assert.ok(fs.existsSync(CHROMIUM), 'chromium is missing: make test installs it');
  const port = await freePort();
  const cfg = {
    adapters: [{ type: 'native', dir: BUILD, name: 'echo',
                 apps: [{ name: 'echo', type_name: 'echo', file_name: 'echo' }] }],
    vhosts: [{ ip: '127.0.0.1', port, protocol: 'ws', app: 'echo' }],
    logging: { level: 'NORMAL' },
  };
  fs.writeFileSync(path.join(tmp, 'gcs.json'), JSON.stringify(cfg));
  let stderr = '';
  gcs = spawn(GCS, ['-C', path.join(tmp, 'gcs.json')]);
  gcs.stderr.on('data', (d) => { stderr += d; });
  await waitForPort(port);

  const page = 'file://' + path.join(SRC, 'tests/e2e/pages/echo.html') + '?port=' + port;
  const out = await new Promise((resolve, reject) => {
    execFile(CHROMIUM, [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      '--user-data-dir=' + path.join(tmp, 'profile'), '--virtual-time-budget=10000',
      '--dump-dom', page,
    ], { timeout: 60000, maxBuffer: 1 << 24 }, (err, stdout) => (err ? reject(err) : resolve(stdout)));
  });
  const m = /RESULT (\{.*?\})<\/body>/.exec(out);
  assert.ok(m, 'page did not finish: ' + out.slice(0, 500));
  const r = JSON.parse(m[1]);
  assert.deepStrictEqual(r, {
    code: 1000,
    text: 'hello from chromium \u00e9\u20ac',
    bytes: [0, 1, 2, 250, 255],
    big: 70000,
  });

  gcs.kill('SIGTERM');
  const code = await new Promise((resolve) => gcs.on('exit', resolve));
  assert.strictEqual(code, 0, stderr);
});
