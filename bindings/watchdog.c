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
 *    When they add up to the limit it sets the stop hook (limits.c) on the Lua
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
 * guard.c keeps scripts out of each such place.
 *
 * The signal handler finds the app through a slot number (the timer's
 * sigev_value), never a pointer: a tick still pending when an app goes
 * away finds an empty slot. Signal handler and loop share only lock-free
 * atomics, ordered with atomic_signal_fence (same thread). */
#include <errno.h>
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
