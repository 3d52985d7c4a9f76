/* counter.c - gc.counter(name): a script's own figures as process-wide
 * named counters of the host, beside its own ("gcs.connections"...), read
 * by any adapter (counterOpen/counterGet), by host:counter in specs.
 *
 * Game Carrier creates counters only during application_initialize: a
 * script creates its counters at its top level or in its
 * application_initialize handler, which both run then (group.c opens the
 * window around each state's load). A name that exists already is opened,
 * whenever asked: so every state of a routed app shares one counter (the
 * first state creates it, the others open it), and a script reloaded
 * later finds its counters again. A new name asked for later raises. */
#include <errno.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

#define COUNTER_MT "gc.counter"

struct counter_ud {
  const struct core_api *api;
  GCT_INT id;
};

/* Set while the states of an app load, on the thread that loads them (the
 * main thread, in application_initialize). */
static _Thread_local int creation_open;

void gc_lua_counter_window(int open) { creation_open = open; }

static struct counter_ud *check_counter(lua_State *L) {
  return luaL_checkudata(L, 1, COUNTER_MT);
}

/* Raises for a failed host call 'what' of the counter at 1. */
static int counter_fail(lua_State *L, const char *what, int rc) {
  lua_getiuservalue(L, 1, 1);
  return luaL_error(L, "counter '%s': %s: %s", lua_tostring(L, -1), what,
                    rc == EINVAL ? "refused (a counter of the host is read-only)"
                                 : strerror(rc));
}

/* counter:add(n) adds n (an integer, may be negative). */
static int counter_add(lua_State *L) {
  struct counter_ud *c = check_counter(L);
  lua_Integer n = luaL_checkinteger(L, 2);
  int rc = c->api->counterAdd ? c->api->counterAdd(c->id, (GCT_COUNTER_VALUE)n) : ENOSYS;
  return rc ? counter_fail(L, "add", rc) : 0;
}

/* counter:inc() adds 1. */
static int counter_inc(lua_State *L) {
  struct counter_ud *c = check_counter(L);
  int rc = c->api->counterIncrement ? c->api->counterIncrement(c->id) : ENOSYS;
  return rc ? counter_fail(L, "inc", rc) : 0;
}

/* counter:set(v) */
static int counter_set(lua_State *L) {
  struct counter_ud *c = check_counter(L);
  lua_Integer v = luaL_checkinteger(L, 2);
  int rc = c->api->counterSet ? c->api->counterSet(c->id, (GCT_COUNTER_VALUE)v) : ENOSYS;
  return rc ? counter_fail(L, "set", rc) : 0;
}

/* counter:get() -> integer (the sum over every worker and state). */
static int counter_get(lua_State *L) {
  struct counter_ud *c = check_counter(L);
  GCT_COUNTER_VALUE v = 0;
  int rc = c->api->counterGet ? c->api->counterGet(c->id, &v) : ENOSYS;
  if (rc)
    return counter_fail(L, "get", rc);
  lua_pushinteger(L, (lua_Integer)v);
  return 1;
}

static int counter_tostring(lua_State *L) {
  struct counter_ud *c = check_counter(L);
  GCT_COUNTER_VALUE v = 0;
  lua_getiuservalue(L, 1, 1);
  if (c->api->counterGet && c->api->counterGet(c->id, &v) == 0)
    lua_pushfstring(L, "gc.counter %s (%I)", lua_tostring(L, -1), (LUAI_UACINT)v);
  else
    lua_pushfstring(L, "gc.counter %s", lua_tostring(L, -1));
  return 1;
}

/* counter.name, then the methods. */
static int counter_index(lua_State *L) {
  check_counter(L);
  const char *k = luaL_checkstring(L, 2);
  if (strcmp(k, "name") == 0) {
    lua_getiuservalue(L, 1, 1);
    return 1;
  }
  lua_getfield(L, lua_upvalueindex(1), k);
  return 1;
}

static const luaL_Reg counter_methods[] = {
    {"add", counter_add}, {"inc", counter_inc}, {"set", counter_set},
    {"get", counter_get}, {NULL, NULL}};

/* gc.counter(name) -> counter. Upvalue 1: the app. */
int gc_lua_l_counter(lua_State *L) {
  struct gc_lua_app *app = lua_touserdata(L, lua_upvalueindex(1));
  size_t len;
  const char *name = luaL_checklstring(L, 1, &len);
  luaL_argcheck(L, len > 0 && len < 256 && strlen(name) == len, 1,
                "a counter's name is 1..255 bytes, without NUL");
  const struct core_api *api = app->api;
  GCT_INT id = api->counterOpen ? api->counterOpen(name) : -1;
  if (id < 0) {
    if (!creation_open)
      return luaL_error(L,
                        "gc.counter('%s'): too late to create a counter: create "
                        "it at the script's top level or in "
                        "application_initialize (Game Carrier creates counters "
                        "only in application_initialize)",
                        name);
    id = api->counterCreate ? api->counterCreate(name) : -1;
    if (id < 0)
      return luaL_error(L, "gc.counter('%s'): the host refused to create it", name);
  }
  struct counter_ud *c = lua_newuserdatauv(L, sizeof *c, 1);
  c->api = api;
  c->id = id;
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, -2, 1);
  if (luaL_newmetatable(L, COUNTER_MT)) {
    luaL_newlib(L, counter_methods);
    lua_pushcclosure(L, counter_index, 1);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, counter_tostring);
    lua_setfield(L, -2, "__tostring");
    lua_pushliteral(L, COUNTER_MT);
    lua_setfield(L, -2, "__metatable");
  }
  lua_setmetatable(L, -2);
  return 1;
}
