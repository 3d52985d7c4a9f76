/* wait.c - the waiting functions on the host's I/O: gc.redis.call and
 * gc.http.request (API 1.4's redisCommand and httpRequest).
 *
 * Each starts the host's operation with the wait's 'user' (coro.c) and
 * yields; the host's callback comes on this state's worker and resumes
 * the handler with the answer as Lua values. A call the host refuses at
 * once (Redis down, a bad URL) returns nil, err without waiting. */
#include <errno.h>
#include <string.h>
#include <strings.h>

#include <lauxlib.h>

#include "gc_lua.h"

#define REDIS_ARGS_MAX 1024 * 1024

static struct gc_lua_app *app_up(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* ---- gc.redis ------------------------------------------------------------ */

static void push_reply(lua_State *L, const struct gc_redis_reply *r) {
  switch (r->type) {
  case GC_REDIS_STRING:
  case GC_REDIS_STATUS:
    lua_pushlstring(L, r->str ? r->str : "", r->len);
    break;
  case GC_REDIS_INTEGER:
    lua_pushinteger(L, (lua_Integer)r->integer);
    break;
  case GC_REDIS_ARRAY:
    luaL_checkstack(L, 4, "Redis reply too deep");
    lua_createtable(L, r->elements < 1u << 24 ? (int)r->elements : 0, 0);
    for (size_t i = 0; i < r->elements; i++) {
      const struct gc_redis_reply *e = &r->element[i];
      if (e->type == GC_REDIS_NIL) {
        lua_pushlightuserdata(L, NULL); /* gc.null: the array keeps its length */
      } else if (e->type == GC_REDIS_ERROR) { /* in EXEC's answer, say */
        lua_createtable(L, 0, 1);
        lua_pushlstring(L, e->str ? e->str : "", e->len);
        lua_setfield(L, -2, "err");
      } else {
        push_reply(L, e);
      }
      lua_rawseti(L, -2, (lua_Integer)i + 1);
    }
    break;
  default:
    lua_pushnil(L);
    break;
  }
}

struct redis_answer {
  GCT_INT err;
  const char *err_text;
  const struct gc_redis_reply *reply;
};

/* gc.redis.call's results: the value; nil for nil; nil, "ERR ..." for an
 * error reply; nil, "redis: <reason>" when there was no reply. */
static int push_redis(lua_State *L, void *ud) {
  const struct redis_answer *a = ud;
  if (a->err != 0) {
    lua_pushnil(L);
    lua_pushfstring(L, "redis: %s", a->err_text ? a->err_text : strerror(a->err));
    return 2;
  }
  if (a->reply->type == GC_REDIS_ERROR) {
    lua_pushnil(L);
    lua_pushlstring(L, a->reply->str ? a->reply->str : "", a->reply->len);
    return 2;
  }
  push_reply(L, a->reply);
  return 1;
}

/* Commands that would change the worker's shared connection for every
 * handler on it (or never answer in turn): refused. */
static const char *const redis_refused[] = {
    "SELECT", "MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH", "SUBSCRIBE",
    "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "MONITOR",
    "QUIT", "RESET", "CLIENT", "AUTH", "HELLO", NULL};

static void redis_answered(GCT_INTPTR user, GCT_INT err, GCT_CSTR err_text,
                           const struct gc_redis_reply *reply) {
  struct redis_answer a = {err, err_text, reply};
  if (err == 0 && reply == NULL)
    a.err = EPROTO, a.err_text = "no reply";
  gc_lua_wake(user, push_redis, &a);
}

/* gc.redis.call(cmd, ...) -> value | nil | nil, err. Each argument is a
 * string or a number (sent as its text). The handler waits for the
 * answer; calls from many handlers are pipelined on the worker's one
 * connection. */
static int l_redis_call(lua_State *L) {
  struct gc_lua_app *app = app_up(L);
  int argc = lua_gettop(L);
  luaL_argcheck(L, argc >= 1, 1, "a command expected");
  luaL_argcheck(L, argc <= REDIS_ARGS_MAX, REDIS_ARGS_MAX, "too many arguments");
  const char **argv = lua_newuserdatauv(L, (size_t)argc * sizeof *argv, 0);
  size_t *argvlen = lua_newuserdatauv(L, (size_t)argc * sizeof *argvlen, 0);
  for (int i = 0; i < argc; i++) {
    int t = lua_type(L, i + 1);
    if (t != LUA_TSTRING && t != LUA_TNUMBER)
      luaL_typeerror(L, i + 1, "string or number");
    argv[i] = lua_tolstring(L, i + 1, &argvlen[i]); /* numbers in place */
  }
  for (int i = 0; redis_refused[i]; i++)
    if (argvlen[0] == strlen(redis_refused[i]) &&
        strncasecmp(argv[0], redis_refused[i], argvlen[0]) == 0)
      return luaL_error(L,
                        "gc.redis.call: %s is not available (the connection "
                        "is shared by the worker's handlers; use EVAL for an "
                        "atomic group)",
                        redis_refused[i]);
  if (app->api->redisCommand == NULL)
    return gc_lua_push_error(L, ENOSYS);
  struct gc_lua_wait *w = gc_lua_wait_begin(L, app, "gc.redis.call", 1);
  int rc = app->api->redisCommand(argc, argv, argvlen, redis_answered,
                                  gc_lua_wait_user(w));
  if (rc != 0) {
    gc_lua_wait_cancel(L, w);
    lua_pushnil(L);
    switch (rc) {
    case ENOSYS: lua_pushliteral(L, "redis: not configured (no \"redis\" in the config)"); break;
    case ENOTCONN: lua_pushliteral(L, "redis: unavailable"); break;
    default: lua_pushfstring(L, "redis: %s", strerror(rc)); break;
    }
    return 2;
  }
  return gc_lua_wait_yield(L, w);
}

void gc_lua_redis_module(lua_State *L, struct gc_lua_app *app) {
  lua_createtable(L, 0, 1);
  lua_pushlightuserdata(L, app);
  lua_pushcclosure(L, l_redis_call, 1);
  lua_setfield(L, -2, "call");
  lua_setfield(L, -2, "redis");
}

/* ---- gc.http ------------------------------------------------------------- */

struct http_answer {
  GCT_INT err;
  const char *err_text;
  const struct gc_http_response *res;
};

/* res = { status =, headers = { [lower-case name] = value }, body = } (a
 * repeated header's values joined with ", "), or nil, err. */
static int push_http(lua_State *L, void *ud) {
  const struct http_answer *a = ud;
  if (a->err != 0 || a->res == NULL) {
    lua_pushnil(L);
    if (a->err == ETIMEDOUT)
      lua_pushliteral(L, "timeout");
    else
      lua_pushstring(L, a->err_text ? a->err_text : strerror(a->err ? a->err : EPROTO));
    return 2;
  }
  const struct gc_http_response *r = a->res;
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, r->status);
  lua_setfield(L, -2, "status");
  lua_createtable(L, 0, r->header_count < 64 ? (int)r->header_count : 64);
  for (size_t i = 0; i < r->header_count; i++) {
    const char *name = r->headers[i].name ? r->headers[i].name : "";
    const char *value = r->headers[i].value ? r->headers[i].value : "";
    if (lua_getfield(L, -1, name) == LUA_TSTRING) {
      lua_pushliteral(L, ", ");
      lua_pushstring(L, value);
      lua_concat(L, 3);
    } else {
      lua_pop(L, 1);
      lua_pushstring(L, value);
    }
    lua_setfield(L, -2, name);
  }
  lua_setfield(L, -2, "headers");
  lua_pushlstring(L, r->body ? r->body : "", r->body ? r->body_len : 0);
  lua_setfield(L, -2, "body");
  return 1;
}

static void http_answered(GCT_INTPTR user, GCT_INT err, GCT_CSTR err_text,
                          const struct gc_http_response *res) {
  struct http_answer a = {err, err_text, res};
  gc_lua_wake(user, push_http, &a);
}

static void http_stop(struct gc_lua_wait *w) {
  if (w->app->api->httpCancel)
    (void)w->app->api->httpCancel(w->host_id);
}

/* Reads opts.key as a string (or nil): NULL when absent. */
static const char *opt_string(lua_State *L, int t, const char *key,
                              size_t *len) {
  int ty = lua_getfield(L, t, key);
  if (ty == LUA_TNIL) {
    lua_pop(L, 1);
    return NULL;
  }
  if (ty != LUA_TSTRING)
    luaL_error(L, "gc.http.request: '%s' must be a string", key);
  return lua_tolstring(L, -1, len); /* left on the stack: anchored */
}

static int http_start(lua_State *L, struct gc_lua_app *app, int t) {
  struct gc_http_request req;
  memset(&req, 0, sizeof req);
  req.url = opt_string(L, t, "url", NULL);
  if (req.url == NULL)
    return luaL_error(L, "gc.http.request: 'url' expected");
  req.method = opt_string(L, t, "method", NULL);
  size_t blen = 0;
  req.body = opt_string(L, t, "body", &blen);
  req.body_len = blen;
  lua_getfield(L, t, "timeout_ms");
  lua_Integer tmo = luaL_optinteger(L, -1, 5000);
  luaL_argcheck(L, tmo > 0 && tmo <= INT32_MAX, 1, "timeout_ms out of range");
  req.timeout_ms = (GCT_INT)tmo;
  lua_getfield(L, t, "max_body");
  lua_Integer mb = luaL_optinteger(L, -1, 0);
  luaL_argcheck(L, mb >= 0, 1, "max_body out of range");
  req.max_body = (GCT_SIZE)mb;
  lua_getfield(L, t, "max_redirects");
  lua_Integer mr = luaL_optinteger(L, -1, 0);
  luaL_argcheck(L, mr >= 0 && mr <= 100, 1, "max_redirects out of range");
  req.max_redirects = (GCT_INT)mr;
  int ht = lua_getfield(L, t, "headers");
  size_t nh = 0;
  struct gc_http_header *h = NULL;
  if (ht == LUA_TTABLE) {
    int hi = lua_gettop(L);
    lua_pushnil(L);
    while (lua_next(L, hi)) {
      nh++;
      lua_pop(L, 1);
    }
    h = lua_newuserdatauv(L, (nh ? nh : 1) * sizeof *h, 0);
    size_t k = 0;
    lua_pushnil(L);
    while (lua_next(L, hi) && k < nh) {
      if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING)
        return luaL_error(L, "gc.http.request: headers must map strings to strings");
      size_t nl, vl;
      h[k].name = lua_tolstring(L, -2, &nl); /* the table anchors both */
      h[k].value = lua_tolstring(L, -1, &vl);
      if (nl == 0 || strlen(h[k].name) != nl || strlen(h[k].value) != vl ||
          strpbrk(h[k].name, "\r\n: \t") || strpbrk(h[k].value, "\r\n"))
        return luaL_error(L, "gc.http.request: bad header '%s' (a name is a "
                             "token, a value has no CR, LF or NUL)",
                          h[k].name);
      k++;
      lua_pop(L, 1);
    }
    nh = k;
  } else if (ht != LUA_TNIL) {
    return luaL_error(L, "gc.http.request: 'headers' must be a table");
  }
  req.headers = h;
  req.header_count = nh;
  if (app->api->httpRequest == NULL)
    return gc_lua_push_error(L, ENOSYS);
  struct gc_lua_wait *w = gc_lua_wait_begin(L, app, "gc.http.request", 1);
  GCT_INT err = 0;
  GCT_INTPTR id = app->api->httpRequest(app->app_id, &req, http_answered,
                                        gc_lua_wait_user(w), &err);
  if (id == 0) {
    gc_lua_wait_cancel(L, w);
    lua_pushnil(L);
    switch (err) {
    case ENOTSUP: lua_pushliteral(L, "http not available on this host"); break;
    case EINVAL: lua_pushliteral(L, "bad url or request"); break;
    default: lua_pushstring(L, strerror(err ? err : EIO)); break;
    }
    return 2;
  }
  w->host_id = id;
  w->stop = http_stop;
  return gc_lua_wait_yield(L, w);
}

/* gc.http.request{ url =, method = "GET", headers = {}, body =,
 * timeout_ms = 5000, max_body =, max_redirects = 0 } -> res | nil, err */
static int l_http_request(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 1);
  return http_start(L, app_up(L), 1);
}

/* gc.http.get(url [, opts]) -> res | nil, err */
static int l_http_get(lua_State *L) {
  luaL_checkstring(L, 1);
  lua_settop(L, 2);
  lua_createtable(L, 0, 4); /* 3 */
  if (lua_istable(L, 2)) {
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      lua_pushvalue(L, -2);
      lua_insert(L, -2);
      lua_rawset(L, 3);
    }
  }
  lua_pushvalue(L, 1);
  lua_setfield(L, 3, "url");
  return http_start(L, app_up(L), 3);
}

void gc_lua_http_module(lua_State *L, struct gc_lua_app *app) {
  lua_createtable(L, 0, 2);
  lua_pushlightuserdata(L, app);
  lua_pushcclosure(L, l_http_request, 1);
  lua_setfield(L, -2, "request");
  lua_pushlightuserdata(L, app);
  lua_pushcclosure(L, l_http_get, 1);
  lua_setfield(L, -2, "get");
  lua_setfield(L, -2, "http");
}
