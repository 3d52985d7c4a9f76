-- A routed app for tests/e2e/workers.test.js: says which worker serves the
-- connection, echoes, and spins forever on "spin" (the time limit stops it).
local gc = require "gc"
local app = {}

function app.on_connect(conn)
  conn:send("worker " .. gc.worker.id)
  return true
end

function app.on_message(conn, data)
  if data == "spin" then
    while true do end
  end
  conn:send(data)
end

return app
