// wss (issue 16): a vhost with "protocol": "wss" serves WebSocket over TLS
// with the keys of ssl_keys_path. Certificates are made here with the
// openssl command (lib/tls.js); clients are npm ws trusting the test CA,
// node's tls, raw sockets and openssl s_client.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const t = require('./lib/tls');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-wss-'));
let ca;
let srv; // PREFIX of the server's keys
after(() => {
  h.killAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});
before(() => {
  ca = t.makeCa(tmp);
  srv = t.makeServerCert(tmp, 'srv');
});

function wssConfig(extra = {}, vhost = {}) {
  const file = t.echoScript(tmp);
  return {
    adapters: [{ type: 'lua', apps: [{ name: 'echo', file_name: file }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'wss', app: 'echo', ...vhost }],
    ssl_keys_path: srv,
    logging: { level: 'VERBOSE' },
    close_drain_ms: 3000,
    ...extra,
  };
}

test('npm ws over wss: echo, info.protocol, 1 MiB messages, many messages, close codes', async () => {
  const gcs = await t.startWss(wssConfig());
  const ws = await t.connectWss(gcs.port, ca);
  ws.send('cmd:proto');
  ws.send('hello');
  assert.deepStrictEqual(await h.received(ws, 2), ['proto wss', 'hello']);
  // 1 MiB each way, twice, bytes intact.
  const big = crypto.randomBytes(1 << 20);
  ws.send(big);
  ws.send(big);
  for (let i = 0; i < 1000 && ws.received.length < 4; i++) await h.sleep(10);
  assert.strictEqual(ws.received.length, 4);
  assert.ok(Buffer.from(ws.received[2]).equals(big) && Buffer.from(ws.received[3]).equals(big));
  // Many small messages come back in order.
  ws.received = [];
  for (let i = 0; i < 3000; i++) ws.send('m' + i);
  for (let i = 0; i < 1000 && ws.received.length < 3000; i++) await h.sleep(10);
  assert.deepStrictEqual(ws.received.map(String), Array.from({ length: 3000 }, (_, i) => 'm' + i));
  // The client's close code reaches the server, which answers it.
  ws.close(4321, 'bye');
  assert.strictEqual((await ws.closed).code, 4321);
  // localhost (the DNS name of the certificate) works as well.
  const ws2 = await t.connectWss(gcs.port, ca, '/', 'localhost');
  ws2.send('x');
  assert.deepStrictEqual(await h.received(ws2, 1), ['x']);
  ws2.terminate();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('a NORMAL close drains everything queued, then the client sees the close code', async () => {
  const gcs = await t.startWss(wssConfig());
  const ws = await t.connectWss(gcs.port, ca);
  ws.send('cmd:flood 2000 4005');
  const closed = await ws.closed;
  assert.strictEqual(closed.code, 4005);
  assert.strictEqual(closed.reason, 'flooded');
  assert.strictEqual(ws.received.length, 2000);
  assert.ok(ws.received.every((m, i) => String(m).startsWith((i + 1) + ':')));
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

// Bytes on a raw socket until the server closes (bounded).
function rawClose(port, bytes) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => s.write(bytes));
    const timer = setTimeout(() => { s.destroy(); reject(new Error('not closed')); }, 8000);
    let got = Buffer.alloc(0);
    s.on('data', (d) => { got = Buffer.concat([got, d]); });
    s.on('error', () => {});
    s.on('close', () => { clearTimeout(timer); resolve(got); });
  });
}

test('garbage, a plain HTTP request and TLS 1.1 are refused with one line each', async () => {
  const gcs = await t.startWss(wssConfig());
  const garbage = await rawClose(gcs.port, Buffer.from('\x00\x01\x02garbage garbage garbage\r\n\r\n', 'latin1'));
  assert.ok(!garbage.toString('latin1').includes('HTTP/1.1'));
  const plain = await rawClose(gcs.port, h.upgradeRequest());
  assert.ok(!plain.toString('latin1').includes('101'), 'no upgrade over plain HTTP');
  const old = await t.sClient(gcs.port, ['-tls1_1']);
  assert.match(old.out, /alert protocol version/, old.out);
  assert.match(old.out, /Cipher is \(NONE\)/, old.out);
  const log = await h.waitStderr(gcs, /unsupported protocol/);
  assert.match(log, /TLS handshake failed \(a plain HTTP request on a wss port\), closed/);
  assert.match(log, /TLS handshake failed \((wrong version number|packet length too long|[^)]+)\), closed/);
  assert.strictEqual((log.match(/TLS handshake failed/g) || []).length, 3, log);
  // Still serving.
  const ws = await t.connectWss(gcs.port, ca);
  ws.send('ok');
  assert.deepStrictEqual(await h.received(ws, 1), ['ok']);
  ws.terminate();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('openssl s_client: TLS 1.2 and 1.3 with ALPN http/1.1, resumed sessions; renegotiation refused', async () => {
  const gcs = await t.startWss(wssConfig());
  for (const v of ['-tls1_2', '-tls1_3']) {
    const r = await t.sClient(gcs.port, [v, '-CAfile', ca, '-alpn', 'http/1.1', '-servername', 'localhost']);
    assert.match(r.out, new RegExp('Protocol\\s*:\\s*TLSv1\\.' + v.slice(-1)), r.out);
    assert.match(r.out, /ALPN protocol: http\/1\.1/, r.out);
    assert.match(r.out, /Verify return code: 0 \(ok\)/, r.out);
  }
  // Session resumption by ticket, TLS 1.3 and 1.2: the second connection
  // of a client that kept the first's session is "Reused".
  for (const v of ['-tls1_3', '-tls1_2']) {
    const sess = path.join(tmp, 'sess' + v + '.pem');
    const first = await t.sClient(gcs.port, [v, '-CAfile', ca, '-sess_out', sess]);
    assert.match(first.out, /^New, TLSv1\.[23]/m, first.out);
    const again = await t.sClient(gcs.port, [v, '-CAfile', ca, '-sess_in', sess]);
    assert.match(again.out, /^Reused, TLSv1\.[23]/m, again.out);
  }
  // A client offering only another protocol is refused (RFC 7301).
  const h2 = await t.sClient(gcs.port, ['-tls1_3', '-alpn', 'h2']);
  assert.doesNotMatch(h2.out, /ALPN protocol: h2/);
  assert.match(h2.out, /no application protocol|alert/i, h2.out);
  // "R" asks s_client to renegotiate (TLS 1.2): the server answers with a
  // no_renegotiation alert, which ends the client's attempt.
  const reneg = await t.sClient(gcs.port, ['-tls1_2', '-CAfile', ca], { input: 'R\n', holdMs: 700 });
  assert.match(reneg.out, /RENEGOTIATING/, reneg.out);
  assert.match(reneg.out, /:no renegotiation:/, reneg.out);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('SIGHUP: new keys for new connections, open ones go on; bad new keys keep the old', async () => {
  const keys = path.join(tmp, 'hup');
  fs.copyFileSync(srv + '.key', keys + '.key');
  fs.copyFileSync(srv + '.cert', keys + '.cert');
  const gcs = await t.startWss(wssConfig({ ssl_keys_path: keys }));
  assert.strictEqual(await t.peerFingerprint(gcs.port, ca), t.fingerprint(srv + '.cert'));
  const ws = await t.connectWss(gcs.port, ca);
  ws.send('before');
  assert.deepStrictEqual(await h.received(ws, 1), ['before']);
  const next = t.makeServerCert(tmp, 'next');
  fs.copyFileSync(next + '.key', keys + '.key');
  fs.copyFileSync(next + '.cert', keys + '.cert');
  gcs.kill('SIGHUP');
  await h.waitStderr(gcs, /TLS keys .*hup\.\{key,cert\} reloaded/);
  assert.strictEqual(await t.peerFingerprint(gcs.port, ca), t.fingerprint(next + '.cert'));
  ws.send('after');
  assert.deepStrictEqual(await h.received(ws, 2), ['before', 'after']);
  // A key that does not match the certificate: one error, the keys stay.
  fs.copyFileSync(srv + '.key', keys + '.key');
  gcs.kill('SIGHUP');
  const log = await h.waitStderr(gcs, /hup\.key does not match the certificate/);
  assert.match(log, /E: ssl_keys_path: .*hup\.key does not match the certificate .*hup\.cert; new wss connections keep the keys loaded before/);
  assert.strictEqual(await t.peerFingerprint(gcs.port, ca), t.fingerprint(next + '.cert'));
  ws.send('still');
  assert.deepStrictEqual(await h.received(ws, 3), ['before', 'after', 'still']);
  ws.terminate();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('missing or mismatched key files stop the start with one line naming the file', async () => {
  const cases = [
    [path.join(tmp, 'nothing'), /cannot read .*nothing\.key: No such file or directory/],
    [null, /mismatch\.key does not match the certificate .*mismatch\.cert/],
  ];
  const mism = path.join(tmp, 'mismatch');
  fs.copyFileSync(path.join(tmp, 'ca.key'), mism + '.key');
  fs.copyFileSync(srv + '.cert', mism + '.cert');
  cases[1][0] = mism;
  for (const [prefix, re] of cases) {
    const gcs = await h.startGcs(wssConfig({}, { ssl_keys_path: prefix }), { wait: false });
    assert.strictEqual(await gcs.exited, 1, gcs.stderrText);
    const errs = gcs.stderrText.split('\n').filter((l) => /\bE: /.test(l));
    assert.strictEqual(errs.length, 1, gcs.stderrText);
    assert.match(errs[0], re);
    assert.doesNotMatch(gcs.stderrText, /listening/);
  }
});

test('gcs SCRIPT --wss PREFIX serves the script over TLS', async () => {
  const file = t.echoScript(tmp);
  const gcs = await h.startGcs({ args: [file, '-p', '0', '-a', '127.0.0.1', '--wss', srv] }, { wait: false });
  [gcs.port] = await t.waitWss(gcs);
  const ws = await t.connectWss(gcs.port, ca);
  ws.send('cmd:proto');
  assert.deepStrictEqual(await h.received(ws, 1), ['proto wss']);
  ws.terminate();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('the handshake deadline covers the TLS handshake; max_connections answers 503 over TLS', async () => {
  let gcs = await t.startWss(wssConfig({ handshake_timeout_ms: 400 }));
  // A TCP client that never sends its ClientHello, and one that stops
  // half-way through it, are closed at the deadline.
  const silent = await rawClose(gcs.port, Buffer.alloc(0));
  const hello = Buffer.from('16030100c8010000c40303', 'hex'); // a ClientHello's first bytes
  const partial = await rawClose(gcs.port, hello);
  assert.strictEqual(silent.length + partial.length, 0);
  const log = await h.waitStderr(gcs, /(no complete upgrade request in time[\s\S]*){2}/);
  assert.strictEqual((log.match(/no complete upgrade request in time, closed/g) || []).length, 2, log);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  gcs = await t.startWss(wssConfig({ max_connections: 1 }));
  // One client is the maximum: the second gets its 503 once its TLS
  // handshake is over (the answer waits for it), then close_notify.
  const first = await t.connectWss(gcs.port, ca);
  const second = await new Promise((resolve) => {
    const ws = new h.WebSocket(`wss://127.0.0.1:${gcs.port}/`, { ca: fs.readFileSync(ca) });
    ws.on('unexpected-response', (req, res) => resolve(res.statusCode));
    ws.on('open', () => resolve('open'));
    ws.on('error', (e) => resolve(e.message));
  });
  assert.strictEqual(second, 503);
  first.send('still');
  assert.deepStrictEqual(await h.received(first, 1), ['still']);
  first.terminate();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('over wss a client that stops reading is dropped at RED output_queue_size; DROP is abrupt', async () => {
  const file = path.join(tmp, 'flood.lua');
  fs.writeFileSync(file, `
local app = {}
function app.on_message(conn, data)
  if data == "drop" then conn:close("drop") return end
  for i = 1, 20 do conn:send(string.rep("y", 60000)) end
end
function app.on_disconnect(conn) end
return app
`);
  const gcs = await t.startWss({
    adapters: [{ type: 'lua', apps: [{ name: 'flood', file_name: file }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'wss', app: 'flood' }],
    ssl_keys_path: srv,
    conn_critical: { output_queue_size: 100 },
    logging: { level: 'VERBOSE' },
  });
  // A TLS client that completes the upgrade, then never reads again.
  const tls = require('node:tls');
  const sock = await new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port: gcs.port, ca: fs.readFileSync(ca), servername: 'localhost' }, () => resolve(s));
    s.on('error', reject);
  });
  sock.write(h.upgradeRequest());
  await new Promise((r) => sock.once('data', r));
  sock.pause();
  const ask = h.frame(2, 'more');
  for (let i = 0; i < 20 && !/output queue/.test(gcs.stderrText); i++) {
    sock.write(ask);
    await h.sleep(100);
  }
  const log = await h.waitStderr(gcs, /output queue/);
  assert.match(log, /output queue[^\n]*(dropp|RED)/i, log);
  sock.destroy();
  // DROP: the client sees no close frame (1006).
  const ws = await t.connectWss(gcs.port, ca);
  ws.send('drop');
  assert.strictEqual((await ws.closed).code, 1006);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('an orderly close ends with TLS close_notify after the close frame', async () => {
  const gcs = await t.startWss(wssConfig());
  // openssl s_client as a raw wss client: the upgrade, then a close frame;
  // gcs answers it and then sends close_notify, which s_client reports
  // as "closed" (a connection that just ended would not be).
  const p = require('node:child_process').spawn('openssl',
    ['s_client', '-connect', `127.0.0.1:${gcs.port}`, '-nocommands', '-ign_eof']);
  let out = '';
  p.stdout.on('data', (d) => { out += d.toString('latin1'); });
  p.stderr.on('data', (d) => { out += d.toString('latin1'); });
  const exited = new Promise((r) => p.on('exit', r));
  try {
    for (let i = 0; i < 200 && !/Verify return code/.test(out); i++) await h.sleep(25);
    p.stdin.write(h.upgradeRequest());
    for (let i = 0; i < 200 && !/101 Switching Protocols/.test(out); i++) await h.sleep(25);
    assert.match(out, /101 Switching Protocols/, out);
    p.stdin.write(h.frame(8, Buffer.from([0x0f, 0xa0]))); // 4000
    for (let i = 0; i < 200 && !/^closed$/m.test(out); i++) await h.sleep(25);
    assert.match(out, /^closed$/m, out);
    const frameAt = out.indexOf('\x88\x02\x0f\xa0'); // gcs's close frame, 4000
    assert.ok(frameAt > 0 && frameAt < out.search(/^closed$/m), out);
  } finally {
    p.kill();
    await exited;
  }
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('room broadcasts over wss (shared payloads, one encryption per receiver)', async () => {
  const gcs = await t.startWss({
    adapters: [{ type: 'lua', apps: [{ name: 'chat', file_name: path.join(h.SRC, 'scripts/chat.lua') }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'wss', app: 'chat' }],
    ssl_keys_path: srv,
  });
  const names = ['ann', 'bob', 'cat'];
  const users = [];
  for (const name of names) users.push(await t.connectWss(gcs.port, ca, `/chat?room=r&name=${name}`));
  await h.received(users[0], 3); // ann hears the three joins
  for (let i = 0; i < 60; i++) users[i % 3].send('m' + i);
  const want = Array.from({ length: 60 }, (_, i) => `${names[i % 3]}: m${i}`);
  const said = (u) => u.received.map(String).filter((l) => !l.startsWith('* '));
  for (const u of users) {
    for (let i = 0; i < 500 && said(u).length < 60; i++) await h.sleep(10);
    // Every receiver gets every message once; each sender's in order.
    assert.deepStrictEqual([...said(u)].sort(), [...want].sort());
    for (const n of names) assert.deepStrictEqual(said(u).filter((l) => l.startsWith(n + ':')), want.filter((l) => l.startsWith(n + ':')));
  }
  for (const u of users) u.terminate();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});
