// Lua on several workers: a routed app has a state per worker, so a handler
// that runs away is stopped on its own worker while the rooms of the other
// worker keep playing; without a route every connection shares one state.
const { test, after } = require('node:test');
const assert = require('node:assert');
const h = require('./lib/harness');

after(() => h.killAll());

function config(app) {
  return {
    adapters: [{ type: 'lua', apps: [{ name: 'rooms', file_name: 'tests/e2e/scripts/spin_rooms.lua', ...app }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'rooms' }],
    // Two workers here whatever GC_WORKERS says: the test is about two.
    threading: { worker_count: 2 },
    logging: { level: 'NORMAL' },
  };
}

// The worker a client's first message names.
async function workerOf(ws) {
  const [first] = await h.received(ws, 1);
  const m = /^worker (\d+)$/.exec(first || '');
  assert.ok(m, `no worker line: ${first}`);
  return Number(m[1]);
}

test('a runaway handler is stopped on its own worker; the other worker\'s rooms keep playing', { skip: h.NO_ASYNC_SIGNALS }, async () => {
  const gcs = await h.startGcs(config({ route: 'query.room', lua: { time_limit_ms: 3000 } }));
  // One client on each worker (rooms are spread by their key).
  const on = [null, null];
  const extra = [];
  for (let r = 0; r < 32 && !(on[0] && on[1]); r++) {
    const ws = await h.connect(gcs.port, `/?room=r${r}`);
    const w = await workerOf(ws);
    if (!on[w]) on[w] = ws; else extra.push(ws);
  }
  assert.ok(on[0] && on[1], 'no room landed on one of the workers');
  const [spinner, player] = on;
  spinner.send('spin');
  await h.sleep(200); // worker 0 is in the loop now
  for (let i = 0; i < 5; i++) {
    player.send(`move ${i}`);
    const got = await h.received(player, 2 + i);
    assert.strictEqual(got[1 + i], `move ${i}`);
  }
  // Every answer came while worker 0 was still spinning.
  assert.doesNotMatch(gcs.stderrText, /time limit exceeded/);
  for (let i = 0; i < 400 && !/time limit exceeded \(3000 ms of CPU\)/.test(gcs.stderrText); i++) await h.sleep(25);
  assert.match(gcs.stderrText, /time limit exceeded \(3000 ms of CPU\)/);
  // The spinner's room plays on after the stop.
  spinner.send('again');
  assert.deepStrictEqual(await h.received(spinner, 2), ['worker 0', 'again']);
  for (const ws of [spinner, player, ...extra]) ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('with a route, players of one room share a worker; without one, every connection is on the app\'s worker', async () => {
  const routed = await h.startGcs(config({ route: 'query.room' }));
  const a = await h.connect(routed.port, '/?room=lobby&name=a');
  const b = await h.connect(routed.port, '/?name=b&room=lobby');
  assert.strictEqual(await workerOf(a), await workerOf(b));
  a.close();
  b.close();
  assert.strictEqual(await h.stopGcs(routed), 0, routed.stderrText);

  const single = await h.startGcs(config({}));
  const ids = new Set();
  const clients = [];
  for (let i = 0; i < 8; i++) {
    const ws = await h.connect(single.port, `/?room=r${i}`);
    clients.push(ws);
    ids.add(await workerOf(ws));
  }
  assert.strictEqual(ids.size, 1, `connections on workers ${[...ids]}`);
  for (const ws of clients) ws.close();
  assert.strictEqual(await h.stopGcs(single), 0, single.stderrText);
});
