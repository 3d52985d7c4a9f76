/* client_lua.c - a gc.testing client as a spec sees it: client:send,
 * :received, :close, :pause... (the wire side is client.c). */
#include <errno.h>
#include <lauxlib.h>
#include <lua.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

/* ---- client -------------------------------------------------------------- */

static struct tclient *check_client(lua_State *L) {
  struct tclient *c = luaL_checkudata(L, 1, CLIENT_MT);
  if (c->host && c->host->in_http) /* the host is inside its loop */
    luaL_error(L, "T.host's http function cannot drive the host");
  if (c->host)
    gc_thost_enter(c->host);
  return c;
}

static int client_is_open(lua_State *L) {
  struct tclient *c = check_client(L);
  lua_pushboolean(L, c->conn && c->opened && !c->got_close);
  return 1;
}

/* client:send(data [, "binary"]) sends a text frame unless told binary. */
static int client_send(lua_State *L) {
  struct tclient *c = check_client(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  const char *kind = luaL_optstring(L, 3, "text");
  if (!c->conn || !c->ws || c->got_close) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  struct wslay_event_msg msg = {
      .opcode = strcmp(kind, "binary") == 0 ? WSLAY_BINARY_FRAME : WSLAY_TEXT_FRAME,
      .msg = (const uint8_t *)data,
      .msg_length = len};
  if (wslay_event_queue_msg(c->ws, &msg) != 0 || wslay_event_send(c->ws) != 0)
    return luaL_error(L, "gc.testing: cannot send");
  gc_tclient_flush(c);
  gc_thost_settle(L, c->host);
  lua_pushboolean(L, 1);
  return 1;
}

/* client:send_raw(bytes): bytes on the wire as they are (hostile input). */
static int client_send_raw(lua_State *L) {
  struct tclient *c = check_client(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (!c->conn) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  gc_host_input(c->host->h, c->conn, data, len);
  gc_thost_settle(L, c->host);
  lua_pushboolean(L, 1);
  return 1;
}

/* client:close([code]): a clean close from the client side. */
static int client_close(lua_State *L) {
  struct tclient *c = check_client(L);
  lua_Integer code = luaL_optinteger(L, 2, 1000);
  if (!c->conn || !c->ws) {
    lua_pushnil(L);
    lua_pushliteral(L, "closed");
    return 2;
  }
  (void)wslay_event_queue_close(c->ws, (uint16_t)code, NULL, 0);
  (void)wslay_event_send(c->ws);
  gc_tclient_flush(c);
  gc_thost_settle(L, c->host);
  lua_pushboolean(L, 1);
  return 1;
}

/* client:drop(): the client vanishes without a close frame. */
static int client_drop(lua_State *L) {
  struct tclient *c = check_client(L);
  if (c->conn)
    gc_host_eof(c->host->h, c->conn);
  if (c->host)
    gc_thost_settle(L, c->host);
  return 0;
}

/* client:pause(): the client stops reading. The host's output queue grows
 * as for a real client that does not read (its kernel buffer full): queue
 * limits, YELLOW issues, send_timeout_ms and close_drain_ms apply. */
static int client_pause(lua_State *L) {
  struct tclient *c = check_client(L);
  c->paused = 1;
  return 0;
}

/* client:resume(): it reads again; what waited arrives. */
static int client_resume(lua_State *L) {
  struct tclient *c = check_client(L);
  c->paused = 0;
  if (c->conn && c->host && c->host->h) {
    gc_host_resume(c->host->h, c->conn);
    gc_thost_settle(L, c->host);
  }
  return 0;
}

/* client:ignore_close(on): while on, a close frame from the host gets no
 * answer (the host drops the client after close_drain_ms). */
static int client_ignore_close(lua_State *L) {
  struct tclient *c = check_client(L);
  luaL_checkany(L, 2);
  c->ignore_close = lua_toboolean(L, 2);
  if (!c->ignore_close && c->host && c->host->h)
    gc_thost_settle(L, c->host); /* the reply held back goes out now */
  return 0;
}

/* client:received(): the messages since the last call, in order, and a
 * second array with the type of each ("text" or "binary"). */
static int client_received(lua_State *L) {
  struct tclient *c = check_client(L);
  lua_newtable(L);
  lua_newtable(L);
  int n = 0;
  while (c->head) {
    struct tmsg *m = c->head;
    lua_pushlstring(L, m->data, m->len);
    lua_rawseti(L, -3, ++n);
    lua_pushstring(L, m->text ? "text" : "binary");
    lua_rawseti(L, -2, n);
    c->head = m->next;
    free(m);
  }
  c->tail = NULL;
  return 2;
}

static int client_index(lua_State *L) {
  struct tclient *c = luaL_checkudata(L, 1, CLIENT_MT);
  const char *k = luaL_checkstring(L, 2);
  if (!strcmp(k, "close_reason")) {
    if (c->close_reason)
      lua_pushstring(L, c->close_reason);
    else
      lua_pushnil(L);
  } else if (!strcmp(k, "close_code")) {
    if (c->got_close)
      lua_pushinteger(L, c->close_code);
    else
      lua_pushnil(L);
  } else if (!strcmp(k, "close_text")) {
    if (c->got_close)
      lua_pushstring(L, c->close_text);
    else
      lua_pushnil(L);
  } else if (!strcmp(k, "body")) {
    if (c->body)
      lua_pushstring(L, c->body);
    else
      lua_pushnil(L);
  } else if (!strcmp(k, "status")) {
    lua_pushinteger(L, c->http_status);
  } else {
    luaL_getmetafield(L, 1, "__methods");
    lua_getfield(L, -1, k);
  }
  return 1;
}

static int client_gc(lua_State *L) {
  struct tclient *c = luaL_checkudata(L, 1, CLIENT_MT);
  if (c->conn && c->host && c->host->h) {
    /* Collected while connected: the client vanishes. */
    struct thost *t = c->host;
    gc_thost_unlink(t, c);
    gc_host_eof(t->h, c->conn);
  } else if (c->host) {
    gc_thost_unlink(c->host, c);
  }
  while (c->head) {
    struct tmsg *m = c->head;
    c->head = m->next;
    free(m);
  }
  if (c->ws)
    wslay_event_context_free(c->ws);
  free(c->body);
  free(c->in.p);
  free(c->out.p);
  memset(c, 0, sizeof *c);
  return 0;
}

static const luaL_Reg client_methods[] = {
    {"send", client_send},         {"send_raw", client_send_raw},
    {"close", client_close},       {"drop", client_drop},
    {"received", client_received}, {"is_open", client_is_open},
    {"pause", client_pause},       {"resume", client_resume},
    {"ignore_close", client_ignore_close},
    {NULL, NULL}};

void gc_tclient_lua_open(lua_State *L) {
  if (luaL_newmetatable(L, CLIENT_MT)) {
    luaL_newlib(L, client_methods);
    lua_setfield(L, -2, "__methods");
    lua_pushcfunction(L, client_index);
    lua_setfield(L, -2, "__index");
    lua_pushcfunction(L, client_gc);
    lua_setfield(L, -2, "__gc");
  }
  lua_pop(L, 1);
}
