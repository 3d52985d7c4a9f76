// Lua scripts under gcs with real WebSocket clients: the example scripts,
// close semantics equal to the native adapter's, error isolation, the
// time limit and connection handle lifetime.
const { test, after } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const h = require('./lib/harness');

after(() => h.killAll());

async function serve(script, extra = []) {
  const gcs = await h.startGcs({ args: [script, '-p', '0', '-a', '127.0.0.1', ...extra] });
  return { port: gcs.port, gcs };
}
const stop = async (gcs) => assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);

test('scripts/echo.lua echoes text and binary', async () => {
  const { port, gcs } = await serve('scripts/echo.lua');
  const ws = await h.connect(port);
  ws.send('hi');
  ws.send(Buffer.from([0, 255, 1]));
  await h.received(ws, 2);
  assert.strictEqual(ws.received[0].toString(), 'hi');
  assert.deepStrictEqual([...ws.received[1]], [0, 255, 1]);
  ws.close();
  await stop(gcs);
});

test('scripts/chat.lua: rooms, relay, kick with a NORMAL close', async () => {
  const { port, gcs } = await serve('scripts/chat.lua');
  const ann = await h.connect(port, '/?room=1&name=ann');
  const bob = await h.connect(port, '/?room=1&name=bob');
  const cid = await h.connect(port, '/?room=2&name=cid');
  await h.received(ann, 2);
  ann.send('hello');
  assert.deepStrictEqual(await h.received(bob, 2), ['* bob joined', 'ann: hello']);
  bob.send('/kick ann');
  const { code } = await ann.closed;
  assert.strictEqual(code, 1000);
  assert.deepStrictEqual(ann.received.map(String),
    ['* ann joined', '* bob joined', 'ann: hello', '* you were kicked by bob']);
  assert.deepStrictEqual(await h.received(bob, 3), ['* bob joined', 'ann: hello', '* ann was kicked by bob']);
  assert.deepStrictEqual(cid.received.map(String), ['* cid joined']);
  await stop(gcs);
  assert.strictEqual((await bob.closed).code, 1000);
});

test('scripts/arena.lua: snapshots every tick, a cheater is dropped', async () => {
  const { port, gcs } = await serve('scripts/arena.lua');
  const p = await h.connect(port, '/?name=zed');
  const snaps = await h.received(p, 4);
  assert.match(snaps[0], /^\{"welcome":1,"x":7,"y":3\}$/);
  assert.match(snaps[1], /^\{"players":\[\{"id":1,"name":"zed","x":7,"y":3\}\],"tick":\d+\}$/);
  const cheater = await h.connect(port, '/?name=cheat');
  cheater.send('move 19 19');
  assert.strictEqual((await cheater.closed).code, 1006);
  const dropping = /dropping cheat \(127\.0\.0\.1\): impossible move/;
  assert.match(await h.waitStderr(gcs, dropping), dropping);
  await stop(gcs);
});

test('conn:close in Lua behaves as connectionClose in C: NORMAL delivers, DROP discards', async () => {
  const { port, gcs } = await serve(path.join('tests/e2e/scripts/queue.lua'));
  const n = await h.connect(port);
  n.send('queue 1000 normal');
  assert.strictEqual((await n.closed).code, 1000);
  assert.strictEqual(n.received.length, 1000);
  n.received.forEach((m, i) => assert.strictEqual(m.toString(), String(i)));
  const d = await h.connect(port);
  d.send('queue 1000 drop');
  assert.strictEqual((await d.closed).code, 1006);
  assert.strictEqual(d.received.length, 0);
  const s = await h.connect(port);
  s.send('stats');
  assert.deepStrictEqual(await h.received(s, 1), ['ok=1000 bad=1000']);
  assert.match(await h.waitStderr(gcs, /close true nil closed/), /close true nil closed/);
  await stop(gcs);
});

test('a script error stays with its handler: other clients keep being served', async () => {
  const { port, gcs } = await serve('tests/e2e/scripts/queue.lua');
  const a = await h.connect(port);
  const b = await h.connect(port);
  a.send('boom');
  b.send('still fine');
  a.send('me too');
  assert.deepStrictEqual(await h.received(b, 1), ['still fine']);
  assert.deepStrictEqual(await h.received(a, 1), ['me too']);
  const boom = /E: lua app queue: error in on_message: .*queue\.lua:\d+: boom in on_message/;
  assert.match(await h.waitStderr(gcs, boom), boom);
  await assert.rejects(h.connect(port, '/?fail=connect'), (e) => e.status === 403);
  await stop(gcs);
});

test('an infinite loop is stopped by the time limit (default 1 s of CPU), not a frozen server', { skip: h.NO_ASYNC_SIGNALS }, async () => {
  const { port, gcs } = await serve('tests/e2e/scripts/queue.lua');
  const a = await h.connect(port);
  const b = await h.connect(port);
  a.send('loop');
  a.send('after the loop');
  b.send('other client');
  assert.deepStrictEqual(await h.received(a, 1), ['after the loop']);
  assert.deepStrictEqual(await h.received(b, 1), ['other client']);
  const limit = /time limit exceeded \(1000 ms of CPU\)/;
  assert.match(await h.waitStderr(gcs, limit), limit);
  await stop(gcs);
});

test('runaway handlers are stopped again and again while other clients keep every echo', { skip: h.NO_ASYNC_SIGNALS }, async () => {
  const gcs = await h.startGcs({
    adapters: [{ type: 'lua', apps: [{ name: 'q', file_name: path.join(h.SRC, 'tests/e2e/scripts/queue.lua') }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, app: 'q' }],
    logging: { level: 'ERR' },
    lua: { time_limit_ms: 20 },
  });
  const port = gcs.port;
  const good = await Promise.all(Array.from({ length: 10 }, () => h.connect(port)));
  const bad = await Promise.all(Array.from({ length: 2 }, () => h.connect(port)));
  const want = [];
  for (let round = 0; round < 20; round++) {
    for (const [i, ws] of good.entries()) ws.send(`r${round} c${i}`);
    if (round % 2 === 0) bad.forEach((b) => b.send('loop'));
    await h.sleep(20);
  }
  for (const [i, ws] of good.entries()) {
    want[i] = Array.from({ length: 20 }, (_, round) => `r${round} c${i}`);
    assert.deepStrictEqual(await h.received(ws, 20), want[i]);
  }
  const stops = () => (gcs.stderrText.match(/time limit exceeded \(20 ms of CPU\)/g) || []).length;
  for (let i = 0; i < 100 && stops() < 20; i++) await h.sleep(50); // the last loops may still run
  assert.strictEqual(stops(), 20);
  await stop(gcs);
});

test('10,000 connect/disconnect cycles leave no Lua memory behind', async () => {
  const { port, gcs } = await serve('tests/e2e/scripts/queue.lua');
  const probe = await h.connect(port);
  const mem = async () => {
    probe.received = [];
    probe.send('mem');
    return Number((await h.received(probe, 1))[0]);
  };
  const cycle = async (count) => {
    for (let done = 0; done < count; done += 100) {
      const batch = await Promise.all(Array.from({ length: 100 }, () => h.connect(port, '/?x=' + done)));
      batch.forEach((ws) => ws.close());
      await Promise.all(batch.map((ws) => ws.closed));
    }
  };
  let before, afterMem;
  try {
    await cycle(500); // warm up: tables grow to their working size
    before = await mem();
    await cycle(10000);
    afterMem = await mem();
  } catch (e) {
    e.message += '\n' + gcs.stderrText; // what gcs said of it
    throw e;
  }
  assert.ok(afterMem - before < 32 * 1024, `Lua memory grew from ${before} to ${afterMem} bytes`);
  await stop(gcs);
});
