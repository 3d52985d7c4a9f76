#!/usr/bin/env node
// publish.js - the publish → delivery load generator of `make bench`
// (bench/run.sh, rows "publish"), against gcs running bench/pubsub.lua.
//
//   node bench/publish.js --pub-port A --sub-port B [--pubs 4] [--subs 2]
//     [--window 16] [--size 64] [--warmup 1] [--duration 4]
//     [--label L] [--pids name=PID,name=PID]
//
// --subs subscribers connect to port B (/?role=sub), then --pubs publishers
// to port A (/?role=pub); A and B are two gcs sharing a Redis (cross-host)
// or the same gcs (in-process). Each publisher keeps --window messages in
// flight: a message is done when every subscriber has it, and then the
// publisher sends its next. A message carries its publisher, its sequence
// number and the time it was sent (this process's monotonic clock, which
// the subscribers read too), padded to --size bytes; each subscriber checks
// that every publisher's messages arrive complete and in order, and records
// send → delivery for each delivery. Counted over --duration seconds after
// --warmup: messages/s (messages done: delivered to every subscriber),
// deliveries/s, latency p50/p99/p99.9 of deliveries, and with --pids the
// CPU each named process used meanwhile (% of one CPU, from /proc), this
// process's own, and the rest of the machine's (others_cpu_pct).
//
// Output: one JSON line on stdout; exit status 1 when nothing was measured.
const fs = require('node:fs');
const WebSocket = require('ws');

function args() {
  const o = { pubPort: 0, subPort: 0, pubs: 4, subs: 2, window: 16, size: 64, warmup: 1, duration: 4,
    label: '', pids: '', setup: 20 };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i += 2) {
    const k = a[i].replace(/^--/, '').replace(/-([a-z])/g, (m, c) => c.toUpperCase());
    if (!(k in o) || a[i + 1] === undefined) throw new Error(`bad option ${a[i]}`);
    o[k] = typeof o[k] === 'string' ? a[i + 1] : Number(a[i + 1]);
  }
  if (!o.pubPort || !o.subPort) throw new Error('--pub-port and --sub-port are needed');
  return o;
}

const o = args();
const T0 = process.hrtime.bigint();
const nowNs = () => Number(process.hrtime.bigint() - T0);

// ---- CPU ---------------------------------------------------------------------
const HZ = 100; // USER_HZ on Linux
function procTicks(pid) {
  try {
    const s = fs.readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return Number(f[11]) + Number(f[12]); // utime + stime
  } catch {
    return null;
  }
}
function machineTicks() {
  const f = fs.readFileSync('/proc/stat', 'utf8').split('\n')[0].trim().split(/\s+/).slice(1).map(Number);
  return f[0] + f[1] + f[2] + f[5] + f[6] + f[7]; // user nice system irq softirq steal
}
const pids = o.pids ? o.pids.split(',').map((x) => x.split('=')).map(([n, p]) => ({ name: n, pid: Number(p) })) : [];
function cpuSnap() {
  return { t: nowNs(), self: process.cpuUsage(), machine: machineTicks(), procs: pids.map((x) => procTicks(x.pid)) };
}

// ---- latency -------------------------------------------------------------------
let lat = new Float64Array(1 << 20);
let nLat = 0;
function record(ns) {
  if (nLat === lat.length) {
    const b = new Float64Array(lat.length * 2);
    b.set(lat);
    lat = b;
  }
  lat[nLat++] = ns;
}
function pct(sorted, q) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

// ---- clients ---------------------------------------------------------------------
let measuring = false;
let done = 0; // messages done while measuring
let deliveries = 0;
const errors = [];
const pad = 'x'.repeat(Math.max(0, o.size));

function open(port, role) {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`ws://127.0.0.1:${port}/?role=${role}`, { perMessageDeflate: false });
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

const pubs = [];
function message(p) {
  const head = `${p.i}:${p.seq}:${nowNs()}:`;
  p.pending.set(p.seq, 0);
  p.seq++;
  return head + pad.slice(head.length);
}

function onDelivery(sub, data) {
  const text = data.toString();
  const f = text.split(':', 3);
  const [pi, seq, ts] = f.map(Number);
  const p = pubs[pi];
  const headLen = f.join(':').length + 1;
  if (!p || Number.isNaN(ts) || text.length !== Math.max(o.size, headLen)) {
    if (errors.length < 5) errors.push(`bad message: ${text.slice(0, 80)}`);
    return;
  }
  if (seq !== sub.next[pi]) {
    if (errors.length < 5) errors.push(`subscriber ${sub.i}: publisher ${pi} message ${seq}, expected ${sub.next[pi]}`);
  }
  sub.next[pi] = seq + 1;
  if (measuring) {
    deliveries++;
    record(nowNs() - ts);
  }
  const n = p.pending.get(seq) + 1;
  if (n < o.subs) {
    p.pending.set(seq, n);
    return;
  }
  p.pending.delete(seq);
  if (measuring) done++;
  if (!stopping) p.ws.send(message(p));
}

let stopping = false;

async function main() {
  const subs = [];
  for (let i = 0; i < o.subs; i++) {
    const ws = await open(o.subPort, 'sub');
    const sub = { i, ws, next: new Array(o.pubs).fill(0) };
    ws.on('message', (d) => onDelivery(sub, d));
    subs.push(sub);
  }
  for (let i = 0; i < o.pubs; i++) {
    const ws = await open(o.pubPort, 'pub');
    const p = { i, ws, seq: 0, pending: new Map() };
    ws.on('message', (d) => { if (errors.length < 5) errors.push(`publisher ${i}: ${String(d).slice(0, 80)}`); });
    pubs.push(p);
  }
  for (const ws of [...subs.map((s) => s.ws), ...pubs.map((p) => p.ws)]) {
    ws.on('close', (code) => { if (!stopping && errors.length < 5) errors.push(`closed ${code}`); });
  }
  for (const p of pubs) for (let k = 0; k < o.window; k++) p.ws.send(message(p));
  await new Promise((r) => setTimeout(r, o.warmup * 1000));
  const a = cpuSnap();
  measuring = true;
  await new Promise((r) => setTimeout(r, o.duration * 1000));
  measuring = false;
  const b = cpuSnap();
  stopping = true;
  const secs = (b.t - a.t) / 1e9;
  const sorted = lat.subarray(0, nLat).sort();
  const us = (v) => (v === null ? null : Math.round(v / 100) / 10);
  const cpuPct = (t) => Math.round((t / HZ / secs) * 1000) / 10;
  const self = (b.self.user + b.self.system - a.self.user - a.self.system) / 1e6;
  const procs = {};
  let known = (self * HZ);
  pids.forEach((x, k) => {
    if (a.procs[k] !== null && b.procs[k] !== null) {
      procs[x.name] = cpuPct(b.procs[k] - a.procs[k]);
      known += b.procs[k] - a.procs[k];
    }
  });
  const out = {
    label: o.label, pubs: o.pubs, subs: o.subs, window: o.window, size: o.size, seconds: Math.round(secs * 1000) / 1000,
    msgs_per_s: Math.round(done / secs), deliveries_per_s: Math.round(deliveries / secs),
    lat_p50_us: us(pct(sorted, 0.5)), lat_p99_us: us(pct(sorted, 0.99)), lat_p999_us: us(pct(sorted, 0.999)),
    cpu_pct: procs, loadgen_cpu_pct: Math.round((self / secs) * 1000) / 10,
    others_cpu_pct: cpuPct(Math.max(0, b.machine - a.machine - known)),
    errors: errors.length,
  };
  if (errors.length) out.error = errors.join('; ');
  process.stdout.write(JSON.stringify(out) + '\n');
  for (const ws of [...subs.map((s) => s.ws), ...pubs.map((p) => p.ws)]) ws.terminate();
  process.exit(done > 0 ? 0 : 1);
}

setTimeout(() => {
  process.stdout.write(JSON.stringify({ label: o.label, error: 'no result within the time bound' }) + '\n');
  process.exit(1);
}, (o.setup + o.warmup + o.duration + 10) * 1000).unref();

main().catch((e) => {
  process.stdout.write(JSON.stringify({ label: o.label, error: String(e.message || e) }) + '\n');
  process.exit(1);
});
