// What one client can make gcs hold: pongs it never reads, fragments,
// a message announced and never finished, output it never drains, the
// server-wide budget, and messages larger than the output queue's share.
// Each test names the connection it is about by its local port, as gcs
// logs it ("connection 127.0.0.1:PORT: ...").
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

const { frame, closeCode } = h;

after(() => h.killAll());

// gcs with the recorder adapter and 'extra' config keys.
async function server(extra) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-memory-'));
  const r = h.recorderConfig(0, dir, { keep_alive: { timeout: 0 }, ...extra });
  const gcs = await h.startGcs(r.cfg);
  return { port: gcs.port, gcs, log: r.log };
}

// A raw upgraded connection; s.buf collects what the server sends once
// reading is on, s.closedP resolves when the server closed it.
function raw(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => { s.me = s.localPort; s.write(h.upgradeRequest('/')); });
    s.buf = Buffer.alloc(0);
    let upgraded = false;
    s.closed = false;
    s.closedP = new Promise((r) => s.on('close', () => { s.closed = true; r(); }));
    s.on('error', () => {});
    s.on('data', (d) => {
      s.buf = Buffer.concat([s.buf, d]);
      if (upgraded) return;
      const end = s.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!s.buf.slice(0, 12).toString().startsWith('HTTP/1.1 101')) return reject(new Error(s.buf.toString()));
      upgraded = true;
      s.buf = s.buf.slice(end + 4);
      resolve(s);
    });
  });
}

// Waits (bounded) until gcs has logged a line matching 're'.
async function logged(gcs, re, ms = 10000) {
  for (let t = 0; t < ms && !re.test(gcs.stderrText); t += 25) await h.sleep(25);
  return gcs.stderrText.split('\n').find((l) => re.test(l));
}

// Resolves once the kernel took 'buf', or the socket closed.
function writeAll(s, buf) {
  return new Promise((resolve) => {
    if (s.closed || s.write(buf)) return resolve();
    s.once('drain', resolve);
    s.once('close', resolve);
  });
}

test('a client that pings and never reads the pongs is dropped as a non-reader', async () => {
  const { port, gcs } = await server({ conn_critical: { output_queue_size: 100 } });
  const s = await raw(port);
  s.pause(); // never reads: the pongs pile up in the kernel, then in gcs
  const me = s.me;
  const ping = frame(0x9, Buffer.alloc(125, 0x61));
  const batch = Buffer.concat(Array(256).fill(ping));
  // Bounded: 64 MiB of pings, far more than the kernel buffers and 100 pongs.
  for (let sent = 0; sent < 64 << 20 && !s.closed; sent += batch.length) await writeAll(s, batch);
  const line = await logged(gcs, new RegExp(`connection 127\\.0\\.0\\.1:${me}: output queue full .*does not read, dropped`));
  assert.ok(line, 'no output-queue line for this connection:\n' + gcs.stderrText);
  s.destroy();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('1-byte fragments are counted at what wslay holds for them: 1009 long before max_msg_size bytes', async () => {
  const { port, gcs } = await server({ conn_critical: { max_msg_size: 65536 } });
  const s = await raw(port);
  const me = s.me;
  // 2,000 one-byte fragments carry 2,000 bytes, but hold ~2,000 chunks
  // (~190 KB): over the 64 KiB limit.
  const frags = [frame(0x2, 'x', { fin: false })];
  for (let i = 0; i < 1999; i++) frags.push(frame(0x0, 'x', { fin: false }));
  s.write(Buffer.concat(frags));
  await Promise.race([s.closedP, h.sleep(5000)]);
  assert.strictEqual(closeCode(s.buf), 1009, 'no close 1009: ' + s.buf.length + ' bytes received');
  assert.ok(await logged(gcs, new RegExp(`127\\.0\\.0\\.1:${me}: fragmented message holding more than max_msg_size, closing with 1009`)),
    gcs.stderrText);
  s.destroy();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('a header announcing a payload over the limit is answered 1009 at once, with no payload byte', async () => {
  const { port, gcs } = await server({});
  const s = await raw(port);
  const me = s.me;
  s.write(frame(0x2, '', { announce: 2 ** 62 }).slice(0, 14)); // header and mask only
  await Promise.race([s.closedP, h.sleep(2000)]);
  assert.strictEqual(closeCode(s.buf), 1009, 'no close frame within 2 s');
  assert.ok(await logged(gcs, new RegExp(`127\\.0\\.0\\.1:${me}: message over max_msg_size announced, closing with 1009`)));
  s.destroy();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('a message started and never finished is dropped after message_timeout_ms', async () => {
  const { port, gcs } = await server({ message_timeout_ms: 1000 });
  const s = await raw(port);
  const me = s.me;
  // 60,000 bytes announced, 10 sent, then one byte a while: never done.
  // Held: the payload as wslay holds it, or the frame with its 8-byte
  // header as the fast lane stashes it.
  s.write(frame(0x2, Buffer.alloc(60000)).slice(0, 8 + 10));
  const t0 = Date.now();
  for (let i = 0; i < 40 && !s.closed; i++) { await h.sleep(100); if (i % 5 === 0) s.write(Buffer.from([0])); }
  assert.ok(s.closed, 'still open after 4 s');
  assert.ok(Date.now() - t0 >= 900, 'dropped before the bound');
  assert.ok(await logged(gcs, new RegExp(`127\\.0\\.0\\.1:${me}: message not completed within message_timeout_ms \\(1000 ms, 600(00|08) bytes held\\), dropped`)),
    gcs.stderrText);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('an output queue that never empties is dropped after send_timeout_ms', async () => {
  const { port, gcs } = await server({ send_timeout_ms: 1000 });
  const s = await raw(port);
  s.pause();
  const me = s.me;
  const big = frame(0x1, 'big 200000');
  // 200 KB a request, 20 a second: the kernel fills, then gcs's queue grows
  // (well under its 20 MiB cap before the time bound).
  for (let i = 0; i < 100 && !s.closed; i++) { s.write(big); await h.sleep(50); }
  assert.ok(s.closed, 'still open after 5 s of not reading');
  assert.ok(await logged(gcs, new RegExp(`127\\.0\\.0\\.1:${me}: output queue not emptied within send_timeout_ms \\(1000 ms, \\d+ bytes\\): the client does not read, dropped`)),
    gcs.stderrText);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('past max_buffered_bytes the largest holder is dropped, and only it', async () => {
  const { port, gcs, log } = await server({ max_buffered_bytes: 4000000, send_timeout_ms: 0 });
  const hog = await raw(port);
  hog.pause();
  const small = await raw(port);
  small.pause();
  const req = frame(0x1, 'big 500000');
  // 'small' has a little queued; 'hog' asks until the server drops it.
  for (let i = 0; i < 4; i++) small.write(req);
  for (let i = 0; i < 200 && !hog.closed; i++) { hog.write(req); await h.sleep(20); }
  assert.ok(hog.closed, 'the largest holder was not dropped');
  const line = await logged(gcs, /holds \d+ bytes, the largest share of max_buffered_bytes \(4000000\): dropped/);
  assert.match(line, new RegExp(`connection 127\\.0\\.0\\.1:${hog.me}: `));
  assert.ok(!gcs.stderrText.includes(`127.0.0.1:${small.me}:`), gcs.stderrText);
  // The small holder still gets everything it asked for.
  small.resume();
  for (let i = 0; i < 200 && small.buf.length < 4 * 500010; i++) await h.sleep(25);
  assert.strictEqual(small.buf.length, 4 * 500010);
  assert.ok(!small.closed);
  small.destroy();
  assert.ok(h.events(log).length > 0);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('a message larger than 4 MiB is echoed; one over max_output_msg_size is refused and changes nothing', async () => {
  const { port, gcs, log } = await server({ conn_critical: { max_msg_size: 8 << 20 }, max_output_msg_size: 6 << 20 });
  const ws = await h.connect(port);
  const five = Buffer.alloc(5 << 20, 7);
  ws.send(five);
  for (let i = 0; i < 400 && ws.received.length < 1; i++) await h.sleep(25);
  assert.strictEqual(ws.received.length, 1, 'no echo of 5 MiB: ' + gcs.stderrText);
  assert.ok(ws.received[0].equals(five));
  ws.send('big 7000000');
  ws.send('after');
  await h.received(ws, 2);
  assert.strictEqual(ws.received[1].toString(), 'after');
  const ev = h.events(log);
  assert.ok(ev.includes('big_rc 1 90'), 'EMSGSIZE (90) expected:\n' + ev.join('\n'));
  assert.ok(!ev.some((l) => l.startsWith('echo_rc')), ev.join('\n'));
  assert.strictEqual(ws.readyState, h.WebSocket.OPEN);
  ws.close();
  await ws.closed;
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('max_connections counts connections still in their handshake', async () => {
  const { port, gcs } = await server({ max_connections: 3 });
  await h.sleep(300); // the harness's probe connection is gone by now
  const idle = [];
  for (let i = 0; i < 3; i++) {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => {});
    s.got = 0;
    s.on('data', (d) => { s.got += d.length; });
    await new Promise((r) => s.on('connect', r));
    idle.push(s);
  }
  await h.sleep(100);
  const answer = await h.rawExchange(port, h.upgradeRequest('/'));
  assert.match(answer, /^HTTP\/1\.1 503 /, gcs.stderrText);
  // The three that never sent a request were left alone.
  for (const s of idle) assert.strictEqual(s.got, 0);
  for (const s of idle) s.destroy();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});
