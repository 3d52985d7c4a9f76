/* app.c - one application of the Lua adapter: its lua_State, its limits and
 * the protected ways into it.
 *
 * Every entry into Lua goes through gc_lua_pcall (Lua's 'docall', luv's
 * 'cb_pcall', skynet's '_cb'): a C function is run under lua_pcall with a
 * message handler that appends a traceback, so even the pushes that build a
 * handler's arguments are protected (any push can raise out-of-memory). A
 * failure is logged as one line and the host carries on. The one exception
 * is on_message from the loop, the hot path (gc_lua_pcall_message): its
 * pushes go unprotected and the one that can fail has a recovery point
 * through the panic function, which saves the trampoline's C call.
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
#include <errno.h>
#include <setjmp.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>
#include <lualib.h>

#include "gc_lua.h"

#define HOOK_EVERY 10000 /* instructions between two budget checks */
#define MEM_WARN_FIRST (64u << 20) /* first memory warning, then doubling */

/* ---- logging ------------------------------------------------------------- */

/* Logs 'line' in one-line form: each newline (and the tab after it, as
 * in a traceback) becomes " | ". A script error goes to the error sink
 * too, in the same form. */
static void log_flat(const struct gc_lua_app *app, int level, int script_error,
                     char *line) {
  size_t len = strlen(line);
  char *out = strchr(line, '\n') ? malloc(3 * len + 1) : NULL;
  if (out == NULL) {
    for (char *p = line; *p; p++)
      if (*p == '\n' || *p == '\t')
        *p = ' ';
    if (app->api->logMessage)
      app->api->logMessage(level, line);
    if (script_error)
      gc_lua_report_error(line);
    return;
  }
  char *w = out;
  for (const char *r = line; *r; r++) {
    if (*r == '\n') {
      memcpy(w, " | ", 3);
      w += 3;
      if (r[1] == '\t')
        r++;
    } else {
      *w++ = *r == '\t' ? ' ' : *r;
    }
  }
  *w = '\0';
  if (app->api->logMessage)
    app->api->logMessage(level, out);
  if (script_error)
    gc_lua_report_error(out);
  free(out);
}

static void log_v(const struct gc_lua_app *app, int level, int script_error,
                  const char *fmt, va_list args) {
  char stack[512];
  char *line = stack;
  size_t off = (size_t)snprintf(stack, sizeof stack, "lua app %s: ",
                                app->name ? app->name : "?");
  if (off >= sizeof stack)
    off = sizeof stack - 1;
  va_list ap;
  va_copy(ap, args);
  int n = vsnprintf(stack + off, sizeof stack - off, fmt, ap);
  va_end(ap);
  if (n > 0 && off + (size_t)n >= sizeof stack) {
    char *big = malloc(off + (size_t)n + 1);
    if (big) {
      memcpy(big, stack, off);
      va_copy(ap, args);
      vsnprintf(big + off, (size_t)n + 1, fmt, ap);
      va_end(ap);
      line = big;
    }
  }
  log_flat(app, level, script_error, line);
  if (line != stack)
    free(line);
}

void gc_lua_log(const struct gc_lua_app *app, int level, const char *fmt,
                ...) {
  va_list ap;
  va_start(ap, fmt);
  log_v(app, level, 0, fmt, ap);
  va_end(ap);
}

void gc_lua_log_error(const struct gc_lua_app *app, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  log_v(app, GCL_ERR, 1, fmt, ap);
  va_end(ap);
}

/* lua_WarnFunction: warnings (errors in __gc finalizers, "warn()" of the
 * script) become GCL_WARN lines. Control messages ("@on") are ignored. */
static void warnf(void *ud, const char *msg, int tocont) {
  struct gc_lua_app *app = ud;
  if (app->warn_len == 0 && !tocont && msg[0] == '@')
    return;
  size_t n = strlen(msg);
  size_t room = sizeof app->warn_buf - 1 - app->warn_len;
  if (n > room)
    n = room;
  memcpy(app->warn_buf + app->warn_len, msg, n);
  app->warn_len += n;
  if (!tocont) {
    app->warn_buf[app->warn_len] = '\0';
    gc_lua_log(app, GCL_WARN, "Lua warning: %s", app->warn_buf);
    app->warn_len = 0;
  }
}

/* ---- memory -------------------------------------------------------------- */

/* Publishes the state's memory in its counter when it moved by a step:
 * a cheap compare per allocation, a counterSet now and then, so any
 * adapter (or a spec, host:counter) can attribute memory growth. */
static void mem_publish(struct gc_lua_app *app, size_t value) {
  if (app->mem_counter < 0)
    return;
  app->mem_reported = value;
  (void)app->api->counterSet(app->mem_counter, (GCT_COUNTER_VALUE)value);
}

static void mem_report(struct gc_lua_app *app) {
  size_t used = app->mem_used, last = app->mem_reported;
  if (used >= last + GC_LUA_MEM_COUNTER_STEP ||
      used + GC_LUA_MEM_COUNTER_STEP <= last)
    mem_publish(app, used);
}

static void *l_alloc(void *ud, void *ptr, size_t osize, size_t nsize) {
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

/* The watchdog's view of an outermost entry: an odd sequence number while
 * it runs (see watchdog.c). Plain stores and compiler fences only. */
static void wd_step(struct gc_lua_watchdog *w) {
  atomic_store_explicit(
      &w->seq, atomic_load_explicit(&w->seq, memory_order_relaxed) + 1,
      memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
}

static void wd_enter(struct gc_lua_app *app) {
  struct gc_lua_watchdog *w = &app->wd;
  if (w->slot < 0)
    return;
  atomic_store_explicit(&w->fired, 0, memory_order_relaxed);
  atomic_store_explicit(&w->running, app->L, memory_order_relaxed);
  atomic_signal_fence(memory_order_release);
  wd_step(w);
}

/* Ends the entry for the watchdog; 1 if it had fired. */
static int wd_leave(struct gc_lua_app *app) {
  struct gc_lua_watchdog *w = &app->wd;
  if (w->slot < 0)
    return 0;
  atomic_signal_fence(memory_order_seq_cst);
  wd_step(w);
  return atomic_load_explicit(&w->fired, memory_order_relaxed);
}

static void budget_enter(struct gc_lua_app *app) {
  if (app->depth++ > 0)
    return;
  app->used = 0;
  app->expired = 0;
  if (app->budget > 0) /* resets the thread's instruction count too */
    lua_sethook(app->L, gc_lua_budget_hook, LUA_MASKCOUNT, app->hook_count);
  wd_enter(app);
}

static void budget_leave(struct gc_lua_app *app) {
  if (--app->depth > 0)
    return;
  int fired = wd_leave(app);
  /* Stop mode is set on the main thread only when one of the two limits
   * ran out in this entry: then it is undone (a hook the script set
   * itself is otherwise left be). */
  if (app->expired || fired)
    set_normal_hook(app, app->L);
  app->expired = 0;
}

/* ---- the protected entry -------------------------------------------------- */

/* Message handler: the error as a string plus a traceback from where it
 * was raised (Lua's lua.c 'msghandler'). */
static int msgh(lua_State *L) {
  const char *msg = lua_tostring(L, 1);
  if (msg == NULL) {
    if (luaL_callmeta(L, 1, "__tostring") && lua_type(L, -1) == LUA_TSTRING)
      msg = lua_tostring(L, -1);
    else
      msg = lua_pushfstring(L, "(error object is a %s value)",
                            luaL_typename(L, 1));
  }
  luaL_traceback(L, L, msg, 1);
  return 1;
}

static void log_failure_msg(struct gc_lua_app *app, const char *event, int st,
                            const char *msg) {
  switch (st) {
  case LUA_ERRMEM:
    if (app->mem_limit)
      gc_lua_log_error(app,
                       "error in %s: not enough memory (%zu bytes in use, "
                       "limit %zu)", event, app->mem_used, app->mem_limit);
    else
      gc_lua_log_error(app, "error in %s: not enough memory", event);
    break;
  case LUA_ERRERR:
    gc_lua_log_error(app, "error in %s: error in the error handler: %s",
                     event, msg ? msg : "?");
    break;
  default:
    gc_lua_log_error(app, "error in %s: %s", event, msg ? msg : "?");
    break;
  }
}

static void log_failure(struct gc_lua_app *app, const char *event, int st) {
  log_failure_msg(app, event, st, lua_tostring(app->L, -1));
}

/* Calls the function below the 'nargs' values on top, the message handler
 * at 'msgh', inside an entry begun with budget_enter; ends the entry, logs
 * a failure and leaves the stack at 'base' values. */
static int call_in_entry(struct gc_lua_app *app, const char *event, int nargs,
                         int msgh, int base) {
  int st = lua_pcall(app->L, nargs, 0, msgh);
  budget_leave(app);
  if (st != LUA_OK)
    log_failure(app, event, st);
  if (st != LUA_OK || lua_gettop(app->L) != base) /* on_message: already */
    lua_settop(app->L, base);
  return st;
}

int gc_lua_pcall(struct gc_lua_app *app, const char *event, lua_CFunction fn,
                 void *arg) {
  lua_State *L = app->L;
  if (L == NULL || app->closing)
    return -1;
  if (!lua_checkstack(L, 4)) {
    gc_lua_log_error(app, "error in %s: no Lua stack space", event);
    return LUA_ERRMEM;
  }
  app->sent_known = 0; /* the script may change its handlers */
  int base = lua_gettop(L);
  lua_pushcfunction(L, msgh); /* light C functions and light userdata */
  lua_pushcfunction(L, fn);   /* allocate nothing */
  lua_pushlightuserdata(L, arg);
  budget_enter(app);
  return call_in_entry(app, event, 1, base + 1, base);
}

/* Out of memory outside any protected call: Lua has reset the thread and
 * calls this last; a long jump back to gc_lua_pcall_message's recovery
 * point is the way out the manual gives (lua_atpanic). Unarmed, returning
 * lets Lua abort() as it would without a panic function. */
static int on_panic(lua_State *L) {
  struct gc_lua_app *app = gc_lua_app_of(L);
  if (app->push_jmp)
    longjmp(*(jmp_buf *)app->push_jmp, 1);
  return 0;
}

/* Finds handler 'name_ref' with raw accesses only (no metamethod can run):
 * 1 and the function pushed, 0 and nothing pushed when the script has no
 * such field, -1 when raw accesses cannot tell (a metatable on the
 * handler table, a value that is not a function). */
static int push_handler_raw(lua_State *L, struct gc_lua_app *app,
                            int name_ref) {
  int top = lua_gettop(L);
  if (name_ref == LUA_NOREF ||
      lua_rawgeti(L, LUA_REGISTRYINDEX, app->handlers_ref) != LUA_TTABLE ||
      lua_getmetatable(L, -1)) {
    lua_settop(L, top);
    return -1;
  }
  lua_rawgeti(L, LUA_REGISTRYINDEX, name_ref);
  int t = lua_rawget(L, -2);
  if (t != LUA_TFUNCTION) {
    lua_settop(L, top);
    return t == LUA_TNIL ? 0 : -1;
  }
  lua_remove(L, -2);
  return 1;
}

/* Between entries the main thread's stack holds what the hot paths need,
 * so that finding a handler is one raw access: the message handler, the
 * handler table and the names of the two per-message handlers. An
 * out-of-memory reset of the thread (see on_panic) wipes them; they are
 * put back, without allocating, from the registry. */
enum { HOT_MSGH = 1, HOT_HANDLERS, HOT_MSG_NAME, HOT_SENT_NAME, HOT_TOP = HOT_SENT_NAME };
/* Room above the slots for a handler and its two arguments. It is made
 * when the slots are and stays: the base frame's stack limit only grows
 * (lua_checkstack), and a thread reset gives it LUA_MINSTACK again. */
enum { HOT_ROOM = 3 };

/* 1 when the slots are in place, with HOT_ROOM free above them: only
 * between entries of the loop. */
static int hot_ready(struct gc_lua_app *app, lua_State *L) {
  if (app->depth > 0)
    return 0;
  int top = lua_gettop(L);
  if (top == HOT_TOP)
    return 1;
  if (top != 0 || app->msg_name_ref == LUA_NOREF ||
      !lua_checkstack(L, HOT_TOP + HOT_ROOM))
    return 0;
  lua_pushcfunction(L, msgh);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->handlers_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->msg_name_ref);
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->sent_name_ref);
  return 1;
}

/* The hot-slot twin of push_handler_raw, for handler name 'name_slot'. */
static int hot_handler(lua_State *L, int name_slot) {
  lua_pushvalue(L, name_slot);
  int t = lua_rawget(L, HOT_HANDLERS);
  if (t == LUA_TFUNCTION)
    return 1;
  lua_pop(L, 1);
  if (t != LUA_TNIL || lua_getmetatable(L, HOT_HANDLERS)) {
    lua_settop(L, HOT_TOP);
    return -1;
  }
  return 0;
}

int gc_lua_pcall_message(struct gc_lua_app *app, int conn_ref,
                         const void *data, size_t len) {
  lua_State *L = app->L;
  if (L == NULL || app->closing)
    return 0;
  /* Only from the loop, with nothing of an outer entry on the stack (the
   * thread reset of an out-of-memory error would wipe it). */
  if (!hot_ready(app, L))
    return -1;
  int found = hot_handler(L, HOT_MSG_NAME);
  if (found <= 0)
    return found;
  lua_rawgeti(L, LUA_REGISTRYINDEX, conn_ref);
  app->sent_known = 0; /* the script may change its handlers */
  budget_enter(app); /* a finalizer run by the push is inside the entry */
  jmp_buf jb;
  if (setjmp(jb) != 0) { /* the thread was reset: no slot is left */
    app->push_jmp = NULL;
    budget_leave(app);
    lua_settop(L, 0);
    log_failure_msg(app, "on_message", LUA_ERRMEM, NULL);
    return 0;
  }
  app->push_jmp = &jb;
  lua_pushlstring(L, data, len); /* the one push that allocates */
  app->push_jmp = NULL;
  (void)call_in_entry(app, "on_message", 2, HOT_MSGH, HOT_TOP);
  return 0;
}

int gc_lua_push_handler(lua_State *L, struct gc_lua_app *app,
                        const char *name) {
  if (app->handlers_ref == LUA_NOREF || app->handlers_ref == LUA_REFNIL)
    return 0;
  lua_rawgeti(L, LUA_REGISTRYINDEX, app->handlers_ref);
  lua_getfield(L, -1, name);
  lua_remove(L, -2);
  if (lua_isnil(L, -1)) {
    lua_pop(L, 1);
    return 0;
  }
  return 1; /* a non-callable value raises at the call, with its name */
}

int gc_lua_may_handle_sent(struct gc_lua_app *app) {
  lua_State *L = app->L;
  if (L == NULL || app->closing)
    return 0;
  if (app->sent_known)
    return app->sent_may;
  if (app->sent_name_ref == LUA_NOREF || !lua_checkstack(L, 3))
    return 1;
  /* Unprotected, so only raw accesses, which never allocate or raise: a
   * table with a metatable (handlers found through __index) or a value
   * that is not a function answers "maybe". */
  int found = hot_ready(app, L) ? hot_handler(L, HOT_SENT_NAME)
                                 : push_handler_raw(L, app, app->sent_name_ref);
  if (found > 0)
    lua_pop(L, 1);
  found = found != 0;
  app->sent_known = 1;
  app->sent_may = (unsigned char)found;
  return found;
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
  if (api->getOpt == NULL)
    return;
  const char *s = NULL;
  if (api->getOpt("lua.path", GC_OPT_TYPE_STRING, &s) == 0)
    lim->path = s;
  uint64_t budget = 0, mem = 0, time_ms = 0, unsafe = 0;
  int has_budget = 0, has_mem = 0, has_time = 0, has_unsafe = 0;
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
    snprintf(path, sizeof path, "%s.lua.unsafe", prefix);
    read_u64(api, path, &unsafe, &has_unsafe);
    snprintf(path, sizeof path, "%s.lua.path", prefix);
    if (api->getOpt(path, GC_OPT_TYPE_STRING, &s) == 0)
      lim->path = s;
  }
  if (has_budget)
    lim->instruction_budget = budget > INT64_MAX ? INT64_MAX : (int64_t)budget;
  if (has_time)
    lim->time_limit_ms = time_ms;
  if (has_mem)
    lim->memory_limit = mem;
  lim->unsafe = has_unsafe && unsafe != 0;
}

/* ---- life of an application ----------------------------------------------- */

static void set_budget(struct gc_lua_app *app, int64_t budget) {
  app->budget = budget;
  app->hook_count =
      budget > 0 && budget < HOOK_EVERY ? (int)budget : HOOK_EVERY;
}

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
  app->next_timer_serial = 1;
  app->wd.slot = -1;
  app->time_limit_ms = lim->time_limit_ms;
  app->unsafe = lim->unsafe;
  set_budget(app, lim->instruction_budget);
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
  if (app->wd.slot >= 0)
    gc_lua_watchdog_open(L);
  set_paths(L, app);
  gc_lua_conn_open(L);
  gc_lua_module_open(L, app);
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
  ev->load_status = luaL_loadfilex(L, app->script, "t");
  if (ev->load_status != LUA_OK) {
    snprintf(ev->msg, sizeof ev->msg, "%s", lua_tostring(L, -1));
    return 0;
  }
  lua_call(L, 0, 1);
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
  lua_State *L = lua_newstate(l_alloc, app);
  if (L == NULL) {
    gc_lua_log(app, GCL_ERR, "cannot create a Lua state: not enough memory");
    return ENOMEM;
  }
  app->L = L;
  memcpy(lua_getextraspace(L), &app, sizeof app);
  lua_atpanic(L, on_panic);
  lua_setwarnf(L, warnf, app);
  if (app->time_limit_ms > 0) {
    int err = gc_lua_watchdog_start(app);
    if (err != 0 && app->budget == 0) {
      gc_lua_log(app, GCL_WARN,
                 "no CPU-time watchdog (%s): counting %d instructions per "
                 "call instead",
                 strerror(err), GC_LUA_FALLBACK_BUDGET);
      set_budget(app, GC_LUA_FALLBACK_BUDGET);
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
  mem_publish(app, app->mem_used); /* the first figure, before any step */
  return 0;
}

static int do_event(lua_State *L) {
  const char *event = lua_touserdata(L, 1);
  struct gc_lua_app *app = gc_lua_app_of(L);
  if (gc_lua_push_handler(L, app, event))
    lua_call(L, 0, 0);
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
 * collection runs. Nothing is added to the event paths: the activity is
 * the watchdog's entry count (and the memory in use, which moves when
 * there is no watchdog). */
#define QUIET_DROP 1000 /* connections closed since the peak */
#define QUIET_MS 2000   /* without events */
#define QUIET_WAITS 5   /* postponed at most this often: then it collects */

static void quiet_fired(GCT_INTPTR user);

static void quiet_arm(struct gc_lua_app *app) {
  app->quiet_seq = atomic_load_explicit(&app->wd.seq, memory_order_relaxed);
  app->quiet_mem = app->mem_used;
  /* 0 when the host has no timer for us: the next close tries again. */
  app->quiet_timer = app->api->timerStart
                         ? app->api->timerStart(app->app_id, QUIET_MS, 0,
                                                quiet_fired,
                                                (GCT_INTPTR)app->app_id)
                         : 0;
}

static int do_collect(lua_State *L) {
  lua_gc(L, LUA_GCCOLLECT);
  return 0;
}

/* The host's callback ('user' is the app id; the timer is stopped when
 * the app closes, so it finds its own app). */
static void quiet_fired(GCT_INTPTR user) {
  struct gc_lua_app *app = gc_lua_app_find((GCT_INT)user);
  if (app == NULL || app->quiet_timer == 0 || app->L == NULL || app->closing)
    return;
  app->quiet_timer = 0;
  int busy = atomic_load_explicit(&app->wd.seq, memory_order_relaxed) !=
                 app->quiet_seq ||
             app->mem_used != app->quiet_mem;
  if (busy && ++app->quiet_waits < QUIET_WAITS) {
    quiet_arm(app);
    return;
  }
  (void)gc_lua_pcall(app, "collect", do_collect, NULL);
  app->conn_peak = app->conn_count;
  mem_publish(app, app->mem_used);
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
    set_budget(app, GC_LUA_FALLBACK_BUDGET);
  app->depth++;
  app->used = 0;
  app->expired = 0;
  lua_sethook(L, gc_lua_budget_hook, LUA_MASKCOUNT, app->hook_count);
  mem_publish(app, 0); /* the state is going: its memory with it */
  app->mem_counter = -1;
  lua_close(L);
  app->depth--;
  app->L = NULL;
  app->handlers_ref = app->timers_ref = app->sent_name_ref = LUA_NOREF;
  app->msg_name_ref = LUA_NOREF;
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
