// Shared helpers of the end-to-end tests: start gcs on a free port with a
// config, wait for it, stop it, read the recorder's event log, talk raw TCP.
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const WebSocket = require('ws');

const GCS = process.env.GCS;
const BUILD = process.env.GC_BUILD_DIR;
const SRC = process.env.GC_SOURCE_DIR || path.resolve(__dirname, '../../..');

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.listen(0, '127.0.0.1', () => {
      const p = s.address().port;
      s.close(() => resolve(p));
    });
    s.on('error', reject);
  });
}

async function waitForPort(port, proc) {
  for (let i = 0; i < 200; i++) {
    if (proc && proc.exitCode !== null) throw new Error('gcs exited: ' + proc.stderrText);
    const ok = await new Promise((resolve) => {
      const c = net.connect(port, '127.0.0.1', () => { c.destroy(); resolve(true); });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await sleep(50);
  }
  throw new Error('gcs did not listen on ' + port);
}

const running = new Set();

// Starts gcs. 'cfg' is a config object (written to a temp file) or
// { args: [...] } for a command line of its own; 'ulimit' (e.g. '-Sn 256')
// is applied by a shell that then execs gcs (same pid).
async function startGcs(cfg, { port, wait = true, ulimit } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-e2e-'));
  let args = cfg.args;
  if (!args) {
    const file = path.join(dir, 'gcs.json');
    fs.writeFileSync(file, JSON.stringify(cfg, null, 2));
    args = ['-C', file];
  }
  const proc = ulimit
    ? spawn('sh', ['-c', `ulimit ${ulimit} && exec "$0" "$@"`, GCS, ...args], { cwd: SRC })
    : spawn(GCS, args, { cwd: SRC });
  proc.stderrText = '';
  proc.stderr.on('data', (d) => { proc.stderrText += d; });
  proc.stdout.on('data', () => {});
  proc.exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve(code === null ? sig : code)));
  proc.dir = dir;
  running.add(proc);
  if (wait && port) await waitForPort(port, proc);
  return proc;
}

async function stopGcs(proc, signal = 'SIGTERM') {
  if (proc.exitCode === null) proc.kill(signal);
  let timer;
  const timeout = new Promise((r) => { timer = setTimeout(() => r('timeout'), 15000); });
  const code = await Promise.race([proc.exited, timeout]);
  clearTimeout(timer);
  running.delete(proc);
  return code;
}

function killAll() {
  for (const p of running) if (p.exitCode === null) p.kill('SIGKILL');
  running.clear();
}

// A config serving the recorder adapter, writing events to <dir>/events.log.
function recorderConfig(port, dir, extra = {}) {
  const log = path.join(dir, 'events.log');
  return {
    log,
    cfg: {
      adapters: [{ type: 'native', dir: BUILD, name: 'recorder',
                   apps: [{ name: 'rec', type_name: 'recorder', file_name: log }] }],
      vhosts: [{ ip: '127.0.0.1', port, protocol: 'ws', app: 'rec' }],
      logging: { level: 'NORMAL' },
      close_drain_ms: 2000,
      ...extra,
    },
  };
}

function events(log) {
  try {
    return fs.readFileSync(log, 'utf8').split('\n').filter(Boolean);
  } catch {
    return [];
  }
}

// Polls until 'pred(events)' holds (bounded), then returns the events.
async function waitEvents(log, pred, what = 'events', tries = 200) {
  for (let i = 0; i < tries; i++) {
    const ev = events(log);
    if (pred(ev)) return ev;
    await sleep(25);
  }
  throw new Error('timed out waiting for ' + what + ':\n' + events(log).join('\n'));
}

function connect(port, pathName = '/') {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}${pathName}`);
    ws.received = [];
    ws.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (d) => ws.received.push(d));
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
    ws.on('unexpected-response', (req, res) => reject(Object.assign(new Error('HTTP ' + res.statusCode), { status: res.statusCode })));
  });
}

// Waits until ws has 'n' messages (bounded).
async function received(ws, n) {
  for (let i = 0; i < 400 && ws.received.length < n; i++) await sleep(10);
  return ws.received.map((b) => b.toString());
}

// Sends raw bytes and collects everything until the server closes.
function rawExchange(port, bytes, { timeout = 5000 } = {}) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    const timer = setTimeout(() => { s.destroy(); reject(new Error('server did not close')); }, timeout);
    s.on('data', (d) => chunks.push(d));
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve(Buffer.concat(chunks).toString('latin1')); });
  });
}

function upgradeRequest(pathName = '/', extra = '') {
  return `GET ${pathName} HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\n` +
    `Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n` +
    `Sec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

module.exports = {
  GCS, BUILD, SRC, sleep, freePort, startGcs, stopGcs, killAll, recorderConfig,
  events, waitEvents, connect, received, rawExchange, upgradeRequest, WebSocket,
};
