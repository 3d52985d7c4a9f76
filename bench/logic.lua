--[[ bench/logic.lua - echo, after some game logic per message: the kind of
work a tick or an input handler does (move 64 entities, bounce them off the
walls of the arena, keep a score). About 2,000 VM instructions a message,
so the cost of running Lua, not of the network, decides the rate.
make bench runs it twice: with the default time limit (watchdog, no hook)
and with the instruction budget (a count hook on every instruction). ]]
local N, W, H = 64, 1000, 1000
local x, y, vx, vy = {}, {}, {}, {}
for i = 1, N do
  x[i], y[i] = (i * 37) % W, (i * 91) % H
  vx[i], vy[i] = (i % 7) - 3, (i % 5) - 2
end
local score = 0

local function step()
  for i = 1, N do
    local nx, ny = x[i] + vx[i], y[i] + vy[i]
    if nx < 0 or nx > W then vx[i] = -vx[i]; nx = x[i] end
    if ny < 0 or ny > H then vy[i] = -vy[i]; ny = y[i] end
    x[i], y[i] = nx, ny
    if nx < 10 and ny < 10 then score = score + 1 end
  end
end

local app = {}

function app.on_message(conn, data)
  step()
  conn:send(data)
end

return app
