/* gc_module.c - the 'gc' module a script gets with require "gc", and the
 * application timers behind gc.set_interval / gc.set_timeout.
 *
 * The module is registered in package.preload of each application state,
 * with the app as upvalue 1 of every function (luaL_setfuncs(L, gc_funcs,
 * 1), as skynet does), so no function needs a global to find its context.
 *
 * Application timers ride on the host's timerStart/timerStop (a gcs
 * extension of core_api). A timer is a "gc.timer" userdata holding its
 * callback as user value, anchored in the app's timer table under a serial
 * number while armed. The host only knows the integer 'serial <<
 * GC_LUA_KEY_BITS | the state's key' (group.c): when it fires, the state is
 * looked up by its key and the timer by serial, so a cancelled or stale
 * timer finds nothing and does nothing. A timer fires on the worker that
 * started it, which is the state's. */
#include <errno.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

#define SERIAL_MAX (INTPTR_MAX >> GC_LUA_KEY_BITS)

static struct gc_lua_app *app_up(lua_State *L) {
  return lua_touserdata(L, lua_upvalueindex(1));
}

/* ---- gc.log, gc.getopt, gc.now, gc.memory ---------------------------------- */

static const char *const level_names[] = {"err",  "warn",  "notice", "info",
                                          "debug", "user", NULL};
static const lua_Integer level_values[] = {GCL_ERR,  GCL_WARN,  GCL_NOTICE,
                                           GCL_INFO, GCL_DEBUG, GCL_USER};

/* gc.log(level, fmt, ...): 'level' is gc.ERR ... gc.USER or "err" ...
 * "user"; with arguments after 'fmt' the text is string.format(fmt, ...). */
static int l_log(lua_State *L) {
  struct gc_lua_app *app = app_up(L);
  lua_Integer level =
      gc_lua_check_int_or_name(L, 1, level_names, level_values);
  int ok = 0;
  for (int i = 0; level_names[i]; i++)
    ok |= level == level_values[i];
  luaL_argcheck(L, ok, 1, "invalid log level");
  int n = lua_gettop(L);
  luaL_checkstring(L, 2);
  if (n > 2) {
    luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
    lua_getfield(L, -1, "string");
    if (lua_istable(L, -1))
      lua_getfield(L, -1, "format");
    else
      lua_pushnil(L);
    if (!lua_isfunction(L, -1))
      return luaL_error(L, "gc.log: string.format is not available");
    for (int i = 2; i <= n; i++)
      lua_pushvalue(L, i);
    lua_call(L, n - 1, 1);
  } else {
    lua_pushvalue(L, 2);
  }
  const char *msg = lua_tostring(L, -1);
  gc_lua_log(app, (int)level, "%s", msg ? msg : "");
  return 0;
}

/* gc.getopt(path) -> string | integer | nil, errmsg */
static int l_getopt(lua_State *L) {
  struct gc_lua_app *app = app_up(L);
  const char *path = luaL_checkstring(L, 1);
  GetOpt get = app->api->getOpt;
  if (get == NULL)
    return gc_lua_push_error(L, ENOSYS);
  const char *s = NULL;
  int rc = get(path, GC_OPT_TYPE_STRING, &s);
  if (rc == 0) {
    lua_pushstring(L, s ? s : "");
    return 1;
  }
  if (rc == ENOENT) {
    lua_pushnil(L);
    lua_pushfstring(L, "no option '%s'", path);
    return 2;
  }
  int32_t i32 = 0;
  if (get(path, GC_OPT_TYPE_INT, &i32) == 0) {
    lua_pushinteger(L, i32);
    return 1;
  }
  uint64_t u64 = 0;
  if (get(path, GC_OPT_TYPE_UINT64, &u64) == 0) {
    if (u64 <= (uint64_t)LUA_MAXINTEGER)
      lua_pushinteger(L, (lua_Integer)u64);
    else
      lua_pushnumber(L, (lua_Number)u64);
    return 1;
  }
  lua_pushnil(L);
  lua_pushfstring(L, "option '%s' is not a string or a number", path);
  return 2;
}

/* gc.now() -> milliseconds of the host's monotonic clock. */
static int l_now(lua_State *L) {
  struct gc_lua_app *app = app_up(L);
  if (app->api->nowMs == NULL)
    return luaL_error(L, "gc.now: this host has no clock (nowMs)");
  lua_pushinteger(L, (lua_Integer)app->api->nowMs());
  return 1;
}

/* gc.memory() -> bytes allocated by this application's Lua state. */
static int l_memory(lua_State *L) {
  struct gc_lua_app *app = app_up(L);
  lua_pushinteger(L, (lua_Integer)app->mem_used);
  lua_pushinteger(L, (lua_Integer)app->mem_limit);
  return 2;
}

/* ---- gc.connections, gc.broadcast ------------------------------------------- */

/* Pushes an array of the open connections, oldest first. */
static void push_open_conns(lua_State *L, struct gc_lua_app *app) {
  lua_createtable(L, (int)(app->conn_count < 1000000 ? app->conn_count : 0), 0);
  lua_Integer n = 0;
  for (struct gc_lua_conn *c = app->conn_head; c; c = c->next)
    if (c->open && !c->closing) {
      gc_lua_conn_push(L, c);
      lua_rawseti(L, -2, ++n);
    }
}

static int connections_iter(lua_State *L) {
  lua_Integer i = lua_tointeger(L, lua_upvalueindex(2)) + 1;
  lua_pushinteger(L, i);
  lua_replace(L, lua_upvalueindex(2));
  lua_rawgeti(L, lua_upvalueindex(1), i);
  return 1;
}

/* for conn in gc.connections() do ... end: the connections of this state
 * open when the loop started (is_open() true), oldest first. An app with a
 * "route" has a state per worker: each sees its own connections only. */
static int l_connections(lua_State *L) {
  push_open_conns(L, app_up(L));
  lua_pushinteger(L, 0);
  lua_pushcclosure(L, connections_iter, 2);
  return 1;
}

/* The gc.conn at 'idx', or NULL for any other value. */
static struct gc_lua_conn *to_conn(lua_State *L, int idx) {
  return gc_lua_conn_test(L, idx);
}

/* Adds 'c' to 'handles' if it is open and not listed yet in this call. */
static void bcast_add(struct gc_lua_app *app, struct gc_lua_conn *c,
                      GCT_INTPTR *handles, size_t cap, size_t *n) {
  if (c->open && !c->closing && c->bcast_stamp != app->bcast_serial &&
      *n < cap) {
    c->bcast_stamp = app->bcast_serial;
    handles[(*n)++] = c->handle;
  }
}

/* gc.broadcast(data [, filter | conns] [, "text"|"binary"]) -> number of
 * connections it was queued for, among this state's (as gc.connections),
 * or nil, "invalid UTF-8" for text that is not. 'filter(conn)' returning false or nil skips a connection;
 * 'conns' is a table of the connections to reach, as an array
 * {conn, ...} or as a set {[conn] = true, ...} (a room); each gets the
 * message once, closed ones are skipped. The type may come second when
 * there is no filter; without one the app's "message_type" applies. The
 * message is handed to the host once (connectionsBroadcastEx): one copy
 * of the payload is shared by every receiver's queue. */
static int l_broadcast(lua_State *L) {
  struct gc_lua_app *app = app_up(L);
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  int targ = lua_type(L, 2) == LUA_TSTRING ? 2 : 3;
  int flags = gc_lua_check_msg_type(L, targ);
  if (flags == GC_MESSAGE_DEFAULT) /* the app's, said to the host outright */
    flags = app->message_text ? GC_MESSAGE_TEXT : GC_MESSAGE_BINARY;
  if (targ == 2)
    lua_remove(L, 2);
  int kind = lua_type(L, 2);
  luaL_argexpected(L, kind == LUA_TNONE || kind == LUA_TNIL ||
                          kind == LUA_TFUNCTION || kind == LUA_TTABLE,
                   2, "function or table of gc.conn");
  lua_settop(L, 2);
  /* The handles, in Lua-owned memory: a raising filter leaks nothing. */
  size_t cap = app->conn_count ? app->conn_count : 1;
  GCT_INTPTR *handles = lua_newuserdatauv(L, cap * sizeof *handles, 0); /* 3 */
  size_t n = 0;
  if (++app->bcast_serial == 0)
    ++app->bcast_serial; /* 0 is every connection's initial stamp */
  if (kind == LUA_TTABLE) {
    /* Raw traversal: no Lua runs, so the connection list cannot change. */
    lua_pushnil(L);
    while (lua_next(L, 2)) {
      struct gc_lua_conn *c = to_conn(L, -2); /* a set: conn -> true */
      if (c) {
        if (lua_toboolean(L, -1))
          bcast_add(app, c, handles, cap, &n);
      } else if ((c = to_conn(L, -1)) != NULL) { /* an array: i -> conn */
        bcast_add(app, c, handles, cap, &n);
      } else {
        return luaL_error(L, "bad argument #2 to 'broadcast' (a table of "
                             "gc.conn expected, found a %s entry)",
                          luaL_typename(L, -1));
      }
      lua_pop(L, 1);
    }
  } else if (kind != LUA_TFUNCTION) {
    /* No Lua runs while walking: the list cannot change under us. */
    for (struct gc_lua_conn *c = app->conn_head; c; c = c->next)
      bcast_add(app, c, handles, cap, &n);
  } else {
    push_open_conns(L, app); /* 4: a snapshot, safe whatever filter does */
    lua_Integer total = (lua_Integer)lua_rawlen(L, 4);
    for (lua_Integer i = 1; i <= total && n < cap; i++) {
      lua_rawgeti(L, 4, i);
      struct gc_lua_conn *c = lua_touserdata(L, -1);
      lua_pushvalue(L, 2);
      lua_pushvalue(L, -2);
      lua_call(L, 1, 1);
      if (lua_toboolean(L, -1))
        bcast_add(app, c, handles, cap, &n);
      lua_pop(L, 2);
    }
  }
  GCT_SIZE queued = 0;
  /* Called with no receiver too, so bad text is refused either way. A
   * host before API 1.2 has binary frames only. */
  if (app->api->connectionsBroadcastEx) {
    if (app->api->connectionsBroadcastEx(handles, n, (GCT_PTR)(uintptr_t)data,
                                         len, 0, flags, &queued) == EILSEQ)
      return gc_lua_push_error(L, EILSEQ);
  } else if (n) {
    (void)app->api->connectionsBroadcast(handles, n, (GCT_PTR)(uintptr_t)data,
                                         len, 0, &queued);
  }
  lua_pushinteger(L, (lua_Integer)queued);
  return 1;
}

/* ---- application timers ------------------------------------------------------ */

struct timer_ud {
  struct gc_lua_app *app;
  GCT_INTPTR host_id; /* the host's timer id while active */
  GCT_INTPTR serial;  /* key in the app's timer table */
  lua_Integer ms;
  int repeat;
  int active;
};

static void push_timers(lua_State *L, struct gc_lua_app *app) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->timers_ref);
}

/* Stops an armed timer at the host (EINVAL there: it is gone anyway). */
static void timer_disarm(struct timer_ud *t) {
  t->active = 0;
  if (t->app->api->timerStop)
    (void)t->app->api->timerStop(t->host_id);
}

struct fire_ev {
  GCT_INTPTR serial;
};

static int do_fire(lua_State *L) {
  struct fire_ev *ev = lua_touserdata(L, 1);
  struct gc_lua_app *app = gc_lua_app_of(L);
  push_timers(L, app); /* 2 */
  if (lua_rawgeti(L, 2, (lua_Integer)ev->serial) != LUA_TUSERDATA)
    return 0; /* cancelled meanwhile */
  struct timer_ud *t = lua_touserdata(L, 3);
  if (!t->repeat) {
    t->active = 0;
    lua_pushnil(L);
    lua_rawseti(L, 2, (lua_Integer)ev->serial);
  }
  lua_getiuservalue(L, 3, 1);
  lua_pushvalue(L, 3);
  struct gc_lua_run run = {NULL, GC_LUA_RUN_PLAIN, "timer"};
  (void)gc_lua_co_call(L, app, 1, &run);
  return 0;
}

/* The host's callback: 'user' is 'serial << GC_LUA_KEY_BITS | key'. */
static void timer_fired(GCT_INTPTR user) {
  struct gc_lua_app *app = gc_lua_state_by_key(user);
  if (app == NULL || app->L == NULL || app->closing)
    return;
  struct fire_ev ev = {user >> GC_LUA_KEY_BITS};
  (void)gc_lua_pcall(app, "timer", do_fire, &ev);
}

/* A free serial (the table at -1 is the app's timer table). */
static GCT_INTPTR next_serial(lua_State *L, struct gc_lua_app *app) {
  for (;;) {
    GCT_INTPTR s = app->next_timer_serial;
    app->next_timer_serial = s >= SERIAL_MAX ? 1 : s + 1;
    int used = lua_rawgeti(L, -1, (lua_Integer)s) != LUA_TNIL;
    lua_pop(L, 1);
    if (!used)
      return s;
  }
}

static int start_timer(lua_State *L, int repeat) {
  struct gc_lua_app *app = app_up(L);
  const char *fname = repeat ? "gc.set_interval" : "gc.set_timeout";
  lua_Integer ms = luaL_checkinteger(L, 1);
  luaL_argcheck(L, repeat ? ms > 0 : ms >= 0, 1,
                repeat ? "interval must be > 0" : "must be >= 0");
  luaL_argcheck(L, ms <= INT32_MAX, 1, "too large");
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (app->api->timerStart == NULL)
    return luaL_error(L, "%s: this host has no application timers", fname);
  if (app->app_id < 0 || app->app_id >= (1 << GC_LUA_APP_BITS))
    return luaL_error(L, "%s: application id %d out of range", fname,
                      (int)app->app_id);
  lua_settop(L, 2);
  struct timer_ud *t = lua_newuserdatauv(L, sizeof *t, 1); /* 3 */
  memset(t, 0, sizeof *t);
  t->app = app;
  t->ms = ms;
  t->repeat = repeat;
  luaL_setmetatable(L, GC_LUA_TIMER_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 3, 1);
  push_timers(L, app); /* 4 */
  GCT_INTPTR serial = next_serial(L, app);
  lua_pushvalue(L, 3);
  lua_rawseti(L, 4, (lua_Integer)serial); /* may raise: nothing held yet */
  t->serial = serial;
  GCT_INTPTR user = (serial << GC_LUA_KEY_BITS) | gc_lua_state_key(app);
  GCT_INTPTR id = app->api->timerStart(app->app_id, (GCT_INT)ms,
                                       repeat ? (GCT_INT)ms : 0, timer_fired,
                                       user);
  if (id == 0) {
    lua_pushnil(L);
    lua_rawseti(L, 4, (lua_Integer)serial);
    lua_pushnil(L);
    lua_pushliteral(L, "cannot start timer");
    return 2;
  }
  t->host_id = id;
  t->active = 1;
  lua_settop(L, 3);
  return 1;
}

/* gc.set_interval(ms, fn) -> timer: fn(timer) every 'ms' (> 0) ms. */
static int l_set_interval(lua_State *L) { return start_timer(L, 1); }

/* gc.set_timeout(ms, fn) -> timer: fn(timer) once, after 'ms' ms. */
static int l_set_timeout(lua_State *L) { return start_timer(L, 0); }

/* timer:cancel() -> true if it was armed, false if it had fired or was
 * cancelled already. */
static int timer_cancel(lua_State *L) {
  struct timer_ud *t = luaL_checkudata(L, 1, GC_LUA_TIMER_MT);
  if (!t->active) {
    lua_pushboolean(L, 0);
    return 1;
  }
  timer_disarm(t);
  push_timers(L, t->app);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)t->serial);
  lua_pushboolean(L, 1);
  return 1;
}

static int timer_is_active(lua_State *L) {
  struct timer_ud *t = luaL_checkudata(L, 1, GC_LUA_TIMER_MT);
  lua_pushboolean(L, t->active);
  return 1;
}

static int timer_tostring(lua_State *L) {
  struct timer_ud *t = luaL_checkudata(L, 1, GC_LUA_TIMER_MT);
  lua_pushfstring(L, "gc.timer %I (%s %I ms%s)", (lua_Integer)t->serial,
                  t->repeat ? "every" : "after", t->ms,
                  t->active ? "" : ", inactive");
  return 1;
}

void gc_lua_timers_stop_all(struct gc_lua_app *app) {
  lua_State *L = app->L;
  if (L == NULL || app->timers_ref == LUA_NOREF || !lua_checkstack(L, 3))
    return;
  push_timers(L, app);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    struct timer_ud *t = lua_touserdata(L, -1);
    if (t && t->active)
      timer_disarm(t);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* ---- the module ------------------------------------------------------------ */

static const luaL_Reg gc_funcs[] = {
    {"log", l_log},
    {"getopt", l_getopt},
    {"now", l_now},
    {"memory", l_memory},
    {"connections", l_connections},
    {"broadcast", l_broadcast},
    {"set_interval", l_set_interval},
    {"set_timeout", l_set_timeout},
    {"publish", gc_lua_l_publish},
    {"subscribe", gc_lua_l_subscribe},
    {"counter", gc_lua_l_counter},
    {"connect", gc_lua_l_connect},
    {NULL, NULL}};

static const luaL_Reg timer_methods[] = {{"cancel", timer_cancel},
                                         {"is_active", timer_is_active},
                                         {NULL, NULL}};

struct gc_const {
  const char *name;
  lua_Integer value;
};

static const struct gc_const gc_consts[] = {
    {"CLOSE_NORMAL", GC_CLOSE_REASON_NORMAL},
    {"CLOSE_DROP", GC_CLOSE_REASON_DROP},
    {"DROP_CONNECTION", (lua_Integer)GC_DROP_CONNECTION},
    {"ERR", GCL_ERR},
    {"WARN", GCL_WARN},
    {"NOTICE", GCL_NOTICE},
    {"INFO", GCL_INFO},
    {"DEBUG", GCL_DEBUG},
    {"USER", GCL_USER},
    {"PROTOCOL_WSS", GC_PROTOCOL_WSS},
    {"PROTOCOL_WS", GC_PROTOCOL_WS},
    {"STAT_MSG_PER_SECOND", GC_CONN_STAT_MSG_PER_SECOND},
    {"STAT_BYTES_PER_SECOND", GC_CONN_STAT_BYTES_PER_SECOND},
    {"STAT_MAX_MSG_SIZE", GC_CONN_STAT_MAX_MSG_SIZE},
    {"STAT_OUTPUT_QUEUE_SIZE", GC_CONN_STAT_OUTPUT_QUEUE_SIZE},
    {"STATUS_GREEN", GC_STAT_STATUS_GREEN},
    {"STATUS_YELLOW", GC_STAT_STATUS_YELLOW},
    {"STATUS_RED", GC_STAT_STATUS_RED},
    {"REACTION_DEFAULT", GC_STAT_REACTION_DEFAULT},
    {"REACTION_CLOSE", GC_STAT_REACTION_CLOSE},
    {"REACTION_IGNORE", GC_STAT_REACTION_IGNORE},
    {"REACTION_COUNT", GC_STAT_REACTION_COUNT},
    {NULL, 0}};

/* require "gc": only inside an application state of this adapter. */
static int luaopen_gc(lua_State *L) {
  struct gc_lua_app *app = lua_touserdata(L, lua_upvalueindex(1));
  if (app == NULL)
    return luaL_error(L, "module 'gc' is only available to gcs scripts");
  luaL_checkversion(L);
  lua_createtable(L, 0, 40);
  lua_pushlightuserdata(L, app);
  luaL_setfuncs(L, gc_funcs, 1);
  for (const struct gc_const *k = gc_consts; k->name; k++) {
    lua_pushinteger(L, k->value);
    lua_setfield(L, -2, k->name);
  }
  lua_createtable(L, 0, 3);
  lua_pushinteger(L, app->app_id);
  lua_setfield(L, -2, "id");
  lua_pushstring(L, app->name);
  lua_setfield(L, -2, "name");
  lua_pushstring(L, app->script);
  lua_setfield(L, -2, "script");
  lua_setfield(L, -2, "app");
  lua_createtable(L, 0, 2); /* the worker this state lives on */
  lua_pushinteger(L, app->worker);
  lua_setfield(L, -2, "id");
  lua_pushinteger(L, app->worker_count);
  lua_setfield(L, -2, "count");
  lua_setfield(L, -2, "worker");
  gc_lua_settings_open(L, app);
  gc_lua_waits_module(L, app);
  lua_pushliteral(L, "gc 1.0 (" LUA_RELEASE ")");
  lua_setfield(L, -2, "_VERSION");
  return 1;
}

void gc_lua_module_open(lua_State *L, struct gc_lua_app *app) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_PRELOAD_TABLE);
  lua_pushlightuserdata(L, app);
  lua_pushcclosure(L, luaopen_gc, 1);
  lua_setfield(L, -2, "gc");
  lua_pop(L, 1);
  gc_lua_link_open(L);
  luaL_newmetatable(L, GC_LUA_TIMER_MT);
  luaL_newlib(L, timer_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, timer_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, GC_LUA_TIMER_MT);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}
