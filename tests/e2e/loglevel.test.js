// gcs -l LEVEL / --log-level LEVEL: over the config's logging.level, in
// quick mode and with a config; a bad level is a bad command line (2).
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

after(() => h.killAll());

const letters = (text) => new Set([...text.matchAll(/\] ([EWNIDU]): /g)].map((m) => m[1]));

// Starts gcs, waits until it listens (its config's vhost has port 0, or
// -p 0), stops it with SIGTERM; its stderr.
async function runAndStop(cfg) {
  const gcs = await h.startGcs(cfg, { wait: false });
  for (let i = 0; i < 400 && !h.listening(gcs.stderrText).length && gcs.exitCode === null; i++)
    await h.sleep(25);
  assert.ok(h.listening(gcs.stderrText).length, gcs.stderrText);
  const code = await h.stopGcs(gcs);
  assert.strictEqual(code, 0, gcs.stderrText);
  return gcs.stderrText;
}

const echoConfig = (level) => ({
  adapters: [{ type: 'lua', apps: [{ name: 'echo', file_name: 'scripts/echo.lua' }] }],
  vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'echo' }],
  logging: { level },
});

test('quick mode keeps its quiet default; -l debug and --log-level info say more', async () => {
  const quiet = await runAndStop({ args: ['scripts/echo.lua', '-p', '0'] });
  assert.match(quiet, /N: application echo started/);
  assert.doesNotMatch(quiet, /\] [ID]: /, quiet);
  const debug = await runAndStop({ args: ['scripts/echo.lua', '-p', '0', '-l', 'debug'] });
  assert.match(debug, /\] I: lua app echo: loaded .*echo\.lua/, debug);
  const info = await runAndStop({ args: ['--log-level', 'info', 'scripts/echo.lua', '-p', '0'] });
  assert.match(info, /\] I: lua app echo: loaded/, info);
  assert.match(info, /N: application echo started/);
});

test('-l overrides the config: err silences a VERBOSE config, debug opens an ERR one', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-level-'));
  const write = (name, level) => {
    const file = path.join(dir, name);
    fs.writeFileSync(file, JSON.stringify(echoConfig(level)));
    return file;
  };
  const verbose = write('verbose.json', 'VERBOSE');
  const errOnly = write('err.json', 'ERR');
  assert.match(await runAndStop({ args: ['-C', verbose] }), /\] I: lua app echo: loaded/);
  // Only errors; the listening line is written whatever the level.
  const silenced = await runAndStop({ args: ['-C', verbose, '-l', 'err'] });
  assert.deepStrictEqual([...letters(silenced.replace(/.*listening on ws:.*\n/g, ''))], [], silenced);
  const opened = await runAndStop({ args: ['-C', errOnly, '--log-level=debug'] });
  assert.match(opened, /\] I: lua app echo: loaded/, opened);
  assert.match(opened, /N: application echo started/, opened);
  // A mask, as the config writes one: notices, not INFO.
  const mask = await runAndStop({ args: ['-C', errOnly, '-l', 'WARN|NOTICE'] });
  assert.match(mask, /N: application echo started/, mask);
  assert.doesNotMatch(mask, /\] I: /, mask);
});

test('a bad level: exit 2 and the names to use', async () => {
  const gcs = await h.startGcs({ args: ['scripts/echo.lua', '-p', '0', '-l', 'loud'] }, { wait: false });
  assert.strictEqual(await gcs.exited, 2, gcs.stderrText);
  assert.match(gcs.stderrText, /^gcs: -l: bad log level "loud": use err, warn, notice, info or debug/);
  assert.match(gcs.stderrText, /ERR, WARN, NOTICE, INFO, DEBUG, USER, NORMAL, VERBOSE/);
  const none = await h.startGcs({ args: ['scripts/echo.lua', '--log-level'] }, { wait: false });
  assert.strictEqual(await none.exited, 2, none.stderrText);
  assert.match(none.stderrText, /^gcs: --log-level needs a value/);
});
