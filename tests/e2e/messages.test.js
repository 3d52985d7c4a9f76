// Text frames, close codes and refusals from a Lua script (issue 18), seen
// by the npm 'ws' client: tests/e2e/scripts/messages.lua as two apps on one
// port, /txt with "message_type": "text" and /bin without (binary).
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const h = require('./lib/harness');

const SCRIPT = 'tests/e2e/scripts/messages.lua';
let gcs, port;

before(async () => {
  gcs = await h.startGcs({
    adapters: [{ type: 'lua', apps: [
      { name: 'txt', file_name: SCRIPT, message_type: 'text' },
      { name: 'bin', file_name: SCRIPT }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'txt' },
             { ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'bin' }],
    logging: { level: 'NORMAL' },
  });
  port = gcs.port;
});
after(async () => {
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  h.killAll();
});

// A client keeping each message with its type: { data: string, binary }.
function connect(pathName) {
  return new Promise((resolve, reject) => {
    const ws = new h.WebSocket(`ws://127.0.0.1:${port}${pathName}`);
    ws.msgs = [];
    ws.closed = new Promise((r) => ws.on('close', (code, reason) => r({ code, reason: reason.toString() })));
    ws.on('message', (d, isBinary) => ws.msgs.push({ data: d.toString('latin1'), binary: isBinary }));
    ws.on('open', () => resolve(ws));
    ws.on('error', reject);
  });
}

async function next(ws, n) {
  for (let i = 0; i < 400 && ws.msgs.length < n; i++) await h.sleep(10);
  assert.ok(ws.msgs.length >= n, `expected ${n} messages, got ${JSON.stringify(ws.msgs)}`);
  return ws.msgs.slice(0, n);
}

const T = (data) => ({ data, binary: false });
const B = (data) => ({ data, binary: true });

test('an app with message_type "text" sends text frames: JSON.parse works on them', async () => {
  const ws = await connect('/txt');
  ws.send('json');
  const [m] = await next(ws, 1);
  assert.strictEqual(m.binary, false);
  assert.deepStrictEqual(JSON.parse(m.data), { hello: 'world', n: 1 });
  ws.close();
  await ws.closed;
});

test('the default stays binary (Game Carrier\'s behaviour)', async () => {
  const ws = await connect('/bin');
  ws.send('json');
  assert.deepStrictEqual(await next(ws, 1), [B('{"hello":"world","n":1}')]);
  ws.close();
  await ws.closed;
});

test('conn:send(data, cookie, type) overrides the app\'s type, either way', async () => {
  const t = await connect('/txt');
  const b = await connect('/bin');
  t.send('binary raw');
  t.send('text words');
  b.send('text caf\u00e9');
  b.send('binary raw');
  assert.deepStrictEqual(await next(t, 2), [B('raw'), T('words')]);
  assert.deepStrictEqual(await next(b, 2), [T(Buffer.from('caf\u00e9').toString('latin1')), B('raw')]);
  t.close();
  b.close();
  await Promise.all([t.closed, b.closed]);
});

test('text that is not UTF-8 is refused ("invalid UTF-8") and nothing is sent', async () => {
  const t = await connect('/txt');
  const b = await connect('/bin');
  t.send('bad');
  t.send('baddefault');
  b.send('bad');
  b.send('baddefault'); // binary: any bytes go
  // A text frame of bad UTF-8 would make the client fail the connection
  // (1007); instead only the replies arrive, and it stays open.
  assert.deepStrictEqual(await next(t, 2), [T('bad nil invalid UTF-8'), T('baddefault nil invalid UTF-8')]);
  assert.deepStrictEqual(await next(b, 3), [B('bad nil invalid UTF-8'), B('\xff'), B('baddefault true nil')]);
  t.send('json');
  assert.strictEqual((await next(t, 3))[2].binary, false);
  assert.strictEqual(t.readyState, h.WebSocket.OPEN);
  t.close();
  b.close();
  await Promise.all([t.closed, b.closed]);
});

test('broadcasts: the app\'s type by default, or the one given; bad text refused', async () => {
  const t1 = await connect('/txt');
  const t2 = await connect('/txt');
  t1.send('bcast hi');
  assert.deepStrictEqual(await next(t2, 1), [T('hi')]);
  t1.send('bcast-binary raw');
  assert.deepStrictEqual(await next(t2, 2), [T('hi'), B('raw')]);
  t1.send('bcast-bad');
  assert.deepStrictEqual(await next(t1, 5),
    [T('hi'), T('bcast 2 nil'), B('raw'), T('bcast-binary 2 nil'), T('bcast-bad nil invalid UTF-8')]);
  assert.strictEqual(t2.msgs.length, 2);
  const b1 = await connect('/bin');
  const b2 = await connect('/bin');
  b1.send('bcast-text news');
  assert.deepStrictEqual(await next(b2, 1), [T('news')]);
  b1.send('bcast blob');
  assert.deepStrictEqual(await next(b2, 2), [T('news'), B('blob')]);
  for (const ws of [t1, t2, b1, b2]) ws.close();
  await Promise.all([t1, t2, b1, b2].map((ws) => ws.closed));
});

test('conn:close("normal", code, text): the client sees them, after the queue', async () => {
  const ws = await connect('/bin');
  ws.send('close 4001 room full');
  assert.deepStrictEqual(await ws.closed, { code: 4001, reason: 'room full' });
  assert.deepStrictEqual(ws.msgs, [B('bye')]);
  const ws2 = await connect('/txt');
  const text = '\u00e9'.repeat(61) + 'x'; // 123 bytes
  ws2.send('close 1000 ' + text);
  assert.deepStrictEqual(await ws2.closed, { code: 1000, reason: text });
  const ws3 = await connect('/txt');
  ws3.send('close 3000');
  assert.deepStrictEqual(await ws3.closed, { code: 3000, reason: '' });
});

test('a DROP sends no close frame, whatever code and text it was given', async () => {
  const ws = await connect('/bin');
  ws.send('drop 4002 kicked');
  assert.strictEqual((await ws.closed).code, 1006);
});

test('a bad close code or text raises an argument error and closes nothing', async () => {
  const ws = await connect('/txt');
  ws.send('closeargs');
  const [m] = await next(ws, 1);
  const errs = m.data.replace(/^closeargs /, '').split('|');
  assert.strictEqual(errs.length, 7, m.data);
  for (const e of errs.slice(0, 3)) assert.match(e, /bad argument #2 to 'close' \(close code must be 1000 or 3000-4999\)$/);
  assert.match(errs[3], /bad argument #3 to 'close' \(close text longer than 123 bytes\)$/);
  assert.match(errs[4], /bad argument #3 to 'close' \(close text must be UTF-8 without NUL\)$/);
  assert.match(errs[5], /bad argument #2 to 'close' \(number expected, got string\)$/);
  assert.match(errs[6], /bad argument #3 to 'close' \(string expected, got table\)$/);
  ws.send('json');
  await next(ws, 2);
  ws.close();
  assert.strictEqual((await ws.closed).code, 1005); // our close, echoed without a code
});

test('on_connect returning false, 401, "bad token": HTTP 401 with that body', async () => {
  const res = await h.rawExchange(port, h.upgradeRequest('/txt?token=bad'));
  assert.match(res, /^HTTP\/1\.1 401 Unauthorized\r\n/);
  assert.match(res, /\r\nContent-Length: 10\r\n/);
  assert.ok(res.endsWith('\r\n\r\nbad token\n'), res);
  const r429 = await h.rawExchange(port, h.upgradeRequest('/bin?refuse=429'));
  assert.match(r429, /^HTTP\/1\.1 429 Too Many Requests\r\n/);
  assert.ok(r429.endsWith('\r\n\r\nconnection refused by the application\n'), r429);
  const plain = await h.rawExchange(port, h.upgradeRequest('/bin?refuse=plain'));
  assert.match(plain, /^HTTP\/1\.1 403 Forbidden\r\n/);
});

test('a bad status or body from on_connect is a script error: 403, one line logged', async () => {
  const res = await h.rawExchange(port, h.upgradeRequest('/bin?refuse=status'));
  assert.match(res, /^HTTP\/1\.1 403 Forbidden\r\n/);
  const body = await h.rawExchange(port, h.upgradeRequest('/bin?refuse=body'));
  assert.match(body, /^HTTP\/1\.1 403 Forbidden\r\n/);
  assert.doesNotMatch(body, /two/);
  for (let i = 0; i < 100 && !/bad HTTP body/.test(gcs.stderrText); i++) await h.sleep(20);
  assert.match(gcs.stderrText, /lua app bin: error in on_connect: on_connect refused with HTTP status 200 \(400-599 expected\)/);
  assert.match(gcs.stderrText, /lua app bin: error in on_connect: on_connect refused with a bad HTTP body/);
});

test('"message_type" other than "text" or "binary" stops start-up at its line and column', async () => {
  const bad = await h.startGcs({
    adapters: [{ type: 'lua', apps: [{ name: 'txt', file_name: SCRIPT, message_type: 'json' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'txt' }],
  }, { wait: false });
  assert.strictEqual(await bad.exited, 1, bad.stderrText);
  assert.match(bad.stderrText,
    /gcs\.json:\d+:\d+: adapters\[0\]\.apps\[0\]\.message_type: expected "text" or "binary", got "json"/);
});
