// The admin listener: /health for load balancers (503 while draining after
// SIGTERM), /metrics in Prometheus's format (checked by promtool), per app
// and per worker; drain_s keeps players playing while /health says 503.
const { test, after } = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');
const h = require('./lib/harness');

after(() => h.killAll());

function config(extra = {}) {
  return {
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'e' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'e' }],
    admin: { ip: '127.0.0.1', port: 0 },
    ...extra,
  };
}

async function adminPort(gcs) {
  for (let i = 0; i < 200; i++) {
    const m = /admin listening on http:\/\/127\.0\.0\.1:(\d+)/.exec(gcs.stderrText);
    if (m) return Number(m[1]);
    await h.sleep(25);
  }
  throw new Error('no admin line:\n' + gcs.stderrText);
}

function get(port, path, method = 'GET') {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, method }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body, type: res.headers['content-type'] }));
    });
    req.on('error', reject);
    req.end();
  });
}

// The sum of a family's samples whose labels match 'labels' (a substring).
function sum(text, name, labels = '') {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`).exec(line);
    if (m && m[1].includes(labels)) total += Number(m[2]);
  }
  return total;
}

test('/health and /metrics: promtool accepts it, counters follow the clients per app', async () => {
  const gcs = await h.startGcs(config());
  const admin = await adminPort(gcs);
  assert.deepStrictEqual(await get(admin, '/health'), { status: 200, body: 'ok\n', type: 'text/plain; charset=utf-8' });
  const clients = [];
  for (let i = 0; i < 3; i++) clients.push(await h.connect(gcs.port));
  for (const ws of clients) for (let k = 0; k < 5; k++) ws.send(`m${k}`);
  for (const ws of clients) await h.received(ws, 5);
  // A refused upgrade is counted by its status.
  const bad = await h.rawExchange(gcs.port, 'GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  assert.match(bad, /^HTTP\/1\.1 400/);
  const m = await get(admin, '/metrics');
  assert.strictEqual(m.status, 200);
  assert.match(m.type, /^text\/plain; version=0\.0\.4/);
  execFileSync('promtool', ['check', 'metrics'], { input: m.body }); // throws on a finding
  assert.strictEqual(sum(m.body, 'gcs_connections', 'app="e"'), 3);
  assert.strictEqual(sum(m.body, 'gcs_messages_in_total', 'app="e"'), 15);
  assert.strictEqual(sum(m.body, 'gcs_messages_out_total', 'app="e"'), 15);
  assert.strictEqual(sum(m.body, 'gcs_refused_connections_total', 'status="400"'), 1);
  assert.match(m.body, /^gcs_workers \d+$/m);
  assert.match(m.body, /^gcs_loop_lag_seconds_bucket\{worker="0",le="\+Inf"\} \d+$/m);
  for (const ws of clients) ws.close();
  for (let i = 0; i < 200; i++) {
    if (sum((await get(admin, '/metrics')).body, 'gcs_connections', 'app="e"') === 0) break;
    await h.sleep(25);
  }
  assert.strictEqual(sum((await get(admin, '/metrics')).body, 'gcs_connections', 'app="e"'), 0);
  assert.strictEqual((await get(admin, '/nope')).status, 404);
  assert.strictEqual((await get(admin, '/metrics', 'POST')).status, 405);
  const garbage = await h.rawExchange(admin, 'NOT HTTP AT ALL\r\n\r\n');
  assert.match(garbage, /^HTTP\/1\.1 400/);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('SIGTERM with drain_s: /health says 503 draining while players keep playing, then the shutdown', async () => {
  const gcs = await h.startGcs(config({ drain_s: 2 }));
  const admin = await adminPort(gcs);
  const ws = await h.connect(gcs.port);
  gcs.kill('SIGTERM');
  for (let i = 0; i < 200 && !/draining: \/health answers 503/.test(gcs.stderrText); i++) await h.sleep(10);
  const health = await get(admin, '/health');
  assert.deepStrictEqual([health.status, health.body], [503, 'draining\n']);
  ws.send('still playing');
  assert.deepStrictEqual(await h.received(ws, 1), ['still playing']);
  assert.match((await get(admin, '/metrics')).body, /^gcs_draining 1$/m);
  // New players still get in (the load balancer decides): the port is open.
  const late = await h.connect(gcs.port);
  late.close();
  const { code } = await ws.closed;
  assert.strictEqual(code, 1000);
  assert.strictEqual(await gcs.exited, 0, gcs.stderrText);
  assert.match(gcs.stderrText, /drained for 2 s: shutting down/);
});

test('a second SIGTERM during the drain starts the shutdown at once', async () => {
  const gcs = await h.startGcs(config({ drain_s: 3600 }));
  const ws = await h.connect(gcs.port);
  gcs.kill('SIGTERM');
  for (let i = 0; i < 200 && !/draining:/.test(gcs.stderrText); i++) await h.sleep(10);
  gcs.kill('SIGTERM');
  const { code } = await ws.closed;
  assert.strictEqual(code, 1000);
  assert.strictEqual(await gcs.exited, 0, gcs.stderrText);
  assert.doesNotMatch(gcs.stderrText, /drained for/);
});

test('the admin port is refused when taken, and is off by default', async () => {
  const blocker = net.createServer();
  await new Promise((r) => blocker.listen(0, '127.0.0.1', r));
  const taken = blocker.address().port;
  const gcs = await h.startGcs(config({ admin: { ip: '127.0.0.1', port: taken } }), { wait: false });
  assert.strictEqual(await gcs.exited, 1, gcs.stderrText);
  assert.match(gcs.stderrText, new RegExp(`cannot listen on admin 127\\.0\\.0\\.1:${taken}: address already in use`));
  blocker.close();
  const plain = await h.startGcs({ ...config(), admin: undefined });
  assert.doesNotMatch(plain.stderrText, /admin listening/);
  assert.strictEqual(await h.stopGcs(plain), 0, plain.stderrText);
});
