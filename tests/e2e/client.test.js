// The client library (libgc_client.so, include/game-carrier/client.h)
// through its example, examples/bot (gc_bot): it joins scripts/chat.lua on
// a real gcs, talks, and leaves, in each of the library's three modes; a
// refused connection gives exactly one on_client_connection_error. Over
// wss (GC_BOT_WSS=1) the library checks the server against the system's
// store, which SSL_CERT_FILE points at the test CA here.
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFile } = require('node:child_process');
const h = require('./lib/harness');
const t = require('./lib/tls');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-client-'));
after(() => {
  h.killAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

const BOT = path.join(h.BUILD, 'gc_bot');

function bot(args, mode, env = {}) {
  return new Promise((resolve) => {
    execFile(BOT, args, { env: { ...process.env, GC_BOT_MODE: mode, ...env }, timeout: 30000 },
      (err, stdout, stderr) => resolve({ code: err ? err.code : 0, out: stdout.split('\n').filter(Boolean), stderr }));
  });
}

test('gc_bot joins scripts/chat.lua and talks, in every mode', { timeout: 90000 }, async () => {
  const gcs = await h.startGcs({ args: ['scripts/chat.lua', '-p', '0', '-a', '127.0.0.1'] });
  try {
    const watcher = await h.connect(gcs.port, '/chat?room=r1&name=watcher');
    for (const mode of ['passive', 'active', 'hybrid']) {
      const name = `bot${mode}`;
      const r = await bot(['127.0.0.1', String(gcs.port), 'r1', name, `hello from ${mode}`, 'line two'], mode);
      assert.strictEqual(r.code, 0, r.out.join('\n') + r.stderr);
      assert.deepStrictEqual(r.out, ['connected', `heard: * ${name} joined`,
        `heard: ${name}: hello from ${mode}`, `heard: ${name}: line two`,
        `heard: * here: ${name}, watcher`, 'disconnected']);
      for (let i = 0; i < 200 && !watcher.received.map(String).includes(`* ${name} left`); i++) await h.sleep(10);
      const got = watcher.received.map(String);
      assert.ok(got.includes(`${name}: hello from ${mode}`), got.join('\n'));
      assert.ok(got.includes(`* ${name} left`), got.join('\n'));
    }
    watcher.close();
  } finally {
    assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  }
});

test('gc_bot against a port nobody listens on: one connection error', async () => {
  for (const mode of ['passive', 'active', 'hybrid']) {
    const r = await bot(['127.0.0.1', '1', 'r1', 'bot', 'hi'], mode);
    assert.strictEqual(r.code, 2, r.out.join('\n') + r.stderr);
    assert.deepStrictEqual(r.out, ['connection error: connection refused']);
  }
});

test('gc_bot over wss: the test CA trusted through SSL_CERT_FILE, or refused', { timeout: 90000 }, async () => {
  const ca = t.makeCa(tmp);
  const srv = t.makeServerCert(tmp, 'srv');
  const gcs = await t.startWss({ args: ['scripts/chat.lua', '-p', '0', '-a', '127.0.0.1', '--wss', srv] });
  try {
    for (const mode of ['passive', 'hybrid']) {
      const name = `wss${mode}`;
      const r = await bot(['127.0.0.1', String(gcs.port), 'r1', name, 'over tls'], mode,
        { GC_BOT_WSS: '1', SSL_CERT_FILE: ca });
      assert.strictEqual(r.code, 0, r.out.join('\n') + r.stderr);
      assert.deepStrictEqual(r.out, ['connected', `heard: * ${name} joined`,
        `heard: ${name}: over tls`, `heard: * here: ${name}`, 'disconnected']);
    }
    // A store without the test CA: one connection error with the reason.
    const empty = path.join(tmp, 'empty.pem');
    fs.writeFileSync(empty, '');
    const r = await bot(['127.0.0.1', String(gcs.port), 'r1', 'x', 'hi'], 'active',
      { GC_BOT_WSS: '1', SSL_CERT_FILE: empty, SSL_CERT_DIR: tmp });
    assert.strictEqual(r.code, 2, r.out.join('\n') + r.stderr);
    assert.deepStrictEqual(r.out, ['connection error: TLS handshake failed: certificate ' +
      'verify failed: unable to get local issuer certificate']);
  } finally {
    assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  }
});
