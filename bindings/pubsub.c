/* pubsub.c - gc.publish and gc.subscribe: messages between the states of
 * one application (one per worker when it has a "route").
 *
 * A published message is copied once, into one malloc'ed block holding the
 * channel, the payload and one small record per receiving state, shared by
 * every delivery and counted with an atomic reference count: the last
 * delivery frees it. Each delivery is posted to its state's worker
 * (workerPost, even for the publisher's own), so a subscriber never runs
 * inside gc.publish, and deliveries posted by one thread to one worker
 * keep their order. gc_lua_pubsub_deliver is where any transport hands a
 * message to this process's states (gc.publish, or the host's Redis
 * through on_channel_message); it knows nothing of where the message came
 * from.
 *
 * With a "redis" in the host's config (channelPublish answers other than
 * ENOSYS), gc.publish does not deliver here at all: the message goes to
 * Redis, and every host, this one included, gets it back through
 * on_channel_message (adapter.c), so every state on every host sees one
 * channel's messages in the one order Redis took them in.
 *
 * In a state, the subscriptions are "gc.subscription" userdata, each
 * holding its function (user value 1) and channel (user value 2), listed
 * per channel in subscription order in the registry table
 * 'app->subs_ref'. A delivery calls each subscriber of its channel in its
 * own protected entry (its own time limit, its error logged alone); it
 * reaches the subscriptions made before the delivery began and not
 * cancelled by the time their turn comes. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

#define SUB_MT "gc.subscription"

struct sub_ud {
  struct gc_lua_app *app;
  lua_Integer id; /* order of subscription in the state, from 1 */
  int active;
};

struct pub_msg;

/* One delivery: what the posted callback gets. */
struct pub_target {
  struct pub_msg *msg;
  GCT_INT worker;
};

struct pub_msg {
  atomic_size_t refs;
  GCT_INT app_id;
  const char *channel, *data; /* in this block, after 'targets' */
  size_t chlen, len;
  struct pub_target targets[];
};

static void msg_release(struct pub_msg *m) {
  if (atomic_fetch_sub_explicit(&m->refs, 1, memory_order_acq_rel) == 1)
    free(m);
}

/* ---- delivery in a state ------------------------------------------------- */

struct deliver_ev {
  const char *event; /* for log lines */
  const char *channel, *data;
  size_t chlen, len;
  lua_Integer after; /* the last subscription called */
  lua_Integer last;  /* the newest one that may be called */
  int data_ref;      /* the payload as a Lua string, made once */
  int found;
};

/* Protected: calls the first subscriber of the channel after 'ev->after'. */
static int do_deliver_one(lua_State *L) {
  struct deliver_ev *ev = lua_touserdata(L, 1);
  struct gc_lua_app *app = gc_lua_app_of(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->subs_ref); /* 2 */
  lua_pushlstring(L, ev->channel, ev->chlen);
  if (lua_rawget(L, 2) != LUA_TTABLE) /* 3: the channel's list */
    return 0;
  lua_Integer lo = 1, hi = (lua_Integer)lua_rawlen(L, 3) + 1;
  while (lo < hi) { /* the first id > after: the list is in id order */
    lua_Integer mid = lo + (hi - lo) / 2;
    lua_rawgeti(L, 3, mid);
    const struct sub_ud *s = lua_touserdata(L, -1);
    lua_pop(L, 1);
    if (s->id <= ev->after)
      lo = mid + 1;
    else
      hi = mid;
  }
  if (lua_rawgeti(L, 3, lo) != LUA_TUSERDATA) /* 4 */
    return 0;
  const struct sub_ud *s = lua_touserdata(L, 4);
  if (s->id > ev->last || !s->active)
    return 0;
  ev->after = s->id;
  ev->found = 1;
  lua_getiuservalue(L, 4, 1);
  if (ev->data_ref == LUA_NOREF) {
    lua_pushlstring(L, ev->data, ev->len);
    ev->data_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, ev->data_ref);
  lua_pushlstring(L, ev->channel, ev->chlen);
  struct gc_lua_run run = {NULL, GC_LUA_RUN_PLAIN, ev->event};
  (void)gc_lua_co_call(L, gc_lua_app_of(L), 2, &run);
  return 0;
}

/* Runs each subscriber of 'channel' in 'app', each in its own entry. */
static void deliver_in(struct gc_lua_app *app, const char *channel,
                       size_t chlen, const char *data, size_t len) {
  char event[96];
  snprintf(event, sizeof event, "subscriber of '%.*s'",
           (int)(chlen > 48 ? 48 : chlen), channel);
  struct deliver_ev ev = {.event = event, .channel = channel, .data = data, .chlen = chlen,
                          .len = len, .last = app->next_sub_id,
                          .data_ref = LUA_NOREF};
  do {
    ev.found = 0;
    if (gc_lua_pcall(app, event, do_deliver_one, &ev) < 0)
      break; /* the state is closing */
  } while (ev.found);
  if (ev.data_ref != LUA_NOREF && app->L)
    luaL_unref(app->L, LUA_REGISTRYINDEX, ev.data_ref);
}

/* The posted callback, on the worker of the state it is for. */
static void delivered(GCT_INTPTR user) {
  struct pub_target *t = (struct pub_target *)user;
  struct pub_msg *m = t->msg;
  struct gc_lua_app *app = gc_lua_state_find(m->app_id, t->worker);
  if (app && app->L && !app->closing) /* else the state is gone: dropped */
    deliver_in(app, m->channel, m->chlen, m->data, m->len);
  msg_release(m);
}

int gc_lua_pubsub_deliver(const struct core_api *api, GCT_INT app_id,
                          const char *channel, size_t chlen, const void *data,
                          size_t len) {
  const struct gc_lua_group *g = gc_lua_group_find(app_id);
  if (g == NULL)
    return 0; /* no state of that app here */
  size_t n = 0;
  for (GCT_INT w = 0; w < g->nworkers; w++)
    n += g->states[w] != NULL;
  size_t head = sizeof(struct pub_msg) + n * sizeof(struct pub_target);
  if (chlen > SIZE_MAX - head - 2 || len > SIZE_MAX - head - 2 - chlen)
    return ENOMEM;
  struct pub_msg *m = malloc(head + chlen + len + 2);
  if (m == NULL)
    return ENOMEM;
  char *bytes = (char *)m + head;
  memcpy(bytes, channel, chlen);
  bytes[chlen] = '\0';
  if (len)
    memcpy(bytes + chlen + 1, data, len);
  bytes[chlen + 1 + len] = '\0';
  m->app_id = app_id;
  m->channel = bytes;
  m->chlen = chlen;
  m->data = bytes + chlen + 1;
  m->len = len;
  atomic_init(&m->refs, n + 1); /* one per delivery, one for this call */
  size_t i = 0, posted = 0;
  int err = 0;
  for (GCT_INT w = 0; w < g->nworkers; w++) {
    if (g->states[w] == NULL)
      continue;
    struct pub_target *t = &m->targets[i++];
    t->msg = m;
    t->worker = w;
    int rc = gc_lua_worker_post(api, app_id, w, delivered, (GCT_INTPTR)t);
    if (rc == 0) {
      posted++;
      continue;
    }
    msg_release(m); /* that delivery's share */
    if (err != ENOMEM)
      err = rc == ESHUTDOWN ? ESHUTDOWN : ENOMEM;
  }
  msg_release(m);
  if (err == ENOMEM || (posted == 0 && n > 0))
    return err;
  return 0; /* a stopped worker's state is gone: skipped quietly */
}

/* ---- the Lua side -------------------------------------------------------- */

/* gc.publish through the host (channelPublish, API 1.3): 0, or ENOSYS when
 * the host has no Redis (deliver in the process), or its error. */
static int publish_via_host(const struct gc_lua_app *app, const char *channel,
                            size_t chlen, const char *data, size_t len) {
  const struct core_api *api = app->api;
  if (api->channelPublish == NULL)
    return ENOSYS; /* a host before API 1.3 */
  if (memchr(channel, '\0', chlen)) {
    /* Not a C string: ENOSYS (checked first) says whether Redis is on. */
    int rc = api->channelPublish(app->app_id, NULL, NULL, 0);
    return rc == ENOSYS ? ENOSYS : EINVAL;
  }
  return api->channelPublish(app->app_id, channel, data, len);
}

/* gc.publish(channel, data) -> true | nil, errmsg: every state of this
 * application (this one included) gets 'data' in its subscribers of
 * 'channel', later; on every host sharing the config's "redis". */
int gc_lua_l_publish(lua_State *L) {
  struct gc_lua_app *app = lua_touserdata(L, lua_upvalueindex(1));
  size_t chlen, len;
  const char *channel = luaL_checklstring(L, 1, &chlen);
  const char *data = luaL_checklstring(L, 2, &len);
  int rc = publish_via_host(app, channel, chlen, data, len);
  if (rc == ENOSYS)
    rc = gc_lua_pubsub_deliver(app->api, app->app_id, channel, chlen, data,
                               len);
  switch (rc) {
  case 0:
    break;
  case ENOTCONN:
    lua_pushnil(L);
    lua_pushliteral(L, "redis unavailable");
    return 2;
  case EAGAIN:
    lua_pushnil(L);
    lua_pushliteral(L, "redis is not keeping up");
    return 2;
  case EINVAL:
    lua_pushnil(L);
    lua_pushliteral(L, "bad channel name (through redis: at most 1024 bytes, "
                       "no NUL)");
    return 2;
  default:
    return gc_lua_push_error(L, rc);
  }
  lua_pushboolean(L, 1);
  return 1;
}

/* gc.subscribe(channel, fn) -> subscription: fn(data, channel) for each
 * message published on 'channel' from now on, until sub:cancel(). The
 * state keeps the subscription: dropping the object does not cancel it. */
int gc_lua_l_subscribe(lua_State *L) {
  struct gc_lua_app *app = lua_touserdata(L, lua_upvalueindex(1));
  luaL_checkstring(L, 1); /* a number becomes a string in place */
  luaL_checktype(L, 2, LUA_TFUNCTION);
  lua_settop(L, 2);
  struct sub_ud *s = lua_newuserdatauv(L, sizeof *s, 2); /* 3 */
  s->app = app;
  s->id = 0;
  s->active = 0; /* until it is listed */
  luaL_setmetatable(L, SUB_MT);
  lua_pushvalue(L, 2);
  lua_setiuservalue(L, 3, 1);
  lua_pushvalue(L, 1);
  lua_setiuservalue(L, 3, 2);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->subs_ref); /* 4 */
  lua_pushvalue(L, 1);
  if (lua_rawget(L, 4) != LUA_TTABLE) { /* 5: the channel's list */
    lua_pop(L, 1);
    lua_newtable(L);
    lua_pushvalue(L, 1);
    lua_pushvalue(L, 5);
    lua_rawset(L, 4);
  }
  s->id = app->next_sub_id + 1; /* the list stays in id order */
  lua_pushvalue(L, 3);
  lua_rawseti(L, 5, (lua_Integer)lua_rawlen(L, 5) + 1);
  app->next_sub_id = s->id;
  s->active = 1;
  lua_settop(L, 3);
  return 1;
}

/* sub:cancel() -> true if it was active: nothing published after this
 * returns reaches it (nor what is still on its way). */
static int sub_cancel(lua_State *L) {
  struct sub_ud *s = luaL_checkudata(L, 1, SUB_MT);
  if (!s->active) {
    lua_pushboolean(L, 0);
    return 1;
  }
  s->active = 0;
  lua_settop(L, 1);
  lua_rawgeti(L, LUA_REGISTRYINDEX, s->app->subs_ref); /* 2 */
  lua_getiuservalue(L, 1, 2);                          /* 3: channel */
  lua_pushvalue(L, 3);
  if (lua_rawget(L, 2) == LUA_TTABLE) { /* 4; no allocation from here on */
    lua_Integer n = (lua_Integer)lua_rawlen(L, 4), at = 0;
    for (lua_Integer i = 1; i <= n && at == 0; i++) {
      lua_rawgeti(L, 4, i);
      if (lua_touserdata(L, -1) == s)
        at = i;
      lua_pop(L, 1);
    }
    if (at > 0) {
      for (lua_Integer i = at; i < n; i++) { /* keep the order */
        lua_rawgeti(L, 4, i + 1);
        lua_rawseti(L, 4, i);
      }
      lua_pushnil(L);
      lua_rawseti(L, 4, n);
      if (n == 1) { /* the channel has no subscriber left */
        lua_pushvalue(L, 3);
        lua_pushnil(L);
        lua_rawset(L, 2);
      }
    }
  }
  lua_pushboolean(L, 1);
  return 1;
}

static int sub_is_active(lua_State *L) {
  struct sub_ud *s = luaL_checkudata(L, 1, SUB_MT);
  lua_pushboolean(L, s->active);
  return 1;
}

static int sub_tostring(lua_State *L) {
  struct sub_ud *s = luaL_checkudata(L, 1, SUB_MT);
  lua_getiuservalue(L, 1, 2);
  lua_pushfstring(L, "gc.subscription '%s'%s", lua_tostring(L, -1),
                  s->active ? "" : " (cancelled)");
  return 1;
}

static const luaL_Reg sub_methods[] = {{"cancel", sub_cancel},
                                       {"is_active", sub_is_active},
                                       {NULL, NULL}};

void gc_lua_pubsub_open(lua_State *L, struct gc_lua_app *app) {
  luaL_newmetatable(L, SUB_MT);
  luaL_newlib(L, sub_methods);
  lua_setfield(L, -2, "__index");
  lua_pushcfunction(L, sub_tostring);
  lua_setfield(L, -2, "__tostring");
  lua_pushliteral(L, SUB_MT);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
  lua_newtable(L);
  app->subs_ref = luaL_ref(L, LUA_REGISTRYINDEX);
}
