-- What conn:send answers when the host will not queue a message: one over
-- max_output_msg_size is refused and changes nothing; a client dropped for
-- not reading is closed for the script at once.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

local SENDER = script([[
  local app = {}
  local watcher  -- the client at "/watch" hears every report
  function app.on_connect(conn, info) if info.path == "/watch" then watcher = conn end end
  function app.on_message(conn, data)
    local n, extra = data:match("^(%d+) ?(%d*)$")
    local ok, err = conn:send(string.rep("x", tonumber(n)))
    local report = tostring(ok) .. " " .. tostring(err) .. " " .. tostring(conn:is_open())
    if extra ~= "" then
      for _ = 1, tonumber(extra) do
        ok, err = conn:send("more")
        if not ok then break end
      end
      report = report .. " | " .. tostring(ok) .. " " .. tostring(err) .. " " .. tostring(conn:is_open())
    end
    if conn:is_open() then conn:send(report) end
    if watcher then watcher:send(report) end
  end
  return app
]])

describe("conn:send", function()
  local host
  after_each(function() host:close() end)

  it("refuses a message over max_output_msg_size with 'message too large', nothing else changes", function()
    host = T.host{ script = SENDER, config = { max_output_msg_size = 1000 } }
    local c = host:connect("/")
    c:send("1000")
    c:send("1001")
    local got = c:received()
    assert.equal(3, #got)
    assert.equal(1000, #got[1])
    assert.equal("true nil true", got[2])
    assert.equal("nil message too large true", got[3])
    assert.is_true(c:is_open())
  end)

  it("reports the connection closed once the host dropped it for a full queue", function()
    host = T.host{ script = SENDER, config = { conn_critical = { output_queue_size = 5 } } }
    local w = host:connect("/watch")
    local c = host:connect("/")
    c:send("1 10")
    -- The sixth message does not fit: the host drops the client, and the
    -- script sees it closed in the same handler.
    assert.same({ "true nil true | nil output queue full false" }, w:received())
    assert.equal("drop", c.close_reason)
  end)
end)
