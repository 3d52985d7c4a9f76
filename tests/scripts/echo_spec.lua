-- scripts/echo.lua against the real host code (gc.testing).
local T = require "gc.testing"

describe("echo.lua", function()
  local host
  before_each(function() host = T.host{ script = "scripts/echo.lua" } end)
  after_each(function() host:close() end)

  it("sends every message back, in order, binary-safe", function()
    local c = host:connect("/")
    c:send("one"); c:send("two"); c:send("\0\1\255", "binary")
    assert.same({ "one", "two", "\0\1\255" }, c:received())
    assert.same({}, c:received())
  end)

  it("echoes a 1 MiB message", function()
    local c = host:connect("/")
    local big = string.rep("x", 1 << 20)
    c:send(big)
    local got = c:received()
    assert.equal(1, #got)
    assert.equal(#big, #got[1])
    assert.is_true(got[1] == big)
  end)

  it("closes cleanly when the client does", function()
    local c = host:connect("/")
    c:close()
    assert.is_false(c:is_open())
    assert.equal("normal", c.close_reason)
    assert.equal(1000, c.close_code)
  end)
end)
