// Server-to-server links (s2sCreate, s2sAddMessage, s2sSetTimer,
// s2sDestroy) between two real gcs processes and within one, driven through
// the s2s test adapter (tests/adapters/s2s.c): a test client talks to its
// "controller" app, which opens a link to a "peer" app and reports every
// client_events callback back as a text message.
const { test, after } = require('node:test');
const assert = require('node:assert');
const net = require('node:net');
const h = require('./lib/harness');

after(() => h.killAll());

function config(port = 0) {
  return {
    adapters: [{ type: 'native', dir: h.BUILD, name: 's2s',
                 apps: [{ name: 'ctl', type_name: 'controller' },
                        { name: 'peer', type_name: 'peer' }] }],
    vhosts: [{ ip: '127.0.0.1', port, protocol: 'ws', app: 'ctl' },
             { ip: '127.0.0.1', port, protocol: 'ws', app: 'peer' }],
    close_drain_ms: 3000,
    logging: { level: 'NORMAL' },
  };
}

// A controller client: 'next(pred)' waits for the next message matching
// 'pred' (bounded), 'all' is everything heard so far.
async function controller(port, connected) {
  const ws = connected || await h.connect(port, '/ctl');
  return {
    ws,
    all: () => ws.received.map((b) => b.toString()),
    async next(pred, what) {
      for (let i = 0; i < 1500; i++) {
        const hit = this.all().find((m) => pred(m));
        if (hit !== undefined) return hit;
        await h.sleep(10);
      }
      throw new Error('no ' + what + ' in:\n' + this.all().join('\n'));
    },
    count(prefix) { return this.all().filter((m) => m.startsWith(prefix)).length; },
    async stats() {
      const n = this.count('stats ');
      ws.send('stats');
      for (let i = 0; i < 400 && this.count('stats ') === n; i++) await h.sleep(10);
      const s = this.all().filter((m) => m.startsWith('stats ')).pop().split(' ');
      return { msgs: Number(s[1]), orderErrors: Number(s[2]) };
    },
  };
}

const { freePort } = h;

async function exchange(c, peerPort, n, open = 'open') {
  c.ws.send(`${open} ${peerPort} peer`);
  assert.strictEqual(await c.next((m) => m.startsWith('create'), 'create'), 'create 0');
  await c.next((m) => m === 'connect' || m.startsWith('error'), 'connect');
  assert.ok(c.all().includes('connect'), c.all().join('\n'));
  // The peer speaks first, then echoes in order; pushes come in order.
  await c.next((m) => m === 'msg hello', 'hello');
  c.ws.send('send ping');
  await c.next((m) => m === 'msg echo:ping', 'echo');
  await c.next((m) => m === 'sent 7 0', 'sent');
  c.ws.send(`burst ${n}`);
  await c.next((m) => m === `msg echo:m${n - 1}`, 'the last echo');
  const echoes = c.all().filter((m) => /^msg echo:m\d+$/.test(m));
  assert.deepStrictEqual(echoes, Array.from({ length: n }, (_, i) => `msg echo:m${i}`));
  c.ws.send('send push 200');
  await c.next((m) => m === 'msg p199', 'the last push');
  const pushes = c.all().filter((m) => /^msg p\d+$/.test(m));
  assert.deepStrictEqual(pushes, Array.from({ length: 200 }, (_, i) => `msg p${i}`));
  // A timer fires once.
  c.ws.send('timer 20');
  assert.strictEqual(await c.next((m) => m.startsWith('settimer'), 'settimer'), 'settimer 0');
  await c.next((m) => m === 'timer', 'timer');
}

test('a link within one gcs: connect, both directions in order, timer, NORMAL close, stale handle', { timeout: 60000 }, async () => {
  const gcs = await h.startGcs(config());
  try {
    const c = await controller(gcs.port);
    await exchange(c, gcs.port, 500);
    // NORMAL close: everything queued before it reaches the peer, in order.
    const before = await c.stats();
    c.ws.send('burstclose 2000');
    assert.strictEqual(await c.next((m) => m.startsWith('destroy'), 'destroy'), 'destroy 0');
    const disc = await c.next((m) => m.startsWith('disconnect'), 'disconnect');
    assert.strictEqual(disc, 'disconnect 2500 0', 'every queued message was handed over');
    const after1 = await c.stats();
    assert.strictEqual(after1.msgs - before.msgs, 2000);
    assert.strictEqual(after1.orderErrors, 0);
    assert.strictEqual(c.count('disconnect'), 1);
    assert.strictEqual(c.count('error'), 0);
    // The handle of the ended link is stale: EINVAL (22) from both calls.
    c.ws.send('stale');
    assert.strictEqual(await c.next((m) => m.startsWith('stale'), 'stale'), 'stale 22 22');
    // A second attempt works; messages from an adapter thread keep order.
    c.ws.send(`open ${gcs.port} peer`);
    await c.next((m) => m === 'create 0', 'create');
    await h.sleep(50);
    await c.next((m) => c.count('connect') === 2 && m === 'connect', 'second connect');
    const b2 = await c.stats();
    c.ws.send('xthread 300');
    for (let i = 0; i < 400 && (await c.stats()).msgs - b2.msgs < 300; i++) await h.sleep(10);
    const a2 = await c.stats();
    assert.strictEqual(a2.msgs - b2.msgs, 300);
    assert.strictEqual(a2.orderErrors, 0);
    // A wss link to this plain-ws port: the TLS handshake fails, once.
    c.ws.send(`wss ${gcs.port} peer`);
    const tlsErr = await c.next((m) => m.startsWith('error'), 'wss error');
    assert.match(tlsErr, /^error TLS handshake failed: .*\(the peer does not speak TLS\?\)$/);
    await h.sleep(300);
    assert.strictEqual(c.count('error'), 1);
    assert.strictEqual(c.count('connect'), 2);
    // The shutdown closes the open link before the process ends.
    assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
    assert.match(gcs.stderrText, /s2s: 0 link\(s\) open at application_shutdown/);
  } finally {
    await h.stopGcs(gcs);
  }
});

test('a link between two gcs; the peer restarts; a refused attempt', { timeout: 60000 }, async () => {
  const port = await freePort();
  let peer = await h.startGcs(config(port), { port });
  const gcs = await h.startGcs(config());
  try {
    const c = await controller(gcs.port);
    await exchange(c, port, 300);
    const s = await controller(port);
    assert.deepStrictEqual(await s.stats(), { msgs: 300, orderErrors: 0 });
    s.ws.close();
    // The peer process goes away: the link reports its end, once.
    assert.strictEqual(await h.stopGcs(peer), 0, peer.stderrText);
    await c.next((m) => m.startsWith('disconnect'), 'disconnect');
    // Nobody listens now: exactly one connection error, no connect.
    const connects = c.count('connect');
    c.ws.send(`open ${port} peer`);
    const err = await c.next((m) => m.startsWith('error'), 'error');
    assert.strictEqual(err, 'error connection refused');
    await h.sleep(300);
    assert.strictEqual(c.count('error'), 1);
    assert.strictEqual(c.count('connect'), connects);
    assert.strictEqual(c.count('disconnect'), 1);
    // An unknown app answers 404: also a connection error.
    c.ws.send(`open ${gcs.port} nosuchapp`);
    await c.next((m) => m === 'error upgrade refused: HTTP 404', '404 error');
    // The peer is back: a new attempt succeeds.
    peer = await h.startGcs(config(port), { port });
    c.ws.send(`open ${port} peer`);
    await c.next((m) => c.count('connect') === connects + 1, 'reconnect');
    c.ws.send('send again');
    await c.next((m) => m === 'msg echo:again', 'echo after restart');
    c.ws.send('close');
    await c.next((m) => c.count('disconnect') === 2, 'second disconnect');
    assert.strictEqual(c.count('error'), 2);
  } finally {
    await h.stopGcs(gcs);
    await h.stopGcs(peer);
  }
});

// gc.connect from a Lua script (tests/e2e/scripts/relay.lua), to a peer
// app of the same process and of another one.
test('gc.connect from Lua over TCP, within one gcs and to another', { timeout: 60000 }, async () => {
  const port = await freePort();
  const other = await h.startGcs(config(port), { port });
  const cfg = config();
  cfg.adapters.push({ type: 'lua', apps: [{ name: 'relay', file_name: 'tests/e2e/scripts/relay.lua' }] });
  cfg.vhosts.push({ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'relay' });
  const gcs = await h.startGcs(cfg);
  try {
    for (const target of [gcs.port, port]) {
      const ws = await h.connect(gcs.port, '/relay');
      const heard = () => ws.received.map(String);
      const wait = async (m) => {
        for (let i = 0; i < 500 && !heard().includes(m); i++) await h.sleep(10);
        assert.ok(heard().includes(m), `no "${m}" in:\n` + heard().join('\n'));
      };
      ws.send(`link ws://127.0.0.1:${target}/peer?x=1`);
      await wait('connect');
      await wait('msg hello');
      for (let i = 0; i < 100; i++) ws.send(`send m${i}`);
      await wait('msg echo:m99');
      const echoes = heard().filter((m) => m.startsWith('msg echo:'));
      assert.deepStrictEqual(echoes, Array.from({ length: 100 }, (_, i) => `msg echo:m${i}`));
      assert.strictEqual(heard().filter((m) => m === 'sent k 0').length, 100);
      // The link's on_message waits (gc.sleep) for "slow" echoes: the
      // messages after one still come in order, behind its wait.
      for (const m of ['slow0', 'fast0', 'slow1', 'fast1']) ws.send(`send ${m}`);
      await wait('msg echo:fast1');
      const turns = heard().filter((m) => /^msg echo:(slow|fast)\d$/.test(m));
      assert.deepStrictEqual(turns, ['msg echo:slow0', 'msg echo:fast0', 'msg echo:slow1', 'msg echo:fast1']);
      ws.send('timer');
      await wait('timer');
      ws.send('close');
      await wait('disconnect');
      ws.send('link ws://127.0.0.1:1/peer');
      await wait('error connection refused');
      ws.send(`link wss://127.0.0.1:${target}/peer`); // a plain-ws peer
      for (let i = 0; i < 500 && !heard().some((m) => m.startsWith('error TLS')); i++) await h.sleep(10);
      assert.ok(heard().some((m) => /^error TLS handshake failed: .*does not speak TLS/.test(m)), heard().join('\n'));
      assert.strictEqual(heard().filter((m) => m.startsWith('error')).length, 2);
      assert.strictEqual(heard().filter((m) => m.startsWith('connect')).length, 1);
      assert.strictEqual(heard().filter((m) => m.startsWith('disconnect')).length, 1);
      ws.close();
    }
  } finally {
    await h.stopGcs(gcs);
    await h.stopGcs(other);
  }
});

// A server that answers the upgrade with a wrong Sec-WebSocket-Accept, not
// with 101, or not at all: the link fails the attempt, once.
test('a bad upgrade answer fails the link with on_client_connection_error', { timeout: 60000 }, async () => {
  const answers = [
    ['HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n' +
     'Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n', 'error bad Sec-WebSocket-Accept'],
    ['HTTP/1.1 503 Service Unavailable\r\nContent-Length: 0\r\n\r\n', 'error upgrade refused: HTTP 503'],
    // No answer at all: the attempt's 10 s bound.
    ['', 'error timeout'],
  ];
  const gcs = await h.startGcs(config());
  try {
    const c = await controller(gcs.port);
    for (const [answer, want] of answers) {
      const fake = net.createServer((s) => {
        let got = '';
        s.on('data', (d) => {
          got += d;
          if (got.includes('\r\n\r\n')) {
            assert.match(got, /^GET \/peer HTTP\/1\.1\r\n/);
            assert.match(got, /\r\nSec-WebSocket-Key: [A-Za-z0-9+/]{22}==\r\n/);
            if (answer) s.write(answer);
          }
        });
        s.on('error', () => {});
      });
      await new Promise((r) => fake.listen(0, '127.0.0.1', r));
      const errors = c.count('error');
      c.ws.send(`open ${fake.address().port} peer`);
      assert.strictEqual(await c.next((m) => m === want, want), want);
      await h.sleep(100);
      assert.strictEqual(c.count('error'), errors + 1);
      assert.strictEqual(c.count('connect'), 0);
      fake.close();
    }
  } finally {
    await h.stopGcs(gcs);
  }
});

// A peer that completes the upgrade and then never reads: past 64 MiB
// queued the link is dropped, and what it still held is reported failed.
test('a link whose peer does not read is dropped at the queue bound', { timeout: 60000 }, async () => {
  const crypto = require('node:crypto');
  const sockets = [];
  const fake = net.createServer((s) => {
    sockets.push(s);
    let got = '';
    const onData = (d) => {
      got += d;
      const m = got.match(/\r\nSec-WebSocket-Key: (\S+)\r\n/);
      if (!got.includes('\r\n\r\n') || !m) return;
      const accept = crypto.createHash('sha1')
        .update(m[1] + '258EAFA5-E914-47DA-95CA-C5AB0DC85B11').digest('base64');
      s.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n' +
              `Connection: Upgrade\r\nSec-WebSocket-Accept: ${accept}\r\n\r\n`);
      s.off('data', onData);
      s.pause(); // reads nothing more
    };
    s.on('data', onData);
    s.on('error', () => {});
  });
  await new Promise((r) => fake.listen(0, '127.0.0.1', r));
  const gcs = await h.startGcs(config());
  try {
    const c = await controller(gcs.port);
    c.ws.send(`open ${fake.address().port} peer`);
    await c.next((m) => m === 'connect', 'connect');
    c.ws.send('fill 80 1048576'); // 80 MiB
    const disc = await c.next((m) => m.startsWith('disconnect'), 'disconnect');
    const [, ok, failed] = disc.split(' ').map(Number);
    assert.ok(failed > 0 && ok + failed <= 80, disc);
    assert.match(gcs.stderrText, /link to 127\.0\.0\.1:\d+\/peer: output queue full/);
    assert.strictEqual(c.count('error'), 0);
  } finally {
    for (const s of sockets) s.destroy();
    fake.close();
    await h.stopGcs(gcs);
  }
});
