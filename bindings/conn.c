/* conn.c - connection userdata ("gc.conn") and on_connect (the later
 * events and their order: conn_events.c).
 *
 * Made like liolib.c's files: one full userdata per connection holding a
 * small C record (the host handle, the open/closing flags, the app) and
 * two user values: 1 the connection's field table, 2 the cookies of
 * messages in flight (made on first use).
 *
 * Each connection has its own metatable, whose '__index' is its field
 * table; the field table holds the built-in fields (id, path, remote_ip,
 * remote_port) and whatever the script stores, and its own metatable, one
 * per state, falls back on the methods. So 'conn:send' and 'conn.player'
 * are found by the VM with table lookups alone, no C call (the shared
 * metatable with a C '__index' it replaces cost the echo path a fifth of
 * its time). The other metamethods ('__newindex', which guards the
 * built-ins and the method names, '__tostring', '__close', '__name',
 * '__metatable') are copied into each connection's metatable from one
 * template in the registry. A connection is told from other userdata by
 * its size and a tag only this file writes, since its metatable is its own.
 *
 * The app anchors the userdata with a strong registry ref from on_connect
 * to the end of on_disconnect, so every event gets the same object and it
 * can be a table key; after that the script may keep it as long as it
 * likes (methods answer nil, "closed") and the GC frees it. The record's
 * address is the 'conn_user' the host hands back: userdata never move.
 *
 * A wrong argument type raises the
 * usual "bad argument"; a closed connection is an ordinary condition, so
 * send/close/set_timer return nil, "closed". Every argument is checked
 * before anything is acquired or the host is called, so a raise leaks
 * nothing. */
#include <errno.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

enum {
  UV_FIELDS = GC_LUA_CONN_UV_FIELDS,
  UV_COOKIES = GC_LUA_CONN_UV_COOKIES,
  UV_COUNT = UV_COOKIES
};

/* The field tables' shared metatable, in the registry. */
#define CONN_FIELDS_MT "gc.conn.fields"

/* Its address is the tag of every connection record. */
static const char gc_lua_conn_type = 0;

/* ---- helpers --------------------------------------------------------------- */

/* A full userdata of a record's size whose tag is ours: scripts cannot
 * write a userdata's bytes and no other C code writes this address, so
 * this is as sure as luaL_checkudata, without its lookups. */
struct gc_lua_conn *gc_lua_conn_test(lua_State *L, int idx) {
  struct gc_lua_conn *c = lua_touserdata(L, idx);
  if (c && lua_rawlen(L, idx) == sizeof *c && c->type == &gc_lua_conn_type)
    return c;
  return NULL; /* light userdata have length 0 */
}

static struct gc_lua_conn *check_conn(lua_State *L) {
  struct gc_lua_conn *c = gc_lua_conn_test(L, 1);
  if (c == NULL)
    luaL_typeerror(L, 1, GC_LUA_CONN_MT);
  return c;
}

int gc_lua_push_error(lua_State *L, int rc) {
  lua_pushnil(L);
  switch (rc) {
  case EINVAL: lua_pushliteral(L, "closed"); break;
  case ENOBUFS: lua_pushliteral(L, "output queue full"); break;
  case EMSGSIZE: lua_pushliteral(L, "message too large"); break;
  case ENOMEM: lua_pushliteral(L, "not enough memory"); break;
  case ENOSYS: lua_pushliteral(L, "not supported by this host"); break;
  case ESHUTDOWN: lua_pushliteral(L, "shutting down"); break;
  case EILSEQ: lua_pushliteral(L, "invalid UTF-8"); break;
  default: lua_pushstring(L, strerror(rc)); break;
  }
  return 2;
}

static int push_closed(lua_State *L) { return gc_lua_push_error(L, EINVAL); }

/* A method's answer to host result 'rc': true, or nil and its message. */
static int push_result(lua_State *L, int rc) {
  if (rc != 0)
    return gc_lua_push_error(L, rc);
  lua_pushboolean(L, 1);
  return 1;
}

void gc_lua_conn_push(lua_State *L, const struct gc_lua_conn *c) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, c->ref);
}

static void link_conn(struct gc_lua_app *app, struct gc_lua_conn *c) {
  c->prev = app->conn_tail;
  c->next = NULL;
  if (app->conn_tail)
    app->conn_tail->next = c;
  else
    app->conn_head = c;
  app->conn_tail = c;
  app->conn_count++;
}

/* Ends the C side's hold on a connection: unlinked, unanchored, closed,
 * its queue freed. Allocates nothing, so it runs outside protected mode. */
void gc_lua_conn_release(struct gc_lua_conn *c) {
  struct gc_lua_app *app = c->app;
  if (c->magic != GC_LUA_CONN_MAGIC)
    return;
  c->magic = 0;
  c->open = 0;
  c->closing = 1;
  if (c->prev)
    c->prev->next = c->next;
  else
    app->conn_head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  else
    app->conn_tail = c->prev;
  c->prev = c->next = NULL;
  app->conn_count--;
  if (app->L)
    luaL_unref(app->L, LUA_REGISTRYINDEX, c->ref);
  c->ref = LUA_NOREF;
  gc_lua_conn_queue_free(c);
}

int gc_lua_check_msg_type(lua_State *L, int arg) {
  static const char *const names[] = {"text", "binary", NULL};
  if (lua_isnoneornil(L, arg))
    return GC_MESSAGE_DEFAULT;
  return luaL_checkoption(L, arg, NULL, names) == 0 ? GC_MESSAGE_TEXT
                                                    : GC_MESSAGE_BINARY;
}

lua_Integer gc_lua_check_int_or_name(lua_State *L, int arg,
                                     const char *const names[],
                                     const lua_Integer values[]) {
  if (lua_type(L, arg) == LUA_TSTRING)
    return values[luaL_checkoption(L, arg, NULL, names)];
  return luaL_checkinteger(L, arg);
}

/* ---- methods --------------------------------------------------------------- */

/* conn:send(data [, cookie [, "text"|"binary"]]) -> true | nil, "closed"
 * | nil, errmsg. 'cookie' (any Lua value but nil) comes back in
 * on_message_sent. Without a type the app's "message_type" applies; a
 * text message that is not UTF-8 gets nil, "invalid UTF-8". */
static int conn_send(lua_State *L) {
  struct gc_lua_conn *c = check_conn(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  int flags = gc_lua_check_msg_type(L, 4);
  int has_cookie = !lua_isnoneornil(L, 3);
  if (!c->open || c->closing)
    return push_closed(L);
  lua_Integer key = 0;
  if (has_cookie) {
    lua_settop(L, 3);
    if (lua_getiuservalue(L, 1, UV_COOKIES) != LUA_TTABLE) {
      lua_pop(L, 1);
      lua_newtable(L);
      lua_pushvalue(L, -1);
      lua_setiuservalue(L, 1, UV_COOKIES);
    }
    key = c->next_cookie + 1;
    lua_pushvalue(L, 3);
    lua_rawseti(L, 4, key); /* may raise: nothing is held yet */
    c->next_cookie = key;
  }
  const struct core_api *api = c->app->api;
  int rc = flags == GC_MESSAGE_DEFAULT
               ? api->connectionAddMessage(c->handle, (GCT_PTR)(uintptr_t)data,
                                           len, (GCT_INTPTR)key)
           : api->connectionAddMessageEx /* NULL before API 1.2 */
               ? api->connectionAddMessageEx(c->handle, data, len,
                                             (GCT_INTPTR)key, flags)
               : ENOSYS;
  if (rc != 0) {
    if (key) {
      lua_pushnil(L);
      lua_rawseti(L, 4, key); /* an existing slot: no allocation */
    }
    /* EINVAL: gone; ENOBUFS: the host dropped it for not reading. */
    if (rc == EINVAL || rc == ENOBUFS)
      c->closing = 1;
  }
  return push_result(L, rc);
}

/* conn:close([reason [, code [, text]]]) with gc.CLOSE_NORMAL (default),
 * gc.CLOSE_DROP, "normal" or "drop" -> true | nil, "closed". 'code' (1000
 * or 3000-4999) and 'text' (at most 123 bytes of UTF-8) go in the close
 * frame of a NORMAL close; a DROP sends no frame. */
static int conn_close(lua_State *L) {
  static const char *const names[] = {"normal", "drop", NULL};
  static const lua_Integer values[] = {GC_CLOSE_REASON_NORMAL,
                                       GC_CLOSE_REASON_DROP};
  struct gc_lua_conn *c = check_conn(L);
  lua_Integer reason = GC_CLOSE_REASON_NORMAL;
  if (!lua_isnoneornil(L, 2)) {
    reason = gc_lua_check_int_or_name(L, 2, names, values);
    luaL_argcheck(L,
                  reason == GC_CLOSE_REASON_NORMAL ||
                      reason == GC_CLOSE_REASON_DROP,
                  2, "invalid close reason");
  }
  lua_Integer code = 0;
  if (!lua_isnoneornil(L, 3)) {
    code = luaL_checkinteger(L, 3);
    luaL_argcheck(L, code == 1000 || (code >= 3000 && code <= 4999), 3,
                  "close code must be 1000 or 3000-4999");
  }
  const char *text = NULL;
  if (!lua_isnoneornil(L, 4)) {
    size_t n;
    text = luaL_checklstring(L, 4, &n);
    luaL_argcheck(L, n <= GC_CLOSE_TEXT_MAX, 4,
                  "close text longer than 123 bytes");
    luaL_argcheck(L,
                  strlen(text) == n &&
                      gc_lua_utf8_valid((const unsigned char *)text, n),
                  4, "close text must be UTF-8 without NUL");
  }
  if (!c->open || c->closing)
    return push_closed(L);
  const struct core_api *api = c->app->api;
  int rc = !(code || text) ? api->connectionClose(c->handle, (GCT_INT)reason)
           : api->connectionCloseEx /* NULL before API 1.2 */
               ? api->connectionCloseEx(c->handle, (GCT_INT)reason,
                                        (GCT_INT)code, text)
               : ENOSYS;
  if (rc == 0 || rc == EINVAL)
    c->closing = 1;
  return push_result(L, rc);
}

/* conn:set_timer(ms): on_timer(conn) after 'ms'; ms <= 0 cancels. */
static int conn_set_timer(lua_State *L) {
  struct gc_lua_conn *c = check_conn(L);
  lua_Integer ms = luaL_checkinteger(L, 2);
  luaL_argcheck(L, ms <= INT32_MAX, 2, "too large");
  if (!c->open || c->closing)
    return push_closed(L);
  if (ms < 0)
    ms = 0;
  return push_result(L,
                     c->app->api->connectionSetTimer(c->handle, (GCT_INT)ms));
}

/* conn:set_limit(level, stat, value): level gc.STATUS_YELLOW/RED or
 * "yellow"/"red"; stat gc.STAT_* or its lower-case name; value in the API's
 * unit (bytes per second for "bytes_per_second", not the config's KiB). */
static int conn_set_limit(lua_State *L) {
  static const char *const levels[] = {"yellow", "red", NULL};
  static const lua_Integer level_values[] = {GC_STAT_STATUS_YELLOW,
                                             GC_STAT_STATUS_RED};
  static const char *const stats[] = {"msg_per_second", "bytes_per_second",
                                      "max_msg_size", "output_queue_size",
                                      NULL};
  static const lua_Integer stat_values[] = {
      GC_CONN_STAT_MSG_PER_SECOND, GC_CONN_STAT_BYTES_PER_SECOND,
      GC_CONN_STAT_MAX_MSG_SIZE, GC_CONN_STAT_OUTPUT_QUEUE_SIZE};
  struct gc_lua_conn *c = check_conn(L);
  lua_Integer level = gc_lua_check_int_or_name(L, 2, levels, level_values);
  lua_Integer stat = gc_lua_check_int_or_name(L, 3, stats, stat_values);
  lua_Integer value = luaL_checkinteger(L, 4);
  luaL_argcheck(L, level >= INT32_MIN && level <= INT32_MAX, 2, "out of range");
  luaL_argcheck(L, stat >= INT32_MIN && stat <= INT32_MAX, 3, "out of range");
  if (!c->open || c->closing)
    return push_closed(L);
  int rc = c->app->api->connectionSetLimit(c->handle, (GCT_INT)level,
                                           (GCT_INT)stat, value);
  if (rc == EINVAL) {
    lua_pushnil(L);
    lua_pushliteral(L, "invalid level or statistic, or closed");
    return 2;
  }
  return push_result(L, rc);
}

/* conn:is_open(): true between on_connect and on_disconnect unless close()
 * was called; never raises on a closed connection. */
static int conn_is_open(lua_State *L) {
  struct gc_lua_conn *c = check_conn(L);
  lua_pushboolean(L, c->open && !c->closing);
  return 1;
}

/* ---- metamethods ----------------------------------------------------------- */

static const char *const readonly[] = {"id", "path", "remote_ip",
                                       "remote_port", NULL};

static int conn_newindex(lua_State *L) {
  if (lua_type(L, 2) == LUA_TSTRING) {
    const char *k = lua_tostring(L, 2);
    for (int i = 0; readonly[i]; i++)
      if (strcmp(k, readonly[i]) == 0)
        return luaL_error(L, "field '%s' of gc.conn is read-only", k);
    lua_pushvalue(L, 2);
    if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
      return luaL_error(L, "cannot replace method '%s' of gc.conn", k);
  }
  (void)check_conn(L);
  lua_getiuservalue(L, 1, UV_FIELDS);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static int conn_tostring(lua_State *L) {
  struct gc_lua_conn *c = check_conn(L);
  if (c->open && !c->closing) {
    lua_getiuservalue(L, 1, UV_FIELDS);
    lua_pushliteral(L, "remote_ip");
    lua_rawget(L, -2);
    lua_pushfstring(L, "gc.conn %I (%s:%d)", (lua_Integer)c->id,
                    lua_tostring(L, -1), c->remote_port);
  } else {
    lua_pushfstring(L, "gc.conn %I (%s)", (lua_Integer)c->id,
                    c->open ? "closing" : "closed");
  }
  return 1;
}

/* 'local conn <close> = ...' closes it NORMAL; tolerant of closed ones. */
static int conn_gc_close(lua_State *L) {
  struct gc_lua_conn *c = check_conn(L);
  if (c->open && !c->closing && c->app->api->connectionClose) {
    if (c->app->api->connectionClose(c->handle, GC_CLOSE_REASON_NORMAL) == 0)
      c->closing = 1;
  }
  return 0;
}

static const luaL_Reg conn_methods[] = {
    {"send", conn_send},       {"close", conn_close},
    {"set_timer", conn_set_timer}, {"set_limit", conn_set_limit},
    {"is_open", conn_is_open}, {NULL, NULL}};

static const luaL_Reg conn_meta[] = {{"__newindex", conn_newindex},
                                     {"__tostring", conn_tostring},
                                     {"__close", conn_gc_close},
                                     {NULL, NULL}};

/* The template metatable "gc.conn" (copied into each connection's own)
 * and "gc.conn.fields", whose '__index' is the methods table. */
void gc_lua_conn_open(lua_State *L) {
  luaL_newlibtable(L, conn_methods);
  luaL_setfuncs(L, conn_methods, 0);
  luaL_newmetatable(L, CONN_FIELDS_MT);
  lua_pushvalue(L, -2);
  lua_setfield(L, -2, "__index");
  lua_pushliteral(L, CONN_FIELDS_MT); /* kept from scripts, see watchdog.c */
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  luaL_newmetatable(L, GC_LUA_CONN_MT); /* sets __name */
  lua_pushvalue(L, -2);
  luaL_setfuncs(L, conn_meta, 1); /* the methods table is upvalue 1 */
  lua_pushliteral(L, GC_LUA_CONN_MT);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 2);
}

/* Gives the userdata at 'ud' its own metatable: the template's entries and
 * '__index', the field table at the top, which is popped. */
static void set_conn_metatable(lua_State *L, int ud) {
  lua_createtable(L, 0, 6);
  lua_insert(L, -2);
  lua_setfield(L, -2, "__index");
  luaL_getmetatable(L, GC_LUA_CONN_MT);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    lua_pushvalue(L, -2);
    lua_insert(L, -2);
    lua_rawset(L, -5);
  }
  lua_pop(L, 1);
  lua_setmetatable(L, ud);
}

/* ---- on_connect ------------------------------------------------------------ */

struct connect_ev {
  struct gc_lua_app *app;
  GCT_INTPTR handle;
  GCT_INT pid, rport, lport;
  const char *rip, *lip, *target;
  struct gc_lua_conn *c; /* set once anchored */
  int accept;
};

static void set_str(lua_State *L, const char *k, const char *v) {
  lua_pushstring(L, v ? v : "");
  lua_setfield(L, -2, k);
}

static void set_int(lua_State *L, const char *k, lua_Integer v) {
  lua_pushinteger(L, v);
  lua_setfield(L, -2, k);
}

/* 'return false, status [, text]' from on_connect: the HTTP answer of
 * the refusal (connectionRefuse); the status and text are at the top.
 * A bad one is the script's error (logged, and the client gets 403). */
static void refuse_answer(lua_State *L, struct connect_ev *ev) {
  lua_Integer status = 403;
  if (!lua_isnil(L, -2)) {
    int isnum = 0;
    status = lua_tointegerx(L, -2, &isnum);
    if (!isnum || status < 400 || status > 599)
      luaL_error(L, "on_connect refused with HTTP status %s (400-599 expected)",
                 luaL_tolstring(L, -2, NULL));
  }
  const char *text = NULL;
  if (!lua_isnil(L, -1)) {
    size_t n = 0;
    text = lua_type(L, -1) == LUA_TSTRING ? lua_tolstring(L, -1, &n) : NULL;
    int ok = text && n > 0 && n <= GC_REFUSE_TEXT_MAX &&
             gc_lua_utf8_valid((const unsigned char *)text, n);
    for (size_t i = 0; ok && i < n; i++)
      ok = (unsigned char)text[i] >= 0x20 && text[i] != 0x7f;
    if (!ok)
      luaL_error(L,
                 "on_connect refused with a bad HTTP body (one line of 1-%d "
                 "bytes of UTF-8, no control characters, expected)",
                 GC_REFUSE_TEXT_MAX);
  }
  if (ev->app->api->connectionRefuse) /* NULL before API 1.2: 403 */
    (void)ev->app->api->connectionRefuse(ev->handle, (GCT_INT)status, text);
}

static int do_connect(lua_State *L) {
  struct connect_ev *ev = lua_touserdata(L, 1);
  struct gc_lua_app *app = ev->app;
  const char *target = ev->target;
  const char *q = strchr(target, '?');
  size_t plen = q ? (size_t)(q - target) : strlen(target);

  /* The userdata, in a safe closed state until it is anchored. */
  struct gc_lua_conn *c = lua_newuserdatauv(L, sizeof *c, UV_COUNT);
  memset(c, 0, sizeof *c);
  c->ref = LUA_NOREF;
  c->app = app;
  c->handle = ev->handle;
  c->remote_port = ev->rport;
  c->evq.drain = gc_lua_conn_drain;
  lua_Integer id = app->next_conn_id + 1;
  lua_createtable(L, 0, 4); /* the field table, with the built-ins */
  set_int(L, "id", id);
  lua_pushlstring(L, target, plen);
  lua_setfield(L, -2, "path");
  set_str(L, "remote_ip", ev->rip);
  set_int(L, "remote_port", ev->rport);
  luaL_setmetatable(L, CONN_FIELDS_MT);
  lua_pushvalue(L, -1);
  lua_setiuservalue(L, 2, UV_FIELDS);
  set_conn_metatable(L, 2);
  c->type = &gc_lua_conn_type; /* a gc.conn from now on */
  lua_pushvalue(L, 2);
  c->ref = luaL_ref(L, LUA_REGISTRYINDEX); /* the last thing that can fail */
  c->magic = GC_LUA_CONN_MAGIC;
  c->open = 1;
  c->id = app->next_conn_id = id;
  link_conn(app, c);
  ev->c = c;

  if (!gc_lua_push_handler(L, app, "on_connect")) {
    ev->accept = 1;
    return 0;
  }
  lua_pushvalue(L, 2);
  lua_createtable(L, 0, 10);
  lua_pushlstring(L, target, plen);
  lua_setfield(L, -2, "path");
  set_str(L, "target", target);
  gc_lua_push_query(L, q ? q + 1 : NULL);
  lua_setfield(L, -2, "query");
  set_str(L, "protocol", ev->pid == GC_PROTOCOL_WSS ? "wss" : "ws");
  set_str(L, "remote_ip", ev->rip);
  set_int(L, "remote_port", ev->rport);
  set_str(L, "local_ip", ev->lip);
  set_int(L, "local_port", ev->lport);
  set_int(L, "app_id", app->app_id);
  struct gc_lua_run run = {&c->evq, GC_LUA_RUN_CONNECT, "on_connect"};
  int r = gc_lua_co_call(L, app, 2, &run);
  if (r == -1) { /* it waits: accepted meanwhile, see connect_done */
    ev->accept = 1;
    return 0;
  }
  if (r == -2) /* logged */
    return 0;
  lua_settop(L, lua_gettop(L) - r + 3); /* exactly three results */
  ev->accept = !((lua_isboolean(L, -3) && !lua_toboolean(L, -3)) ||
                 (lua_isinteger(L, -3) &&
                  lua_tointeger(L, -3) == (lua_Integer)GC_DROP_CONNECTION));
  if (!ev->accept && !(lua_isnil(L, -2) && lua_isnil(L, -1)))
    refuse_answer(L, ev);
  return 0;
}

struct gc_lua_conn *gc_lua_conn_connect(struct gc_lua_app *app,
                                        GCT_INTPTR handle, GCT_INT pid,
                                        GCT_CSTR rip, GCT_INT rport,
                                        GCT_CSTR lip, GCT_INT lport,
                                        GCT_CSTR udata) {
  struct connect_ev ev = {.app = app, .handle = handle, .pid = pid,
                          .rport = rport, .lport = lport, .rip = rip,
                          .lip = lip, .target = udata ? udata : "/"};
  int st = gc_lua_pcall(app, "on_connect", do_connect, &ev);
  if (st != LUA_OK || !ev.accept) {
    if (ev.c)
      gc_lua_conn_release(ev.c);
    return NULL;
  }
  return ev.c;
}

/* on_connect ended after a wait (coro.c, protected): with nres >= 0 its
 * results are on top of L; -2: it raised (logged). The connection was
 * accepted when it began to wait, so a refusal now closes it with code
 * 4000 + the status (4403 by default) and the refusal's text, and
 * neither its queued events nor on_disconnect run. Raises nothing: a bad
 * status or text is logged and the defaults go. */
void gc_lua_conn_connect_done(lua_State *L, struct gc_lua_conn *c, int nres) {
  struct gc_lua_app *app = c->app;
  lua_Integer status = 403;
  const char *text = NULL;
  if (nres >= 0) {
    lua_settop(L, lua_gettop(L) - nres + 3);
    int accept = !((lua_isboolean(L, -3) && !lua_toboolean(L, -3)) ||
                   (lua_isinteger(L, -3) &&
                    lua_tointeger(L, -3) == (lua_Integer)GC_DROP_CONNECTION));
    if (accept)
      return;
    if (!lua_isnil(L, -2)) {
      int isnum = 0;
      lua_Integer v = lua_tointegerx(L, -2, &isnum);
      if (isnum && v >= 400 && v <= 599)
        status = v;
      else
        gc_lua_log_error(app, "error in on_connect: refused with a bad HTTP "
                              "status (400-599 expected): 403 instead");
    }
    size_t n = 0;
    if (lua_type(L, -1) == LUA_TSTRING) {
      text = lua_tolstring(L, -1, &n);
      if (n == 0 || n > GC_CLOSE_TEXT_MAX || strlen(text) != n ||
          !gc_lua_utf8_valid((const unsigned char *)text, n))
        text = NULL; /* too long for a close frame */
    }
  } else {
    status = 500;
    text = "on_connect failed";
  }
  c->refused = 1;
  gc_lua_conn_queue_free(c); /* a disconnect among them: the drain releases it */
  if (!c->open)
    c->gone = 1;
  if (c->open && !c->closing) {
    const struct core_api *api = app->api;
    int rc = api->connectionCloseEx
                 ? api->connectionCloseEx(c->handle, GC_CLOSE_REASON_NORMAL,
                                          (GCT_INT)(4000 + status), text)
                 : api->connectionClose(c->handle, GC_CLOSE_REASON_DROP);
    if (rc == 0 || rc == EINVAL)
      c->closing = 1;
  }
}
