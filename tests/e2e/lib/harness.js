// Shared helpers of the end-to-end tests: start gcs with a config on a port
// the kernel chooses (vhost port 0; the port is read back from gcs's
// "listening on ws://IP:PORT" lines), wait for it, stop it, read the
// recorder's event log, talk raw TCP.
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

// The "listening on ws://IP:PORT" lines gcs logged so far, in order.
function listening(text) {
  return [...text.matchAll(/listening on ws:\/\/(.*):(\d+)\n/g)]
    .map((m) => ({ ip: m[1], port: Number(m[2]) }));
}

// Waits (bounded) for 'n' listening lines; gcs binds before it logs them,
// so a client may connect as soon as they are there.
async function waitListening(proc, n) {
  for (let i = 0; i < 400; i++) {
    const l = listening(proc.stderrText);
    if (l.length >= n) return l;
    if (proc.exitCode !== null) break;
    await sleep(25);
  }
  throw new Error(`gcs did not log ${n} listening line(s):\n` + proc.stderrText);
}

// Waits (bounded) until gcs's stderr matches 're', then returns it: log
// lines are written by the log's writer thread, a moment after what they
// report (a close, an answer) may already have reached the client.
async function waitStderr(proc, re) {
  for (let i = 0; i < 500 && proc.stderrText.search(re) < 0; i++) await sleep(10);
  return proc.stderrText;
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

// GC_WORKERS=N (make tsan sets 4): every gcs started here runs N worker
// loops, unless the test chose a worker_count itself: a config without a
// "threading" key gets "threading": { "worker_count": N }, a command line
// without -w gets "-w N" in front (a config file given with -C keeps the
// worker_count it names).
const WORKERS = process.env.GC_WORKERS ? Number(process.env.GC_WORKERS) : 0;

function withWorkers(cfg) {
  if (!WORKERS || cfg.threading) return cfg;
  return { ...cfg, threading: { worker_count: WORKERS } };
}

function argsWithWorkers(args) {
  if (!WORKERS || args.includes('-w')) return args;
  const c = args.indexOf('-C');
  if (c >= 0 && c + 1 < args.length) {
    try {
      if (JSON.parse(fs.readFileSync(path.resolve(SRC, args[c + 1]), 'utf8')).threading) return args;
    } catch { /* not readable JSON: gcs says so itself */ }
  }
  return ['-w', String(WORKERS), ...args];
}

// Starts gcs. 'cfg' is a config object (written to a temp file) or
// { args: [...] } for a command line of its own; 'ulimit' (e.g. '-Sn 256')
// is applied by a shell that then execs gcs (same pid); 'under' is a
// command (an array) that execs gcs with its own arguments after it.
// Waits until gcs listens: with a vhost port 0 in the config (or "-p 0"),
// from its listening lines: proc.port is the first listener's port,
// proc.listeners every { ip, port } in config order (vhosts with port 0 on
// one ip share one port). With { port } (a fixed port), by connecting to it.
async function startGcs(cfg, { port, wait = true, ulimit, under } = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-e2e-'));
  let args = cfg.args && argsWithWorkers(cfg.args);
  let listeners = 0; // how many listening lines to wait for
  if (!args) {
    const file = path.join(dir, 'gcs.json');
    fs.writeFileSync(file, JSON.stringify(withWorkers(cfg), null, 2));
    args = ['-C', file];
    const vh = cfg.vhosts || [];
    if (vh.some((v) => v.port === 0)) listeners = new Set(vh.map((v) => `${v.ip} ${v.port}`)).size;
  } else if (args.some((a, i) => a === '-p' && args[i + 1] === '0')) {
    listeners = 1;
  }
  const proc = ulimit
    ? spawn('sh', ['-c', `ulimit ${ulimit} && exec "$0" "$@"`, GCS, ...args], { cwd: SRC })
    : under
      ? spawn(under[0], [...under.slice(1), GCS, ...args], { cwd: SRC })
      : spawn(GCS, args, { cwd: SRC });
  proc.stderrText = '';
  proc.stderr.on('data', (d) => { proc.stderrText += d; });
  proc.stdout.on('data', () => {});
  proc.exited = new Promise((resolve) => proc.on('exit', (code, sig) => resolve(code === null ? sig : code)));
  proc.dir = dir;
  running.add(proc);
  if (wait && port) {
    await waitForPort(port, proc);
    proc.port = port;
  } else if (wait && listeners) {
    proc.listeners = await waitListening(proc, listeners);
    proc.port = proc.listeners[0].port;
  }
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

// A config serving the recorder adapter, writing events to <dir>/events.log;
// port 0 (startGcs then sets proc.port) unless a test needs a fixed one.
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

// A client frame: FIN/opcode byte, the payload masked (unless mask is
// false); 'announce' writes another payload length than the payload's.
function frame(opcode, payload, { fin = true, mask = true, rsv = 0, announce } = {}) {
  const data = Buffer.from(payload);
  const len = announce === undefined ? data.length : announce;
  const m = mask ? 0x80 : 0;
  const head = [(fin ? 0x80 : 0) | rsv | opcode];
  if (len < 126) head.push(m | len);
  else if (len < 65536) head.push(m | 126, len >> 8, len & 0xff);
  else {
    const b = Buffer.alloc(8);
    b.writeBigUInt64BE(BigInt(len));
    head.push(m | 127, ...b);
  }
  if (!mask) return Buffer.concat([Buffer.from(head), data]);
  const key = Buffer.from([0x12, 0x34, 0x56, 0x78]);
  const masked = Buffer.from(data.map((x, i) => x ^ key[i % 4]));
  return Buffer.concat([Buffer.from(head), key, masked]);
}

// The close code in the first close frame of what the server sent, or null.
function closeCode(buf) {
  let i = 0;
  while (i + 2 <= buf.length) {
    const op = buf[i] & 0x0f;
    let len = buf[i + 1] & 0x7f;
    let off = i + 2;
    if (len === 126) { len = buf.readUInt16BE(off); off += 2; } else if (len === 127) { len = Number(buf.readBigUInt64BE(off)); off += 8; }
    if (op === 8) return len >= 2 ? buf.readUInt16BE(off) : 1005;
    i = off + len;
  }
  return null;
}

// Under ThreadSanitizer (make tsan) a signal reaches a thread only when it
// calls into the runtime, so a loop spinning in an adapter or in Lua never
// sees it: tests of what such a signal stops are skipped there.
const NO_ASYNC_SIGNALS = process.env.GC_TSAN === '1'
  ? 'ThreadSanitizer holds signals back from a thread that spins' : false;

module.exports = {
  freePort: require('./redis').freePort,
  NO_ASYNC_SIGNALS, WORKERS, frame, closeCode,
  GCS, BUILD, SRC, sleep, listening, waitStderr, startGcs, stopGcs, killAll, recorderConfig,
  events, waitEvents, connect, received, rawExchange, upgradeRequest, WebSocket,
};
