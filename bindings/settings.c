/* settings.c - gc.settings: the app's "settings" of the config as a
 * read-only Lua table, and the JSON reader behind it.
 *
 * The host merges an app's settings (its entry's over its adapter entry's
 * over the root's) and hands them over as JSON text: getOpt with
 * GC_OPT_TYPE_JSON at "apps[ID].settings" (a gcs extension). The adapter
 * sees the host only through core_api, so the text is read here, into
 * tables of this state: every state of an app (one per worker when it is
 * routed) builds its own, at require "gc".
 *
 * Read-only: each object or array becomes an empty proxy table whose
 * metatable reads the real table (__index, __len, __pairs) and raises on
 * any assignment (__newindex), naming the path; the metatable is protected
 * (__metatable), so a script cannot take the guard off. JSON null is nil
 * in an object (an unset key) and gc.null in an array (its place kept). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

#define SETTINGS_MT_NAME "gc.settings"
#define JSON_DEPTH_MAX 200

/* ---- the JSON reader --------------------------------------------------------- */

struct jreader {
  lua_State *L;
  const char *p;
};

static void skip_ws(struct jreader *r) {
  while (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r')
    r->p++;
}

static _Noreturn void bad_json(struct jreader *r) {
  luaL_error(r->L, "gc.settings: the host's JSON is malformed near '%.16s'", r->p);
  abort(); /* not reached: luaL_error does not return */
}

static unsigned hex4(struct jreader *r) {
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    char c = *r->p++;
    int d = c >= '0' && c <= '9'   ? c - '0'
            : c >= 'a' && c <= 'f' ? c - 'a' + 10
            : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                   : -1;
    if (d < 0)
      bad_json(r);
    v = v * 16 + (unsigned)d;
  }
  return v;
}

/* Pushes the string at r->p (its opening quote), escapes decoded. */
static void read_string(struct jreader *r) {
  luaL_Buffer b;
  luaL_buffinit(r->L, &b);
  r->p++;
  for (;;) {
    const char *run = r->p;
    while (*r->p && *r->p != '"' && *r->p != '\\')
      r->p++;
    luaL_addlstring(&b, run, (size_t)(r->p - run));
    if (*r->p == '"')
      break;
    if (!*r->p)
      bad_json(r);
    r->p++; /* backslash */
    char e = *r->p++;
    switch (e) {
    case 'b': luaL_addchar(&b, '\b'); continue;
    case 'f': luaL_addchar(&b, '\f'); continue;
    case 'n': luaL_addchar(&b, '\n'); continue;
    case 'r': luaL_addchar(&b, '\r'); continue;
    case 't': luaL_addchar(&b, '\t'); continue;
    case '"': case '\\': case '/': luaL_addchar(&b, e); continue;
    case 'u': break;
    default: bad_json(r);
    }
    unsigned cp = hex4(r);
    if (cp >= 0xD800 && cp <= 0xDBFF && r->p[0] == '\\' && r->p[1] == 'u') {
      r->p += 2;
      unsigned lo = hex4(r);
      cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    char u[8];
    int n = 0;
    if (cp < 0x80) {
      u[n++] = (char)cp;
    } else if (cp < 0x800) {
      u[n++] = (char)(0xC0 | (cp >> 6));
      u[n++] = (char)(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      u[n++] = (char)(0xE0 | (cp >> 12));
      u[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
      u[n++] = (char)(0x80 | (cp & 0x3F));
    } else {
      u[n++] = (char)(0xF0 | (cp >> 18));
      u[n++] = (char)(0x80 | ((cp >> 12) & 0x3F));
      u[n++] = (char)(0x80 | ((cp >> 6) & 0x3F));
      u[n++] = (char)(0x80 | (cp & 0x3F));
    }
    luaL_addlstring(&b, u, (size_t)n);
  }
  r->p++; /* closing quote */
  luaL_pushresult(&b);
}

static void push_readonly(lua_State *L, int path_idx);

/* Pushes the value at r->p; 'path' (a string at path_idx) names it in the
 * error of an assignment. Containers come back as read-only proxies. A
 * null pushes nothing and returns 0 (the caller decides); else 1. */
static int read_value(struct jreader *r, int depth, int path_idx) {
  lua_State *L = r->L;
  skip_ws(r);
  char c = *r->p;
  if (c == '"') {
    read_string(r);
    return 1;
  }
  if (c == 'n' && strncmp(r->p, "null", 4) == 0) {
    r->p += 4;
    return 0;
  }
  if (c == 't' && strncmp(r->p, "true", 4) == 0) {
    r->p += 4;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (c == 'f' && strncmp(r->p, "false", 5) == 0) {
    r->p += 5;
    lua_pushboolean(L, 0);
    return 1;
  }
  if (c == '-' || (c >= '0' && c <= '9')) {
    size_t n = strspn(r->p, "0123456789+-.eE");
    char num[64];
    if (n >= sizeof num)
      bad_json(r);
    memcpy(num, r->p, n);
    num[n] = '\0';
    if (lua_stringtonumber(L, num) == 0)
      bad_json(r);
    r->p += n;
    return 1;
  }
  if (c != '{' && c != '[')
    bad_json(r);
  if (depth >= JSON_DEPTH_MAX)
    luaL_error(L, "gc.settings: nested deeper than %d levels", JSON_DEPTH_MAX);
  luaL_checkstack(L, 6, "gc.settings");
  int object = c == '{';
  r->p++;
  lua_newtable(L);
  int t = lua_gettop(L);
  lua_Integer n = 0;
  skip_ws(r);
  if (*r->p == (object ? '}' : ']')) {
    r->p++;
  } else {
    for (;;) {
      skip_ws(r);
      if (object) {
        if (*r->p != '"')
          bad_json(r);
        read_string(r); /* the key, at t + 1 */
        skip_ws(r);
        if (*r->p++ != ':')
          bad_json(r);
        lua_pushfstring(L, "%s.%s", lua_tostring(L, path_idx), lua_tostring(L, t + 1));
        if (read_value(r, depth + 1, t + 2)) {
          lua_remove(L, t + 2); /* the path: key, value remain */
          lua_rawset(L, t);
        } /* a null leaves the key out */
        lua_settop(L, t);
      } else {
        lua_pushfstring(L, "%s[%I]", lua_tostring(L, path_idx), (LUAI_UACINT)(n + 1));
        if (!read_value(r, depth + 1, t + 1))
          lua_pushlightuserdata(L, NULL); /* gc.null: the place is kept */
        lua_rawseti(L, t, ++n);
        lua_settop(L, t);
      }
      skip_ws(r);
      if (*r->p == ',') {
        r->p++;
        continue;
      }
      if (*r->p++ != (object ? '}' : ']'))
        bad_json(r);
      break;
    }
  }
  push_readonly(L, path_idx);
  return 1;
}

/* ---- read-only proxies ----------------------------------------------------- */

/* __newindex(proxy, key, value): upvalue 1 is the proxy's path. */
static int ro_newindex(lua_State *L) {
  const char *path = lua_tostring(L, lua_upvalueindex(1));
  if (lua_type(L, 2) == LUA_TSTRING)
    return luaL_error(L, "%s is read-only (assigning %s.%s)", SETTINGS_MT_NAME,
                      path, lua_tostring(L, 2));
  return luaL_error(L, "%s is read-only (assigning %s[%s])", SETTINGS_MT_NAME,
                    path, luaL_tolstring(L, 2, NULL));
}

/* __len(proxy): upvalue 1 is the real table. */
static int ro_len(lua_State *L) {
  lua_pushinteger(L, (lua_Integer)lua_rawlen(L, lua_upvalueindex(1)));
  return 1;
}

static int ro_next(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTABLE);
  lua_settop(L, 2);
  if (lua_next(L, 1))
    return 2;
  lua_pushnil(L);
  return 1;
}

/* __pairs(proxy): next over the real table (upvalue 1). */
static int ro_pairs(lua_State *L) {
  lua_pushcfunction(L, ro_next);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_pushnil(L);
  return 3;
}

/* Replaces the table on top with its read-only proxy; the string at
 * 'path_idx' names it in errors. */
static void push_readonly(lua_State *L, int path_idx) {
  int t = lua_gettop(L);
  lua_newtable(L);                 /* the proxy */
  lua_createtable(L, 0, 5);        /* its metatable */
  lua_pushvalue(L, t);
  lua_setfield(L, -2, "__index");
  lua_pushvalue(L, path_idx);
  lua_pushcclosure(L, ro_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushvalue(L, t);
  lua_pushcclosure(L, ro_len, 1);
  lua_setfield(L, -2, "__len");
  lua_pushvalue(L, t);
  lua_pushcclosure(L, ro_pairs, 1);
  lua_setfield(L, -2, "__pairs");
  lua_pushliteral(L, SETTINGS_MT_NAME);
  lua_setfield(L, -2, "__metatable");
  lua_setmetatable(L, -2);
  lua_replace(L, t);
}

/* ---- gc.settings ----------------------------------------------------------- */

void gc_lua_settings_open(lua_State *L, const struct gc_lua_app *app) {
  int gc = lua_gettop(L);
  const char *text = NULL;
  char path[64];
  snprintf(path, sizeof path, "apps[%d].settings", (int)app->app_id);
  /* A host without the JSON type (or without this app): no settings. */
  if (app->api->getOpt == NULL ||
      app->api->getOpt(path, GC_OPT_TYPE_JSON, &text) != 0 || text == NULL)
    text = "{}";
  lua_pushliteral(L, "gc.settings");
  struct jreader r = {L, text};
  skip_ws(&r);
  if (*r.p != '{')
    bad_json(&r);
  (void)read_value(&r, 0, gc + 1);
  skip_ws(&r);
  if (*r.p)
    bad_json(&r);
  lua_setfield(L, gc, "settings");
  lua_pop(L, 1); /* the path */
  lua_pushlightuserdata(L, NULL);
  lua_setfield(L, gc, "null");
}
