-- gc.connect in gc.testing: a lobby app links to a game app of the same
-- test host, in memory and in virtual time (host/link_mem.c), through the
-- same upgrade, frames and close as over TCP. A wss:// link connects in
-- memory too, without TLS (gc.testing has no sockets and no certificates).
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

local LOBBY = script([[
  local gc = require "gc"
  return {
    on_message = function(conn, data)
      if data == "go" or data == "go-wss" or data == "go-nowhere" then
        local url = data == "go-wss" and "wss://127.0.0.1:7681/game"
          or data == "go-nowhere" and "ws://127.0.0.1:9/game"
          or "ws://127.0.0.1:7681/game?room=7"
        local link, err = gc.connect(url, {
          on_connect = function(link)
            conn:send("connect " .. tostring(link:is_open()) .. " " .. link.tag)
            link:send("hi", "c1")
          end,
          on_message = function(link, d)
            if d == "boom" then error("link handler failed") end
            conn:send("msg " .. d)
          end,
          on_message_sent = function(link, cookie, len, status)
            conn:send("sent " .. cookie .. " " .. len .. " " .. status)
          end,
          on_timer = function(link) conn:send("timer " .. gc.now()) end,
          on_error = function(link, reason) conn:send("error " .. reason) end,
          on_disconnect = function(link)
            conn:send("disconnect " .. tostring(link:is_open()))
          end,
        })
        if not link then conn:send("fail " .. err) return end
        link.tag = "mine"
        conn.link = link
        conn:send("connecting " .. tostring(link:is_open()))
      elseif data:sub(1, 5) == "send " then
        conn.link:send(data:sub(6))
      elseif data:sub(1, 6) == "timer " then
        conn.link:set_timer(tonumber(data:sub(7)))
        conn.t0 = gc.now()
      elseif data == "close" then
        conn:send("close " .. tostring(conn.link:close()))
      end
    end,
  }
]])

local GAME = script([[
  return {
    on_connect = function(conn, info) conn:send("welcome " .. (info.query.room or "-")) end,
    on_message = function(conn, data)
      if data == "bye" then conn:close() return end
      if data == "boom" then conn:send("boom") return end
      for i = 1, (data == "many" and 50 or 1) do
        conn:send("echo:" .. data .. (data == "many" and i or ""))
      end
    end,
  }
]])

local function two_apps(extra)
  local cfg = {
    adapters = { { type = "lua", apps = {
      { name = "lobby", file_name = LOBBY }, { name = "game", file_name = GAME } } } },
    vhosts = {
      { ip = "127.0.0.1", port = 7681, protocol = "ws", app = "lobby" },
      { ip = "127.0.0.1", port = 7681, protocol = "ws", app = "game" } },
  }
  local t = { config = cfg }
  for k, v in pairs(extra or {}) do t[k] = v end
  return T.host(t)
end

describe("gc.connect under gc.testing", function()
  it("links a lobby to a game of the same host, both ways, in order", function()
    local host = two_apps()
    local c = host:connect("/lobby")
    c:send("go")
    assert.same({ "connecting false", "connect true mine", "msg welcome 7",
                  "sent c1 2 0", "msg echo:hi" }, c:received())
    c:send("send many")
    local got = c:received()
    assert.equal(50, #got)
    for i = 1, 50 do assert.equal("msg echo:many" .. i, got[i]) end
    -- the timer runs in virtual time
    c:send("timer 500")
    host:advance(499)
    assert.same({}, c:received())
    host:advance(1)
    assert.same({ "timer 500" }, c:received())
    -- NORMAL close: on_disconnect once, the link no longer open
    c:send("close")
    assert.same({ "close true", "disconnect false" }, c:received())
    host:close()
  end)

  it("works across worker loops", function()
    local host = two_apps{ workers = 3 }
    local c = host:connect("/lobby")
    c:send("go")
    assert.same({ "connecting false", "connect true mine", "msg welcome 7",
                  "sent c1 2 0", "msg echo:hi" }, c:received())
    c:send("send many")
    assert.equal(50, #c:received())
    c:send("close")
    assert.same({ "close true", "disconnect false" }, c:received())
    host:close()
  end)

  it("reports the peer's close as on_disconnect", function()
    local host = two_apps()
    local c = host:connect("/lobby")
    c:send("go")
    c:received()
    c:send("send bye")
    assert.same({ "disconnect false" }, c:received())
    host:close()
  end)

  it("fails a link with on_error exactly once when links are refused", function()
    local host = two_apps()
    host:refuse_links(true)
    local c = host:connect("/lobby")
    c:send("go")
    assert.same({ "connecting false", "error connection refused" }, c:received())
    host:advance(20000)
    assert.same({}, c:received())
    host:refuse_links(false)
    c:send("go")
    assert.same({ "connecting false", "connect true mine", "msg welcome 7",
                  "sent c1 2 0", "msg echo:hi" }, c:received())
    c:send("go-nowhere")
    assert.same({ "connecting false", "error connection refused" }, c:received())
    host:close()
  end)

  it("connects a wss link in memory like a ws one (no TLS in gc.testing)", function()
    local host = two_apps()
    local c = host:connect("/lobby")
    c:send("go-wss")
    assert.same({ "connecting false", "connect true mine", "msg welcome -",
                  "sent c1 2 0", "msg echo:hi" }, c:received())
    c:send("close")
    assert.same({ "close true", "disconnect false" }, c:received())
    host:close()
  end)

  it("isolates an error in a link handler", function()
    local host = two_apps{ raise_errors = false }
    local c = host:connect("/lobby")
    c:send("go")
    c:received()
    c:send("send boom")
    local errs = host:errors()
    assert.equal(1, #errs)
    assert.matches("link handler failed", errs[1])
    c:send("send again")
    assert.same({ "msg echo:again" }, c:received())
    host:close()
  end)

  it("closes open links when the host shuts down", function()
    local host = two_apps()
    local c = host:connect("/lobby")
    c:send("go")
    c:received()
    host:close()
    assert.is_false(c:is_open())
  end)
end)
