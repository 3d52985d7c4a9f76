// httpRequest (API 1.4) through a real adapter: gcs serving the http_fetch
// test adapter, real ws clients asking it to fetch from a Node HTTP server
// started here on 127.0.0.1; the answers come back over the WebSocket.
// Under make tsan (GC_WORKERS=4) the clients' requests run on several
// worker loops at once.
const { test, before, after } = require('node:test');
const assert = require('node:assert');
const http = require('node:http');
const h = require('./lib/harness');

let server;
let base;
let connections = 0;
let slowSeen = 0; // /slow requests that arrived
const hanging = new Set(); // /slow requests, answered never (ended at the end)

before(async () => {
  server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      if (req.url === '/hello') {
        res.writeHead(200, { 'X-Test': 'yes', 'Content-Type': 'text/plain' });
        res.end('hello');
      } else if (req.url === '/echo') {
        res.end(`${req.method}:${body}`);
      } else if (req.url === '/chunked') {
        res.write('part1,'); // no Content-Length: Node sends it chunked
        setTimeout(() => res.end('part2'), 20);
      } else if (req.url.startsWith('/who')) {
        res.end(req.url);
      } else if (req.url === '/slow') {
        slowSeen++;
        hanging.add(res);
      } else {
        res.writeHead(404);
        res.end('none');
      }
    });
  });
  server.on('connection', () => { connections++; });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  base = `http://127.0.0.1:${server.address().port}`;
});

after(async () => {
  h.killAll();
  for (const res of hanging) res.destroy();
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

// The next message on 'ws' after sending 'text' (bounded).
async function ask(ws, text) {
  const n = ws.received.length;
  ws.send(text);
  for (let i = 0; i < 1500 && ws.received.length <= n; i++) await h.sleep(10);
  assert.ok(ws.received.length > n, `no answer to ${text}`);
  return ws.received[n].toString();
}

async function startFetcher() {
  return h.startGcs({
    adapters: [{ type: 'native', dir: h.BUILD, name: 'http_fetch', apps: [{ name: 'f' }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'f' }],
    logging: { level: 'NORMAL' },
  });
}

test('an adapter waits on HTTP from on_message: GET, POST, chunked, errors', { timeout: 60000 }, async () => {
  const gcs = await startFetcher();
  const ws = await h.connect(gcs.port);
  assert.strictEqual(await ask(ws, `GET ${base}/hello`), '200 yes hello');
  const before = connections;
  assert.strictEqual(await ask(ws, `GET ${base}/hello`), '200 yes hello');
  assert.strictEqual(connections, before, 'the second request reused the pooled connection');
  assert.strictEqual(await ask(ws, `POST ${base}/echo ping`), '200 - POST:ping');
  assert.strictEqual(await ask(ws, `GET ${base}/chunked`), '200 - part1,part2');
  assert.strictEqual(await ask(ws, `GET ${base}/nope`), '404 - none');
  assert.strictEqual(await ask(ws, `TIMEOUT 300 ${base}/slow`), 'err 110 timeout');
  assert.strictEqual(await ask(ws, `CANCEL ${base}/slow`), 'err 125 cancelled');
  assert.strictEqual(await ask(ws, `XCANCEL ${base}/slow`), 'err 125 cancelled');
  assert.strictEqual(await ask(ws, 'GET https://127.0.0.1:1/'), 'err 111 connection refused');
  assert.strictEqual(await ask(ws, 'GET nonsense'), 'refused 22');
  ws.close();
  await ws.closed;
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('many clients at once: every answer on its own connection and worker', { timeout: 60000 }, async () => {
  const gcs = await startFetcher();
  const clients = await Promise.all(Array.from({ length: 8 }, () => h.connect(gcs.port)));
  await Promise.all(clients.map(async (ws, i) => {
    for (let k = 0; k < 5; k++) {
      assert.strictEqual(await ask(ws, `GET ${base}/who?c=${i}&k=${k}`), `200 - /who?c=${i}&k=${k}`);
    }
  }));
  for (const ws of clients) ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('requests pending at the shutdown end cleanly (ECANCELED) and gcs exits 0', { timeout: 60000 }, async () => {
  const gcs = await startFetcher();
  const ws = await h.connect(gcs.port);
  const seen = slowSeen;
  ws.send(`GET ${base}/slow`);
  ws.send(`GET ${base}/slow`);
  for (let i = 0; i < 1000 && slowSeen < seen + 2; i++) await h.sleep(10);
  assert.strictEqual(slowSeen, seen + 2, 'the requests reached the server');
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  // Their callbacks ran (ECANCELED) before application_shutdown, none after.
  assert.match(gcs.stderrText, /http_fetch: 2 request\(s\) cancelled by the shutdown/);
  assert.doesNotMatch(gcs.stderrText, /after application_shutdown|Sanitizer|runtime error/);
});
