/* timers.h - the per-loop timer heap.
 *
 * Every host timer (connection timers, close-drain deadlines, application
 * timers) lives in one binary min-heap per loop, driven by a single
 * uv_timer_t armed at the earliest deadline, or by gc.testing's virtual
 * clock. Timers are addressed by generation-tagged ids, so a callback that
 * holds the id of a fired or cancelled timer can never stop another one,
 * and memory is never shared with a libuv handle (no per-connection
 * uv_timer_t). */
#ifndef GC_TIMERS_H
#define GC_TIMERS_H

#include <stddef.h>
#include <stdint.h>

#include "handle_table.h"

typedef void (*gc_timer_cb)(void *ctx, intptr_t arg);

struct gc_timer {
  int64_t due;
  uint64_t seq; /* FIFO order among equal deadlines */
  int64_t repeat;
  gc_timer_cb cb;
  void *ctx;
  intptr_t arg;
  intptr_t id;
  size_t idx; /* position in the heap */
};

struct gc_timers {
  struct gc_timer **heap;
  size_t count, cap;
  uint64_t seq;
  struct gc_handle_table ids;
  /* Set for gc.testing's virtual clock: a late repeating timer keeps its
   * phase and fires once per missed period (advance(1000) on a 10 ms
   * interval fires 100 times). Clear, as in real time, it fires once and
   * is rescheduled from 'now' (no burst after a stall). */
  int exact_steps;
  int running;     /* inside gc_timers_run */
  int64_t run_now; /* the 'now' of that run */
};

void gc_timers_init(struct gc_timers *t);
/* Frees every pending timer without calling it. */
void gc_timers_free(struct gc_timers *t);
/* Schedules 'cb(ctx, arg)' at now + ms (ms >= 0), then every 'repeat' ms
 * if repeat > 0. Writes the id. 0, EINVAL or ENOMEM. Started from a
 * callback of gc_timers_run, it fires in a later run, never in that one
 * (as libuv's timers), and never before that run's 'now'. */
int gc_timers_start(struct gc_timers *t, int64_t now, int64_t ms, int64_t repeat,
                    gc_timer_cb cb, void *ctx, intptr_t arg, intptr_t *id)
    __attribute__((warn_unused_result));
/* Cancels: 0, or EINVAL for an unknown, fired (one-shot) or stopped id. */
int gc_timers_stop(struct gc_timers *t, intptr_t id);
/* Earliest deadline, or -1 when no timer is pending. */
int64_t gc_timers_next_due(const struct gc_timers *t);
/* Runs the timers due at or before 'now' that were pending when the run
 * began, in deadline order, each at most once; returns how many callbacks
 * ran. Callbacks may start and stop timers; what they start, and the
 * repeating timers the run re-queues, wait for a later run, so the run
 * always returns (a 0 ms timer that restarts itself is "next turn", not a
 * hang). A repeating timer is then due 'repeat' after its deadline, or, if
 * that is already past and 'exact_steps' is clear, 'repeat' after 'now'.
 * Not reentrant: callbacks must not call it. */
size_t gc_timers_run(struct gc_timers *t, int64_t now);

#endif
