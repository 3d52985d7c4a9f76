// Hostile input over raw sockets: every malformed frame gets the RFC 6455
// close code for it, limits are enforced, other clients are unaffected.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

const { frame, closeCode } = h;

let port, gcs, log;
// A second server where nothing but the mechanism under test can end a
// client: keep-alive and send_timeout_ms off.
let quiet;
before(async () => {
  const q = h.recorderConfig(0, fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-quiet-')), {
    keep_alive: { timeout: 0 },
    send_timeout_ms: 0,
    close_drain_ms: 700,
    max_output_msg_size: 1048576,
    conn_critical: { output_queue_size: 100 },
    conn_notice: { output_queue_size: 3 }, // the recorder has no on_issue: logged
    logging: { level: 'NORMAL|INFO' },
  });
  quiet = await h.startGcs(q.cfg);
  quiet.log = q.log;
  const r = h.recorderConfig(0, fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-hostile-')), {
    handshake_timeout_ms: 500,
    max_connections: 50,
    keep_alive: { timeout: 1, interval: 1, retries: 1 },
    conn_critical: { max_msg_size: 65536, msg_per_second: 200, output_queue_size: 500 },
  });
  log = r.log;
  gcs = await h.startGcs(r.cfg);
  port = gcs.port;
});
after(async () => {
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  assert.strictEqual(await h.stopGcs(quiet), 0, quiet.stderrText);
  h.killAll();
});

// Opens a raw upgraded connection; resolves with helpers once the 101 is in.
function raw(pathName = '/', toPort = port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(toPort, '127.0.0.1', () => s.write(h.upgradeRequest(pathName)));
    let buf = Buffer.alloc(0);
    let upgraded = false;
    s.closedP = new Promise((r) => s.on('close', () => r(buf)));
    s.buf = () => buf;
    s.on('error', () => {});
    s.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!upgraded) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        if (!buf.slice(0, 12).toString().startsWith('HTTP/1.1 101')) return reject(new Error(buf.toString()));
        upgraded = true;
        buf = buf.slice(end + 4);
        resolve(s);
      }
    });
  });
}

async function expectClose(bytes, code, what) {
  const s = await raw('/' + what.replace(/\W+/g, '-'));
  const local = s.localPort;
  s.write(bytes);
  const buf = await s.closedP;
  assert.strictEqual(closeCode(buf), code, what);
  // Logged once, naming the client and the code.
  const re = new RegExp(`N: connection 127\\.0\\.0\\.1:${local}: .*closing with ${code}\n`, 'g');
  for (let i = 0; i < 40 && !re.test(gcs.stderrText); i++) await h.sleep(25);
  assert.strictEqual((gcs.stderrText.match(re) || []).length, 1, `${what}: one log line\n${gcs.stderrText}`);
}

const cases = [
  ['an unmasked client frame', frame(1, 'hi', { mask: false }), 1002],
  ['a reserved bit', frame(1, 'hi', { rsv: 0x40 }), 1002],
  ['a bad opcode', frame(3, 'hi'), 1002],
  ['invalid UTF-8 in text', frame(1, Buffer.from([0x68, 0xc3, 0x28])), 1007],
  ['a control frame over 125 bytes', frame(9, Buffer.alloc(126)), 1002],
  ['a fragmented control frame', frame(9, 'x', { fin: false }), 1002],
  ['a continuation without a start', frame(0, 'x'), 1002],
  ['a close with a bad code', frame(8, Buffer.from([0x03, 0xe7])), 1002],
  ['a message over max_msg_size', frame(2, Buffer.alloc(70000)), 1009],
];
for (const [what, bytes, code] of cases) {
  test(`${what} is closed with ${code}`, () => expectClose(bytes, code, what));
}

test('bytes after the close frame are ignored', async () => {
  const s = await raw('/after-close');
  s.write(Buffer.concat([frame(8, Buffer.from([0x03, 0xe8])), frame(1, 'late')]));
  const buf = await s.closedP;
  assert.strictEqual(closeCode(buf), 1000);
  await h.sleep(50);
  const ev = h.events(log);
  const id = ev.find((l) => l.includes(' /after-close ')).split(' ')[1];
  assert.ok(!ev.includes(`message ${id} 4`));
});

// Between frames an idle connection gives its wslay context back (host/
// ws_pool.h); partial frames and messages must survive any number of reads,
// also while other connections borrow contexts in between.
test('fragmented messages trickled one byte per read on two connections, pings between, arrive whole', async () => {
  async function trickle(name, text) {
    const s = await raw('/' + name);
    s.setNoDelay(true);
    const bytes = Buffer.concat([
      frame(1, text.subarray(0, 2), { fin: false }), frame(9, 'p'),
      frame(0, text.subarray(2, 9), { fin: false }), frame(0, text.subarray(9)),
    ]);
    for (const byte of bytes) {
      s.write(Buffer.from([byte]));
      await h.sleep(2);
    }
    s.write(frame(8, Buffer.from([0x03, 0xe8])));
    return s.closedP;
  }
  // The \u00e9 is split between two fragments.
  const texts = [Buffer.from('h\u00e9llo, trickled world'), Buffer.from('a second, longer trickled message')];
  const bufs = await Promise.all([trickle('trickle-a', texts[0]), trickle('trickle-b', texts[1])]);
  const ev = h.events(log);
  ['trickle-a', 'trickle-b'].forEach((name, i) => {
    const buf = bufs[i];
    assert.deepStrictEqual([buf[0], buf[1], buf[2]], [0x8a, 1, 0x70], `${name}: a pong with the ping payload first`);
    assert.strictEqual(closeCode(buf), 1000, name);
    const id = ev.find((l) => l.includes(` /${name} `)).split(' ')[1];
    assert.deepStrictEqual(ev.filter((l) => l.startsWith(`message ${id} `)), [`message ${id} ${texts[i].length}`], name);
  });
});

test('a slow handshake (slowloris) is cut at handshake_timeout_ms', async () => {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise((r) => s.on('connect', r));
  s.write('GET / HTTP/1.1\r\nHost: x\r\n');
  const t0 = Date.now();
  await new Promise((r) => s.on('close', r));
  const waited = Date.now() - t0;
  assert.ok(waited >= 400 && waited < 5000, `closed after ${waited} ms`);
});

test('a flood over msg_per_second RED is dropped; a calm client is not', async () => {
  const calm = await h.connect(port, '/calm');
  const s = await raw('/flood');
  const burst = Buffer.concat(Array.from({ length: 300 }, () => frame(2, 'x')));
  s.write(burst);
  await s.closedP;
  calm.send('still here');
  assert.deepStrictEqual(await h.received(calm, 1), ['still here']);
  const red = /msg_per_second \d+ over the RED limit 200, dropped/;
  assert.match(await h.waitStderr(gcs, red), red);
  calm.close();
});

// On the quiet server, so the output queue limit is the one thing that can
// end a client that does not read. 1 MB messages ("big", the recorder's
// command) fill the loopback buffers (a few MB) within a few of them, then
// the queue (byte bound: max_output_msg_size + 4 MiB) within a few more.
test('a client that never reads is dropped at the output queue limit', async () => {
  const calm = await h.connect(quiet.port, '/calm');
  const s = await raw('/mute', quiet.port);
  const local = s.localPort; // the server names the client by it
  s.pause(); // never read again: the kernel buffers fill, then the queue
  const id = h.events(quiet.log).find((l) => l.includes(' /mute ')).split(' ')[1];
  const refused = (e) => e.some((l) => l.startsWith(`big_rc ${id} `) && l !== `big_rc ${id} 0`);
  const answered = () => h.events(quiet.log).filter((l) => l.startsWith(`big_rc ${id} `)).length;
  for (let asked = 0; asked < 200 && !refused(h.events(quiet.log)); asked++) {
    s.write(frame(1, 'big 1000000'));
    // One request per loop turn of the server: each is flushed (and the
    // YELLOW limit looked at) before the next is read, however slow it is.
    for (let i = 0; i < 400 && answered() <= asked; i++) await h.sleep(5);
  }
  const ev = await h.waitEvents(quiet.log, (e) => refused(e) && e.includes(`disconnect ${id}`),
    'the mute client to be dropped', 400);
  // Queued until the kernel and the queue were full, then ENOBUFS (105)
  // for the one that did not fit, and nothing after it.
  const rcs = ev.filter((l) => l.startsWith(`big_rc ${id} `)).map((l) => Number(l.split(' ')[2]));
  assert.ok(rcs.length > 3, `${rcs.length} messages before the drop: the kernel took them all?`);
  assert.deepStrictEqual(rcs.slice(0, -1), rcs.slice(0, -1).map(() => 0), rcs.join(' '));
  assert.strictEqual(rcs[rcs.length - 1], 105 /* ENOBUFS */, rcs.join(' '));
  // Exactly one line, for this very connection, saying why.
  const line = new RegExp(`N: connection 127\\.0\\.0\\.1:${local}: output queue full ` +
    '\\((\\d+) messages, (\\d+) bytes\\): the client does not read, dropped\n', 'g');
  const lines = [...(await h.waitStderr(quiet, line)).matchAll(line)];
  assert.strictEqual(lines.length, 1, quiet.stderrText);
  assert.ok(Number(lines[0][2]) > 1048576 * 3, `dropped holding ${lines[0][2]} bytes`);
  // Before it, once, the YELLOW limit: reported while the write waited.
  const yellow = new RegExp(`I: connection 127\\.0\\.0\\.1:${local}: output_queue_size \\d+ over the YELLOW limit 3\n`, 'g');
  assert.strictEqual((quiet.stderrText.match(yellow) || []).length, 1, quiet.stderrText);
  assert.ok(quiet.stderrText.search(yellow) < quiet.stderrText.search(line), 'YELLOW first');
  assert.doesNotMatch(quiet.stderrText,
    new RegExp(`connection 127\\.0\\.0\\.1:${local}: (?!output queue full|output_queue_size \\d+ over the YELLOW)`));
  // The other client was not touched.
  calm.send('still here');
  assert.deepStrictEqual(await h.received(calm, 1), ['still here']);
  calm.close();
  s.destroy();
});

test('a NORMAL close the client never answers is dropped after close_drain_ms', async () => {
  const s = await raw('/no-answer', quiet.port);
  const local = s.localPort;
  const id = h.events(quiet.log).find((l) => l.includes(' /no-answer ')).split(' ')[1];
  let closeAt = 0;
  s.on('data', () => { if (!closeAt && closeCode(s.buf()) === 1000) closeAt = Date.now(); });
  s.write(frame(1, 'queue 3 normal')); // 3 messages, then a NORMAL close
  // It reads, but never sends its close frame.
  const buf = await Promise.race([s.closedP, h.sleep(5000).then(() => { throw new Error('not dropped in 5 s'); })]);
  const waited = Date.now() - closeAt;
  assert.strictEqual(closeCode(buf), 1000);
  assert.ok(closeAt && waited >= 600 && waited < 5000, `dropped ${waited} ms after the close frame`);
  await h.waitEvents(quiet.log, (e) => e.includes(`disconnect ${id}`), 'its on_disconnect');
  const line = new RegExp(`I: connection 127\\.0\\.0\\.1:${local}: close not completed in 700 ms, dropped\n`, 'g');
  assert.strictEqual(((await h.waitStderr(quiet, line)).match(line) || []).length, 1, quiet.stderrText);
});

test('a silent peer is pinged, then dropped (keep_alive)', async () => {
  const s = await raw('/silent');
  const t0 = Date.now();
  const buf = await s.closedP; // the raw client never answers pings
  const waited = Date.now() - t0;
  assert.ok(buf.length >= 2 && (buf[0] & 0x0f) === 9, 'got a ping first');
  assert.ok(waited >= 1500 && waited < 6000, `dropped after ${waited} ms`);
  const id = h.events(log).find((l) => l.includes(' /silent ')).split(' ')[1];
  await h.waitEvents(log, (e) => e.includes('disconnect ' + id), 'its on_disconnect');
});

test('max_connections: the next client gets 503', async () => {
  const clients = [];
  const ev = h.events(log);
  void ev;
  for (let i = 0; i < 50; i++) {
    try { clients.push(await h.connect(port, '/fill' + i)); } catch (e) { break; }
  }
  await assert.rejects(h.connect(port, '/one-too-many'), (e) => e.status === 503);
  clients.forEach((c) => c.terminate());
});
