-- chat.lua: chat rooms.
--
-- Connect to /?room=NAME&name=NICK (room "lobby" and name "guest<id>" when
-- absent). Every text a client sends goes to everyone in its room as
-- "NICK: text". The server also sends, to the room:
--   "* NICK joined"            when someone enters
--   "* NICK left"              when someone leaves
--   "* OLD is now NEW"         after "/nick NEW"
--   "* NICK was kicked by K"   after "/kick NICK" (the kicked client first
--                              gets "* you were kicked by K", then a NORMAL
--                              close: everything queued reaches it first)
-- and to the sender only: "* unknown command" or "* no one named NICK here".
local gc = require "gc"

local app = {}
local rooms = {}   -- room name -> { [conn] = true }

local function say(room, text, except)
  for member in pairs(rooms[room] or {}) do
    if member ~= except then member:send(text) end
  end
end

local function find(room, name)
  for member in pairs(rooms[room] or {}) do
    if member.name == name then return member end
  end
end

function app.on_connect(conn, info)
  conn.room = info.query.room or "lobby"
  conn.name = info.query.name or ("guest" .. conn.id)
  rooms[conn.room] = rooms[conn.room] or {}
  rooms[conn.room][conn] = true
  say(conn.room, "* " .. conn.name .. " joined")
  return true
end

local commands = {}

function commands.nick(conn, arg)
  if arg == "" then return conn:send("* usage: /nick NEW") end
  say(conn.room, "* " .. conn.name .. " is now " .. arg)
  conn.name = arg
end

function commands.kick(conn, arg)
  local target = find(conn.room, arg)
  if not target then return conn:send("* no one named " .. arg .. " here") end
  target:send("* you were kicked by " .. conn.name)
  rooms[conn.room][target] = nil
  say(conn.room, "* " .. target.name .. " was kicked by " .. conn.name)
  target.kicked = true
  target:close(gc.CLOSE_NORMAL)
end

function app.on_message(conn, data)
  local cmd, arg = data:match("^/(%a+)%s*(.-)%s*$")
  if cmd then
    local f = commands[cmd]
    if f then return f(conn, arg) end
    return conn:send("* unknown command")
  end
  say(conn.room, conn.name .. ": " .. data)
end

function app.on_disconnect(conn)
  local members = rooms[conn.room]
  if not members then return end
  if members[conn] then
    members[conn] = nil
    say(conn.room, "* " .. conn.name .. " left")
  end
  if next(members) == nil then rooms[conn.room] = nil end
end

return app
