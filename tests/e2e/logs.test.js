// The log as operators run it: SIGUSR1 reopens the file after logrotate
// renamed it (earlier lines in the renamed file, later ones in the new one,
// none lost); "logging": { "format": "json" } writes one JSON object per
// line; a stderr nobody reads never stalls players (the log's writer thread
// passes it over, the file keeps every line).
const { test, after } = require('node:test');
const assert = require('node:assert');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

after(() => h.killAll());

const echoApp = {
  adapters: [{ type: 'native', dir: h.BUILD, name: 'echo', apps: [{ name: 'echo' }] }],
  vhosts: [{ ip: '127.0.0.1', port: 0, app: 'echo' }],
};

// An unmasked client frame: refused with 1002, one NOTICE line each.
const badFrame = Buffer.concat([Buffer.from(h.upgradeRequest('/')), Buffer.from([0x81, 0x02, 0x68, 0x69])]);
const invalidLines = (text) =>
  (text.match(/\] N: connection 127\.0\.0\.1:\d+: invalid frame, closing with 1002\n/g) || []).length;
const read = (file) => { try { return fs.readFileSync(file, 'utf8'); } catch { return ''; } };

async function until(pred, what, tries = 400) {
  for (let i = 0; i < tries; i++) {
    if (await pred()) return;
    await h.sleep(25);
  }
  throw new Error('timed out waiting for ' + what);
}

async function echoOnce(port, text) {
  const ws = await h.connect(port);
  ws.send(text);
  const got = await h.received(ws, 1);
  ws.close();
  return got;
}

test('SIGUSR1 after a rename: earlier lines in the renamed file, later ones in a new file, none lost', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-logs-'));
  const file = path.join(dir, 'gcs.log');
  const gcs = await h.startGcs({ ...echoApp, logging: { log_file: file, level: 'NORMAL', conn_lines_per_second: 0 } });
  await Promise.all(Array.from({ length: 30 }, () => h.rawExchange(gcs.port, badFrame)));
  // logrotate: rename, then "postrotate: kill -USR1".
  fs.renameSync(file, file + '.1');
  process.kill(gcs.pid, 'SIGUSR1');
  // The writer opens the new file once the lines before are in the old one.
  await until(() => fs.existsSync(file), 'the new log file');
  await Promise.all(Array.from({ length: 30 }, () => h.rawExchange(gcs.port, badFrame)));
  assert.deepStrictEqual(await echoOnce(gcs.port, 'still serving'), ['still serving']);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
  const old = read(file + '.1');
  const cur = read(file);
  assert.strictEqual(invalidLines(old), 30, old);
  assert.strictEqual(invalidLines(cur), 30, cur);
  assert.match(old, /listening on ws:\/\/127\.0\.0\.1:\d+\n/);
  assert.match(old, new RegExp(`\\] N: SIGUSR1 received: reopening the log file ${file.replace(/[.]/g, '\\.')}\\n$`));
  assert.match(cur, /^\[[^\]]+\] N: log file reopened\n/);
  assert.match(cur, /\] N: gcs stopped\n$/);
  // Whole lines only, in both.
  for (const text of [old, cur])
    for (const line of text.split('\n').filter(Boolean))
      assert.match(line, /^\[\d{4}\/\d\d\/\d\d \d\d:\d\d:\d\d:\d{4}\] [EWNIDU]: \S/);
  // stderr got all of them too.
  assert.strictEqual(invalidLines(gcs.stderrText), 60);
});

test('SIGUSR1 without a log file: said, and gcs goes on', async () => {
  const gcs = await h.startGcs({ ...echoApp, logging: { level: 'NORMAL' } });
  process.kill(gcs.pid, 'SIGUSR1');
  await until(() => /N: SIGUSR1 received: no log file to reopen \(logging to stderr only\)\n/.test(gcs.stderrText),
              'the SIGUSR1 line');
  assert.deepStrictEqual(await echoOnce(gcs.port, 'hi'), ['hi']);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

test('"format": "json": every line of the file and of stderr is a JSON object with ts, level, msg', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-logs-'));
  const file = path.join(dir, 'gcs.log');
  const script = path.join(dir, 'logecho.lua');
  fs.writeFileSync(script, [
    'local gc = require "gc"',
    'local app = {}',
    'function app.on_message(conn, data)',
    '  gc.log("notice", "got: " .. data)',
    '  conn:send(data)',
    'end',
    'return app',
  ].join('\n'));
  const gcs = await h.startGcs({
    adapters: [{ type: 'lua', apps: [{ name: 'logecho', file_name: script }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, app: 'logecho' }],
    logging: { log_file: file, level: 'NORMAL', format: 'json' },
  }, { wait: false });
  // The listening line is JSON too: the port is in its msg.
  let port;
  await until(() => {
    const m = gcs.stderrText.match(/"msg":"listening on ws:\/\/127\.0\.0\.1:(\d+)"\}\n/);
    port = m && Number(m[1]);
    return port || gcs.exitCode !== null;
  }, 'the listening line');
  assert.ok(port, gcs.stderrText);
  // Quotes, a backslash, a newline, a control character and a byte that
  // is not UTF-8, as a binary message the script logs.
  const nasty = Buffer.from('quote " backslash \\ nl \n ctl \x01 bad \xff end', 'latin1');
  const ws = await h.connect(port);
  ws.send(nasty);
  const got = await h.received(ws, 1);
  assert.strictEqual(Buffer.compare(Buffer.from(ws.received[0]), nasty), 0, String(got));
  ws.close();
  await until(() => read(file).includes('got: '), 'the logged message');
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);

  const raw = fs.readFileSync(file);
  // Valid UTF-8 throughout (a stray byte would make a log shipper choke).
  const text = new TextDecoder('utf-8', { fatal: true }).decode(raw);
  const lines = text.split('\n');
  assert.strictEqual(lines.pop(), '');
  assert.ok(lines.length >= 4, text);
  const objects = lines.map((l) => JSON.parse(l));
  for (const o of objects) {
    assert.deepStrictEqual(Object.keys(o), ['ts', 'level', 'msg']);
    assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
    assert.ok(['error', 'warn', 'notice', 'info', 'debug', 'user'].includes(o.level), o.level);
    assert.strictEqual(typeof o.msg, 'string');
  }
  assert.ok(objects.some((o) => o.level === 'notice' && o.msg === 'gcs stopped'), text);
  const logged = objects.find((o) => o.msg.includes('got: '));
  // (The Lua adapter writes a newline inside a message as " | ".)
  assert.ok(logged.msg.endsWith('got: quote " backslash \\ nl  |  ctl \u0001 bad \ufffd end'), logged.msg);
  assert.strictEqual(logged.level, 'notice');
  // stderr: the same lines.
  const errLines = gcs.stderrText.split('\n').filter(Boolean);
  assert.strictEqual(errLines.length, lines.length);
  for (const l of errLines) assert.deepStrictEqual(Object.keys(JSON.parse(l)), ['ts', 'level', 'msg']);
});

test('a stderr nobody reads does not stall players; the file keeps every line', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-logs-'));
  const file = path.join(dir, 'gcs.log');
  const cfg = { ...echoApp, logging: { log_file: file, level: 'NORMAL|INFO', conn_lines_per_second: 0 } };
  if (h.WORKERS) cfg.threading = { worker_count: h.WORKERS };
  const cfgFile = path.join(dir, 'gcs.json');
  fs.writeFileSync(cfgFile, JSON.stringify(cfg));
  // stderr is a pipe this test never reads: once it is full, a write
  // there blocks until someone reads.
  const gcs = spawn(h.GCS, ['-C', cfgFile], { cwd: h.SRC, stdio: ['ignore', 'ignore', 'pipe'] });
  const exited = new Promise((resolve) => gcs.on('exit', (code, sig) => resolve(code === null ? sig : code)));
  try {
    let port;
    await until(() => {
      const m = read(file).match(/listening on ws:\/\/127\.0\.0\.1:(\d+)\n/);
      port = m && Number(m[1]);
      return port || gcs.exitCode !== null;
    }, 'the listening line in the log file');
    assert.ok(port, read(file));
    // Refused requests (not an upgrade): one INFO line each, until the
    // writer, having waited for stderr GC_LOG_STDERR_WAIT_MS, says it is
    // not being read.
    const refuse = 'GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n';
    const stalled = () => /\] W: stderr is not being read: lines go to this file only until it is\n/.test(read(file));
    let refused = 0;
    for (let round = 0; round < 600 && !stalled(); round++) {
      await Promise.all(Array.from({ length: 50 }, () => h.rawExchange(port, refuse)));
      refused += 50;
      await h.sleep(25);
    }
    assert.ok(stalled(), `stderr never filled up after ${refused} refusals`);
    // stderr is full and unread: players are served all the same.
    assert.deepStrictEqual(await echoOnce(port, 'ping'), ['ping']);
    await Promise.all(Array.from({ length: 100 }, () => h.rawExchange(port, refuse)));
    refused += 100;
    assert.deepStrictEqual(await echoOnce(port, 'pong'), ['pong']);
    // And it stops cleanly: the writer does not wait for that stderr.
    gcs.kill('SIGTERM');
    let timer;
    const code = await Promise.race([exited, new Promise((r) => { timer = setTimeout(() => r('timeout'), 15000); })]);
    clearTimeout(timer);
    assert.strictEqual(code, 0);
    // Every refusal is in the file (or counted, had the queue filled).
    const text = read(file);
    const lines = (text.match(/\] I: connection 127\.0\.0\.1:\d+: HTTP 400: not a WebSocket upgrade/g) || []).length;
    const lost = [...text.matchAll(/\] W: (\d+) log lines lost: the log could not keep up\n/g)]
      .reduce((n, m) => n + Number(m[1]), 0);
    assert.strictEqual(lines + lost, refused, text.slice(-2000));
    assert.match(text, /\] N: gcs stopped\n$/);
  } finally {
    if (gcs.exitCode === null) gcs.kill('SIGKILL');
  }
});
