// bench/loadgen, make bench's client: every figure in bench/RESULTS.md
// rests on its claim that every echo is checked byte for byte. An echo
// whose frame arrives in two reads is compared piece by piece where it
// lies (bench/loadgen_wire.c), so these tests cut frames on purpose: a
// WebSocket echo server written here (not the ws package, whose writes
// cannot be cut where a test wants) sends one echo per connection in two
// writes 40 ms apart, with or without a flipped byte, and the load
// generator must count exactly the wrong echoes, and nothing when none is
// wrong. Then the load generator against gcs itself: no mismatch.
const { test, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const h = require('./lib/harness');

const LOADGEN = path.join(h.BUILD, 'bench', 'loadgen');

after(() => h.killAll());

// The echo of message CUT of each connection goes out in two writes, the
// first ending SPLIT bytes into the frame; FLIP, when set, is the payload
// byte flipped in it. Frames are parsed and unmasked here, one at a time.
function cuttingServer({ cut = 10, split, flip }) {
  const server = net.createServer((sock) => {
    sock.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let open = false;
    let n = 0;
    let held = null; // output queued while a cut echo's second half waits
    const send = (b) => (held ? held.push(b) : sock.write(b));
    sock.on('error', () => {});
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (!open) {
        const end = buf.indexOf('\r\n\r\n');
        if (end < 0) return;
        const key = /Sec-WebSocket-Key: *(\S+)/i.exec(buf.subarray(0, end).toString())[1];
        const accept = crypto.createHash('sha1')
          .update(key + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
        sock.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n' +
                   `Connection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
        buf = buf.subarray(end + 4);
        open = true;
      }
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        }
        assert.ok(len < 65536 && (buf[1] & 0x80), 'a masked frame under 64 KiB');
        if (buf.length < off + 4 + len) return;
        const mask = buf.subarray(off, off + 4);
        const payload = Buffer.from(buf.subarray(off + 4, off + 4 + len));
        for (let i = 0; i < len; i++) payload[i] ^= mask[i & 3];
        const op = buf[0] & 0x0f;
        buf = buf.subarray(off + 4 + len);
        if (op === 8) {
          sock.end();
          return;
        }
        const hdr = len < 126 ? Buffer.from([0x80 | op, len])
          : Buffer.from([0x80 | op, 126, len >> 8, len & 0xff]);
        const frame = Buffer.concat([hdr, payload]);
        if (n++ !== cut) {
          send(frame);
          continue;
        }
        if (flip !== undefined) frame[hdr.length + flip] ^= 1;
        send(frame.subarray(0, split));
        held = [frame.subarray(split)];
        setTimeout(() => {
          const out = held;
          held = null;
          if (!sock.destroyed) out.forEach((b) => sock.write(b));
        }, 40);
      }
    });
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

// One loadgen echo run: its JSON report line.
function loadgen(port, size, { conns = 2, window = 4, duration = 0.6 } = {}) {
  return new Promise((resolve, reject) => {
    const p = spawn(LOADGEN, ['--port', String(port), '--mode', 'echo', '--size', String(size),
      '--conns', String(conns), '--window', String(window), '--warmup', '0',
      '--duration', String(duration)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 30000);
    p.on('close', (code) => {
      clearTimeout(timer);
      const last = out.trim().split('\n').pop();
      try {
        resolve({ code, report: JSON.parse(last), stderr: err });
      } catch {
        reject(new Error(`loadgen exited ${code}: ${out}\n${err}`));
      }
    });
  });
}

test('the load generator is built with the tests', () => {
  assert.ok(fs.existsSync(LOADGEN), LOADGEN);
});

const cases = [
  // size, where the echo is cut (bytes into its frame), flipped payload byte
  { what: '16 KiB echo cut mid-payload, a byte flipped before the cut', size: 16384, split: 8000, flip: 100 },
  { what: '16 KiB echo cut mid-payload, a byte flipped after the cut', size: 16384, split: 8000, flip: 16380 },
  { what: '16 KiB echo cut inside its header, a byte flipped', size: 16384, split: 3, flip: 9000 },
  { what: '32 B echo cut mid-payload, a byte flipped after the cut', size: 32, split: 20, flip: 30 },
];
for (const c of cases) {
  test(`loadgen counts a wrong echo: ${c.what}`, async () => {
    const server = await cuttingServer(c);
    try {
      const { report } = await loadgen(server.address().port, c.size);
      // One wrong echo per connection, each named: the two connections.
      assert.strictEqual(report.mismatches, 2, JSON.stringify(report));
      assert.match(report.first_error, /conn \d: echo 10 differs/, JSON.stringify(report));
    } finally {
      server.close();
    }
  });
}

for (const c of [{ size: 16384, split: 8000 }, { size: 16384, split: 2 }, { size: 32, split: 20 }]) {
  test(`loadgen takes a cut echo that is right (${c.size} B, cut ${c.split} bytes in)`, async () => {
    const server = await cuttingServer(c);
    try {
      const { code, report } = await loadgen(server.address().port, c.size);
      assert.strictEqual(code, 0, JSON.stringify(report));
      assert.strictEqual(report.mismatches, 0, JSON.stringify(report));
      assert.strictEqual(report.errors, 0, JSON.stringify(report));
      // Past the cut echo (message 10 of each), on both connections.
      assert.ok(report.messages > 2 * 11, JSON.stringify(report));
    } finally {
      server.close();
    }
  });
}

test('loadgen against gcs: every echo right at 32 B, 1 KiB and 16 KiB', async () => {
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'e' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'e' }],
  });
  for (const size of [32, 1024, 16384]) {
    const { report } = await loadgen(gcs.port, size, { conns: 8, window: 16, duration: 0.5 });
    assert.strictEqual(report.mismatches, 0, `${size}: ${JSON.stringify(report)}`);
    assert.strictEqual(report.errors, 0, `${size}: ${JSON.stringify(report)}`);
    assert.ok(report.messages > 100, `${size}: ${JSON.stringify(report)}`);
  }
  await h.stopGcs(gcs);
});
