-- gc.connect over real sockets (tests/e2e/s2s.test.js): "link URL" opens a
-- link and reports its events to this client; "send X" sends X on it;
-- "close" closes it. A message "echo:slow..." from the peer is reported
-- after a gc.sleep, so the ones after it must wait their turn.
local gc = require "gc"

return {
  on_message = function(conn, data)
    local url = data:match("^link (.+)$")
    if url then
      local link, err = gc.connect(url, {
        on_connect = function(link) conn:send("connect") end,
        on_message = function(link, d)
          -- a handler that waits: the link's next messages wait behind it
          if d:find("^echo:slow") then gc.sleep(20) end
          conn:send("msg " .. d)
        end,
        on_message_sent = function(link, cookie, len, status)
          conn:send("sent " .. cookie .. " " .. status)
        end,
        on_timer = function(link) conn:send("timer") end,
        on_error = function(link, reason) conn:send("error " .. reason) end,
        on_disconnect = function(link) conn:send("disconnect") end,
      })
      if not link then conn:send("fail " .. err) return end
      conn.link = link
    elseif data:sub(1, 5) == "send " then
      conn.link:send(data:sub(6), "k")
    elseif data == "timer" then
      conn.link:set_timer(10)
    elseif data == "close" then
      conn.link:close()
    end
  end,
}
