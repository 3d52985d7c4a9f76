/* limits.c - what bounds a script: its memory, its instructions and its
 * time per entry, and where their settings come from.
 *
 * Time: by default a watchdog (watchdog.c) limits the CPU time of an
 * outermost entry ("lua.time_limit_ms") and costs nothing while scripts run.
 * Opt-in, "lua.instruction_budget" counts VM instructions instead, with a
 * count hook that charges every 'hook_count' instructions to the entry
 * (exact and repeatable, but the VM then traps on every instruction).
 * When an entry passes either limit the hook raises and re-arms itself on
 * every line and every instruction (Redis 'luaMaskCountHook'), so a 'pcall'
 * inside the script cannot swallow the stop: the next instruction after it
 * raises again, until the error leaves the script. The normal hooks (none,
 * or the count hook) are restored when the entry returns.
 *
 * Memory: each state has its own lua_Alloc that counts bytes, warns as the
 * use doubles and refuses growth past the configured limit (skynet
 * 'lalloc'); Lua then collects and retries, and raises "not enough memory"
 * in the script if that does not help. */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

#define HOOK_EVERY 10000 /* instructions between two budget checks */

/* ---- memory -------------------------------------------------------------- */

/* Publishes the state's memory in its counter when it moved by a step:
 * a cheap compare per allocation, a counterSet now and then, so any
 * adapter (or a spec, host:counter) can attribute memory growth. */
void gc_lua_mem_publish(struct gc_lua_app *app, size_t value) {
  if (app->mem_counter < 0)
    return;
  /* Every state of an app adds its share to the app's one counter. */
  GCT_COUNTER_VALUE delta =
      (GCT_COUNTER_VALUE)value - (GCT_COUNTER_VALUE)app->mem_reported;
  app->mem_reported = value;
  if (app->api->counterAdd)
    (void)app->api->counterAdd(app->mem_counter, delta);
  else
    (void)app->api->counterSet(app->mem_counter, (GCT_COUNTER_VALUE)value);
}

static void mem_report(struct gc_lua_app *app) {
  size_t used = app->mem_used, last = app->mem_reported;
  if (used >= last + GC_LUA_MEM_COUNTER_STEP ||
      used + GC_LUA_MEM_COUNTER_STEP <= last)
    gc_lua_mem_publish(app, used);
}

void *gc_lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
  struct gc_lua_app *app = ud;
  if (ptr == NULL)
    osize = 0; /* 'osize' is then the kind of object, not a size */
  if (nsize == 0) {
    free(ptr);
    app->mem_used -= osize;
    mem_report(app);
    return NULL;
  }
  if (nsize > osize && app->mem_limit && !app->closing &&
      app->mem_used - osize + nsize > app->mem_limit)
    return NULL; /* Lua collects and retries, then raises LUA_ERRMEM */
  void *p = realloc(ptr, nsize);
  if (p == NULL)
    return NULL;
  app->mem_used = app->mem_used - osize + nsize;
  mem_report(app);
  if (app->mem_used > app->mem_warn_at) {
    if (app->mem_limit)
      gc_lua_log(app, GCL_WARN, "Lua memory use passed %zu KiB (limit %zu KiB)",
                 app->mem_warn_at >> 10, app->mem_limit >> 10);
    else
      gc_lua_log(app, GCL_WARN, "Lua memory use passed %zu KiB",
                 app->mem_warn_at >> 10);
    app->mem_warn_at *= 2;
  }
  return p;
}

/* ---- the instruction budget --------------------------------------------- */

struct gc_lua_app *gc_lua_app_of(lua_State *L) {
  uintptr_t p; /* bit 0 tags a coroutine killed by the stop (watchdog.c) */
  memcpy(&p, lua_getextraspace(L), sizeof p);
  return (struct gc_lua_app *)(p & ~(uintptr_t)1);
}

/* The hooks a thread has outside stop mode. */
static void set_normal_hook(struct gc_lua_app *app, lua_State *L) {
  if (app->budget > 0)
    lua_sethook(L, gc_lua_budget_hook, LUA_MASKCOUNT, app->hook_count);
  else
    lua_sethook(L, NULL, 0, 0);
}

static int timed_out(const struct gc_lua_app *app) {
  atomic_signal_fence(memory_order_acquire);
  return atomic_load_explicit(&app->wd.fired, memory_order_relaxed);
}

int gc_lua_stopped(const struct gc_lua_app *app) {
  return app->depth > 0 && (app->expired || timed_out(app));
}

void gc_lua_budget_hook(lua_State *L, lua_Debug *ar) {
  struct gc_lua_app *app = gc_lua_app_of(L);
  int late = app->depth > 0 && timed_out(app);
  if (!app->expired && !late) {
    if (lua_gethookmask(L) & LUA_MASKLINE) {
      /* A thread left in stop mode by an earlier entry: back to normal. */
      set_normal_hook(app, L);
      return;
    }
    if (app->depth == 0 || app->budget == 0)
      return;
    app->used += lua_gethookcount(L);
    if (app->used <= app->budget)
      return;
    app->expired = 1;
  }
  /* Stop mode: raise on every line and instruction until we are out. */
  lua_sethook(L, gc_lua_budget_hook, LUA_MASKLINE | LUA_MASKCOUNT, 1);
  if (L != app->L)
    lua_sethook(app->L, gc_lua_budget_hook, LUA_MASKLINE | LUA_MASKCOUNT, 1);
  if (app->run_co && L != app->run_co) /* the handler's coroutine (coro.c) */
    lua_sethook(app->run_co, gc_lua_budget_hook, LUA_MASKLINE | LUA_MASKCOUNT,
                1);
  lua_getinfo(L, "Sl", ar);
  if (ar->currentline > 0)
    lua_pushfstring(L, "%s:%d: ", ar->short_src, ar->currentline);
  else
    lua_pushliteral(L, "");
  if (app->expired)
    lua_pushfstring(L, "%sinstruction budget exceeded (%I instructions)",
                    lua_tostring(L, -1), (lua_Integer)app->budget);
  else
    lua_pushfstring(L, "%stime limit exceeded (%I ms of CPU)",
                    lua_tostring(L, -1), (lua_Integer)app->time_limit_ms);
  lua_error(L);
}

void gc_lua_budget_enter(struct gc_lua_app *app) {
  if (app->depth++ > 0)
    return;
  app->used = 0;
  app->expired = 0;
  app->entries++;
  if (app->wd.on) /* first: it may fall back on the budget */
    gc_lua_watchdog_enter(app);
  if (app->budget > 0) /* resets the thread's instruction count too */
    lua_sethook(app->L, gc_lua_budget_hook, LUA_MASKCOUNT, app->hook_count);
}

void gc_lua_budget_leave(struct gc_lua_app *app) {
  if (--app->depth > 0)
    return;
  int fired = gc_lua_watchdog_leave(app);
  /* Stop mode is set on the main thread only when one of the two limits
   * ran out in this entry: then it is undone (a hook the script set
   * itself is otherwise left be). */
  if (app->expired || fired)
    set_normal_hook(app, app->L);
  app->expired = 0;
}


/* ---- configuration --------------------------------------------------------- */

static void read_u64(const struct core_api *api, const char *path,
                     uint64_t *out, int *found) {
  uint64_t v;
  if (api->getOpt((GCT_CSTR)path, GC_OPT_TYPE_UINT64, &v) == 0) {
    *out = v;
    *found = 1;
  }
}

/* Finds "adapters[i].apps[j]" whose name is 'name'; 0 and the prefix in
 * 'buf', or -1. */
static int find_app_entry(const struct core_api *api, const char *name,
                          char *buf, size_t len) {
  int32_t na = 0;
  if (api->getOpt("adapters.len", GC_OPT_TYPE_INT, &na) != 0)
    return -1;
  for (int32_t i = 0; i < na; i++) {
    int32_t np = 0;
    snprintf(buf, len, "adapters[%d].apps.len", (int)i);
    if (api->getOpt(buf, GC_OPT_TYPE_INT, &np) != 0)
      continue;
    for (int32_t j = 0; j < np; j++) {
      const char *s = NULL;
      snprintf(buf, len, "adapters[%d].apps[%d].name", (int)i, (int)j);
      if (api->getOpt(buf, GC_OPT_TYPE_STRING, &s) == 0 && s &&
          strcmp(s, name) == 0) {
        snprintf(buf, len, "adapters[%d].apps[%d]", (int)i, (int)j);
        return 0;
      }
    }
  }
  return -1;
}

void gc_lua_limits_read(const struct core_api *api, const char *name,
                        struct gc_lua_limits *lim) {
  lim->instruction_budget = GC_LUA_DEFAULT_BUDGET;
  lim->time_limit_ms = GC_LUA_DEFAULT_TIME_LIMIT_MS;
  lim->memory_limit = GC_LUA_DEFAULT_MEMORY;
  lim->path = NULL;
  lim->unsafe = 0;
  lim->message_text = 0;
  lim->max_pending_events = GC_LUA_DEFAULT_MAX_PENDING;
  if (api->getOpt == NULL)
    return;
  const char *s = NULL;
  if (api->getOpt("lua.path", GC_OPT_TYPE_STRING, &s) == 0)
    lim->path = s;
  uint64_t budget = 0, mem = 0, time_ms = 0, unsafe = 0, pend = 0;
  int has_budget = 0, has_mem = 0, has_time = 0, has_unsafe = 0, has_pend = 0;
  read_u64(api, "lua.max_pending_events", &pend, &has_pend);
  read_u64(api, "lua.instruction_budget", &budget, &has_budget);
  read_u64(api, "lua.time_limit_ms", &time_ms, &has_time);
  read_u64(api, "lua.memory_limit", &mem, &has_mem);
  read_u64(api, "lua.unsafe", &unsafe, &has_unsafe); /* a boolean reads 1/0 */
  char prefix[96], path[160];
  if (name && find_app_entry(api, name, prefix, sizeof prefix) == 0) {
    snprintf(path, sizeof path, "%s.lua.instruction_budget", prefix);
    read_u64(api, path, &budget, &has_budget);
    snprintf(path, sizeof path, "%s.lua.time_limit_ms", prefix);
    read_u64(api, path, &time_ms, &has_time);
    snprintf(path, sizeof path, "%s.lua.memory_limit", prefix);
    read_u64(api, path, &mem, &has_mem);
    snprintf(path, sizeof path, "%s.lua.max_pending_events", prefix);
    read_u64(api, path, &pend, &has_pend);
    snprintf(path, sizeof path, "%s.lua.unsafe", prefix);
    read_u64(api, path, &unsafe, &has_unsafe);
    snprintf(path, sizeof path, "%s.lua.path", prefix);
    if (api->getOpt(path, GC_OPT_TYPE_STRING, &s) == 0)
      lim->path = s;
    const char *mt = NULL;
    snprintf(path, sizeof path, "%s.message_type", prefix);
    if (api->getOpt(path, GC_OPT_TYPE_STRING, &mt) == 0 && mt &&
        strcmp(mt, "text") == 0)
      lim->message_text = 1;
  }
  if (has_budget)
    lim->instruction_budget = budget > INT64_MAX ? INT64_MAX : (int64_t)budget;
  if (has_time)
    lim->time_limit_ms = time_ms;
  if (has_mem)
    lim->memory_limit = mem;
  lim->unsafe = has_unsafe && unsafe != 0;
  if (has_pend)
    lim->max_pending_events = pend;
}


void gc_lua_set_budget(struct gc_lua_app *app, int64_t budget) {
  app->budget = budget;
  app->hook_count =
      budget > 0 && budget < HOOK_EVERY ? (int)budget : HOOK_EVERY;
}
