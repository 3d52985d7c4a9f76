// Start-up answers: the command line's -a, one line per failure, the whole
// config checked before any application code runs, and what 0 means.
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

after(() => h.killAll());

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-cfg-'));
function script(dir, name, src) {
  const file = path.join(dir, name);
  fs.writeFileSync(file, src);
  return file;
}
const errorLines = (text) => text.split('\n').filter((l) => /\] E: /.test(l));
const ECHO = 'local app = {}\nfunction app.on_message(conn, data) conn:send(data) end\nreturn app\n';
// A script whose top level says it ran: it must not, when start-up fails.
const LOUD = 'local gc = require "gc"\ngc.log(gc.NOTICE, "LOUD RAN")\n' + ECHO;

async function exitOf(proc) {
  const code = await h.stopGcs(proc);
  assert.notStrictEqual(code, 'timeout', proc.stderrText);
  return code;
}

test('-a takes a host name: localhost serves on 127.0.0.1', async () => {
  const gcs = await h.startGcs({ args: ['scripts/echo.lua', '-a', 'localhost', '-p', '0'] });
  const ws = await h.connect(gcs.port, '/');
  ws.send('hi');
  assert.deepStrictEqual(await h.received(ws, 1), ['hi']);
  ws.close();
  assert.strictEqual(await exitOf(gcs), 0, gcs.stderrText);
  assert.doesNotMatch(gcs.stderrText, /echo\.lua:\d+:\d+/);
});

test('-a with a name that does not resolve: the error names -a, not a place in a config', async () => {
  const gcs = await h.startGcs({ args: ['scripts/echo.lua', '-a', 'no-such-host.invalid'] }, { wait: false });
  assert.strictEqual(await gcs.exited, 2, gcs.stderrText);
  assert.match(gcs.stderrText, /^gcs: -a no-such-host\.invalid: /);
  assert.doesNotMatch(gcs.stderrText, /:\d+:\d+:|vhosts/);
  assert.strictEqual(gcs.stderrText.trim().split('\n').length, 1, gcs.stderrText);
});

test('a script that does not compile: one error line, the useful one', async () => {
  const dir = tmp();
  const bad = script(dir, 'bad.lua', 'local app = {\nreturn app\n');
  const gcs = await h.startGcs({ args: [bad, '-p', '0'] }, { wait: false });
  assert.strictEqual(await gcs.exited, 1, gcs.stderrText);
  const errs = errorLines(gcs.stderrText);
  assert.strictEqual(errs.length, 1, gcs.stderrText);
  assert.match(errs[0], /lua app bad: cannot load script: .*bad\.lua:2: /);
});

test('a script that fails at its top level: one error line, from the adapter', async () => {
  const dir = tmp();
  const bad = script(dir, 'boom.lua', 'error("boom at load")\n');
  const gcs = await h.startGcs({ args: [bad, '-p', '0'] }, { wait: false });
  assert.strictEqual(await gcs.exited, 1, gcs.stderrText);
  const errs = errorLines(gcs.stderrText);
  assert.strictEqual(errs.length, 1, gcs.stderrText);
  assert.match(errs[0], /lua app boom: .*boom at load/);
});

test('an adapter that fails without saying why: the host says it, once', async () => {
  const port = 0; // gcs exits before it listens
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'bad_app_init', apps: [{ name: 'a' }] }],
    vhosts: [{ ip: '127.0.0.1', port, app: 'a' }],
  }, { wait: false });
  assert.strictEqual(await gcs.exited, 1, gcs.stderrText);
  const errs = errorLines(gcs.stderrText);
  assert.strictEqual(errs.length, 1, gcs.stderrText);
  assert.match(errs[0], /application a \(.*libbad_app_init\.so\): application_initialize returned \d+/);
});

for (const [what, second, want] of [
  ['does not compile', (dir) => script(dir, 'broken.lua', 'return {\n'), /lua app second: cannot load script: .*broken\.lua:2: /],
  ['does not exist', (dir) => path.join(dir, 'missing.lua'), /lua app second: cannot open .*missing\.lua/],
]) {
  test(`a second script that ${what} is reported before the first one runs`, async () => {
    const dir = tmp();
    const port = 0; // gcs exits before it listens
    const gcs = await h.startGcs({
      adapters: [{ type: 'lua', apps: [{ name: 'first', file_name: script(dir, 'loud.lua', LOUD) },
                                       { name: 'second', file_name: second(dir) }] }],
      vhosts: [{ ip: '127.0.0.1', port, app: 'first' }],
    }, { wait: false });
    assert.strictEqual(await gcs.exited, 1, gcs.stderrText);
    assert.doesNotMatch(gcs.stderrText, /LOUD RAN/);
    const errs = errorLines(gcs.stderrText);
    assert.strictEqual(errs.length, 1, gcs.stderrText);
    assert.match(errs[0], want);
  });
}

test('a wss vhost without ssl_keys_path is refused before any script runs', async () => {
  const dir = tmp();
  const port = 7681; // refused before anything listens
  const gcs = await h.startGcs({
    adapters: [{ type: 'lua', apps: [{ name: 'loud', file_name: script(dir, 'loud.lua', LOUD) }] }],
    vhosts: [{ ip: '127.0.0.1', port, app: 'loud' },
             { ip: '127.0.0.1', port: port + 1, protocol: 'wss', app: 'loud' }],
  }, { wait: false });
  assert.strictEqual(await gcs.exited, 1, gcs.stderrText);
  assert.doesNotMatch(gcs.stderrText, /LOUD RAN/);
  const errs = errorLines(gcs.stderrText);
  assert.strictEqual(errs.length, 1, gcs.stderrText);
  assert.match(errs[0], /vhosts\[1\] \(127\.0\.0\.1:\d+\): protocol "wss" needs an "ssl_keys_path"/);
});

function luaConfig(dir, port, extra) {
  return {
    adapters: [{ type: 'lua', apps: [{ name: 'echo', file_name: script(dir, 'echo.lua', ECHO) }] }],
    vhosts: [{ ip: '127.0.0.1', port, app: 'echo' }],
    ...extra,
  };
}

test('close_drain_ms 0 is no bound: a clean shutdown with a client exits 0, the client gets 1000', async () => {
  const gcs = await h.startGcs(luaConfig(tmp(), 0, { close_drain_ms: 0 }));
  const port = gcs.port;
  const ws = await h.connect(port, '/');
  ws.send('x');
  await h.received(ws, 1);
  assert.strictEqual(await exitOf(gcs), 0, gcs.stderrText);
  assert.strictEqual((await ws.closed).code, 1000);
  assert.doesNotMatch(gcs.stderrText, /dropped/);
});

test('handshake_timeout_ms 0 is no bound: an upgrade finished after 11 s is answered', async () => {
  const gcs = await h.startGcs(luaConfig(tmp(), 0, { handshake_timeout_ms: 0 }));
  const port = gcs.port;
  const req = h.upgradeRequest('/');
  let got = '';
  let closed = false;
  const s = net.connect(port, '127.0.0.1', () => s.write(req.slice(0, 20)));
  s.on('data', (d) => { got += d.toString('latin1'); });
  s.on('error', () => {});
  s.on('close', () => { closed = true; });
  await h.sleep(11000);
  assert.strictEqual(closed, false, 'closed before the upgrade was complete');
  s.write(req.slice(20));
  for (let i = 0; i < 100 && !got.includes('\r\n\r\n'); i++) await h.sleep(20);
  assert.match(got, /^HTTP\/1\.1 101 /);
  s.destroy();
  assert.strictEqual(await exitOf(gcs), 0, gcs.stderrText);
});
