/* http.c - gc.testing's stand-in for httpRequest (API 1.4):
 *   T.host{ http = function(req) return { status = 200, headers = {...},
 *                                         body = "..." } end }
 * Every request of the host's apps, http:// and https:// alike (the URL
 * checked by httpRequest as in gcs), is answered by that function (no
 * network), on a later turn of the host's loop (host:advance, a client
 * call: anything that runs it), never inside httpRequest. 'req' is
 * { method, url, headers = { name = value } (names as sent), body (nil
 * without one) }. The function may return nil and a reason instead:
 * "timeout" arrives as ETIMEDOUT, "connection refused" as ECONNREFUSED,
 * any other as EPROTO, each with that text. An error it raises arrives as
 * EPROTO with the error's text. Without 'http', requests fail with
 * ENOTSUP, "no http handler in T.host". */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <string.h>

#include "http_client.h"
#include "testing.h"

#define HEADERS_MAX 64

struct answer_ctx {
  const struct gc_http_request *req;
  gc_http_mock_reply reply;
  void *rctx;
  int replied;
};

/* Under lua_pcall on the host's own thread: calls the spec's function
 * (upvalue-free: it is at index 1) and answers from what it returned. */
static int answer_protected(lua_State *L) {
  struct answer_ctx *a = lua_touserdata(L, 2);
  const struct gc_http_request *req = a->req;
  lua_settop(L, 1);
  lua_createtable(L, 0, 4);
  lua_pushstring(L, req->method);
  lua_setfield(L, -2, "method");
  lua_pushstring(L, req->url);
  lua_setfield(L, -2, "url");
  lua_createtable(L, 0, (int)req->header_count);
  for (size_t i = 0; i < req->header_count; i++) {
    lua_pushstring(L, req->headers[i].value);
    lua_setfield(L, -2, req->headers[i].name);
  }
  lua_setfield(L, -2, "headers");
  if (req->body_len) {
    lua_pushlstring(L, req->body, req->body_len);
    lua_setfield(L, -2, "body");
  }
  lua_call(L, 1, 2); /* errors go to our caller's pcall: EPROTO */
  if (lua_isnil(L, -2)) {
    const char *why = lua_isstring(L, -1) ? lua_tostring(L, -1) : "error";
    int err = strcmp(why, "timeout") == 0              ? ETIMEDOUT
              : strcmp(why, "connection refused") == 0 ? ECONNREFUSED
                                                       : EPROTO;
    a->replied = 1;
    a->reply(a->rctx, err, why, NULL);
    return 0;
  }
  lua_pop(L, 1);
  if (!lua_istable(L, -1))
    return luaL_error(L, "T.host's http function must return a table "
                         "{ status =, headers =, body = } or nil and a reason");
  int res_idx = lua_gettop(L);
  lua_getfield(L, res_idx, "status");
  lua_Integer status = lua_isnil(L, -1) ? 200 : lua_tointeger(L, -1);
  if (status < 100 || status > 999 || (!lua_isnil(L, -1) && !lua_isinteger(L, -1)))
    return luaL_error(L, "T.host's http function: 'status' must be an integer "
                         "100..999");
  lua_getfield(L, res_idx, "body");
  if (!lua_isnil(L, -1) && !lua_isstring(L, -1))
    return luaL_error(L, "T.host's http function: 'body' must be a string");
  size_t body_len = 0;
  const char *body = lua_isnil(L, -1) ? "" : lua_tolstring(L, -1, &body_len);
  struct gc_http_header headers[HEADERS_MAX];
  size_t n = 0;
  lua_newtable(L); /* keeps the strings 'headers' points to */
  int keep = lua_gettop(L);
  lua_getfield(L, res_idx, "headers");
  if (!lua_isnil(L, -1)) {
    luaL_checktype(L, -1, LUA_TTABLE);
    int hidx = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, hidx)) {
      size_t kl;
      if (lua_type(L, -2) != LUA_TSTRING || !lua_isstring(L, -1) ||
          (lua_tolstring(L, -2, &kl), kl) >= 256)
        return luaL_error(L, "T.host's http function: 'headers' must map "
                             "names to strings");
      if (n == HEADERS_MAX)
        return luaL_error(L, "T.host's http function: over %d headers",
                          HEADERS_MAX);
      /* Names lower-cased, as the real client gives them. */
      char name[256];
      const char *k = lua_tostring(L, -2);
      for (size_t i = 0; i < kl; i++)
        name[i] = (char)(k[i] >= 'A' && k[i] <= 'Z' ? k[i] - 'A' + 'a' : k[i]);
      lua_pushlstring(L, name, kl);
      headers[n].name = lua_tostring(L, -1);
      lua_rawseti(L, keep, (lua_Integer)(2 * n + 1));
      lua_pushvalue(L, -1);
      headers[n].value = lua_tostring(L, -1); /* a number as text */
      lua_rawseti(L, keep, (lua_Integer)(2 * n + 2));
      n++;
      lua_pop(L, 1);
    }
  }
  struct gc_http_response res = {.status = (GCT_INT)status, .headers = headers,
                                 .header_count = n, .body = body,
                                 .body_len = body_len};
  a->replied = 1;
  a->reply(a->rctx, 0, NULL, &res);
  return 0;
}

static void answer(void *ud, const struct gc_http_request *req,
                   gc_http_mock_reply reply, void *rctx) {
  struct thost *t = ud;
  if (!t->http_L) {
    reply(rctx, ENOTSUP, "no http handler in T.host", NULL);
    return;
  }
  lua_State *L = t->http_L;
  struct answer_ctx a = {req, reply, rctx, 0};
  lua_settop(L, 0);
  lua_pushcfunction(L, answer_protected);
  lua_rawgeti(L, LUA_REGISTRYINDEX, t->http_ref);
  lua_pushlightuserdata(L, &a);
  t->in_http = 1;
  int rc = lua_pcall(L, 2, 0, 0);
  t->in_http = 0;
  if (rc != LUA_OK && !a.replied) {
    const char *msg = lua_tostring(L, -1);
    reply(rctx, EPROTO, msg ? msg : "error in T.host's http function", NULL);
  }
  lua_settop(L, 0);
}

static struct thost *mock_owner;

int gc_thost_http_check(lua_State *L, int spec) {
  lua_getfield(L, spec, "http");
  int ok = lua_isnil(L, -1) || lua_isfunction(L, -1);
  lua_pop(L, 1);
  return ok ? 0 : luaL_error(L, "gc.testing.host: 'http' must be a function");
}

void gc_thost_http_setup(lua_State *L, struct thost *t, int spec) {
  t->http_ref = t->http_thread_ref = LUA_NOREF;
  t->http_L = NULL;
  lua_getfield(L, spec, "http");
  if (lua_isfunction(L, -1)) {
    t->http_ref = luaL_ref(L, LUA_REGISTRYINDEX);
    t->http_L = lua_newthread(L); /* calls the function from any turn */
    t->http_thread_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  } else {
    lua_pop(L, 1);
  }
  struct gc_http_mock m = {answer, t};
  gc_http_mock_set(&m);
  mock_owner = t;
}

void gc_thost_http_free(struct thost *t) {
  if (mock_owner == t) {
    gc_http_mock_set(NULL);
    mock_owner = NULL;
  }
  if (t->http_L) {
    lua_State *L = t->http_L;
    t->http_L = NULL;
    luaL_unref(L, LUA_REGISTRYINDEX, t->http_ref);
    luaL_unref(L, LUA_REGISTRYINDEX, t->http_thread_ref);
  }
}
