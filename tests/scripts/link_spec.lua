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

-- Link handlers that wait (issue 17): each runs in a coroutine of its own,
-- and a link's events stay in order behind its handler that waits. Every
-- note names the link it is about (its tag) and whether the handler got
-- that very link object.
local WAIT_LOBBY = script([[
  local gc = require "gc"
  local notes, links, t0 = {}, {}, 0
  local function note(s) notes[#notes + 1] = s end
  local function at() return "@" .. (gc.now() - t0) end
  return {
    on_message = function(conn, data)
      local cmd, tag, rest = data:match("^(%S+) (%S+) ?(.*)$")
      if data == "report" then
        conn:send(table.concat(notes, ","))
        notes = {}
      elseif cmd == "go" then
        t0 = gc.now()
        local link
        link = gc.connect("ws://127.0.0.1:7681/game", {
          on_connect = function(l)
            note("connect " .. l.tag .. " " .. tostring(rawequal(l, link)))
            if rest == "slow-connect" then
              gc.sleep(100)
              note("connected " .. l.tag .. " " .. at() .. " " .. tostring(l:is_open()))
            end
          end,
          on_message = function(l, d)
            if d:sub(1, 4) ~= "slow" then
              note("msg " .. l.tag .. " " .. d .. " " .. at())
              return
            end
            note("begin " .. l.tag .. " " .. d .. " " .. at())
            gc.sleep(100)
            local ok, err = l:send("done " .. d)
            note("end " .. l.tag .. " " .. d .. " " .. at() .. " " ..
                 tostring(ok) .. " " .. tostring(err) .. " " .. tostring(rawequal(l, link)))
            if d == "slowboom" then error("failed after waiting on " .. l.tag) end
          end,
          on_timer = function(l) note("timer " .. l.tag .. " " .. at()) end,
          on_error = function(l, reason) note("error " .. l.tag .. " " .. reason) end,
          on_disconnect = function(l)
            note("disconnect " .. l.tag .. " " .. at() .. " " ..
                 tostring(rawequal(l, link)) .. " " .. tostring(l:is_open()))
          end,
        })
        link.tag = tag
        links[tag] = link
      elseif cmd == "send" then
        links[tag]:send(rest)
      elseif cmd == "timer" then
        links[tag]:set_timer(tonumber(rest))
      end
    end,
  }
]])

-- The game: "two" answers two messages its peer handles slowly, "two-bye"
-- one and then closes, "many" five, "boom" one that fails after its wait;
-- anything else (the lobby's "done ..." sends) is ignored.
local WAIT_GAME = script([[
  return {
    on_connect = function(conn) conn:send("hello") end,
    on_message = function(conn, data)
      if data == "two" then conn:send("slow1") conn:send("slow2")
      elseif data == "two-bye" then conn:send("slow1") conn:close()
      elseif data == "many" then for i = 1, 5 do conn:send("slow" .. i) end
      elseif data == "boom" then conn:send("slowboom")
      end
    end,
  }
]])

local function waiting_apps(extra)
  local cfg = {
    adapters = { { type = "lua", apps = {
      { name = "lobby", file_name = WAIT_LOBBY }, { name = "game", file_name = WAIT_GAME } } } },
    vhosts = {
      { ip = "127.0.0.1", port = 7681, protocol = "ws", app = "lobby" },
      { ip = "127.0.0.1", port = 7681, protocol = "ws", app = "game" } },
  }
  for k, v in pairs(extra or {}) do cfg[k] = v end
  return T.host{ config = cfg, raise_errors = false }
end

describe("link handlers that wait", function()
  local host
  after_each(function() if host then host:close() end host = nil end)

  local function report(c)
    c:send("report")
    return c:received()[1]
  end

  it("handle a link's messages in order, the second after the first's wait", function()
    host = waiting_apps()
    local c = host:connect("/lobby")
    c:send("go A")
    c:send("go B")
    assert.equal("connect A true,msg A hello @0,connect B true,msg B hello @0", report(c))
    c:send("send A two")
    c:send("timer A 50")
    assert.equal("begin A slow1 @0", report(c))
    host:advance(50) -- A's timer fired: it waits behind slow1, slow2
    c:send("send B two") -- B is not held up by A
    assert.equal("begin B slow1 @50", report(c))
    host:advance(50)
    assert.equal("end A slow1 @100 true nil true,begin A slow2 @100", report(c))
    host:advance(50)
    assert.equal("end B slow1 @150 true nil true,begin B slow2 @150", report(c))
    host:advance(50)
    assert.equal("end A slow2 @200 true nil true,timer A @200", report(c))
    host:advance(50)
    assert.equal("end B slow2 @250 true nil true", report(c))
    assert.same({}, host:errors())
  end)

  it("a peer gone during a wait: the handler resumes, send says closed, on_disconnect after", function()
    host = waiting_apps()
    local c = host:connect("/lobby")
    c:send("go A")
    c:send("go B")
    report(c)
    c:send("send A two-bye")
    assert.equal("begin A slow1 @0", report(c)) -- A's on_disconnect waits
    host:advance(100)
    assert.equal("end A slow1 @100 nil closed true,disconnect A @100 true false", report(c))
    c:send("send B two") -- B still open
    assert.equal("begin B slow1 @100", report(c))
    host:advance(200)
    assert.equal("end B slow1 @200 true nil true,begin B slow2 @200,"
                 .. "end B slow2 @300 true nil true", report(c))
  end)

  it("an error after resuming is logged and isolated", function()
    host = waiting_apps()
    local c = host:connect("/lobby")
    c:send("go A")
    report(c)
    c:send("send A boom")
    host:advance(100)
    assert.equal("begin A slowboom @0,end A slowboom @100 true nil true", report(c))
    local errs = host:errors()
    assert.equal(1, #errs)
    assert.matches("on_message", errs[1], 1, true)
    assert.matches("failed after waiting on A", errs[1], 1, true)
    c:send("send A two") -- the link goes on
    host:advance(200)
    assert.equal("begin A slow1 @100,end A slow1 @200 true nil true,"
                 .. "begin A slow2 @200,end A slow2 @300 true nil true", report(c))
  end)

  it("on_connect of a link may wait; the link's messages queue behind it", function()
    host = waiting_apps()
    local c = host:connect("/lobby")
    c:send("go A slow-connect")
    assert.equal("connect A true", report(c)) -- "hello" waits behind it
    host:advance(100)
    assert.equal("connected A @100 true,msg A hello @100", report(c))
  end)

  it("past lua.max_pending_events the link is closed with a NOTICE", function()
    host = waiting_apps{ lua = { max_pending_events = 3 } }
    local c = host:connect("/lobby")
    c:send("go A")
    report(c)
    c:send("send A many") -- slow1 runs, slow2-4 queue, slow5 is one too many
    assert.equal("begin A slow1 @0", report(c))
    local notices = {}
    for _, l in ipairs(host:logs("notice")) do
      if l:find("events waiting behind a handler that waits", 1, true) then
        notices[#notices + 1] = l
      end
    end
    assert.equal(1, #notices)
    assert.matches("link closed", notices[1], 1, true)
    host:advance(400)
    assert.equal("end A slow1 @100 nil closed true,begin A slow2 @100,"
                 .. "end A slow2 @200 nil closed true,begin A slow3 @200,"
                 .. "end A slow3 @300 nil closed true,begin A slow4 @300,"
                 .. "end A slow4 @400 nil closed true,disconnect A @400 true false",
                 report(c))
  end)
end)
