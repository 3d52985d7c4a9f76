-- harness.lua - the script test_lua_adapter.c drives. A message is Lua code
-- run with 'conn', 'gc', 'state' and 'mod' in scope; whatever it returns is
-- sent back as one message, the values joined by spaces ("nil" for nil).
local gc = require "gc"
local mod = require "helper_mod" -- a sibling module of the script

local state = { byconn = {}, by_id = {}, sent = {}, events = {}, n = 0 }
local app = {}

local function ev(s) state.events[#state.events + 1] = s end

function app.application_initialize() ev("init") end
function app.application_start() ev("start") end
function app.application_stop() ev("stop") end
function app.application_shutdown() ev("shutdown") end

function app.on_connect(conn, info)
  local q = info.query
  if q.refuse == "false" then return false end
  if q.refuse == "drop" then return gc.DROP_CONNECTION end
  if q.refuse == "error" then error("no entry for " .. info.path) end
  if q.quiet then return true end
  state.byconn[conn] = conn.id
  state.by_id[conn.id] = conn
  state.first = state.first or conn
  state.last = conn
  conn.info = info
  local keys = {}
  for k, v in pairs(q) do keys[#keys + 1] = k .. "=" .. v end
  table.sort(keys)
  conn:send(string.format("hello %d %s %s %s %s %d %s %d %d %s", conn.id,
    info.path, info.target, info.protocol, info.remote_ip, info.remote_port,
    info.local_ip, info.local_port, info.app_id, table.concat(keys, "&")))
end

function app.on_message(conn, data)
  local env = setmetatable({ conn = conn, gc = gc, state = state, mod = mod },
    { __index = _G })
  local f = assert(load(data, "=eval", "t", env))
  local r = table.pack(f())
  if r.n == 0 then return end
  for i = 1, r.n do r[i] = tostring(r[i]) end
  conn:send(table.concat(r, " ", 1, r.n))
end

function app.on_message_sent(conn, cookie, len, status)
  if state.quiet_sent then return end
  state.sent[#state.sent + 1] = string.format("%s %s %d %d", conn.id,
    type(cookie) == "table" and cookie.tag or tostring(cookie), len, status)
end

function app.on_timer(conn)
  conn:send("timer " .. conn.id)
end

function app.on_issue(conn, stat, value)
  ev(string.format("issue %d %d %d", conn.id, stat, value))
  return state.reaction
end

function app.on_disconnect(conn)
  state.last_disconnect = "disconnect " .. conn.id .. " " .. tostring(conn:is_open())
  state.byconn[conn] = nil
  state.by_id[conn.id] = nil
  state.old = conn
  if state.last == conn then state.last = nil end
  if state.first == conn then state.first = nil end
end

return app
