--[[ rooms.lua - chat rooms over every core.

Run it with a route, so that the players of one room share a Lua state:

  gcs scripts/rooms.lua --route query.room -w 4

or in a config: { "name": "rooms", "file_name": "scripts/rooms.lua",
"route": "query.room" }. Each worker then runs its own state of this
script: the module-level 'rooms' table below holds the rooms of that
worker only, which is all a room's messages need. What crosses rooms (a
shout to everyone) goes through gc.publish, which reaches every state.
Without a route the script works the same on one state.

Connect: ws://HOST:PORT/?room=ROOM&name=NAME
  ROOM  defaults to "lobby"; NAME 1 to 32 bytes without spaces or control
        characters, else "guest<id>".

Client -> server (one text message each):
  TEXT          said to the room
  /shout TEXT   said to every room, on every worker
  /where        which worker serves your room

Server -> client:
  NAME: TEXT        a message in the room (sender too)
  NAME shouts: TEXT a shout, to everyone connected
  * NAME joined     to the room (the newcomer too)
  * NAME left       to the others in the room
  * worker ID of N  answer to /where ]]
local gc = require "gc"

local rooms = {} -- room -> { [conn] = true }: this state's rooms only

local app = {}

local function valid_name(name)
  return type(name) == "string" and #name >= 1 and #name <= 32
    and not name:find("[%s%c]")
end

local function say(room, text)
  local members = rooms[room]
  if members then gc.broadcast(text, members) end
end

-- Each state subscribes once, when it starts: a shout published in any
-- state arrives in every state, which hands it to its own connections.
function app.application_start()
  gc.subscribe("shout", function(text) gc.broadcast(text) end)
end

function app.on_connect(conn, info)
  local room = info.query.room
  if room == nil or room == "" then room = "lobby" end
  local name = info.query.name
  if not valid_name(name) then name = "guest" .. conn.id end
  conn.room, conn.name = room, name
  rooms[room] = rooms[room] or {}
  rooms[room][conn] = true
  say(room, "* " .. name .. " joined")
end

function app.on_message(conn, data)
  data = data:gsub("\r?\n$", "")
  if data == "" then return end
  local cmd, arg = data:match("^/(%S+)%s*(.-)%s*$")
  if cmd == "shout" and arg ~= "" then
    local ok, err = gc.publish("shout", conn.name .. " shouts: " .. arg)
    if not ok then conn:send("* shout lost: " .. err) end
  elseif cmd == "where" then
    conn:send(("* worker %d of %d"):format(gc.worker.id, gc.worker.count))
  elseif cmd then
    conn:send("* unknown command")
  else
    say(conn.room, conn.name .. ": " .. data)
  end
end

function app.on_disconnect(conn)
  local members = rooms[conn.room]
  members[conn] = nil
  if next(members) == nil then rooms[conn.room] = nil end
  say(conn.room, "* " .. conn.name .. " left")
end

return app
