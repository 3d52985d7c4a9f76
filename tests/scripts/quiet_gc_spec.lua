-- The quiet collection: after many connections have closed, the state's
-- garbage is collected once the app has had no event for a while.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

describe("quiet collection", function()
  it("gives the memory of 1200 closed connections back once the app is quiet", function()
    local host = T.host{ name = "quiet", script = script([[
      return {
        on_connect = function(conn) conn.blob = { ("x"):rep(1000) .. conn.id } end,
      }
    ]]) }
    local clients = {}
    for i = 1, 1200 do clients[i] = host:connect("/") end
    for i = 1, 1200 do clients[i]:close() end
    host:advance(100)
    local busy = host:counter("lua.quiet.memory")
    host:advance(1000)                 -- not quiet for long enough yet
    assert.is_true(host:counter("lua.quiet.memory") >= busy - 64 * 1024)
    host:advance(4000)                 -- 2 s after the last close, then 2 s more
    local quiet = host:counter("lua.quiet.memory")
    assert.is_true(quiet < busy // 2, ("%d -> %d"):format(busy, quiet))
    host:close()
  end)
end)
