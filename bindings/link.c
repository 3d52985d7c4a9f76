/* link.c - gc.connect: a Lua script's outgoing WebSocket link to another
 * application (this host's or another's), over core_api's s2s members.
 *
 *   local link = gc.connect("ws://127.0.0.1:7681/lobby?room=1", {
 *     on_connect = function(link) end,        on_message = function(link, data) end,
 *     on_message_sent = function(link, cookie, len, status) end,
 *     on_timer = function(link) end,          on_error = function(link, reason) end,
 *     on_disconnect = function(link) end })
 *
 * A link is a full userdata (metatable "gc.link") with two user values: the
 * handler table and a field table (scripts store their own fields on it, as
 * on a conn). It is anchored by a registry ref from gc.connect until its
 * final event (on_error instead of on_connect, or on_disconnect after it),
 * so its address is the s2s 'conn_user' all that time.
 *
 * Every handler runs in a pooled coroutine (coro.c), so it may wait, and
 * an error is logged and isolated. A link's events stay in order as a
 * connection's do (conn_events.c): while one of its handlers waits, the
 * later ones queue on its evq (evq.c) and run when it ends; past
 * lua.max_pending_events the link is closed. The final event (on_error or
 * on_disconnect) marks it 'gone'; it is released once that has run. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

#define GC_LUA_LINK_MT "gc.link"
#define LINK_MAGIC 0x4c494e4bu

enum { UV_HANDLERS = 1, UV_FIELDS, UV_COOKIES };
enum { L_CONNECTING, L_OPEN, L_CLOSING, L_DONE };

struct gc_lua_link {
  uint32_t magic; /* LINK_MAGIC while anchored */
  int state;
  int close_asked; /* link:close() before on_connect */
  int ref;
  GCT_INTPTR handle;
  struct gc_lua_app *app;
  struct gc_lua_link *prev, *next; /* in app->link_head while anchored */
  lua_Integer next_cookie;
  struct gc_lua_evq evq; /* its events while a handler of it waits */
  unsigned char gone;    /* its final event is queued or running */
};

static int valid(const struct gc_lua_link *k) {
  return k && k->magic == LINK_MAGIC && k->app->L && !k->app->closing;
}

/* ---- events -------------------------------------------------------------- */

struct link_ev {
  struct gc_lua_link *k;
  const char *event;
  const void *data;
  size_t len;
  const char *text;
  GCT_INTPTR cookie;
  int status;
};

/* Pushes the link's handler 'name' and the link; 0 when it has none. */
static int push_handler(lua_State *L, struct gc_lua_link *k, const char *name) {
  int top = lua_gettop(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, k->ref);
  if (lua_getiuservalue(L, -1, UV_HANDLERS) != LUA_TTABLE ||
      lua_getfield(L, -1, name) == LUA_TNIL) {
    lua_settop(L, top);
    return 0;
  }
  lua_remove(L, -2); /* the handler table */
  lua_insert(L, -2); /* handler, link */
  return 1;
}

static int do_event(lua_State *L) {
  struct link_ev *ev = lua_touserdata(L, 1);
  struct gc_lua_link *k = ev->k;
  int n = 1;
  if (ev->cookie) { /* on_message_sent */
    lua_rawgeti(L, LUA_REGISTRYINDEX, k->ref);
    if (lua_getiuservalue(L, -1, UV_COOKIES) != LUA_TTABLE ||
        lua_rawgeti(L, -1, ev->cookie) == LUA_TNIL)
      return 0; /* no cookie given: no callback */
    lua_pushnil(L);
    lua_rawseti(L, -3, ev->cookie);
    lua_replace(L, 1); /* the cookie's value at 1 */
    lua_settop(L, 1);
    if (!push_handler(L, k, ev->event))
      return 0;
    lua_pushvalue(L, 1);
    lua_pushinteger(L, (lua_Integer)ev->len);
    lua_pushinteger(L, ev->status);
    n = 4;
  } else {
    if (!push_handler(L, k, ev->event))
      return 0;
    if (ev->data) {
      lua_pushlstring(L, ev->data, ev->len);
      n++;
    } else if (ev->text) {
      lua_pushstring(L, ev->text);
      n++;
    }
  }
  struct gc_lua_run run = {&k->evq, GC_LUA_RUN_PLAIN, ev->event};
  (void)gc_lua_co_call(L, k->app, n, &run);
  return 0;
}

static void call_handler(struct gc_lua_link *k, struct link_ev *ev) {
  if (valid(k))
    (void)gc_lua_pcall(k->app, ev->event, do_event, ev);
}

/* After the final event: the link no longer anchors itself. */
static void release(struct gc_lua_link *k) {
  k->state = L_DONE;
  if (k->magic != LINK_MAGIC)
    return;
  k->magic = 0;
  gc_lua_evq_free(&k->evq);
  if (k->prev)
    k->prev->next = k->next;
  else if (k->app->link_head == k)
    k->app->link_head = k->next;
  if (k->next)
    k->next->prev = k->prev;
  k->prev = k->next = NULL;
  if (k->app->L)
    luaL_unref(k->app->L, LUA_REGISTRYINDEX, k->ref);
  k->ref = LUA_NOREF;
}

/* The state is closing: links still anchored are forgotten (as open
 * connections are, app.c), their memory goes with the state. */
void gc_lua_link_queues_free(struct gc_lua_app *app) {
  for (struct gc_lua_link *k = app->link_head; k; k = k->next) {
    gc_lua_evq_free(&k->evq);
    k->magic = 0;
  }
  app->link_head = NULL;
}

/* Runs the event of 'kind' now, or queues it behind a handler of the
 * link that waits; past lua.max_pending_events the link is closed (one
 * NOTICE line) and the events past the bound are lost. */
static void dispatch(struct gc_lua_link *k, int kind, struct link_ev *ev) {
  if (!valid(k))
    return;
  if (k->evq.busy || k->evq.head) {
    const void *data = ev->data ? ev->data : ev->text;
    size_t len = ev->data ? ev->len : ev->text ? strlen(ev->text) + 1 : ev->len;
    int rc = gc_lua_evq_push(&k->evq, k->app->max_pending, kind, data, len,
                             ev->cookie, ev->status);
    if (rc == EAGAIN && k->state == L_OPEN) {
      gc_lua_log(k->app, GCL_NOTICE,
                 "link closed: %zu events waiting behind a handler that "
                 "waits (lua.max_pending_events)", k->evq.len);
      k->state = L_CLOSING;
      (void)k->app->api->s2sDestroy(k->handle); /* on_disconnect follows */
    } else if (rc == ENOMEM) {
      gc_lua_log(k->app, GCL_ERR, "link: an event was lost (out of memory "
                 "while its handler waits)");
    }
    return;
  }
  call_handler(k, ev);
  if (k->gone && !k->evq.busy)
    release(k);
}

static const char *const kind_events[] = {"on_message", "on_message_sent",
                                          "on_timer", "on_disconnect",
                                          "on_error"};

/* A handler of the link ended after waiting (its evq's 'drain'): the
 * queued events run in order until one waits again or none is left. */
static void drain(struct gc_lua_evq *q) {
  struct gc_lua_link *k = gc_lua_container_of(q, struct gc_lua_link, evq);
  while (k->magic == LINK_MAGIC && !k->evq.busy) {
    struct gc_lua_pend *p = gc_lua_evq_pop(&k->evq);
    if (p == NULL) {
      if (k->gone) /* the final event ended after waiting */
        release(k);
      return;
    }
    if (!valid(k)) {
      free(p);
      return;
    }
    struct link_ev ev = {k, kind_events[p->kind], NULL, p->len, NULL,
                         p->cookie, p->status};
    if (p->kind == GC_LUA_EV_MESSAGE)
      ev.data = p->data;
    else if (p->kind == GC_LUA_EV_ERROR)
      ev.text = p->data;
    call_handler(k, &ev);
    free(p); /* the loop's test reads no Lua: 'k' outlives a release */
  }
}

static void ev_connect(GCT_INTPTR user, GCT_INTPTR handle) {
  struct gc_lua_link *k = (struct gc_lua_link *)user;
  k->handle = handle;
  k->state = L_OPEN;
  if (k->close_asked || !valid(k)) {
    k->state = L_CLOSING;
    (void)k->app->api->s2sDestroy(handle);
    return;
  }
  struct link_ev ev = {k, "on_connect", NULL, 0, NULL, 0, 0};
  call_handler(k, &ev); /* the first event: nothing waits before it */
}

static void ev_error(GCT_INTPTR user, GCT_CSTR reason) {
  struct gc_lua_link *k = (struct gc_lua_link *)user;
  k->state = L_DONE;
  k->gone = 1;
  struct link_ev ev = {k, "on_error", NULL, 0, reason ? reason : "error", 0, 0};
  dispatch(k, GC_LUA_EV_ERROR, &ev);
  if (!valid(k))
    release(k);
}

static void ev_disconnect(GCT_INTPTR user) {
  struct gc_lua_link *k = (struct gc_lua_link *)user;
  k->state = L_DONE; /* from now on link:send answers "closed" */
  k->gone = 1;
  struct link_ev ev = {k, "on_disconnect", NULL, 0, NULL, 0, 0};
  dispatch(k, GC_LUA_EV_DISCONNECT, &ev);
  if (!valid(k))
    release(k);
}

static void ev_message(GCT_INTPTR user, GCT_PTR data, GCT_SIZE len) {
  struct gc_lua_link *k = (struct gc_lua_link *)user;
  struct link_ev ev = {k, "on_message", data ? data : "", data ? len : 0, NULL, 0, 0};
  dispatch(k, GC_LUA_EV_MESSAGE, &ev);
}

static void ev_sent(GCT_INTPTR user, GCT_INTPTR cookie, GCT_SIZE len, int status) {
  struct gc_lua_link *k = (struct gc_lua_link *)user;
  if (cookie == 0)
    return;
  struct link_ev ev = {k, "on_message_sent", NULL, len, NULL, cookie, status};
  dispatch(k, GC_LUA_EV_SENT, &ev);
}

static void ev_timer(GCT_INTPTR user) {
  struct gc_lua_link *k = (struct gc_lua_link *)user;
  struct link_ev ev = {k, "on_timer", NULL, 0, NULL, 0, 0};
  if (k->state == L_OPEN)
    dispatch(k, GC_LUA_EV_TIMER, &ev);
}

static struct client_events link_events = {ev_connect, ev_disconnect, ev_error,
                                           ev_message, ev_sent, ev_timer};

/* ---- gc.connect ------------------------------------------------------------ */

/* "ws://HOST[:PORT]/APP[?QUERY]" into host, port and "APP[?QUERY]". 0, or
 * a reason. */
static const char *parse_url(const char *url, char *host, size_t hostcap,
                             int *port, const char **app, int *wss) {
  *wss = strncmp(url, "wss://", 6) == 0;
  if (!*wss && strncmp(url, "ws://", 5) != 0)
    return "the URL must start with ws:// or wss://";
  const char *p = url + (*wss ? 6 : 5);
  const char *end;
  size_t hl;
  if (*p == '[') { /* an IPv6 address */
    end = strchr(p, ']');
    if (!end)
      return "unterminated [ in the host";
    hl = (size_t)(end - p - 1);
    p++;
    end++;
  } else {
    end = p + strcspn(p, ":/?#");
    hl = (size_t)(end - p);
  }
  if (hl == 0 || hl >= hostcap)
    return "bad host";
  memcpy(host, p, hl);
  host[hl] = 0;
  *port = *wss ? 443 : 80;
  if (*end == ':') {
    char *e;
    long v = strtol(end + 1, &e, 10);
    if (e == end + 1 || v < 1 || v > 65535)
      return "bad port";
    *port = (int)v;
    end = e;
  }
  if (*end != '/' || end[1] == 0 || end[1] == '?' || end[1] == '/')
    return "the URL must name the application: ws://host:port/app";
  *app = end + 1;
  return NULL;
}

int gc_lua_l_connect(lua_State *L) {
  struct gc_lua_app *app = lua_touserdata(L, lua_upvalueindex(1));
  const char *url = luaL_checkstring(L, 1);
  luaL_checktype(L, 2, LUA_TTABLE);
  char host[256];
  int port, wss;
  const char *path;
  const char *bad = parse_url(url, host, sizeof host, &port, &path, &wss);
  if (bad)
    return luaL_error(L, "gc.connect(\"%s\"): %s", url, bad);
  if (app->api->workerId && app->api->workerId() != app->worker)
    return luaL_error(L, "gc.connect: only from the app's own worker (a handler)");
  struct gc_lua_link *k = lua_newuserdatauv(L, sizeof *k, 3);
  memset(k, 0, sizeof *k);
  k->app = app;
  k->ref = LUA_NOREF;
  k->state = L_DONE;
  luaL_setmetatable(L, GC_LUA_LINK_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, -2, UV_HANDLERS);
  lua_createtable(L, 0, 2);
  lua_pushstring(L, url);
  lua_setfield(L, -2, "url");
  lua_setiuservalue(L, -2, UV_FIELDS);
  lua_newtable(L);
  lua_setiuservalue(L, -2, UV_COOKIES);
  lua_pushvalue(L, -1);
  k->ref = luaL_ref(L, LUA_REGISTRYINDEX);
  k->magic = LINK_MAGIC;
  k->evq.drain = drain;
  k->next = app->link_head;
  if (app->link_head)
    app->link_head->prev = k;
  app->link_head = k;
  k->state = L_CONNECTING;
  /* s2sCreate's first argument names the caller for the host's records
   * only (gcs does not check it): the app id says more than the adapter's. */
  int rc = app->api->s2sCreate(app->app_id, (GCT_INTPTR)k,
                               wss ? GC_PROTOCOL_WSS : GC_PROTOCOL_WS, host,
                               port, (GCT_PTR)path, &link_events);
  if (rc) {
    release(k);
    luaL_pushfail(L);
    lua_pushstring(L, rc == ENOTSUP ? "wss links not available in this host" : strerror(rc));
    return 2;
  }
  return 1;
}

/* ---- methods ------------------------------------------------------------------ */

static struct gc_lua_link *check_link(lua_State *L) {
  return luaL_checkudata(L, 1, GC_LUA_LINK_MT);
}

static int closed(lua_State *L, const char *why) {
  luaL_pushfail(L);
  lua_pushstring(L, why);
  return 2;
}

static int link_send(lua_State *L) {
  struct gc_lua_link *k = check_link(L);
  size_t len;
  const char *data = luaL_checklstring(L, 2, &len);
  if (k->state != L_OPEN || !valid(k))
    return closed(L, k->state == L_CONNECTING ? "not connected yet" : "closed");
  lua_Integer cookie = 0;
  if (!lua_isnoneornil(L, 3)) {
    cookie = ++k->next_cookie;
    lua_getiuservalue(L, 1, UV_COOKIES);
    lua_pushvalue(L, 3);
    lua_rawseti(L, -2, cookie);
    lua_pop(L, 1);
  }
  k->app->api->s2sAddMessage(k->handle, (GCT_PTR)data, len, (GCT_INTPTR)cookie);
  lua_pushboolean(L, 1);
  return 1;
}

/* Only NORMAL (s2sDestroy): what was sent before goes out first. */
static int link_close(lua_State *L) {
  struct gc_lua_link *k = check_link(L);
  lua_Integer reason = luaL_optinteger(L, 2, GC_CLOSE_REASON_NORMAL);
  luaL_argcheck(L, reason == GC_CLOSE_REASON_NORMAL, 2,
                "a link closes with gc.CLOSE_NORMAL only");
  if (k->state == L_CONNECTING) {
    k->close_asked = 1;
    lua_pushboolean(L, 1);
    return 1;
  }
  if (k->state != L_OPEN)
    return closed(L, "closed");
  k->state = L_CLOSING;
  int rc = k->app->api->s2sDestroy(k->handle);
  if (rc)
    return closed(L, strerror(rc));
  lua_pushboolean(L, 1);
  return 1;
}

static int link_set_timer(lua_State *L) {
  struct gc_lua_link *k = check_link(L);
  lua_Integer ms = luaL_checkinteger(L, 2);
  if (k->state != L_OPEN)
    return closed(L, k->state == L_CONNECTING ? "not connected yet" : "closed");
  int rc = k->app->api->s2sSetTimer(k->handle, (GCT_INT)(ms > 0x7fffffff ? 0x7fffffff : ms));
  if (rc)
    return closed(L, strerror(rc));
  lua_pushboolean(L, 1);
  return 1;
}

static int link_is_open(lua_State *L) {
  lua_pushboolean(L, check_link(L)->state == L_OPEN);
  return 1;
}

static const luaL_Reg link_methods[] = {{"send", link_send},
                                        {"close", link_close},
                                        {"set_timer", link_set_timer},
                                        {"is_open", link_is_open},
                                        {NULL, NULL}};

/* Methods first, then the script's fields. */
static int link_index(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return 1;
  lua_getiuservalue(L, 1, UV_FIELDS);
  lua_pushvalue(L, 2);
  lua_rawget(L, -2);
  return 1;
}

static int link_newindex(lua_State *L) {
  lua_pushvalue(L, 2);
  if (lua_rawget(L, lua_upvalueindex(1)) != LUA_TNIL)
    return luaL_error(L, "link.%s is a method", lua_tostring(L, 2));
  lua_getiuservalue(L, 1, UV_FIELDS);
  lua_pushvalue(L, 2);
  lua_pushvalue(L, 3);
  lua_rawset(L, -3);
  return 0;
}

static int link_tostring(lua_State *L) {
  struct gc_lua_link *k = check_link(L);
  static const char *const names[] = {"connecting", "open", "closing", "closed"};
  lua_pushfstring(L, "gc.link (%s)", names[k->state]);
  return 1;
}

void gc_lua_link_open(lua_State *L) {
  luaL_newmetatable(L, GC_LUA_LINK_MT);
  luaL_newlib(L, link_methods);
  lua_pushvalue(L, -1);
  lua_pushcclosure(L, link_index, 1);
  lua_setfield(L, -3, "__index");
  lua_pushcclosure(L, link_newindex, 1);
  lua_setfield(L, -2, "__newindex");
  lua_pushcfunction(L, link_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, GC_LUA_LINK_MT);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}
