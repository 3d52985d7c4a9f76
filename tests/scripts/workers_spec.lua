-- Lua on several workers (T.host{ workers = 2 }): a state per worker for an
-- app with a "route", connections of one key in one state, gc.worker, and
-- gc.publish / gc.subscribe between the states, the time limit per state.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

-- Each state keeps its own module-level tables: 'rooms' (the room's members
-- in this state), 'starts' (its application_start runs) and 'got' (what its
-- subscribers received). A client speaks commands:
--   who             -> "worker ID COUNT"
--   say TEXT        -> "TEXT" to every member of the room in this state
--   conns           -> "conns N": connections of this state
--   starts          -> "starts N"
--   pub CH DATA     -> publishes; "published true|nil ERR"
--   pubn CH N       -> publishes "1" .. "N" on CH in one handler
--   log             -> "log A,B,..." what this state's subscribers got
--   cancel          -> cancels this state's subscription of "news"
local PROBE = script([[
  local gc = require "gc"
  local app = {}
  local rooms, starts, got = {}, 0, {}
  local inside, last_published = false, nil
  local news

  local function record(tag) got[#got + 1] = tag end

  function app.application_start()
    starts = starts + 1
    news = gc.subscribe("news", function(data, channel)
      assert(channel == "news")
      -- 'inside' is true only while gc.publish runs in this state;
      -- 'last_published' is set after it returned.
      record(data .. (inside and "!inside" or "")
                  .. (last_published == data and "+flag" or ""))
    end)
    gc.subscribe("boom", function() error("bad subscriber") end)
    gc.subscribe("boom", function(data) record("boom " .. data) end)
  end

  function app.on_connect(conn, info)
    conn.room = info.query.room or "none"
    rooms[conn.room] = rooms[conn.room] or {}
    rooms[conn.room][conn] = true
  end

  function app.on_disconnect(conn) rooms[conn.room][conn] = nil end

  function app.on_message(conn, data)
    local cmd, rest = data:match("^(%S+)%s*(.*)$")
    if cmd == "who" then
      conn:send(("worker %d %d"):format(gc.worker.id, gc.worker.count))
    elseif cmd == "say" then
      for c in pairs(rooms[conn.room]) do c:send(rest) end
    elseif cmd == "conns" then
      local n = 0
      for _ in gc.connections() do n = n + 1 end
      conn:send("conns " .. n)
    elseif cmd == "starts" then
      conn:send("starts " .. starts)
    elseif cmd == "pub" then
      local ch, text = rest:match("^(%S+)%s*(.*)$")
      inside = true
      local ok, err = gc.publish(ch, text)
      inside = false
      last_published = text
      conn:send("published " .. tostring(ok) .. (err and (" " .. err) or ""))
    elseif cmd == "pubn" then
      local ch, n = rest:match("^(%S+)%s+(%d+)$")
      for i = 1, tonumber(n) do gc.publish(ch, tostring(i)) end
    elseif cmd == "log" then
      conn:send("log " .. table.concat(got, ","))
      got = {}
    elseif cmd == "cancel" then
      conn:send("cancel " .. tostring(news:cancel()) .. " " .. tostring(news:cancel()))
    end
  end
  return app
]])

local function ask(c, msg)
  c:send(msg)
  local r = c:received()
  assert(#r == 1, ("%q: expected one answer, got %d"):format(msg, #r))
  return r[1]
end

local function worker_of(c)
  local id, count = ask(c, "who"):match("^worker (%d+) (%d+)$")
  return tonumber(id), tonumber(count)
end

-- One client in a room of each worker (rooms "1", "2", ... until both
-- workers have one): [0] and [1].
local function one_per_worker(host)
  local by = {}
  for room = 1, 64 do
    local c = host:connect("/?room=" .. room)
    local w = worker_of(c)
    if by[w] then c:close() else by[w] = c end
    if by[0] and by[1] then return by end
  end
  error("64 rooms all landed on one worker")
end

describe("workers", function()
  local host
  after_each(function() if host then host:close() end host = nil end)

  describe("with route = query.room", function()
    before_each(function()
      host = T.host{ script = PROBE, workers = 2, route = "query.room" }
    end)

    it("has gc.worker.count == 2 and states with ids 0 and 1", function()
      local seen = {}
      for room = 1, 16 do
        local id, count = worker_of(host:connect("/?room=" .. room))
        assert.equal(2, count)
        seen[id] = true
      end
      assert.same({ [0] = true, [1] = true }, seen)
    end)

    it("puts the clients of one room in one state, rooms on both workers", function()
      local members, ids = {}, {}
      for room = 1, 8 do
        members[room] = {}
        for k = 1, 3 do
          local c = host:connect(("/chat?room=%d&k=%d"):format(room, k))
          members[room][k] = c
          local id = worker_of(c)
          ids[room] = ids[room] or id
          assert.equal(ids[room], id, "room " .. room .. " spans two states")
        end
      end
      local used = {}
      for room = 1, 8 do used[ids[room]] = true end
      assert.same({ [0] = true, [1] = true }, used)
      -- A message in a room reaches exactly its members: the room's table
      -- of members is a module-level table of one state.
      members[3][2]:send("say hello 3")
      for room = 1, 8 do
        for k = 1, 3 do
          assert.same(room == 3 and { "hello 3" } or {}, members[room][k]:received())
        end
      end
    end)

    it("runs application_start once in each state", function()
      local by = one_per_worker(host)
      assert.equal("starts 1", ask(by[0], "starts"))
      assert.equal("starts 1", ask(by[1], "starts"))
    end)

    it("shows each state its own connections only", function()
      local by = one_per_worker(host)
      local extra = host:connect("/?room=" .. "x")
      local w = worker_of(extra)
      assert.equal("conns 2", ask(by[w], "conns"))
      assert.equal("conns 1", ask(by[1 - w], "conns"))
    end)

    it("delivers a publication to the subscribers of both workers, later", function()
      local by = one_per_worker(host)
      assert.equal("published true", ask(by[0], "pub news hello"))
      -- Never inside gc.publish, and after it returned: the publisher's
      -- state saw the flag set after the call.
      assert.equal("log hello+flag", ask(by[0], "log"))
      assert.equal("log hello", ask(by[1], "log"))
    end)

    it("keeps the publisher's order", function()
      local by = one_per_worker(host)
      by[0]:send("pubn news 200")
      local want = {}
      for i = 1, 200 do want[i] = tostring(i) end
      want = "log " .. table.concat(want, ",")
      assert.equal(want, ask(by[0], "log"))
      assert.equal(want, ask(by[1], "log"))
    end)

    it("stays in the process under gc.testing, even with a \"redis\" in the config", function()
      host:close()
      -- gc.testing has no Redis link: nothing connects to this port.
      host = T.host{ script = PROBE, workers = 2, route = "query.room",
                     config = { redis = { url = "redis://127.0.0.1:1/0" } } }
      local by = one_per_worker(host)
      assert.equal("published true", ask(by[0], "pub news local"))
      assert.equal("log local+flag", ask(by[0], "log"))
      assert.equal("log local", ask(by[1], "log"))
      for _, line in ipairs(host:logs()) do
        assert.is_nil(line:find("^%u: redis "), line)
      end
    end)

    it("stops delivering to a cancelled subscription", function()
      local by = one_per_worker(host)
      assert.equal("cancel true false", ask(by[1], "cancel"))
      assert.equal("published true", ask(by[0], "pub news after"))
      assert.equal("log after+flag", ask(by[0], "log"))
      assert.equal("log ", ask(by[1], "log"))
      -- cancelled in the publisher's own state, just before it publishes
      assert.equal("cancel true false", ask(by[0], "cancel"))
      assert.equal("published true", ask(by[0], "pub news again"))
      assert.equal("log ", ask(by[0], "log"))
    end)

    it("logs a raising subscriber and still delivers to the others", function()
      host:close()
      host = T.host{ script = PROBE, workers = 2, route = "query.room",
                     raise_errors = false }
      local by = one_per_worker(host)
      assert.equal("published true", ask(by[1], "pub boom x"))
      assert.equal("log boom x", ask(by[0], "log"))
      assert.equal("log boom x", ask(by[1], "log"))
      local errs = host:errors()
      assert.equal(2, #errs) -- one per state
      for _, e in ipairs(errs) do
        assert.matches("error in subscriber of 'boom'", e, 1, true)
        assert.matches("bad subscriber", e, 1, true)
      end
    end)
  end)

  it("stops a runaway handler at its own app's time limit, one watchdog for all", function()
    -- Every state of both apps runs on this one thread, so they share its
    -- watchdog; each call still gets its own app's limit, whichever app
    -- made the watchdog tick faster.
    local spin = script([[
      local gc = require "gc"
      return { on_message = function(conn, data)
        if data == "loop" then while true do end end
        conn:send(("ok %d"):format(gc.worker.id))
      end }
    ]])
    host = T.host{ raise_errors = false, workers = 2, config = {
      adapters = { { type = "lua", apps = {
        { name = "slow", file_name = spin, lua = { time_limit_ms = 300 } },
        { name = "fast", file_name = spin, route = "query.room",
          lua = { time_limit_ms = 40 } } } } },
      vhosts = {
        { ip = "127.0.0.1", port = 7681, protocol = "ws", app = "slow" },
        { ip = "127.0.0.1", port = 7682, protocol = "ws", app = "fast" } } } }
    local function cpu_of(c)
      local t0 = os.clock()
      c:send("loop")
      return os.clock() - t0
    end
    local slow = host:connect("/", { port = 7681 })
    local fast = {}
    for room = 1, 64 do
      local c = host:connect("/?room=" .. room, { port = 7682 })
      c:send("who")
      local w = c:received()[1]
      fast[w] = fast[w] or c
      if fast["ok 0"] and fast["ok 1"] then break end
    end
    assert.is_truthy(fast["ok 0"] and fast["ok 1"])
    local s1 = cpu_of(slow)
    local f0, f1 = cpu_of(fast["ok 0"]), cpu_of(fast["ok 1"])
    local s2 = cpu_of(slow) -- after "fast" made the tick finer
    for _, t in ipairs{ s1, s2 } do
      assert.is_true(t >= 0.29 and t < 0.45, "slow stopped after " .. t .. " s")
    end
    for _, t in ipairs{ f0, f1 } do
      assert.is_true(t >= 0.035 and t < 0.07, "fast stopped after " .. t .. " s")
    end
    -- every state answers normally afterwards
    for _, c in ipairs{ slow, fast["ok 0"], fast["ok 1"] } do c:send("x") end
    assert.matches("^ok %d$", slow:received()[1])
    assert.same({ "ok 0" }, fast["ok 0"]:received())
    assert.same({ "ok 1" }, fast["ok 1"]:received())
    local errs = host:errors()
    assert.equal(4, #errs)
    assert.matches("lua app slow: error in on_message: .*time limit exceeded %(300 ms", errs[1])
    assert.matches("lua app fast %(worker 0%): error in on_message: .*%(40 ms", errs[2])
    assert.matches("lua app fast %(worker 1%): error in on_message: .*%(40 ms", errs[3])
    assert.matches("lua app slow: .*%(300 ms", errs[4])
  end)

  describe("without a route", function()
    it("keeps every connection in one state", function()
      host = T.host{ script = PROBE, workers = 2 }
      local clients, first = {}, nil
      for room = 1, 8 do
        local c = host:connect("/?room=" .. room)
        clients[#clients + 1] = c
        local id, count = worker_of(c)
        assert.equal(2, count)
        first = first or id
        assert.equal(first, id)
      end
      assert.equal("conns 8", ask(clients[5], "conns"))
      assert.equal("starts 1", ask(clients[1], "starts"))
      -- publish reaches the one state
      assert.equal("published true", ask(clients[2], "pub news one"))
      assert.equal("log one+flag", ask(clients[3], "log"))
    end)
  end)

  it("has one worker by default", function()
    host = T.host{ script = PROBE }
    local c = host:connect("/?room=1")
    assert.same({ 0, 1 }, { worker_of(c) })
    assert.equal("published true", ask(c, "pub news solo"))
    assert.equal("log solo+flag", ask(c, "log"))
  end)

  it("rejects bad arguments to publish and subscribe", function()
    host = T.host{ raise_errors = false, script = script([[
      local gc = require "gc"
      return { on_message = function(conn, data)
        local f = load("local gc = ... " .. data)
        local _, err = pcall(f, gc)
        conn:send((tostring(err):gsub("^.-:%d+: ", "")))
      end }
    ]]) }
    local c = host:connect("/")
    assert.equal("bad argument #1 to 'publish' (string expected, got table)",
                 ask(c, "gc.publish({}, 'x')"))
    assert.equal("bad argument #2 to 'publish' (string expected, got no value)",
                 ask(c, "gc.publish('ch')"))
    assert.equal("bad argument #1 to 'subscribe' (string expected, got nil)",
                 ask(c, "gc.subscribe(nil, print)"))
    assert.equal("bad argument #2 to 'subscribe' (function expected, got string)",
                 ask(c, "gc.subscribe('ch', 'f')"))
  end)
end)
