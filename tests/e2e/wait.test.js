// Lua handlers that wait (issue 17), end to end: real gcs, real ws clients,
// a real redis-server (Debian's) on a free loopback port, started and
// always stopped here, and tests/e2e/scripts/wait.lua. A handler waiting
// while another connection's echoes keep coming back; one connection's
// messages answered in order behind its waiting handler; a client gone
// during a wait; on_connect checking a token in Redis and refusing; the
// Redis timeout against a server that never answers; an outage (Redis
// stopped and restarted) with calls failing at once and recovering; and
// gc.http against a local Node HTTP server: a handler waiting for an
// answer the test holds back while another connection's echoes come back,
// and an answer that never comes bounded by timeout_ms.
const { test, after } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const path = require('node:path');
const http = require('node:http');
const h = require('./lib/harness');
const { freePort, redisServers } = require('./lib/redis');

const servers = new Set();
after(() => {
  for (const s of servers) {
    if (s.kill && s.exitCode === null) s.kill('SIGKILL');
    else if (s.destroy) s.destroy();
    else if (s.close) s.close();
  }
  servers.clear();
  h.killAll();
});

const { startRedis, stopRedis } = redisServers(servers, 'gcs-wait-');

function config(url, timeout = 2000) {
  return {
    adapters: [{ type: 'lua', apps: [{ name: 'wait', file_name: 'tests/e2e/scripts/wait.lua' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'wait' }],
    redis: { url, timeout_ms: timeout },
    logging: { level: 'NORMAL' },
  };
}

async function until(pred, what, tries = 800) {
  for (let i = 0; i < tries && !pred(); i++) await h.sleep(10);
  assert.ok(pred(), 'timed out waiting for ' + what);
}

const texts = (ws) => ws.received.map(String);

// Sends 'msg' and returns the next message (bounded).
async function ask(ws, msg) {
  const n = ws.received.length;
  ws.send(msg);
  await until(() => ws.received.length > n, `an answer to "${msg}"`);
  return String(ws.received[n]);
}

let redis, port, gcs;

test('start redis-server and gcs', async () => {
  for (let i = 0; !redis && i < 5; i++) {
    port = await freePort();
    redis = await startRedis(port).catch(() => null);
  }
  assert.ok(redis, 'redis-server did not start');
  gcs = await h.startGcs(config(`redis://127.0.0.1:${port}/0`));
});

test('a handler waits while another connection\'s echoes keep coming back', async () => {
  const [a, b] = await Promise.all([h.connect(gcs.port), h.connect(gcs.port)]);
  a.send('hold 1'); // waits until "release 1"
  for (let i = 0; i < 50; i++) assert.strictEqual(await ask(b, `echo ${i}`), `echo ${i}`);
  assert.deepStrictEqual(texts(a), []);
  assert.strictEqual(await ask(b, 'release 1'), 'released 1');
  await until(() => a.received.length === 1, 'the held answer');
  assert.deepStrictEqual(texts(a), ['held 1']);
  a.close();
  b.close();
});

test('one connection\'s messages are answered in order behind a waiting handler', async () => {
  const a = await h.connect(gcs.port);
  const want = [];
  for (let i = 0; i < 10; i++) {
    a.send(`sleep ${i % 3 === 0 ? 30 : 0} s${i}`);
    a.send(`echo e${i}`);
    a.send(`redis INCR order:${port}`);
    want.push(`slept s${i}`, `echo e${i}`, String(i + 1));
  }
  await until(() => a.received.length === want.length, `${want.length} answers`);
  assert.deepStrictEqual(texts(a), want);
  a.close();
});

test('a client that disconnects during a wait: its send answers closed, on_disconnect after', async () => {
  const [a, b] = await Promise.all([h.connect(gcs.port), h.connect(gcs.port)]);
  a.send('hold 2');
  let log = '';
  for (let i = 0; i < 200 && !/,hold 2$/.test(log); i++) log = await ask(b, 'log');
  assert.match(log, /,hold 2$/);
  a.close();
  await a.closed;
  assert.match(await ask(b, 'log'), /,hold 2$/); // still waiting: no on_disconnect yet
  assert.strictEqual(await ask(b, 'release 2'), 'released 2');
  for (let i = 0; i < 100 && !/disconnect$/.test(log); i++) log = await ask(b, 'log');
  assert.match(log, /,hold 2,resumed:nil:closed,disconnect$/);
  b.close();
});

test('on_connect checks a token in Redis and refuses with 4000 + status', async () => {
  const admin = await h.connect(gcs.port);
  assert.strictEqual(await ask(admin, 'redis SET token:good 1'), 'OK');
  const good = await h.connect(gcs.port, '/?token=good');
  assert.strictEqual(await ask(good, 'echo in'), 'echo in');
  const bad = await h.connect(gcs.port, '/?token=bad'); // upgraded, then closed
  bad.send('echo never');
  const closed = await bad.closed;
  assert.deepStrictEqual(closed, { code: 4401, reason: 'bad token' });
  assert.deepStrictEqual(texts(bad), []);
  good.close();
  admin.close();
});

test('redis stopped: calls fail at once with one log line; restarted: they work again', async () => {
  const a = await h.connect(gcs.port);
  assert.strictEqual(await ask(a, 'redis SET x 1'), 'OK');
  await stopRedis(redis);
  assert.match(await ask(a, 'redis GET x'), /^err redis: /); // in flight, or at once
  for (let i = 0; i < 20; i++) assert.strictEqual(await ask(a, 'redis GET x'), 'err redis: unavailable');
  assert.strictEqual(await ask(a, 'echo alive'), 'echo alive');
  const fails = (gcs.stderrText.match(/W: redis 127\.0\.0\.1:\d+: commands fail/g) || []).length;
  assert.strictEqual(fails, 1, gcs.stderrText);
  redis = await startRedis(port);
  let back = '';
  for (let i = 0; i < 100 && back !== 'OK'; i++) { // retries: 100 ms doubling to 5 s
    back = await ask(a, 'redis SET x 2');
    if (back !== 'OK') await h.sleep(100);
  }
  assert.strictEqual(back, 'OK');
  assert.strictEqual(await ask(a, 'redis GET x'), '2');
  assert.match(gcs.stderrText, /N: redis 127\.0\.0\.1:\d+: commands work again/);
  a.close();
});

test('a Redis that never answers: timeout_ms bounds the call', async () => {
  const silent = net.createServer((s) => { servers.add(s); s.on('error', () => {}); });
  servers.add(silent);
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
  const g = await h.startGcs(config(`redis://127.0.0.1:${silent.address().port}/0`, 300));
  const a = await h.connect(g.port);
  assert.match(await ask(a, 'redis GET x'), /^err redis: timeout/);
  assert.strictEqual(await ask(a, 'redis GET x'), 'err redis: unavailable');
  assert.strictEqual(await ask(a, 'echo ok'), 'echo ok');
  a.close();
  assert.strictEqual(await h.stopGcs(g), 0);
});

// A local HTTP server: /hold/K answers when the test calls release(K);
// /never never answers; anything else answers 200 with its path.
const held = new Map();
let web;
function release(k) {
  const res = held.get(k);
  held.delete(k);
  res.end(`released ${k}`);
}

// Until the host's HTTP client (API 1.4's httpRequest, another branch) is
// merged, gcs answers ENOTSUP: these two tests then say so and skip.
let noHttp = false;

test('a handler waits for HTTP while another connection\'s echoes keep coming back', async (t) => {
  const probe = await h.connect(gcs.port);
  noHttp = (await ask(probe, 'http http://127.0.0.1:1/')) === 'err http not available on this host';
  probe.close();
  if (noHttp) return t.skip('this gcs has no HTTP client yet (httpRequest answers ENOTSUP)');
  web = http.createServer((req, res) => {
    const m = req.url.match(/^\/hold\/(\w+)$/);
    if (m) held.set(m[1], res);
    else if (req.url !== '/never') res.end(`path ${req.url}`);
  });
  servers.add(web);
  await new Promise((r) => web.listen(0, '127.0.0.1', r));
  const base = `http://127.0.0.1:${web.address().port}`;
  const [a, b] = await Promise.all([h.connect(gcs.port), h.connect(gcs.port)]);
  a.send(`http ${base}/hold/x`);
  await until(() => held.has('x'), 'the request at the server');
  for (let i = 0; i < 50; i++) assert.strictEqual(await ask(b, `echo ${i}`), `echo ${i}`);
  assert.deepStrictEqual(texts(a), []);
  release('x');
  await until(() => a.received.length === 1, 'the answer');
  assert.deepStrictEqual(texts(a), ['200 released x']);
  assert.strictEqual(await ask(a, `http ${base}/plain?q=1`), '200 path /plain?q=1');
  a.close();
  b.close();
});

test('an HTTP answer that never comes: timeout_ms bounds the wait', async (t) => {
  if (noHttp) return t.skip('this gcs has no HTTP client yet (httpRequest answers ENOTSUP)');
  const base = `http://127.0.0.1:${web.address().port}`;
  const a = await h.connect(gcs.port);
  a.send(`httpt 300 ${base}/never`);
  a.send('echo after');
  await until(() => a.received.length === 2, 'two answers');
  assert.deepStrictEqual(texts(a), ['err timeout', 'echo after']);
  a.close();
});

test('gcs stops cleanly', async () => {
  assert.strictEqual(await h.stopGcs(gcs), 0);
  await stopRedis(redis);
});
