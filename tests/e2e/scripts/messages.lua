-- Text frames, close codes and refusals from a script (messages.test.js,
-- chromium.test.js and tests/scripts/messages_spec.lua). Run as two apps:
-- one with "message_type": "text", one without.
--
-- on_connect, by query:   ?token=bad      refused: 401 "bad token"
--   ?refuse=plain  403    ?refuse=429      429, the default body
--   ?refuse=status false, 200 (an error: 403)
--   ?refuse=body   false, 409, "two\nlines" (an error: 403)
--   ?welcome=1     sends {"hello":"browser","n":1} (the app's type)
-- Commands; replies "<what> <ok> <err>" in the app's type:
--   json                 {"hello":"world","n":1}
--   text X | binary X    X with that type
--   bad                  "\xff" as text: "bad nil invalid UTF-8"
--   baddefault           "\xff" with the app's type
--   bcast X | bcast-text X | bcast-binary X | bcast-bad | bcast-room X
--                        gc.broadcast(X [, type]); replies with the count
--   close CODE TEXT      conn:close("normal", CODE, TEXT) after "bye"
--   drop CODE TEXT       conn:close("drop", CODE, TEXT)
--   closeargs            tries bad codes and texts: "closeargs <errors>"
local gc = require "gc"
local app = {}

function app.on_connect(conn, info)
  local q = info.query
  if q.token == "bad" then return false, 401, "bad token" end
  if q.refuse == "plain" then return false end
  if q.refuse == "429" then return false, 429 end
  if q.refuse == "status" then return false, 200 end
  if q.refuse == "body" then return false, 409, "two\nlines" end
  if q.welcome then conn:send('{"hello":"browser","n":1}') end
end

local function reply(conn, what, ok, err)
  conn:send(what .. " " .. tostring(ok) .. " " .. tostring(err))
end

local function try_close(conn, ...)
  local args = table.pack(...)
  local ok, err = pcall(function() return conn:close(table.unpack(args, 1, args.n)) end)
  return ok and "ok" or tostring(err)
end

function app.on_message(conn, data)
  local cmd, arg = data:match("^(%S+) ?(.*)$")
  if cmd == "json" then
    conn:send('{"hello":"world","n":1}')
  elseif cmd == "text" or cmd == "binary" then
    local ok, err = conn:send(arg, nil, cmd)
    if not ok then reply(conn, cmd, ok, err) end
  elseif cmd == "bad" then
    reply(conn, "bad", conn:send("\xff", nil, "text"))
  elseif cmd == "baddefault" then
    reply(conn, "baddefault", conn:send("\xff"))
  elseif cmd == "bcast" then
    reply(conn, "bcast", gc.broadcast(arg))
  elseif cmd == "bcast-text" then
    reply(conn, "bcast-text", gc.broadcast(arg, "text"))
  elseif cmd == "bcast-binary" then
    reply(conn, "bcast-binary", gc.broadcast(arg, nil, "binary"))
  elseif cmd == "bcast-room" then
    reply(conn, "bcast-room", gc.broadcast(arg, { conn }, "text"))
  elseif cmd == "bcast-bad" then
    reply(conn, "bcast-bad", gc.broadcast("\xff", "text"))
  elseif cmd == "close" or cmd == "drop" then
    local code, text = arg:match("^(%d+) ?(.*)$")
    conn:send("bye")
    conn:close(cmd == "close" and "normal" or "drop", tonumber(code), text ~= "" and text or nil)
  elseif cmd == "closeargs" then
    local errs = {
      try_close(conn, "normal", 999),
      try_close(conn, "normal", 1001),
      try_close(conn, "normal", 5000),
      try_close(conn, "normal", 4000, string.rep("x", 124)),
      try_close(conn, "normal", 4000, "\xff"),
      try_close(conn, "normal", "x"),
      try_close(conn, "normal", 4000, {}),
    }
    conn:send("closeargs " .. table.concat(errs, "|"))
  else
    conn:send("unknown " .. data)
  end
end

return app
