-- Channels between hosts (redis.test.js): every state subscribes to "news"
-- in application_start and forwards each message to its own clients as
-- "news X"; a client that sends "pub X" publishes X on "news" and gets
-- "pub ok" or "pub err <message>" back (gc.publish's nil, err).
local gc = require "gc"
local app = {}

function app.application_start()
  gc.subscribe("news", function(data) gc.broadcast("news " .. data) end)
end

function app.on_message(conn, data)
  local text = data:match("^pub (.*)$")
  if text then
    local ok, err = gc.publish("news", text)
    conn:send(ok and "pub ok" or ("pub err " .. tostring(err)))
  end
end

return app
