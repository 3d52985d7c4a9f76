/* json.c - gc.json: lua-cjson (Debian's lua-cjson) in every state.
 *
 * The module is not linked in: libgc_lua.so finds Debian's
 * liblua5.4-cjson.so.0 at run time (dlopen), so a host without it still
 * runs scripts that do not use gc.json, and one that uses it gets a clear
 * error. Each state gets its own instance (luaopen_cjson makes one, with
 * its own settings). cjson raises on bad input; gc.json returns nil, err
 * instead, as a game handler expects for data that came from outside.
 * JSON null is cjson.null, the light userdata NULL: gc.null. */
#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>

#include <lauxlib.h>

#include "gc_lua.h"

#define CJSON_SO "liblua5.4-cjson.so.0"

static pthread_once_t once = PTHREAD_ONCE_INIT;
static lua_CFunction open_cjson;
static char why[256];

static void find_cjson(void) {
  void *dl = dlopen(CJSON_SO, RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    snprintf(why, sizeof why, "%s", dlerror());
    return;
  }
  *(void **)&open_cjson = dlsym(dl, "luaopen_cjson");
  if (open_cjson == NULL)
    snprintf(why, sizeof why, "%s has no luaopen_cjson", CJSON_SO);
}

/* cjson's function (upvalue 1) in a protected call: its results, or nil
 * and the message. */
static int safe_call(lua_State *L) {
  int n = lua_gettop(L);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  if (lua_pcall(L, n, 1, 0) != LUA_OK) {
    lua_pushnil(L);
    lua_insert(L, -2);
    return 2;
  }
  return 1;
}

static int unavailable(lua_State *L) {
  return luaL_error(L, "gc.json: lua-cjson is not available (%s; Debian "
                       "package lua-cjson)", why);
}

void gc_lua_json_module(lua_State *L) {
  pthread_once(&once, find_cjson);
  lua_createtable(L, 0, 3);
  if (open_cjson == NULL) {
    lua_pushcfunction(L, unavailable);
    lua_setfield(L, -2, "encode");
    lua_pushcfunction(L, unavailable);
    lua_setfield(L, -2, "decode");
  } else {
    lua_pushcfunction(L, open_cjson);
    lua_call(L, 0, 1);
    const char *const names[] = {"encode", "decode"};
    for (int i = 0; i < 2; i++) {
      lua_getfield(L, -1, names[i]);
      lua_pushcclosure(L, safe_call, 1);
      lua_setfield(L, -3, names[i]);
    }
    lua_pop(L, 1);
  }
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, -2, "null");
  lua_setfield(L, -2, "json");
}
