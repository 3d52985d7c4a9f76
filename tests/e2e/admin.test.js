// The admin listener: /health for load balancers (503 while draining after
// SIGTERM), /metrics in Prometheus's format (checked by promtool), per app
// and per worker; drain_s keeps players playing while /health says 503.
const { test, after } = require('node:test');
const assert = require('node:assert');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const { adminPort, get, sum } = require('./lib/admin');

after(() => h.killAll());

function config(extra = {}) {
  return {
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'e' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'e' }],
    admin: { ip: '127.0.0.1', port: 0 },
    ...extra,
  };
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

// Every sample of a family: { labels: {...}, value }.
function samples(text, name) {
  const out = [];
  for (const line of text.split('\n')) {
    const m = new RegExp(`^${name}\\{([^}]*)\\} (\\S+)$`).exec(line);
    if (!m) continue;
    const labels = {};
    for (const l of m[1].matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]] = l[2];
    out.push({ labels, value: Number(m[2]) });
  }
  return out;
}

// The sum of a family's samples whose labels include every one of 'want'.
function total(text, name, want) {
  return samples(text, name)
    .filter((s) => Object.entries(want).every(([k, v]) => s.labels[k] === v))
    .reduce((a, s) => a + s.value, 0);
}

// The non-zero series of a family for one app, as "k=v,k=v value" lines
// (label order as rendered, 'app' left out), sorted.
function series(text, name, app) {
  return samples(text, name)
    .filter((s) => s.labels.app === app && s.value !== 0)
    .map((s) => Object.entries(s.labels).filter(([k]) => k !== 'app')
      .map(([k, v]) => `${k}=${v}`).join(',') + ` ${s.value}`)
    .sort();
}

// An app's handler histogram of one event: its count, and whether its
// buckets are cumulative up to +Inf = count, with a sum > 0 when called.
function handler(text, app, event) {
  const b = samples(text, 'gcs_handler_seconds_bucket')
    .filter((s) => s.labels.app === app && s.labels.event === event);
  const count = total(text, 'gcs_handler_seconds_count', { app, event });
  const sum = total(text, 'gcs_handler_seconds_sum', { app, event });
  const ok = b.length === 17 && b.every((s, i) => i === 0 || s.value >= b[i - 1].value) &&
    b[b.length - 1].labels.le === '+Inf' && b[b.length - 1].value === count &&
    (count === 0) === (sum === 0);
  return { count, ok };
}

const LUA = `local app = {}
function app.on_message(conn, msg)
  local code = msg:match("^close (%d+)$")
  if code then conn:close("normal", tonumber(code)) return end
  if msg == "drop" then conn:close("drop") return end
  if msg == "timer" then conn:set_timer(1) return end
  conn:send(msg)
end
function app.on_timer(conn) conn:send("tick") end
return app
`;

test('/metrics: closes by code and by whom, limit hits, handler time per app and event', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-admin-'));
  fs.writeFileSync(path.join(dir, 'probe.lua'), LUA);
  const gcs = await h.startGcs({
    adapters: [
      { type: 'native', dir: h.BUILD, name: 'metrics_probe',
        apps: [{ name: 'p', conn_notice: { msg_per_second: 5 }, conn_critical: { max_msg_size: 1000 } }] },
      { type: 'lua', apps: [{ name: 'l', file_name: path.join(dir, 'probe.lua') }] },
    ],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'p' },
             { ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'l' }],
    admin: { ip: '127.0.0.1', port: 0 },
  });
  const admin = await adminPort(gcs);
  const ended = async (ws, code) => assert.strictEqual((await ws.closed).code, code);
  // The native app, its connections spread over the workers.
  const a = await h.connect(gcs.port, '/p');
  a.send('hello');
  assert.deepStrictEqual(await h.received(a, 1), ['hello']);
  a.close(1000);
  await ended(a, 1000);
  const b = await h.connect(gcs.port, '/p');
  b.close(1000);
  await ended(b, 1000);
  for (const code of [4001, 3000]) {
    const ws = await h.connect(gcs.port, '/p');
    ws.send(`close ${code}`);
    await ended(ws, code);
  }
  const dropped = await h.connect(gcs.port, '/p');
  dropped.send('drop');
  await ended(dropped, 1006);
  const gone = await h.connect(gcs.port, '/p');
  gone.terminate();
  await gone.closed;
  // 11 messages over YELLOW msg_per_second 5: one issue, whichever two
  // one-second windows they fall in (only one can hold 6 or more).
  const busy = await h.connect(gcs.port, '/p');
  for (let i = 0; i < 11; i++) busy.send(`m${i}`);
  assert.strictEqual((await h.received(busy, 11)).length, 11);
  busy.send('timer');
  assert.deepStrictEqual((await h.received(busy, 12))[11], 'tick');
  busy.close(1000);
  await ended(busy, 1000);
  // Over RED max_msg_size: refused at its header, closed with 1009.
  const big = await h.connect(gcs.port, '/p');
  big.send('x'.repeat(2000));
  await ended(big, 1009);
  // A frame with a reserved bit set: wslay chooses the code (1002).
  const raw = await h.rawExchange(gcs.port, Buffer.concat([Buffer.from(h.upgradeRequest('/p')),
    h.frame(1, 'x', { rsv: 0x40 })]));
  assert.strictEqual(h.closeCode(Buffer.from(raw.slice(raw.indexOf('\r\n\r\n') + 4), 'latin1')), 1002);
  // The Lua app.
  const l1 = await h.connect(gcs.port, '/l');
  l1.send('hi');
  assert.deepStrictEqual(await h.received(l1, 1), ['hi']);
  l1.send('timer');
  assert.deepStrictEqual(await h.received(l1, 2), ['hi', 'tick']);
  l1.close(1000);
  await ended(l1, 1000);
  const l2 = await h.connect(gcs.port, '/l');
  l2.send('close 4002');
  await ended(l2, 4002);
  const l3 = await h.connect(gcs.port, '/l');
  l3.send('drop');
  await ended(l3, 1006);

  // The host counts a close before on_disconnect, once the connection's
  // end is over on its side: wait (bounded) for every one of them.
  let m;
  for (let i = 0; i < 400; i++) {
    m = (await get(admin, '/metrics')).body;
    if (total(m, 'gcs_connections_closed_total', { app: 'p' }) === 9 &&
        total(m, 'gcs_connections_closed_total', { app: 'l' }) === 3) break;
    await h.sleep(25);
  }
  execFileSync('promtool', ['check', 'metrics'], { input: m }); // throws on a finding
  assert.deepStrictEqual(series(m, 'gcs_connections_closed_total', 'p'), [
    'by=client,code=1000 3', 'by=client,code=1006 1', 'by=drop,code=1006 1',
    'by=server,code=1002 1', 'by=server,code=1009 1', 'by=server,code=3xxx 1',
    'by=server,code=4xxx 1']);
  assert.deepStrictEqual(series(m, 'gcs_connections_closed_total', 'l'), [
    'by=client,code=1000 1', 'by=drop,code=1006 1', 'by=server,code=4xxx 1']);
  // Every statistic and level has its series, zeros included.
  assert.strictEqual(samples(m, 'gcs_limit_hits_total').filter((s) => s.labels.app === 'p').length, 8);
  assert.deepStrictEqual(series(m, 'gcs_limit_hits_total', 'p'), [
    'stat=max_msg_size,level=red 1', 'stat=msg_per_second,level=yellow 1']);
  assert.deepStrictEqual(series(m, 'gcs_limit_hits_total', 'l'), []);
  const counts = (app, events) => Object.fromEntries(events.map((e) => {
    const r = handler(m, app, e);
    assert.ok(r.ok, `${app} ${e}:\n` + m);
    return [e, r.count];
  }));
  assert.deepStrictEqual(counts('p', ['connect', 'message', 'message_sent', 'disconnect', 'timer', 'issue']),
    { connect: 9, message: 16, message_sent: 13, disconnect: 9, timer: 1, issue: 1 });
  assert.deepStrictEqual(counts('l', ['connect', 'message', 'message_sent', 'disconnect', 'timer']),
    { connect: 3, message: 4, message_sent: 2, disconnect: 3, timer: 1 });
  // The probe has no on_channel_message: no histogram for it.
  assert.strictEqual(samples(m, 'gcs_handler_seconds_count').filter((s) => s.labels.app === 'p' &&
    s.labels.event === 'channel_message').length, 0);
  assert.strictEqual(total(m, 'gcs_messages_in_total', { app: 'p' }), 16);
  assert.strictEqual(total(m, 'gcs_connections', { app: 'p' }), 0);
  // Loop lag is per worker: one histogram for each.
  const workers = Number(/^gcs_workers (\d+)$/m.exec(m)[1]);
  assert.strictEqual(samples(m, 'gcs_loop_lag_seconds_count').length, workers);
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
