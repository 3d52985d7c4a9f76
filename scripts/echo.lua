-- echo.lua: every message a client sends comes back to it.
--   gcs scripts/echo.lua -p 7681     then connect to ws://host:7681/
local app = {}

function app.on_message(conn, data)
  conn:send(data)
end

return app
