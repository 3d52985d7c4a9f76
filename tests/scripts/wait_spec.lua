-- Handlers that wait (issue 17): every handler runs in a coroutine and may
-- call gc.sleep; the others go on meanwhile, a connection's own events
-- stay in order behind its waiting handler, and gc.sleep follows
-- host:advance's virtual time.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

local WAITER = script([[
  local gc = require "gc"
  local log = {}
  return {
    on_message = function(conn, data)
      local ms = tonumber(data:match("^sleep (%d+)"))
      if ms then
        local t0 = gc.now()
        gc.sleep(ms)
        conn:send("woke " .. ms .. " after " .. (gc.now() - t0))
      else
        conn:send("echo " .. data)
      end
    end,
  }
]])

describe("handlers that wait", function()
  local host
  after_each(function() if host then host:close() end host = nil end)

  it("gc.sleep waits in virtual time while others are served", function()
    host = T.host{ script = WAITER }
    local a, b = host:connect("/"), host:connect("/")
    a:send("sleep 100")
    b:send("x")
    assert.same({ "echo x" }, b:received())
    assert.same({}, a:received())
    host:advance(99)
    assert.same({}, a:received())
    b:send("y")
    assert.same({ "echo y" }, b:received())
    host:advance(1)
    assert.same({ "woke 100 after 100" }, a:received())
  end)

  it("keeps one connection's messages in order behind a wait", function()
    host = T.host{ script = WAITER }
    local a = host:connect("/")
    a:send("sleep 50")
    a:send("first")
    a:send("sleep 10")
    a:send("second")
    assert.same({}, a:received())
    host:advance(50)
    assert.same({ "woke 50 after 50", "echo first" }, a:received())
    host:advance(10)
    assert.same({ "woke 10 after 10", "echo second" }, a:received())
  end)

  it("a client gone during a wait: sends return closed, on_disconnect after", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      local events = {}
      return {
        on_message = function(conn, data)
          if data == "report" then conn:send(table.concat(events, ",")) return end
          events[#events + 1] = "wait"
          gc.sleep(20)
          local ok, err = conn:send("late")
          events[#events + 1] = "resumed:" .. tostring(ok) .. ":" .. tostring(err)
        end,
        on_disconnect = function(conn)
          events[#events + 1] = "disconnect"
        end,
      }
    ]]) }
    local a = host:connect("/")
    a:send("go")
    a:close()
    host:advance(1)
    local b = host:connect("/")
    b:send("report")
    assert.same({ "wait" }, b:received())
    host:advance(20)
    b:send("report")
    assert.same({ "wait,resumed:nil:closed,disconnect" }, b:received())
  end)

  it("on_connect may wait, then refuse: the connection closes with 4000 + status", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      return {
        on_connect = function(conn, req)
          gc.sleep(30)                       -- an auth service, say
          if req.query.token ~= "good" then return false, 401, "bad token" end
          conn.ok = true
        end,
        on_message = function(conn, data) conn:send("got " .. data) end,
        on_disconnect = function(conn)
          if not conn.ok then error("no on_disconnect for a refused one") end
        end,
      }
    ]]) }
    local bad = host:connect("/?token=bad")
    local good = host:connect("/?token=good")
    good:send("early")                      -- queued behind on_connect
    bad:send("ignored")
    host:advance(30)
    assert.is_false(bad:is_open())
    assert.equal(4401, bad.close_code)
    assert.equal("bad token", bad.close_text)
    assert.same({ "got early" }, good:received())
    assert.same({}, bad:received())
  end)

  it("a client gone while on_connect waits: on_disconnect only if it was accepted", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      local events = {}
      local seen = setmetatable({}, { __mode = "k" })  -- what Lua still holds
      return {
        on_connect = function(conn, req)
          seen[conn] = true
          gc.sleep(10)
          events[#events + 1] = "connect " .. req.query.n
          if req.query.n == "2" then return false, 403 end
          conn.n = req.query.n
        end,
        on_message = function(conn)
          collectgarbage()
          local n = 0
          for _ in pairs(seen) do n = n + 1 end
          conn:send(table.concat(events, ",") .. " held " .. n)
        end,
        on_disconnect = function(conn) events[#events + 1] = "disconnect " .. tostring(conn.n) end,
      }
    ]]) }
    local one, two = host:connect("/?n=1"), host:connect("/?n=2")
    one:close()
    two:close()
    host:advance(10)
    local three = host:connect("/?n=3")
    host:advance(10)
    three:send("?")
    assert.same({ "connect 1,disconnect 1,connect 2,connect 3 held 1" }, three:received())
    assert.equal(1, host:counter("gcs.connections"))
  end)

  it("pcall around a waiting call works; an error after it is logged", function()
    host = T.host{ raise_errors = false, script = script([[
      local gc = require "gc"
      return {
        on_message = function(conn, data)
          local ok, err = pcall(function() gc.sleep(5); error("after the wait") end)
          conn:send(tostring(ok) .. " " .. tostring(err):match("after the wait"))
          gc.sleep(5)
          error("boom after resuming")
        end,
      }
    ]]) }
    local a = host:connect("/")
    a:send("x")
    host:advance(10)
    assert.same({ "false after the wait" }, a:received())
    local errs = host:errors()
    assert.equal(1, #errs)
    assert.matches("error in on_message: .*boom after resuming", errs[1])
    a:send("y")                             -- the connection goes on
    host:advance(5)
    assert.same({ "false after the wait" }, a:received())
  end)

  it("a script's own coroutines may wait too, not across a C call", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      return {
        on_message = function(conn)
          local co = coroutine.create(function(a)
            local inner = coroutine.wrap(function(b)
              gc.sleep(5)
              local c = coroutine.yield(b + 1)   -- an ordinary yield, after a wait
              gc.sleep(5)
              return c * 2
            end)
            local x = inner(a)
            local y = inner(x)
            coroutine.yield(x + y)
            return "done"
          end)
          local ok1, v1 = coroutine.resume(co, 1)
          local ok2, v2 = coroutine.resume(co)
          conn:send(table.concat({ tostring(ok1), v1, tostring(ok2), v2,
                                   tostring(coroutine.isyieldable()) }, " "))
          local ok3, err3 = pcall(table.sort, { 1, 2, 3 }, function() gc.sleep(1) end)
          conn:send(tostring(ok3) .. " " .. err3)
        end,
      }
    ]]) }
    local a = host:connect("/")
    a:send("x")
    assert.same({}, a:received())
    host:advance(5)
    assert.same({}, a:received())
    host:advance(5)
    local got = a:received()
    assert.equal("true 6 true done false", got[1])      -- x = 2, y = 4
    assert.matches("^false .*cannot wait across a C call", got[2])
  end)

  it("coroutine.yield in a handler is an error, not a hang", function()
    host = T.host{ raise_errors = false, script = script([[
      return { on_message = function(conn) coroutine.yield(); conn:send("no") end }
    ]]) }
    local a = host:connect("/")
    a:send("x")
    assert.same({}, a:received())
    assert.matches("yield from outside a coroutine", host:errors()[1])
  end)

  it("the time limit counts CPU, not the wait", function()
    host = T.host{ raise_errors = false, config = { lua = { time_limit_ms = 200 } },
      script = script([[
      local gc = require "gc"
      return {
        on_message = function(conn, data)
          gc.sleep(1000)                      -- five times the limit, waiting
          conn:send("done")
          if data == "spin" then while true do end end
        end,
      }
    ]]) }
    local a = host:connect("/")
    a:send("x")
    host:advance(1000)
    assert.same({ "done" }, a:received())
    assert.same({}, host:errors())
    a:send("spin")
    host:advance(1000)
    assert.same({ "done" }, a:received())
    assert.matches("time limit exceeded", host:errors()[1])
  end)

  it("application_start and timers may wait", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      local log = {}
      return {
        application_start = function()
          gc.sleep(10); log[#log + 1] = "start@" .. gc.now()
        end,
        on_connect = function()
          gc.set_timeout(5, function() gc.sleep(10); log[#log + 1] = "timer@" .. gc.now() end)
        end,
        on_message = function(conn) conn:send(table.concat(log, " ")) end,
      }
    ]]) }
    local a = host:connect("/")
    host:advance(20)
    a:send("?")
    assert.same({ "start@10 timer@15" }, a:received())
  end)

  it("past lua.max_pending_events the connection is dropped with a NOTICE", function()
    host = T.host{ config = { lua = { max_pending_events = 3 } }, script = WAITER }
    local a = host:connect("/")
    a:send("sleep 10")
    for i = 1, 3 do a:send("m" .. i) end
    assert.is_true(a:is_open())
    a:send("m4")
    assert.is_false(a:is_open())
    local notice = false
    for _, l in ipairs(host:logs("notice")) do
      notice = notice or l:find("events waiting behind a handler that waits", 1, true) ~= nil
    end
    assert.is_true(notice)
    host:advance(10)
  end)
end)

describe("gc.json", function()
  local host
  after_each(function() if host then host:close() end host = nil end)

  it("encodes and decodes with lua-cjson; bad input is nil, err", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      return {
        on_message = function(conn, data)
          local v, err = gc.json.decode(data)
          if v == nil then conn:send("err " .. err) return end
          conn:send(gc.json.encode({ n = v.n + 1, list = v.list, null = v.x == gc.null }))
        end,
      }
    ]]) }
    local a = host:connect("/")
    a:send('{"n": 41, "list": [1, "two"], "x": null}')
    a:send("{nope")
    local got = a:received()
    assert.matches('"n":42', got[1])
    assert.matches('"list":%[1,"two"%]', got[1])
    assert.matches('"null":true', got[1])
    assert.matches("^err Expected object key string", got[2])
  end)
end)
