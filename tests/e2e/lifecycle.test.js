// Start-up and shutdown order, start-up errors, SIGTERM with clients.
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

after(() => h.killAll());
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-life-'));

test('SIGTERM with 3 clients: stop, close frames, disconnects, shutdown, finalize, exit 0', async () => {
  const r = h.recorderConfig(0, tmp());
  const gcs = await h.startGcs(r.cfg);
  const port = gcs.port;
  const clients = await Promise.all([1, 2, 3].map((i) => h.connect(port, '/c' + i)));
  for (const ws of clients) ws.send('hello');
  await Promise.all(clients.map((ws) => h.received(ws, 1)));
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  for (const ws of clients) assert.strictEqual((await ws.closed).code, 1000);
  const ev = h.events(r.log);
  const kinds = ev.map((l) => l.split(' ')[0]).filter((k) => k !== 'message');
  assert.deepStrictEqual(kinds, [
    'adapter_initialize', 'application_initialize', 'application_start',
    'connect', 'connect', 'connect',
    'application_stop', 'disconnect', 'disconnect', 'disconnect',
    'application_shutdown', 'adapter_finalize',
  ]);
});

test('a second signal drops the stragglers at once, exit status 3', async () => {
  const r = h.recorderConfig(0, tmp(), { close_drain_ms: 60000 });
  const gcs = await h.startGcs(r.cfg);
  const port = gcs.port;
  // A raw client that completes the upgrade and then never reads or answers.
  const net = require('node:net');
  const s = net.connect(port, '127.0.0.1', () => s.write(h.upgradeRequest('/mute')));
  s.on('error', () => {});
  await h.waitEvents(r.log, (e) => e.some((l) => l.startsWith('connect')));
  s.pause();
  gcs.kill('SIGTERM');
  await h.sleep(300);
  assert.strictEqual(gcs.exitCode, null, 'still draining the mute client');
  // A forced shutdown: exit status 3 (connections were dropped).
  assert.strictEqual(await h.stopGcs(gcs, 'SIGINT'), 3, gcs.stderrText);
  const kinds = h.events(r.log).map((l) => l.split(' ')[0]);
  assert.deepStrictEqual(kinds.slice(-3), ['disconnect', 'application_shutdown', 'adapter_finalize']);
  s.destroy();
});

async function failingStart(name) {
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name, apps: [{ name: 'x' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, app: 'x' }],
  }, { wait: false });
  const code = await gcs.exited;
  return { code, err: gcs.stderrText };
}

test('adapter_initialize returning non-zero stops start-up, naming library and symbol', async () => {
  const { code, err } = await failingStart('bad_init');
  assert.strictEqual(code, 1);
  assert.match(err, /adapter bad_init \(.*libbad_init\.so\): adapter_initialize returned 5/);
});

test('a missing adapter_initialize stops start-up, naming the symbol', async () => {
  const { code, err } = await failingStart('no_init');
  assert.strictEqual(code, 1);
  assert.match(err, /libno_init\.so\): missing required export 'adapter_initialize'/);
});

test('application_initialize returning non-zero stops start-up; the adapter is still finalized', async () => {
  const { code, err } = await failingStart('bad_app_init');
  assert.strictEqual(code, 1);
  assert.match(err, /application x \(.*libbad_app_init\.so\): application_initialize returned 3/);
  assert.match(err, /bad_app_init: adapter_finalize/);
});

test('a library that does not exist is named with dlerror', async () => {
  const { code, err } = await failingStart('does_not_exist');
  assert.strictEqual(code, 1);
  assert.match(err, /cannot load .*libdoes_not_exist\.so: .*No such file/);
});

test('a bad config names the key, line and column; exit status 1', async () => {
  const dir = tmp();
  const file = path.join(dir, 'gcs.json');
  fs.writeFileSync(file, '{\n  "comment": "typo below",\n  "vhostz": []\n}\n');
  const gcs = await h.startGcs({ args: ['-C', file] }, { wait: false });
  assert.strictEqual(await gcs.exited, 1);
  assert.match(gcs.stderrText, /gcs\.json:3:3: unknown key "vhostz" \(did you mean "vhosts"\?\)/);
});

test('a port in use is a clear start-up error', async () => {
  const net = require('node:net');
  const blocker = net.createServer().listen(0, '127.0.0.1'); // holds the port: no race
  await new Promise((r) => blocker.on('listening', r));
  const port = blocker.address().port;
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'e' }] }],
    vhosts: [{ ip: '127.0.0.1', port, app: 'e' }],
  }, { wait: false });
  assert.strictEqual(await gcs.exited, 1);
  assert.match(gcs.stderrText, new RegExp(`cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`));
  blocker.close();
});

// "Max open files  SOFT  HARD  files" of a running process.
function fileLimits(pid) {
  const line = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  return line.trim().split(/\s+/).slice(3, 5);
}

test('the soft open-file limit is raised to the hard one at start', async () => {
  const cfg = {
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'e' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, app: 'e' }],
  };
  const gcs = await h.startGcs(cfg, { ulimit: '-Sn 256' });
  const [soft, hard] = fileLimits(gcs.pid);
  assert.notStrictEqual(hard, '256', 'the test needs a hard limit above 256');
  assert.strictEqual(soft, hard);
  assert.strictEqual(await h.stopGcs(gcs), 0);
});

test('max_connections above the open-file limit is a start-up warning', async () => {
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'e' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, app: 'e' }],
    max_connections: 1000,
  }, { ulimit: '-n 300' });
  for (let i = 0; i < 40 && !/W: max_connections/.test(gcs.stderrText); i++) await h.sleep(25);
  assert.match(gcs.stderrText, /W: max_connections is 1000 but the open-file limit is 300/);
  assert.strictEqual(await h.stopGcs(gcs), 0);
});

test('--version and --help', async () => {
  const v = await h.startGcs({ args: ['--version'] }, { wait: false });
  assert.strictEqual(await v.exited, 0);
  const hp = await h.startGcs({ args: ['--help'] }, { wait: false });
  assert.strictEqual(await hp.exited, 0);
  const bad = await h.startGcs({ args: ['--bogus'] }, { wait: false });
  assert.strictEqual(await bad.exited, 2);
});
