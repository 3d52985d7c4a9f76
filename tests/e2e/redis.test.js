// Channels between hosts through Redis (issue 19, "Past one machine"): two
// gcs hosts run the same script (scripts/news.lua) with the same "redis", a
// real redis-server (Debian's) on a free loopback port, started and always
// stopped here. A message published on one host reaches the clients of
// both, in order; Redis stopped: gc.publish returns nil, err at once and
// each host logs the outage once, not once per call; Redis back on the
// same port: publishing and the subscriptions come back without
// restarting gcs. And a "Redis" that never answers: the connect's bound.
const { test, after } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const h = require('./lib/harness');
const { freePort, redisServers } = require('./lib/redis');

const servers = new Set(); // redis-server processes and node servers
after(() => {
  for (const s of servers) {
    if (s.kill && s.exitCode === null) s.kill('SIGKILL'); // redis-server
    if (s.destroy) s.destroy(); // a socket of the silent server
    else if (s.close) s.close(); // the silent server
  }
  servers.clear();
  h.killAll();
});

const { startRedis, stopRedis } = redisServers(servers, 'gcs-redis-');

function config(url, timeout = 2000) {
  return {
    adapters: [{ type: 'lua', apps: [{ name: 'news', file_name: 'tests/e2e/scripts/news.lua' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'news' }],
    redis: { url, timeout_ms: timeout },
    logging: { level: 'NORMAL' },
  };
}

// Waits (bounded) until gcs's log matches 're'.
async function waitLog(gcs, re, what) {
  for (let i = 0; i < 600; i++) {
    if (re.test(gcs.stderrText)) return;
    if (gcs.exitCode !== null) break;
    await h.sleep(25);
  }
  throw new Error(`no ${what} line:\n${gcs.stderrText}`);
}

const count = (text, re) => (text.match(re) || []).length;
const news = (ws) => ws.received.map(String).filter((m) => m.startsWith('news '));
const replies = (ws) => ws.received.map(String).filter((m) => m.startsWith('pub '));

// Waits (bounded) until 'pred()' holds.
async function until(pred, what) {
  for (let i = 0; i < 800 && !pred(); i++) await h.sleep(10);
  assert.ok(pred(), 'timed out waiting for ' + what);
}

const LOST = /W: redis 127\.0\.0\.1:\d+: connection lost/g;
const BACK = /N: redis 127\.0\.0\.1:\d+: back after/;
let redis, port, A, B, a1, a2, b1;

test('a message published on one host reaches the clients of both hosts, in order', async () => {
  for (let i = 0; !redis && i < 5; i++) { // a port taken meanwhile: another
    port = await freePort();
    redis = await startRedis(port).catch(() => null);
  }
  assert.ok(redis, 'redis-server did not start');
  const url = `redis://127.0.0.1:${port}/0`;
  [A, B] = await Promise.all([h.startGcs(config(url)), h.startGcs(config(url))]);
  for (const g of [A, B]) await waitLog(g, /N: redis 127\.0\.0\.1:\d+: connected: channels go through it \(1 app subscribed\)/, 'connected');
  [a1, a2, b1] = await Promise.all([h.connect(A.port), h.connect(A.port), h.connect(B.port)]);
  const N = 200;
  const want = [];
  for (let i = 0; i < N; i++) {
    a1.send(`pub a${i}`);
    want.push(`news a${i}`);
  }
  await until(() => [a1, a2, b1].every((ws) => news(ws).length >= N), `${N} messages on every client`);
  for (const ws of [a1, a2, b1]) assert.deepStrictEqual(news(ws), want);
  assert.deepStrictEqual(replies(a1), Array(N).fill('pub ok'));
  // And the other way, from host B.
  b1.send('pub from b');
  await until(() => [a1, a2, b1].every((ws) => news(ws).length === N + 1), 'the message from B');
  for (const ws of [a1, a2, b1]) assert.strictEqual(news(ws)[N], 'news from b');
});

test('Redis stopped: gc.publish returns nil, err at once; one outage line per host', async () => {
  assert.ok(redis, 'needs the first test');
  await stopRedis(redis);
  redis = null;
  for (const g of [A, B]) await waitLog(g, LOST, 'connection lost');
  for (const ws of [a1, a2, b1]) ws.received.length = 0;
  for (let i = 0; i < 10; i++) a1.send(`pub down${i}`);
  b1.send('pub down-b');
  await until(() => replies(a1).length === 10 && replies(b1).length === 1, 'the answers');
  assert.deepStrictEqual(replies(a1), Array(10).fill('pub err redis unavailable'));
  assert.deepStrictEqual(replies(b1), ['pub err redis unavailable']);
  await h.sleep(700); // retries meanwhile (100, 200, 400 ms): no more lines
  for (const g of [A, B]) {
    assert.strictEqual(count(g.stderrText, LOST), 1, g.stderrText);
    assert.doesNotMatch(g.stderrText, /[EW]: redis .*(cannot connect|refused)/);
  }
  for (const ws of [a1, a2, b1]) assert.deepStrictEqual(news(ws), []);
});

test('Redis back on the same port: publishing and subscriptions recover, gcs not restarted', async () => {
  assert.ok(A && B && !redis, 'needs the tests before');
  redis = await startRedis(port);
  for (const g of [A, B]) await waitLog(g, BACK, 'back');
  for (const g of [A, B]) assert.match(g.stderrText, /back after [\d.]+ s: publishing again, subscriptions renewed \(\d+ publishes refused/);
  for (const ws of [a1, a2, b1]) ws.received.length = 0;
  a1.send('pub again');
  b1.send('pub again from b');
  await until(() => [a1, a2, b1].every((ws) => news(ws).length === 2), 'both messages everywhere');
  for (const ws of [a1, a2, b1]) {
    // Each host's publish is in order after its own; all agree on one order.
    assert.deepStrictEqual([...news(ws)].sort(), ['news again', 'news again from b']);
    assert.deepStrictEqual(news(ws), news(a1));
  }
  assert.deepStrictEqual(replies(a1), ['pub ok']);
  assert.deepStrictEqual(replies(b1), ['pub ok']);
  for (const g of [A, B]) assert.strictEqual(count(g.stderrText, LOST), 1);
  for (const ws of [a1, a2, b1]) ws.close();
  for (const g of [A, B]) assert.strictEqual(await h.stopGcs(g), 0, g.stderrText);
  assert.doesNotMatch(A.stderrText + B.stderrText, /ERROR|Sanitizer/);
  await stopRedis(redis);
  redis = null;
});

test('a Redis that never answers: timeout_ms bounds the connect; one line, publishes fail', async () => {
  const silent = net.createServer((sock) => { sock.on('error', () => {}); servers.add(sock); });
  servers.add(silent);
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  const gcs = await h.startGcs(config(`redis://127.0.0.1:${silent.address().port}`, 200));
  await waitLog(gcs, /W: redis 127\.0\.0\.1:\d+: cannot connect \(no answer within 200 ms\): publishes fail until it answers; retrying/, 'cannot connect');
  const ws = await h.connect(gcs.port);
  ws.send('pub nobody');
  await until(() => replies(ws).length === 1, 'the answer');
  assert.deepStrictEqual(replies(ws), ['pub err redis unavailable']);
  await h.sleep(800); // a few retries: still one line
  assert.strictEqual(count(gcs.stderrText, /W: redis /g), 1, gcs.stderrText);
  ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  for (const s of servers) if (s.destroy) s.destroy();
  silent.close();
});
