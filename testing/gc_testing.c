/* gc_testing.c - the 'gc.testing' Lua module: game logic under busted
 * against the real host code.
 *
 * T.host{...} embeds the host (host/embed.h) with the real Lua adapter
 * (libgc_lua.so, dlopened as gcs does). Clients are in-memory WebSocket
 * clients that speak real bytes: an HTTP upgrade request, then masked
 * frames made and parsed by a wslay client context. Only the socket and the
 * clock are replaced; the connection table, queues, close semantics and
 * limits are the production ones. Time moves only by host:advance(ms).
 *
 * Script errors (a handler raised, a script that does not load) come from
 * the Lua adapter's error sink, not from the log, where a script's own
 * gc.log(gc.ERR, ...) looks the same; a host call that produced one raises
 * it in the spec (unless the host was made with raise_errors = false;
 * host:errors() then returns them). */
#include <dlfcn.h>
#include <errno.h>
#include <jansson.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <wslay/wslay.h>

#include <game-carrier/server.h>

#include "embed.h"
#include "log.h"

#define HOST_MT "gc.testing.host"


#include "testing.h"


/* The open host: the Lua adapter is loaded once per process, so only one
 * host can run at a time (see T.host). */
static struct thost *live_host;
static void host_free(struct thost *t);

/* ---- host ---------------------------------------------------------------- */

static struct thost *check_host(lua_State *L) {
  struct thost *t = luaL_checkudata(L, 1, HOST_MT);
  if (!t->h)
    luaL_error(L, "host is closed");
  if (t->in_http)
    luaL_error(L, "T.host's http function cannot drive the host");
  gc_thost_log_target = t;
  return t;
}

/* T.host{ script = "scripts/chat.lua", name = "chat", config = {...},
 *         raise_errors = true, quiet = true, workers = N, route = "...",
 *         redis = "redis://127.0.0.1:PORT",
 *         message_type = "text", settings = {...} }
 * 'workers' sets threading.worker_count unless the config has "threading";
 * 'route', 'message_type' and 'settings' go in the app made from 'script'
 * (not in config.adapters). */
static int l_host(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_getfield(L, 1, "workers");
  lua_Integer workers = 0;
  if (!lua_isnil(L, -1)) {
    if (!lua_isinteger(L, -1) || (workers = lua_tointeger(L, -1)) < 1 ||
        workers > 1024)
      return luaL_error(L, "gc.testing.host: 'workers' must be an integer >= 1");
  }
  lua_getfield(L, 1, "route");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
    return luaL_error(L, "gc.testing.host: 'route' must be a string");
  const char *route = lua_tostring(L, -1); /* anchored by the argument */
  lua_getfield(L, 1, "message_type");
  if (!lua_isnil(L, -1) && lua_type(L, -1) != LUA_TSTRING)
    return luaL_error(L, "gc.testing.host: 'message_type' must be a string");
  const char *mtype = lua_tostring(L, -1); /* anchored by the argument */
  lua_getfield(L, 1, "settings");
  if (!lua_isnil(L, -1) && !lua_istable(L, -1))
    return luaL_error(L, "gc.testing.host: 'settings' must be a table");
  (void)gc_thost_http_check(L, 1);
  json_t *settings = lua_istable(L, -1) ? gc_testing_to_json(L, -1, 0) : NULL;
  lua_pop(L, 4);
  if (settings && !json_is_object(settings)) { /* {} and {k = v}: objects */
    json_decref(settings);
    return luaL_error(L, "gc.testing.host: 'settings' must be a table with "
                         "string keys (a JSON object), not an array");
  }
  lua_getfield(L, 1, "script");
  const char *script = luaL_optstring(L, -1, NULL);
  lua_getfield(L, 1, "config");
  int has_cfg = lua_istable(L, -1);
  json_t *root = has_cfg ? gc_testing_to_json(L, -1, 0) : json_object();
  lua_pop(L, 1);
  if ((route || mtype || settings) && json_object_get(root, "adapters")) {
    const char *what = route ? "route" : mtype ? "message_type" : "settings";
    json_decref(root);
    json_decref(settings);
    return luaL_error(L, "gc.testing.host: '%s' goes with 'script'; put "
                         "\"%s\" in the app entries of config.adapters",
                      what, what);
  }
  lua_getfield(L, 1, "redis"); /* a real Redis for gc.redis.call */
  if (!lua_isnil(L, -1)) {
    if (lua_type(L, -1) != LUA_TSTRING) {
      json_decref(root);
      json_decref(settings);
      return luaL_error(L, "gc.testing.host: 'redis' must be a URL string");
    }
    json_object_set_new(root, "redis",
                        json_pack("{s:s}", "url", lua_tostring(L, -1)));
  }
  lua_pop(L, 1);
  if (workers > 0 && !json_object_get(root, "threading"))
    json_object_set_new(root, "threading",
                        json_pack("{s:I}", "worker_count", (json_int_t)workers));
  if (!json_object_get(root, "adapters")) {
    if (!script) {
      json_decref(root);
      json_decref(settings);
      return luaL_error(L, "gc.testing.host: 'script' or config.adapters needed");
    }
    lua_getfield(L, 1, "name");
    const char *name = luaL_optstring(L, -1, NULL);
    char buf[128];
    if (!name) {
      const char *base = strrchr(script, '/');
      snprintf(buf, sizeof buf, "%s", base ? base + 1 : script);
      char *dot = strrchr(buf, '.');
      if (dot && dot != buf)
        *dot = '\0';
      name = buf;
    }
    json_t *entry = json_pack("{s:s, s:s, s:s}", "name", name, "type_name",
                              "lua", "file_name", script);
    if (entry && route)
      json_object_set_new(entry, "route", json_string(route));
    if (entry && mtype)
      json_object_set_new(entry, "message_type", json_string(mtype));
    if (entry && settings)
      json_object_set_new(entry, "settings", settings);
    settings = NULL;
    json_object_set_new(root, "adapters",
                        json_pack("[{s:s, s:[o]}]", "type", "lua", "apps", entry));
    if (!json_object_get(root, "vhosts"))
      json_object_set_new(root, "vhosts",
                          json_pack("[{s:s, s:i, s:s, s:s}]", "ip", "127.0.0.1",
                                    "port", 7681, "protocol", "ws", "app", name));
    lua_pop(L, 1);
  }
  lua_getfield(L, 1, "raise_errors");
  int raise_errors = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_getfield(L, 1, "quiet");
  int quiet = lua_isnil(L, -1) ? 1 : lua_toboolean(L, -1);
  lua_pop(L, 3);
  char *text = json_dumps(root, 0);
  json_decref(root);
  if (!text)
    return luaL_error(L, "gc.testing.host: config is not JSON-able");

  struct thost *t = lua_newuserdatauv(L, sizeof *t, 0);
  memset(t, 0, sizeof *t);
  t->raise_errors = raise_errors;
  t->quiet = quiet;
  luaL_setmetatable(L, HOST_MT);
  gc_thost_log_target = t;
  gc_log_set_hook(gc_thost_log_hook, NULL);
  /* Every line reaches the hook (host:logs); quiet keeps the spec's
   * output clean. */
  gc_log_set_level(GCL_VERBOSE);
  gc_log_set_stderr(!quiet);
  const char *lua_adapter = gc_testing_adapter_path();
  char err[1024] = "";
  /* A spec that failed before host:close() left its host open: close it
   * now, or this one's applications could not start (and every later spec
   * would fail for that one). */
  if (live_host && live_host != t)
    host_free(live_host);
  gc_thost_error_sink_install(lua_adapter);
  gc_thost_http_setup(L, t, 1); /* application_start may already ask */
  int rc = gc_host_create(text, script ? script : "gc.testing", lua_adapter,
                          &t->h, err, sizeof err);
  free(text);
  if (rc) {
    lua_pushfstring(L, "gc.testing.host: %s%s", err, t->errors ? "\n" : "");
    gc_thost_push_errors(L, t, lua_tostring(L, -1));
    return lua_error(L);
  }
  live_host = t;
  gc_thost_settle(L, t);
  return 1;
}

static void host_free(struct thost *t) {
  if (t->h) {
    gc_thost_log_target = t;
    gc_host_destroy(t->h);
    t->h = NULL;
    for (struct tclient *c = t->clients; c; c = c->next) {
      gc_tclient_process(c);
      c->host = NULL;
    }
    t->clients = NULL;
  }
  free(t->errors);
  t->errors = NULL;
  t->errors_len = 0;
  gc_thost_logs_free(t);
  gc_thost_http_free(t);
  if (gc_thost_log_target == t)
    gc_thost_log_target = NULL;
  if (live_host == t)
    live_host = NULL;
}

static int host_gc(lua_State *L) {
  host_free(luaL_checkudata(L, 1, HOST_MT));
  return 0;
}

/* host:close(): application_stop, NORMAL close of everyone, shutdown. */
static int host_close(lua_State *L) {
  struct thost *t = luaL_checkudata(L, 1, HOST_MT);
  gc_thost_log_target = t;
  int raise = t->raise_errors && t->h;
  if (t->h) {
    /* Stop, and let the clients answer the close frames, as real ones do;
     * virtual time runs on for those that do not. */
    gc_host_stop(t->h);
    for (int i = 0; i < 100 && !gc_host_finished(t->h); i++) {
      t->raise_errors = 0;
      gc_thost_settle(L, t);
      if (!gc_host_finished(t->h) && gc_host_advance(t->h, 100) != 0)
        break; /* timers spin at one instant: gc_host_destroy drops the rest */
    }
  }
  gc_host_destroy(t->h);
  t->h = NULL;
  gc_thost_http_free(t);
  if (live_host == t)
    live_host = NULL;
  for (struct tclient *c = t->clients; c; c = c->next)
    gc_tclient_process(c);
  t->clients = NULL;
  if (raise && t->errors_len) {
    gc_thost_push_errors(L, t, "");
    return lua_error(L);
  }
  return 0;
}

static int host_advance(lua_State *L) {
  struct thost *t = check_host(L);
  lua_Integer ms = luaL_checkinteger(L, 2);
  luaL_argcheck(L, ms >= 0, 2, "time cannot go back");
  int rc = gc_host_advance(t->h, ms);
  gc_thost_settle(L, t);
  if (rc == ELOOP)
    return luaL_error(L, "host:advance: timers keep firing at %I ms without time "
                      "moving (%d turns at that instant): a 0 ms timer that "
                      "starts itself again?", (lua_Integer)gc_host_now(t->h),
                      (int)GC_HOST_TURNS_MAX);
  return 0;
}

/* host:settle([max_ms]): runs the host's real I/O (Redis, HTTP) until no
 * handler waits for any, at most max_ms (default 10,000) of real time;
 * virtual time does not move (gc.sleep waits for host:advance). Returns
 * true, or raises saying how many still wait. */
static int host_settle(lua_State *L) {
  struct thost *t = check_host(L);
  lua_Integer max_ms = luaL_optinteger(L, 2, 10000);
  luaL_argcheck(L, max_ms >= 0, 2, "must be >= 0");
  size_t (*pending)(void) = NULL;
  if (gc_thost_sink_dl)
    *(void **)&pending = dlsym(gc_thost_sink_dl, "gc_lua_io_pending");
  if (!pending)
    return luaL_error(L, "host:settle: this Lua adapter has no waiting handlers");
  gc_thost_log_target = t;
  size_t left = 0;
  for (lua_Integer waited = 0;; waited++) {
    gc_host_pump(t->h);
    gc_thost_settle(L, t);
    if ((left = pending()) == 0)
      break;
    if (waited >= max_ms)
      return luaL_error(L, "host:settle: %d handler(s) still wait for I/O after "
                        "%d ms", (int)left, (int)max_ms);
    usleep(1000);
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int host_now(lua_State *L) {
  struct thost *t = check_host(L);
  lua_pushinteger(L, gc_host_now(t->h));
  return 1;
}

/* host:counter(name) -> its value, or nil when there is no such counter. */
/* host:reload([script]): every state of the app runs its script (or
 * 'script') again, as SIGHUP does in gcs. true, or nil and the reason
 * (the old code then goes on). */
static int host_reload(lua_State *L) {
  struct thost *t = check_host(L);
  const char *script = luaL_optstring(L, 2, NULL);
  int (*reload)(const char *, const char *, char *, size_t) = NULL;
  if (gc_thost_sink_dl)
    *(void **)&reload = dlsym(gc_thost_sink_dl, "gc_lua_reload_now");
  if (!reload)
    return luaL_error(L, "host:reload: the Lua adapter has no reload");
  char err[512] = "";
  gc_host_pump(t->h); /* this thread acts as worker 0 again */
  int rc = reload(NULL, script, err, sizeof err);
  gc_host_pump(t->h); /* what the new code did at load (timers, sends) */
  gc_thost_settle(L, t);
  if (rc != 0) {
    lua_pushnil(L);
    lua_pushstring(L, *err ? err : strerror(rc));
    return 2;
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int host_counter(lua_State *L) {
  struct thost *t = check_host(L);
  const char *name = luaL_checkstring(L, 2);
  int64_t v;
  if (gc_host_counter(t->h, name, &v) != 0)
    return 0;
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

static int host_errors(lua_State *L) {
  struct thost *t = luaL_checkudata(L, 1, HOST_MT);
  lua_newtable(L);
  int n = 0;
  const char *p = t->errors ? t->errors : "";
  while (*p) {
    const char *e = strchr(p, ERR_SEP);
    size_t len = e ? (size_t)(e - p) : strlen(p);
    lua_pushlstring(L, p, len);
    lua_rawseti(L, -2, ++n);
    p += len + (e ? 1 : 0);
  }
  free(t->errors);
  t->errors = NULL;
  t->errors_len = 0;
  return 1;
}

/* host:logs([level]): the lines logged so far ("W: text", no timestamp),
 * oldest first; with a level (a name "err" ... "debug", "user", gc.ERR ...,
 * or a mask such as "ERR|WARN"), those at that level or more severe (USER
 * counting with notice, as in gcs -l). */
static int host_logs(lua_State *L) {
  struct thost *t = luaL_checkudata(L, 1, HOST_MT);
  int mask = GCL_VERBOSE;
  if (!lua_isnoneornil(L, 2)) {
    static const char *const names[] = {"err", "warn", "notice", "info", "debug"};
    char num[32];
    const char *s = NULL;
    if (lua_isinteger(L, 2)) {
      lua_Integer v = lua_tointeger(L, 2);
      for (int i = 0; i < 5; i++)
        if (v == (1 << i))
          s = names[i];
      if (!s) {
        snprintf(num, sizeof num, "%lld", (long long)v);
        s = num;
      }
    } else {
      s = luaL_checkstring(L, 2);
    }
    if (gc_log_level_parse_cli(s, &mask) != 0)
      return luaL_argerror(L, 2, "a log level: err, warn, notice, info, debug, "
                                 "user, gc.ERR..., or a mask like \"ERR|WARN\"");
  }
  lua_newtable(L);
  lua_Integer n = 0;
  for (size_t i = 0; i < t->nlogs; i++)
    if (t->log_levels[i] & mask) {
      lua_pushstring(L, t->logs[i]);
      lua_rawseti(L, -2, ++n);
    }
  return 1;
}

/* host:connect(path [, {remote_ip=, remote_port=, port=}]) */
static int host_connect(lua_State *L) {
  struct thost *t = check_host(L);
  const char *path = luaL_optstring(L, 2, "/");
  const char *rip = "127.0.0.1";
  lua_Integer rport = 40000, port = 0;
  if (lua_istable(L, 3)) {
    lua_getfield(L, 3, "remote_ip");
    rip = luaL_optstring(L, -1, rip);
    lua_getfield(L, 3, "remote_port");
    rport = luaL_optinteger(L, -1, rport);
    lua_getfield(L, 3, "port");
    port = luaL_optinteger(L, -1, 0);
    lua_pop(L, 3);
  }
  luaL_argcheck(L, path[0] == '/', 2, "path must start with '/'");
  luaL_argcheck(L, !strpbrk(path, " \r\n"), 2, "path must not contain spaces");
  struct tclient *c = lua_newuserdatauv(L, sizeof *c, 1);
  memset(c, 0, sizeof *c);
  luaL_setmetatable(L, CLIENT_MT);
  lua_pushvalue(L, 1); /* the client keeps its host alive */
  lua_setiuservalue(L, -2, 1);
  c->host = t;
  c->conn = gc_host_connect(t->h, (int)port, rip, (int)rport, &gc_tclient_mem_ops, c);
  if (!c->conn)
    return luaL_error(L, "gc.testing: no vhost on port %d, or host stopping",
                      (int)port);
  c->next = t->clients;
  t->clients = c;
  char req[2600];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: gc.testing\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: "
                   "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
                   path);
  if (n < 0 || (size_t)n >= sizeof req)
    return luaL_error(L, "gc.testing: path too long");
  gc_host_input(t->h, c->conn, req, (size_t)n);
  gc_thost_settle(L, t);
  return 1;
}

/* host:refuse_links(on): links fail to connect while on. */
static int host_refuse_links(lua_State *L) {
  struct thost *t = check_host(L);
  gc_host_refuse_links(t->h, lua_toboolean(L, 2));
  return 0;
}

static const luaL_Reg host_methods[] = {
    {"connect", host_connect}, {"advance", host_advance}, {"now", host_now},
    {"settle", host_settle},
    {"errors", host_errors},   {"close", host_close},     {"counter", host_counter},
    {"logs", host_logs},
    {"reload", host_reload},   {"refuse_links", host_refuse_links},
    {NULL, NULL}};

int luaopen_gc_testing(lua_State *L);
int luaopen_gc_testing(lua_State *L) {
  luaL_checkversion(L);
  if (luaL_newmetatable(L, HOST_MT)) {
    luaL_newlib(L, host_methods);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, host_gc);
    lua_setfield(L, -2, "__gc");
    lua_pushcfunction(L, host_gc);
    lua_setfield(L, -2, "__close");
  }
  lua_pop(L, 1);
  gc_tclient_lua_open(L);
  lua_newtable(L);
  lua_pushcfunction(L, l_host);
  lua_setfield(L, -2, "host");
  return 1;
}
