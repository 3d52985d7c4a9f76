/* sandbox.c - what a gcs script may not reach.
 *
 * Scripts are trusted code (they read files and the environment, and an
 * installed C module can do anything), so this is no sandbox against a
 * hostile script: it keeps a game's ordinary code from taking the server
 * down by accident.
 *  - os.exit would end gcs at once: no close frames, no shutdown, no log
 *    line. It always raises.
 *  - io.popen and os.execute run a shell and wait for it, freezing the loop
 *    (every client of the worker) meanwhile; package.loadlib loads native
 *    code by hand. They raise unless "lua.unsafe" is true, for trusted
 *    deployments that want them. 'require' of an installed C module does
 *    not use package.loadlib (its searcher calls the loader directly), so
 *    it keeps working. */
#include <lauxlib.h>

#include "gc_lua.h"

static int no_exit(lua_State *L) {
  return luaL_error(L, "os.exit is not available to gcs scripts");
}

/* Upvalue 1: the function's name as scripts write it. */
static int off_unless_unsafe(lua_State *L) {
  return luaL_error(L, "%s is off in gcs scripts (\"lua\": { \"unsafe\": "
                    "true } in the config turns it on)",
                    lua_tostring(L, lua_upvalueindex(1)));
}

/* Replaces 'field' of the loaded library 'lib' (if it is there); the
 * library table is on top. */
static void replace(lua_State *L, const char *lib, const char *field) {
  if (lua_getfield(L, -1, lib) != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_pushfstring(L, "%s.%s", lib, field);
  lua_pushcclosure(L, off_unless_unsafe, 1);
  lua_setfield(L, -2, field);
  lua_pop(L, 1);
}

void gc_lua_sandbox_open(lua_State *L, const struct gc_lua_app *app) {
  luaL_getsubtable(L, LUA_REGISTRYINDEX, LUA_LOADED_TABLE);
  if (lua_getfield(L, -1, "os") == LUA_TTABLE) {
    lua_pushcfunction(L, no_exit);
    lua_setfield(L, -2, "exit");
  }
  lua_pop(L, 1);
  if (!app->unsafe) {
    replace(L, "io", "popen");
    replace(L, "os", "execute");
    replace(L, "package", "loadlib");
  }
  lua_pop(L, 1);
}
