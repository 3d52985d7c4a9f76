-- e2e wait (issue 17): handlers that wait on gc.sleep, gc.redis.call and
-- gc.http.request while the others go on.
--   "echo X"       -> "echo X" at once
--   "sleep MS X"   -> "slept X" after MS ms
--   "hold K"       -> waits until some connection sends "release K", then
--                     sends "held K" (its result is logged: closed or not)
--   "release K"    -> "released K"
--   "redis CMD..." -> the reply, or "err <err>"
--   "http URL"     -> "<status> <body>", or "err <err>"
--   "httpt MS URL" -> the same with timeout_ms = MS
--   "log"          -> what happened, comma-separated
-- on_connect with ?token=T checks token:T in Redis and refuses with 401.
local gc = require "gc"

local released = {}
local log = {}

local function show(v, err)
  if v == nil then return "err " .. tostring(err) end
  if type(v) == "table" then
    local t = {}
    for i, x in ipairs(v) do t[i] = tostring(x) end
    return "{" .. table.concat(t, ",") .. "}"
  end
  return tostring(v)
end

return {
  on_connect = function(conn, req)
    local token = req.query.token
    if token then
      local v, err = gc.redis.call("GET", "token:" .. token)
      if v == nil then return false, 401, err and "auth unavailable" or "bad token" end
    end
  end,

  on_message = function(conn, data)
    local cmd, rest = data:match("^(%S+)%s*(.*)$")
    if cmd == "echo" then
      conn:send("echo " .. rest)
    elseif cmd == "sleep" then
      local ms, what = rest:match("^(%d+)%s*(.*)$")
      gc.sleep(tonumber(ms))
      conn:send("slept " .. what)
    elseif cmd == "hold" then
      log[#log + 1] = "hold " .. rest
      while not released[rest] do gc.sleep(5) end
      local ok, err = conn:send("held " .. rest)
      log[#log + 1] = "resumed:" .. tostring(ok) .. ":" .. tostring(err)
    elseif cmd == "release" then
      released[rest] = true
      conn:send("released " .. rest)
    elseif cmd == "redis" then
      local args = {}
      for w in rest:gmatch("%S+") do args[#args + 1] = w end
      conn:send(show(gc.redis.call(table.unpack(args))))
    elseif cmd == "http" or cmd == "httpt" then
      local ms, url = rest:match("^(%d+)%s+(%S+)$")
      local res, err
      if cmd == "httpt" then
        res, err = gc.http.request{ url = url, timeout_ms = tonumber(ms) }
      else
        res, err = gc.http.get(rest)
      end
      conn:send(res and (res.status .. " " .. res.body) or ("err " .. tostring(err)))
    elseif cmd == "log" then
      conn:send(table.concat(log, ","))
    end
  end,

  on_disconnect = function(conn)
    log[#log + 1] = "disconnect"
  end,
}
