// make soak: minutes of mixed traffic against one gcs (native echo adapter,
// or scripts/echo.lua with SOAK_ADAPTER=lua)
// — well-behaved clients, flooders, clients that never read, clients that
// vanish mid-frame — then checks that the well-behaved ones lost nothing,
// reports their latency, and that gcs's RSS came back near its baseline.
// Not part of CI (it runs for minutes); SOAK_SECONDS sets the length.
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const h = require('../e2e/lib/harness');

const SECONDS = Number(process.env.SOAK_SECONDS || 120);
const GOOD = 200, FLOOD = 20, MUTE = 20, VANISH_PER_SEC = 50;

const rss = (pid) => {
  const m = /VmRSS:\s+(\d+) kB/.exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
};

function frame(payload) {
  const data = Buffer.from(payload);
  const key = Buffer.from([9, 8, 7, 6]);
  const head = data.length < 126 ? Buffer.from([0x82, 0x80 | data.length])
    : Buffer.from([0x82, 0x80 | 126, data.length >> 8, data.length & 0xff]);
  return Buffer.concat([head, key, Buffer.from(data.map((b, i) => b ^ key[i % 4]))]);
}

const raws = new Set();
function rawClient(port, onUp) {
  const s = net.connect(port, '127.0.0.1', () => s.write(h.upgradeRequest('/')));
  raws.add(s);
  s.on('close', () => raws.delete(s));
  s.on('error', () => {});
  s.once('data', () => onUp(s));
  return s;
}

(async () => {
  const gcs = await h.startGcs({
    // SOAK_ADAPTER=lua: the same traffic against scripts/echo.lua.
    adapters: [process.env.SOAK_ADAPTER === 'lua'
      ? { type: 'lua', apps: [{ name: 'echo', file_name: path.join(h.SRC, 'scripts', 'echo.lua') }] }
      : { type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'echo' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, app: 'echo' }],
    logging: { level: 'ERR' },
    conn_critical: { msg_per_second: 2000, output_queue_size: 2000 },
    // SOAK_LUA_TIME_LIMIT_MS=16: the Lua watchdog ticks every 2 ms of CPU,
    // so its signal lands all over the host's code under load.
    ...(process.env.SOAK_LUA_TIME_LIMIT_MS
      ? { lua: { time_limit_ms: Number(process.env.SOAK_LUA_TIME_LIMIT_MS) } } : {}),
  });
  const port = gcs.port;
  await h.sleep(300);
  const baseline = rss(gcs.pid);
  const end = Date.now() + SECONDS * 1000;
  const lat = [];
  let sent = 0, echoed = 0, lost = 0;

  // Well-behaved: one message every 50 ms each, echo checked and timed.
  const good = await Promise.all(Array.from({ length: GOOD }, () => h.connect(port)));
  for (const ws of good) {
    ws.pending = new Map();
    ws.on('message', (d) => {
      const t = ws.pending.get(d.toString());
      if (t !== undefined) { lat.push(Date.now() - t); ws.pending.delete(d.toString()); echoed++; }
    });
  }
  const goodTimer = setInterval(() => {
    for (const [i, ws] of good.entries()) {
      const m = `g${i}-${sent++}`;
      ws.pending.set(m, Date.now());
      ws.send(m);
    }
  }, 50);

  // Flooders: as fast as the socket takes it (dropped at RED msg_per_second).
  const flood = () => rawClient(port, (s) => {
    const burst = Buffer.concat(Array.from({ length: 500 }, () => frame('flood')));
    const pump = () => { if (Date.now() < end && !s.destroyed) { s.write(burst); setImmediate(pump); } };
    pump();
    s.on('close', () => { if (Date.now() < end) flood(); });
  });
  for (let i = 0; i < FLOOD; i++) flood();

  // Mute: send big messages, never read (dropped at the output queue limit).
  const mute = () => rawClient(port, (s) => {
    s.pause();
    const big = frame(Buffer.alloc(60000, 1));
    const pump = () => { if (Date.now() < end && !s.destroyed) { s.write(big); setTimeout(pump, 5); } };
    pump();
    s.on('close', () => { if (Date.now() < end) mute(); });
  });
  for (let i = 0; i < MUTE; i++) mute();

  // Vanishers: half a frame, then gone.
  const vanishTimer = setInterval(() => {
    for (let i = 0; i < VANISH_PER_SEC / 10; i++) {
      rawClient(port, (s) => { s.write(frame(Buffer.alloc(1000)).subarray(0, 500)); s.destroy(); });
    }
  }, 100);

  let peak = baseline;
  const rssTimer = setInterval(() => { peak = Math.max(peak, rss(gcs.pid)); }, 500);
  await h.sleep(SECONDS * 1000);
  clearInterval(goodTimer);
  clearInterval(vanishTimer);
  await h.sleep(2000); // the last echoes, the last drops
  for (const ws of good) lost += ws.pending.size;
  good.forEach((ws) => ws.close());
  for (const s of raws) s.destroy();
  await h.sleep(7000); // gcs hands freed memory back every 5 s
  clearInterval(rssTimer);
  const after = rss(gcs.pid);
  lat.sort((a, b) => a - b);
  const q = (p) => lat[Math.min(lat.length - 1, Math.floor(lat.length * p))];
  const code = await h.stopGcs(gcs);
  h.killAll();
  const report = {
    seconds: SECONDS, good_clients: GOOD, flooders: FLOOD, mute: MUTE, vanish_per_s: VANISH_PER_SEC,
    sent, echoed, lost,
    latency_ms: { p50: q(0.5), p99: q(0.99), p999: q(0.999), max: lat[lat.length - 1] },
    rss_kb: { baseline, peak, after }, exit: code,
  };
  console.log(JSON.stringify(report, null, 2));
  const ok = lost === 0 && code === 0 && after < baseline + 16 * 1024;
  console.log(ok ? 'soak: OK' : 'soak: FAILED');
  process.exit(ok ? 0 : 1);
})();
