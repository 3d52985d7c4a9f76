/* coro.c - every handler runs in a coroutine, so it may wait.
 *
 * A handler is resumed in a coroutine of its state instead of being
 * called: when it calls a waiting function (gc.sleep, gc.redis.call,
 * gc.http.request) that function starts the host's operation and yields;
 * the loop goes on with other events, and the host's answer resumes the
 * coroutine (gc_lua_wake), inside an entry of its own: the CPU-time limit
 * and the instruction budget count each run between two waits, never
 * the wait (the watchdog is disarmed between entries).
 *
 * Handlers that never wait must cost what a call costs. So coroutines
 * are pooled: 'co_idle' is a finished coroutine with an empty stack,
 * ready to take the next handler (Lua lets a coroutine that returned be
 * started again with a new function), anchored by one registry slot; the
 * hot path (call.c's on_message) takes it and gives it back without a
 * table access. A coroutine that waits is anchored by its wait record
 * instead; when it ends it goes back to the slot or to a small pool. One
 * that raised is dropped (Lua leaves a thread that died of an error
 * unusable for hooks), and so is one that yielded without a wait
 * (coroutine.yield in a handler: an error, it has no resumer).
 *
 * A wait record is a "gc.wait" userdata in the state's table of waits
 * under a serial; the host knows only 'serial << GC_LUA_KEY_BITS | the
 * state's key' (as timers, gc_module.c), so a late answer for a closed
 * state or a forgotten wait does nothing. Its user value is the
 * coroutine. It remembers what the handler was for (gc_lua_run): the
 * connection whose later events queue behind it (conn.c), and on_connect,
 * whose answer is only known when it ends. */
#include <errno.h>
#include <math.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

#define POOL_MAX 128 /* idle coroutines kept besides 'co_idle' */
#define WAIT_MT "gc.wait"
#define SERIAL_MAX (INTPTR_MAX >> GC_LUA_KEY_BITS)

/* ---- running a handler ------------------------------------------------------ */

/* Runs 'co' as the handler of 'run'; '*made': it yielded in a waiting
 * function (not a bare coroutine.yield, nor a nested handler's wait). */
static int resume(lua_State *L, struct gc_lua_app *app, lua_State *co,
                  int nargs, const struct gc_lua_run *run, int *nres,
                  int *made) {
  const struct gc_lua_run *prun = app->run;
  lua_State *pco = app->run_co;
  int pmade = app->wait_made;
  app->run = run;
  app->run_co = co;
  app->wait_made = 0;
  if (app->budget > 0) /* a pooled coroutine has the hooks of its birth */
    lua_sethook(co, gc_lua_budget_hook, LUA_MASKCOUNT, app->hook_count);
  gc_lua_watchdog_into(app, co);
  int st = lua_resume(co, L, nargs, nres);
  gc_lua_watchdog_back(app, L);
  *made = app->wait_made;
  app->wait_made = pmade;
  app->run = prun;
  app->run_co = pco;
  return st;
}

struct tb_ctx {
  struct gc_lua_app *app;
  lua_State *co;
  int st;
  const char *event;
};

/* Protected: the error on top of 'co' with the coroutine's traceback. */
static int log_tb(lua_State *L) {
  struct tb_ctx *t = lua_touserdata(L, 1);
  const char *msg = NULL;
  if (t->st != LUA_ERRMEM) {
    lua_pushvalue(t->co, -1);
    lua_xmove(t->co, L, 1); /* the error object, as call.c's msgh sees it */
    msg = lua_tostring(L, -1);
    if (msg == NULL) {
      int obj = lua_gettop(L);
      if (luaL_callmeta(L, obj, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
        msg = lua_tostring(L, -1);
      else
        msg = lua_pushfstring(L, "(error object is a %s value)",
                              luaL_typename(L, obj));
    }
    luaL_traceback(L, t->co, msg, 0);
    msg = lua_tostring(L, -1);
  }
  gc_lua_log_failure(t->app, t->event, t->st, msg);
  return 0;
}

static void log_error(lua_State *L, struct gc_lua_app *app, lua_State *co,
                      int st, const char *event) {
  struct tb_ctx t = {app, co, st, event};
  int top = lua_gettop(L);
  if (!lua_checkstack(L, 4)) {
    gc_lua_log_failure(app, event, st, lua_tostring(co, -1));
    return;
  }
  lua_pushcfunction(L, log_tb);
  lua_pushlightuserdata(L, &t);
  if (lua_pcall(L, 1, 0, 0) != LUA_OK) /* out of memory: no traceback */
    gc_lua_log_failure(app, event, st,
                       st == LUA_ERRMEM ? NULL : lua_tostring(co, -1));
  lua_settop(L, top);
}

/* Back to the slot or the pool; only the slot's own when '!can_alloc'. */
static void recycle(lua_State *L, struct gc_lua_app *app, lua_State *co,
                    int from_slot) {
  lua_settop(co, 0);
  if (from_slot) {
    app->co_idle = co;
    app->co_slot_busy = 0;
    return;
  }
  if (app->co_idle == NULL && !app->co_slot_busy) {
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_rawseti(L, LUA_REGISTRYINDEX, app->co_slot_ref);
    app->co_idle = co;
  } else if (app->co_pool_n < POOL_MAX) {
    lua_rawgeti(L, LUA_REGISTRYINDEX, app->co_pool_ref);
    lua_pushthread(co);
    lua_xmove(co, L, 1);
    lua_rawseti(L, -2, ++app->co_pool_n);
    lua_pop(L, 1);
  }
}

/* After lua_resume of 'co' answered 'st'. See gc_lua_co_call. */
static int finish(lua_State *L, struct gc_lua_app *app, lua_State *co, int st,
                  int nres, int made, const struct gc_lua_run *run,
                  int from_slot, int protected) {
  if (st == LUA_OK) {
    if (!protected || !lua_checkstack(L, nres + 2))
      nres = 0;
    lua_xmove(co, L, nres);
    if (protected || from_slot)
      recycle(L, app, co, from_slot);
    return nres;
  }
  if (from_slot)
    app->co_slot_busy = 0; /* the slot's coroutine is not the idle one now */
  if (st == LUA_YIELD && made) {
    if (run->q)
      run->q->busy = 1;
    return -1;
  }
  if (st == LUA_YIELD) {
    lua_pushliteral(co, "attempt to yield from outside a coroutine (a "
                        "handler waits only in gc.sleep, gc.redis.call, "
                        "gc.http.request)");
    st = LUA_ERRRUN;
  }
  log_error(L, app, co, st, run->event);
  /* Its to-be-closed variables, as a pcall would close them; not after a
   * stop, whose thread runs with hooks off (watchdog.c). */
  if (!gc_lua_stopped(app))
    (void)lua_resetthread(co);
  return -2;
}

int gc_lua_co_call(lua_State *L, struct gc_lua_app *app, int nargs,
                   const struct gc_lua_run *run) {
  lua_State *co;
  int from_slot = 0;
  if (app->co_idle && !app->co_slot_busy) {
    co = app->co_idle;
    app->co_idle = NULL;
    app->co_slot_busy = from_slot = 1;
  } else {
    if (app->co_pool_n > 0) {
      lua_rawgeti(L, LUA_REGISTRYINDEX, app->co_pool_ref);
      lua_rawgeti(L, -1, app->co_pool_n);
      lua_pushnil(L);
      lua_rawseti(L, -3, app->co_pool_n--);
      lua_remove(L, -2);
      co = lua_tothread(L, -1);
    } else {
      co = lua_newthread(L);
    }
    lua_insert(L, -(nargs + 2)); /* anchored below while it runs */
  }
  lua_xmove(L, co, nargs + 1);
  int nres = 0, made = 0;
  int st = resume(L, app, co, nargs, run, &nres, &made);
  int r = finish(L, app, co, st, nres, made, run, from_slot, 1);
  if (!from_slot)
    lua_remove(L, -(r > 0 ? r : 0) - 1);
  return r;
}

int gc_lua_co_ready(const struct gc_lua_app *app) {
  return app->co_idle != NULL && !app->co_slot_busy;
}

void gc_lua_co_call_hot(lua_State *L, struct gc_lua_app *app, int nargs,
                        const struct gc_lua_run *run) {
  lua_State *co = app->co_idle; /* holds the function and its arguments */
  app->co_idle = NULL;
  app->co_slot_busy = 1;
  /* resume(), inline: this is every message's path. */
  const struct gc_lua_run *prun = app->run;
  lua_State *pco = app->run_co;
  int pmade = app->wait_made;
  app->run = run;
  app->run_co = co;
  app->wait_made = 0;
  if (app->budget > 0)
    lua_sethook(co, gc_lua_budget_hook, LUA_MASKCOUNT, app->hook_count);
  /* The watchdog's running thread is 'co' since the entry began (call.c),
   * and L runs no Lua after it in this entry: no switch to record. */
  int nres = 0;
  int st = lua_resume(co, L, nargs, &nres);
  int made = app->wait_made;
  app->wait_made = pmade;
  app->run = prun;
  app->run_co = pco;
  if (st == LUA_OK) { /* the common case: back to the slot */
    if (nres)
      lua_settop(co, 0);
    app->co_idle = co;
    app->co_slot_busy = 0;
    return;
  }
  (void)finish(L, app, co, st, nres, made, run, 1, 0);
}

/* ---- waits ------------------------------------------------------------------ */

/* 0: L may wait; 1: no handler runs L; 2: a resumer cannot yield. */
static int may_wait(const struct gc_lua_app *app, lua_State *L) {
  if (app->run_co == NULL)
    return 1;
  lua_State *want = L;
  for (const struct gc_lua_chain *c = app->chain; want != app->run_co; c = c->up) {
    if (c == NULL || c->to != want)
      return 1;
    if (!lua_isyieldable(c->from))
      return 2;
    want = c->from;
  }
  return 0;
}

void gc_lua_wait_rehome(lua_State *L, struct gc_lua_app *app) {
  if (!lua_checkstack(L, 3))
    return; /* cannot be: the caller's frame has room */
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->waits_ref);
  if (lua_rawgeti(L, -1, (lua_Integer)app->last_wait_serial) == LUA_TUSERDATA) {
    lua_pushthread(L);
    lua_setiuservalue(L, -2, 1);
  }
  lua_pop(L, 2);
}

struct gc_lua_wait *gc_lua_wait_begin(lua_State *L, struct gc_lua_app *app,
                                      const char *fname, int io) {
  int why = may_wait(app, L);
  if (why == 2)
    luaL_error(L,
               "%s: cannot wait here: a coroutine.resume on the way is "
               "called from C (a metamethod, a callback of table.sort...)",
               fname);
  if (why == 1) {
    if (app->run_co == NULL)
      luaL_error(L,
                 "%s: cannot wait outside a handler (the script's top level, "
                 "application_initialize, application_stop and "
                 "application_shutdown do not wait)",
                 fname);
    luaL_error(L,
               "%s: cannot wait inside this coroutine (not resumed from "
               "the handler's code by coroutine.resume or coroutine.wrap)",
               fname);
  }
  if (!lua_isyieldable(L))
    luaL_error(L,
               "%s: cannot wait across a C call (a metamethod, a callback "
               "of table.sort or gc.broadcast, a __gc...)",
               fname);
  const struct gc_lua_run *run = app->run;
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->waits_ref);
  GCT_INTPTR serial;
  for (;;) { /* a free serial */
    serial = app->next_wait_serial;
    app->next_wait_serial = serial >= SERIAL_MAX ? 1 : serial + 1;
    int used = lua_rawgeti(L, -1, (lua_Integer)serial) != LUA_TNIL;
    lua_pop(L, 1);
    if (!used)
      break;
  }
  struct gc_lua_wait *w = lua_newuserdatauv(L, sizeof *w, 1);
  memset(w, 0, sizeof *w);
  luaL_setmetatable(L, WAIT_MT);
  w->app = app;
  w->q = run->q;
  w->kind = run->kind;
  w->io = io;
  w->serial = serial;
  snprintf(w->event, sizeof w->event, "%s", run->event ? run->event : "?");
  lua_pushthread(L);
  lua_setiuservalue(L, -2, 1);
  lua_pushvalue(L, -1);
  lua_rawseti(L, -3, (lua_Integer)serial); /* may raise: nothing started */
  lua_remove(L, -2);
  return w; /* on top of L */
}

GCT_INTPTR gc_lua_wait_user(const struct gc_lua_wait *w) {
  return (w->serial << GC_LUA_KEY_BITS) | gc_lua_state_key(w->app);
}

void gc_lua_wait_cancel(lua_State *L, struct gc_lua_wait *w) {
  lua_rawgeti(L, LUA_REGISTRYINDEX, w->app->waits_ref);
  lua_pushnil(L);
  lua_rawseti(L, -2, (lua_Integer)w->serial);
  lua_pop(L, 1);
}

int gc_lua_wait_yield(lua_State *L, struct gc_lua_wait *w) {
  struct gc_lua_app *app = w->app;
  app->wait_made = 1;
  app->waiting++;
  if (w->io)
    app->io_waiting++;
  w->armed = 1;
  app->last_wait_serial = w->serial;
  return lua_yield(L, 0);
}

struct wake_ev {
  GCT_INTPTR serial;
  gc_lua_wake_push push;
  void *ud;
  struct gc_lua_evq *drain;
};

static int do_wake(lua_State *L) {
  struct wake_ev *ev = lua_touserdata(L, 1);
  struct gc_lua_app *app = gc_lua_app_of(L);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->waits_ref); /* 2 */
  if (lua_rawgeti(L, 2, (lua_Integer)ev->serial) != LUA_TUSERDATA)
    return 0; /* forgotten (the state is closing) */
  struct gc_lua_wait *w = lua_touserdata(L, 3);
  lua_getiuservalue(L, 3, 1); /* 4 */
  lua_State *co = lua_tothread(L, 4);
  int base = lua_gettop(L);
  int n = ev->push ? ev->push(L, ev->ud) : 0; /* may raise: kept waiting */
  lua_pushnil(L);
  lua_rawseti(L, 2, (lua_Integer)ev->serial);
  w->armed = 0;
  app->waiting--;
  if (w->io)
    app->io_waiting--;
  struct gc_lua_run run = {w->q, w->kind, w->event};
  if (!lua_checkstack(co, n + 1)) { /* its answer cannot reach it */
    lua_settop(L, base);
    n = 0;
  }
  lua_xmove(L, co, n);
  int nres = 0, made = 0;
  int st = resume(L, app, co, n, &run, &nres, &made);
  int r = finish(L, app, co, st, nres, made, &run, 0, 1);
  if (r == -1)
    return 0; /* waits again */
  if (run.kind == GC_LUA_RUN_CONNECT && run.q)
    gc_lua_conn_connect_done(
        L, gc_lua_container_of(run.q, struct gc_lua_conn, evq), r);
  lua_settop(L, base);
  if (run.q) {
    run.q->busy = 0;
    ev->drain = run.q;
  }
  return 0;
}

void gc_lua_wake(GCT_INTPTR user, gc_lua_wake_push push, void *ud) {
  struct gc_lua_app *app = gc_lua_state_by_key(user);
  if (app == NULL || app->L == NULL || app->closing)
    return;
  struct wake_ev ev = {user >> GC_LUA_KEY_BITS, push, ud, NULL};
  (void)gc_lua_pcall(app, "resume", do_wake, &ev);
  if (ev.drain && ev.drain->drain) /* after the entry: each has its own */
    ev.drain->drain(ev.drain);
}

void gc_lua_waits_stop_all(struct gc_lua_app *app) {
  lua_State *L = app->L;
  if (L == NULL || app->waits_ref == LUA_NOREF || !lua_checkstack(L, 3))
    return;
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->waits_ref);
  lua_pushnil(L);
  while (lua_next(L, -2)) {
    struct gc_lua_wait *w = lua_touserdata(L, -1);
    if (w && w->armed && w->stop)
      w->stop(w);
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
  app->waiting = app->io_waiting = 0;
}

/* ---- gc.sleep ----------------------------------------------------------------- */

static void sleep_fired(GCT_INTPTR user) { gc_lua_wake(user, NULL, NULL); }

static void sleep_stop(struct gc_lua_wait *w) {
  if (w->app->api->timerStop)
    (void)w->app->api->timerStop(w->host_id);
}

/* gc.sleep(ms): the handler waits 'ms' milliseconds (>= 0; 0 lets every
 * event that is ready run first), on the host's timers (gc.testing's
 * virtual time). */
static int l_sleep(lua_State *L) {
  struct gc_lua_app *app = lua_touserdata(L, lua_upvalueindex(1));
  lua_Number ms = luaL_checknumber(L, 1);
  luaL_argcheck(L, ms >= 0 && ms <= INT32_MAX, 1, "must be 0 to 2^31-1 ms");
  if (app->api->timerStart == NULL)
    return luaL_error(L, "gc.sleep: this host has no timers");
  struct gc_lua_wait *w = gc_lua_wait_begin(L, app, "gc.sleep", 0);
  if (ms <= 0 && app->api->workerPost) {
    /* The next turn: posted to this worker, without a timer's 1 ms grain. */
    if (app->api->workerPost(app->worker, sleep_fired, gc_lua_wait_user(w)) == 0)
      return gc_lua_wait_yield(L, w);
  }
  GCT_INTPTR id = app->api->timerStart(app->app_id, (GCT_INT)ceil(ms), 0,
                                       sleep_fired, gc_lua_wait_user(w));
  if (id == 0) {
    gc_lua_wait_cancel(L, w);
    return luaL_error(L, "gc.sleep: cannot start a timer");
  }
  w->host_id = id;
  w->stop = sleep_stop;
  return gc_lua_wait_yield(L, w);
}

/* ---- set-up ------------------------------------------------------------------- */

/* coroutine.isyieldable([co]): false in a handler's own coroutine, as
 * before handlers were coroutines (a handler yields only by waiting). */
static int co_isyieldable(lua_State *L) {
  lua_State *co = lua_isnone(L, 1) ? L : lua_tothread(L, 1);
  luaL_argexpected(L, co != NULL, 1, "thread");
  lua_pushboolean(L, lua_isyieldable(co) && co != gc_lua_app_of(L)->run_co);
  return 1;
}

void gc_lua_coro_open(lua_State *L, struct gc_lua_app *app) {
  if (lua_getglobal(L, "coroutine") == LUA_TTABLE) {
    lua_pushcfunction(L, co_isyieldable);
    lua_setfield(L, -2, "isyieldable");
  }
  lua_pop(L, 1);
  lua_newtable(L);
  app->waits_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_newtable(L);
  app->co_pool_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  app->co_pool_n = 0;
  app->co_idle = lua_newthread(L);
  app->co_slot_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  app->co_slot_busy = 0;
  app->next_wait_serial = 1;
  luaL_newmetatable(L, WAIT_MT);
  lua_pushliteral(L, WAIT_MT);
  lua_setfield(L, -2, "__metatable");
  lua_pop(L, 1);
}

void gc_lua_waits_module(lua_State *L, struct gc_lua_app *app) {
  lua_pushlightuserdata(L, app);
  lua_pushcclosure(L, l_sleep, 1);
  lua_setfield(L, -2, "sleep");
  gc_lua_redis_module(L, app);
  gc_lua_http_module(L, app);
  gc_lua_json_module(L);
}
