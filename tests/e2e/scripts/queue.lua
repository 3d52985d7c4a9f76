-- The recorder adapter's close commands, in Lua, for a side-by-side check
-- of close semantics; plus hooks for the isolation and lifetime tests.
local gc = require "gc"
local app = {}
local ok, bad = 0, 0

function app.on_connect(conn, info)
  if info.query.fail == "connect" then error("refusing by error") end
end

function app.on_message(conn, data)
  local n, mode = data:match("^queue (%d+) (%a+)$")
  if n then
    for i = 0, tonumber(n) - 1 do conn:send(tostring(i), i + 1) end
    local a = conn:close(mode == "drop" and gc.CLOSE_DROP or gc.CLOSE_NORMAL)
    local b, why = conn:close(mode == "drop" and gc.CLOSE_DROP or gc.CLOSE_NORMAL)
    gc.log(gc.NOTICE, "close %s %s %s", tostring(a), tostring(b), tostring(why))
    return
  end
  if data == "stats" then return conn:send(string.format("ok=%d bad=%d", ok, bad)) end
  if data == "boom" then error("boom in on_message") end
  if data == "loop" then while true do end end
  if data == "mem" then
    collectgarbage("collect")
    collectgarbage("collect")
    return conn:send(tostring(gc.memory()))
  end
  conn:send(data)
end

function app.on_message_sent(conn, cookie, len, status)
  if cookie then
    if status == 0 then ok = ok + 1 else bad = bad + 1 end
  end
end

return app
