--[[ arena.lua - a small authoritative game: players walk on a grid, the
server decides, and everybody sees the same state.

Connect: ws://HOST:PORT/arena?name=NAME  (NAME optional: "p<id>" by default)
The grid is W x H = 16 x 16 cells, x = 0..15 from left to right, y = 0..15
from top to bottom, at most one player per cell. A new player appears on the
first free cell in reading order (0,0), (1,0), ...; a full arena refuses.

Client -> server (one message each):
  up | down | left | right      a move (also as JSON: {"move":"up"})
  {"x":X,"y":Y}                 a move to the adjacent cell X,Y
Server -> client (JSON text unless said otherwise):
  {"type":"welcome","id":ID,"name":NAME,"x":X,"y":Y,"w":16,"h":16,"tick_ms":100}
                                once, on connect
  {"type":"state","tick":N,"players":[{"id":ID,"name":NAME,"x":X,"y":Y},...]}
                                to everyone, every tick (100 ms) while anyone
                                plays; players sorted by id
  {"type":"error","error":TEXT} an unreadable message ("unknown command",
                                "bad JSON", "x and y must be integers")
  kicked: idle                  (plain text) no move for 30 s: sent, then the
                                connection is closed NORMAL
Rules: moves are applied at the tick, in player id order: each player moves
one cell in the direction of its last move of that tick; a move into the
wall or onto another player is ignored (the player stays).
Cheating closes the connection with gc.CLOSE_DROP, without a message:
a "teleport" command, a JSON target that is not adjacent (|dx| + |dy| > 1)
or is off the grid, or more than 3 moves within one tick. ]]
local gc = require "gc"
local json = require "lib.json"

local W, H = 16, 16
local TICK_MS = 100
local IDLE_MS = 30000
local MAX_MOVES_PER_TICK = 3

local DIRS = { up = { 0, -1 }, down = { 0, 1 }, left = { -1, 0 }, right = { 1, 0 } }

local players = {} -- conn -> { id, name, x, y, move, moves }
local cells = {}   -- y * W + x -> conn
local tick = 0
local ticker

local app = {}

local function free_cell()
  for y = 0, H - 1 do
    for x = 0, W - 1 do
      if not cells[y * W + x] then return x, y end
    end
  end
end

local function remove(conn)
  local p = players[conn]
  if not p then return end
  players[conn] = nil
  cells[p.y * W + p.x] = nil
end

local function cheat(conn, why)
  gc.log(gc.NOTICE, "arena: dropping %s (id %d): %s", players[conn].name, conn.id, why)
  remove(conn)
  conn:close(gc.CLOSE_DROP)
end

local function sorted_players()
  local list = {}
  for conn, p in pairs(players) do list[#list + 1] = { conn = conn, p = p } end
  table.sort(list, function(a, b) return a.p.id < b.p.id end)
  return list
end

local function on_tick()
  tick = tick + 1
  if next(players) == nil then return end
  local list = sorted_players()
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
    p.move, p.moves = nil, 0
    snapshot[#snapshot + 1] = { id = p.id, name = p.name, x = p.x, y = p.y }
  end
  gc.broadcast(json.encode({ type = "state", tick = tick, players = snapshot }),
    function(conn) return players[conn] ~= nil end)
end

function app.application_start()
  ticker = gc.set_interval(TICK_MS, on_tick)
end

function app.application_stop()
  if ticker then ticker:cancel() end
end

function app.on_connect(conn, info)
  local x, y = free_cell()
  if not x then return false end -- the arena is full
  local name = info.query.name
  if type(name) ~= "string" or not name:match("^[%w_%-]+$") or #name > 24 then
    name = "p" .. conn.id
  end
  players[conn] = { id = conn.id, name = name, x = x, y = y, moves = 0 }
  cells[y * W + x] = conn
  conn:send(json.encode({ type = "welcome", id = conn.id, name = name, x = x, y = y,
                          w = W, h = H, tick_ms = TICK_MS }))
  conn:set_timer(IDLE_MS)
end

local function error_to(conn, text)
  conn:send(json.encode({ type = "error", error = text }))
end

-- The direction of a message, or nil and a reason; cheats are flagged.
local function parse_move(p, data)
  if DIRS[data] then return data end
  if data:match("^teleport") then return nil, "cheat", "teleport" end
  if data:sub(1, 1) ~= "{" then return nil, "unknown command" end
  local msg = json.decode(data)
  if type(msg) ~= "table" then return nil, "bad JSON" end
  if msg.move ~= nil then
    if DIRS[msg.move] then return msg.move end
    return nil, "unknown command"
  end
  local x, y = msg.x, msg.y
  if math.type(x) ~= "integer" or math.type(y) ~= "integer" then
    return nil, "x and y must be integers"
  end
  if x < 0 or x >= W or y < 0 or y >= H then return nil, "cheat", "off the grid" end
  local dx, dy = x - p.x, y - p.y
  if math.abs(dx) + math.abs(dy) > 1 then return nil, "cheat", "jump" end
  if dx == 1 then return "right" elseif dx == -1 then return "left"
  elseif dy == 1 then return "down" elseif dy == -1 then return "up" end
  return nil -- the cell it is on: nothing to do
end

function app.on_message(conn, data)
  local p = players[conn]
  if not p then return end
  local dir, err, why = parse_move(p, data)
  if err == "cheat" then return cheat(conn, why) end
  if err then return error_to(conn, err) end
  p.moves = p.moves + 1
  if p.moves > MAX_MOVES_PER_TICK then return cheat(conn, "too many moves") end
  if dir then p.move = dir end
  conn:set_timer(IDLE_MS)
end

function app.on_timer(conn)
  if not players[conn] then return end
  conn:send("kicked: idle")
  remove(conn)
  conn:close(gc.CLOSE_NORMAL)
end

function app.on_disconnect(conn)
  remove(conn)
end

return app
