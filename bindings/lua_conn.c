/* lua_conn.c - connections as Lua sees them (house style rule 8).
 *
 * A full userdata per connection holds only the host's handle: the host's
 * memory is never reachable from Lua, so no GC order can touch it. The app
 * anchors the userdata (conns[lightuserdata] = conn) from on_connect to
 * on_disconnect, so every event receives the same object; afterwards the
 * script may keep it, closed, until Lua collects it. Wrong argument types
 * raise; a closed connection is an expected condition: nil, "closed". */
#include <errno.h>
#include <lauxlib.h>
#include <string.h>

#include "lua_adapter.h"

#define CONN_MT "gc.conn"

struct lconn *gc_lua_conn_check(lua_State *L, int idx) {
  return luaL_checkudata(L, idx, CONN_MT);
}

struct lconn *gc_lua_conn_new(struct lapp *app, intptr_t handle, const char *rip,
                              int rport, const char *path) {
  lua_State *L = app->L;
  if (!path)
    path = "/";
  size_t plen = strlen(path);
  struct lconn *c = lua_newuserdatauv(L, sizeof *c + plen, 2);
  memset(c, 0, sizeof *c);
  c->handle = handle;
  c->app = app;
  c->id = ++app->next_conn_id;
  c->rport = rport;
  if (rip) {
    strncpy(c->rip, rip, sizeof c->rip - 1);
    c->rip[sizeof c->rip - 1] = '\0';
  }
  memcpy(c->path, path, plen + 1);
  luaL_setmetatable(L, CONN_MT);
  lua_newtable(L);
  lua_setiuservalue(L, -2, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->conns_ref);
  lua_pushlightuserdata(L, c);
  lua_pushvalue(L, -3);
  lua_rawset(L, -3);
  lua_pop(L, 2);
  c->open = 1;
  return c;
}

void gc_lua_conn_push(struct lapp *app, struct lconn *c) {
  lua_State *L = app->L;
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->conns_ref);
  lua_pushlightuserdata(L, c);
  lua_rawget(L, -2);
  lua_remove(L, -2);
}

void gc_lua_conn_release(struct lapp *app, struct lconn *c) {
  lua_State *L = app->L;
  c->open = 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->conns_ref);
  lua_pushlightuserdata(L, c);
  lua_pushnil(L);
  lua_rawset(L, -3); /* removing a key never allocates */
  lua_pop(L, 1);
}

void gc_lua_conn_push_cookie(struct lapp *app, struct lconn *c, intptr_t key) {
  lua_State *L = app->L;
  int top = lua_gettop(L);
  if (!key) {
    lua_pushnil(L);
    return;
  }
  gc_lua_conn_push(app, c);
  if (lua_type(L, -1) != LUA_TUSERDATA || lua_getiuservalue(L, -1, 2) != LUA_TTABLE) {
    lua_settop(L, top);
    lua_pushnil(L);
    return;
  }
  lua_rawgeti(L, -1, (lua_Integer)key); /* conn, cookies, value */
  lua_pushnil(L);
  lua_rawseti(L, -3, (lua_Integer)key); /* forget it */
  lua_replace(L, top + 1);
  lua_settop(L, top + 1);
}

/* ---- methods ------------------------------------------------------------- */

static int closed(lua_State *L) {
  lua_pushnil(L);
  lua_pushliteral(L, "closed");
  return 2;
}

static int api_result(lua_State *L, int rc) {
  if (rc == 0) {
    lua_pushboolean(L, 1);
    return 1;
  }
  if (rc == EINVAL)
    return closed(L); /* the host refused the handle: it is closing */
  lua_pushnil(L);
  lua_pushstring(L, strerror(rc));
  lua_pushinteger(L, rc);
  return 3;
}

/* conn:send(data [, cookie]) -> true | nil, "closed" */
static int conn_send(lua_State *L) {
  struct lconn *c = gc_lua_conn_check(L, 1);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int has_cookie = !lua_isnoneornil(L, 3);
  if (!c->open)
    return closed(L);
  lua_Integer key = 0;
  if (has_cookie) {
    /* Lua cookies stay in Lua; the host carries a small integer. */
    if (lua_getiuservalue(L, 1, 2) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, 1, 2);
    }
    key = ++c->next_cookie;
    lua_pushvalue(L, 3);
    lua_rawseti(L, -2, key);
    lua_pop(L, 1);
  }
  int rc = gc_lua_api.connectionAddMessage(c->handle, (GCT_PTR)data, len,
                                           (GCT_INTPTR)key);
  if (rc && has_cookie) {
    lua_getiuservalue(L, 1, 2);
    lua_pushnil(L);
    lua_rawseti(L, -2, key);
    lua_pop(L, 1);
  }
  return api_result(L, rc);
}

/* conn:close([reason]): gc.CLOSE_NORMAL (default), gc.CLOSE_DROP, "normal",
 * "drop". */
static int conn_close(lua_State *L) {
  struct lconn *c = gc_lua_conn_check(L, 1);
  int reason = GC_CLOSE_REASON_NORMAL;
  if (lua_type(L, 2) == LUA_TSTRING) {
    static const char *const names[] = {"normal", "drop", NULL};
    reason = luaL_checkoption(L, 2, NULL, names) == 0 ? GC_CLOSE_REASON_NORMAL
                                                      : GC_CLOSE_REASON_DROP;
  } else if (!lua_isnoneornil(L, 2)) {
    lua_Integer r = luaL_checkinteger(L, 2);
    luaL_argcheck(L, r == GC_CLOSE_REASON_NORMAL || r == GC_CLOSE_REASON_DROP, 2,
                  "gc.CLOSE_NORMAL or gc.CLOSE_DROP expected");
    reason = (int)r;
  }
  if (!c->open)
    return closed(L);
  return api_result(L, gc_lua_api.connectionClose(c->handle, reason));
}

/* conn:set_timer(ms): on_timer(conn) after ms; ms <= 0 cancels. */
static int conn_set_timer(lua_State *L) {
  struct lconn *c = gc_lua_conn_check(L, 1);
  lua_Integer ms = luaL_checkinteger(L, 2);
  luaL_argcheck(L, ms <= 0x7fffffff, 2, "too large");
  if (!c->open)
    return closed(L);
  return api_result(L, gc_lua_api.connectionSetTimer(c->handle, ms < 0 ? 0 : (GCT_INT)ms));
}

static int check_enum(lua_State *L, int idx, const char *const names[], int first) {
  if (lua_type(L, idx) == LUA_TSTRING)
    return luaL_checkoption(L, idx, NULL, names) + first;
  return (int)luaL_checkinteger(L, idx);
}

/* conn:set_limit(level, stat, value): level gc.STATUS_YELLOW / "yellow" or
 * gc.STATUS_RED / "red"; stat gc.STAT_* or its config name. */
static int conn_set_limit(lua_State *L) {
  struct lconn *c = gc_lua_conn_check(L, 1);
  static const char *const levels[] = {"yellow", "red", NULL};
  static const char *const stats[] = {"msg_per_second", "kbytes_per_second",
                                      "max_msg_size", "output_queue_size", NULL};
  int level = check_enum(L, 2, levels, GC_STAT_STATUS_YELLOW);
  int stat = check_enum(L, 3, stats, GC_CONN_STAT_MSG_PER_SECOND);
  lua_Integer value = luaL_checkinteger(L, 4);
  luaL_argcheck(L, level == GC_STAT_STATUS_YELLOW || level == GC_STAT_STATUS_RED, 2,
                "gc.STATUS_YELLOW or gc.STATUS_RED expected");
  luaL_argcheck(L, stat >= GC_CONN_STAT_MSG_PER_SECOND &&
                       stat <= GC_CONN_STAT_OUTPUT_QUEUE_SIZE,
                3, "gc.STAT_* expected");
  luaL_argcheck(L, value >= 0, 4, "must not be negative");
  if (!c->open)
    return closed(L);
  return api_result(L, gc_lua_api.connectionSetLimit(c->handle, level, stat, value));
}

static int conn_is_open(lua_State *L) {
  struct lconn *c = gc_lua_conn_check(L, 1);
  lua_pushboolean(L, c->open);
  return 1;
}

static const luaL_Reg conn_methods[] = {
    {"send", conn_send},         {"close", conn_close},
    {"set_timer", conn_set_timer}, {"set_limit", conn_set_limit},
    {"is_open", conn_is_open},   {NULL, NULL}};

/* ---- metamethods --------------------------------------------------------- */

static int conn_index(lua_State *L) {
  struct lconn *c = gc_lua_conn_check(L, 1);
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return 1; /* a method */
  lua_pop(L, 1);
  const char *k = lua_tostring(L, 2);
  if (k && lua_type(L, 2) == LUA_TSTRING) {
    if (!strcmp(k, "id")) {
      lua_pushinteger(L, c->id);
      return 1;
    }
    if (!strcmp(k, "path")) {
      const char *q = strchr(c->path, '?');
      lua_pushlstring(L, c->path, q ? (size_t)(q - c->path) : strlen(c->path));
      return 1;
    }
    if (!strcmp(k, "remote_ip")) {
      lua_pushstring(L, c->rip);
      return 1;
    }
    if (!strcmp(k, "remote_port")) {
      lua_pushinteger(L, c->rport);
      return 1;
    }
  }
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int conn_newindex(lua_State *L) {
  gc_lua_conn_check(L, 1);
  lua_getiuservalue(L, 1, 1);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static int conn_tostring(lua_State *L) {
  struct lconn *c = gc_lua_conn_check(L, 1);
  lua_pushfstring(L, "gc.conn %I (%s)", (LUAI_UACINT)c->id, c->open ? c->path : "closed");
  return 1;
}

void gc_lua_conn_register(lua_State *L) {
  luaL_newmetatable(L, CONN_MT);
  luaL_newlib(L, conn_methods);
  lua_pushcclosure(L, conn_index, 1);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, conn_newindex);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, conn_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, "gc.conn");
  lua_setfield(L, -2, "__name");
  lua_pop(L, 1);
}
