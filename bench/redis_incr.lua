-- bench/redis_incr.lua - the echo with one gc.redis.call("INCR", ...) per
-- message, answered after Redis's reply (issue 17).
local gc = require "gc"
return {
  on_message = function(conn, data)
    local n, err = gc.redis.call("INCR", "bench:incr")
    if not n then error(err) end
    conn:send(data)
  end,
}
