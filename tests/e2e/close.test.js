// connectionClose over a real socket: NORMAL delivers everything queued in
// order then a close frame; DROP discards (and reports) the rest; a second
// close, a bad reason and a stale handle get EINVAL.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const h = require('./lib/harness');

let port, gcs, log;
before(async () => {
  const dir = require('node:fs').mkdtempSync(require('node:path').join(require('node:os').tmpdir(), 'gcs-close-'));
  const r = h.recorderConfig(0, dir);
  log = r.log;
  gcs = await h.startGcs(r.cfg);
  port = gcs.port;
});
after(async () => {
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  h.killAll();
});

const id = (ev, udata) => Number(ev.find((l) => l.startsWith('connect ') && l.includes(' ' + udata + ' ')).split(' ')[1]);

test('NORMAL close after 1,000 queued messages delivers all of them in order, then 1000', async () => {
  const ws = await h.connect(port, '/normal');
  ws.send('queue 1000 normal');
  const { code } = await ws.closed;
  assert.strictEqual(code, 1000);
  const got = ws.received.map(String);
  assert.strictEqual(got.length, 1000);
  got.forEach((m, i) => assert.strictEqual(m, String(i)));
  const ev = await h.waitEvents(log, (e) => e.includes(`disconnect ${id(e, '/normal')}`));
  const me = id(ev, '/normal');
  assert.ok(ev.includes(`close_rc ${me} 0 22`), 'second close is EINVAL');
  const sent = ev.filter((l) => l.startsWith(`sent ${me} `));
  assert.strictEqual(sent.length, 1000);
  sent.forEach((l, i) => assert.strictEqual(l, `sent ${me} ${i + 1} ${String(i).length} 0`));
  // on_disconnect is the last event of the connection
  const mine = ev.filter((l) => l.split(' ')[1] === String(me));
  assert.strictEqual(mine[mine.length - 1], `disconnect ${me}`);
});

test('DROP discards the queue: no close frame, every message reported once, non-zero', async () => {
  const ws = await h.connect(port, '/drop');
  ws.send('queue 1000 drop');
  const { code } = await ws.closed;
  assert.strictEqual(code, 1006); // the TCP connection ended without a close frame
  assert.strictEqual(ws.received.length, 0);
  const ev = await h.waitEvents(log, (e) => e.includes(`disconnect ${id(e, '/drop')}`));
  const me = id(ev, '/drop');
  assert.ok(ev.includes(`close_rc ${me} 0 22`));
  const sent = ev.filter((l) => l.startsWith(`sent ${me} `));
  assert.strictEqual(sent.length, 1000);
  for (const l of sent) assert.notStrictEqual(l.split(' ')[4], '0', l);
  const mine = ev.filter((l) => l.split(' ')[1] === String(me));
  assert.strictEqual(mine[mine.length - 1], `disconnect ${me}`);
  assert.strictEqual(ev.filter((l) => l === `disconnect ${me}`).length, 1);
});

test('a reason other than NORMAL or DROP is EINVAL and changes nothing', async () => {
  const ws = await h.connect(port, '/bad');
  ws.send('badreason');
  assert.deepStrictEqual(await h.received(ws, 1), ['rc 22']);
  ws.send('still here');
  assert.deepStrictEqual(await h.received(ws, 2), ['rc 22', 'still here']);
  ws.close();
  await ws.closed;
});

test('a stale handle gets EINVAL and never reaches the newer connection', async () => {
  const a = await h.connect(port, '/gone');
  a.close();
  await a.closed;
  await h.waitEvents(log, (e) => e.includes(`disconnect ${id(e, '/gone')}`));
  const b = await h.connect(port, '/fresh');
  b.send('stale');
  assert.deepStrictEqual(await h.received(b, 1), ['stale 22 22 22']);
  b.close();
  await b.closed;
});
