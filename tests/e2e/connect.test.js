// The upgrade: udata, refusal (403), bad requests (400), routing (404).
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

let port, gcs, log;
before(async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-connect-'));
  const r = h.recorderConfig(0, dir);
  log = r.log;
  // A second app on the same port: the first path segment chooses.
  r.cfg.adapters.push({ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'echo' }] });
  r.cfg.vhosts.push({ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'echo' }); // port 0 on one ip: one port
  gcs = await h.startGcs(r.cfg);
  assert.strictEqual(gcs.listeners.length, 1);
  port = gcs.port;
});
after(async () => {
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  h.killAll();
});

test('on_connect gets the request target as udata, the protocol and the addresses', async () => {
  const ws = await h.connect(port, '/rec/lobby?room=7&token=abc');
  const ev = await h.waitEvents(log, (e) => e.some((l) => l.includes('/rec/lobby')));
  assert.ok(ev.some((l) => /^connect \d+ \/rec\/lobby\?room=7&token=abc 1 127\.0\.0\.1 127\.0\.0\.1$/.test(l)), ev.join('\n'));
  ws.close();
  await ws.closed;
});

test('several apps on one port are chosen by the first path segment', async () => {
  const ws = await h.connect(port, '/echo?x=1');
  ws.send('ping me');
  assert.deepStrictEqual(await h.received(ws, 1), ['ping me']);
  ws.close();
  const unknown = await h.rawExchange(port, h.upgradeRequest('/nope'));
  assert.match(unknown, /^HTTP\/1\.1 404 Not Found\r\n/);
  assert.match(unknown, /\r\n\r\nunknown application\n$/);
});

test('refusal in on_connect answers 403 and no other event follows', async () => {
  const reply = await h.rawExchange(port, h.upgradeRequest('/rec/refuse-me'));
  assert.match(reply, /^HTTP\/1\.1 403 Forbidden\r\n/);
  const ev = await h.waitEvents(log, (e) => e.some((l) => l.startsWith('refused')));
  const rid = ev.find((l) => l.startsWith('refused')).split(' ')[1];
  await h.sleep(100);
  const after = h.events(log).filter((l) => l.split(' ')[1] === rid);
  assert.deepStrictEqual(after.map((l) => l.split(' ')[0]), ['connect', 'refused']);
  await assert.rejects(h.connect(port, '/rec/refuse'), (e) => e.status === 403);
});

const bad = {
  'plain GET': 'GET / HTTP/1.1\r\nHost: x\r\n\r\n',
  'POST': 'POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n',
  'no key': 'GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n',
  'version 8': h.upgradeRequest('/').replace('Version: 13', 'Version: 8'),
  'garbage': '\x16\x03\x01\x00\xa5 hello?\r\n\r\n',
};
for (const [name, req] of Object.entries(bad)) {
  test(`a bad upgrade (${name}) gets 400 with a one-line body, then close`, async () => {
    const reply = await h.rawExchange(port, req);
    assert.match(reply, /^HTTP\/1\.1 400 Bad Request\r\n/);
    const body = reply.split('\r\n\r\n')[1];
    assert.match(body, /^[^\n]+\n$/);
  });
}

test('oversized request headers get 431', async () => {
  const reply = await h.rawExchange(port, h.upgradeRequest('/', 'X-Pad: ' + 'a'.repeat(9000) + '\r\n'));
  assert.match(reply, /^HTTP\/1\.1 431 /);
});
