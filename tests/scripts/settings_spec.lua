-- gc.settings: the app's "settings" of the config (merged: the app entry's
-- over its adapter entry's over the root's), read-only, in every state of
-- a routed app; T.host{ settings = {...} } puts them on the app it makes.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

-- Answers "a.b.c" with the value at gc.settings.a.b.c (tostring), and
-- "write a.b" with what assigning there raises.
local READER = script([[
  local gc = require "gc"
  local app = {}
  local function at(path)
    local v = gc.settings
    for part in path:gmatch("[^.]+") do v = v[tonumber(part) or part] end
    return v
  end
  function app.on_message(conn, msg)
    local path = msg:match("^write (.+)$")
    if path then
      local parent, key = path:match("^(.-)%.?([^.]+)$")
      local ok, err = pcall(function()
        local t = parent == "" and gc.settings or at(parent)
        t[tonumber(key) or key] = "changed"
      end)
      conn:send(ok and "written" or err)
      return
    end
    conn:send(tostring(at(msg)))
  end
  return app
]])

local function ask(host, ...)
  local c = host:connect("/?room=" .. tostring(select("#", ...)))
  local out = {}
  for i = 1, select("#", ...) do
    c:send((select(i, ...)))
    out[i] = c:received()[1]
  end
  c:close()
  return out
end

describe("gc.settings", function()
  local host
  after_each(function() if host then host:close() end host = nil end)

  it("holds T.host's settings, nested tables and arrays included", function()
    host = T.host{ script = READER, settings = {
      max_players = 8, motd = "hi", ratio = 0.5, ranked = true,
      db = { host = "db.local", port = 5432 }, maps = { "dust", "inferno" } } }
    assert.same({ "8", "hi", "0.5", "true", "db.local", "5432", "dust", "inferno", "nil" },
                ask(host, "max_players", "motd", "ratio", "ranked", "db.host", "db.port",
                    "maps.1", "maps.2", "nope"))
  end)

  it("is read-only at every level, with a clear error", function()
    host = T.host{ script = READER, settings = { db = { port = 1 }, maps = { "a" } } }
    local r = ask(host, "write max_players", "write db.port", "write maps.1")
    assert.matches("gc.settings is read%-only %(assigning gc.settings.max_players%)", r[1])
    assert.matches("gc.settings is read%-only %(assigning gc.settings.db.port%)", r[2])
    assert.matches("gc.settings is read%-only %(assigning gc.settings.maps%[1%]%)", r[3])
    assert.same({ "1" }, ask(host, "db.port")) -- unchanged
  end)

  it("reads like a table: pairs, ipairs, #, but not its metatable", function()
    host = T.host{ raise_errors = true, script = script([[
      local gc = require "gc"
      local keys, items = {}, {}
      for k in pairs(gc.settings) do keys[#keys + 1] = k end
      table.sort(keys)
      for i, v in ipairs(gc.settings.maps) do items[i] = v end
      local ok = pcall(setmetatable, gc.settings, nil)
      return { on_message = function(conn)
        conn:send(table.concat(keys, ",") .. " " .. table.concat(items, ",") .. " " ..
                  #gc.settings.maps .. " " .. tostring(getmetatable(gc.settings)) ..
                  " " .. tostring(ok))
      end }
    ]]), settings = { a = 1, b = 2, maps = { "x", "y", "z" } } }
    local c = host:connect("/")
    c:send("?")
    assert.same({ "a,b,maps x,y,z 3 gc.settings false" }, c:received())
  end)

  it("merges the config's layers: app over adapter over root, objects key by key", function()
    host = T.host{ config = {
      settings = { motd = "root", level = 1, db = { host = "h", port = 1 } },
      adapters = { { type = "lua", settings = { motd = "adapter", db = { port = 2 } },
                     apps = { { name = "r", file_name = READER,
                                settings = { level = 3, tags = { "t" } } } } } },
      vhosts = { { ip = "127.0.0.1", port = 7681, protocol = "ws", app = "r" } } } }
    assert.same({ "adapter", "3", "h", "2", "t" },
                ask(host, "motd", "level", "db.host", "db.port", "tags.1"))
  end)

  it("is there in every state of a routed app", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      return { on_message = function(conn)
        conn:send(gc.worker.id .. ":" .. gc.settings.motd)
      end }
    ]]), workers = 2, route = "query.room", settings = { motd = "everywhere" } }
    local seen = {}
    for room = 1, 8 do
      local c = host:connect("/?room=" .. room)
      c:send("?")
      seen[c:received()[1]] = true
    end
    assert.same({ ["0:everywhere"] = true, ["1:everywhere"] = true }, seen)
  end)

  it("is an empty table without settings", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      return { on_message = function(conn)
        local n = 0
        for _ in pairs(gc.settings) do n = n + 1 end
        conn:send(type(gc.settings) .. " " .. n)
      end }
    ]]) }
    local c = host:connect("/")
    c:send("?")
    assert.same({ "table 0" }, c:received())
  end)

  it("must be a table with string keys", function()
    assert.has_error(function() T.host{ script = READER, settings = 5 } end,
                     "gc.testing.host: 'settings' must be a table")
    assert.has_error(function() T.host{ script = READER, settings = { 1, 2 } } end)
  end)
end)
