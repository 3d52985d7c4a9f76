// Game settings in the config ("settings" at the root, per adapter entry,
// per app entry; merged app over adapter over root), read by a native
// adapter through getOpt (apps[ID].settings..., apps.NAME.settings...) and
// by a Lua script (gc.settings); and the Lua adapter's own check of the
// "lua" objects, which the host leaves to it.
const { test, after } = require('node:test');
const assert = require('node:assert');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const h = require('./lib/harness');

after(() => h.killAll());

const tmp = () => fs.mkdtempSync(path.join(os.tmpdir(), 'gcs-settings-'));

async function ask(port, app, questions) {
  const ws = await h.connect(port, '/' + app);
  for (const q of questions) ws.send(q);
  const answers = await h.received(ws, questions.length);
  ws.close();
  return answers;
}

const LUA_APP = `local gc = require "gc"
local app = {}
function app.on_message(conn, key)
  local v = gc.settings
  for part in key:gsub("^[#?]", ""):gmatch("[^.]+") do v = v[tonumber(part) or part] end
  if key:sub(1, 1) == "#" then v = #v elseif key:sub(1, 1) == "?" then v = v == gc.null end
  local ok, err = pcall(function() gc.settings.motd = "changed" end)
  conn:send(tostring(v) .. "|" .. tostring(ok) .. "|" .. tostring(err):gsub("^.-: ", ""))
end
return app
`;

test('a native adapter reads its merged settings with getOpt; a Lua app with gc.settings', async () => {
  const dir = tmp();
  const script = path.join(dir, 'reader.lua');
  fs.writeFileSync(script, LUA_APP);
  const gcs = await h.startGcs({
    settings: { motd: 'root', level: 1, db: { host: 'db', port: 5432 } },
    adapters: [
      { type: 'native', dir: h.BUILD, name: 'settings_reader',
        settings: { motd: 'adapter', db: { port: 6000 } },
        apps: [{ name: 'a', settings: { level: 7, db: { user: 'ann' }, list: [1, 'two', null] } },
               { name: 'b' }] },
      { type: 'lua', apps: [{ name: 'lua', file_name: script,
                                  settings: { level: 3, gone: null, list: [1, null, 3] } }] }],
    vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'a' },
             { ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'b' },
             { ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'lua' }],
  });
  // The app's own key, then its adapter's, then the root's; objects merge.
  const a = await ask(gcs.port, 'a', [
    'apps[$].settings.motd', 'apps[$].settings.level', 'apps.a.settings.db.port',
    'apps[$].settings.db.host', 'apps[$].settings.db.user', 'apps[$].settings.list',
    'apps[$].settings.nope', 'adapters[0].apps[0].settings.motd', 'settings.motd',
    'where:apps[$].settings.level', 'where:apps[$].settings.motd']);
  assert.deepStrictEqual(a.slice(0, 9), [
    's:adapter', 'i:7', 'i:6000', 's:db', 's:ann', 'j:[1,"two",null]',
    'e:2', 'e:2', 's:root']);
  // Where a merged value comes from: the app's entry, its adapter's.
  const text = fs.readFileSync(path.join(gcs.dir, 'gcs.json'), 'utf8').split('\n');
  const at = (w) => {
    const m = w.match(/^w:(.*):(\d+):(\d+)$/);
    assert.ok(m, w);
    assert.strictEqual(m[1], path.join(gcs.dir, 'gcs.json'));
    return { line: text[Number(m[2]) - 1], rest: text[Number(m[2]) - 1].slice(Number(m[3]) - 1) };
  };
  assert.match(at(a[9]).rest, /^7/);
  assert.match(at(a[9]).line, /"level": 7/);
  assert.match(at(a[10]).rest, /^"adapter"/);
  assert.deepStrictEqual(await ask(gcs.port, 'b', [
    'apps[$].settings.motd', 'apps[$].settings.level', 'apps.b.settings',
    'apps.len']), [
    's:adapter', 'i:1', 'j:{"motd":"adapter","level":1,"db":{"host":"db","port":6000}}', 'i:3']);
  assert.match(await h.waitStderr(gcs, /settings_reader a: motd=adapter/), /settings_reader a: motd=adapter/);
  // Lua: the merged settings, read-only.
  // JSON null: nil in an object, gc.null in an array (its place kept).
  const lua = await ask(gcs.port, 'lua', ['motd', 'level', 'db.port', 'gone', '#list', '?list.2', 'list.3']);
  assert.deepStrictEqual(lua.map((l) => l.split('|')[0]), ['root', '3', '5432', 'nil', '3', 'true', '3']);
  assert.match(lua[0], /\|false\|gc\.settings is read-only \(assigning gc\.settings\.motd\)$/);
  assert.strictEqual(await h.stopGcs(gcs), 0, gcs.stderrText);
});

// A script whose top level says it ran: it must not, when the config is bad.
const LOUD = 'local gc = require "gc"\ngc.log(gc.NOTICE, "LOUD RAN")\nreturn {}\n';

test('the Lua adapter checks lua.* itself: the place, the key, what is wrong; nothing runs', async () => {
  const dir = tmp();
  const script = path.join(dir, 'loud.lua');
  fs.writeFileSync(script, LOUD);
  const cases = [
    [{ lua: { time_limt_ms: 5 } },
     /E: .*gcs\.json:\d+:\d+: lua: unknown key "time_limt_ms" \(did you mean "time_limit_ms"\?\)$/],
    [{ app: { lua: { memory_limit: -1 } } },
     /E: .*gcs\.json:\d+:\d+: adapters\[0\]\.apps\[0\]\.lua\.memory_limit: expected a non-negative integer, got -1$/],
    [{ app: { lua: { unsafe: 'yes' } } },
     /E: .*gcs\.json:\d+:\d+: adapters\[0\]\.apps\[0\]\.lua\.unsafe: expected true or false, got "yes"$/],
    [{ lua: { path: ['lib'] } },
     /E: .*gcs\.json:\d+:\d+: lua\.path: expected a string, got an array$/],
  ];
  for (const [c, want] of cases) {
    const cfg = {
      adapters: [{ type: 'lua', apps: [{ name: 'loud', file_name: script, ...(c.app || {}) }] }],
      vhosts: [{ ip: '127.0.0.1', port: 0, protocol: 'ws', app: 'loud' }],
    };
    if (c.lua) cfg.lua = c.lua;
    const gcs = await h.startGcs(cfg, { wait: false });
    assert.strictEqual(await gcs.exited, 1, gcs.stderrText);
    const errs = gcs.stderrText.split('\n').filter((l) => /\] E: /.test(l));
    assert.strictEqual(errs.length, 1, gcs.stderrText);
    assert.match(errs[0], want);
    assert.doesNotMatch(gcs.stderrText, /LOUD RAN/);
    // The place is the key's (unknown) or the value's line and column.
    const [, line, col] = errs[0].match(/gcs\.json:(\d+):(\d+):/);
    const text = fs.readFileSync(path.join(gcs.dir, 'gcs.json'), 'utf8').split('\n');
    const at = text[Number(line) - 1].slice(Number(col) - 1);
    const key = errs[0].match(/unknown key "([^"]+)"|\.lua\.(\w+):|lua\.(\w+):/).slice(1).find(Boolean);
    if (/unknown key/.test(errs[0])) assert.ok(at.startsWith(`"${key}"`), at);
    else assert.ok(!at.startsWith('"' + key), at);
  }
});
