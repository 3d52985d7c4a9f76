/* call.c - the one way into a Lua state, and its log lines.
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
 * Each entry is an entry of the limits too (limits.c): gc_lua_budget_enter
 * before the call, gc_lua_budget_leave after it. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <lauxlib.h>

#include "gc_lua.h"

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
  size_t off =
      app->log_worker
          ? (size_t)snprintf(stack, sizeof stack, "lua app %s (worker %d): ",
                             app->name ? app->name : "?", (int)app->worker)
          : (size_t)snprintf(stack, sizeof stack, "lua app %s: ",
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
void gc_lua_warnf(void *ud, const char *msg, int tocont) {
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

void gc_lua_log_failure(struct gc_lua_app *app, const char *event, int st,
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
  gc_lua_log_failure(app, event, st, lua_tostring(app->L, -1));
}

/* Calls the function below the 'nargs' values on top, the message handler
 * at 'msgh', inside an entry begun with gc_lua_budget_enter; ends the entry, logs
 * a failure and leaves the stack at 'base' values. */
static int call_in_entry(struct gc_lua_app *app, const char *event, int nargs,
                         int msgh, int base) {
  int st = lua_pcall(app->L, nargs, 0, msgh);
  gc_lua_budget_leave(app);
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
  gc_lua_budget_enter(app);
  return call_in_entry(app, event, 1, base + 1, base);
}

int gc_lua_pcall_quiet(struct gc_lua_app *app, lua_CFunction fn, void *arg,
                       char *err, size_t errlen) {
  lua_State *L = app->L;
  if (L == NULL || app->closing)
    return -1;
  if (!lua_checkstack(L, 4))
    return LUA_ERRMEM;
  app->sent_known = 0;
  int base = lua_gettop(L);
  lua_pushcfunction(L, fn);
  lua_pushlightuserdata(L, arg);
  gc_lua_budget_enter(app);
  int st = lua_pcall(L, 1, 0, 0);
  gc_lua_budget_leave(app);
  if (st != LUA_OK && err && errlen) {
    const char *m = st == LUA_ERRMEM ? "not enough memory" : lua_tostring(L, -1);
    snprintf(err, errlen, "%s", m ? m : "(error object is not a string)");
    err[strcspn(err, "\n")] = '\0'; /* one line: file:line: message */
  }
  lua_settop(L, base);
  return st;
}

/* Out of memory outside any protected call: Lua has reset the thread and
 * calls this last; a long jump back to gc_lua_pcall_message's recovery
 * point is the way out the manual gives (lua_atpanic). Unarmed, returning
 * lets Lua abort() as it would without a panic function. */
int gc_lua_on_panic(lua_State *L) {
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
 * out-of-memory reset of the thread (see gc_lua_on_panic) wipes them; they are
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

int gc_lua_pcall_message(struct gc_lua_app *app, struct gc_lua_conn *c,
                         const void *data, size_t len) {
  lua_State *L = app->L;
  if (L == NULL || app->closing)
    return 0;
  /* Only from the loop, with nothing of an outer entry on the stack (the
   * thread reset of an out-of-memory error would wipe it), and with the
   * idle coroutine ready (else the general path makes one). */
  if (!gc_lua_co_ready(app) || !hot_ready(app, L))
    return -1;
  int found = hot_handler(L, HOT_MSG_NAME);
  if (found <= 0)
    return found;
  /* The handler's coroutine gets its function and arguments directly. */
  lua_State *co = app->co_idle;
  lua_xmove(L, co, 1);
  lua_rawgeti(co, LUA_REGISTRYINDEX, c->ref);
  app->sent_known = 0; /* the script may change its handlers */
  app->enter_co = co; /* the watchdog's running thread from the start */
  gc_lua_budget_enter(app); /* a finalizer run by the push is inside the entry */
  app->enter_co = NULL;
  jmp_buf jb;
  if (setjmp(jb) != 0) { /* the thread was reset: no slot is left */
    app->push_jmp = NULL;
    gc_lua_budget_leave(app);
    lua_settop(L, 0);
    lua_settop(co, 0);
    gc_lua_log_failure(app, "on_message", LUA_ERRMEM, NULL);
    return 0;
  }
  app->push_jmp = &jb;
  lua_pushlstring(co, data, len); /* the one push that allocates */
  app->push_jmp = NULL;
  struct gc_lua_run run = {&c->evq, GC_LUA_RUN_PLAIN, "on_message"};
  gc_lua_co_call_hot(L, app, 2, &run);
  gc_lua_budget_leave(app);
  if (lua_gettop(L) != HOT_TOP)
    lua_settop(L, HOT_TOP);
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

