/* signal_guard.c - a second SIGINT/SIGTERM ends gcs even when its loop is
 * stuck.
 *
 * libuv delivers SIGINT/SIGTERM through its own handler and a pipe that the
 * loop reads when it turns: a loop stuck in native code (an adapter's
 * endless on_message) never sees them. So a handler of ours sits in front
 * of libuv's: it counts each signal, passes it on, and wakes a watcher
 * thread. When a second signal is not taken by the loop within
 * GC_SIGNAL_GRACE_MS, the watcher writes one line and _exits. A loop that
 * answers gets the second signal as before (drop the stragglers). Signals
 * are per process, so this is one process-wide guard, used by gcs only
 * (gc_loop_run); gc.testing's embedding keeps its own dispositions. */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "internal.h"
#include "log.h"

#define GC_SIGNAL_GRACE_MS 1000

static struct {
  atomic_uint received; /* SIGINT/SIGTERM caught by guard_handler */
  atomic_uint taken;    /* 'received' as on_signal last saw it */
  atomic_int last;      /* the latest signal number */
  atomic_bool quit;
  struct sigaction uv_int, uv_term; /* libuv's, passed every signal */
  sem_t wake;
  pthread_t thread;
  bool running;
} guard;

static void guard_handler(int signum, siginfo_t *info, void *uctx) {
  int saved = errno;
  atomic_fetch_add(&guard.received, 1);
  atomic_store(&guard.last, signum);
  const struct sigaction *uv = signum == SIGINT ? &guard.uv_int : &guard.uv_term;
  if (uv->sa_flags & SA_SIGINFO)
    uv->sa_sigaction(signum, info, uctx);
  else if (uv->sa_handler != SIG_DFL && uv->sa_handler != SIG_IGN)
    uv->sa_handler(signum);
  (void)sem_post(&guard.wake); /* async-signal-safe */
  errno = saved;
}

static void *guard_main(void *arg) {
  (void)arg;
  for (;;) {
    while (sem_wait(&guard.wake) != 0 && errno == EINTR)
      ;
    if (atomic_load(&guard.quit))
      return NULL;
    unsigned got = atomic_load(&guard.received);
    if (got < 2)
      continue; /* the first is the loop's: a graceful shutdown */
    for (int ms = 0; ms < GC_SIGNAL_GRACE_MS && atomic_load(&guard.taken) < got &&
                     !atomic_load(&guard.quit);
         ms += 10)
      nanosleep(&(struct timespec){0, 10 * 1000000L}, NULL);
    if (atomic_load(&guard.quit))
      return NULL;
    if (atomic_load(&guard.taken) < got) {
      char msg[256];
      snprintf(msg, sizeof msg,
               "signal %d received again, and the event loop has not taken "
               "a signal for %d ms (stuck in an adapter?): exiting at once, "
               "without shutdown",
               atomic_load(&guard.last), GC_SIGNAL_GRACE_MS);
      gc_log_urgent(GCL_ERR, msg);
      _exit(GC_EXIT_STUCK);
    }
  }
}

int gc__signal_guard_start(void) {
  if (guard.running)
    return 0;
  atomic_store(&guard.received, 0);
  atomic_store(&guard.taken, 0);
  atomic_store(&guard.quit, false);
  if (sem_init(&guard.wake, 0, 0) != 0)
    return errno;
  /* The watcher takes no signals itself. */
  sigset_t all, old;
  sigfillset(&all);
  int rc = pthread_sigmask(SIG_SETMASK, &all, &old);
  if (rc == 0) {
    rc = pthread_create(&guard.thread, NULL, guard_main, NULL);
    (void)pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  if (rc != 0) {
    sem_destroy(&guard.wake);
    return rc;
  }
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_sigaction = guard_handler;
  sa.sa_flags = SA_SIGINFO | SA_RESTART;
  sigfillset(&sa.sa_mask);
  (void)sigaction(SIGINT, NULL, &guard.uv_int);
  (void)sigaction(SIGTERM, NULL, &guard.uv_term);
  (void)sigaction(SIGINT, &sa, NULL);
  (void)sigaction(SIGTERM, &sa, NULL);
  guard.running = true;
  return 0;
}

void gc__signal_guard_stop(void) {
  if (!guard.running)
    return;
  (void)sigaction(SIGINT, &guard.uv_int, NULL);
  (void)sigaction(SIGTERM, &guard.uv_term, NULL);
  atomic_store(&guard.quit, true);
  (void)sem_post(&guard.wake);
  (void)pthread_join(guard.thread, NULL);
  sem_destroy(&guard.wake);
  guard.running = false;
}

unsigned gc__signal_guard_received(void) { return atomic_load(&guard.received); }

void gc__signal_guard_take(unsigned received) {
  unsigned t = atomic_load(&guard.taken);
  while (t < received && !atomic_compare_exchange_weak(&guard.taken, &t, received))
    ;
}
