// Debian's testssl.sh against a wss port (issue 16): its JSON findings
// say SSLv2, SSLv3, TLS 1.0 and 1.1 are not offered, TLS 1.2 and 1.3 are,
// and no NULL, anonymous, EXPORT, LOW (DES, RC4), 3DES/IDEA or obsolete
// CBC cipher is offered. Only the protocol and cipher-category checks
// run (about a minute), bounded.
const { test, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');
const t = require('./lib/tls');

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-testssl-'));
let scan;
after(() => {
  if (scan && scan.exitCode === null) {
    try { process.kill(-scan.pid, 'SIGKILL'); } catch { scan.kill('SIGKILL'); }
  }
  h.killAll();
  fs.rmSync(tmp, { recursive: true, force: true });
});

function testssl(args, timeoutMs) {
  return new Promise((resolve) => {
    let out = '';
    scan = spawn('testssl', args, { detached: true, env: { ...process.env, TERM: 'dumb' } });
    scan.stdout.on('data', (d) => { out += d; });
    scan.stderr.on('data', (d) => { out += d; });
    const timer = setTimeout(() => { try { process.kill(-scan.pid, 'SIGKILL'); } catch { /* gone */ } }, timeoutMs);
    scan.on('exit', (code, sig) => { clearTimeout(timer); resolve({ code, sig, out }); });
  });
}

test('testssl.sh finds no weak protocol or cipher on a wss port', async () => {
  t.makeCa(tmp);
  const srv = t.makeServerCert(tmp, 'srv');
  const gcs = await t.startWss({
    adapters: [{ type: 'lua', apps: [{ name: 'echo', file_name: t.echoScript(tmp) }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'wss', app: 'echo' }],
    ssl_keys_path: srv,
  });
  const json = path.join(tmp, 'testssl.json');
  const r = await testssl(['--protocols', '--std', '--quiet', '--color', '0', '--warnings', 'off',
                           '--jsonfile', json, `127.0.0.1:${gcs.port}`], 150000);
  assert.strictEqual(r.sig, null, 'testssl did not finish in time:\n' + r.out);
  const found = Object.fromEntries(JSON.parse(fs.readFileSync(json, 'utf8')).map((f) => [f.id, f.finding]));
  for (const id of ['SSLv2', 'SSLv3', 'TLS1', 'TLS1_1', 'cipherlist_NULL', 'cipherlist_aNULL',
                    'cipherlist_EXPORT', 'cipherlist_LOW', 'cipherlist_3DES_IDEA', 'cipherlist_AVERAGE'])
    assert.match(found[id] || 'missing', /^not offered/, `${id}: ${found[id]}\n${r.out}`);
  assert.match(found.TLS1_2, /^offered/, r.out);
  assert.match(found.TLS1_3, /^offered/, r.out);
  assert.match(found.cipherlist_STRONG, /^offered/, r.out);
  assert.match(found.ALPN || '', /http\/1\.1/, r.out);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});
