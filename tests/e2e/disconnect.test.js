// Exactly one on_disconnect however a connection ends; timers.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

let port, gcs, log;
before(async () => {
  const r = h.recorderConfig(0, fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-disc-')));
  log = r.log;
  gcs = await h.startGcs(r.cfg);
  port = gcs.port;
});
after(async () => {
  if (gcs.exitCode === null) assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  h.killAll();
});

const idOf = (ev, udata) => {
  const l = ev.find((x) => x.startsWith('connect ') && x.split(' ')[2] === udata);
  return l && l.split(' ')[1];
};
const count = (ev, line) => ev.filter((l) => l === line).length;

test('a client vanishing mid-message gets exactly one on_disconnect', async () => {
  const s = net.connect(port, '127.0.0.1');
  s.on('error', () => {});
  await new Promise((r) => s.on('connect', r));
  s.write(h.upgradeRequest('/vanish'));
  await new Promise((r) => s.once('data', r));
  // Half of a masked 100-byte binary frame, then gone.
  const frame = Buffer.concat([Buffer.from([0x82, 0x80 | 100, 1, 2, 3, 4]), Buffer.alloc(40)]);
  s.write(frame);
  await h.sleep(50);
  s.destroy();
  const ev = await h.waitEvents(log, (e) => { const id = idOf(e, '/vanish'); return id && e.includes(`disconnect ${id}`); });
  const id = idOf(ev, '/vanish');
  assert.strictEqual(count(ev, `disconnect ${id}`), 1);
  assert.ok(!h.events(log).includes(`message ${id} 100`));
  // A late second one is caught by the count after gcs exited (last test).
});

test('a peer close gets exactly one on_disconnect', async () => {
  const ws = await h.connect(port, '/peer');
  ws.close(1000, 'bye');
  assert.strictEqual((await ws.closed).code, 1000);
  const ev = await h.waitEvents(log, (e) => { const id = idOf(e, '/peer'); return id && e.includes(`disconnect ${id}`); });
  assert.strictEqual(count(ev, `disconnect ${idOf(ev, '/peer')}`), 1);
});

test('a one-shot timer fires once; re-setting replaces it; 0 cancels', async () => {
  const ws = await h.connect(port, '/timer');
  ws.send('timer 300');
  ws.send('timer 100');         // replaces the 300 ms one
  await h.sleep(600);
  assert.deepStrictEqual(ws.received.map(String), ['timer-rc 0', 'timer-rc 0', 'timer']);
  ws.send('timer 100');
  ws.send('timer 0');           // cancels
  await h.sleep(300);
  assert.deepStrictEqual(ws.received.map(String).slice(3), ['timer-rc 0', 'timer-rc 0']);
  ws.close();
  await ws.closed;
});

test('on_timer never fires after the connection closed', async () => {
  const ws = await h.connect(port, '/timerclose');
  ws.send('timer-close 50');
  assert.strictEqual((await ws.closed).code, 1000);
  await h.sleep(200);
  const ev = h.events(log);
  const id = idOf(ev, '/timerclose');
  assert.ok(ev.includes(`disconnect ${id}`));
  assert.ok(!ev.includes(`timer ${id}`), ev.join('\n'));
});

// Last: the whole event log once gcs has exited, so a duplicate however late
// (a second on_disconnect at shutdown, on a timer, at unload) is counted.
test('every connection got exactly one on_disconnect, counted after gcs exited', async () => {
  const open = await h.connect(port, '/open-at-shutdown'); // closed by the shutdown
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  await open.closed;
  const ev = h.events(log);
  assert.strictEqual(ev[ev.length - 1], 'adapter_finalize 0', 'the log is complete:\n' + ev.join('\n'));
  const ids = ev.filter((l) => l.startsWith('connect ')).map((l) => l.split(' ')[1])
    .filter((id) => !ev.includes(`refused ${id}`)); // refused: no event follows
  for (const name of ['/vanish', '/peer', '/timer', '/timerclose', '/open-at-shutdown']) {
    assert.ok(idOf(ev, name), `${name} connected`);
  }
  const counts = Object.fromEntries(ids.map((id) => [id, count(ev, `disconnect ${id}`)]));
  assert.deepStrictEqual(counts, Object.fromEntries(ids.map((id) => [id, 1])), ev.join('\n'));
  assert.strictEqual(ev.filter((l) => l.startsWith('disconnect ')).length, ids.length, ev.join('\n'));
  // ... and each after its connect, before the application's shutdown.
  const shutdown = ev.findIndex((l) => l.startsWith('application_shutdown'));
  for (const id of ids) {
    const d = ev.indexOf(`disconnect ${id}`);
    assert.ok(d > ev.findIndex((l) => l.startsWith(`connect ${id} `)) && d < shutdown, `disconnect ${id} at ${d}`);
  }
});
