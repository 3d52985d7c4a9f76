// Timers that re-arm themselves with 0 ms ("next tick") must not take the
// loop: gcs still accepts, echoes, keeps firing them and exits on SIGTERM.
const { test, after } = require('node:test');
const assert = require('node:assert');
const h = require('./lib/harness');

after(() => h.killAll());

// Rejects after 'ms' instead of waiting forever on a hung server.
function within(ms, promise, what) {
  let timer;
  const timeout = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(what + ': no answer within ' + ms + ' ms')), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

async function ticks(ws) {
  const n = ws.received.length;
  ws.send('ticks');
  const got = await h.received(ws, n + 1);
  return Number(got[n]);
}

async function serveWhileSpinning(gcs, port) {
  const ws = await within(5000, h.connect(port), 'WebSocket upgrade');
  ws.send('hello');
  assert.deepStrictEqual(await within(5000, h.received(ws, 1), 'echo'), ['hello']);
  const a = await ticks(ws);
  await h.sleep(100);
  const b = await ticks(ws);
  assert.ok(b > a, `the timers keep firing (${a} then ${b})`);
  const started = Date.now();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  assert.ok(Date.now() - started < 5000, 'SIGTERM is served at once');
  assert.strictEqual((await ws.closed).code, 1000);
}

test('a Lua script re-arming gc.set_timeout(0) still serves and stops', { timeout: 30000 }, async () => {
  let port = 0;
  const gcs = await h.startGcs({ args: ['tests/e2e/scripts/zero_timer.lua', '-p', '0',
                                        '-a', '127.0.0.1'] }, {});
  port = gcs.port;
  await serveWhileSpinning(gcs, port);
});

test('a native adapter re-arming timerStart(0) still serves and stops', { timeout: 30000 }, async () => {
  let port = 0;
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'zero_timer', apps: [{ name: 'z' }] }],
    vhosts: [{ ip: '127.0.0.1', port, protocol: 'ws', app: 'z' }],
  }, {});
  port = gcs.port;
  await serveWhileSpinning(gcs, port);
});
