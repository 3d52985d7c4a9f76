-- Text frames, close codes and HTTP refusals (issue 18), against
-- tests/e2e/scripts/messages.lua: client:received() also answers each
-- message's frame type; client.close_code/close_text are the close frame's,
-- client.status/body the answer of a refused upgrade.
local T = require "gc.testing"

local SCRIPT = "tests/e2e/scripts/messages.lua"

describe("message types", function()
  local host
  after_each(function() host:close() end)

  it("are binary by default, text with message_type = \"text\"", function()
    host = T.host{ script = SCRIPT }
    local c = host:connect("/")
    c:send("json")
    local got, types = c:received()
    assert.same({ '{"hello":"world","n":1}' }, got)
    assert.same({ "binary" }, types)
    host:close()
    host = T.host{ script = SCRIPT, message_type = "text" }
    c = host:connect("/")
    c:send("json")
    got, types = c:received()
    assert.same({ '{"hello":"world","n":1}' }, got)
    assert.same({ "text" }, types)
  end)

  it("can be chosen per message, either way", function()
    host = T.host{ script = SCRIPT, message_type = "text" }
    local c = host:connect("/")
    c:send("binary b")
    c:send("text t")
    local got, types = c:received()
    assert.same({ "b", "t" }, got)
    assert.same({ "binary", "text" }, types)
  end)

  it("refuses text that is not UTF-8 and sends nothing", function()
    host = T.host{ script = SCRIPT }
    local c = host:connect("/")
    c:send("bad")
    c:send("baddefault") -- binary app: any bytes go
    local got, types = c:received()
    assert.same({ "bad nil invalid UTF-8", "\xff", "baddefault true nil" }, got)
    assert.same({ "binary", "binary", "binary" }, types)
    host:close()
    host = T.host{ script = SCRIPT, message_type = "text" }
    c = host:connect("/")
    c:send("baddefault")
    assert.same({ "baddefault nil invalid UTF-8" }, (c:received()))
    assert.is_true(c:is_open())
  end)

  it("applies to broadcasts: the app's type, or the one given", function()
    host = T.host{ script = SCRIPT, message_type = "text" }
    local a, b = host:connect("/"), host:connect("/")
    a:send("bcast hi")
    local got, types = b:received()
    assert.same({ "hi" }, got)
    assert.same({ "text" }, types)
    a:send("bcast-binary raw")
    got, types = b:received()
    assert.same({ "raw" }, got)
    assert.same({ "binary" }, types)
    a:send("bcast-bad")
    assert.same({}, (b:received()))
    got = a:received()
    assert.same({ "hi", "bcast 2 nil", "raw", "bcast-binary 2 nil", "bcast-bad nil invalid UTF-8" }, got)
    host:close()
    host = T.host{ script = SCRIPT }
    a, b = host:connect("/"), host:connect("/")
    a:send("bcast-text t")
    a:send("bcast-room r")
    got, types = b:received()
    assert.same({ "t" }, got)
    assert.same({ "text" }, types)
    got, types = a:received()
    assert.same({ "t", "bcast-text 2 nil", "r", "bcast-room 1 nil" }, got)
    assert.same({ "text", "binary", "text", "binary" }, types)
  end)
end)

describe("conn:close with a code and a text", function()
  local host
  after_each(function() host:close() end)

  it("sends them in the close frame of a NORMAL close, after the queue", function()
    host = T.host{ script = SCRIPT }
    local c = host:connect("/")
    c:send("close 4001 room full")
    assert.same({ "bye" }, (c:received()))
    assert.equal("normal", c.close_reason)
    assert.equal(4001, c.close_code)
    assert.equal("room full", c.close_text)
  end)

  it("takes 1000 and a text of 123 bytes of UTF-8", function()
    host = T.host{ script = SCRIPT }
    local c = host:connect("/")
    local text = string.rep("\u{e9}", 61) .. "x" -- 123 bytes
    c:send("close 1000 " .. text)
    assert.equal(1000, c.close_code)
    assert.equal(text, c.close_text)
  end)

  it("sends no frame for a DROP", function()
    host = T.host{ script = SCRIPT }
    local c = host:connect("/")
    c:send("drop 4002 kicked")
    assert.equal("drop", c.close_reason)
    assert.is_nil(c.close_code)
  end)

  it("raises an argument error for a bad code or text", function()
    host = T.host{ script = SCRIPT }
    local c = host:connect("/")
    c:send("closeargs")
    local got = c:received()[1]
    local errs = {}
    for e in got:gsub("^closeargs ", ""):gmatch("[^|]+") do errs[#errs + 1] = e end
    assert.equal(7, #errs)
    for i = 1, 3 do assert.matches("close code must be 1000 or 3000%-4999", errs[i]) end
    assert.matches("close text longer than 123 bytes", errs[4])
    assert.matches("close text must be UTF%-8", errs[5])
    assert.matches("number expected, got string", errs[6])
    assert.matches("string expected, got table", errs[7])
    assert.is_true(c:is_open()) -- nothing was closed
  end)
end)

describe("refusing in on_connect", function()
  local host
  after_each(function() host:close() end)

  it("answers the status and body the script returns", function()
    host = T.host{ script = SCRIPT }
    local c = host:connect("/?token=bad")
    assert.equal("refused", c.close_reason)
    assert.equal(401, c.status)
    assert.equal("bad token", c.body)
    c = host:connect("/?refuse=429")
    assert.equal(429, c.status)
    assert.equal("connection refused by the application", c.body)
    c = host:connect("/?refuse=plain")
    assert.equal(403, c.status)
  end)

  it("takes a bad status or body for a script error, and answers 403", function()
    host = T.host{ script = SCRIPT }
    local ok, err = pcall(host.connect, host, "/?refuse=status")
    assert.is_false(ok)
    assert.matches("error in on_connect: on_connect refused with HTTP status 200 %(400%-599 expected%)", err)
    ok, err = pcall(host.connect, host, "/?refuse=body")
    assert.is_false(ok)
    assert.matches("bad HTTP body", err)
    host:close()
    host = T.host{ script = SCRIPT, raise_errors = false }
    local c = host:connect("/?refuse=body")
    assert.equal(403, c.status)
    assert.equal("connection refused by the application", c.body)
    assert.matches("bad HTTP body", host:errors()[1])
  end)
end)
