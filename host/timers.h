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
};

void gc_timers_init(struct gc_timers *t);
/* Frees every pending timer without calling it. */
void gc_timers_free(struct gc_timers *t);
/* Schedules 'cb(ctx, arg)' at now + ms (ms >= 0), then every 'repeat' ms
 * if repeat > 0. Writes the id. 0, EINVAL or ENOMEM. */
int gc_timers_start(struct gc_timers *t, int64_t now, int64_t ms, int64_t repeat,
                    gc_timer_cb cb, void *ctx, intptr_t arg, intptr_t *id)
    __attribute__((warn_unused_result));
/* Cancels: 0, or EINVAL for an unknown, fired (one-shot) or stopped id. */
int gc_timers_stop(struct gc_timers *t, intptr_t id);
/* Earliest deadline, or -1 when no timer is pending. */
int64_t gc_timers_next_due(const struct gc_timers *t);
/* Runs every timer due at or before 'now', in deadline order; returns how
 * many callbacks ran. Callbacks may start and stop timers. */
size_t gc_timers_run(struct gc_timers *t, int64_t now);

#endif
