--[[ pubsub.lua - the publish rows of `make bench` (bench/publish.js).

A client of /?role=pub publishes each message it sends on the channel
"bench" (gc.publish); every state hands each message of "bench" to its
own clients of /?role=sub (gc.broadcast to them only, so a publisher
hears nothing back). With "redis" in the config the message crosses
Redis (to every host, this one included); without, gc.publish stays in
the process. A refused publish is answered "! err" to its publisher. ]]
local gc = require "gc"

local subs = {} -- this state's subscribers: { [conn] = true }

local app = {}

function app.application_start()
  gc.subscribe("bench", function(data)
    if next(subs) then gc.broadcast(data, subs) end
  end)
end

function app.on_connect(conn, info)
  conn.sub = info.query.role == "sub"
  if conn.sub then subs[conn] = true end
end

function app.on_message(conn, data)
  local ok, err = gc.publish("bench", data)
  if not ok then conn:send("! " .. tostring(err)) end
end

function app.on_disconnect(conn)
  subs[conn] = nil
end

return app
