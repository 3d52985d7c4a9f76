-- gc.redis.call against a real redis-server started on a free port
-- (issue 17): replies as Lua values, pipelined calls, other connections
-- served while one waits, and an outage (the server stopped, then
-- restarted) with calls failing at once and recovering. host:settle()
-- runs the real I/O until no handler waits for it.
local T = require "gc.testing"

local helpers = require "tests.scripts.helpers"
local script = helpers.script

local APP = script([[
  local gc = require "gc"
  local function show(v, err)
    if type(v) == "table" then
      local t = {}
      for i, x in ipairs(v) do
        t[i] = x == gc.null and "null" or type(x) == "table" and ("err:" .. x.err) or tostring(x)
      end
      return "{" .. table.concat(t, ",") .. "}"
    end
    return tostring(v) .. (err and (" " .. err) or "")
  end
  return {
    on_message = function(conn, data)
      if data == "ping" then conn:send("pong") return end
      local args = {}
      for w in data:gmatch("%S+") do args[#args + 1] = w end
      conn:send(show(gc.redis.call(table.unpack(args))))
    end,
  }
]])

describe("gc.redis", function()
  local redis, host
  setup(function() redis = helpers.redis_start() end)
  teardown(function() if redis then redis.cleanup() end end)
  after_each(function() if host then host:close() end host = nil end)

  it("answers with Lua values", function()
    host = T.host{ script = APP, redis = redis.url }
    local a = host:connect("/")
    for _, cmd in ipairs{ "DEL k l", "SET k v", "GET k", "GET nokey", "INCR n",
                          "RPUSH l a b c", "LRANGE l 0 -1", "INCR k", "PING",
                          "MGET k nokey l" } do
      a:send(cmd)
      host:settle()
    end
    local got = a:received()
    assert.equal("OK", got[2])
    assert.equal("v", got[3])
    assert.equal("nil", got[4])
    assert.equal("1", got[5])
    assert.equal("3", got[6])
    assert.equal("{a,b,c}", got[7])
    assert.matches("^nil ERR value is not an integer", got[8])
    assert.equal("PONG", got[9])
    assert.equal("{v,null,null}", got[10])
  end)

  it("gives an error element of an array as { err = ... }", function()
    host = T.host{ script = script([[
      local gc = require "gc"
      return { on_message = function(conn)
        local v = gc.redis.call("EVAL", "return {1, redis.error_reply('nope'), 'x'}", 0)
        conn:send(v[1] .. " " .. v[2].err .. " " .. v[3])
      end }
    ]]), redis = redis.url }
    local a = host:connect("/")
    a:send("go")
    host:settle()
    assert.same({ "1 ERR nope x" }, a:received())
  end)

  it("pipelines calls of many handlers and keeps each connection in order", function()
    host = T.host{ script = APP, redis = redis.url }
    local conns = {}
    for i = 1, 20 do conns[i] = host:connect("/") end
    for i = 1, 20 do
      conns[i]:send("INCR counter:" .. i)
      conns[i]:send("INCR counter:" .. i)
      conns[i]:send("GET counter:" .. i)
    end
    host:settle()
    for i = 1, 20 do assert.same({ "1", "2", "2" }, conns[i]:received()) end
  end)

  it("serves other connections while one waits", function()
    host = T.host{ script = APP, redis = redis.url }
    local slow, fast = host:connect("/"), host:connect("/")
    slow:send("BLPOP nothing-here 1")         -- Redis answers in 1 s
    fast:send("ping")
    assert.same({ "pong" }, fast:received())
    assert.same({}, slow:received())
    host:settle()
    assert.same({ "nil" }, slow:received())
  end)

  it("fails fast during an outage, one line, and recovers", function()
    host = T.host{ script = APP, redis = redis.url }
    local a = host:connect("/")
    a:send("SET x 1")
    host:settle()
    assert.same({ "OK" }, a:received())
    redis.stop()
    a:send("GET x")                          -- in flight when it drops
    host:settle()
    assert.matches("^nil redis: ", a:received()[1])
    for _ = 1, 5 do a:send("GET x") end      -- answered at once, no wait
    local got = a:received()
    assert.equal(5, #got)
    for _, g in ipairs(got) do assert.equal("nil redis: unavailable", g) end
    local lines = 0
    for _, l in ipairs(host:logs("warn")) do
      if l:find("commands fail", 1, true) then lines = lines + 1 end
    end
    assert.equal(1, lines)
    redis.restart()
    local back
    for _ = 1, 100 do                        -- retries: 100 ms doubling
      os.execute("sleep 0.1")
      host:settle()
      a:send("SET x 2")
      host:settle()
      back = a:received()[1]
      if back == "OK" then break end
    end
    assert.equal("OK", back)
    local notice = false
    for _, l in ipairs(host:logs("notice")) do
      notice = notice or l:find("commands work again", 1, true) ~= nil
    end
    assert.is_true(notice)
  end)

  it("refuses commands that would change the shared connection", function()
    host = T.host{ raise_errors = false, script = APP, redis = redis.url }
    local a = host:connect("/")
    a:send("select 1")
    a:send("MULTI")
    a:send("PING")
    host:settle()
    assert.same({ "PONG" }, a:received())
    local errs = host:errors()
    assert.equal(2, #errs)
    assert.matches("SELECT is not available", errs[1])
    assert.matches("MULTI is not available", errs[2])
  end)

  it("without redis in the config: nil, err at once", function()
    host = T.host{ script = APP }
    local a = host:connect("/")
    a:send("PING")
    assert.matches("^nil redis: not configured", a:received()[1])
  end)
end)
