/* watchdog.c - the CPU-time limit of one entry into Lua (lua.time_limit_ms).
 *
 * A count hook makes the Lua VM trap on every instruction, which halves
 * the speed of game logic (bench/NOTES.md). So nothing is hooked while a
 * script runs normally; a watchdog arms the stop only once an entry has run
 * too long (as Lua's 'laction' and skynet's 'signal_hook' do):
 *
 *  - each thread that runs Lua has one POSIX timer on its own CPU clock,
 *    shared by every state that runs on it (a worker's states, or, under
 *    gc.testing, every worker's). It is made at the thread's first entry
 *    and deleted when the thread ends (a pthread key's destructor) or at
 *    adapter_finalize for the thread calling it. It ticks for every 'tick'
 *    of CPU that thread uses (never while the loop waits for the network)
 *    and signals that thread only;
 *  - an outermost entry records its app and Lua thread in the thread's
 *    watchdog and makes its sequence number odd, the end makes it even:
 *    plain stores, no system call;
 *  - the signal handler counts the ticks that find the same odd number.
 *    When they add up to the limit of the app in the entry it sets the
 *    stop hook (limits.c) on the Lua thread that is running, with
 *    lua_sethook: the one Lua call meant to be made from a signal handler.
 *    It does so again on each later tick, so a hook change by the
 *    interrupted code cannot undo it.
 *
 * The tick is the finest any state of the thread asks for (its limit / 8,
 * between 2 and 100 ms): a state with a shorter limit than those before it
 * makes its thread's timer tick faster at its first entry there.
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
 * The signal handler finds a thread's watchdog through the timer's
 * sigev_value: a slot number and the generation the slot had when the
 * timer was made, never a pointer. A tick still pending when a watchdog
 * is deleted finds a cleared slot, or a slot reused under another
 * generation, and does nothing. A watchdog is deleted only on its own
 * thread, between entries, and its signal goes to that thread only: the
 * handler never races with the deletion of what it finds. It touches an
 * app only while the sequence number says one of its entries runs, so
 * never a state that was closed. Signal handler and thread share only
 * lock-free atomics, ordered with atomic_signal_fence. */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <lauxlib.h>

#include "gc_lua.h"

_Static_assert(ATOMIC_POINTER_LOCK_FREE == 2 && ATOMIC_INT_LOCK_FREE == 2 &&
                   ATOMIC_LLONG_LOCK_FREE == 2,
               "the watchdog needs lock-free atomics in its signal handler");

/* glibc names the field only from 2.37 on. */
#ifndef sigev_notify_thread_id
#define sigev_notify_thread_id _sigev_un._tid
#endif

#define WD_SLOTS 1024 /* threads with a watchdog at once */
#define WD_SLOT_BITS 10
#define WD_TICKS 8 /* ticks per limit: the stop comes within limit + 1/8 */
#define WD_TICK_MIN_NS 2000000ull   /* 2 ms: the CPU clock's grain */
#define WD_TICK_MAX_NS 100000000ull /* 100 ms */

/* The watchdog of one thread. The handler's own fields ('seen', 'ticks')
 * are touched by nothing else. */
struct gc_lua_wd_thread {
  int slot;
  timer_t timer;
  _Atomic uint64_t tick_ns;
  atomic_uint seq;                  /* odd while an outermost entry runs */
  _Atomic(struct gc_lua_app *) app; /* whose entry it is */
  _Atomic(lua_State *) running;     /* the Lua thread executing now */
  unsigned seen, ticks;
};

/* Slot 'i' holds a watchdog while 'gen' is the generation its timer was
 * made with (0: empty). Set: 'wd' then 'gen'; cleared: 'gen' then 'wd'. */
static struct {
  atomic_uint gen;
  _Atomic(struct gc_lua_wd_thread *) wd;
} slots[WD_SLOTS];
static unsigned next_gen; /* guarded by slots_lock */
static pthread_mutex_t slots_lock = PTHREAD_MUTEX_INITIALIZER;

/* This thread's watchdog, and the key whose destructor deletes it when the
 * thread ends. */
static _Thread_local struct gc_lua_wd_thread *thread_wd;
static pthread_key_t thread_key;
static pthread_once_t thread_key_once = PTHREAD_ONCE_INIT;
static int thread_key_err;

/* The watchdog's signal, a real-time one (SIGRTMIN is a libc call). */
static int wd_signal(void) { return SIGRTMIN + 3; }

/* Stop mode on one Lua thread: the hook runs before every instruction. */
static void arm_stop(lua_State *L) {
  lua_sethook(L, gc_lua_budget_hook, LUA_MASKLINE | LUA_MASKCOUNT, 1);
}

static void on_tick(int sig, siginfo_t *si, void *uctx) {
  (void)sig;
  (void)uctx;
  if (si->si_code != SI_TIMER)
    return;
  uintptr_t v = (uintptr_t)si->si_value.sival_ptr;
  size_t slot = v & (WD_SLOTS - 1);
  unsigned gen = (unsigned)(v >> WD_SLOT_BITS);
  if (gen == 0 ||
      atomic_load_explicit(&slots[slot].gen, memory_order_relaxed) != gen)
    return; /* a tick of a watchdog that is gone */
  atomic_signal_fence(memory_order_acquire);
  struct gc_lua_wd_thread *t =
      atomic_load_explicit(&slots[slot].wd, memory_order_relaxed);
  if (t == NULL)
    return;
  unsigned seq = atomic_load_explicit(&t->seq, memory_order_relaxed);
  atomic_signal_fence(memory_order_acquire);
  if ((seq & 1u) == 0)
    return; /* not in Lua */
  if (seq != t->seen) {
    t->seen = seq; /* an entry that began during the last tick */
    t->ticks = 0;
    return;
  }
  struct gc_lua_app *app = atomic_load_explicit(&t->app, memory_order_relaxed);
  if (app == NULL)
    return;
  uint64_t tick = atomic_load_explicit(&t->tick_ns, memory_order_relaxed);
  uint64_t need = (app->wd.limit_ns + tick - 1) / tick;
  if (++t->ticks < need)
    return;
  atomic_store_explicit(&app->wd.fired, 1, memory_order_relaxed);
  atomic_signal_fence(memory_order_release);
  lua_State *run = atomic_load_explicit(&t->running, memory_order_relaxed);
  if (run)
    arm_stop(run);
  if (run != app->L)
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

static int set_tick(timer_t timer, uint64_t tick) {
  struct itimerspec its;
  its.it_value.tv_sec = (time_t)(tick / 1000000000u);
  its.it_value.tv_nsec = (long)(tick % 1000000000u);
  its.it_interval = its.it_value;
  return timer_settime(timer, 0, &its, NULL) != 0 ? errno : 0;
}

/* Deletes watchdog 't' of the calling thread: its slot first, so that a
 * tick still pending finds nothing, then its timer. */
static void thread_wd_free(struct gc_lua_wd_thread *t) {
  pthread_mutex_lock(&slots_lock);
  atomic_store(&slots[t->slot].gen, 0);
  atomic_store(&slots[t->slot].wd, NULL);
  pthread_mutex_unlock(&slots_lock);
  timer_delete(t->timer);
  free(t);
}

static void thread_exit(void *p) {
  if (thread_wd == p)
    thread_wd = NULL;
  thread_wd_free(p);
}

static void key_create(void) {
  thread_key_err = pthread_key_create(&thread_key, thread_exit);
}

/* Makes the calling thread's watchdog, ticking every 'tick' ns. 0 or an
 * errno (EBUSY: the signal is someone else's). */
static int thread_wd_make(uint64_t tick) {
  int wd_signo = wd_signal();
  pthread_once(&thread_key_once, key_create);
  if (thread_key_err != 0)
    return thread_key_err;
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
  struct gc_lua_wd_thread *t = calloc(1, sizeof *t);
  if (t == NULL)
    return ENOMEM;
  atomic_init(&t->tick_ns, tick);
  atomic_init(&t->seq, 0);
  atomic_init(&t->app, NULL);
  atomic_init(&t->running, NULL);
  t->slot = -1;
  unsigned gen = 0;
  pthread_mutex_lock(&slots_lock);
  for (int i = 0; i < WD_SLOTS && t->slot < 0; i++)
    if (atomic_load(&slots[i].gen) == 0 && atomic_load(&slots[i].wd) == NULL)
      t->slot = i;
  if (t->slot >= 0) {
    if (++next_gen > UINT32_MAX >> WD_SLOT_BITS)
      next_gen = 1; /* what fits beside the slot in sigev_value */
    gen = next_gen;
    atomic_store(&slots[t->slot].wd, t); /* before the generation */
  }
  pthread_mutex_unlock(&slots_lock);
  if (t->slot < 0) {
    free(t);
    return ENFILE;
  }
  struct sigevent sev;
  memset(&sev, 0, sizeof sev);
  sev.sigev_notify = SIGEV_THREAD_ID;
  sev.sigev_signo = wd_signo;
  sev.sigev_value.sival_ptr =
      (void *)(((uintptr_t)gen << WD_SLOT_BITS) | (uintptr_t)t->slot);
  sev.sigev_notify_thread_id = gettid();
  if (timer_create(CLOCK_THREAD_CPUTIME_ID, &sev, &t->timer) != 0) {
    err = errno;
    atomic_store(&slots[t->slot].wd, NULL);
    free(t);
    return err;
  }
  atomic_store(&slots[t->slot].gen, gen); /* ticks may reach it now */
  if ((err = set_tick(t->timer, tick)) != 0 ||
      (err = pthread_setspecific(thread_key, t)) != 0) {
    thread_wd_free(t);
    return err;
  }
  thread_wd = t;
  return 0;
}

void gc_lua_watchdog_thread_end(void) {
  struct gc_lua_wd_thread *t = thread_wd;
  if (t == NULL)
    return;
  thread_wd = NULL;
  (void)pthread_setspecific(thread_key, NULL);
  thread_wd_free(t);
}

int gc_lua_watchdog_start(struct gc_lua_app *app) {
  struct gc_lua_watch *a = &app->wd;
  uint64_t limit_ms = app->time_limit_ms;
  if (a->on || limit_ms == 0)
    return EINVAL;
  /* The tick: limit / WD_TICKS within bounds. */
  uint64_t limit_ns = limit_ms > UINT64_MAX / 1000000u ? UINT64_MAX
                                                       : limit_ms * 1000000u;
  uint64_t tick = limit_ns / WD_TICKS;
  if (tick < WD_TICK_MIN_NS)
    tick = WD_TICK_MIN_NS;
  if (tick > WD_TICK_MAX_NS)
    tick = WD_TICK_MAX_NS;
  a->limit_ns = limit_ns > UINT64_MAX - tick ? UINT64_MAX - tick : limit_ns;
  a->tick_ns = tick;
  atomic_store(&a->fired, 0);
  if (thread_wd == NULL) { /* the loading thread must have one too */
    int err = thread_wd_make(tick);
    if (err != 0)
      return err;
  }
  a->on = 1;
  return 0;
}

void gc_lua_watchdog_stop(struct gc_lua_app *app) { app->wd.on = 0; }

/* No watchdog on this thread, for one of its apps: counted instructions
 * stand in for it, as when the app was loaded without one. */
static void fall_back(struct gc_lua_app *app, int err) {
  app->wd.on = 0;
  atomic_store_explicit(&app->wd.fired, 0, memory_order_relaxed);
  if (app->budget == 0) {
    gc_lua_log(app, GCL_WARN,
               "no CPU-time watchdog (%s): counting %d instructions per call "
               "instead",
               strerror(err), GC_LUA_FALLBACK_BUDGET);
    gc_lua_set_budget(app, GC_LUA_FALLBACK_BUDGET);
  } else {
    gc_lua_log(app, GCL_WARN,
               "no CPU-time watchdog (%s): only the instruction budget "
               "applies",
               strerror(err));
  }
}

static void seq_add(struct gc_lua_wd_thread *t, unsigned n) {
  atomic_signal_fence(memory_order_seq_cst);
  atomic_store_explicit(
      &t->seq, atomic_load_explicit(&t->seq, memory_order_relaxed) + n,
      memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
}

void gc_lua_watchdog_enter(struct gc_lua_app *app) {
  struct gc_lua_watch *a = &app->wd;
  struct gc_lua_wd_thread *t = thread_wd;
  if (t == NULL) {
    int err = thread_wd_make(a->tick_ns);
    if (err != 0) {
      fall_back(app, err);
      return;
    }
    t = thread_wd;
  }
  if (a->tick_ns < atomic_load_explicit(&t->tick_ns, memory_order_relaxed) &&
      set_tick(t->timer, a->tick_ns) == 0)
    atomic_store_explicit(&t->tick_ns, a->tick_ns, memory_order_relaxed);
  atomic_store_explicit(&a->fired, 0, memory_order_relaxed);
  unsigned seq = atomic_load_explicit(&t->seq, memory_order_relaxed);
  if (seq & 1u) { /* inside another state's entry on this thread */
    a->outer = atomic_load_explicit(&t->app, memory_order_relaxed);
    a->outer_running = atomic_load_explicit(&t->running, memory_order_relaxed);
  } else {
    a->outer = NULL;
  }
  atomic_store_explicit(&t->app, app, memory_order_relaxed);
  atomic_store_explicit(&t->running, app->enter_co ? app->enter_co : app->L,
                        memory_order_relaxed);
  a->cur = t;
  seq_add(t, (seq & 1u) ? 2 : 1); /* odd either way: a new entry */
}

int gc_lua_watchdog_leave(struct gc_lua_app *app) {
  struct gc_lua_watch *a = &app->wd;
  struct gc_lua_wd_thread *t = a->cur;
  if (t == NULL)
    return 0;
  a->cur = NULL;
  if (a->outer) { /* the outer entry goes on, with a fresh count */
    atomic_store_explicit(&t->app, a->outer, memory_order_relaxed);
    atomic_store_explicit(&t->running, a->outer_running, memory_order_relaxed);
    seq_add(t, 2);
    a->outer = NULL;
  } else {
    seq_add(t, 1);
  }
  return atomic_load_explicit(&a->fired, memory_order_relaxed);
}

/* ---- the running thread: coroutine.resume, wrap and close ---------------- */

/* Outside an entry timed by a watchdog there is nothing to record. */
static void set_running(struct gc_lua_watch *w, lua_State *co) {
  struct gc_lua_wd_thread *t = w->cur;
  if (t == NULL)
    return;
  atomic_signal_fence(memory_order_seq_cst);
  atomic_store_explicit(&t->running, co, memory_order_relaxed);
  atomic_signal_fence(memory_order_seq_cst);
}

/* 'L' runs again after 'co' gave control back; a stop that fired while
 * 'co' ran is passed on to 'L' (the coroutine died of it). */
static void back_in(struct gc_lua_watch *w, lua_State *L) {
  set_running(w, L);
  if (atomic_load_explicit(&w->fired, memory_order_relaxed))
    arm_stop(L);
}

void gc_lua_watchdog_into(struct gc_lua_app *app, lua_State *co) {
  set_running(&app->wd, co);
}

void gc_lua_watchdog_back(struct gc_lua_app *app, lua_State *L) {
  back_in(&app->wd, L);
}

/* Resumes 'co' with 'narg' values from L's top, recorded as the running
 * thread meanwhile; Lua's lcorolib 'auxresume' otherwise (nothing here can
 * raise, so nothing can skip giving 'running' back). The values it
 * yielded or returned are moved to L: their number, or -1 and an error
 * value on L. */
static int resume_in(lua_State *L, lua_State *co, int narg) {
  struct gc_lua_app *app = gc_lua_app_of(L);
  struct gc_lua_watch *w = &app->wd;
  if (!lua_checkstack(co, narg)) {
    lua_pushliteral(L, "too many arguments to resume");
    return -1;
  }
  lua_xmove(L, co, narg);
  int nres;
  struct gc_lua_chain link = {L, co, app->chain};
  int pmade = app->wait_made;
  app->chain = &link;
  app->wait_made = 0;
  set_running(w, co);
  int st = lua_resume(co, L, narg, &nres);
  back_in(w, L);
  int made = app->wait_made;
  app->wait_made = pmade;
  app->chain = link.up;
  if (st == LUA_YIELD && made) { /* it waits (coro.c): so must L */
    lua_pop(co, nres);
    return -2;
  }
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

/* The coroutine resumed from L waits for the host: L yields too, as the
 * wait's thread, and 'k' resumes the coroutine with the answer. */
static int wait_with(lua_State *L, lua_KFunction k) {
  struct gc_lua_app *app = gc_lua_app_of(L);
  gc_lua_wait_rehome(L, app);
  app->wait_made = 1;
  return lua_yieldk(L, 0, 0, k);
}

/* coroutine.resume(co, ...): lcorolib 'luaB_coresume'; also its
 * continuation after a wait (the answer's values after 'co'). */
static int co_resume_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status, (void)ctx;
  lua_State *co = lua_tothread(L, 1);
  int r = resume_in(L, co, lua_gettop(L) - 1);
  if (r == -2)
    return wait_with(L, co_resume_k);
  if (r < 0) {
    lua_pushboolean(L, 0);
    lua_insert(L, -2);
    return 2;
  }
  lua_pushboolean(L, 1);
  lua_insert(L, -(r + 1));
  return r + 1;
}

static int co_resume(lua_State *L) {
  luaL_checktype(L, 1, LUA_TTHREAD);
  return co_resume_k(L, LUA_OK, 0);
}

static int co_wrapped(lua_State *L);
static int co_wrapped_k(lua_State *L, int status, lua_KContext ctx) {
  (void)status, (void)ctx;
  return co_wrapped(L);
}

/* A function made by coroutine.wrap (upvalue 1: its coroutine): lcorolib
 * 'auxwrap', which raises the coroutine's error in the caller, with the
 * caller's position when it is a string, after closing the coroutine. */
static int co_wrapped(lua_State *L) {
  lua_State *co = lua_tothread(L, lua_upvalueindex(1));
  int r = resume_in(L, co, lua_gettop(L));
  if (r == -2)
    return wait_with(L, co_wrapped_k);
  if (r >= 0)
    return r;
  int st = lua_status(co);
  /* A coroutine the stop killed keeps Lua's hooks off: its to-be-closed
   * variables would run where no stop reaches them, so they are not run. */
  if (st != LUA_OK && st != LUA_YIELD && !gc_lua_thread_stopped(co)) {
    struct gc_lua_watch *w = &gc_lua_app_of(L)->wd;
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
  struct gc_lua_watch *w = &app->wd;
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
