-- bench/wait_sleep.lua - the echo with one yield and resume per message:
-- gc.sleep(0) suspends the handler until the next turn of the loop
-- (issue 17's cost of a wait on the echo path).
local gc = require "gc"
return {
  on_message = function(conn, data)
    gc.sleep(0)
    conn:send(data)
  end,
}
