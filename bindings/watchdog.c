/* watchdog.c - the CPU-time limit of one entry into Lua (lua.time_limit_ms).
 *
 * A count hook makes the Lua VM trap on every instruction, which halves
 * the speed of game logic (bench/NOTES.md). So nothing is hooked while a
 * script runs normally; a watchdog arms the stop only once an entry has run
 * too long (house style 12; Lua's 'laction', skynet's 'signal_hook'):
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
 * of coroutine.wrap and coroutine.close, so they are wrapped to record it:
 * a loop inside a coroutine is stopped too, and the stop is passed on to
 * the resumer when the coroutine dies of it.
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
static int wd_signo; /* set under slots_lock, before any timer exists */

int gc_lua_watchdog_signal(void) { return SIGRTMIN + 3; }

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
  if (run != w->main)
    arm_stop(w->main);
}

/* Installs the signal handler unless another one holds the signal.
 * Called with slots_lock held. 0 or an errno. */
static int install(void) {
  wd_signo = gc_lua_watchdog_signal();
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

int gc_lua_watchdog_start(struct gc_lua_app *app, uint64_t limit_ms) {
  struct gc_lua_watchdog *w = &app->wd;
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
  w->limit_ms = limit_ms;
  w->main = app->L;
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

/* Calls upvalue 'fn' with the arguments while 'co' is the running thread,
 * then makes 'L' running again, whatever happened (hence the pcall), and
 * passes a stop on to 'L' if the coroutine died of it. */
static int call_in(lua_State *L, lua_State *co, int fn) {
  struct gc_lua_app *app = gc_lua_app_of(L);
  struct gc_lua_watchdog *w = &app->wd;
  int n = lua_gettop(L);
  lua_pushvalue(L, fn);
  lua_insert(L, 1);
  atomic_signal_fence(memory_order_release);
  atomic_store_explicit(&w->running, co, memory_order_relaxed);
  atomic_signal_fence(memory_order_release);
  int st = lua_pcall(L, n, LUA_MULTRET, 0);
  atomic_store_explicit(&w->running, L, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
  if (atomic_load_explicit(&w->fired, memory_order_relaxed))
    arm_stop(L);
  if (st != LUA_OK)
    return lua_error(L); /* the same error object, as if not wrapped */
  return lua_gettop(L);
}

/* coroutine.resume(co, ...) and coroutine.close(co): upvalue 1 is Lua's. */
static int co_with_arg(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD); /* Lua's check, raised from here so
                                        that the message names the function */
  return call_in(L, lua_tothread(L, 1), lua_upvalueindex(1));
}

/* A function made by coroutine.wrap: upvalue 1 is Lua's, 2 its thread. */
static int co_wrapped(lua_State *L) {
  return call_in(L, lua_tothread(L, lua_upvalueindex(2)),
                 lua_upvalueindex(1));
}

/* coroutine.wrap(f): Lua's wrap, whose function keeps its coroutine as its
 * first upvalue (lcorolib 'auxwrap'); that thread is recorded with it. */
static int co_wrap(lua_State *L) {
  luaL_checktype(L, 1, LUA_TFUNCTION);
  lua_settop(L, 1);
  lua_pushvalue(L, lua_upvalueindex(1));
  lua_insert(L, 1);
  lua_call(L, 1, 1);
  if (lua_tocfunction(L, -1) == NULL || lua_getupvalue(L, -1, 1) == NULL)
    return 1;
  if (!lua_isthread(L, -1)) {
    lua_pop(L, 1);
    return 1; /* not the shape we know: unwrapped, still correct */
  }
  lua_pushcclosure(L, co_wrapped, 2);
  return 1;
}

void gc_lua_watchdog_open(lua_State *L) {
  if (lua_getglobal(L, "coroutine") != LUA_TTABLE) {
    lua_pop(L, 1);
    return;
  }
  static const char *const with_arg[] = {"resume", "close"};
  for (size_t i = 0; i < sizeof with_arg / sizeof *with_arg; i++) {
    if (lua_getfield(L, -1, with_arg[i]) == LUA_TFUNCTION) {
      lua_pushcclosure(L, co_with_arg, 1);
      lua_setfield(L, -2, with_arg[i]);
    } else {
      lua_pop(L, 1);
    }
  }
  if (lua_getfield(L, -1, "wrap") == LUA_TFUNCTION) {
    lua_pushcclosure(L, co_wrap, 1);
    lua_setfield(L, -2, "wrap");
  } else {
    lua_pop(L, 1);
  }
  lua_pop(L, 1);
}
