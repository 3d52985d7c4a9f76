// wss server-to-server links (s2sCreate with GC_PROTOCOL_WSS, gc.connect
// "wss://...") between real gcs processes on 127.0.0.1: the s2s test
// adapter (tests/adapters/s2s.c) and tests/e2e/scripts/relay.lua on one
// side, a gcs serving its "peer" app over wss on the other. Certificates
// are made here with the openssl command (lib/tls.js): a test CA, a
// server certificate for 127.0.0.1 and localhost, one for another name
// only, and a second CA that signed nothing of the peer's. The ws part of
// the same events is tests/e2e/s2s.test.js.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const t = require('./lib/tls');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-s2s-wss-'));
let ca; // the CA of the peers' certificates
let ca2; // a CA that signed none of them
let srv; // PREFIX of a certificate for 127.0.0.1 and localhost
let other; // PREFIX of a certificate for other.example only
after(() => {
  h.killAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});
before(() => {
  ca = t.makeCa(tmp);
  srv = t.makeServerCert(tmp, 'srv');
  other = path.join(tmp, 'other');
  t.ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', other + '.key', '-out', other + '.csr',
          '-subj', '/CN=other.example']);
  fs.writeFileSync(other + '.ext', 'subjectAltName=DNS:other.example\nextendedKeyUsage=serverAuth\n');
  t.ossl(['x509', '-req', '-in', other + '.csr', '-CA', ca, '-CAkey', path.join(tmp, 'ca.key'),
          '-CAcreateserial', '-out', other + '.cert', '-days', '2', '-extfile', other + '.ext']);
  const dir2 = path.join(tmp, 'ca2');
  fs.mkdirSync(dir2);
  ca2 = t.makeCa(dir2);
});

const native = (vhostProto, port) => ({
  adapters: [{ type: 'native', dir: h.BUILD, name: 's2s',
               apps: [{ name: 'ctl', type_name: 'controller' }, { name: 'peer', type_name: 'peer' }] },
             { type: 'lua', apps: [{ name: 'relay', file_name: 'tests/e2e/scripts/relay.lua' }] }],
  vhosts: ['ctl', 'peer', 'relay'].map((app) => ({ ip: '127.0.0.1', port, protocol: vhostProto, app })),
  close_drain_ms: 3000,
  logging: { level: 'NORMAL' },
});

// A gcs serving its apps over wss with the keys of 'prefix' on 'port'.
async function startPeer(port, prefix) {
  // VERBOSE: its lines about single connections (TLS errors) are logged.
  return h.startGcs({ ...native('wss', port), ssl_keys_path: prefix, logging: { level: 'VERBOSE' } },
                    { port });
}

// A gcs whose apps are reached over ws and whose links check with 's2s'.
async function startLinker(s2s) {
  const cfg = native('ws', 0);
  if (s2s) cfg.s2s = s2s;
  return h.startGcs(cfg);
}

const { freePort } = h;

// A client of an app that reports events as text: next(pred) waits for
// the first message matching 'pred' (bounded).
async function client(ws) {
  const all = () => ws.received.map(String);
  return {
    ws,
    all,
    count: (prefix) => all().filter((m) => m.startsWith(prefix)).length,
    async next(pred, what) {
      for (let i = 0; i < 1500; i++) {
        const hit = all().find(pred);
        if (hit !== undefined) return hit;
        await h.sleep(10);
      }
      throw new Error('no ' + what + ' in:\n' + all().join('\n'));
    },
  };
}
const ctl = async (port) => client(await h.connect(port, '/ctl'));
const relay = async (port) => client(await h.connect(port, '/relay'));

// One failed attempt of a fresh controller: its single event is 'want'.
async function failsWith(linker, cmd, want) {
  const c = await ctl(linker.port);
  c.ws.send(cmd);
  const err = await c.next((m) => m.startsWith('error') || m === 'connect', 'the outcome');
  assert.match(err, want);
  await h.sleep(300);
  assert.strictEqual(c.count('error'), 1, c.all().join('\n'));
  assert.strictEqual(c.count('connect'), 0, c.all().join('\n'));
  c.ws.close();
}

test('a wss link between two gcs: both ways (s2s adapter and gc.connect), the peer restarts', { timeout: 90000 }, async () => {
  const port = await freePort();
  let peer = await startPeer(port, srv);
  const gcs = await startLinker({ ca_file: ca });
  try {
    const c = await ctl(gcs.port);
    c.ws.send(`wss ${port} peer`);
    assert.strictEqual(await c.next((m) => m.startsWith('create'), 'create'), 'create 0');
    await c.next((m) => m === 'connect' || m.startsWith('error'), 'connect');
    assert.ok(c.all().includes('connect'), c.all().join('\n'));
    await c.next((m) => m === 'msg hello', 'hello');
    c.ws.send('burst 300');
    await c.next((m) => m === 'msg echo:m299', 'the last echo');
    const echoes = c.all().filter((m) => /^msg echo:m\d+$/.test(m));
    assert.deepStrictEqual(echoes, Array.from({ length: 300 }, (_, i) => `msg echo:m${i}`));
    c.ws.send('send push 200');
    await c.next((m) => m === 'msg p199', 'the last push');
    const pushes = c.all().filter((m) => /^msg p\d+$/.test(m));
    assert.deepStrictEqual(pushes, Array.from({ length: 200 }, (_, i) => `msg p${i}`));
    // The peer counted this link's messages, in order.
    const s = await client(await t.connectWss(port, ca, '/ctl'));
    s.ws.send('stats');
    assert.strictEqual(await s.next((m) => m.startsWith('stats'), 'stats'), 'stats 300 0');
    s.ws.terminate();

    // gc.connect from Lua, by address and by DNS name.
    for (const host of ['127.0.0.1', 'localhost']) {
      const r = await relay(gcs.port);
      r.ws.send(`link wss://${host}:${port}/peer?x=1`);
      await r.next((m) => m === 'connect' || m.startsWith('error') || m.startsWith('fail'), 'connect');
      assert.ok(r.all().includes('connect'), r.all().join('\n'));
      await r.next((m) => m === 'msg hello', 'hello');
      for (let i = 0; i < 100; i++) r.ws.send(`send m${i}`);
      await r.next((m) => m === 'msg echo:m99', 'the last echo');
      const got = r.all().filter((m) => m.startsWith('msg echo:'));
      assert.deepStrictEqual(got, Array.from({ length: 100 }, (_, i) => `msg echo:m${i}`));
      assert.strictEqual(r.all().filter((m) => m === 'sent k 0').length, 100);
      r.ws.send('close');
      await r.next((m) => m === 'disconnect', 'disconnect');
      assert.strictEqual(r.count('error'), 0);
      r.ws.close();
    }

    // The peer goes away: the open link reports its end, once.
    assert.strictEqual(await h.stopGcs(peer), 0, peer.stderrText);
    await c.next((m) => m.startsWith('disconnect'), 'disconnect');
    // It is back: a new attempt of the same client succeeds.
    peer = await startPeer(port, srv);
    c.ws.send(`wss ${port} peer`);
    await c.next(() => c.count('connect') === 2, 'reconnect');
    c.ws.send('send again');
    await c.next((m) => m === 'msg echo:again', 'echo after restart');
    c.ws.send('close');
    await c.next(() => c.count('disconnect') === 2, 'second disconnect');
    assert.strictEqual(c.count('error'), 0, c.all().join('\n'));
    assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
    assert.doesNotMatch(gcs.stderrText, /s2s\.verify is false/);
  } finally {
    await h.stopGcs(gcs);
    await h.stopGcs(peer);
  }
});

test('a wss link within one gcs: to its own wss vhost, both ways, in order, closed NORMAL', { timeout: 60000 }, async () => {
  const wsPort = await freePort();
  const wssPort = await freePort();
  const cfg = native('ws', wsPort);
  cfg.vhosts = [{ ip: '127.0.0.1', port: wsPort, protocol: 'ws', app: 'ctl' },
                { ip: '127.0.0.1', port: wssPort, protocol: 'wss', app: 'peer' }];
  cfg.ssl_keys_path = srv;
  cfg.s2s = { ca_file: ca };
  const gcs = await h.startGcs(cfg, { port: wsPort });
  try {
    const c = await ctl(wsPort);
    c.ws.send(`wss ${wssPort} peer`);
    assert.strictEqual(await c.next((m) => m.startsWith('create'), 'create'), 'create 0');
    await c.next((m) => m === 'connect' || m.startsWith('error'), 'connect');
    assert.ok(c.all().includes('connect'), c.all().join('\n'));
    await c.next((m) => m === 'msg hello', 'hello');
    c.ws.send('burst 200');
    await c.next((m) => m === 'msg echo:m199', 'the last echo');
    const echoes = c.all().filter((m) => /^msg echo:m\d+$/.test(m));
    assert.deepStrictEqual(echoes, Array.from({ length: 200 }, (_, i) => `msg echo:m${i}`));
    c.ws.send('close');
    await c.next((m) => m.startsWith('disconnect'), 'disconnect');
    assert.strictEqual(c.count('error'), 0, c.all().join('\n'));
    assert.strictEqual(c.count('disconnect'), 1, c.all().join('\n'));
    assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  } finally {
    await h.stopGcs(gcs);
  }
});

test('wss links refused: wrong CA, host name mismatch, a plain-ws peer; verify:false', { timeout: 90000 }, async () => {
  const goodPort = await freePort();
  const good = await startPeer(goodPort, srv); // for 127.0.0.1 and localhost
  const otherPort = await freePort();
  const otherPeer = await startPeer(otherPort, other); // for other.example
  const wrongCa = await startLinker({ ca_file: ca2, verify: true });
  const linker = await startLinker({ ca_file: ca });
  const lax = await startLinker({ verify: false });
  try {
    // A CA that did not sign the peer's certificate.
    await failsWith(wrongCa, `wss ${goodPort} peer`,
      /^error TLS handshake failed: certificate verify failed: unable to get local issuer certificate$/);
    // The right CA, the wrong name: by address (s2s adapter), by name (Lua).
    await failsWith(linker, `wss ${otherPort} peer`,
      /^error TLS handshake failed: certificate verify failed: IP address mismatch$/);
    const r = await relay(linker.port);
    r.ws.send(`link wss://localhost:${otherPort}/peer`);
    const err = await r.next((m) => m.startsWith('error') || m === 'connect', 'the outcome');
    assert.match(err, /^error TLS handshake failed: certificate verify failed: hostname mismatch$/);
    await h.sleep(300);
    assert.strictEqual(r.count('error'), 1);
    assert.strictEqual(r.count('connect'), 0);
    r.ws.close();
    // A peer that speaks plain ws: one clear error.
    await failsWith(linker, `wss ${linker.port} peer`,
      /^error TLS handshake failed: .*\(the peer does not speak TLS\?\)$/);
    // verify:false takes any certificate (logged once at start).
    const c = await ctl(lax.port);
    c.ws.send(`wss ${otherPort} peer`);
    await c.next((m) => m === 'connect' || m.startsWith('error'), 'connect');
    assert.ok(c.all().includes('connect'), c.all().join('\n'));
    c.ws.send('send x');
    await c.next((m) => m === 'msg echo:x', 'echo');
    assert.strictEqual(c.count('error'), 0);
    const warns = lax.stderrText.match(/s2s\.verify is false: wss links accept any certificate/g) || [];
    assert.strictEqual(warns.length, 1, lax.stderrText);
    assert.doesNotMatch(linker.stderrText, /s2s\.verify is false/);
    // A NORMAL close (close frames, then our close_notify): the peer, at
    // VERBOSE, logs no TLS error for it.
    c.ws.send('close');
    await c.next((m) => m.startsWith('disconnect'), 'disconnect');
    await h.sleep(200);
    assert.doesNotMatch(otherPeer.stderrText, /TLS error/);
    for (const g of [wrongCa, linker, lax, good, otherPeer])
      assert.strictEqual(await h.stopGcs(g), 0, g.stderrText);
  } finally {
    for (const g of [wrongCa, linker, lax, good, otherPeer]) await h.stopGcs(g);
  }
});

// openssl s_server as the peer: it prints DONE when the client's
// close_notify ends the TLS stream, ERROR when it just goes away.
test('a NORMAL close sends close_notify after the close frames; a silent TLS peer times out', { timeout: 60000 }, async () => {
  const { spawn } = require('node:child_process');
  const crypto = require('node:crypto');
  const gcs = await startLinker({ ca_file: ca });
  const port = await freePort();
  const srvProc = spawn('openssl', ['s_server', '-accept', `127.0.0.1:${port}`, '-naccept', '1',
                                    '-cert', srv + '.cert', '-key', srv + '.key']);
  let out = '';
  srvProc.stdout.on('data', (d) => { out += d.toString('latin1'); });
  srvProc.stderr.on('data', (d) => { out += d.toString('latin1'); });
  try {
    for (let i = 0; i < 500 && !out.includes('ACCEPT'); i++) await h.sleep(10);
    const c = await ctl(gcs.port);
    c.ws.send(`wss ${port} peer`);
    let key;
    for (let i = 0; i < 1000 && !(key = out.match(/Sec-WebSocket-Key: (\S+)\r\n/)); i++) await h.sleep(10);
    assert.ok(key, out);
    const accept = crypto.createHash('sha1')
      .update(key[1] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
    srvProc.stdin.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n' +
                        `Connection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
    await c.next((m) => m === 'connect' || m.startsWith('error'), 'connect');
    assert.ok(c.all().includes('connect'), c.all().join('\n'));
    c.ws.send('close');
    await h.sleep(300); // our close frame reaches the peer, which answers it
    srvProc.stdin.write(Buffer.from([0x88, 0x02, 0x03, 0xe8]));
    assert.strictEqual(await c.next((m) => m.startsWith('disconnect'), 'disconnect'), 'disconnect 0 0');
    for (let i = 0; i < 500 && !/DONE|ERROR/.test(out); i++) await h.sleep(10);
    assert.match(out, /DONE\r?\n/, out);
    assert.doesNotMatch(out, /ERROR\r?\n/);
    // A peer that accepts and never answers the ClientHello: the attempt's
    // 10 s bound covers the handshake.
    const silent = net.createServer((sock) => sock.on('error', () => {}));
    await new Promise((r) => silent.listen(0, '127.0.0.1', r));
    const c2 = await ctl(gcs.port);
    c2.ws.send(`wss ${silent.address().port} peer`);
    assert.strictEqual(await c2.next((m) => m.startsWith('error') || m === 'connect', 'the outcome'),
                       'error timeout');
    await h.sleep(200);
    assert.strictEqual(c2.count('error'), 1);
    assert.strictEqual(c2.count('connect'), 0);
    silent.close();
  } finally {
    srvProc.kill();
    await h.stopGcs(gcs);
  }
});

test('a bad s2s.ca_file stops the start with one line naming it', { timeout: 30000 }, async () => {
  const missing = path.join(tmp, 'no-such-ca.pem');
  const g = await h.startGcs({ ...native('ws', 0), s2s: { ca_file: missing } }, { wait: false });
  assert.strictEqual(await g.exited, 1);
  const lines = g.stderrText.split('\n').filter((l) => l.includes(missing));
  assert.strictEqual(lines.length, 1, g.stderrText);
  assert.match(lines[0], /cannot load the CA certificates/);
  assert.doesNotMatch(g.stderrText, /listening/);
});
