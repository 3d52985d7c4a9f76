/* watchdog.c - the CPU-time limit of one entry into Lua (lua.time_limit_ms).
 *
 * A count hook makes the Lua VM trap on every instruction, which halves
 * the speed of game logic (bench/NOTES.md). So nothing is hooked while a
 * script runs normally; a watchdog arms the stop only once an entry has run
 * too long (as Lua's 'laction' and skynet's 'signal_hook' do):
 *
 *  - each application has a POSIX timer on the CPU clock of the thread that
 *    loaded it. It ticks for every 'tick' of CPU that thread uses (never
 *    while the loop waits for the network) and signals that thread;
 *  - an outermost entry makes the app's sequence number odd and its end
 *    makes it even: plain stores, no system call;
 *  - the signal handler counts the ticks that find the same odd number.
 *    When they add up to the limit it sets the stop hook (app.c) on the Lua
 *    thread that is running, with lua_sethook: the one Lua call meant to
 *    be made from a signal handler. It does so again on each later tick,
 *    so a hook change by the interrupted code cannot undo it.
 *
 * The running Lua thread changes only in coroutine.resume, the functions
 * of coroutine.wrap and coroutine.close, so these are replaced by versions
 * that record it (resume and wrap are lcorolib's code plus that record,
 * and cost no more than Lua's own): a loop inside a coroutine is stopped
 * too, and the stop is passed on to the resumer when the coroutine dies
 * of it.
 *
 * Lua runs some script code with its hooks off, where no stop reaches it:
 * xpcall's message handler when the error came from a hook, hooks set by
 * the script, finalizers, and the to-be-closed variables of a coroutine
 * that died in a hook. The guards at the end keep scripts out of each.
 *
 * The signal handler finds the app through a slot number (the timer's
 * sigev_value), never a pointer: a tick still pending when an app goes
 * away finds an empty slot. Signal handler and loop share only lock-free
 * atomics, ordered with atomic_signal_fence (same thread). */
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "gc_lua.h"

_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2,
               "the watchdog needs lock-free atomics in its signal handler");

/* glibc names the field only from 2.37 on. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define WD_SLOTS 256
#define WD_TICKS 8 /* ticks per limit: the stop comes within limit + 1/8 */
#define WD_TICK_MIN_NS 2000000L   /* 2 ms: about the kernel's CPU-clock grain */
#define WD_TICK_MAX_NS 100000000L /* 100 ms */

static _Atomic(struct gc_lua_app *) slots[WD_SLOTS];
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

/* The watchdog's signal, a real-time one (SIGRTMIN is a libc call). */
static int wd_signal(void) { return SIGRTMIN + 3; }

/* Stop mode on one Lua thread: the hook runs before every instruction. */
static void arm_stop(lua_State *L) {
  lua_sethook(L, gc_lua_budget_hook, LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

static void on_tick(int sig, siginfo_t *si, void *uctx) {
  (void)sig;
  (void)uctx;
  if (si->si_code != SI_TIMER || si->si_value.sival_int < 0 ||
      si->si_value.sival_int >= WD_SLOTS)
    return;
  struct gc_lua_app *app =
      atomic_load_explicit(&slots[si->si_value.sival_int], memory_order_relaxed);
  if (app == NULL)
    return;
  struct gc_lua_watchdog *w = &app->wd;
  unsigned seq = atomic_load_explicit(&w->seq, memory_order_relaxed);
  atomic_signal_fence(memory_order_acquire);
  if ((seq & 1u) == 0)
    return; /* not in Lua */
  if (seq != w->seen) {
    w->seen = seq; /* an entry that began during the last tick */
    w->ticks = 0;
    return;
  }
  if (++w->ticks < w->ticks_to_stop)
    return;
  atomic_store_explicit(&w->fired, 1, memory_order_relaxed);
  atomic_signal_fence(memory_order_release);
  lua_State *run = atomic_load_explicit(&w->running, memory_order_relaxed);
  if (run)
    arm_stop(run);
  if (run != app->L) /* set before the timer, cleared after it is deleted */
    arm_stop(app->L);
}

/* Installs the signal handler unless another one holds the signal.
 * Called with slots_lock held. 0 or an errno. */
static int install(void) {
  int wd_signo = wd_signal();
  struct sigaction sa, old;
  if (sigaction(wd_signo, NULL, &old) != 0)
    return errno;
  if ((old.sa_flags & SA_SIGINFO) && old.sa_sigaction == on_tick)
    return 0;
  if ((old.sa_flags & SA_SIGINFO) ? old.sa_sigaction != NULL
                                  : (old.sa_handler != SIG_DFL &&
                                     old.sa_handler != SIG_IGN))
    return EBUSY; /* someone else's signal: leave it alone */
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = on_tick;
  sa.sa_flags = SA_SIGINFO | SA_RESTART; /* reads and writes just go on */
  sigemptyset(&sa.sa_mask);
  return sigaction(wd_signo, &sa, NULL) != 0 ? errno : 0;
}

int gc_lua_watchdog_start(struct gc_lua_app *app) {
  struct gc_lua_watchdog *w = &app->wd;
  uint64_t limit_ms = app->time_limit_ms;
  int wd_signo = wd_signal();
  if (w->slot >= 0 || limit_ms == 0 || app->L == NULL)
    return EINVAL;
  pthread_mutex_lock(&slots_lock);
  int err = install();
  pthread_mutex_unlock(&slots_lock);
  if (err != 0)
    return err;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, wd_signo);
  if (pthread_sigmask(SIG_UNBLOCK, &set, NULL) != 0)
    return EAGAIN;

  /* The tick: limit / WD_TICKS within bounds; enough ticks for the limit. */
  uint64_t limit_ns = limit_ms > UINT64_MAX / 1000000u ? UINT64_MAX
                                                       : limit_ms * 1000000u;
  uint64_t tick = limit_ns / WD_TICKS;
  if (tick < WD_TICK_MIN_NS)
    tick = WD_TICK_MIN_NS;
  if (tick > WD_TICK_MAX_NS)
    tick = WD_TICK_MAX_NS;
  uint64_t n = (limit_ns + tick - 1) / tick;
  w->ticks_to_stop = n > UINT32_MAX ? UINT32_MAX : (unsigned)n;
  w->seen = 0;
  w->ticks = 0;
  atomic_store(&w->seq, 0);
  atomic_store(&w->fired, 0);
  atomic_store(&w->running, app->L);

  int slot = -1;
  pthread_mutex_lock(&slots_lock);
  for (int i = 0; i < WD_SLOTS && slot < 0; i++)
    if (atomic_load(&slots[i]) == NULL) {
      atomic_store(&slots[i], app);
      slot = i;
    }
  pthread_mutex_unlock(&slots_lock);
  if (slot < 0)
    return ENFILE;

  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = wd_signo;
  sev.sigev_value.sival_int = slot;
  sev.sigev_notify_thread_id = gettid();
  if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &w->timer) != 0) {
    err = errno;
    atomic_store(&slots[slot], NULL);
    return err;
  }
  struct itimerspec its;
  its.it_value.tv_sec = (time_t)(tick / 1000000000u);
  its.it_value.tv_nsec = (long)(tick % 1000000000u);
  its.it_interval = its.it_value;
  if (timer_settime(w->timer, 0, &its, NULL) != 0) {
    err = errno;
    timer_delete(w->timer);
    atomic_store(&slots[slot], NULL);
    return err;
  }
  w->slot = slot;
  return 0;
}

void gc_lua_watchdog_stop(struct gc_lua_app *app) {
  struct gc_lua_watchdog *w = &app->wd;
  if (w->slot < 0)
    return;
  atomic_store(&slots[w->slot], NULL); /* a pending tick now finds nothing */
  timer_delete(w->timer);
  w->slot = -1;
}

/* ---- the running thread: coroutine.resume, wrap and close ---------------- */

static void set_running(struct gc_lua_watchdog *w, lua_State *co) {
  atomic_signal_fence(memory_order_seq_cst);
  atomic_store_explicit(&w->running, co, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
}

/* 'L' runs again after 'co' gave control back; a stop that fired while
 * 'co' ran is passed on to 'L' (the coroutine died of it). */
static void back_in(struct gc_lua_watchdog *w, lua_State *L) {
  set_running(w, L);
  if (atomic_load_explicit(&w->fired, memory_order_relaxed))
    arm_stop(L);
}

/* Resumes 'co' with 'narg' values from L's top, recorded as the running
 * thread meanwhile; Lua's lcorolib 'auxresume' otherwise (nothing here can
 * raise, so nothing can skip giving 'running' back). The values it
 * yielded or returned are moved to L: their number, or -1 and an error
 * value on L. */
static int resume_in(lua_State *L, lua_State *co, int narg) {
  struct gc_lua_watchdog *w = &gc_lua_app_of(L)->wd;
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  int nres;
  set_running(w, co);
  int st = lua_resume(co, L, narg, &nres);
  back_in(w, L);
  if (st != LUA_OK && st != LUA_YIELD && gc_lua_stopped(gc_lua_app_of(L)))
    gc_lua_thread_mark_stopped(co);
  if (st == LUA_OK || st == LUA_YIELD) {
    if (!lua_checkstack(L, nres + 1)) {
      lua_pop(co, nres);
      lua_pushliteral(L, "too many results to resume");
      return -1;
    }
    lua_xmove(co, L, nres);
    return nres;
  }
  lua_xmove(co, L, 1); /* the error value */
  return -1;
}

/* coroutine.resume(co, ...): lcorolib 'luaB_coresume'. */
static int co_resume(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  lua_State *co = lua_tothread(L, 1);
  int r = resume_in(L, co, lua_gettop(L) - 1);
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

/* A function made by coroutine.wrap (upvalue 1: its coroutine): lcorolib
 * 'auxwrap', which raises the coroutine's error in the caller, with the
 * caller's position when it is a string, after closing the coroutine. */
static int co_wrapped(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int r = resume_in(L, co, lua_gettop(L));
  if (r >= 0)
    return r;
  int st = lua_status(co);
  /* A coroutine the stop killed keeps Lua's hooks off: its to-be-closed
   * variables would run where no stop reaches them, so they are not run. */
  if (st != LUA_OK && st != LUA_YIELD && !gc_lua_thread_stopped(co)) {
    struct gc_lua_watchdog *w = &gc_lua_app_of(L)->wd;
    set_running(w, co); /* its to-be-closed variables run now */
#if LUA_VERSION_RELEASE_NUM >= 50406
    st = lua_closethread(co, L);
#else
    st = lua_resetthread(co);
#endif
    back_in(w, L);
    lua_xmove(co, L, 1);
  }
  if (st != LUA_ERRMEM && lua_type(L, -1) == LUA_TSTRING) {
    luaL_where(L, 1);
    lua_insert(L, -2);
    lua_concat(L, 2);
  }
  return lua_error(L);
}

/* coroutine.wrap(f): lcorolib 'luaB_cowrap'. */
static int co_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_State *co = lua_newthread(L);
  lua_pushvalue(L, 1);
  lua_xmove(L, co, 1);
  lua_pushcclosure(L, co_wrapped, 1);
  return 1;
}

/* coroutine.close(co): Lua's own (app->co_close: as an upvalue it would
 * be debug.getupvalue's, and close a stopped coroutine), with 'co'
 * recorded as running while its to-be-closed variables run. It raises for
 * a running coroutine, hence the pcall that gives 'running' back in any
 * case. */
static int co_close(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  struct gc_lua_app *app = gc_lua_app_of(L);
  struct gc_lua_watchdog *w = &app->wd;
  if (gc_lua_thread_stopped(lua_tothread(L, 1))) { /* see co_wrapped */
    lua_pushboolean(L, 0);
    lua_pushliteral(L, "cannot close a coroutine stopped by the time limit");
    return 2;
  }
  int n = lua_gettop(L);
  lua_pushcfunction(L, app->co_close);
  lua_insert(L, 1);
  set_running(w, lua_tothread(L, 2));
  int st = lua_pcall(L, n, LUA_MULTRET, 0);
  back_in(w, L);
  if (st != LUA_OK)
    return lua_error(L);
  return lua_gettop(L);
}

void gc_lua_watchdog_open(lua_State *L) {
  if (lua_getglobal(L, "coroutine") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  lua_pushcfunction(L, co_resume);
  lua_setfield(L, -2, "resume");
  lua_pushcfunction(L, co_wrap);
  lua_setfield(L, -2, "wrap");
  lua_getfield(L, -1, "close");
  lua_CFunction close = lua_tocfunction(L, -1);
  lua_pop(L, 1);
  if (close != NULL) {
    gc_lua_app_of(L)->co_close = close;
    lua_pushcfunction(L, co_close);
    lua_setfield(L, -2, "close");
  }
  lua_pop(L, 1);
}

/* ---- guards: no script code where hooks are off ---------------------------- */

/* A coroutine killed by the stop: a tag in the low bit of its extra space
 * (the app's address, so the bit is free; see gc_lua_app_of). */
void gc_lua_thread_mark_stopped(lua_State *co) {
  uintptr_t p;
  memcpy(&p, lua_getextraspace(co), sizeof p);
  p |= 1u;
  memcpy(lua_getextraspace(co), &p, sizeof p);
}

int gc_lua_thread_stopped(lua_State *co) {
  uintptr_t p;
  memcpy(&p, lua_getextraspace(co), sizeof p);
  return (int)(p & 1u);
}

/* xpcall's message handler as the script gave it (upvalue 1). Lua calls
 * it with hooks off when the error was raised by a hook, so after the stop
 * the error passes untouched and the script's handler never runs. */
static int guarded_msgh(lua_State *L) {
  if (gc_lua_stopped(gc_lua_app_of(L))) {
    lua_settop(L, 1);
    return 1;
  }
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, lua_gettop(L) - 1, 1);
  return 1;
}

/* lbaselib's 'finishpcall'. */
static int finish_xpcall(lua_State *L, int status, lua_KContext extra) {
  if (status != LUA_OK && status != LUA_YIELD) {
    lua_pushboolean(L, 0);
    lua_pushvalue(L, -2);
    return 2;
  }
  return lua_gettop(L) - (int)extra;
}

/* xpcall(f, msgh, ...): lbaselib's, with 'msgh' behind guarded_msgh. It
 * does not call Lua's own: that one would be reachable through
 * debug.getinfo(level, "f") from 'f'. debug.traceback (C, calls no Lua)
 * is given as is, so its traceback has no extra level. */
static int guarded_xpcall(lua_State *L) {
  int n = lua_gettop(L);
  luaL_checktype(L, 2, LUA_TFUNCTION);
  if (lua_tocfunction(L, 2) != gc_lua_app_of(L)->traceback) {
    lua_pushvalue(L, 2);
    lua_pushcclosure(L, guarded_msgh, 1);
    lua_replace(L, 2);
  }
  lua_pushboolean(L, 1);
  lua_pushvalue(L, 1);
  lua_rotate(L, 3, 2);
  int st = lua_pcallk(L, n - 2, LUA_MULTRET, 2, 2, finish_xpcall);
  return finish_xpcall(L, st, 2);
}

/* A hook of the script would run with hooks off, and could remove the
 * stop: scripts get none (debug.gethook shows the host's). */
static int no_sethook(lua_State *L) {
  return luaL_error(L, "debug.sethook is not available to gcs scripts (the "
                       "time limit needs the hook)");
}

/* Finalizers run with hooks off, so no object of the script may get one.
 * Lua marks an object for finalization only if its metatable has a __gc
 * field when it is set, so refusing that here is enough. */
static void check_no_gc(lua_State *L) {
  if (lua_type(L, 2) != LUA_TTABLE)
    return;
  lua_pushliteral(L, "__gc");
  if (lua_rawget(L, 2) != LUA_TNIL) /* raw, as Lua's own check */
    luaL_argerror(L, 2, "__gc metamethods are not available to gcs scripts");
  lua_pop(L, 1);
}

/* setmetatable(t, mt): lbaselib's, without __gc. */
static int guarded_setmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_checktype(L, 1, LUA_TTABLE);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  if (luaL_getmetafield(L, 1, "__metatable") != LUA_TNIL)
    return luaL_error(L, "cannot change a protected metatable");
  lua_settop(L, 2);
  check_no_gc(L);
  lua_setmetatable(L, 1);
  return 1;
}

/* debug.setmetatable(v, mt): ldblib's, without __gc. */
static int guarded_dbsetmetatable(lua_State *L) {
  int t = lua_type(L, 2);
  luaL_argexpected(L, t == LUA_TNIL || t == LUA_TTABLE, 2, "nil or table");
  lua_settop(L, 2);
  check_no_gc(L);
  lua_setmetatable(L, 1);
  return 1;
}

/* setmetatable refuses __gc, but a metatable that C code made with __gc
 * keeps marking the objects C code gives it: its __gc rewritten, each new
 * one would run script code with hooks off. Scripts reach none of them:
 *  - getmetatable honours __metatable, which ours have ("gc.conn",
 *    "gc.timer") and liolib's "FILE*" gets here (the string its handles'
 *    getmetatable returns);
 *  - debug.getmetatable honours it too, as getmetatable (libraries such as
 *    dkjson and luassert call it on every value, so it cannot just raise);
 *  - debug.getregistry, which holds them all ("FILE*", "gc.conn",
 *    "_CLIBS"...), raises, "lua.unsafe" or not: unsafe turns on what may
 *    block the loop or load native code, never a way past the time limit
 *    (as debug.sethook);
 *  - a C function's frame is not the script's: debug.getlocal and setlocal
 *    see no locals there. Its temporaries would give lauxlib's buffer boxes
 *    ("_UBOX*", no __metatable) and let the script swap what a guard put
 *    on the C stack (guarded_xpcall's handler, a slot Lua reads when the
 *    stop raises, with hooks off);
 *  - debug.setupvalue sets no upvalue of a C function (the app of the gc
 *    functions, a wrapped coroutine: C code trusts them), and
 *    debug.setuservalue raises (C code trusts those it set).
 * Modules the operator installs (lfs...) make metatables of their own:
 * that is the operator's trust. */
static int no_getregistry(lua_State *L) {
  return luaL_error(L, "debug.getregistry is not available to gcs scripts "
                       "(finalizers run with hooks off)");
}

/* debug.getmetatable(v): lbaselib's getmetatable (a protected metatable
 * gives its __metatable field). */
static int guarded_dbgetmetatable(lua_State *L) {
  luaL_checkany(L, 1);
  if (!lua_getmetatable(L, 1)) {
    lua_pushnil(L);
    return 1;
  }
  luaL_getmetafield(L, 1, "__metatable");
  return 1;
}

static int no_setuservalue(lua_State *L) {
  return luaL_error(L, "debug.setuservalue is not available to gcs scripts "
                       "(C code relies on the values it set)");
}

/* Whether the arguments of debug.getlocal/setlocal ([thread,] level, n)
 * name the frame of a C function (ldblib's 'getthread'). Anything else
 * (a function instead of a level, a level out of range, bad arguments)
 * is left to Lua's own, which answers or raises as usual. */
static int c_frame(lua_State *L) {
  lua_State *L1 = L;
  int arg = 0, isnum;
  lua_Debug ar;
  if (lua_isthread(L, 1)) {
    L1 = lua_tothread(L, 1);
    arg = 1;
  }
  lua_Integer level = lua_tointegerx(L, arg + 1, &isnum);
  if (!isnum || level < 0 || level > INT_MAX ||
      !lua_getstack(L1, (int)level, &ar))
    return 0;
  lua_getinfo(L1, "S", &ar);
  return strcmp(ar.what, "C") == 0;
}

/* debug.getlocal: ldblib's, none for a C function's frame. */
static int guarded_getlocal(lua_State *L) {
  if (c_frame(L)) {
    luaL_pushfail(L);
    return 1;
  }
  return gc_lua_app_of(L)->db_getlocal(L);
}

/* debug.setlocal: ldblib's, none for a C function's frame. */
static int guarded_setlocal(lua_State *L) {
  if (c_frame(L)) {
    luaL_pushfail(L);
    return 1;
  }
  return gc_lua_app_of(L)->db_setlocal(L);
}

/* debug.setupvalue: ldblib's, for Lua functions only. */
static int guarded_setupvalue(lua_State *L) {
  luaL_argcheck(L, !lua_iscfunction(L, 1), 1,
                "Lua function expected: gcs scripts cannot set the upvalues "
                "of C functions");
  return gc_lua_app_of(L)->db_setupvalue(L);
}

/* Replaces debug.'name' (the debug table on top) by 'f'; Lua's own C
 * function in '*orig' if wanted (the field stays if it is not one). */
static void guard(lua_State *L, const char *name, lua_CFunction f,
                  lua_CFunction *orig) {
  if (orig != NULL) {
    lua_getfield(L, -1, name);
    *orig = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    if (*orig == NULL)
      return;
  }
  lua_pushcfunction(L, f);
  lua_setfield(L, -2, name);
}

void gc_lua_guards_open(lua_State *L, struct gc_lua_app *app) {
  lua_pushcfunction(L, guarded_xpcall);
  lua_setglobal(L, "xpcall");
  lua_pushcfunction(L, guarded_setmetatable);
  lua_setglobal(L, "setmetatable");
  if (luaL_getmetatable(L, LUA_FILEHANDLE) == LUA_TTABLE) {
    lua_pushliteral(L, LUA_FILEHANDLE);
    lua_setfield(L, -2, "__metatable");
  }
  lua_pop(L, 1);
  if (lua_getglobal(L, "debug") == LUA_TTABLE) {
    if (lua_getfield(L, -1, "traceback") == LUA_TFUNCTION)
      app->traceback = lua_tocfunction(L, -1);
    lua_pop(L, 1);
    lua_pushcfunction(L, no_sethook);
    lua_setfield(L, -2, "sethook");
    lua_pushcfunction(L, guarded_dbsetmetatable);
    lua_setfield(L, -2, "setmetatable");
    guard(L, "getregistry", no_getregistry, NULL);
    guard(L, "getmetatable", guarded_dbgetmetatable, NULL);
    guard(L, "setuservalue", no_setuservalue, NULL);
    guard(L, "getlocal", guarded_getlocal, &app->db_getlocal);
    guard(L, "setlocal", guarded_setlocal, &app->db_setlocal);
    guard(L, "setupvalue", guarded_setupvalue, &app->db_setupvalue);
  }
  lua_pop(L, 1);
}
