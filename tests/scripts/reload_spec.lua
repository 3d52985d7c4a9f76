-- Hot reload (host:reload, SIGHUP in gcs): the script runs again in its
-- state, its modules reloaded too; connections, their fields, timers and
-- subscriptions survive; on_reload(old) migrates; a reload that fails keeps
-- the old code running.
local T = require "gc.testing"

-- A game in its own folder: game.lua requires rules.lua from it.
local function folder()
  local dir = os.tmpname()
  os.remove(dir)
  assert(os.execute("mkdir -p " .. dir))
  return dir
end

local function write(path, src)
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
end

local GAME_V1 = [[
  local gc = require "gc"
  local rules = require "rules"
  local app = { moves = 0 }
  function app.on_connect(conn) conn.seat = "north"; return true end
  function app.on_message(conn, data)
    app.moves = app.moves + 1
    conn:send(rules.answer(data) .. " v1 " .. conn.seat)
  end
  function app.application_start()
    app.ticks = 0
    gc.set_interval(1000, function() app.ticks = app.ticks + 1 end)
  end
  return app
]]

local GAME_V2 = [[
  local gc = require "gc"
  local rules = require "rules"
  local app = { moves = 0 }
  function app.on_connect(conn) conn.seat = "south"; return true end
  function app.on_message(conn, data)
    app.moves = app.moves + 1
    conn:send(rules.answer(data) .. " v2 " .. conn.seat .. " #" .. app.moves)
  end
  function app.on_reload(old)
    app.moves = old.moves
  end
  return app
]]

describe("hot reload", function()
  local host, dir
  before_each(function()
    dir = folder()
    write(dir .. "/rules.lua", 'return { answer = function(d) return "r1(" .. d .. ")" end }')
    write(dir .. "/game.lua", GAME_V1)
  end)
  after_each(function()
    if host then host:close() end
    host = nil
    os.execute("rm -rf " .. dir)
  end)

  it("runs the new code for connections already open, fields kept, state migrated", function()
    host = T.host{ script = dir .. "/game.lua" }
    local c = host:connect("/")
    c:send("a")
    c:send("b")
    assert.same({ "r1(a) v1 north", "r1(b) v1 north" }, c:received())
    write(dir .. "/rules.lua", 'return { answer = function(d) return "r2(" .. d .. ")" end }')
    write(dir .. "/game.lua", GAME_V2)
    assert.is_true(host:reload())
    -- The same connection, its field as set by v1; the module is new too,
    -- and on_reload carried the two moves over.
    c:send("c")
    assert.same({ "r2(c) v2 north #3" }, c:received())
    assert.is_true(c:is_open())
    -- New connections meet the new on_connect.
    local d = host:connect("/")
    d:send("x")
    assert.same({ "r2(x) v2 south #4" }, d:received())
  end)

  it("keeps the old code when the new script does not compile, raises, returns no table or on_reload fails", function()
    host = T.host{ script = dir .. "/game.lua" }
    local c = host:connect("/")
    local cases = {
      { "local app = {\nfunction", "game.lua:2:" },
      { "error('top level broke')", "top level broke" },
      { "return 42", "must return a table of handlers" },
      { "local app = {}\nfunction app.on_reload() error('cannot migrate') end\nreturn app", "cannot migrate" },
      { "require 'missing_module'\nreturn {}", "missing_module" },
    }
    for i, case in ipairs(cases) do
      write(dir .. "/game.lua", case[1])
      local ok, err = host:reload()
      assert.is_nil(ok, "case " .. i)
      assert.matches(case[2], err, 1, true)
      c:send("m" .. i)
      assert.same({ "r1(m" .. i .. ") v1 north" }, c:received(), "case " .. i)
    end
    -- And a good script after all that reloads as usual.
    write(dir .. "/game.lua", GAME_V2)
    assert.is_true(host:reload())
    c:send("z")
    assert.same({ "r1(z) v2 north #6" }, c:received())
  end)

  it("keeps timers and subscriptions, with the closures they were given", function()
    write(dir .. "/game.lua", [[
      local gc = require "gc"
      local app = { ticks = 0, got = 0 }
      function app.application_start()
        gc.set_interval(1000, function() app.ticks = app.ticks + 1 end)
        gc.subscribe("news", function() app.got = app.got + 1 end)
      end
      function app.on_message(conn, data)
        conn:send("v1 " .. app.ticks .. " " .. app.got)
      end
      return app
    ]])
    host = T.host{ script = dir .. "/game.lua" }
    local c = host:connect("/")
    host:advance(3000)
    c:send("?")
    assert.same({ "v1 3 0" }, c:received())
    write(dir .. "/game.lua", [[
      local gc = require "gc"
      local app = {}
      function app.on_reload(old) app.old = old end
      function app.on_message(conn, data)
        if data == "pub" then gc.publish("news", "x") return end
        conn:send("v2 " .. app.old.ticks .. " " .. app.old.got)
      end
      return app
    ]])
    assert.is_true(host:reload())
    -- v1's interval and subscriber still run their own closures, counting
    -- into v1's table, which the new code took over in on_reload.
    host:advance(2000)
    c:send("pub")
    host:advance(0)
    c:send("?")
    assert.same({ "v2 5 1" }, c:received())
  end)

  it("reloads every state of a routed app on two workers", function()
    host = T.host{ script = dir .. "/game.lua", workers = 2, route = "query.room" }
    local clients = {}
    for r = 1, 8 do clients[r] = host:connect("/?room=" .. r) end
    write(dir .. "/game.lua", GAME_V2)
    assert.is_true(host:reload())
    for r = 1, 8 do
      clients[r]:send("hi")
      local got = clients[r]:received()
      assert.equal(1, #got)
      assert.matches("^r1%(hi%) v2 north #%d+$", got[1])
    end
  end)

  it("takes another script with host:reload(path)", function()
    host = T.host{ script = dir .. "/game.lua" }
    local c = host:connect("/")
    write(dir .. "/other.lua", [[
      local app = {}
      function app.on_message(conn, data) conn:send("other " .. data) end
      return app
    ]])
    assert.is_true(host:reload(dir .. "/other.lua"))
    c:send("q")
    assert.same({ "other q" }, c:received())
  end)
end)
