-- Application timers in virtual time: interval steps stay exact, and a
-- 0 ms timer that starts itself again ("next tick") runs one turn at a
-- time instead of hanging host:advance.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

-- "spin": a 0 ms timeout that re-arms itself (at most 'limit' times, so a
-- host without the bound fails instead of hanging); "stop" ends it;
-- "ticks" replies how often it ran and the virtual time.
local SPIN = script([[
  local gc = require "gc"
  local ticks, running, limit = 0, false, 300000
  local function spin()
    if not running or ticks >= limit then return end
    ticks = ticks + 1
    gc.set_timeout(0, spin)
  end
  return {
    on_message = function(conn, data)
      if data == "spin" then running = true; spin()
      elseif data == "stop" then running = false
      elseif data == "ticks" then conn:send(ticks .. " at " .. gc.now()) end
    end,
  }
]])

describe("timers in virtual time", function()
  local host
  after_each(function() if host then host:close() end host = nil end)

  it("fire an interval at exact steps, in order with the others", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      local fired = {}
      gc.set_interval(10, function() fired[#fired + 1] = "a" .. gc.now() end)
      gc.set_timeout(3, function()
        gc.set_interval(25, function()           -- 28, 53, ...: off a's steps
          fired[#fired + 1] = "b" .. gc.now()
          -- next tick: the same instant, on the next turn
          gc.set_timeout(0, function() fired[#fired + 1] = "n" .. gc.now() end)
        end)
      end)
      return { on_message = function(conn) conn:send(table.concat(fired, " ")) end }
    ]]) }
    local c = host:connect("/")
    host:advance(1000)
    assert.equal(1000, host:now())
    c:send("?")
    local got = {}
    for w in c:received()[1]:gmatch("%S+") do got[#got + 1] = w end
    local want = {}
    for ms = 1, 1000 do
      if ms % 10 == 0 then want[#want + 1] = "a" .. ms end
      if ms % 25 == 3 and ms > 3 then
        want[#want + 1] = "b" .. ms
        want[#want + 1] = "n" .. ms
      end
    end
    assert.equal(100 + 39 + 39, #got)
    assert.same(want, got)
  end)

  it("run a 0 ms timer that re-arms itself one turn at a time", function()
    host = T.host{ script = SPIN }
    local c = host:connect("/")
    c:send("spin")
    local ok, err = pcall(host.advance, host, 10)
    assert.is_false(ok)
    assert.matches("timers keep firing at %d+ ms without time moving", err)
    assert.matches("0 ms timer that starts itself again", err)
    -- time stopped where the timers spun; the host still serves
    assert.equal(0, host:now())
    c:send("stop")
    host:advance(10)
    assert.equal(10, host:now())
    c:send("ticks")
    local ticks, at = c:received()[1]:match("^(%d+) at (%d+)$")
    assert.equal("10", at)
    assert.is_true(tonumber(ticks) >= 100000 and tonumber(ticks) < 300000, ticks)
  end)

  it("let host:close() end a host whose timers still spin", function()
    host = T.host{ script = SPIN }
    local c = host:connect("/")
    c:send("spin")
    assert.has_error(function() host:advance(1) end)
    host:close()
    host = nil
    assert.equal("normal", c.close_reason)
  end)
end)
