/* lua_gc.c - the "gc" module scripts require: constants, log, getopt,
 * application timers (the game tick), connection iteration, broadcast. */
#include <errno.h>
#include <lauxlib.h>
#include <string.h>

#include "lua_adapter.h"

#define TIMER_MT "gc.timer"

/* ---- log / getopt / clock ------------------------------------------------ */

static int level_of(lua_State *L, int idx) {
  static const char *const names[] = {"ERR", "WARN", "NOTICE", "INFO", "DEBUG", "USER", NULL};
  static const int values[] = {GCL_ERR, GCL_WARN, GCL_NOTICE, GCL_INFO, GCL_DEBUG, GCL_USER};
  if (lua_type(L, idx) == LUA_TSTRING)
    return values[luaL_checkoption(L, idx, NULL, names)];
  return (int)luaL_checkinteger(L, idx);
}

/* gc.log(level, fmt, ...): string.format, then the server log. */
static int l_log(lua_State *L) {
  int level = level_of(L, 1);
  luaL_checkstring(L, 2);
  int n = lua_gettop(L);
  lua_getglobal(L, "string");
  lua_getfield(L, -1, "format");
  for (int i = 2; i <= n; i++)
    lua_pushvalue(L, i);
  lua_call(L, n - 1, 1);
  struct lapp *app = gc_lua_app_of(L);
  lua_pushfstring(L, "[%s] %s", app->name, lua_tostring(L, -1));
  gc_lua_api.logMessage(level, lua_tostring(L, -1));
  return 0;
}

/* gc.getopt(path) -> string | integer | nil, error */
static int l_getopt(lua_State *L) {
  const char *path = luaL_checkstring(L, 1);
  const char *s = NULL;
  int rc = gc_lua_api.getOpt(path, GC_OPT_TYPE_STRING, &s);
  if (rc == 0 && s) {
    lua_pushstring(L, s);
    return 1;
  }
  int32_t i;
  if ((rc = gc_lua_api.getOpt(path, GC_OPT_TYPE_INT, &i)) == 0) {
    lua_pushinteger(L, i);
    return 1;
  }
  uint64_t u;
  if ((rc = gc_lua_api.getOpt(path, GC_OPT_TYPE_UINT64, &u)) == 0) {
    lua_pushinteger(L, (lua_Integer)u);
    return 1;
  }
  if (gc_lua_api.getOpt(path, GC_OPT_TYPE_NULL, NULL) == 0) {
    lua_pushnil(L);
    lua_pushliteral(L, "not a string or a number");
    return 2;
  }
  lua_pushnil(L);
  lua_pushstring(L, rc == ENOENT ? "no such option" : "bad path");
  return 2;
}

static int l_now(lua_State *L) {
  lua_pushinteger(L, gc_lua_api.nowMs());
  return 1;
}

static int l_memory(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)gc_lua_app_of(L)->mem_used);
  return 1;
}

/* ---- timers -------------------------------------------------------------- */

struct ltimer {
  struct lapp *app;
  intptr_t id;
  int repeat;
  int active;
};

static void timer_unanchor(struct lapp *app, struct ltimer *t) {
  lua_State *L = app->L;
  t->active = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->timers_ref);
  lua_pushlightuserdata(L, t);
  lua_pushnil(L);
  lua_rawset(L, -3);
  lua_pop(L, 1);
}

static void timer_fired(GCT_INTPTR user) {
  struct ltimer *t = (struct ltimer *)user;
  struct lapp *app = t->app;
  if (!t->active || app->closing)
    return;
  lua_State *L = app->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->timers_ref);
  lua_pushlightuserdata(L, t);
  lua_rawget(L, -2);
  lua_remove(L, -2); /* the timer userdata */
  if (!t->repeat)
    timer_unanchor(app, t); /* still on the stack for the call */
  lua_getiuservalue(L, -1, 1);
  lua_insert(L, -2);
  (void)gc_lua_call(app, t->repeat ? "interval" : "timeout", 1, 0);
}

static int start_timer(lua_State *L, int repeat) {
  lua_Integer ms = luaL_checkinteger(L, 1);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  luaL_argcheck(L, ms >= (repeat ? 1 : 0) && ms <= 0x7fffffff, 1,
                repeat ? "interval must be 1 ms or more" : "delay out of range");
  struct lapp *app = gc_lua_app_of(L);
  struct ltimer *t = lua_newuserdatauv(L, sizeof *t, 1);
  memset(t, 0, sizeof *t);
  t->app = app;
  t->repeat = repeat;
  luaL_setmetatable(L, TIMER_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->timers_ref);
  lua_pushlightuserdata(L, t);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 1);
  t->id = gc_lua_api.timerStart(app->app_id, (GCT_INT)ms, repeat ? (GCT_INT)ms : 0,
                                timer_fired, (GCT_INTPTR)t);
  if (!t->id) {
    timer_unanchor(app, t);
    return luaL_error(L, "cannot start a timer");
  }
  t->active = 1;
  return 1;
}

/* gc.set_interval(ms, fn) -> timer: fn(timer) every ms (the game tick). */
static int l_set_interval(lua_State *L) { return start_timer(L, 1); }
/* gc.set_timeout(ms, fn) -> timer: fn(timer) once after ms. */
static int l_set_timeout(lua_State *L) { return start_timer(L, 0); }

/* timer:cancel() -> true if it was pending. */
static int timer_cancel(lua_State *L) {
  struct ltimer *t = luaL_checkudata(L, 1, TIMER_MT);
  if (!t->active) {
    lua_pushboolean(L, 0);
    return 1;
  }
  (void)gc_lua_api.timerStop(t->id);
  timer_unanchor(t->app, t);
  lua_pushboolean(L, 1);
  return 1;
}

static int timer_active(lua_State *L) {
  struct ltimer *t = luaL_checkudata(L, 1, TIMER_MT);
  lua_pushboolean(L, t->active);
  return 1;
}

void gc_lua_timers_stop_all(struct lapp *app) {
  lua_State *L = app->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->timers_ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    struct ltimer *t = lua_touserdata(L, -1);
    if (t && t->active) {
      (void)gc_lua_api.timerStop(t->id);
      t->active = 0;
    }
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}

/* ---- connections and broadcast ------------------------------------------ */

static int conns_next(lua_State *L) {
  /* upvalue 1: the anchor table; 2: the last key */
  lua_pushvalue(L, lua_upvalueindex(2));
  if (!lua_next(L, lua_upvalueindex(1)))
    return 0;
  lua_pushvalue(L, -2);
  lua_replace(L, lua_upvalueindex(2));
  return 1;
}

/* for conn in gc.connections() do ... end: the open connections. */
static int l_connections(lua_State *L) {
  struct lapp *app = gc_lua_app_of(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->conns_ref);
  lua_pushnil(L);
  lua_pushcclosure(L, conns_next, 2);
  return 1;
}

/* gc.broadcast(data [, filter]) -> number sent: to every open connection
 * for which filter(conn) is true (all when no filter). */
static int l_broadcast(lua_State *L) {
  size_t len;
  const char *data = luaL_checklstring(L, 1, &len);
  int has_filter = !lua_isnoneornil(L, 2);
  if (has_filter)
    luaL_checktype(L, 2, LUA_TFUNCTION);
  struct lapp *app = gc_lua_app_of(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->conns_ref);
  int tbl = lua_gettop(L);
  lua_Integer sent = 0;
  lua_pushnil(L);
  while (lua_next(L, tbl)) {
    struct lconn *c = lua_touserdata(L, -1);
    int ok = 1;
    if (has_filter) {
      lua_pushvalue(L, 2);
      lua_pushvalue(L, -2);
      lua_call(L, 1, 1);
      ok = lua_toboolean(L, -1);
      lua_pop(L, 1);
    }
    if (ok && c && c->open &&
        gc_lua_api.connectionAddMessage(c->handle, (GCT_PTR)data, len, 0) == 0)
      sent++;
    lua_pop(L, 1);
  }
  lua_pushinteger(L, sent);
  return 1;
}

static const luaL_Reg gc_funcs[] = {
    {"log", l_log},
    {"getopt", l_getopt},
    {"now", l_now},
    {"memory", l_memory},
    {"set_interval", l_set_interval},
    {"set_timeout", l_set_timeout},
    {"connections", l_connections},
    {"broadcast", l_broadcast},
    {NULL, NULL}};

static const luaL_Reg timer_methods[] = {
    {"cancel", timer_cancel}, {"active", timer_active}, {NULL, NULL}};

int gc_lua_open_gc(lua_State *L) {
  luaL_checkversion(L);
  if (luaL_newmetatable(L, TIMER_MT)) {
    luaL_newlib(L, timer_methods);
    lua_setfield(L, -2, "__index");
  }
  lua_pop(L, 1);
  luaL_newlib(L, gc_funcs);
  static const struct {
    const char *name;
    lua_Integer value;
  } consts[] = {
      {"CLOSE_NORMAL", GC_CLOSE_REASON_NORMAL},
      {"CLOSE_DROP", GC_CLOSE_REASON_DROP},
      {"DROP_CONNECTION", GC_DROP_CONNECTION},
      {"ERR", GCL_ERR},
      {"WARN", GCL_WARN},
      {"NOTICE", GCL_NOTICE},
      {"INFO", GCL_INFO},
      {"DEBUG", GCL_DEBUG},
      {"USER", GCL_USER},
      {"STAT_MSG_PER_SECOND", GC_CONN_STAT_MSG_PER_SECOND},
      {"STAT_BYTES_PER_SECOND", GC_CONN_STAT_BYTES_PER_SECOND},
      {"STAT_MAX_MSG_SIZE", GC_CONN_STAT_MAX_MSG_SIZE},
      {"STAT_OUTPUT_QUEUE_SIZE", GC_CONN_STAT_OUTPUT_QUEUE_SIZE},
      {"STATUS_YELLOW", GC_STAT_STATUS_YELLOW},
      {"STATUS_RED", GC_STAT_STATUS_RED},
      {"REACTION_DEFAULT", GC_STAT_REACTION_DEFAULT},
      {"REACTION_CLOSE", GC_STAT_REACTION_CLOSE},
      {"REACTION_IGNORE", GC_STAT_REACTION_IGNORE},
      {"PROTOCOL_WSS", GC_PROTOCOL_WSS},
      {"PROTOCOL_WS", GC_PROTOCOL_WS},
  };
  for (size_t i = 0; i < sizeof consts / sizeof consts[0]; i++) {
    lua_pushinteger(L, consts[i].value);
    lua_setfield(L, -2, consts[i].name);
  }
  return 1;
}
