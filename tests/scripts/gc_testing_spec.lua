-- The harness itself: refusals, errors surfacing in the spec, the clock,
-- and the conn object's contract, with small scripts of the spec's own.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

describe("gc.testing", function()
  it("reports a refused client", function()
    local host = T.host{ script = script([[
      return { on_connect = function(conn, info) return info.query.ok == "1" end }
    ]]) }
    local no = host:connect("/?ok=0")
    assert.is_false(no:is_open())
    assert.equal("refused", no.close_reason)
    assert.equal(403, no.status)
    local yes = host:connect("/?ok=1")
    assert.is_true(yes:is_open())
    assert.equal(101, yes.status)
    host:close()
  end)

  it("raises a script error in the spec, with the script's traceback", function()
    local path = script([[
      return { on_message = function(conn, data) error("boom: " .. data) end }
    ]])
    local host = T.host{ script = path }
    local c = host:connect("/")
    local ok, err = pcall(c.send, c, "x")
    assert.is_false(ok)
    assert.matches("boom: x", err)
    assert.matches(path:match("[^/]+$"):gsub("%p", "%%%0") .. ":1:", err)
    assert.matches("in on_message", err)
    -- the connection stays open after an error in on_message
    assert.is_true(c:is_open())
    host:close()
  end)

  it("collects errors instead when told to", function()
    local host = T.host{ raise_errors = false, script = script([[
      return { on_connect = function() error("nope") end }
    ]]) }
    local c = host:connect("/")
    assert.equal("refused", c.close_reason)   -- an error in on_connect refuses
    local errs = host:errors()
    assert.equal(1, #errs)
    assert.matches("nope", errs[1])
    host:close()
  end)

  it("stops a runaway handler with the instruction budget", function()
    local host = T.host{ raise_errors = false,
      config = { lua = { instruction_budget = 100000 } },
      script = script([[
        return { on_message = function(conn, data)
          if data == "loop" then while true do end end
          if data == "sneaky" then
            while true do pcall(function() while true do end end) end
          end
          conn:send("ok " .. data)
        end }
      ]]) }
    local c = host:connect("/")
    c:send("loop")
    c:send("sneaky")
    c:send("after")
    assert.same({ "ok after" }, c:received())
    local errs = host:errors()
    assert.equal(2, #errs)
    assert.matches("instruction budget exceeded", errs[1])
    assert.matches("instruction budget exceeded", errs[2])
    host:close()
  end)

  it("stops a runaway handler with the time limit, in a coroutine too", function()
    local host = T.host{ raise_errors = false,
      config = { lua = { time_limit_ms = 50 } },
      script = script([[
        return { on_message = function(conn, data)
          if data == "hook" then return conn:send(tostring(debug.gethook())) end
          if data == "loop" then while true do end end
          if data == "sneaky" then
            while true do pcall(function() while true do end end) end
          end
          if data == "coroutine" then
            local co = coroutine.wrap(function() while true do end end)
            while true do pcall(co) end
          end
          conn:send("ok " .. data)
        end }
      ]]) }
    local c = host:connect("/")
    -- "hook" first: no hook while scripts run, the VM runs at full speed
    for _, m in ipairs{ "hook", "loop", "sneaky", "coroutine", "after" } do c:send(m) end
    assert.same({ "nil", "ok after" }, c:received())
    local errs = host:errors()
    assert.equal(3, #errs)
    for _, e in ipairs(errs) do
      assert.matches("time limit exceeded %(50 ms of CPU%)", e)
    end
    host:close()
  end)

  it("finds handlers through the handler table's metatable, and changed ones", function()
    local host = T.host{ raise_errors = false, script = script([[
      local base = { on_message = function(conn, data) conn:send("base " .. data) end }
      local app = setmetatable({}, { __index = base })
      function base.on_connect(conn) conn:send("hi") end
      return app
    ]]) }
    local c = host:connect("/")
    c:send("x")
    assert.same({ "hi", "base x" }, c:received())
    host:close()
    host = T.host{ raise_errors = false, script = script([[
      local app = {}
      function app.on_message(conn, data)
        if data == "swap" then
          app.on_message = function(c2, d)
            if d == "break" then app.on_message = 42 else c2:send("new " .. d) end
          end
        else
          conn:send("old " .. data)
        end
      end
      return app
    ]]) }
    c = host:connect("/")
    for _, m in ipairs{ "a", "swap", "b", "break", "c" } do c:send(m) end
    assert.same({ "old a", "new b" }, c:received())
    local errs = host:errors()
    assert.equal(1, #errs)
    assert.matches("attempt to call a number value", errs[1])
    host:close()
  end)

  it("fires connection timers and intervals in virtual time, in order", function()
    local host = T.host{ script = script([[
      local gc = require "gc"
      local app = {}
      function app.on_connect(conn)
        conn:set_timer(250)
        conn.t = gc.set_interval(100, function() conn:send("tick " .. gc.now()) end)
      end
      function app.on_timer(conn) conn:send("timer " .. require("gc").now()) conn.t:cancel() end
      return app
    ]]) }
    local c = host:connect("/")
    host:advance(1000)
    assert.same({ "tick 100", "tick 200", "timer 250" }, c:received())
    assert.equal(1000, host:now())
    host:close()
  end)

  it("keeps one conn object per connection, with fields and methods", function()
    local host = T.host{ script = script([[
      local gc = require "gc"
      local seen = {}
      local app = {}
      function app.on_connect(conn, info)
        conn.name = info.query.name
        seen[conn] = true
        conn:send(string.format("%d %s %s %s", conn.id, conn.path, info.protocol, tostring(conn.remote_port)))
      end
      function app.on_message(conn, data)
        if data == "who" then return conn:send(conn.name .. " " .. tostring(seen[conn])) end
        if data == "bad" then return conn:send({}) end
        if data == "count" then
          local n = 0
          for _ in gc.connections() do n = n + 1 end
          return conn:send("n=" .. n)
        end
      end
      return app
    ]]), raise_errors = false }
    local a = host:connect("/room?name=ann", { remote_port = 5555 })
    assert.same({ "1 /room ws 5555" }, a:received())
    a:send("who")
    assert.same({ "ann true" }, a:received())
    host:connect("/")
    a:send("count")
    assert.same({ "n=2" }, a:received())
    a:send("bad")
    assert.matches("bad argument #1 to 'send' %(string expected, got table%)", host:errors()[1])
    host:close()
  end)

  it("refuses a script with a syntax error, naming file and line", function()
    local path = script("return {\n on_message = function( \n")
    local ok, err = pcall(T.host, { script = path })
    assert.is_false(ok)
    assert.matches("adapter_initialize", err)
    assert.matches(path:match("[^/]+$"):gsub("%p", "%%%0") .. ":3:", err)
  end)
  it("broadcasts to a set or an array of connections, each once", function()
    local host = T.host{ raise_errors = false, script = script([==[
      local gc = require "gc"
      local all = {}
      return {
        on_connect = function(conn) all[#all + 1] = conn end,
        on_message = function(conn, data)
          if data == "set" then
            conn:send("n=" .. gc.broadcast("to set", { [all[1]] = true, [all[2]] = false, [all[3]] = true }))
          elseif data == "array" then
            conn:send("n=" .. gc.broadcast("to array", { all[2], all[2], all[3] }))
          elseif data == "bad" then
            gc.broadcast("x", { 1, 2 })
          end
        end,
      }
    ]==]) }
    local a, b, c = host:connect("/"), host:connect("/"), host:connect("/")
    a:send("set")
    assert.same({ "to set", "n=2" }, a:received())
    assert.same({}, b:received())
    assert.same({ "to set" }, c:received())
    c:close()
    a:send("array") -- b listed twice gets it once; c is gone
    assert.same({ "n=1" }, a:received())
    assert.same({ "to array" }, b:received())
    a:send("bad")
    assert.matches("bad argument #2 to 'broadcast' %(a table of gc.conn expected, found a number entry%)",
      host:errors()[1])
    host:close()
  end)
  it("publishes each Lua application's memory as the counter lua.<app>.memory", function()
    local host = T.host{ name = "mem", script = script([[
      local keep = {}
      return { on_message = function(conn, data)
        if data == "grow" then keep[#keep + 1] = string.rep("x", 1 << 20)
        elseif data == "drop" then keep = {}; collectgarbage(); collectgarbage() end
        conn:send(tostring(collectgarbage("count") * 1024 // 1))
      end }
    ]]) }
    local c = host:connect("/")
    local base = host:counter("lua.mem.memory")
    assert.is_true(base > 0)
    c:send("grow")
    local used = tonumber(c:received()[1])
    local grown = host:counter("lua.mem.memory")
    -- The counter moves in steps of 64 KiB.
    assert.is_true(grown >= base + (1 << 20) - 64 * 1024, ("%d -> %d"):format(base, grown))
    assert.is_true(math.abs(grown - used) <= 64 * 1024 + 4096, ("%d vs %d"):format(grown, used))
    c:send("drop")
    assert.is_true(host:counter("lua.mem.memory") < grown - (1 << 19))
    assert.is_nil(host:counter("no.such.counter"))
    assert.is_true(host:counter("gcs.connections") == 1)
    host:close()
  end)
  it("closes a host that a failed spec left open when the next host starts", function()
    local a = T.host{ script = script("return {}") }
    a:connect("/")
    -- no a:close(), as after a failed assertion
    local b = T.host{ script = script([[return { on_message = function(c, d) c:send(d) end }]]) }
    local c = b:connect("/")
    c:send("x")
    assert.same({ "x" }, c:received())
    assert.has_error(function() a:advance(1) end, "host is closed")
    b:close()
  end)
end)
