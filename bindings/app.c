/* app.c - the life of one application state: made, loaded, driven through
 * its lifecycle handlers, collected when it goes quiet, closed.
 *
 * The way into the state is call.c's gc_lua_pcall; what bounds it (memory,
 * instructions, time) is limits.c's. */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "gc_lua.h"

#define MEM_WARN_FIRST (64u << 20) /* first memory warning, then doubling */

/* ---- life of an application ----------------------------------------------- */

static char *dup_str(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}

struct gc_lua_app *gc_lua_app_new(const struct core_api *api, GCT_INT app_id,
                                  const char *name, const char *script,
                                  const struct gc_lua_limits *lim) {
  struct gc_lua_app *app = calloc(1, sizeof *app);
  if (app == NULL)
    return NULL;
  app->api = api;
  app->app_id = app_id;
  app->mem_counter = -1;
  app->name = dup_str(name ? name : "lua");
  app->script = dup_str(script);
  app->extra_path = lim->path && *lim->path ? dup_str(lim->path) : NULL;
  if (!app->name || !app->script || (lim->path && *lim->path && !app->extra_path)) {
    gc_lua_app_free(app);
    return NULL;
  }
  if (api->counterCreate) { /* only in application_initialize */
    char cname[200];
    snprintf(cname, sizeof cname, "lua.%s.memory", app->name);
    app->mem_counter = api->counterCreate(cname);
    if (app->mem_counter < 0)
      gc_lua_log(app, GCL_INFO, "no counter %s: memory not published", cname);
  }
  app->handlers_ref = LUA_NOREF;
  app->sent_name_ref = LUA_NOREF;
  app->msg_name_ref = LUA_NOREF;
  app->timers_ref = LUA_NOREF;
  app->subs_ref = LUA_NOREF;
  app->waits_ref = app->co_slot_ref = app->co_pool_ref = LUA_NOREF;
  app->max_pending = lim->max_pending_events > SIZE_MAX
                         ? SIZE_MAX
                         : (size_t)lim->max_pending_events;
  app->next_timer_serial = 1;
  app->worker_count = 1;
  app->time_limit_ms = lim->time_limit_ms;
  app->unsafe = lim->unsafe;
  app->message_text = lim->message_text;
  gc_lua_set_budget(app, lim->instruction_budget);
  app->mem_limit = lim->memory_limit > SIZE_MAX ? SIZE_MAX
                                                : (size_t)lim->memory_limit;
  app->mem_warn_at = MEM_WARN_FIRST;
  if (app->mem_limit && app->mem_limit / 2 < app->mem_warn_at)
    app->mem_warn_at = app->mem_limit / 2 > 0 ? app->mem_limit / 2 : 1;
  return app;
}

/* Prepends the script's folder (then "lua.path" of the config) to
 * package.path and package.cpath, so 'require' finds the script's sibling
 * modules first and the installed (Debian) modules after. */
static void set_paths(lua_State *L, const struct gc_lua_app *app) {
  const char *script = app->script;
  const char *slash = strrchr(script, '/');
  if (slash)
    lua_pushlstring(L, script, (size_t)(slash - script) + 1);
  else
    lua_pushliteral(L, "./");
  int dir = lua_gettop(L);
  const char *extra = app->extra_path;
  if (extra == NULL)
    lua_pushliteral(L, "");
  else if (strchr(extra, '?'))
    lua_pushfstring(L, "%s;", extra);
  else
    lua_pushfstring(L, "%s/?.lua;%s/?/init.lua;", extra, extra);
  int more = lua_gettop(L);
  lua_getglobal(L, "package");
  lua_getfield(L, -1, "path");
  lua_pushfstring(L, "%s?.lua;%s?/init.lua;%s%s", lua_tostring(L, dir),
                  lua_tostring(L, dir), lua_tostring(L, more),
                  lua_tostring(L, -1));
  lua_setfield(L, -3, "path");
  lua_pop(L, 1);
  lua_getfield(L, -1, "cpath");
  lua_pushfstring(L, "%s?.so;%s", lua_tostring(L, dir), lua_tostring(L, -1));
  lua_setfield(L, -3, "cpath");
  lua_pop(L, 4);
}

/* Protected: the libraries, the gc module and the metatables. */
static int do_setup(lua_State *L) {
  struct gc_lua_app *app = lua_touserdata(L, 1);
  luaL_checkversion(L);
  luaL_openlibs(L);
  gc_lua_sandbox_open(L, app);
  gc_lua_loaders_open(L);
  gc_lua_guards_open(L, app);
  gc_lua_watchdog_open(L); /* also what lets a script's coroutine wait */
  set_paths(L, app);
  gc_lua_conn_open(L);
  gc_lua_module_open(L, app);
  gc_lua_pubsub_open(L, app);
  gc_lua_coro_open(L, app);
  lua_newtable(L);
  app->timers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  const char *agc = getenv("GC_TESTING_AGGRESSIVE_GC");
  if (agc && *agc && strcmp(agc, "0") != 0)
    lua_gc(L, LUA_GCINC, 1, 100, 0); /* tests: collect all the time */
  return 0;
}

struct load_ev {
  struct gc_lua_app *app;
  int load_status; /* of luaL_loadfilex */
  int refused;     /* application_initialize returned false */
  char msg[512];
};

/* Protected: compiles and runs the script, keeps the handler table, then
 * calls its application_initialize. A compile error is not raised (no
 * traceback wanted): it is copied into 'ev->msg'. */
static int do_load(lua_State *L) {
  struct load_ev *ev = lua_touserdata(L, 1);
  struct gc_lua_app *app = ev->app;
  gc_lua_modules_before(L, app);
  ev->load_status = luaL_loadfilex(L, app->script, "t");
  if (ev->load_status != LUA_OK) {
    snprintf(ev->msg, sizeof ev->msg, "%s", lua_tostring(L, -1));
    return 0;
  }
  lua_call(L, 0, 1);
  gc_lua_modules_after(L, app);
  if (!lua_istable(L, -1))
    return luaL_error(L, "%s must return a table of handlers (it returned %s)",
                      app->script, luaL_typename(L, -1));
  gc_lua_handlers_check(L, app, -1);
  app->handlers_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushliteral(L, "on_message_sent"); /* anchored: see gc_lua_may_handle_sent */
  app->sent_name_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  lua_pushliteral(L, "on_message"); /* anchored: see gc_lua_pcall_message */
  app->msg_name_ref = luaL_ref(L, LUA_REGISTRYINDEX);
  if (gc_lua_push_handler(L, app, "application_initialize")) {
    lua_call(L, 0, 1);
    ev->refused = lua_isboolean(L, -1) && !lua_toboolean(L, -1);
  }
  return 0;
}

int gc_lua_app_load(struct gc_lua_app *app) {
  if (app->L)
    return EINVAL;
  lua_State *L = lua_newstate(gc_lua_alloc, app);
  if (L == NULL) {
    gc_lua_log(app, GCL_ERR, "cannot create a Lua state: not enough memory");
    return ENOMEM;
  }
  app->L = L;
  memcpy(lua_getextraspace(L), &app, sizeof app);
  lua_atpanic(L, gc_lua_on_panic);
  lua_setwarnf(L, gc_lua_warnf, app);
  if (app->time_limit_ms > 0) {
    int err = gc_lua_watchdog_start(app);
    if (err != 0 && app->budget == 0) {
      gc_lua_log(app, GCL_WARN,
                 "no CPU-time watchdog (%s): counting %d instructions per "
                 "call instead",
                 strerror(err), GC_LUA_FALLBACK_BUDGET);
      gc_lua_set_budget(app, GC_LUA_FALLBACK_BUDGET);
    } else if (err != 0) {
      gc_lua_log(app, GCL_WARN, "no CPU-time watchdog (%s): only the "
                 "instruction budget applies", strerror(err));
    }
  }
  int st = gc_lua_pcall(app, "setup", do_setup, app);
  if (st != LUA_OK)
    return st == LUA_ERRMEM ? ENOMEM : EINVAL;
  struct load_ev ev = {.app = app};
  st = gc_lua_pcall(app, "load", do_load, &ev);
  if (st != LUA_OK)
    return st == LUA_ERRMEM ? ENOMEM : ECANCELED;
  if (ev.load_status == LUA_ERRFILE) {
    gc_lua_log_error(app, "%s", ev.msg);
    return ENOENT;
  }
  if (ev.load_status != LUA_OK) {
    gc_lua_log_error(app, "cannot load script: %s", ev.msg);
    return ev.load_status == LUA_ERRMEM ? ENOMEM : EINVAL;
  }
  if (ev.refused) {
    gc_lua_log_error(app, "application_initialize returned false");
    return ECANCELED;
  }
  gc_lua_log(app, GCL_INFO, "loaded %s (%s, %zu KiB)", app->script, LUA_RELEASE,
             app->mem_used >> 10);
  gc_lua_mem_publish(app, app->mem_used); /* the first figure, before any step */
  return 0;
}

static int do_event(lua_State *L) {
  const char *event = lua_touserdata(L, 1);
  struct gc_lua_app *app = gc_lua_app_of(L);
  if (!gc_lua_push_handler(L, app, event))
    return 0;
  if (strcmp(event, "application_start") == 0) { /* it may wait */
    struct gc_lua_run run = {NULL, GC_LUA_RUN_PLAIN, event};
    (void)gc_lua_co_call(L, app, 0, &run);
  } else {
    lua_call(L, 0, 0);
  }
  return 0;
}

void gc_lua_app_event(struct gc_lua_app *app, const char *event) {
  (void)gc_lua_pcall(app, event, do_event, (void *)(uintptr_t)event);
}

/* ---- the quiet collection ---------------------------------------------- */

/* When many connections have closed, their garbage (userdata, tables,
 * strings of the script) would wait for the collector's next cycle, which
 * starts only when the memory has doubled; an app that went quiet would
 * keep it for good. So once QUIET_DROP connections have closed since the
 * peak, a host timer waits QUIET_MS without events, then one full
 * collection runs. Nothing but a count is added to the event paths: the
 * activity is the number of entries (and the memory in use). */
#define QUIET_DROP 1000 /* connections closed since the peak */
#define QUIET_MS 2000   /* without events */
#define QUIET_WAITS 5   /* postponed at most this often: then it collects */

static void quiet_fired(GCT_INTPTR user);

static void quiet_arm(struct gc_lua_app *app) {
  app->quiet_seq = app->entries;
  app->quiet_mem = app->mem_used;
  /* 0 when the host has no timer for us: the next close tries again. */
  app->quiet_timer = app->api->timerStart
                         ? app->api->timerStart(app->app_id, QUIET_MS, 0,
                                                quiet_fired,
                                                gc_lua_state_key(app))
                         : 0;
}

static int do_collect(lua_State *L) {
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}

/* The host's callback ('user' is the state's key; the timer is stopped
 * when the state closes, so it finds its own state). */
static void quiet_fired(GCT_INTPTR user) {
  struct gc_lua_app *app = gc_lua_state_by_key(user);
  if (app == NULL || app->quiet_timer == 0 || app->L == NULL || app->closing)
    return;
  app->quiet_timer = 0;
  int busy = app->entries != app->quiet_seq || app->mem_used != app->quiet_mem;
  if (busy && ++app->quiet_waits < QUIET_WAITS) {
    quiet_arm(app);
    return;
  }
  (void)gc_lua_pcall(app, "collect", do_collect, NULL);
  app->conn_peak = app->conn_count;
  gc_lua_mem_publish(app, app->mem_used);
}

void gc_lua_app_conn_closed(struct gc_lua_app *app) {
  if (app->L == NULL || app->closing || app->quiet_timer != 0 ||
      app->conn_peak < app->conn_count + QUIET_DROP)
    return;
  app->quiet_waits = 0;
  quiet_arm(app);
}

void gc_lua_app_close(struct gc_lua_app *app) {
  lua_State *L = app->L;
  if (L == NULL)
    return;
  if (app->quiet_timer != 0 && app->api->timerStop)
    (void)app->api->timerStop(app->quiet_timer);
  app->quiet_timer = 0;
  gc_lua_timers_stop_all(app);
  gc_lua_waits_stop_all(app);
  gc_lua_conn_queues_free(app);
  gc_lua_link_queues_free(app);
  /* Open connections (only if the host broke its promise of an
   * on_disconnect for each) are forgotten: their memory goes with L. */
  for (struct gc_lua_conn *c = app->conn_head; c; c = c->next) {
    c->magic = 0;
    c->open = 0;
  }
  app->conn_head = app->conn_tail = NULL;
  app->conn_count = 0;
  app->closing = 1; /* no entry from now on; finalizers still run: */
  /* No signal may touch the state while lua_close frees it, so the
   * finalizers are held to an instruction budget, not the watchdog. */
  gc_lua_watchdog_stop(app);
  if (app->budget == 0)
    gc_lua_set_budget(app, GC_LUA_FALLBACK_BUDGET);
  app->depth++;
  app->used = 0;
  app->expired = 0;
  lua_sethook(L, gc_lua_budget_hook, LUA_MASKCOUNT, app->hook_count);
  gc_lua_mem_publish(app, 0); /* the state is going: its memory with it */
  app->mem_counter = -1;
  lua_close(L);
  app->depth--;
  app->L = NULL;
  app->handlers_ref = app->timers_ref = app->sent_name_ref = LUA_NOREF;
  app->msg_name_ref = app->subs_ref = LUA_NOREF;
  app->waits_ref = app->co_slot_ref = app->co_pool_ref = LUA_NOREF;
  app->co_idle = NULL;
  app->co_pool_n = 0;
  app->run = NULL;
  app->run_co = NULL;
}

void gc_lua_app_free(struct gc_lua_app *app) {
  if (app == NULL)
    return;
  gc_lua_app_close(app);
  free(app->name);
  free(app->script);
  free(app->extra_path);
  free(app);
}
