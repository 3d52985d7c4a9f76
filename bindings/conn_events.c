/* conn_events.c - the connection events after on_connect, and their order.
 *
 * Each event of a connection runs its handler in a coroutine (coro.c).
 * While one of them waits, the connection is 'busy': its later events
 * (messages, on_message_sent, on_timer, on_disconnect) are copied into
 * its queue (evq.c) and run after it, in order, when it ends
 * (gc_lua_conn_drain, called by coro.c after the resume's entry). The queue is bounded by
 * lua.max_pending_events: past it the connection is dropped. on_disconnect
 * marks the connection 'gone'; it is released when its handler (or the one
 * it waited behind) has ended. on_issue answers the host at once, so it
 * never waits in the queue. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

void gc_lua_conn_queue_free(struct gc_lua_conn *c) {
  gc_lua_evq_free(&c->evq);
}

void gc_lua_conn_queues_free(struct gc_lua_app *app) {
  for (struct gc_lua_conn *c = app->conn_head; c; c = c->next)
    gc_lua_conn_queue_free(c);
}

/* ---- the other connection events ------------------------------------------ */

static int valid(const struct gc_lua_conn *c) {
  return c && c->magic == GC_LUA_CONN_MAGIC && c->app->L && !c->app->closing;
}

/* 1 when the event must wait behind a handler of 'c' that waits (or be
 * dropped: refused, or the queue is full). */
static int must_queue(const struct gc_lua_conn *c) {
  return c->evq.busy || c->evq.head || c->refused;
}

/* Queues an event of a busy connection; past lua.max_pending_events the
 * connection is dropped (one NOTICE line) and later events are lost. */
static void enqueue(struct gc_lua_conn *c, int kind, const void *data,
                    size_t len, GCT_INTPTR cookie, GCT_INT status) {
  struct gc_lua_app *app = c->app;
  if (c->refused)
    return;
  int rc = gc_lua_evq_push(&c->evq, app->max_pending, kind, data, len, cookie,
                           status);
  if (rc == EAGAIN && c->open && !c->closing) {
    gc_lua_log(app, GCL_NOTICE,
               "connection %lld dropped: %zu events waiting behind a "
               "handler that waits (lua.max_pending_events)",
               (long long)c->id, c->evq.len);
    if (app->api->connectionClose(c->handle, GC_CLOSE_REASON_DROP) == 0)
      c->closing = 1;
  } else if (rc == ENOMEM) {
    gc_lua_log(app, GCL_ERR, "connection %lld: an event was lost (out of "
               "memory while its handler waits)", (long long)c->id);
  }
}

/* An event whose handler takes the connection alone. */
struct conn_ev {
  struct gc_lua_conn *c;
  const char *event;
};

static int do_conn_event(lua_State *L) {
  struct conn_ev *ev = lua_touserdata(L, 1);
  if (gc_lua_push_handler(L, ev->c->app, ev->event)) {
    gc_lua_conn_push(L, ev->c);
    struct gc_lua_run run = {&ev->c->evq, GC_LUA_RUN_PLAIN, ev->event};
    (void)gc_lua_co_call(L, ev->c->app, 1, &run);
  }
  return 0;
}

static void conn_event(struct gc_lua_conn *c, const char *event) {
  struct conn_ev ev = {c, event};
  (void)gc_lua_pcall(c->app, event, do_conn_event, &ev);
}

/* on_disconnect, then the connection is forgotten (when its handler ends,
 * if that waits: gc_lua_conn_drain). */
static void run_disconnect(struct gc_lua_conn *c) {
  c->gone = 1;
  conn_event(c, "on_disconnect");
  if (!c->evq.busy)
    gc_lua_conn_release(c);
}

void gc_lua_conn_disconnect(struct gc_lua_conn *c) {
  if (!valid(c))
    return;
  c->open = 0; /* from now on methods answer "closed" */
  if (c->refused) { /* refused after on_connect waited: no on_disconnect */
    gc_lua_conn_release(c);
    return;
  }
  if (must_queue(c)) {
    enqueue(c, GC_LUA_EV_DISCONNECT, NULL, 0, 0, 0);
    return;
  }
  run_disconnect(c);
}

struct message_ev {
  struct gc_lua_conn *c;
  const void *data;
  size_t len;
};

static int do_message(lua_State *L) {
  struct message_ev *ev = lua_touserdata(L, 1);
  if (gc_lua_push_handler(L, ev->c->app, "on_message")) {
    gc_lua_conn_push(L, ev->c);
    lua_pushlstring(L, ev->data, ev->len);
    struct gc_lua_run run = {&ev->c->evq, GC_LUA_RUN_PLAIN, "on_message"};
    (void)gc_lua_co_call(L, ev->c->app, 2, &run);
  }
  return 0;
}

static void run_message(struct gc_lua_conn *c, const void *data, size_t len) {
  struct message_ev ev = {c, data, len};
  if (gc_lua_pcall_message(c->app, c, ev.data, ev.len) == 0)
    return;
  (void)gc_lua_pcall(c->app, "on_message", do_message, &ev);
}

void gc_lua_conn_message(struct gc_lua_conn *c, const void *data, size_t len) {
  if (!valid(c))
    return;
  if (data == NULL)
    data = "", len = 0;
  if (must_queue(c))
    enqueue(c, GC_LUA_EV_MESSAGE, data, len, 0, 0);
  else
    run_message(c, data, len);
}

struct sent_ev {
  struct gc_lua_conn *c;
  GCT_INTPTR cookie;
  size_t len;
  GCT_INT status;
};

static int do_message_sent(lua_State *L) {
  struct sent_ev *ev = lua_touserdata(L, 1);
  gc_lua_conn_push(L, ev->c); /* 2 */
  lua_pushnil(L);             /* 3: the Lua cookie */
  if (ev->cookie != 0 && lua_getiuservalue(L, 2, GC_LUA_CONN_UV_COOKIES) == LUA_TTABLE) {
    lua_rawgeti(L, -1, (lua_Integer)ev->cookie);
    lua_replace(L, 3);
    lua_pushnil(L);
    lua_rawseti(L, -2, (lua_Integer)ev->cookie); /* released */
  }
  lua_settop(L, 3);
  if (gc_lua_push_handler(L, ev->c->app, "on_message_sent")) {
    lua_pushvalue(L, 2);
    lua_pushvalue(L, 3);
    lua_pushinteger(L, (lua_Integer)ev->len);
    lua_pushinteger(L, ev->status);
    struct gc_lua_run run = {&ev->c->evq, GC_LUA_RUN_PLAIN, "on_message_sent"};
    (void)gc_lua_co_call(L, ev->c->app, 4, &run);
  }
  return 0;
}

static void run_sent(struct gc_lua_conn *c, GCT_INTPTR cookie, size_t len,
                     GCT_INT status) {
  struct sent_ev ev = {c, cookie, len, status};
  (void)gc_lua_pcall(c->app, "on_message_sent", do_message_sent, &ev);
}

void gc_lua_conn_message_sent(struct gc_lua_conn *c, GCT_INTPTR cookie,
                              size_t len, GCT_INT status) {
  if (!valid(c))
    return;
  /* Most sends carry no cookie and most scripts have no on_message_sent:
   * then there is nothing to do in Lua, and entering it would cost the
   * echo path a second protected call per message. */
  if (cookie == 0 && !gc_lua_may_handle_sent(c->app))
    return;
  if (must_queue(c))
    enqueue(c, GC_LUA_EV_SENT, NULL, len, cookie, status);
  else
    run_sent(c, cookie, len, status);
}

void gc_lua_conn_timer(struct gc_lua_conn *c) {
  if (!valid(c))
    return;
  if (must_queue(c))
    enqueue(c, GC_LUA_EV_TIMER, NULL, 0, 0, 0);
  else
    conn_event(c, "on_timer");
}

void gc_lua_conn_drain(struct gc_lua_evq *q) {
  struct gc_lua_conn *c = gc_lua_container_of(q, struct gc_lua_conn, evq);
  while (c->magic == GC_LUA_CONN_MAGIC && !c->evq.busy) {
    struct gc_lua_pend *p = gc_lua_evq_pop(&c->evq);
    if (p == NULL) {
      if (c->gone) /* on_disconnect ended after waiting */
        gc_lua_conn_release(c);
      return;
    }
    if (!valid(c)) {
      free(p);
      return;
    }
    switch (p->kind) {
    case GC_LUA_EV_MESSAGE:
      run_message(c, p->data, p->len);
      break;
    case GC_LUA_EV_SENT:
      run_sent(c, p->cookie, p->len, p->status);
      break;
    case GC_LUA_EV_TIMER:
      conn_event(c, "on_timer");
      break;
    default:
      free(p);
      run_disconnect(c); /* may release c: the loop's test reads no Lua */
      continue;
    }
    free(p);
  }
}

struct issue_ev {
  struct gc_lua_conn *c;
  GCT_INT stat;
  GCT_COUNTER_VALUE value;
  GCT_INT reaction;
};

static int do_issue(lua_State *L) {
  static const char *const names[] = {"default", "close", "ignore", "count",
                                      NULL};
  struct issue_ev *ev = lua_touserdata(L, 1);
  if (!gc_lua_push_handler(L, ev->c->app, "on_issue"))
    return 0;
  gc_lua_conn_push(L, ev->c);
  lua_pushinteger(L, ev->stat);
  lua_pushinteger(L, (lua_Integer)ev->value);
  lua_call(L, 3, 1);
  if (lua_isinteger(L, -1)) {
    lua_Integer r = lua_tointeger(L, -1);
    if (r >= GC_STAT_REACTION_DEFAULT && r <= GC_STAT_REACTION_COUNT)
      ev->reaction = (GCT_INT)r;
  } else if (lua_type(L, -1) == LUA_TSTRING) {
    const char *s = lua_tostring(L, -1);
    for (int i = 0; names[i]; i++)
      if (strcmp(s, names[i]) == 0)
        ev->reaction = i;
  }
  return 0;
}

GCT_INT gc_lua_conn_issue(struct gc_lua_conn *c, GCT_INT stat,
                          GCT_COUNTER_VALUE value) {
  if (!valid(c))
    return GC_STAT_REACTION_DEFAULT;
  struct issue_ev ev = {c, stat, value, GC_STAT_REACTION_DEFAULT};
  (void)gc_lua_pcall(c->app, "on_issue", do_issue, &ev);
  return ev.reaction;
}
