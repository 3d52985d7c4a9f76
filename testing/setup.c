/* setup.c - what T.host builds a host from: the spec's Lua tables as the
 * JSON config, and the Lua adapter it loads. */
#include <dlfcn.h>
#include <jansson.h>
#include <lauxlib.h>
#include <limits.h>
#include <lua.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "testing.h"

#ifndef GC_LUA_ADAPTER_PATH
#define GC_LUA_ADAPTER_PATH "libgc_lua.so"
#endif

static json_t *table_to_json(lua_State *L, int idx, int depth);

/* The Lua adapter T.host loads: $GC_LUA_ADAPTER; else, for an installed
 * module (<prefix>/GC_LUA_CMOD_DIR/gc/testing.so), the adapter installed
 * with it (<prefix>/lib/gcs/libgc_lua.so: found relative to the module, so
 * a DESTDIR tree works too); else the build tree's it was built with. */
const char *gc_testing_adapter_path(void) {
  const char *env = getenv("GC_LUA_ADAPTER");
  if (env)
    return env;
#if defined(GC_LUA_CMOD_DIR) && defined(GC_INSTALL_ADAPTER_DIR)
  static char installed[PATH_MAX];
  char self[PATH_MAX];
  Dl_info info;
  if (dladdr((void *)gc_testing_adapter_path, &info) && info.dli_fname &&
      realpath(info.dli_fname, self)) {
    char *slash = strrchr(self, '/');
    static const char tail[] = "/" GC_LUA_CMOD_DIR "/gc";
    size_t dir = slash ? (size_t)(slash - self) : 0;
    size_t prefix = dir - (sizeof tail - 1);
    if (dir >= sizeof tail - 1 && !memcmp(self + prefix, tail, sizeof tail - 1) &&
        snprintf(installed, sizeof installed,
                 "%.*s/" GC_INSTALL_ADAPTER_DIR "/libgc_lua.so", (int)prefix,
                 self) < (int)sizeof installed &&
        access(installed, R_OK) == 0)
      return installed;
  }
#endif
  return GC_LUA_ADAPTER_PATH;
}


static json_t *table_to_json(lua_State *L, int idx, int depth) {
  idx = lua_absindex(L, idx);
  lua_Integer n = (lua_Integer)lua_rawlen(L, idx);
  json_t *out;
  if (n > 0) {
    out = json_array();
    for (lua_Integer i = 1; i <= n; i++) {
      lua_rawgeti(L, idx, i);
      json_array_append_new(out, gc_testing_to_json(L, -1, depth + 1));
      lua_pop(L, 1);
    }
    return out;
  }
  out = json_object();
  lua_pushnil(L);
  while (lua_next(L, idx)) {
    if (lua_type(L, -2) == LUA_TSTRING)
      json_object_set_new(out, lua_tostring(L, -2), gc_testing_to_json(L, -1, depth + 1));
    lua_pop(L, 1);
  }
  return out;
}

json_t *gc_testing_to_json(lua_State *L, int idx, int depth) {
  if (depth > 32)
    return json_null();
  switch (lua_type(L, idx)) {
  case LUA_TBOOLEAN: return json_boolean(lua_toboolean(L, idx));
  case LUA_TNUMBER:
    return lua_isinteger(L, idx) ? json_integer(lua_tointeger(L, idx))
                                 : json_real(lua_tonumber(L, idx));
  case LUA_TSTRING: return json_string(lua_tostring(L, idx));
  case LUA_TTABLE: return table_to_json(L, idx, depth);
  default: return json_null();
  }
}

