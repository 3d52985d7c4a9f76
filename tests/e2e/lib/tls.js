// Test TLS material made with the openssl command: a CA, and server
// certificates for 127.0.0.1 and localhost (subjectAltName) signed by it;
// and the start of a gcs serving wss (its "listening on wss://" line).
const { execFileSync, spawn } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const tls = require('node:tls');
const h = require('./harness');

// Echo, and commands: "cmd:proto" answers info.protocol; "cmd:flood N CODE"
// queues N messages of 1 KB then closes NORMAL with CODE.
const SCRIPT = `
local app = {}
function app.on_connect(conn, info) conn.proto = info.protocol end
function app.on_message(conn, data)
  if data == "cmd:proto" then conn:send("proto " .. conn.proto) return end
  local n, code = data:match("^cmd:flood (%d+) (%d+)$")
  if n then
    for i = 1, tonumber(n) do conn:send(i .. ":" .. string.rep("x", 1000)) end
    conn:close("normal", tonumber(code), "flooded")
    return
  end
  conn:send(data)
end
return app
`;

// Writes the script into 'dir'; its path.
function echoScript(dir) {
  const file = path.join(dir, 'wss.lua');
  fs.writeFileSync(file, SCRIPT);
  return file;
}

function ossl(args, opts = {}) {
  return execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'], ...opts });
}

// dir/ca.pem, dir/ca.key: the test CA.
function makeCa(dir) {
  ossl(['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', path.join(dir, 'ca.key'),
        '-out', path.join(dir, 'ca.pem'), '-days', '2', '-subj', '/CN=gcs test CA']);
  return path.join(dir, 'ca.pem');
}

// PREFIX.key and PREFIX.cert, a server certificate signed by the CA of
// 'dir'; returns PREFIX.
function makeServerCert(dir, name, cn = 'localhost') {
  const prefix = path.join(dir, name);
  ossl(['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', prefix + '.key',
        '-out', prefix + '.csr', '-subj', '/CN=' + cn]);
  const ext = prefix + '.ext';
  fs.writeFileSync(ext, 'subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n' +
    'keyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n');
  ossl(['x509', '-req', '-in', prefix + '.csr', '-CA', path.join(dir, 'ca.pem'),
        '-CAkey', path.join(dir, 'ca.key'), '-CAcreateserial', '-out', prefix + '.cert',
        '-days', '2', '-extfile', ext]);
  return prefix;
}

// The SHA-256 fingerprint of a PEM certificate as node prints it.
function fingerprint(certFile) {
  return new crypto.X509Certificate(fs.readFileSync(certFile)).fingerprint256;
}

// The base64 SHA-256 of a certificate's SubjectPublicKeyInfo (Chromium's
// --ignore-certificate-errors-spki-list).
function spkiHash(certFile) {
  const key = new crypto.X509Certificate(fs.readFileSync(certFile)).publicKey;
  return crypto.createHash('sha256').update(key.export({ type: 'spki', format: 'der' })).digest('base64');
}

// Waits (bounded) for gcs's "listening on wss://IP:PORT" lines.
async function waitWss(proc, n = 1) {
  for (let i = 0; i < 400; i++) {
    const l = [...proc.stderrText.matchAll(/listening on wss:\/\/(.*):(\d+)\n/g)];
    if (l.length >= n) return l.map((m) => Number(m[2]));
    if (proc.exitCode !== null) break;
    await h.sleep(25);
  }
  throw new Error('gcs did not listen on wss:\n' + proc.stderrText);
}

// A gcs serving 'cfg' over wss; resolves with proc.port set.
async function startWss(cfg) {
  const gcs = await h.startGcs(cfg, { wait: false });
  [gcs.port] = await waitWss(gcs);
  return gcs;
}

// An npm ws client over wss trusting 'ca'.
function connectWss(port, ca, pathName = '/', host = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const ws = new h.WebSocket(`wss://${host}:${port}${pathName}`, { ca: fs.readFileSync(ca) });
    ws.received = [];
    ws.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (d) => ws.received.push(d));
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

// The fingerprint of the certificate a TLS client gets on 'port'.
function peerFingerprint(port, ca) {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ host: '127.0.0.1', port, ca: fs.readFileSync(ca), servername: 'localhost' }, () => {
      const fp = s.getPeerCertificate().fingerprint256;
      s.end();
      resolve(fp);
    });
    s.on('error', reject);
  });
}

// Runs 'openssl s_client ARGS' against 127.0.0.1:port with 'input' on its
// stdin (held open 'holdMs' so answers come back); its output and status.
function sClient(port, args, { input = '', holdMs = 300, timeoutMs = 10000 } = {}) {
  return new Promise((resolve) => {
    const p = spawn('openssl', ['s_client', '-connect', `127.0.0.1:${port}`, ...args]);
    let out = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { out += d; });
    const kill = setTimeout(() => p.kill('SIGKILL'), timeoutMs);
    p.on('exit', (code) => { clearTimeout(kill); resolve({ code, out }); });
    setTimeout(() => {
      if (input) p.stdin.write(input);
      setTimeout(() => p.stdin.end(), holdMs);
    }, holdMs);
  });
}

module.exports = { echoScript, ossl, makeCa, makeServerCert, fingerprint, spkiHash, waitWss, startWss,
  connectWss, peerFingerprint, sClient };
