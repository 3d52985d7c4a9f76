-- Per-connection limits through the real host: YELLOW asks on_issue and obeys
-- its reaction, RED drops, conn:set_limit changes one connection.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

local ISSUE = script([[
  local gc = require "gc"
  local app = {}
  function app.on_connect(conn, info)
    conn.reaction = info.query.r
    if info.query.red then conn:set_limit(gc.STATUS_RED, "msg_per_second", tonumber(info.query.red)) end
  end
  function app.on_issue(conn, stat, value)
    conn:send(string.format("issue %d %d", stat, value))
    if conn.reaction == "close" then return gc.REACTION_CLOSE end
    if conn.reaction == "ignore" then return gc.REACTION_IGNORE end
  end
  function app.on_message(conn, data) conn:send("got " .. data) end
  return app
]])

describe("limits", function()
  local host
  before_each(function()
    host = T.host{ script = ISSUE, config = { conn_notice = { msg_per_second = 3 } } }
  end)
  after_each(function() host:close() end)

  it("asks on_issue once at YELLOW and keeps going by default", function()
    local c = host:connect("/")
    for i = 1, 6 do c:send(tostring(i)) end
    assert.same({ "got 1", "got 2", "got 3", "issue 1 4", "got 4", "got 5", "got 6" }, c:received())
    assert.is_true(c:is_open())
    host:advance(1000)                 -- a new second: it may be asked again
    for i = 1, 4 do c:send(tostring(i)) end
    assert.same({ "got 1", "got 2", "got 3", "issue 1 4", "got 4" }, c:received())
  end)

  it("closes NORMAL when on_issue says close, after what was queued", function()
    local c = host:connect("/?r=close")
    for i = 1, 5 do c:send(tostring(i)) end
    assert.same({ "got 1", "got 2", "got 3", "issue 1 4" }, c:received())
    assert.equal("normal", c.close_reason)
    assert.equal(1000, c.close_code)
  end)

  it("drops at RED, set per connection with conn:set_limit", function()
    local c = host:connect("/?r=ignore&red=5")
    local other = host:connect("/")
    for i = 1, 8 do c:send(tostring(i)) end
    assert.equal("drop", c.close_reason)
    local got = c:received()
    assert.equal("got 5", got[#got])
    other:send("fine")
    assert.same({ "got fine" }, other:received())
  end)
end)
