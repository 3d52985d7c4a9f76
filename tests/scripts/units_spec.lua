-- One unit per name: the config's kbytes_per_second is KiB/s (Game
-- Carrier's name and unit); conn:set_limit's "bytes_per_second" and the
-- value on_issue gets are bytes/s. RED max_msg_size 0 is no limit of the
-- app's own (the host's hard maximum still holds).
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

local RATE = script([[
  local gc = require "gc"
  local app = {}
  function app.on_connect(conn, info)
    local q = info.query
    if q.red then assert(conn:set_limit("red", "bytes_per_second", tonumber(q.red))) end
    if q.yellow then assert(conn:set_limit(gc.STATUS_YELLOW, gc.STAT_BYTES_PER_SECOND, tonumber(q.yellow))) end
    if q.size then assert(conn:set_limit("red", "max_msg_size", tonumber(q.size))) end
  end
  function app.on_issue(conn, stat, value)
    conn:send(string.format("issue %d %d", stat, value))
    return gc.REACTION_IGNORE
  end
  function app.on_message(conn, data) conn:send("got " .. #data) end
  return app
]])

describe("bytes_per_second", function()
  local host
  after_each(function() host:close() end)

  it("a RED limit of 1000 set from Lua drops a client sending 20 KB in a second", function()
    host = T.host{ script = RATE }
    local c = host:connect("/?red=1000")
    for _ = 1, 20 do c:send(string.rep("x", 1000)) end
    assert.equal("drop", c.close_reason)
    -- The first message (1000 bytes) is within the limit, the second is not.
    assert.same({ "got 1000" }, c:received())
  end)

  it("on_issue gets bytes at a YELLOW limit set in bytes", function()
    host = T.host{ script = RATE }
    local c = host:connect("/?yellow=100")
    c:send(string.rep("x", 60))
    c:send(string.rep("x", 60))
    assert.same({ "got 60", "issue 2 120", "got 60" }, c:received())
    assert.is_true(c:is_open())
  end)

  it("the config's kbytes_per_second counts KiB: RED 1 drops at 1025 bytes in a second", function()
    host = T.host{ script = RATE, config = { conn_critical = { kbytes_per_second = 1 } } }
    local c = host:connect("/")
    c:send(string.rep("x", 1000))
    c:send(string.rep("x", 24))
    assert.is_true(c:is_open())
    host:advance(1000)             -- a new second
    c:send(string.rep("x", 1000))
    c:send(string.rep("x", 1000))
    assert.equal("drop", c.close_reason)
    assert.same({ "got 1000", "got 24", "got 1000" }, c:received())
  end)
end)

describe("RED max_msg_size", function()
  local host
  after_each(function() host:close() end)

  it("0 from the config is no limit of the app's own: 17 MiB passes", function()
    host = T.host{ script = RATE, config = { conn_critical = { max_msg_size = 0 } } }
    local c = host:connect("/")
    c:send(string.rep("x", 17 << 20), "binary")
    assert.same({ "got " .. (17 << 20) }, c:received())
  end)

  it("set with conn:set_limit above the hard maximum, the hard maximum holds", function()
    host = T.host{ script = RATE }
    local c = host:connect("/?size=" .. (1 << 40))
    c:send(string.rep("x", 100))
    assert.same({ "got 100" }, c:received())
  end)
end)
