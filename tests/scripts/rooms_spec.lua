-- scripts/rooms.lua on two workers with route = query.room: a room lives in
-- one state, a shout crosses every state.
local T = require "gc.testing"

describe("rooms.lua", function()
  local host
  before_each(function()
    host = T.host{ script = "scripts/rooms.lua", workers = 2, route = "query.room" }
  end)
  after_each(function() host:close() end)

  local function join(room, name)
    local c = host:connect("/?room=" .. room .. "&name=" .. name)
    assert.is_true(c:is_open())
    return c
  end

  local function where(c)
    c:send("/where")
    local r = c:received()
    return r[#r]:match("^%* worker (%d+) of 2$")
  end

  -- Rooms "1", "2", ... until one is on each worker: their names.
  local function room_per_worker()
    local by = {}
    for room = 1, 64 do
      local probe = join(tostring(room), "probe")
      by[where(probe)] = by[where(probe)] or tostring(room)
      probe:close()
      if by["0"] and by["1"] then return by["0"], by["1"] end
    end
    error("every room on one worker")
  end

  it("keeps a room's messages in the room, wherever it lives", function()
    local r0, r1 = room_per_worker()
    local ann, bob = join(r0, "ann"), join(r0, "bob")
    local cid = join(r1, "cid")
    assert.equal(where(ann), where(bob))
    assert.are_not.equal(where(ann), where(cid))
    ann:received(); bob:received(); cid:received()
    ann:send("hello")
    assert.same({ "ann: hello" }, ann:received())
    assert.same({ "ann: hello" }, bob:received())
    assert.same({}, cid:received())
  end)

  it("carries a shout to the rooms of every worker", function()
    local r0, r1 = room_per_worker()
    local ann, cid = join(r0, "ann"), join(r1, "cid")
    ann:received(); cid:received()
    cid:send("/shout hi all")
    assert.same({ "cid shouts: hi all" }, ann:received())
    assert.same({ "cid shouts: hi all" }, cid:received())
  end)
end)
