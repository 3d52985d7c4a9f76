-- A client that stops reading (client:pause) or never answers a close
-- (client:ignore_close), in virtual time: the host's output queue grows as
-- behind a full kernel buffer, the queue limits act on it, and a NORMAL
-- close that cannot finish is dropped after close_drain_ms.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

-- "send N": N messages; "bye": a last message, then a NORMAL close.
-- Every event of the clients other than "/watch" is told to "/watch".
local APP = script([[
  local gc = require "gc"
  local app = {}
  local watcher
  local function tell(s) if watcher and watcher:is_open() then watcher:send(s) end end
  function app.on_connect(conn, info)
    if info.path == "/watch" then watcher = conn end
  end
  function app.on_message(conn, data)
    local n = data:match("^send (%d+)$")
    if n then
      for i = 1, tonumber(n) do
        local ok, err = conn:send("m" .. i)
        if not ok then tell("send " .. i .. " " .. tostring(err)) break end
      end
    elseif data == "bye" then
      conn:send("last words")
      conn:close(gc.CLOSE_NORMAL)
    end
  end
  function app.on_issue(conn, stat, value)
    tell(string.format("issue %d %d", stat, value))
  end
  function app.on_disconnect(conn)
    if conn ~= watcher then tell("disconnect") end
  end
  return app
]])

local function messages(n)
  local t = {}
  for i = 1, n do t[i] = "m" .. i end
  return t
end

describe("a client that does not read", function()
  local host
  after_each(function() host:close() end)

  it("gets nothing while paused, everything in order once resumed", function()
    host = T.host{ script = APP }
    local c = host:connect("/")
    c:pause()
    c:send("send 50")
    assert.same({}, c:received())
    -- queued: m1..m9 and m10..m50, each with its 2-byte frame header
    assert.equal(9 * (2 + 2) + 41 * (3 + 2), host:counter("gcs.queued_bytes"))
    c:resume()
    assert.same(messages(50), c:received())
    assert.equal(0, host:counter("gcs.queued_bytes"))
    assert.is_true(c:is_open())
  end)

  it("is dropped at RED output_queue_size, the others go on", function()
    host = T.host{ script = APP, config = { conn_critical = { output_queue_size = 10 } } }
    local w = host:connect("/watch")
    local reader = host:connect("/")
    local c = host:connect("/")
    c:pause()
    c:send("send 10")                   -- exactly the limit: kept
    assert.is_nil(c.close_reason)
    assert.same({}, w:received())
    c:send("send 1")                    -- one more: the client does not read
    assert.equal("drop", c.close_reason)
    assert.same({ "send 1 output queue full", "disconnect" }, w:received())
    for _ = 1, 3 do reader:send("send 10") end -- a client that reads keeps up
    assert.equal(30, #reader:received())
    assert.is_true(reader:is_open())
  end)

  it("is reported once at YELLOW output_queue_size through on_issue", function()
    host = T.host{ script = APP, config = { conn_notice = { output_queue_size = 5 } } }
    local w = host:connect("/watch")
    local c = host:connect("/")
    c:pause()
    c:send("send 5")
    assert.same({}, w:received())       -- at the limit: not over it
    c:send("send 1")
    assert.same({ "issue 4 6" }, w:received()) -- gc.STAT_OUTPUT_QUEUE_SIZE, 6 queued
    c:send("send 3")
    assert.same({}, w:received())       -- once per episode
    assert.is_true(c:is_open())
    c:resume()                          -- the queue empties: the episode ends
    assert.equal(9, #c:received())
    c:pause()
    c:send("send 6")
    assert.same({ "issue 4 6" }, w:received())
  end)

  it("is dropped after close_drain_ms when the app closes it NORMAL", function()
    host = T.host{ script = APP, config = { close_drain_ms = 2000 } }
    local w = host:connect("/watch")
    local c = host:connect("/")
    c:pause()
    c:send("bye")
    host:advance(1999)
    assert.is_nil(c.close_reason)
    assert.same({}, w:received())
    host:advance(1)
    assert.equal("drop", c.close_reason) -- no close frame ever reached it
    assert.same({}, c:received())
    assert.same({ "disconnect" }, w:received())
    assert.equal(1, host:counter("gcs.connections")) -- the watcher
  end)

  it("that resumes before close_drain_ms gets the last words and a normal close", function()
    host = T.host{ script = APP, config = { close_drain_ms = 2000 } }
    local c = host:connect("/")
    c:pause()
    c:send("bye")
    host:advance(1999)
    c:resume()
    assert.same({ "last words" }, c:received())
    assert.equal("normal", c.close_reason)
    assert.equal(1000, c.close_code)
  end)
end)

describe("a client that ignores the close frame", function()
  local host
  after_each(function() host:close() end)

  it("gets everything and the close frame, then is dropped after close_drain_ms", function()
    host = T.host{ script = APP, config = { close_drain_ms = 3000 } }
    local w = host:connect("/watch")
    local c = host:connect("/")
    c:ignore_close(true)
    c:send("bye")
    assert.same({ "last words" }, c:received())
    assert.equal(1000, c.close_code)    -- the close frame came ...
    assert.is_false(c:is_open())
    host:advance(2999)
    assert.same({}, w:received())       -- ... the host still waits for the answer
    host:advance(1)
    assert.equal("normal", c.close_reason)
    assert.same({ "disconnect" }, w:received())
  end)

  it("that answers after all ends the close at once", function()
    host = T.host{ script = APP, config = { close_drain_ms = 3000 } }
    local w = host:connect("/watch")
    local c = host:connect("/")
    c:ignore_close(true)
    c:send("bye")
    host:advance(1000)
    assert.same({}, w:received())
    c:ignore_close(false)               -- the reply held back goes out
    assert.same({ "disconnect" }, w:received())
    assert.equal(1000, host:now())
  end)
end)
