-- host:logs([level]) and host:errors(): what a spec sees of the log. A
-- script's gc.log(gc.ERR, ...) is a line like any other: only script
-- errors raise in the spec.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

local LOGGER = script([[
  local gc = require "gc"
  gc.log(gc.INFO, "loaded with %d rooms", 3)
  return {
    on_message = function(conn, data)
      if data == "boom" then error("boom!") end
      gc.log(gc.ERR, "player %s cheated", data)
      gc.log("warn", "slow tick")
      gc.log(gc.USER, "score %s", data)
      gc.log(gc.DEBUG, "tick detail")
      conn:send("ok")
    end,
  }
]])

local function only(lines, pattern)
  local out = {}
  for _, l in ipairs(lines) do
    if l:match(pattern) then out[#out + 1] = l end
  end
  return out
end

describe("host:logs", function()
  local host
  after_each(function() if host then host:close() end host = nil end)

  it("returns every line so far, oldest first, without timestamps", function()
    host = T.host{ name = "logger", script = LOGGER }
    local c = host:connect("/")
    c:send("bob")
    assert.same({ "ok" }, c:received()) -- gc.log(gc.ERR) did not raise
    local mine = only(host:logs(), "lua app logger")
    -- the host's own line after the script's top level ran
    assert.matches("^I: lua app logger: loaded .* KiB%)$", table.remove(mine, 2))
    assert.same({
      "I: lua app logger: loaded with 3 rooms",
      "E: lua app logger: player bob cheated",
      "W: lua app logger: slow tick",
      "U: lua app logger: score bob",
      "D: lua app logger: tick detail",
    }, mine)
    assert.is_nil(host:logs()[1]:match("^%["))
  end)

  it("filters by level: that level and the more severe ones", function()
    host = T.host{ name = "logger", script = LOGGER }
    host:connect("/"):send("ann")
    assert.same({ "E: lua app logger: player ann cheated" }, host:logs("err"))
    assert.same({ "E: lua app logger: player ann cheated", "W: lua app logger: slow tick" },
                only(host:logs("warn"), "lua app"))
    assert.same(only(host:logs("warn"), "lua app"), only(host:logs(2), "lua app")) -- gc.WARN
    local notice = only(host:logs("notice"), "lua app")
    assert.same({ "E: lua app logger: player ann cheated", "W: lua app logger: slow tick",
                  "U: lua app logger: score ann" }, notice)
    assert.equal(6, #only(host:logs("debug"), "lua app")) -- with the host's "loaded" line
    assert.same({ "U: lua app logger: score ann" }, host:logs("user"))
    assert.same({ "E: lua app logger: player ann cheated", "W: lua app logger: slow tick" },
                only(host:logs("ERR|WARN"), "lua app"))
    assert.has_error(function() host:logs("loud") end)
  end)

  it("keeps the lines after host:close()", function()
    host = T.host{ name = "logger", script = LOGGER }
    host:connect("/"):send("cy")
    host:close()
    assert.equal(1, #host:logs("err"))
    host = nil
  end)
end)

describe("host:errors", function()
  it("returns the script errors only, without timestamps; gc.log(gc.ERR) is not one", function()
    local host = T.host{ name = "logger", script = LOGGER, raise_errors = false }
    local c = host:connect("/")
    c:send("dan")
    c:send("boom")
    local errs = host:errors()
    assert.equal(1, #errs)
    assert.matches("^lua app logger: error in on_message: .*boom!", errs[1])
    assert.same({}, host:errors()) -- taken
    -- both are in the log, at ERR
    assert.equal(2, #only(host:logs("err"), "lua app logger"))
    host:close()
  end)

  it("a script error still raises in the spec", function()
    local host = T.host{ name = "logger", script = LOGGER }
    local c = host:connect("/")
    local ok, err = pcall(c.send, c, "boom")
    assert.is_false(ok)
    assert.matches("boom!", err)
    assert.not_matches("cheated", err)
    host:close()
  end)
end)
