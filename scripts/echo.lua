--[[ echo.lua - every message comes back to its sender, byte for byte.

Run:     gcs scripts/echo.lua -p 7681     then connect to ws://localhost:7681/
Client -> server: any message (text or binary).
Server -> client: the same bytes, as one message.
Nothing else: no greeting, no limits beyond the host's. ]]
local app = {}

function app.on_message(conn, data)
  conn:send(data)
end

return app
