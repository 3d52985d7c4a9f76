// Hot reload under gcs: SIGHUP (and --watch) runs each Lua script again in
// its state while players stay connected; nothing is dropped, lost or
// reordered, and a reload that fails keeps the old code with one line.
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

after(() => h.killAll());

const echo = (tag) => `
  local app = {}
  function app.on_message(conn, data) conn:send("${tag}:" .. data) end
  return app
`;

function game(src) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-reload-'));
  const file = path.join(dir, 'game.lua');
  fs.writeFileSync(file, src);
  return { dir, file };
}

function serve(file, extra = []) {
  return h.startGcs({ args: [file, '-p', '0', '-a', '127.0.0.1', ...extra] });
}

const count = (text, re) => (text.match(re) || []).length;

test('50 reloads while 100 clients echo: every message answered, in order, nobody dropped', async () => {
  const { file } = game(echo('v'));
  const gcs = await serve(file);
  const clients = [];
  for (let i = 0; i < 100; i++) clients.push(await h.connect(gcs.port, `/?p=${i}`));
  const PER = 30;
  let reloads = 0;
  // One SIGHUP at a time (signals that arrive together are one signal):
  // the next goes once the previous reload is logged.
  const hup = (async () => {
    for (; reloads < 50; reloads++) {
      gcs.kill('SIGHUP');
      for (let i = 0; i < 400 && count(gcs.stderrText, /reloaded .*game\.lua/g) <= reloads; i++) await h.sleep(5);
    }
  })();
  // Each client sends its numbers in bursts while the reloads go on.
  for (let k = 0; k < PER; k += 5) {
    for (const ws of clients) for (let j = k; j < k + 5; j++) ws.send(String(j));
    await h.sleep(15);
  }
  await hup;
  for (let i = 0; i < 400 && !clients.every((ws) => ws.received.length >= PER); i++) await h.sleep(25);
  for (const ws of clients) {
    assert.deepStrictEqual(ws.received.map(String), Array.from({ length: PER }, (_, j) => `v:${j}`));
    assert.strictEqual(ws.readyState, ws.OPEN);
  }
  for (let i = 0; i < 200 && count(gcs.stderrText, /reloaded .*game\.lua/g) < 50; i++) await h.sleep(25);
  assert.strictEqual(count(gcs.stderrText, /SIGHUP received: reloading/g), 50);
  assert.strictEqual(count(gcs.stderrText, /reloaded .*game\.lua/g), 50);
  for (const ws of clients) ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('SIGHUP runs the new code; a broken script keeps the old one with one line naming file:line', async () => {
  const { file } = game(echo('v1'));
  const gcs = await serve(file);
  const ws = await h.connect(gcs.port);
  ws.send('a');
  assert.deepStrictEqual(await h.received(ws, 1), ['v1:a']);
  fs.writeFileSync(file, 'local app = {\nfunction broken(\n');
  gcs.kill('SIGHUP');
  for (let i = 0; i < 200 && !/reload of .* failed/.test(gcs.stderrText); i++) await h.sleep(25);
  const line = (gcs.stderrText.match(/.*reload of .* failed.*/) || [''])[0];
  assert.match(line, /reload of .*game\.lua failed, the old code goes on: .*game\.lua:\d+:/);
  ws.send('b');
  assert.deepStrictEqual(await h.received(ws, 2), ['v1:a', 'v1:b']);
  fs.writeFileSync(file, echo('v2'));
  gcs.kill('SIGHUP');
  for (let i = 0; i < 200 && !/reloaded .*game\.lua/.test(gcs.stderrText); i++) await h.sleep(25);
  ws.send('c');
  assert.deepStrictEqual(await h.received(ws, 3), ['v1:a', 'v1:b', 'v2:c']);
  ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('--watch reloads when the script changes on disk', async () => {
  const { file } = game(echo('w1'));
  const gcs = await serve(file, ['--watch']);
  const ws = await h.connect(gcs.port);
  ws.send('a');
  assert.deepStrictEqual(await h.received(ws, 1), ['w1:a']);
  fs.writeFileSync(file, echo('w2'));
  for (let i = 0; i < 200 && !/reloaded .*game\.lua/.test(gcs.stderrText); i++) await h.sleep(25);
  assert.match(gcs.stderrText, /--watch: a script changed: reloading/);
  ws.send('b');
  assert.deepStrictEqual(await h.received(ws, 2), ['w1:a', 'w2:b']);
  ws.close();
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('a native adapter is not reloaded, and says so', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-reload-'));
  const { cfg } = h.recorderConfig(0, dir, { logging: { level: 'INFO' } });
  const gcs = await h.startGcs(cfg);
  gcs.kill('SIGHUP');
  for (let i = 0; i < 200 && !/not reloaded/.test(gcs.stderrText); i++) await h.sleep(25);
  assert.match(gcs.stderrText, /adapter 0 \(.*librecorder\.so\): not reloaded/);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});
