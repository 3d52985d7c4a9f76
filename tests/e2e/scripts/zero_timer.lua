-- "Next tick" loops: 0 ms timeouts that start themselves again, one from
-- the top level and one from application_start. gcs must keep serving
-- (echo) and stop on SIGTERM while they spin; "ticks" replies how many
-- times they fired.
local gc = require "gc"
local app = {}
local ticks = 0

local function loop_forever()
  ticks = ticks + 1
  gc.set_timeout(0, loop_forever)
end
loop_forever()

function app.application_start()
  local function again()
    ticks = ticks + 1
    gc.set_timeout(0, again)
  end
  again()
end

function app.on_message(conn, data)
  if data == "ticks" then return conn:send(tostring(ticks)) end
  conn:send(data)
end

return app
