-- scripts/chat.lua: rooms, names, join/leave notices, /nick, /kick.
local T = require "gc.testing"

describe("chat.lua", function()
  local host
  before_each(function() host = T.host{ script = "scripts/chat.lua" } end)
  after_each(function() host:close() end)

  local function join(room, name)
    local c = host:connect("/?room=" .. room .. "&name=" .. name)
    assert.is_true(c:is_open())
    return c
  end

  it("announces joins to the room and only to it", function()
    local ann = join("1", "ann")
    local bob = join("1", "bob")
    local cid = join("2", "cid")
    assert.same({ "* ann joined", "* bob joined" }, ann:received())
    assert.same({ "* bob joined" }, bob:received())
    assert.same({ "* cid joined" }, cid:received())
  end)

  it("relays messages as 'name: text' within a room", function()
    local ann, bob, cid = join("1", "ann"), join("1", "bob"), join("2", "cid")
    ann:received(); bob:received(); cid:received()
    ann:send("hello")
    assert.same({ "ann: hello" }, bob:received())
    assert.same({ "ann: hello" }, ann:received())
    assert.same({}, cid:received())
  end)

  it("gives guests a name and url-decodes the query", function()
    local g = host:connect("/?room=a%20b")
    local named = host:connect("/?room=a+b&name=Z%C3%A9")
    assert.same({ "* guest1 joined", "* Zé joined" }, g:received())
    assert.same({ "* Zé joined" }, named:received())
  end)

  it("announces leaves", function()
    local ann, bob = join("1", "ann"), join("1", "bob")
    bob:received()
    ann:close()
    assert.same({ "* ann left" }, bob:received())
    local cid = join("1", "cid")
    cid:drop()                                  -- vanishes without a close frame
    assert.same({ "* cid joined", "* cid left" }, bob:received())
  end)

  it("renames with /nick", function()
    local ann, bob = join("1", "ann"), join("1", "bob")
    bob:received()
    ann:send("/nick anna")
    ann:send("hi")
    assert.same({ "* ann is now anna", "anna: hi" }, bob:received())
  end)

  it("kicks with a NORMAL close: the notice arrives before the close", function()
    local ann, bob, cid = join("1", "ann"), join("1", "bob"), join("1", "cid")
    ann:received(); bob:received(); cid:received()
    bob:send("/kick ann")
    assert.same({ "* you were kicked by bob" }, ann:received())
    assert.is_false(ann:is_open())
    assert.equal("normal", ann.close_reason)
    assert.equal(1000, ann.close_code)
    assert.same({ "* ann was kicked by bob" }, cid:received())
    -- no "left" notice for someone kicked
    assert.same({}, cid:received())
  end)

  it("answers unknown commands and unknown names to the sender only", function()
    local ann, bob = join("1", "ann"), join("1", "bob")
    ann:received(); bob:received()
    ann:send("/dance")
    ann:send("/kick nobody")
    assert.same({ "* unknown command", "* no one named nobody here" }, ann:received())
    assert.same({}, bob:received())
  end)
end)
