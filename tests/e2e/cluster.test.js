// The cluster of deploy/ with the real programs (issue 19): Debian's
// redis-server, three gcs hosts of scripts/rooms.lua (deploy/gcs-N.json),
// haproxy (deploy/haproxy.cfg) in front and prometheus
// (deploy/prometheus.yml) scraping them, all on free loopback ports: the
// shipped files are read and only their addresses, ports, paths (and
// Prometheus's scrape interval) are rewritten, so this proves the files an
// operator copies. Every program is started here and stopped whatever
// happens (after(), process groups, bounded waits).
//
// Which host a client is on is read from the hosts' own /metrics: clients
// connect one at a time through HAProxy, and the host whose
// gcs_connections_accepted_total went up has it.
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const p = require('./lib/procs');

const DEPLOY = path.join(h.SRC, 'deploy');
// Two worker loops per host (the deploy files say "auto"; this machine's
// CPU count would vary the test), so rooms and shouts cross loops too.
const WORKERS_PIN = { worker_count: 2 };
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-cluster-'));
const N = 3;

const st = {
  redis: null, haproxy: null, prom: null,
  hosts: [], // the hosts up: { i, proc, port, admin, log }
  all: [], // every host started
  clients: [], // every client ever connected (closed ones too)
};

after(async () => {
  for (const c of st.clients) c.ws.terminate();
  h.killAll();
  p.killGroups();
  fs.rmSync(dir, { recursive: true, force: true });
});

// ---- the programs ------------------------------------------------------------

const { ping } = require('./lib/redis');

async function startRedis(port) {
  const r = p.spawnGroup('redis-server', ['--port', String(port), '--bind', '127.0.0.1',
    '--save', '', '--appendonly', 'no', '--dir', dir, '--daemonize', 'no']);
  await p.waitFor(async () => r.exitCode === null && await ping(port), `redis-server on ${port}`,
    { detail: () => r.text });
  return r;
}

// deploy/gcs-N.json with this test's ports, Redis and log file.
function gcsConfig(i, port, admin, redisPort) {
  const cfg = JSON.parse(fs.readFileSync(path.join(DEPLOY, `gcs-${i + 1}.json`), 'utf8'));
  assert.strictEqual(cfg.vhosts.length, 1);
  assert.ok(cfg.drain_s > 0, 'deploy/gcs-N.json drains');
  cfg.vhosts[0].port = port;
  cfg.admin.port = admin;
  cfg.redis.url = cfg.redis.url.replace(/:6379\//, `:${redisPort}/`);
  assert.ok(cfg.redis.url.includes(`:${redisPort}/`), cfg.redis.url);
  cfg.logging.log_file = path.join(dir, path.basename(cfg.logging.log_file));
  if (WORKERS_PIN) cfg.threading = WORKERS_PIN;
  return cfg;
}

// deploy/haproxy.cfg with this test's ports: the frontend on loopback,
// each "server" line's WebSocket and check ports.
function haproxyConfig(front, hosts) {
  let text = fs.readFileSync(path.join(DEPLOY, 'haproxy.cfg'), 'utf8');
  text = text.replace(/^(\s*bind\s+)\S+:8080\b/m, `$1127.0.0.1:${front}`);
  assert.match(text, new RegExp(`bind 127\\.0\\.0\\.1:${front}`));
  let k = 0;
  text = text.replace(/^(\s*server\s+\S+\s+)127\.0\.0\.1:\d+(\s+check port\s+)\d+/gm, (m, a, b) => {
    const host = hosts[k++];
    return `${a}127.0.0.1:${host.port}${b}${host.admin}`;
  });
  assert.strictEqual(k, hosts.length, 'deploy/haproxy.cfg has one server line per host');
  return text;
}

// deploy/prometheus.yml with this test's admin ports, scraping every 200 ms.
function prometheusConfig(hosts) {
  let text = fs.readFileSync(path.join(DEPLOY, 'prometheus.yml'), 'utf8');
  text = text.replace(/scrape_interval:\s*\S+/, 'scrape_interval: 200ms');
  const targets = hosts.map((x) => `'127.0.0.1:${x.admin}'`).join(', ');
  text = text.replace(/targets:\s*\[[^\]]*\]/, `targets: [${targets}]`);
  assert.match(text, /scrape_interval: 200ms/);
  assert.ok(text.includes(targets));
  return text;
}

async function promQuery(port, q) {
  const r = await p.get(port, '/api/v1/query?query=' + encodeURIComponent(q));
  if (r.status !== 200) return null;
  const j = JSON.parse(r.body);
  return j.status === 'success' ? j.data.result : null;
}

// ---- clients -------------------------------------------------------------------

const accepted = async (host) => {
  const r = await p.get(host.admin, '/metrics');
  return r.status === 200 ? p.metricSum(r.body, 'gcs_connections_accepted_total') : null;
};

// Connects a player of 'room' through HAProxy and finds its host: the one
// whose accepted count went up. 'among': the hosts it may be on.
async function join(room, name, among = st.hosts) {
  const before = await Promise.all(among.map(accepted));
  const ws = await h.connect(st.front, `/?room=${room}&name=${name}`);
  const c = { ws, room, name, closed: false, got: () => ws.received.map(String) };
  ws.on('close', () => { c.closed = true; });
  st.clients.push(c);
  c.host = await p.waitFor(async () => {
    const now = await Promise.all(among.map(accepted));
    const up = among.filter((x, k) => now[k] !== null && now[k] > before[k]);
    return up.length === 1 ? up[0] : null;
  }, `the host of ${name} (room ${room}) among gcs ${among.map((x) => x.i + 1)}`, { ms: 5000 });
  return c;
}

const has = (c, line) => c.got().includes(line);
const live = () => st.clients.filter((c) => !c.closed);

async function shoutFrom(c, text) {
  c.ws.send(`/shout ${text}`);
  const line = `${c.name} shouts: ${text}`;
  await p.waitFor(() => live().every((x) => has(x, line)), `"${line}" at every client`, {
    detail: () => live().filter((x) => !has(x, line)).map((x) => `${x.name} on gcs ${x.host.i + 1}`).join('\n'),
  });
}

// How each gcs is (for failure messages).
const hostStates = () => st.all.map((x) => `gcs ${x.i + 1} (pid ${x.proc.pid}): exit ${x.proc.exitCode} signal ${x.proc.signalCode}`).join('\n');

// Redis's log lines of one host (its stderr; the log file has the same).
const LOST = /W: redis 127\.0\.0\.1:\d+: connection lost/g;
const BACK = /N: redis 127\.0\.0\.1:\d+: back after/g;
const count = (text, re) => (text.match(re) || []).length;

// ---- the tests -------------------------------------------------------------------

const ROOMS = Array.from({ length: 12 }, (_, k) => `room${k}`);

test('3 gcs behind HAProxy: the players of a room meet on one host, rooms spread over all', async () => {
  p.requireProgram('redis-server', 'redis-server');
  p.requireProgram('haproxy', 'haproxy');
  p.requireProgram('prometheus', 'prometheus');
  const [redisPort, front, promPort, ...rest] = await p.freePorts(3 + 2 * N);
  st.redisPort = redisPort;
  st.front = front;
  st.promPort = promPort;
  st.redis = await startRedis(redisPort);
  for (let i = 0; i < N; i++) {
    const host = { i, port: rest[2 * i], admin: rest[2 * i + 1] };
    const cfg = gcsConfig(i, host.port, host.admin, redisPort);
    host.log = cfg.logging.log_file;
    host.proc = await h.startGcs(cfg, { port: host.port });
    st.hosts.push(host);
    st.all.push(host);
  }
  for (const x of st.hosts) {
    await p.waitFor(() => /N: redis 127\.0\.0\.1:\d+: connected/.test(x.proc.stderrText),
      `gcs ${x.i + 1} connected to Redis`, { detail: () => x.proc.stderrText });
    assert.strictEqual((await p.get(x.admin, '/health')).status, 200);
  }
  const hcfg = path.join(dir, 'haproxy.cfg');
  fs.writeFileSync(hcfg, haproxyConfig(front, st.hosts));
  const check = p.spawnGroup('haproxy', ['-c', '-f', hcfg]);
  assert.strictEqual(await p.stopGroup(check, null, 10000), 0, check.text);
  st.haproxy = p.spawnGroup('haproxy', ['-db', '-f', hcfg]);
  await p.waitFor(() => new Promise((resolve, reject) => {
    if (st.haproxy.exitCode !== null) reject(new Error('haproxy exited:\n' + st.haproxy.text));
    const s = net.connect(front, '127.0.0.1', () => { s.destroy(); resolve(true); });
    s.on('error', () => resolve(false));
  }), 'haproxy listening', { detail: () => st.haproxy.text });
  // Prometheus starts meanwhile (it takes a second or two).
  const pcfg = path.join(dir, 'prometheus.yml');
  fs.writeFileSync(pcfg, prometheusConfig(st.hosts));
  st.prom = p.spawnGroup('prometheus', [`--config.file=${pcfg}`, `--storage.tsdb.path=${path.join(dir, 'tsdb')}`,
    `--web.listen-address=127.0.0.1:${promPort}`, '--log.level=warn']);

  // Two players a room, one at a time; the second's arrival is said to the
  // first only if they share a Lua state, so on one host.
  for (const room of ROOMS) {
    const a = await join(room, `${room}a`);
    const b = await join(room, `${room}b`);
    assert.strictEqual(b.host, a.host, `both players of ${room} on one host`);
    await p.waitFor(() => has(a, `* ${room}b joined`), `${room}a seeing ${room}b join`, { detail: () => a.got().join('\n') });
    b.ws.send('hello');
    await p.waitFor(() => has(a, `${room}b: hello`), `${room}a hearing ${room}b`);
  }
  const perHost = st.hosts.map((x) => new Set(st.clients.filter((c) => c.host === x).map((c) => c.room)));
  // The hash of these room names over three servers is fixed: each host gets some.
  for (const x of st.hosts) assert.ok(perHost[x.i].size > 0, `gcs ${x.i + 1} has rooms: ${perHost.map((s) => [...s])}`);
  // A third player of each room, later: still the same host.
  for (const room of ROOMS) {
    const c = await join(room, `${room}c`);
    assert.strictEqual(c.host, st.clients.find((x) => x.room === room).host, room);
  }
});

test('a shout (gc.publish through Redis) from any host reaches the clients of all three', async () => {
  assert.ok(st.haproxy, 'needs the first test');
  for (const x of st.hosts) {
    const from = st.clients.find((c) => c.host === x);
    await shoutFrom(from, `hi from gcs ${x.i + 1}`);
  }
});

test('Prometheus scrapes the three admin ports; sum(gcs_connections) is the number of clients', async () => {
  assert.ok(st.prom, 'needs the first test');
  await p.waitFor(async () => (await p.get(st.promPort, '/-/ready')).status === 200, 'prometheus ready',
    { ms: 20000, step: 100, detail: () => st.prom.text });
  let targets = '';
  const ups = await p.waitFor(async () => {
    const r = await promQuery(st.promPort, 'up{job="gcs"} == 1');
    if (r && r.length === N) return r;
    targets = (await p.get(st.promPort, '/api/v1/targets')).body;
    return null;
  }, 'every host up in Prometheus', { ms: 15000, step: 100, detail: () => `${targets}\n${st.prom.text}\n${hostStates()}` });
  assert.deepStrictEqual(ups.map((s) => s.metric.instance).sort(), st.hosts.map((x) => `127.0.0.1:${x.admin}`).sort());
  const want = live().length;
  assert.strictEqual(want, ROOMS.length * 3);
  let last;
  await p.waitFor(async () => {
    const r = await promQuery(st.promPort, 'sum(gcs_connections)');
    last = r && r.length ? Number(r[0].value[1]) : null;
    return last === want;
  }, `sum(gcs_connections) = ${want}`, { ms: 15000, step: 100, detail: () => `last: ${last}` });
});

test('Redis restarted: a shout fails at once while it is down, then reaches all hosts again', async () => {
  assert.ok(st.redis, 'needs the first test');
  assert.strictEqual(await p.stopGroup(st.redis), 0, st.redis.text);
  st.redis = null;
  for (const x of st.hosts) {
    await p.waitFor(() => count(x.proc.stderrText, LOST) === 1, `gcs ${x.i + 1} logging the outage`,
      { detail: () => x.proc.stderrText + hostStates() });
  }
  for (const x of st.hosts) {
    const c = st.clients.find((y) => y.host === x && !y.closed);
    c.ws.send('/shout while down');
    await p.waitFor(() => c.got().some((m) => /^\* shout lost: redis unavailable$/.test(m)), `${c.name}'s shout refused`,
      { detail: () => c.got().join('\n') });
  }
  assert.ok(!live().some((c) => has(c, `${c.name} shouts: while down`)));
  st.redis = await startRedis(st.redisPort);
  for (const x of st.hosts) {
    await p.waitFor(() => count(x.proc.stderrText, BACK) === 1, `gcs ${x.i + 1} back on Redis`,
      { ms: 15000, detail: () => x.proc.stderrText });
  }
  for (const x of st.hosts) {
    const from = st.clients.find((c) => c.host === x && !c.closed);
    await shoutFrom(from, `again from gcs ${x.i + 1}`);
    assert.strictEqual(count(x.proc.stderrText, LOST), 1, 'one outage line');
  }
});

test('a drained host: /health 503, HAProxy sends it no new players, its players move, the others play on', async () => {
  assert.ok(st.haproxy, 'needs the first test');
  const X = st.hosts[0];
  const others = st.hosts.filter((x) => x !== X);
  const moving = live().filter((c) => c.host === X);
  const staying = live().filter((c) => c.host !== X);
  assert.ok(moving.length > 0 && staying.length > 0);
  const movingRooms = [...new Set(moving.map((c) => c.room))];
  const stayingRooms = [...new Set(staying.map((c) => c.room))];

  X.proc.kill('SIGTERM');
  await p.waitFor(async () => (await p.get(X.admin, '/health')).status === 503, `gcs ${X.i + 1} /health 503`);
  // The players of the other hosts keep talking in their rooms meanwhile.
  let tick = 0;
  const ticker = setInterval(() => {
    tick++;
    for (const room of stayingRooms) staying.find((c) => c.room === room).ws.send(`tick ${tick}`);
  }, 100);
  try {
    await p.waitFor(() => new RegExp(`Server gcs/gcs${X.i + 1} is DOWN`).test(st.haproxy.text),
      `HAProxy marking gcs${X.i + 1} down`, { ms: 15000, detail: () => st.haproxy.text });
    // New players, of X's rooms too, all land on the other hosts (while X
    // still serves its own players: drain_s has not run out).
    for (const room of [...movingRooms, 'fresh1', 'fresh2', 'fresh3']) {
      const c = await join(room, `${room}late`, st.hosts.filter((x) => x !== X || x.proc.exitCode === null));
      assert.notStrictEqual(c.host, X, `${c.name} sent to the draining host`);
    }
    assert.strictEqual(X.proc.exitCode, null, 'the drain outlasted the checks of the new players');
    // Then X closes its players (1000) and exits; they reconnect through
    // HAProxy, each room's players again on one host, not X.
    const codes = await Promise.all(moving.map((c) => c.ws.closed));
    for (const { code } of codes) assert.strictEqual(code, 1000);
    let timer;
    const code = await Promise.race([X.proc.exited, new Promise((r) => { timer = setTimeout(() => r('late'), 15000); })]);
    clearTimeout(timer);
    assert.strictEqual(code, 0, X.proc.stderrText);
    assert.match(X.proc.stderrText, /drained for \d+ s: shutting down/);
    for (const old of moving) {
      const c = await join(old.room, `${old.name}x`, others);
      const late = st.clients.find((y) => y.name === `${old.room}late`);
      assert.strictEqual(c.host, late.host, `${c.name} with the room's other players`);
      await p.waitFor(() => has(late, `* ${c.name} joined`), `${old.room}late seeing ${c.name} join`);
    }
  } finally {
    clearInterval(ticker);
  }
  // Nobody on the other hosts was closed, and every tick of their rooms
  // reached every player of the room, in order.
  const last = tick;
  for (const c of staying) {
    assert.strictEqual(c.closed, false, `${c.name} closed`);
    const sender = staying.find((y) => y.room === c.room).name;
    await p.waitFor(() => has(c, `${sender}: tick ${last}`), `${c.name} hearing tick ${last}`);
    const ticks = c.got().filter((m) => m.startsWith(`${sender}: tick `));
    assert.deepStrictEqual(ticks, Array.from({ length: last }, (_, k) => `${sender}: tick ${k + 1}`));
  }
  await shoutFrom(live().find((c) => c.host === others[0]), 'after the drain');
  st.hosts = others;
});

test('Prometheus after the drain: the drained host is down, the sum is the clients connected now', async () => {
  assert.ok(st.prom && st.hosts.length === N - 1, 'needs the tests before');
  const want = live().length;
  let last;
  await p.waitFor(async () => {
    const r = await promQuery(st.promPort, 'sum(gcs_connections)');
    const down = await promQuery(st.promPort, 'up{job="gcs"} == 0');
    last = r && r.length ? Number(r[0].value[1]) : null;
    return last === want && down && down.length === 1;
  }, `sum(gcs_connections) = ${want} with one host down`, { ms: 15000, step: 100, detail: () => `last: ${last}` });
  for (const c of st.clients) c.ws.close();
  for (const x of st.hosts) assert.strictEqual(await h.stopGcs(x.proc), 0, x.proc.stderrText);
  for (const x of st.all) assert.doesNotMatch(x.proc.stderrText, /Sanitizer|runtime error/);
  await p.stopGroup(st.haproxy);
  assert.strictEqual(await p.stopGroup(st.prom), 0, st.prom.text);
  assert.strictEqual(await p.stopGroup(st.redis), 0, st.redis.text);
});
