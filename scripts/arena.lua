-- arena.lua: a small authoritative game.
--
-- Players walk on a 20x20 grid. The server owns the state: clients only
-- ask to move, and the server applies at most one move per player per tick.
--
-- Client -> server (text):
--   "up" | "down" | "left" | "right"   ask to move one cell
--   "move X Y"                         ask to go to cell X,Y (must be adjacent)
-- Server -> client:
--   on join:       {"welcome":ID,"x":X,"y":Y}
--   every tick:    {"players":[{"id":1,"name":"bob","x":3,"y":4},...],"tick":N}
--   before a kick: "kicked: idle"   (no message for IDLE_MS; then a NORMAL
--                  close, so everything queued before it still arrives)
-- A cheater (a "move" to a cell that is not adjacent, or more than
-- MAX_PER_TICK messages in one tick) is dropped at once (CLOSE_DROP).
local gc = require "gc"
local json = require "lib.json"

local W, H = 20, 20
local TICK_MS = 100
local IDLE_MS = 10000
local MAX_PER_TICK = 5

local app = {}
local players = {}     -- conn -> true
local tick = 0
local ticker

local function clamp(v, lo, hi) return math.max(lo, math.min(hi, v)) end

local steps = { up = { 0, -1 }, down = { 0, 1 }, left = { -1, 0 }, right = { 1, 0 } }

function app.application_start()
  ticker = gc.set_interval(TICK_MS, function()
    tick = tick + 1
    local list = {}
    for p in pairs(players) do
      if p.want then
        p.x = clamp(p.x + p.want[1], 0, W - 1)
        p.y = clamp(p.y + p.want[2], 0, H - 1)
        p.want = nil
      end
      p.sent_this_tick = 0
      list[#list + 1] = { id = p.id, name = p.name, x = p.x, y = p.y }
    end
    if #list == 0 then return end
    table.sort(list, function(a, b) return a.id < b.id end)
    gc.broadcast(json.encode({ tick = tick, players = list }), function(c)
      return players[c] ~= nil
    end)
  end)
end

function app.application_stop()
  if ticker then ticker:cancel() end
end

function app.on_connect(conn, info)
  conn.name = info.query.name or ("player" .. conn.id)
  conn.x, conn.y = (conn.id * 7) % W, (conn.id * 3) % H
  conn.sent_this_tick = 0
  players[conn] = true
  conn:send(json.encode({ welcome = conn.id, x = conn.x, y = conn.y }))
  conn:set_timer(IDLE_MS)
end

local function cheat(conn, why)
  gc.log(gc.NOTICE, "dropping %s (%s): %s", conn.name, conn.remote_ip, why)
  players[conn] = nil
  conn:close(gc.CLOSE_DROP)
end

function app.on_message(conn, data)
  if not players[conn] then return end
  conn:set_timer(IDLE_MS)               -- any message is activity
  conn.sent_this_tick = conn.sent_this_tick + 1
  if conn.sent_this_tick > MAX_PER_TICK then
    return cheat(conn, "more than " .. MAX_PER_TICK .. " messages in a tick")
  end
  local step = steps[data]
  if step then
    conn.want = step
    return
  end
  local x, y = data:match("^move (%-?%d+) (%-?%d+)$")
  if x then
    local dx, dy = tonumber(x) - conn.x, tonumber(y) - conn.y
    if math.abs(dx) + math.abs(dy) > 1 then
      return cheat(conn, string.format("impossible move to %s,%s from %d,%d", x, y, conn.x, conn.y))
    end
    conn.want = { dx, dy }
  end
end

function app.on_timer(conn)
  if not players[conn] then return end
  players[conn] = nil
  conn:send("kicked: idle")
  conn:close(gc.CLOSE_NORMAL)
end

function app.on_disconnect(conn)
  players[conn] = nil
end

return app
