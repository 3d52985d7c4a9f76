// The batched send (host/uring.c) and the ring's receives
// (host/uring_recv.c): with io_uring (the default) every connection's
// output of a loop turn goes to the kernel in one submission, and open
// connections are read through multishot receives; "io_uring": false sends
// with a write() and reads with a read() each. Both must deliver every
// echo intact and in order, including to a client that stops reading while
// large messages are sent to it (partial sends, then background writes;
// its reads stopped, then started again), and to one that floods (its
// reads go over to libuv's bounded share, and come back); /metrics says
// which way the sends and reads went.
const { test, after } = require('node:test');
const assert = require('node:assert');
const path = require('node:path');
const h = require('./lib/harness');
const { adminPort, get, sum } = require('./lib/admin');

after(() => h.killAll());

function config(extra) {
  return {
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'e' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'e' }],
    admin: { ip: '127.0.0.1', port: 0 },
    ...extra,
  };
}

const refused = /io_uring unavailable \(([^)]*)\)/;
// A kernel with io_uring but without incrementally consumed buffers
// (before Linux 6.12) sends through the ring and reads with read().
const noRingReads = /io_uring: ([^\n]*): connections are read with read\(\)/;

// 50 clients, 20 binary messages each of different sizes, all in flight.
async function echoes(port) {
  const clients = await Promise.all(Array.from({ length: 50 }, () => h.connect(port)));
  const sent = clients.map((ws, i) => Array.from({ length: 20 }, (_, k) => {
    const b = Buffer.alloc(1 + ((i * 37 + k * 101) % 3000));
    for (let j = 0; j < b.length; j++) b[j] = (i + k + j) & 0xff;
    ws.send(b);
    return b;
  }));
  for (const [i, ws] of clients.entries()) {
    for (let t = 0; t < 500 && ws.received.length < 20; t++) await h.sleep(10);
    assert.strictEqual(ws.received.length, 20, `client ${i}`);
    ws.received.forEach((b, k) => assert.ok(sent[i][k].equals(b), `client ${i} message ${k}`));
  }
  return clients;
}

async function sends(gcs) {
  const text = (await get(await adminPort(gcs), '/metrics')).body;
  return { uring: sum(text, 'gcs_socket_sends_total', 'via="io_uring"'),
           write: sum(text, 'gcs_socket_sends_total', 'via="write"'),
           ringReads: sum(text, 'gcs_socket_reads_total', 'via="io_uring"'),
           reads: sum(text, 'gcs_socket_reads_total', 'via="read"') };
}

test('with io_uring every echo comes back, and the sends went through the ring', async (t) => {
  const gcs = await h.startGcs(config({}));
  const clients = await echoes(gcs.port);
  const m = refused.exec(gcs.stderrText);
  if (m) {
    t.skip(`this kernel refuses io_uring (${m[1]}): gcs fell back to write()`);
  } else {
    const s = await sends(gcs);
    // Each handshake's answer and each turn's echoes: one batched send a
    // connection, none alone (no close frame was sent yet).
    assert.ok(s.uring >= 100, JSON.stringify(s));
    assert.strictEqual(s.write, 0, JSON.stringify(s));
    const r = noRingReads.exec(gcs.stderrText);
    if (r) {
      t.diagnostic(`reads stayed with read(): ${r[1]}`);
    } else {
      // Each upgrade request is read with read(); once open, each client's
      // messages come through its receive: at least one completion each.
      assert.ok(s.ringReads >= 50, JSON.stringify(s));
      assert.ok(s.reads >= 50 && s.reads < 100, JSON.stringify(s));
    }
  }
  clients.forEach((ws) => ws.close(1000));
  await Promise.all(clients.map((ws) => ws.closed));
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('"io_uring": false sends with write(), every echo intact', async () => {
  const gcs = await h.startGcs(config({ io_uring: false }));
  const clients = await echoes(gcs.port);
  const s = await sends(gcs);
  assert.strictEqual(s.uring, 0, JSON.stringify(s));
  assert.ok(s.write >= 100, JSON.stringify(s));
  assert.strictEqual(s.ringReads, 0, JSON.stringify(s));
  assert.ok(s.reads >= 100, JSON.stringify(s));
  assert.doesNotMatch(gcs.stderrText, refused);
  assert.doesNotMatch(gcs.stderrText, noRingReads);
  clients.forEach((ws) => ws.close(1000));
  await Promise.all(clients.map((ws) => ws.closed));
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

// As under Docker's default seccomp profile (tests/tools/deny_uring.c):
// io_uring_setup fails with EPERM. Two loops meet the refusal; one line
// says so, and the output goes out with write().
test('a kernel that refuses io_uring: one NOTICE line, every echo sent with write()', async () => {
  const gcs = await h.startGcs(config({ threading: { worker_count: 2 } }),
    { under: [path.join(h.BUILD, 'deny_uring')] });
  const clients = await echoes(gcs.port);
  const s = await sends(gcs);
  assert.strictEqual(s.uring, 0, JSON.stringify(s));
  assert.ok(s.write >= 100, JSON.stringify(s));
  assert.strictEqual(s.ringReads, 0, JSON.stringify(s));
  const lines = gcs.stderrText.match(/N: io_uring unavailable \(Operation not permitted\): output is sent with a write\(\) per connection\n/g) || [];
  assert.strictEqual(lines.length, 1, gcs.stderrText);
  clients.forEach((ws) => ws.close(1000));
  await Promise.all(clients.map((ws) => ws.closed));
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

for (const io_uring of [true, false]) {
  test(`a client that stops reading gets every large echo in order once it reads again (io_uring ${io_uring})`, async () => {
    const gcs = await h.startGcs(config({ io_uring }));
    const ws = await h.connect(gcs.port);
    const calm = await h.connect(gcs.port);
    ws._socket.pause(); // the server's sends fill the socket, then wait
    const sent = [];
    for (let k = 0; k < 16; k++) { // 8 MiB: more than loopback's buffers hold
      const b = Buffer.alloc(512 * 1024, k + 1);
      b.writeUInt32BE(k, 0);
      ws.send(b);
      sent.push(b);
      await h.sleep(10); // one message a turn: each is a send of its own
    }
    // Another client is served meanwhile.
    calm.send('still here');
    assert.deepStrictEqual(await h.received(calm, 1), ['still here']);
    assert.ok(ws.received.length < sent.length, 'the paused client read everything');
    ws._socket.resume();
    for (let t = 0; t < 1000 && ws.received.length < sent.length; t++) await h.sleep(10);
    assert.strictEqual(ws.received.length, sent.length);
    ws.received.forEach((b, k) => assert.ok(sent[k].equals(b), `message ${k}`));
    ws.close(1000);
    calm.close(1000);
    await Promise.all([ws.closed, calm.closed]);
    assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  });
}

// A client that sends 8 MiB at once brings more than a pass's share (64
// KiB): its receive is cancelled and it reads with libuv, a bounded share a
// turn; once reads leave its socket empty it is back on the ring. Every
// echo, before, during and after, comes back intact and in order, and
// another client is answered meanwhile.
test('a flooding client goes over to libuv reads and back, every echo in order', async (t) => {
  const gcs = await h.startGcs(config({}));
  if (refused.test(gcs.stderrText) || noRingReads.test(gcs.stderrText)) {
    t.skip('this kernel gives gcs no io_uring receives');
    await h.stopGcs(gcs);
    return;
  }
  const ws = await h.connect(gcs.port);
  const calm = await h.connect(gcs.port);
  const sent = [];
  const send = (b) => { ws.send(b); sent.push(b); };
  for (let k = 0; k < 4; k++) send(Buffer.from(`small ${k}`));
  for (let t0 = 0; t0 < 500 && ws.received.length < 4; t0++) await h.sleep(10);
  const before = await sends(gcs);
  for (let k = 0; k < 128; k++) { // 8 MiB in one go
    const b = Buffer.alloc(64 * 1024, k);
    b.writeUInt32BE(k, 0);
    send(b);
  }
  calm.send('meanwhile');
  assert.deepStrictEqual(await h.received(calm, 1), ['meanwhile']);
  for (let t0 = 0; t0 < 1000 && ws.received.length < sent.length; t0++) await h.sleep(10);
  const during = await sends(gcs);
  for (let k = 0; k < 16; k++) { // one at a time: a read each
    send(Buffer.from(`after ${k}`));
    for (let t0 = 0; t0 < 500 && ws.received.length < sent.length; t0++) await h.sleep(10);
  }
  const after = await sends(gcs);
  assert.strictEqual(ws.received.length, sent.length);
  ws.received.forEach((b, k) => assert.ok(sent[k].equals(Buffer.from(b)), `message ${k}`));
  // The flood was read with read(): many more reads than the two upgrades.
  assert.ok(during.reads - before.reads >= 8, JSON.stringify({ before, during }));
  // And the messages after it through the ring again, once 8 reads in a
  // row left its socket empty (transport_tcp.c's GC_RX_CALM_READS; some
  // may have come at the end of the flood, and one more if its last read
  // filled its share exactly).
  assert.ok(after.ringReads - during.ringReads >= 7, JSON.stringify({ during, after }));
  assert.ok(after.reads - during.reads <= 9, JSON.stringify({ during, after }));
  ws.close(1000);
  calm.close(1000);
  await Promise.all([ws.closed, calm.closed]);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});
