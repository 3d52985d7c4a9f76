// Helpers for e2e tests that run other real programs beside gcs (haproxy,
// redis-server, prometheus): free loopback ports, a program in its own
// process group (so that stopping it stops whatever it started), bounded
// waits, plain HTTP GETs. Every group started here is killed when the test
// process exits, also after a failed assertion (killGroups, and an 'exit'
// hook for an uncaught error).
const { spawn, execFileSync } = require('node:child_process');
const http = require('node:http');
const net = require('node:net');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// 'n' distinct ports nobody listens on now: all are held open until every
// one is known, so that the kernel cannot hand out one twice.
async function freePorts(n) {
  const servers = [];
  try {
    for (let i = 0; i < n; i++) {
      const s = net.createServer();
      servers.push(s);
      await new Promise((resolve, reject) => {
        s.on('error', reject);
        s.listen(0, '127.0.0.1', resolve);
      });
    }
    return servers.map((s) => s.address().port);
  } finally {
    await Promise.all(servers.map((s) => new Promise((r) => (s.listening ? s.close(r) : r()))));
  }
}

// Throws unless 'cmd' is on the PATH: a missing program is a failure with
// a message, never a silent skip (make test installs them: tools/deps.sh).
function requireProgram(cmd, pkg) {
  try {
    execFileSync('sh', ['-c', `command -v "${cmd}"`], { stdio: 'ignore' });
  } catch {
    throw new Error(`${cmd} is not installed (Debian package ${pkg}; tools/deps.sh test installs it)`);
  }
}

const groups = new Set();

// Starts 'cmd' in a process group of its own; p.text collects its stdout
// and stderr, p.exited resolves with its exit code (or signal name).
function spawnGroup(cmd, args, opts = {}) {
  const p = spawn(cmd, args, { ...opts, detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
  p.text = '';
  p.stdout.on('data', (d) => { p.text += d; });
  p.stderr.on('data', (d) => { p.text += d; });
  p.exited = new Promise((resolve) => p.on('exit', (code, sig) => resolve(code === null ? sig : code)));
  p.on('error', (e) => { p.text += `\n${cmd}: ${e.message}\n`; });
  groups.add(p);
  return p;
}

function signalGroup(p, sig) {
  try {
    process.kill(-p.pid, sig);
  } catch { /* already gone */ }
}

// 'sig' to the group (none: wait for it to exit by itself), then SIGKILL
// if it has not exited within 'ms'; resolves with its exit code or signal.
async function stopGroup(p, sig = 'SIGTERM', ms = 10000) {
  if (sig && p.exitCode === null && p.signalCode === null) signalGroup(p, sig);
  let timer;
  const late = new Promise((r) => { timer = setTimeout(() => r('late'), ms); });
  let code = await Promise.race([p.exited, late]);
  clearTimeout(timer);
  if (code === 'late') {
    signalGroup(p, 'SIGKILL');
    code = await p.exited;
  }
  groups.delete(p);
  return code;
}

function killGroups() {
  for (const p of groups) signalGroup(p, 'SIGKILL');
  groups.clear();
}
process.on('exit', killGroups);

// Polls 'pred' (may be async) every 'step' ms until it returns a truthy
// value, which is returned; throws after 'ms' with 'what' and 'detail()'.
async function waitFor(pred, what, { ms = 10000, step = 25, detail } = {}) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out (${ms} ms) waiting for ${what}` + (detail ? ':\n' + detail() : ''));
    await sleep(step);
  }
}

// GET http://127.0.0.1:port/path: { status, body }, or { status: 0, error }
// when nothing answers; bounded by 'ms'.
function get(port, path, ms = 3000) {
  return new Promise((resolve) => {
    const req = http.get({ host: '127.0.0.1', port, path, timeout: ms }, (res) => {
      let body = '';
      res.on('data', (d) => { body += d; });
      res.on('end', () => resolve({ status: res.statusCode, body }));
      res.on('error', (error) => resolve({ status: 0, error }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', (error) => resolve({ status: 0, error }));
  });
}

// The sum of a Prometheus text family's samples ('name' exactly, any labels).
function metricSum(text, name) {
  let total = 0;
  for (const line of text.split('\n')) {
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})? (\S+)$/.exec(line);
    if (m && m[1] === name) total += Number(m[3]);
  }
  return total;
}

module.exports = { sleep, freePorts, requireProgram, spawnGroup, stopGroup, killGroups, waitFor, get, metricSum };
