/* metrics.h - what the connection code tells /metrics (metrics.c) beyond
 * the built-in counters: who ended a connection with which close code, the
 * limits it crossed, and how long each adapter call took. Everything goes
 * to the calling loop's share for the connection's app (counters.h), by
 * that loop's thread: no lock, no allocation. */
#ifndef GC_METRICS_H
#define GC_METRICS_H

#include "internal.h"

static inline struct gc_app_shard *gc__app_shard(struct gc_loop *loop,
                                                     const struct gc_app *app) {
  return app && loop && loop->app_ctr ? &loop->app_ctr[app->id] : NULL;
}

/* Notes who began the end of 'c' (enum gc_closed_by) and the close code;
 * the first note wins, so a close the other side answers stays its
 * initiator's. 'code' 0: the one wslay sent, read at the end. */
static inline void gc__conn_closing(struct gc_conn *c, int by, int code) {
  if (!c->close_by) {
    c->close_by = (unsigned)by & 3u;
    c->closed_code = (uint16_t)code;
  }
}

/* An accepted connection ended (before on_disconnect): counts its close;
 * without a note, a peer that went away (EOF, reset) closed it, else the
 * host dropped it. */
void gc__metrics_conn_closed(struct gc_conn *c);

/* 'c' crossed its 'level' threshold (GC_STAT_STATUS_*) of 'stat'. */
static inline void gc__limit_hit(struct gc_conn *c, int stat, int level) {
  struct gc_app_shard *s = gc__app_shard(c->loop, c->app);
  if (s && stat >= 1 && stat <= GC_STAT_MAX && (level == 1 || level == 2))
    gc_counters_inc(&s->limit_hits[stat][level - 1], 1);
}

/* Runs 'call' (an adapter event of 'app', enum gc_event) and adds its wall
 * time to the loop's histogram: two reads of a monotonic clock. */
#define GC__TIMED(loop, app, ev, call)                                         \
  do {                                                                         \
    uint64_t gc__t0 = gc_clock_ticks();                                        \
    call;                                                                      \
    struct gc_app_shard *gc__s = gc__app_shard((loop), (app));                 \
    if (gc__s)                                                                 \
      gc_counters_time(gc__s, (ev), gc__t0, gc_clock_ticks());                 \
  } while (0)

#endif
