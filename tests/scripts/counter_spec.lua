-- gc.counter(name): a script's own figures as host counters (read with
-- host:counter in specs, counterOpen/counterGet by any adapter), created at
-- the script's top level or in application_initialize, shared by every
-- state of a routed app.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

describe("gc.counter", function()
  local host
  after_each(function() if host then host:close() end host = nil end)

  it("add, inc, set, get over a host counter", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      local joins = gc.counter("game.joins")
      local score
      return {
        application_initialize = function() score = gc.counter("game.score") end,
        on_connect = function() joins:inc() end,
        on_message = function(conn, data)
          if data == "reset" then score:set(100) else score:add(tonumber(data)) end
          conn:send(score:get() .. " " .. joins:get() .. " " .. score.name .. " " .. tostring(score))
        end,
      }
    ]]) }
    assert.equal(0, host:counter("game.joins"))
    local a = host:connect("/")
    host:connect("/")
    assert.equal(2, host:counter("game.joins"))
    a:send("5")
    a:send("-2")
    a:send("reset")
    assert.same({ "5 2 game.score gc.counter game.score (5)", "3 2 game.score gc.counter game.score (3)",
                  "100 2 game.score gc.counter game.score (100)" }, a:received())
    assert.equal(100, host:counter("game.score"))
  end)

  it("too late to create one: the error says where to create it", function()
    host = T.host{ raise_errors = false, script = script([[
      local gc = require "gc"
      gc.counter("early")
      return { on_message = function(conn, name)
        local ok, err = pcall(gc.counter, name)
        conn:send(ok and "ok" or err)
      end }
    ]]) }
    local c = host:connect("/")
    c:send("late")
    c:send("early") -- one that exists opens, whenever
    local r = c:received()
    assert.matches("gc.counter%('late'%): too late to create a counter: create it at the " ..
                   "script's top level or in application_initialize", r[1])
    assert.equal("ok", r[2])
    assert.is_nil(host:counter("late"))
  end)

  it("is one counter for every state of a routed app", function()
    host = T.host{ workers = 2, route = "query.room", script = script([[
      local gc = require "gc"
      local msgs = gc.counter("rooms.messages")
      return { on_message = function(conn)
        msgs:inc()
        conn:send(gc.worker.id .. " " .. msgs:get())
      end }
    ]]) }
    local workers = {}
    for room = 1, 6 do
      local c = host:connect("/?room=" .. room)
      c:send("hi")
      local w, n = c:received()[1]:match("^(%d) (%d+)$")
      workers[w] = true
      assert.equal(room, tonumber(n))
    end
    assert.same({ ["0"] = true, ["1"] = true }, workers)
    assert.equal(6, host:counter("rooms.messages"))
  end)

  it("a reloaded script finds its counters again", function()
    local src = [[
      local gc = require "gc"
      local c = gc.counter("reloads.hits")
      return { on_message = function(conn) c:inc(); conn:send(tostring(c:get())) end }
    ]]
    local path = script(src)
    host = T.host{ script = path }
    local cl = host:connect("/")
    cl:send("a")
    assert.is_true(host:reload())
    cl:send("b")
    assert.same({ "1", "2" }, cl:received())
  end)

  it("the host's counters are read-only; bad names raise", function()
    host = T.host{ raise_errors = false, script = script([[
      local gc = require "gc"
      local conns = gc.counter("gcs.connections")
      return { on_message = function(conn, what)
        local ok, err = pcall(function()
          if what == "set" then conns:set(5) elseif what == "empty" then gc.counter("")
          else return conns:get() end
        end)
        conn:send(tostring(ok) .. " " .. tostring(err))
      end }
    ]]) }
    local c = host:connect("/")
    c:send("get")
    c:send("set")
    c:send("empty")
    local r = c:received()
    assert.equal("true 1", r[1])
    assert.matches("counter 'gcs.connections': set: refused %(a counter of the host is read%-only%)", r[2])
    assert.matches("bad argument #1 to 'counter' %(a counter's name is 1..255 bytes", r[3])
  end)
end)
