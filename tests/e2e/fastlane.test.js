// The receive path's two lanes (host/conn_fast.c and wslay behind it):
// complete masked data frames are unmasked a word at a time and handed to
// the adapter at once; anything else goes to wslay from that frame on, and
// the fast lane takes over again at the next frame boundary. Raw frames
// over a real socket to gcs with the native echo adapter; what comes back
// is parsed frame by frame and compared byte for byte, in order.
const { test, after } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const h = require('./lib/harness');

after(() => h.killAll());

async function serve() {
  return h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo',
                 apps: [{ name: 'echo', type_name: 'echo', file_name: 'echo' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'echo' }],
    conn_critical: { max_msg_size: 70000 },
    keep_alive: { timeout: 0 },
    logging: { level: 'NORMAL' },
  });
}

// A raw upgraded connection: s.buf collects what gcs sends after the 101.
function raw(port) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(h.upgradeRequest('/')));
    s.buf = Buffer.alloc(0);
    s.closedP = new Promise((r) => s.on('close', r));
    let upgraded = false;
    s.on('error', () => {});
    s.on('data', (d) => {
      s.buf = Buffer.concat([s.buf, d]);
      if (upgraded) return;
      const end = s.buf.indexOf('\r\n\r\n');
      if (end < 0) return;
      if (!s.buf.subarray(0, 12).toString().startsWith('HTTP/1.1 101')) {
        reject(new Error(s.buf.toString()));
        return;
      }
      upgraded = true;
      s.buf = s.buf.subarray(end + 4);
      resolve(s);
    });
  });
}

// The server's frames in 'buf' (unmasked): [{ op, data }], complete ones only.
function frames(buf) {
  const out = [];
  let i = 0;
  while (i + 2 <= buf.length) {
    let len = buf[i + 1] & 0x7f;
    let off = i + 2;
    if (len === 126) {
      if (off + 2 > buf.length) break;
      len = buf.readUInt16BE(off);
      off += 2;
    } else if (len === 127) {
      if (off + 8 > buf.length) break;
      len = Number(buf.readBigUInt64BE(off));
      off += 8;
    }
    if (off + len > buf.length) break;
    out.push({ op: buf[i] & 0x0f, data: buf.subarray(off, off + len) });
    i = off + len;
  }
  return out;
}

async function until(s, n) {
  for (let t = 0; t < 400 && frames(s.buf).length < n; t++) await h.sleep(10);
  return frames(s.buf);
}

// Payloads whose lengths end the unmasking in each of its loops (64-byte
// blocks, 16, 8, single bytes) and cross each header form (7, 16, 64 bits).
const SIZES = [0, 1, 3, 7, 8, 9, 15, 16, 17, 31, 63, 64, 65, 79, 125, 126, 127,
  1000, 1024, 4099, 65535, 65536, 65537];
const payload = (n, seed) => Buffer.from(Array.from({ length: n }, (_, i) => (i * 31 + seed * 7 + 5) & 0xff));

test('complete frames of every size in one write come back byte for byte, in order', async () => {
  const gcs = await serve();
  const s = await raw(gcs.port);
  const sent = SIZES.map((n, k) => payload(n, k));
  s.write(Buffer.concat(sent.map((p) => h.frame(2, p))));
  const got = await until(s, sent.length);
  assert.strictEqual(got.length, sent.length, `got ${got.length} of ${sent.length} echoes`);
  got.forEach((f, k) => {
    assert.strictEqual(f.op, 2);
    assert.ok(f.data.equals(sent[k]), `echo ${k} (${sent[k].length} B) differs`);
  });
  s.destroy();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('a frame cut by the end of a write (in its header, its mask, its payload), then a ping, text and binary: every echo in order, one pong', async () => {
  const gcs = await serve();
  const s = await raw(gcs.port);
  const a = [payload(10, 1), payload(300, 2)];
  // Where the frame is cut inside its payload, its masked bytes read as a
  // whole empty frame (82 80 and a zero mask): a lane that took up again in
  // the middle of a frame would echo an extra empty message.
  const cut = payload(3000, 3);
  const key = [0x12, 0x34, 0x56, 0x78]; // h.frame's mask
  [0x82, 0x80, 0, 0, 0, 0].forEach((b, j) => { cut[1492 + j] = b ^ key[(1492 + j) % 4]; });
  const cutFrame = h.frame(2, cut);
  assert.deepStrictEqual([...cutFrame.subarray(1500, 1502)], [0x82, 0x80]);
  // Cut inside the header (after 1 byte), inside the mask, and inside the payload.
  for (const at of [1, 5, 1500]) {
    s.buf = Buffer.alloc(0);
    s.write(Buffer.concat([...a.map((p) => h.frame(2, p)), cutFrame.subarray(0, at)]));
    await until(s, a.length);
    s.write(Buffer.concat([cutFrame.subarray(at), h.frame(9, 'pi'), h.frame(1, 'text é'),
      h.frame(2, payload(40, 4))]));
    const all = await until(s, 6);
    // A pong may go out before or after the echoes queued with it (wslay
    // sends control frames at the flush): only the data frames keep order.
    const pongs = all.filter((f) => f.op === 10);
    assert.deepStrictEqual(pongs.map((f) => f.data.toString()), ['pi'], `cut at ${at}: one pong`);
    const got = all.filter((f) => f.op !== 10);
    assert.deepStrictEqual(got.map((f) => f.op), [2, 2, 2, 2, 2], `cut at ${at}`);
    assert.ok(got[0].data.equals(a[0]) && got[1].data.equals(a[1]), `cut at ${at}: first echoes`);
    assert.ok(got[2].data.equals(cut), `cut at ${at}: the cut frame`);
    assert.strictEqual(got[3].data.toString(), 'text é');
    assert.ok(got[4].data.equals(payload(40, 4)), `cut at ${at}: the last echo`);
  }
  s.destroy();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

// A lane frame cut by the end of a read is stashed whole-sized and taken
// when the reads complete it: sent a few bytes at a time (separate reads),
// each comes back whole and in order, the next frames too.
test('frames sent in small pieces (stashed until whole) come back byte for byte, in order', async () => {
  const gcs = await serve();
  const s = await raw(gcs.port);
  s.setNoDelay(true);
  const sent = [payload(40000, 5), payload(65536, 6), payload(200, 7)];
  const wire = Buffer.concat(sent.map((p) => h.frame(2, p)));
  // The first cut right after the first frame's header, then pieces that
  // end anywhere (in a payload, across a frame boundary, in a header).
  const cuts = [8, 9, 4000, 4001, 40007, 40009, 40020, 90000, wire.length - 3, wire.length];
  let from = 0;
  for (const to of cuts) {
    s.write(wire.subarray(from, to));
    from = to;
    await h.sleep(15); // each piece its own read
  }
  const got = await until(s, sent.length);
  assert.strictEqual(got.length, sent.length, `got ${got.length} of ${sent.length} echoes`);
  got.forEach((f, k) => assert.ok(f.op === 2 && f.data.equals(sent[k]), `echo ${k} (${sent[k].length} B) differs`));
  s.destroy();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('a stashed text frame that is not UTF-8 closes with 1007 once whole; nothing after it is echoed', async () => {
  const gcs = await serve();
  const s = await raw(gcs.port);
  s.setNoDelay(true);
  // F7 D6 is not UTF-8, but masked again by h.frame's key at these offsets
  // (34 56) it reads C3 80, which is: wslay must get the bytes as they came.
  const bad = Buffer.alloc(5000, 0x61);
  bad[4001] = 0xf7;
  bad[4002] = 0xd6;
  const wire = h.frame(1, bad);
  s.write(Buffer.concat([h.frame(2, 'ok'), wire.subarray(0, 100)]));
  await until(s, 1);
  s.write(wire.subarray(100, 3000));
  await h.sleep(15);
  assert.strictEqual(frames(s.buf).length, 1, 'nothing before the frame is whole');
  s.write(Buffer.concat([wire.subarray(3000), h.frame(2, 'never')]));
  await Promise.race([s.closedP, h.sleep(5000)]);
  const got = frames(s.buf);
  assert.deepStrictEqual(got.map((f) => f.op), [2, 8]);
  assert.strictEqual(got[0].data.toString(), 'ok');
  assert.strictEqual(got[1].data.readUInt16BE(0), 1007);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

// A socket that keeps the read buffer full reads one share per loop turn
// (host/transport_tcp.c: libuv's read loop ended by an empty buffer, the
// socket left in epoll): nothing of it is lost or reordered, and another
// connection is served meanwhile.
test('a connection that floods is read a share per turn: every frame echoed in order, another client served', async () => {
  const gcs = await serve();
  const flood = await raw(gcs.port);
  const calm = await raw(gcs.port);
  const N = 3000; // 3,000 frames of 1,000-1,999 B: about 4.5 MB in one go
  const sent = Array.from({ length: N }, (_, k) => payload(1000 + (k % 1000), k));
  flood.write(Buffer.concat(sent.map((p) => h.frame(2, p))));
  for (let k = 0; k < 10; k++) { // one at a time, each waits for its echo
    calm.write(h.frame(2, `calm ${k}`));
    const got = await until(calm, k + 1);
    assert.strictEqual(got.length, k + 1, `calm echo ${k} came`);
    assert.strictEqual(got[k].data.toString(), `calm ${k}`);
  }
  let got = [];
  for (let t = 0; t < 1000 && got.length < N; t++) { await h.sleep(10); got = frames(flood.buf); }
  assert.strictEqual(got.length, N, `got ${got.length} of ${N} echoes`);
  got.forEach((f, k) => assert.ok(f.data.equals(sent[k]), `flood echo ${k} differs`));
  flood.destroy();
  calm.destroy();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('fragments between complete frames are joined; the frames after them come back in order', async () => {
  const gcs = await serve();
  const s = await raw(gcs.port);
  s.write(Buffer.concat([h.frame(2, 'one'), h.frame(2, 'fr', { fin: false }), h.frame(0, 'ag', { fin: false }),
    h.frame(9, 'p'), h.frame(0, 'ment'), h.frame(2, 'two')]));
  const all = await until(s, 4);
  assert.deepStrictEqual(all.filter((f) => f.op === 10).map((f) => f.data.toString()), ['p']);
  assert.deepStrictEqual(all.filter((f) => f.op !== 10).map((f) => [f.op, f.data.toString()]),
    [[2, 'one'], [2, 'fragment'], [2, 'two']]);
  s.destroy();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

// What wslay refuses stays refused: the fast lane hands such frames over.
const refusals = [
  ['text that is not UTF-8', h.frame(1, Buffer.from([0x61, 0xff, 0x62])), 1007],
  ['an unmasked client frame', h.frame(2, 'raw', { mask: false }), 1002],
  ['an RSV bit without an extension', h.frame(2, 'rsv', { rsv: 0x40 }), 1002],
  ['a reserved opcode', h.frame(3, 'op'), 1002],
  ['a continuation with no message begun', h.frame(0, 'cont'), 1002],
  ['a message over max_msg_size', h.frame(2, Buffer.alloc(70001)), 1009],
];
for (const [what, bad, code] of refusals) {
  test(`after good frames in the same write, ${what} closes with ${code}`, async () => {
    const gcs = await serve();
    const s = await raw(gcs.port);
    s.write(Buffer.concat([h.frame(2, 'ok1'), h.frame(2, 'ok2'), bad, h.frame(2, 'never')]));
    await s.closedP;
    const got = frames(s.buf);
    assert.deepStrictEqual(got.slice(0, 2).map((f) => f.data.toString()), ['ok1', 'ok2']);
    const close = got[2];
    assert.ok(close && close.op === 8, `a close frame after the two echoes: ${JSON.stringify(got.map((f) => f.op))}`);
    assert.strictEqual(close.data.readUInt16BE(0), code);
    assert.strictEqual(got.length, 3, 'nothing after the close frame (the frame after the bad one is not echoed)');
    assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  });
}
