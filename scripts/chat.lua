--[[ chat.lua - chat rooms.

Connect: ws://HOST:PORT/chat?room=ROOM&name=NAME (any path works)
  ROOM  defaults to "lobby" (url-decoded: "a%20b" and "a+b" are "a b").
  NAME  1 to 32 bytes without spaces or control characters (UTF-8 is
        fine); missing or invalid gives "guest<id>" (<id> = conn.id); a name
        already used in the room gets the id appended ("bob" -> "bob7").

Client -> server (one text message each):
  TEXT          said to the room
  /nick NAME    change your name
  /kick NAME    kick a user of your room
  /who          list the users of your room

Server -> client (one text message each):
  NAME: TEXT                  a message, to everyone in the room (sender too)
  * NAME joined               to everyone in the room (the newcomer too)
  * NAME left                 to the others in the room, when NAME leaves
  * OLD is now NEW            to everyone in the room, after /nick
  * you were kicked by KICKER to the kicked user, then a NORMAL close (the
                              queued messages and this notice arrive first)
  * NAME was kicked by KICKER to everyone left in the room (no "left" notice
                              follows for a kicked user)
  * here: A, B, C             answer to /who (sorted names)
  To the sender only:
  * unknown command           an unknown /command
  * no one named NAME here    /kick of a name not in the room
  * invalid name              /nick with a bad name
  * name taken                /nick with a name used in the room
  * message too long          more than 4096 bytes
Empty messages are ignored; a trailing "\r\n" is stripped. ]]
local gc = require "gc"

local MAX_TEXT = 4096
local rooms = {} -- room name -> { [conn] = true }

local app = {}

local function valid_name(name)
  return type(name) == "string" and #name >= 1 and #name <= 32
    and not name:find("[%s%c]")
end

local function find(room, name)
  for c in pairs(rooms[room] or {}) do
    if c.name == name then return c end
  end
end

-- Sends 'text' to every member of 'room': one message handed to the host,
-- whose payload every member's queue shares.
local function say(room, text)
  local members = rooms[room]
  if members then gc.broadcast(text, members) end
end

-- Takes 'conn' out of its room (once); 'notice' goes to those who stay.
local function leave(conn, notice)
  local members = rooms[conn.room]
  if not members or not members[conn] then return end
  members[conn] = nil
  if next(members) == nil then rooms[conn.room] = nil end
  if notice then say(conn.room, notice) end
end

function app.on_connect(conn, info)
  local room = info.query.room
  if room == nil or room == "" then room = "lobby" end
  local name = info.query.name
  if not valid_name(name) then
    name = "guest" .. conn.id
  elseif find(room, name) then
    name = name .. conn.id
  end
  conn.room, conn.name = room, name
  rooms[room] = rooms[room] or {}
  rooms[room][conn] = true
  say(room, "* " .. name .. " joined")
  gc.log(gc.INFO, "%s joined room %s from %s", name, room, info.remote_ip)
end

local commands = {}

function commands.nick(conn, arg)
  if not valid_name(arg) then return conn:send("* invalid name") end
  if arg == conn.name then return end
  if find(conn.room, arg) then return conn:send("* name taken") end
  local old = conn.name
  conn.name = arg
  say(conn.room, "* " .. old .. " is now " .. arg)
end

function commands.kick(conn, arg)
  local target = arg and find(conn.room, arg)
  if not target then
    return conn:send("* no one named " .. tostring(arg) .. " here")
  end
  target:send("* you were kicked by " .. conn.name)
  target:close(gc.CLOSE_NORMAL) -- the notice above is delivered first
  leave(target, "* " .. target.name .. " was kicked by " .. conn.name)
end

function commands.who(conn)
  local names = {}
  for c in pairs(rooms[conn.room] or {}) do names[#names + 1] = c.name end
  table.sort(names)
  conn:send("* here: " .. table.concat(names, ", "))
end

function app.on_message(conn, data)
  data = data:gsub("\r?\n$", "")
  if data == "" or not rooms[conn.room] or not rooms[conn.room][conn] then return end
  if #data > MAX_TEXT then return conn:send("* message too long") end
  local cmd, arg = data:match("^/(%S+)%s*(.-)%s*$")
  if cmd then
    local f = commands[cmd]
    if not f then return conn:send("* unknown command") end
    return f(conn, arg ~= "" and arg or nil)
  end
  say(conn.room, conn.name .. ": " .. data)
end

function app.on_disconnect(conn)
  leave(conn, "* " .. conn.name .. " left")
end

return app
