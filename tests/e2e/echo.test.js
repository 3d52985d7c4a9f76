// Echo of text and binary messages up to 1 MiB through the native echo
// adapter, with the npm 'ws' client, over 127.0.0.1.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const h = require('./lib/harness');

let port, gcs;
before(async () => {
  gcs = await h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'echo',
                 apps: [{ name: 'echo', type_name: 'echo', file_name: 'echo' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'echo' }],
  });
  port = gcs.port;
});
after(async () => {
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  h.killAll();
});

for (const size of [0, 1, 125, 126, 65535, 65536, 1 << 20]) {
  test(`binary message of ${size} bytes comes back intact`, async () => {
    const ws = await h.connect(port);
    const data = Buffer.alloc(size);
    for (let i = 0; i < size; i++) data[i] = (i * 31 + 7) & 0xff;
    ws.send(data);
    await h.received(ws, 1);
    assert.strictEqual(ws.received.length, 1);
    assert.ok(data.equals(ws.received[0]));
    ws.close(1000);
    assert.strictEqual((await ws.closed).code, 1000);
  });
}

test('text messages, UTF-8, in order', async () => {
  const ws = await h.connect(port);
  const texts = ['hello', 'héllo wörld €', 'x'.repeat(70000), ''];
  for (const t of texts) ws.send(t);
  const got = await h.received(ws, texts.length);
  assert.deepStrictEqual(got, texts);
  ws.close();
});

test('a fragmented message arrives as one', async () => {
  const ws = await h.connect(port);
  ws.send('frag-', { fin: false });
  ws.send('men-', { fin: false });
  ws.send('ted', { fin: true });
  assert.deepStrictEqual(await h.received(ws, 1), ['frag-men-ted']);
  ws.close();
});

test('a ping is answered with a pong', async () => {
  const ws = await h.connect(port);
  const pong = new Promise((r) => ws.on('pong', (d) => r(d.toString())));
  ws.ping('are you there');
  assert.strictEqual(await pong, 'are you there');
  ws.close();
});

test('100 clients at once each get their own echoes', async () => {
  const clients = await Promise.all(Array.from({ length: 100 }, () => h.connect(port)));
  clients.forEach((ws, i) => { for (let k = 0; k < 10; k++) ws.send(`c${i}m${k}`); });
  for (const [i, ws] of clients.entries()) {
    const got = await h.received(ws, 10);
    assert.deepStrictEqual(got, Array.from({ length: 10 }, (_, k) => `c${i}m${k}`));
  }
  clients.forEach((ws) => ws.close());
});
