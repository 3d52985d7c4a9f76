// The gcs process: signals (a stuck loop, a forced shutdown), SIGPIPE on a
// stderr whose reader is gone, and clients at the open-file limit.
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

after(() => h.killAll());
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-proc-'));

// Resolves with the exit status, or 'timeout' after 'ms'.
async function exitWithin(proc, ms) {
  let timer;
  const timeout = new Promise((r) => { timer = setTimeout(() => r('timeout'), ms); });
  const code = await Promise.race([proc.exited, timeout]);
  clearTimeout(timer);
  return code;
}

async function until(pred, what, tries = 200) {
  for (let i = 0; i < tries; i++) {
    if (pred()) return;
    await h.sleep(25);
  }
  throw new Error('timed out waiting for ' + what);
}

test('a second SIGTERM ends gcs with one line when an adapter never returns', { skip: h.NO_ASYNC_SIGNALS }, async () => {
  let port = 0;
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'stuck', apps: [{ name: 's' }] }],
    vhosts: [{ ip: '127.0.0.1', port, app: 's' }],
  }, {});
  port = gcs.port;
  const ws = await h.connect(port, '/');
  ws.on('error', () => {});
  ws.send('spin');
  await until(() => /stuck: in on_message/.test(gcs.stderrText), 'the adapter to get stuck');
  gcs.kill('SIGTERM');
  await h.sleep(300);
  assert.strictEqual(gcs.exitCode, null, 'one signal only asks the loop, which is stuck');
  const t0 = Date.now();
  gcs.kill('SIGTERM');
  const code = await exitWithin(gcs, 6000);
  if (code === 'timeout') gcs.kill('SIGKILL');
  assert.strictEqual(code, 4, gcs.stderrText);
  assert.ok(Date.now() - t0 < 5000);
  const lines = gcs.stderrText.split('\n').filter((l) => /E: signal 15 received again/.test(l));
  assert.strictEqual(lines.length, 1, gcs.stderrText);
  assert.match(lines[0], /event loop has not taken a signal for \d+ ms .*exiting at once, without shutdown/);
  ws.terminate();
});

test('clients that do not close within close_drain_ms at shutdown: exit status 3, a NOTICE line', async () => {
  let port = 0;
  const r = h.recorderConfig(port, tmp(), { close_drain_ms: 300 });
  const gcs = await h.startGcs(r.cfg, {});
  port = gcs.port;
  // Completes the upgrade, then never reads nor answers the close.
  const s = net.connect(port, '127.0.0.1', () => s.write(h.upgradeRequest('/mute')));
  s.on('error', () => {});
  await h.waitEvents(r.log, (e) => e.some((l) => l.startsWith('connect')));
  s.pause();
  assert.strictEqual(await h.stopGcs(gcs), 3, gcs.stderrText);
  assert.match(gcs.stderrText, /N: connection 127\.0\.0\.1:\d+: close not completed in 300 ms, dropped/);
  assert.match(gcs.stderrText, /N: gcs stopped \(shutdown forced/);
  s.destroy();
});

test('a clean shutdown still exits 0', async () => {
  let port = 0;
  const r = h.recorderConfig(port, tmp());
  const gcs = await h.startGcs(r.cfg, {});
  port = gcs.port;
  const ws = await h.connect(port, '/a');
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  assert.strictEqual((await ws.closed).code, 1000);
});

test('stderr closed by its reader: gcs lives on, logs to its file, says so once', async () => {
  let port = 0;
  const dir = tmp();
  const logFile = path.join(dir, 'gcs.log');
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'e' }] }],
    vhosts: [{ ip: '127.0.0.1', port, app: 'e' }],
    logging: { level: 'NORMAL|INFO', log_file: logFile },
  }, {});
  port = gcs.port;
  gcs.stderr.destroy(); // the reader goes away, as "gcs | head" would
  await h.sleep(100);
  // Each bad request is an INFO line: the first write to stderr meets EPIPE.
  for (let i = 0; i < 3; i++) {
    const answer = await h.rawExchange(port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    assert.match(answer, /^HTTP\/1\.1 4\d\d/, `gcs: exit ${gcs.exitCode} signal ${gcs.signalCode}`);
  }
  assert.strictEqual(gcs.exitCode, null, 'gcs died: ' + gcs.signalCode);
  const ws = await h.connect(port, '/');
  ws.send('still here');
  assert.deepStrictEqual(await h.received(ws, 1), ['still here']);
  ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0);
  const text = fs.readFileSync(logFile, 'utf8');
  assert.strictEqual((text.match(/W: stderr is gone/g) || []).length, 1, text);
  assert.strictEqual((text.match(/I: connection .*HTTP 4\d\d/g) || []).length, 3, text);
  assert.match(text, /N: gcs stopped/);
});

test('clients past the open-file limit are refused with a log line', async () => {
  let port = 0;
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'e' }] }],
    vhosts: [{ ip: '127.0.0.1', port, app: 'e' }],
  }, { ulimit: '-n 64' });
  port = gcs.port;
  const socks = [];
  let refused = 0;
  try {
    for (let i = 0; i < 100 && refused === 0; i++) {
      const s = net.connect(port, '127.0.0.1');
      s.on('error', () => {});
      s.on('close', () => { refused++; });
      socks.push(s);
      await new Promise((r) => { s.once('connect', r); s.once('close', r); });
      await h.sleep(5);
    }
    await until(() => refused > 0, 'a refused client');
    await until(() => /W: refused a client/.test(gcs.stderrText), 'the log line');
    assert.match(gcs.stderrText, new RegExp(`W: refused a client on 127\\.0\\.0\\.1:${port}: the open-file limit \\(64\\) is reached`));
    // Those already in still work, and one more gets in once one leaves.
    for (const s of socks) s.destroy();
    await h.sleep(200);
    const ws = await h.connect(port, '/');
    ws.send('x');
    assert.deepStrictEqual(await h.received(ws, 1), ['x']);
    ws.close();
  } finally {
    for (const s of socks) s.destroy();
  }
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('SIGHUP does not end gcs: a native adapter is not reloaded, gcs goes on serving, then SIGTERM exits 0', async () => {
  let port = 0;
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'e' }] }],
    vhosts: [{ ip: '127.0.0.1', port, app: 'e' }],
  }, {});
  port = gcs.port;
  gcs.kill('SIGHUP');
  await until(() => /SIGHUP/.test(gcs.stderrText) || gcs.exitCode !== null ||
                    gcs.signalCode !== null, 'the SIGHUP line');
  assert.strictEqual(gcs.signalCode, null, 'gcs died of SIGHUP');
  assert.strictEqual(gcs.exitCode, null, gcs.stderrText);
  assert.match(gcs.stderrText, /N: SIGHUP received: reloading/);
  const ws = await h.connect(port, '/');
  ws.send('after hup');
  assert.deepStrictEqual(await h.received(ws, 1), ['after hup']);
  ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});
