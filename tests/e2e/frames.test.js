// The members of API 1.2 from a native adapter (tests/adapters/frames.c),
// on two workers: connectionAddMessageEx and connectionsBroadcastEx (frame
// types, EILSEQ), connectionCloseEx (the client's close code and reason),
// connectionRefuse (the HTTP answer of a refusal), also from a thread of
// the adapter's own (the mailbox path). /ftext is an app with
// "message_type": "text", /fbin one without.
const { test, after } = require('node:test');
const assert = require('node:assert');
const h = require('./lib/harness');

after(() => h.killAll());

const EILSEQ = 84;
const EINVAL = 22;

async function serve() {
  const gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'frames', apps: [
      { name: 'ftext', message_type: 'text' },
      { name: 'fbin', message_type: 'binary' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'ftext' },
             { ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'fbin' }],
    logging: { level: 'NORMAL' },
    threading: { worker_count: 2 },
  });
  return gcs;
}
const stop = async (gcs) => assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);

function connect(port, pathName) {
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

test('connectionAddMessageEx: TEXT, BINARY, DEFAULT (the app\'s); bad UTF-8 as text is EILSEQ', async () => {
  const gcs = await serve();
  const t = await connect(gcs.port, '/ftext');
  const b = await connect(gcs.port, '/fbin');
  t.send('ex');
  b.send('ex');
  assert.deepStrictEqual(await next(t, 5),
    [T('T'), B('B'), T('D'), B('\xff'), T(`ex 0 0 0 0 ${EILSEQ} ${EILSEQ} ${EINVAL}`)]);
  assert.deepStrictEqual(await next(b, 6),
    [T('T'), B('B'), B('D'), B('\xff'), B('\xff'), T(`ex 0 0 0 0 ${EILSEQ} 0 ${EINVAL}`)]);
  t.close();
  b.close();
  await Promise.all([t.closed, b.closed]);
  await stop(gcs);
});

test('connectionsBroadcastEx over two workers: types per receiver, bad text refused or skipped', async () => {
  const gcs = await serve();
  const a1 = await connect(gcs.port, '/ftext');
  const a2 = await connect(gcs.port, '/ftext');
  const b1 = await connect(gcs.port, '/fbin');
  a1.send('bc');
  const [, , , reply] = await next(a1, 4);
  assert.match(reply.data, new RegExp(`^bc 0/3 0/3 0/3 ${EILSEQ}/0 0/[1-3]$`));
  assert.strictEqual(reply.binary, false);
  assert.deepStrictEqual(await next(a2, 3), [T('all-text'), B('all-bin'), T('all-def')]);
  assert.deepStrictEqual(await next(b1, 4), [T('all-text'), B('all-bin'), B('all-def'), B('\xfd')]);
  await h.sleep(100); // nothing else comes: 0xfe (refused), 0xfd (skipped by text apps)
  assert.strictEqual(a1.msgs.length, 4, JSON.stringify(a1.msgs));
  assert.strictEqual(a2.msgs.length, 3, JSON.stringify(a2.msgs));
  assert.strictEqual(b1.msgs.length, 4, JSON.stringify(b1.msgs));
  for (const ws of [a1, a2, b1]) ws.close();
  await Promise.all([a1, a2, b1].map((ws) => ws.closed));
  await stop(gcs);
});

test('connectionCloseEx: NORMAL sends code and reason after the queue, DROP no frame, bad ones EINVAL', async () => {
  const gcs = await serve();
  const a = await connect(gcs.port, '/fbin');
  a.send('close 4001 room full');
  assert.deepStrictEqual(await a.closed, { code: 4001, reason: 'room full' });
  assert.deepStrictEqual(a.msgs, [T('bye')]);
  const b = await connect(gcs.port, '/ftext');
  b.send('close 0 -'); // 0: 1000, no reason
  assert.deepStrictEqual(await b.closed, { code: 1000, reason: '' });
  const c = await connect(gcs.port, '/ftext');
  c.send('drop 4002 kicked');
  assert.strictEqual((await c.closed).code, 1006);
  const d = await connect(gcs.port, '/fbin');
  d.send('closebad');
  assert.deepStrictEqual(await next(d, 1), [T('closebad' + ` ${EINVAL}`.repeat(8))]);
  d.send('ex'); // still open
  await next(d, 7);
  d.close();
  await d.closed;
  await stop(gcs);
});

test('connectionRefuse in on_connect: the status and body of the refusal; EINVAL for bad ones', async () => {
  const gcs = await serve();
  const r401 = await h.rawExchange(gcs.port, h.upgradeRequest('/ftext?refuse401'));
  assert.match(r401, /^HTTP\/1\.1 401 Unauthorized\r\n/);
  assert.match(r401, /\r\nContent-Type: text\/plain; charset=utf-8\r\n/);
  assert.ok(r401.endsWith('\r\n\r\nbad token\n'), r401);
  const check = await h.rawExchange(gcs.port, h.upgradeRequest('/fbin?refuse-check'));
  assert.match(check, /^HTTP\/1\.1 400 Bad Request\r\n/);
  assert.ok(check.endsWith(`\r\n\r\nrcs ${EINVAL} ${EINVAL} ${EINVAL} ${EINVAL} 0\n`), check);
  const plain = await h.rawExchange(gcs.port, h.upgradeRequest('/fbin?refuse-plain'));
  assert.match(plain, /^HTTP\/1\.1 403 Forbidden\r\n/);
  const ws = await connect(gcs.port, '/fbin?refuse-accept'); // accepted: the answer is forgotten
  ws.send('ex');
  await next(ws, 6);
  ws.close();
  await ws.closed;
  await stop(gcs);
});

test('from an adapter thread: text checked before it leaves, DEFAULT checked on the worker, close with a code', async () => {
  const gcs = await serve();
  const t = await connect(gcs.port, '/ftext');
  const b = await connect(gcs.port, '/fbin');
  t.send('thread');
  b.send('thread');
  assert.deepStrictEqual(await t.closed, { code: 4001, reason: 'from thread' });
  assert.deepStrictEqual(await b.closed, { code: 4001, reason: 'from thread' });
  const summary = T(`thread 0 ${EILSEQ} 0 ${EINVAL}`);
  assert.deepStrictEqual(t.msgs, [T('from-thread'), summary]); // 0xfc was not sent
  assert.deepStrictEqual(b.msgs, [T('from-thread'), B('\xfc'), summary]);
  const notSent = /a text message from another thread is not valid UTF-8: not sent/;
  assert.match(await h.waitStderr(gcs, notSent), notSent);
  await stop(gcs);
});
