--[[ arena.lua - a small authoritative game: players walk on a grid, the
server decides, and everybody sees the same state.

Connect: ws://HOST:PORT/arena?name=NAME  (NAME optional: "p<id>" by default)
The grid is 20 x 20 cells, x = 0..19 from left to right, y = 0..19 from top
to bottom, one player per cell. Player <id> starts at x = 7*id mod 20,
y = 3*id mod 20 (player 1 at 7,3, player 2 at 14,6), or the next free cell
in reading order after it; a full arena refuses.

Client -> server (one text message each):
  up | down | left | right      a move of one cell
  move X Y                      a move to the adjacent cell X,Y
  {"x":X,"y":Y} {"move":"up"}   the same in JSON
Server -> client (JSON with sorted keys, unless said otherwise):
  {"welcome":ID,"x":X,"y":Y}    once, on connect
  {"players":[{"id":ID,"name":NAME,"x":X,"y":Y},...],"tick":N}
                                to every player, every tick (100 ms, tick 1
                                at 100 ms), players sorted by id
  {"error":TEXT}                an unreadable message: "unknown command",
                                "bad move"
  kicked: idle                  plain text: no move for 10 s; it is the last
                                message, then the connection is closed
                                NORMAL (queued snapshots arrive before it)
Rules: moves are applied at the tick, in player id order. A player moves at
most one cell per tick, following its last move request of that tick; a
move into the wall or onto another player is ignored (it stays).
Cheating closes the connection at once with gc.CLOSE_DROP, without a
message, and logs "dropping NAME (IP): impossible move" (or ": too many
messages") at NOTICE: "teleport", a target cell that is not adjacent
(|dx| + |dy| > 1) or off the grid, or more than 5 messages within one
tick. ]]
local gc = require "gc"
local json = require "lib.json"

local W, H = 20, 20
local TICK_MS = 100
local IDLE_MS = 10000
local MAX_MSGS_PER_TICK = 5

local DIRS = { up = { 0, -1 }, down = { 0, 1 }, left = { -1, 0 }, right = { 1, 0 } }

local players = {} -- conn -> { id, name, x, y, move, msgs, deadline }
local cells = {}   -- y * W + x -> conn
local tick = 0
local ticker

local app = {}

local function spawn_cell(id)
  local start = ((3 * id) % H) * W + (7 * id) % W
  for i = 0, W * H - 1 do
    local cell = (start + i) % (W * H)
    if not cells[cell] then return cell % W, cell // W end
  end
end

local function remove(conn)
  local p = players[conn]
  if not p then return end
  players[conn] = nil
  cells[p.y * W + p.x] = nil
end

local function cheat(conn, why)
  gc.log(gc.NOTICE, "dropping %s (%s): %s", players[conn].name, conn.remote_ip, why)
  remove(conn)
  conn:close(gc.CLOSE_DROP)
end

local function on_tick()
  tick = tick + 1
  if next(players) == nil then return end
  local list = {}
  for conn, p in pairs(players) do list[#list + 1] = { conn = conn, p = p } end
  table.sort(list, function(a, b) return a.p.id < b.p.id end)
  local snapshot = json.array()
  for _, e in ipairs(list) do
    local p = e.p
    if p.move then
      local d = DIRS[p.move]
      local nx, ny = p.x + d[1], p.y + d[2]
      if nx >= 0 and nx < W and ny >= 0 and ny < H and not cells[ny * W + nx] then
        cells[p.y * W + p.x] = nil
        p.x, p.y = nx, ny
        cells[ny * W + nx] = e.conn
      end
    end
    p.move, p.msgs = nil, 0
    snapshot[#snapshot + 1] = { id = p.id, name = p.name, x = p.x, y = p.y }
  end
  -- An idle player whose kick is due now gets no more snapshots, whichever
  -- of its timer and this tick the host runs first.
  local now = gc.now()
  gc.broadcast(json.encode({ players = snapshot, tick = tick }), function(conn)
    local p = players[conn]
    return p ~= nil and p.deadline > now
  end)
end

function app.application_start()
  ticker = gc.set_interval(TICK_MS, on_tick)
end

function app.application_stop()
  if ticker then ticker:cancel() end
end

local function touch(conn, p)
  p.deadline = gc.now() + IDLE_MS
  conn:set_timer(IDLE_MS)
end

function app.on_connect(conn, info)
  local x, y = spawn_cell(conn.id)
  if not x then return false end -- the arena is full
  local name = info.query.name
  if type(name) ~= "string" or not name:match("^[%w_%-]+$") or #name > 24 then
    name = "p" .. conn.id
  end
  local p = { id = conn.id, name = name, x = x, y = y, msgs = 0 }
  players[conn] = p
  cells[y * W + x] = conn
  conn:send(json.encode({ welcome = conn.id, x = x, y = y }))
  touch(conn, p)
end

-- The direction asked by 'data', or nil and an error, or nil, "cheat", why.
local function parse_move(p, data)
  if DIRS[data] then return data end
  if data:match("^teleport") then return nil, "cheat", "impossible move" end
  local x, y
  local mx, my = data:match("^move%s+(-?%d+)%s+(-?%d+)%s*$")
  if mx then
    x, y = math.tointeger(tonumber(mx)), math.tointeger(tonumber(my))
  elseif data:sub(1, 1) == "{" then
    local msg = json.decode(data)
    if type(msg) ~= "table" then return nil, "bad move" end
    if msg.move ~= nil then
      if DIRS[msg.move] then return msg.move end
      return nil, "bad move"
    end
    x, y = msg.x, msg.y
    if math.type(x) ~= "integer" or math.type(y) ~= "integer" then
      return nil, "bad move"
    end
  else
    return nil, "unknown command"
  end
  if not x or not y or x < 0 or x >= W or y < 0 or y >= H then
    return nil, "cheat", "impossible move"
  end
  local dx, dy = x - p.x, y - p.y
  if math.abs(dx) + math.abs(dy) > 1 then return nil, "cheat", "impossible move" end
  if dx == 1 then return "right" elseif dx == -1 then return "left"
  elseif dy == 1 then return "down" elseif dy == -1 then return "up" end
  return nil -- the cell it is on: nothing to do
end

function app.on_message(conn, data)
  local p = players[conn]
  if not p then return end
  p.msgs = p.msgs + 1
  if p.msgs > MAX_MSGS_PER_TICK then return cheat(conn, "too many messages") end
  local dir, err, why = parse_move(p, data)
  if err == "cheat" then return cheat(conn, why) end
  if err then return conn:send(json.encode({ error = err })) end
  if dir then p.move = dir end
  touch(conn, p)
end

function app.on_timer(conn)
  if not players[conn] then return end
  remove(conn)
  conn:send("kicked: idle")
  conn:close(gc.CLOSE_NORMAL)
end

function app.on_disconnect(conn)
  remove(conn)
end

return app
