-- scripts/arena.lua: tick, snapshots, idle kick (NORMAL), cheat drop (DROP).
local T = require "gc.testing"

-- The snapshots are JSON with sorted keys: parse just what we need.
local function positions(snapshot)
  local out = {}
  for id, x, y in snapshot:gmatch('"id":(%d+),"name":"[^"]*","x":(%d+),"y":(%d+)') do
    out[tonumber(id)] = { tonumber(x), tonumber(y) }
  end
  return out
end

local function last(list) return list[#list] end

describe("arena.lua", function()
  local host
  before_each(function() host = T.host{ script = "scripts/arena.lua" } end)
  after_each(function() host:close() end)

  it("welcomes a player with its id and position", function()
    local p = host:connect("/?name=zed")
    assert.same({ '{"welcome":1,"x":7,"y":3}' }, p:received())
  end)

  it("broadcasts one snapshot per 100 ms tick", function()
    local p = host:connect("/?name=zed")
    p:received()
    host:advance(99)
    assert.same({}, p:received())
    host:advance(1)
    assert.same({ '{"players":[{"id":1,"name":"zed","x":7,"y":3}],"tick":1}' }, p:received())
    host:advance(1000)
    local snaps = p:received()
    assert.equal(10, #snaps)
    assert.matches('"tick":11}$', last(snaps))
  end)

  it("applies one move per tick, authoritatively", function()
    local a = host:connect("/?name=a")
    local b = host:connect("/?name=b")
    a:received(); b:received()
    a:send("right"); a:send("down")        -- the last request of a tick wins
    host:advance(100)
    local pos = positions(last(b:received()))
    assert.same({ 7, 4 }, pos[1])
    assert.same({ 14, 6 }, pos[2])
    a:send("move 7 5")
    host:advance(100)
    assert.same({ 7, 5 }, positions(last(a:received()))[1])
  end)

  it("kicks an idle player with a NORMAL close after its last snapshot", function()
    local idle = host:connect("/?name=idle")
    local busy = host:connect("/?name=busy")
    idle:received()
    for _ = 1, 10 do
      busy:send("left")
      host:advance(1000)
    end
    local got = idle:received()
    assert.equal("kicked: idle", last(got))     -- queued snapshots came first
    assert.matches('"tick":99}$', got[#got - 1])
    assert.equal("normal", idle.close_reason)
    assert.equal(1000, idle.close_code)
    assert.is_true(busy:is_open())
  end)

  it("drops a cheater at once (DROP: no close frame, nothing more)", function()
    local cheater = host:connect("/?name=cheat")
    local honest = host:connect("/?name=honest")
    cheater:received(); honest:received()
    cheater:send("move 19 19")
    assert.is_false(cheater:is_open())
    assert.equal("drop", cheater.close_reason)
    assert.is_nil(cheater.close_code)
    host:advance(100)
    local pos = positions(last(honest:received()))
    assert.is_nil(pos[1])
    assert.is_not_nil(pos[2])
  end)

  it("drops a client that floods more than 5 messages in a tick", function()
    local flood = host:connect("/?name=flood")
    for _ = 1, 6 do flood:send("up") end
    assert.equal("drop", flood.close_reason)
  end)
end)
