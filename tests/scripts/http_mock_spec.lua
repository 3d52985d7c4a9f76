-- gc.testing's T.host{ http = ... }: httpRequest (API 1.4) answered by the
-- spec's function instead of the network, on a later turn of the host's
-- loop. Driven through the http_fetch test adapter (tests/adapters/), a
-- native adapter calling api->httpRequest from on_message, so this holds
-- for any adapter (the Lua binding's gc.http included).
local T = require "gc.testing"

local build = assert(os.getenv("GC_LUA_ADAPTER"), "GC_LUA_ADAPTER"):match("^(.*)/[^/]*$")

local function fetcher(http)
  return T.host{
    http = http,
    config = {
      adapters = { { type = "native", dir = build, name = "http_fetch",
                     apps = { { name = "f" } } } },
      vhosts = { { ip = "127.0.0.1", port = 7681, protocol = "ws", app = "f" } },
    },
  }
end

local function ask(c, text)
  c:send(text)
  local got = c:received()
  assert.equal(1, #got, "one answer to " .. text)
  return got[1]
end

describe("T.host's http", function()
  it("answers from the spec's function, with the request as sent", function()
    local seen
    local host = fetcher(function(req)
      seen = req
      return { status = 201, headers = { ["X-Test"] = "yes" }, body = "hi " .. req.url }
    end)
    local c = host:connect("/")
    assert.equal("201 yes hi http://example.test/a?b=1", ask(c, "GET http://example.test/a?b=1"))
    assert.equal("GET", seen.method)
    assert.equal("http://example.test/a?b=1", seen.url)
    assert.is_nil(seen.body)
    assert.equal("201 yes hi http://x.test/p", ask(c, "POST http://x.test/p payload"))
    assert.equal("POST", seen.method)
    assert.equal("payload", seen.body)
    host:close()
  end)

  it("turns nil, reason and errors into failures", function()
    local host = fetcher(function(req)
      if req.url:match("slow") then return nil, "timeout" end
      if req.url:match("down") then return nil, "connection refused" end
      if req.url:match("bad") then return 42 end
      error("no route for " .. req.url)
    end)
    local c = host:connect("/")
    assert.equal("err 110 timeout", ask(c, "GET http://h.test/slow"))
    assert.equal("err 111 connection refused", ask(c, "GET http://h.test/down"))
    assert.matches("^err 71 .*must return a table", ask(c, "GET http://h.test/bad"))
    assert.matches("^err 71 .*no route for http://h.test/x", ask(c, "GET http://h.test/x"))
    -- URLs are checked as in gcs: refused at once, no answer from the spec
    assert.equal("refused 22", ask(c, "GET nonsense"))
    assert.equal("refused 22", ask(c, "GET ftp://h.test/"))
    -- a cancel wins over the spec's answer, which is then not asked
    assert.equal("err 125 cancelled", ask(c, "CANCEL http://h.test/x"))
    host:close()
  end)

  it("passes https requests to the spec's function too", function()
    local seen
    local host = fetcher(function(req)
      seen = req.url
      return { body = "secure" }
    end)
    local c = host:connect("/")
    assert.equal("200 - secure", ask(c, "GET https://h.test/a"))
    assert.equal("https://h.test/a", seen)
    assert.equal("200 - secure", ask(c, "GET https://h.test:8443/b"))
    assert.equal("https://h.test:8443/b", seen)
    host:close()
  end)

  it("fails with ENOTSUP without an http function", function()
    local host = fetcher(nil)
    local c = host:connect("/")
    assert.equal("err 95 no http handler in T.host", ask(c, "GET http://h.test/"))
    host:close()
  end)

  it("keeps the spec's function from driving the host", function()
    local c
    local host = fetcher(function()
      c:send("GET http://h.test/again")
      return { body = "unreachable" }
    end)
    c = host:connect("/")
    assert.matches("^err 71 .*cannot drive the host", ask(c, "GET http://h.test/"))
    host:close()
  end)

  it("rejects an http that is not a function", function()
    assert.has_error(function() fetcher("nope") end,
                     "gc.testing.host: 'http' must be a function")
  end)
end)
