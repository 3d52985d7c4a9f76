/* loaders.c - load, loadfile, dofile and require's Lua searcher for the
 * scripts: text chunks only (binary chunks can break the VM's invariants). */
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

/* Lua does not check binary chunks: a corrupted one crashes the server.
 * So the script's loaders are lbaselib's and loadlib's own with mode "t"
 * whatever the script asks (its mode argument is checked, then ignored).
 * They are copies rather than wrappers of Lua's: a wrapped original would
 * be reachable with debug.getinfo(level, "f") from a reader function. */

#define RESERVED_SLOT 5 /* lbaselib's: the reader's last string */

static const char *generic_reader(lua_State *L, void *ud, size_t *size) {
  (void)ud;
  luaL_checkstack(L, 2, "too many nested functions");
  lua_pushvalue(L, 1);
  lua_call(L, 0, 1);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    *size = 0;
    return NULL;
  }
  if (!lua_isstring(L, -1))
    luaL_error(L, "reader function must return a string");
  lua_replace(L, RESERVED_SLOT);
  return lua_tolstring(L, RESERVED_SLOT, size);
}

/* The loaded chunk with 'env' as its first upvalue, or fail and the
 * message (lbaselib 'load_aux'). */
static int load_result(lua_State *L, int status, int envidx) {
  if (status != LUA_OK) {
    luaL_pushfail(L);
    lua_insert(L, -2);
    return 2;
  }
  if (envidx != 0) {
    lua_pushvalue(L, envidx);
    if (!lua_setupvalue(L, -2, 1))
      lua_pop(L, 1);
  }
  return 1;
}

/* load(chunk [, chunkname [, mode [, env]]]) */
static int l_load(lua_State *L) {
  size_t len;
  const char *s = lua_tolstring(L, 1, &len);
  (void)luaL_optstring(L, 3, "t");
  int env = !lua_isnone(L, 4) ? 4 : 0;
  int status;
  if (s != NULL) {
    const char *chunkname = luaL_optstring(L, 2, s);
    status = luaL_loadbufferx(L, s, len, chunkname, "t");
  } else {
    const char *chunkname = luaL_optstring(L, 2, "=(load)");
    luaL_checktype(L, 1, LUA_TFUNCTION);
    lua_settop(L, RESERVED_SLOT);
    status = lua_load(L, generic_reader, NULL, chunkname, "t");
  }
  return load_result(L, status, env);
}

/* loadfile([filename [, mode [, env]]]) */
static int l_loadfile(lua_State *L) {
  const char *fname = luaL_optstring(L, 1, NULL);
  (void)luaL_optstring(L, 2, "t");
  int env = !lua_isnone(L, 3) ? 3 : 0;
  return load_result(L, luaL_loadfilex(L, fname, "t"), env);
}

static int dofile_cont(lua_State *L, int status, lua_KContext ctx) {
  (void)status, (void)ctx;
  return lua_gettop(L) - 1;
}

/* dofile([filename]) */
static int l_dofile(lua_State *L) {
  const char *fname = luaL_optstring(L, 1, NULL);
  lua_settop(L, 1);
  if (luaL_loadfilex(L, fname, "t") != LUA_OK)
    return lua_error(L);
  lua_callk(L, 0, LUA_MULTRET, 0, dofile_cont);
  return dofile_cont(L, 0, 0);
}

/* package.searchers[2], loadlib's 'searcher_Lua': the module's file on
 * package.path (package.searchpath, upvalue 2, of package, upvalue 1). */
static int searcher_lua(lua_State *L) {
  const char *name = luaL_checkstring(L, 1);
  lua_pushvalue(L, lua_upvalueindex(2));
  lua_pushvalue(L, 1);
  lua_getfield(L, lua_upvalueindex(1), "path");
  if (!lua_isstring(L, -1))
    return luaL_error(L, "'package.path' must be a string");
  lua_call(L, 2, 2);
  if (lua_isnil(L, -2))
    return 1; /* not found: the list of the files tried */
  lua_pop(L, 1);
  const char *filename = lua_tostring(L, -1);
  if (luaL_loadfilex(L, filename, "t") != LUA_OK)
    return luaL_error(L, "error loading module '%s' from file '%s':\n\t%s",
                      name, filename, lua_tostring(L, -1));
  lua_insert(L, -2); /* loader, then the file name as its 2nd argument */
  return 2;
}

void gc_lua_loaders_open(lua_State *L) {
  lua_pushcfunction(L, l_load);
  lua_setglobal(L, "load");
  lua_pushcfunction(L, l_loadfile);
  lua_setglobal(L, "loadfile");
  lua_pushcfunction(L, l_dofile);
  lua_setglobal(L, "dofile");
  int top = lua_gettop(L);
  if (lua_getglobal(L, "package") == LUA_TTABLE &&
      lua_getfield(L, -1, "searchers") == LUA_TTABLE &&
      lua_getfield(L, -2, "searchpath") == LUA_TFUNCTION) {
    lua_pushvalue(L, -3); /* package */
    lua_insert(L, -2);
    lua_pushcclosure(L, searcher_lua, 2);
    lua_rawseti(L, -2, 2);
  }
  lua_settop(L, top);
}
