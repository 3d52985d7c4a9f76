-- gc.testing raises script errors only: a script's own gc.log(gc.ERR, ...)
-- is a log line like any other, so a game that logs its anomalies at ERR
-- can still be tested.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

local LOGGER = [[
  local gc = require "gc"
  gc.log(gc.ERR, "loading: no saved state, starting fresh")
  return {
    on_connect = function(conn) gc.log("err", "connect from %s", conn.remote_ip) end,
    on_message = function(conn, data)
      gc.log(gc.ERR, "player %s cheated", data)
      if data == "boom" then error("boom: " .. data) end
      conn:send("ok " .. data)
    end,
  }
]]

describe("gc.log(gc.ERR) under gc.testing", function()
  it("does not raise in the spec, at load or in a handler", function()
    local host = T.host{ script = script(LOGGER) }
    local c = host:connect("/")
    c:send("x")
    assert.same({ "ok x" }, c:received())
    host:close()
  end)

  it("still raises a script error, without the log lines around it", function()
    local host = T.host{ script = script(LOGGER) }
    local c = host:connect("/")
    local ok, err = pcall(c.send, c, "boom")
    assert.is_false(ok)
    assert.matches("error in on_message: .*boom: boom", err)
    assert.not_matches("cheated", err)
    assert.is_true(c:is_open())
    host:close()
  end)

  it("host:errors() lists the script errors only", function()
    local host = T.host{ raise_errors = false, script = script(LOGGER) }
    local c = host:connect("/")
    c:send("a")
    c:send("boom")
    local errs = host:errors()
    assert.equal(1, #errs)
    assert.matches("boom: boom", errs[1])
    host:close()
  end)
end)
