// Worker loops (issue 15): Game Carrier's threading rules under load, on 4
// loops, with the stress adapter (tests/adapters/stress.c); gcs -w and
// --route in quick mode.
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

after(() => h.killAll());
const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-threads-'));

// Bounded for ASan and ThreadSanitizer on 2 shared cores (a few seconds
// under either).
const KEEP = 24; // durable clients, open from start to shutdown
const VICTIMS = 1500; // clients that come and go
const WAVE = 100; // victims open at once

// 'p', or 'timeout' after 'ms' (the timer does not outlive it).
async function within(p, ms) {
  let timer;
  const t = new Promise((r) => { timer = setTimeout(() => r('timeout'), ms); });
  try { return await Promise.race([p, t]); } finally { clearTimeout(timer); }
}

async function until(pred, what, tries = 400, ms = 25) {
  for (let i = 0; i < tries; i++) {
    if (pred()) return;
    await h.sleep(ms);
  }
  throw new Error('timed out waiting for ' + what);
}

// A client of the stress adapter that checks everything it receives: the
// first message is "hello <id> <worker>"; every "d <to> <sender> <seq>"
// names this client and continues that sender's sequence (1, 2, 3... with
// no gap: one sender's messages keep their order and what is lost after a
// close is a tail); every broadcast "b <sender> <ids>" lists this client.
function client(port, role, errors) {
  return new Promise((resolve, reject) => {
    const ws = new h.WebSocket(`ws://127.0.0.1:${port}/?role=${role}`);
    ws.id = 0;
    ws.last = new Map(); // sender -> last seq seen
    ws.broadcasts = 0;
    ws.other = [];
    ws.closed = new Promise((r) => ws.on('close', (code) => r(code)));
    const bad = (what, msg) => {
      if (errors.length < 20) errors.push(`${role} ${ws.id}: ${what}: "${msg}"`);
      else errors.push('...');
    };
    ws.on('message', (d) => {
      const msg = d.toString();
      const f = msg.split(' ');
      if (!ws.id) {
        if (f[0] !== 'hello') return bad('first message is not hello', msg);
        ws.id = Number(f[1]);
        ws.worker = Number(f[2]);
        ws.emit('hello');
        return;
      }
      if (f[0] === 'd') {
        const to = Number(f[1]);
        const sender = Number(f[2]);
        const seq = Number(f[3]);
        if (to !== ws.id) return bad('misdelivered', msg);
        const want = (ws.last.get(sender) || 0) + 1;
        if (seq !== want) return bad(`out of order or lost (wanted seq ${want})`, msg);
        ws.last.set(sender, seq);
      } else if (f[0] === 'b') {
        if (!f[2].split(',').map(Number).includes(ws.id)) return bad('misdelivered broadcast', msg);
        ws.broadcasts++;
      } else {
        ws.other.push(msg);
      }
    });
    ws.once('hello', () => resolve(ws));
    ws.on('error', (e) => reject(e));
    ws.on('unexpected-response', (req, res) => reject(new Error('HTTP ' + res.statusCode)));
  });
}

const send = (ws, text) => { if (ws.readyState === h.WebSocket.OPEN) ws.send(text, () => {}); };

// A victim says a few things (each makes the adapter send to and close
// other connections, most of them another loop's), then leaves, cleanly or
// not, unless someone closed it first.
async function victim(port, errors) {
  let ws;
  try {
    ws = await client(port, 'victim', errors);
  } catch (e) {
    errors.push(`a victim did not connect: ${e.message}`);
    return;
  }
  ws.on('error', () => {}); // a DROP from another thread resets it
  for (let k = 1; k <= 4; k++) {
    send(ws, `p ${ws.id} ${k}`);
    await h.sleep(5 + Math.floor(Math.random() * 20));
  }
  if (Math.random() < 0.25) ws.terminate();
  else ws.close();
  await within(ws.closed, 10000);
}

function summary(text) {
  const m = text.match(/stress: (connects=.*)\n/);
  if (!m) return null;
  return Object.fromEntries(m[1].split(' ').map((kv) => kv.split('=')).map(([k, v]) => [k, Number(v)]));
}

test('4 loops: adapters send to and close each other\'s connections from every thread; nothing lost, nothing misdelivered, one on_disconnect each', { timeout: 170000 }, async () => {
  const dir = tmp();
  const report = path.join(dir, 'report.json');
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'stress',
                 apps: [{ name: 'stress', type_name: 'stress', file_name: report }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'stress' }],
    logging: { level: 'NORMAL' },
    threading: { worker_count: 4 },
    close_drain_ms: 10000,
  });
  await until(() => /4 worker loops running/.test(gcs.stderrText), '"4 worker loops running"');
  const port = gcs.port;
  const errors = [];

  const ctl = await client(port, 'ctl', errors);
  const keep = [];
  for (let i = 0; i < KEEP; i++) keep.push(await client(port, 'keep', errors));
  for (const ws of keep) ws.on('error', (e) => errors.push(`keep ${ws.id}: ${e.message}`));
  // The durable clients speak all along: each message makes its worker
  // send to others.
  let churning = true;
  const chatter = (async () => {
    for (let n = 1; churning; n++) {
      for (const ws of keep) send(ws, `p ${ws.id} ${n}`);
      await h.sleep(50);
    }
  })();

  let opened = 1 + KEEP;
  for (let done = 0; done < VICTIMS; done += WAVE) {
    const wave = [];
    for (let i = 0; i < WAVE && done + i < VICTIMS; i++) wave.push(victim(port, errors));
    opened += wave.length;
    await Promise.all(wave);
  }
  churning = false;
  await chatter;

  // The worker threads stop sending; the adapter's threads go on until
  // application_stop (connections are still open there: what they sent
  // must arrive before the close).
  send(ctl, 'quiesce');
  await until(() => ctl.other.length > 0, 'the answer to quiesce');
  assert.deepStrictEqual(ctl.other, ['quiesced']);
  await h.sleep(300);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText.slice(-4000));
  const codes = await Promise.all(keep.map((ws) => within(ws.closed, 10000)));
  assert.deepStrictEqual(codes, keep.map(() => 1000), 'every durable client closed NORMAL at shutdown');

  const s = summary(gcs.stderrText);
  assert.ok(s, 'the adapter\'s summary line:\n' + gcs.stderrText.slice(-4000));
  const line = gcs.stderrText.match(/stress: connects=.*/)[0];
  console.log(line);
  // Exactly one on_disconnect per accepted on_connect, and every client
  // this test opened was accepted.
  assert.strictEqual(s.connects, opened, line);
  assert.strictEqual(s.disconnects, opened, line);
  for (const k of ['misdelivered', 'events_concurrent_same_conn', 'stale_accepted', 'wrong_worker',
                   'after_disconnect', 'double_disconnect', 'refused', 'api_wrong', 'keep_failed']) {
    assert.strictEqual(s[k], 0, `${k}: ${line}`);
  }
  assert.deepStrictEqual(errors, [], 'what the clients received');
  // The load did what it is for: stale handles were tried (EINVAL), sends
  // crossed loops, victims were closed by others, timers fired, the
  // adapter's own threads worked, all 4 loops served clients.
  assert.ok(s.stale_einval > 0, line);
  assert.ok(s.cross_sends > 0 && s.closes > 0 && s.timers_fired > 0 && s.bcasts > 0, line);
  assert.ok(s.thread_ops > 0 && s.posts > 0 && s.posts_ran > 0, line);
  assert.strictEqual(s.workers_seen, 4, line);
  assert.strictEqual(s.counter, s.counted, 'counterIncrement from every thread: ' + line);
  // on_message_sent once per message accepted for a durable client.
  assert.strictEqual(s.keep_reported, s.keep_sent, line);

  // Nothing lost: each durable client got, from each sender, every message
  // the adapter sent it with return 0 (the clients checked the order).
  const r = JSON.parse(fs.readFileSync(report, 'utf8'));
  assert.strictEqual(Object.keys(r.keep).length, KEEP);
  let total = 0;
  for (const ws of keep) {
    const want = r.keep[String(ws.id)];
    assert.ok(want, `durable client ${ws.id} in the report`);
    const got = want.map((_, sender) => ws.last.get(sender) || 0);
    assert.deepStrictEqual(got, want, `durable client ${ws.id}: last seq per sender`);
    total += want.reduce((a, b) => a + b, 0);
  }
  // Workers and the adapter's threads both sent to durable clients.
  const bySender = r.keep[String(keep[0].id)].map((_, s) => keep.reduce((a, ws) => a + (ws.last.get(s) || 0), 0));
  assert.ok(bySender.slice(0, r.workers).some((n) => n > 0), 'workers sent: ' + bySender);
  assert.ok(bySender.slice(r.workers).every((n) => n > 0), 'every own thread sent: ' + bySender);
  assert.ok(total > 0);
  for (const ws of keep) ws.terminate();
  ctl.terminate();
});

// Quick mode: -w N and --route.
const SCRIPT = 'tests/e2e/scripts/spin_rooms.lua'; // sends "worker <gc.worker.id>" first

test('gcs -w 2 script.lua runs 2 worker loops; -w 0 and -w 65 are a bad command line', async () => {
  const gcs = await h.startGcs({ args: ['-w', '2', SCRIPT, '-p', '0', '-a', '127.0.0.1'] });
  await until(() => /N: 2 worker loops running\n/.test(gcs.stderrText), '"2 worker loops running"');
  const ws = await h.connect(gcs.port, '/');
  assert.match((await h.received(ws, 1))[0], /^worker [01]$/);
  ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  for (const n of ['0', '65', 'two']) {
    const bad = await h.startGcs({ args: [SCRIPT, '-w', n, '-p', '0'] }, { wait: false });
    assert.strictEqual(await bad.exited, 2, bad.stderrText);
    assert.match(bad.stderrText, new RegExp(`gcs: -w: bad number of workers "${n}" \\(1\\.\\.64\\)`));
    assert.doesNotMatch(bad.stderrText, /listening on/);
  }
});

test('gcs --route query.room -w 2: the clients of one room share a worker, rooms use both', async () => {
  const gcs = await h.startGcs({ args: [SCRIPT, '--route', 'query.room', '-w', '2', '-p', '0', '-a', '127.0.0.1'] });
  const workerOf = async (ws) => {
    const m = /^worker (\d+)$/.exec((await h.received(ws, 1))[0] || '');
    assert.ok(m, 'the first message names the worker');
    return Number(m[1]);
  };
  const clients = [];
  const seen = new Set();
  for (let r = 0; r < 16; r++) {
    const a = await h.connect(gcs.port, `/?room=r${r}&name=a`);
    const b = await h.connect(gcs.port, `/?name=b&room=r${r}`);
    clients.push(a, b);
    const wa = await workerOf(a);
    assert.strictEqual(await workerOf(b), wa, `room r${r}`);
    seen.add(wa);
  }
  assert.deepStrictEqual([...seen].sort(), [0, 1], 'rooms are spread over both workers');
  for (const ws of clients) ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});
