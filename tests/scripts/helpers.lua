-- Shared by the specs: a throwaway script file from a string.
local helpers = {}

function helpers.script(src)
  local path = os.tmpname() .. ".lua"
  local f = assert(io.open(path, "w"))
  f:write(src)
  f:close()
  return path
end

-- A redis-server (Debian's) on a free loopback port, no persistence:
-- helpers.redis_start() -> { port =, url =, stop = fn, restart = fn }.
-- A port taken meanwhile (redis-server has no --port 0): another is tried.
local function sh(cmd) return os.execute("(" .. cmd .. ") >/dev/null 2>&1") end

-- Bounded: a random port may belong to another server (a gcs of a test
-- running meanwhile) that accepts and never answers a PING.
local function redis_up(port)
  return sh(("timeout 2 redis-cli -p %d ping | grep -q PONG"):format(port))
end

local function redis_spawn(port, dir)
  sh(("redis-server --port %d --bind 127.0.0.1 --save '' --appendonly no "
      .. "--daemonize yes --pidfile %s/redis.pid --logfile %s/redis.log --dir %s")
     :format(port, dir, dir, dir))
  for _ = 1, 200 do
    if redis_up(port) then return true end
    sh("sleep 0.02")
  end
  return false
end

function helpers.redis_start()
  local dir = os.tmpname()
  os.remove(dir)
  assert(sh("mkdir -p " .. dir))
  local r = { dir = dir }
  for _ = 1, 5 do
    local port = 20000 + math.random(0, 30000)
    if not redis_up(port) and redis_spawn(port, dir) then r.port = port break end
  end
  assert(r.port, "redis-server did not start")
  r.url = ("redis://127.0.0.1:%d/0"):format(r.port)
  function r.stop()
    sh(("redis-cli -p %d shutdown nosave"):format(r.port))
    for _ = 1, 200 do
      if not redis_up(r.port) then return end
      sh("sleep 0.02")
    end
  end
  function r.restart() assert(redis_spawn(r.port, dir), "redis-server did not restart") end
  function r.cleanup() r.stop() sh("rm -rf " .. dir) end
  return r
end

return helpers
