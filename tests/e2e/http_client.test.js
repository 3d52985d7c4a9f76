// httpRequest (API 1.4) through a real adapter: gcs serving the http_fetch
// test adapter, real ws clients asking it to fetch from a Node HTTP server
// started here on 127.0.0.1; the answers come back over the WebSocket.
// Under make tsan (GC_WORKERS=4) the clients' requests run on several
// worker loops at once. https: Node https servers with certificates of a
// test CA made here with the openssl command (lib/tls.js), gcs trusting it
// through "http": { "ca_file" }.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const tls = require('./lib/tls');

let server;
let base;
let connections = 0;
let certDir; // the test CA (ca.pem), another CA (other/ca.pem), the certificates
let httpsServer; // certificate for IP:127.0.0.1 and DNS:localhost
let httpsBase;
let tlsConnections = 0; // TLS connections httpsServer accepted
let localServer; // certificate for DNS:localhost only
let localPort;
let silent; // accepts and says nothing: a handshake that never completes
const silentSockets = new Set();
let slowSeen = 0; // /slow requests that arrived
const hanging = new Set(); // /slow requests, answered never (ended at the end)

// A certificate of the CA in 'dir' for 'san' (openssl's subjectAltName).
function makeCert(dir, name, san) {
  const prefix = path.join(dir, name);
  tls.ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${prefix}.key`,
    '-out', `${prefix}.csr`, '-subj', '/CN=gcs http test']);
  fs.writeFileSync(`${prefix}.ext`, `subjectAltName=${san}\nextendedKeyUsage=serverAuth\n`);
  tls.ossl(['x509', '-req', '-in', `${prefix}.csr`, '-CA', path.join(dir, 'ca.pem'),
    '-CAkey', path.join(dir, 'ca.key'), '-CAcreateserial', '-out', `${prefix}.cert`,
    '-days', '2', '-extfile', `${prefix}.ext`]);
  return { key: fs.readFileSync(`${prefix}.key`), cert: fs.readFileSync(`${prefix}.cert`) };
}

before(async () => {
  const handler = (req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.url === '/hello') {
        res.writeHead(200, { 'X-Test': 'yes', 'Content-Type': 'text/plain' });
        res.end('hello');
      } else if (req.url === '/echo') {
        res.end(`${req.method}:${body}`);
      } else if (req.url === '/chunked') {
        res.write('part1,'); // no Content-Length: Node sends it chunked
        setTimeout(() => res.end('part2'), 20);
      } else if (req.url.startsWith('/who')) {
        res.end(req.url);
      } else if (req.url === '/slow') {
        slowSeen++;
        hanging.add(res);
      } else if (req.url === '/to-https') {
        res.writeHead(302, { Location: `${httpsBase}/hello` });
        res.end();
      } else {
        res.writeHead(404);
        res.end('none');
      }
    });
  };
  server = http.createServer(handler);
  server.on('connection', () => { connections++; });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;

  certDir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-https-'));
  tls.makeCa(certDir);
  fs.mkdirSync(path.join(certDir, 'other'));
  tls.makeCa(path.join(certDir, 'other'));
  httpsServer = https.createServer(makeCert(certDir, 'both', 'IP:127.0.0.1,DNS:localhost'), handler);
  httpsServer.on('secureConnection', () => { tlsConnections++; });
  await new Promise((r) => httpsServer.listen(0, '127.0.0.1', r));
  httpsBase = `https://127.0.0.1:${httpsServer.address().port}`;
  localServer = https.createServer(makeCert(certDir, 'local', 'DNS:localhost'), handler);
  await new Promise((r) => localServer.listen(0, '127.0.0.1', r));
  localPort = localServer.address().port;
  silent = net.createServer((sock) => {
    silentSockets.add(sock);
    sock.on('error', () => {});
    sock.on('close', () => silentSockets.delete(sock));
  });
  await new Promise((r) => silent.listen(0, '127.0.0.1', r));
});

after(async () => {
  h.killAll();
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  for (const srv of [httpsServer, localServer]) {
    if (!srv) continue;
    srv.closeAllConnections();
    await new Promise((r) => srv.close(r));
  }
  for (const sock of silentSockets) sock.destroy();
  if (silent) await new Promise((r) => silent.close(r));
  if (certDir) fs.rmSync(certDir, { recursive: true, force: true });
});

// The next message on 'ws' after sending 'text' (bounded).
async function ask(ws, text) {
  const n = ws.received.length;
  ws.send(text);
  for (let i = 0; i < 1500 && ws.received.length <= n; i++) await h.sleep(10);
  assert.ok(ws.received.length > n, `no answer to ${text}`);
  return ws.received[n].toString();
}

async function startFetcher(extra = {}, opts = {}) {
  return h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'http_fetch', apps: [{ name: 'f' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'f' }],
    logging: { level: 'NORMAL' },
    ...extra,
  }, opts);
}

test('an adapter waits on HTTP from on_message: GET, POST, chunked, errors', { timeout: 60000 }, async () => {
  const gcs = await startFetcher();
  const ws = await h.connect(gcs.port);
  assert.strictEqual(await ask(ws, `GET ${base}/hello`), '200 yes hello');
  const before = connections;
  assert.strictEqual(await ask(ws, `GET ${base}/hello`), '200 yes hello');
  assert.strictEqual(connections, before, 'the second request reused the pooled connection');
  assert.strictEqual(await ask(ws, `POST ${base}/echo ping`), '200 - POST:ping');
  assert.strictEqual(await ask(ws, `GET ${base}/chunked`), '200 - part1,part2');
  assert.strictEqual(await ask(ws, `GET ${base}/nope`), '404 - none');
  assert.strictEqual(await ask(ws, `TIMEOUT 300 ${base}/slow`), 'err 110 timeout');
  assert.strictEqual(await ask(ws, `CANCEL ${base}/slow`), 'err 125 cancelled');
  assert.strictEqual(await ask(ws, `XCANCEL ${base}/slow`), 'err 125 cancelled');
  assert.strictEqual(await ask(ws, 'GET https://127.0.0.1:1/'), 'err 111 connection refused');
  assert.strictEqual(await ask(ws, 'GET nonsense'), 'refused 22');
  ws.close();
  await ws.closed;
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('many clients at once: every answer on its own connection and worker', { timeout: 60000 }, async () => {
  const gcs = await startFetcher();
  const clients = await Promise.all(Array.from({ length: 8 }, () => h.connect(gcs.port)));
  await Promise.all(clients.map(async (ws, i) => {
    for (let k = 0; k < 5; k++) {
      assert.strictEqual(await ask(ws, `GET ${base}/who?c=${i}&k=${k}`), `200 - /who?c=${i}&k=${k}`);
    }
  }));
  for (const ws of clients) ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('requests pending at the shutdown end cleanly (ECANCELED) and gcs exits 0', { timeout: 60000 }, async () => {
  const gcs = await startFetcher();
  const ws = await h.connect(gcs.port);
  const seen = slowSeen;
  ws.send(`GET ${base}/slow`);
  ws.send(`GET ${base}/slow`);
  for (let i = 0; i < 1000 && slowSeen < seen + 2; i++) await h.sleep(10);
  assert.strictEqual(slowSeen, seen + 2, 'the requests reached the server');
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  // Their callbacks ran (ECANCELED) before application_shutdown, none after.
  assert.match(gcs.stderrText, /http_fetch: 2 request\(s\) cancelled by the shutdown/);
  assert.doesNotMatch(gcs.stderrText, /after application_shutdown|Sanitizer|runtime error/);
});

// EPROTO's number on Linux, as the adapter reports it.
const EPROTO = 71;

test('https: GET, POST, keep-alive over TLS, chunked, redirect from http, name and IP checks', { timeout: 60000 }, async () => {
  const gcs = await startFetcher({ http: { ca_file: path.join(certDir, 'ca.pem') } });
  const ws = await h.connect(gcs.port);
  const first = tlsConnections;
  assert.strictEqual(await ask(ws, `GET ${httpsBase}/hello`), '200 yes hello');
  const before = tlsConnections;
  assert.strictEqual(before, first + 1, 'one TLS connection');
  assert.strictEqual(await ask(ws, `GET ${httpsBase}/hello`), '200 yes hello');
  assert.strictEqual(await ask(ws, `POST ${httpsBase}/echo ping`), '200 - POST:ping');
  assert.strictEqual(await ask(ws, `GET ${httpsBase}/chunked`), '200 - part1,part2');
  assert.strictEqual(tlsConnections, before, 'the pooled TLS connection served them all');
  // http and https to one host:port never share a connection: the plain
  // server's pooled connection is not taken for https.
  const plainPort = server.address().port;
  assert.strictEqual(await ask(ws, `GET ${base}/hello`), '200 yes hello');
  assert.match(await ask(ws, `GET https://127.0.0.1:${plainPort}/hello`),
    new RegExp(`^err ${EPROTO} tls handshake failed: `));
  assert.strictEqual(await ask(ws, `GET ${base}/hello`), '200 yes hello');
  // A redirect from http to https is followed.
  assert.strictEqual(await ask(ws, `FOLLOW ${base}/to-https`), '200 yes hello');
  assert.strictEqual(await ask(ws, `GET ${base}/to-https`), '302 - ');
  // The name is checked (SNI and DNS entries), an address against IP entries.
  assert.strictEqual(await ask(ws, `GET https://localhost:${localPort}/hello`), '200 yes hello');
  assert.match(await ask(ws, `GET https://127.0.0.1:${localPort}/hello`),
    new RegExp(`^err ${EPROTO} certificate verify failed: IP address mismatch`));
  // A handshake that never completes ends with the request's timeout.
  assert.strictEqual(await ask(ws, `TIMEOUT 400 https://127.0.0.1:${silent.address().port}/`),
    'err 110 timeout');
  ws.close();
  await ws.closed;
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  assert.doesNotMatch(gcs.stderrText, /Sanitizer|runtime error/);
});

test('https: a certificate of another CA is refused with the reason (ca_file, then the system store)', { timeout: 60000 }, async () => {
  for (const extra of [{ http: { ca_file: path.join(certDir, 'other', 'ca.pem') } }, {}]) {
    const gcs = await startFetcher(extra);
    const ws = await h.connect(gcs.port);
    assert.match(await ask(ws, `GET ${httpsBase}/hello`),
      new RegExp(`^err ${EPROTO} certificate verify failed: (unable to get local issuer certificate|self.signed)`));
    ws.close();
    await ws.closed;
    assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  }
});

test('https: verify false accepts any certificate and says so once at start', { timeout: 60000 }, async () => {
  const gcs = await startFetcher({ http: { verify: false } });
  const ws = await h.connect(gcs.port);
  assert.strictEqual(await ask(ws, `GET https://127.0.0.1:${localPort}/hello`), '200 yes hello');
  assert.strictEqual(await ask(ws, `GET ${httpsBase}/hello`), '200 yes hello');
  ws.close();
  await ws.closed;
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  const warns = gcs.stderrText.split('\n').filter((l) => /http\.verify is false/.test(l));
  assert.strictEqual(warns.length, 1, gcs.stderrText);
  assert.match(warns[0], /\] W: /); // WARN
});

test('https: a ca_file that cannot be read stops the start with one line naming it', { timeout: 60000 }, async () => {
  const missing = path.join(certDir, 'nope.pem');
  const gcs = await startFetcher({ http: { ca_file: missing } }, { wait: false });
  assert.strictEqual(await gcs.exited, 1);
  const lines = gcs.stderrText.split('\n').filter((l) => l.includes(missing));
  assert.strictEqual(lines.length, 1, gcs.stderrText);
  assert.match(lines[0], /http\.ca_file: cannot read .*nope\.pem: No such file or directory/);
  h.killAll();
});
