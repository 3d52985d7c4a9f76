-- gc.http (issue 17) under gc.testing: T.host{ http = fn } answers the
-- requests of gc.http.request / gc.http.get on a later turn of the host's
-- loop (host:settle runs it until no handler waits), so the waiting
-- handler, the others meanwhile and on_connect's auth check are testable
-- without a network.
local T = require "gc.testing"

local script = require("tests.scripts.helpers").script

local APP = script([[
  local gc = require "gc"
  return {
    on_connect = function(conn, req)
      if req.query.token then
        local res, err = gc.http.get("http://auth.test/check?token=" .. req.query.token)
        if not res then return false, 503, "auth unavailable" end
        if res.status ~= 200 then return false, 401, "bad token" end
        conn.user = gc.json.decode(res.body).user
      end
    end,
    on_message = function(conn, data)
      local cmd, rest = data:match("^(%S+)%s*(.*)$")
      if cmd == "post" then
        local res, err = gc.http.request{ url = "http://api.test/items", method = "POST",
          headers = { ["X-Token"] = "t1", ["Content-Type"] = "application/json" },
          body = gc.json.encode({ name = rest }), timeout_ms = 1000 }
        if not res then conn:send("err " .. err) return end
        conn:send(res.status .. " " .. tostring(res.headers["x-id"]) .. " " .. res.body)
      elseif cmd == "get" then
        local res, err = gc.http.get(rest)
        conn:send(res and (res.status .. " " .. res.body) or ("err " .. err))
      elseif cmd == "inject" then
        local ok, err = pcall(gc.http.request, { url = "http://api.test/x",
          headers = { ["X-A"] = "1\r\nX-Evil: yes" } })
        conn:send(tostring(ok) .. " " .. tostring(err))
      elseif cmd == "who" then
        conn:send("user " .. tostring(conn.user))
      else
        conn:send("echo " .. data)
      end
    end,
  }
]])

local function api(req)
  if req.url:match("^http://auth.test/") then
    if req.url:match("token=good$") then return { status = 200, body = '{"user":"ann"}' } end
    return { status = 401, body = "no" }
  end
  if req.url == "http://api.test/items" then
    return { status = 201, headers = { ["X-Id"] = "7" },
             body = req.method .. " " .. req.headers["X-Token"] .. " " .. req.body }
  end
  if req.url:match("slow") then return nil, "timeout" end
  if req.url:match("down") then return nil, "connection refused" end
  return { status = 404, body = "nothing at " .. req.url }
end

-- Until the host's HTTP client (another branch) is merged, T.host has no
-- 'http' and httpRequest answers ENOTSUP: the specs then are pending.
local function has_http()
  local h = T.host{ script = APP, http = function() return { body = "" } end }
  local c = h:connect("/")
  c:send("get http://probe.test/")
  h:settle()
  local got = c:received()[1]
  h:close()
  return got ~= "err http not available on this host"
end
local HTTP = has_http()
local it = HTTP and it or function(name) pending(name .. " (no HTTP client in this host yet)") end

describe("gc.http", function()
  local host
  after_each(function() if host then host:close() end host = nil end)

  it("waits for the answer while other connections are served", function()
    host = T.host{ script = APP, http = api }
    local a, b = host:connect("/"), host:connect("/")
    a:send("post sword")
    b:send("hello")                          -- the mock answers on a later turn
    assert.same({ "echo hello" }, b:received())
    host:settle()
    assert.same({ '201 7 POST t1 {"name":"sword"}' }, a:received())
  end)

  it("keeps a connection's messages in order behind the wait", function()
    host = T.host{ script = APP, http = api }
    local a = host:connect("/")
    a:send("get http://x.test/one")
    a:send("hello")
    a:send("get http://x.test/two")
    host:settle()
    assert.same({ "404 nothing at http://x.test/one", "echo hello",
                  "404 nothing at http://x.test/two" }, a:received())
  end)

  it("returns nil, err for failures", function()
    host = T.host{ script = APP, http = api }
    local a = host:connect("/")
    a:send("get http://x.test/slow")
    a:send("get http://x.test/down")
    a:send("get https://x.test/down")
    a:send("get nonsense")
    host:settle()
    assert.same({ "err timeout", "err connection refused", "err connection refused",
                  "err bad url or request" }, a:received())
  end)

  it("sends https requests like http ones", function()
    host = T.host{ script = APP, http = api }
    local a = host:connect("/")
    a:send("get https://x.test/secure")
    host:settle()
    assert.same({ "404 nothing at https://x.test/secure" }, a:received())
  end)

  it("refuses a header with CR or LF", function()
    host = T.host{ script = APP, http = api }
    local a = host:connect("/")
    a:send("inject")
    assert.matches("^false .*bad header 'X%-A'", a:received()[1])
  end)

  it("lets on_connect check a token over HTTP and refuse", function()
    host = T.host{ script = APP, http = api }
    local good, bad = host:connect("/?token=good"), host:connect("/?token=bad")
    good:send("who")
    host:settle()
    assert.same({ "user ann" }, good:received())
    assert.is_false(bad:is_open())
    assert.equal(4401, bad.close_code)
    assert.equal("bad token", bad.close_text)
  end)
end)
