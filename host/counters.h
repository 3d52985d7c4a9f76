/* counters.h - process-wide named performance counters (Game Carrier's
 * counter API), shared by every loop of the process.
 *
 * Ids are indexes, stable for the life of the process. Values are 64-bit
 * atomics for every counter: the "fast, not thread-safe" kind of the docs
 * costs the same as a relaxed atomic on the platforms we build for, so both
 * kinds are safe. Built-in counters ("gcs.*") exist from the start. */
#ifndef GC_COUNTERS_H
#define GC_COUNTERS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <uv.h>
#if defined(__x86_64__)
#include <x86intrin.h>
#endif

#include "conn_limits.h"

typedef void (*gc_counter_cb)(intptr_t user, int32_t id, int64_t value);

struct gc_counter_sub {
  gc_counter_cb cb;
  intptr_t user;
};

struct gc_counter {
  char *name;
  _Atomic int64_t value;
  int system;
  struct gc_counter_sub *subs; /* guarded by the registry lock */
  size_t sub_count;
};

/* One worker loop's share of the built-in counters: written by that loop
 * only (a plain load and store, no locked instruction), read by anyone;
 * padded so that two loops never write one cache line. */
#define GC_COUNTER_SHARDS_MAX 64

struct gc_counters {
  pthread_mutex_t lock; /* creation, names, subscriptions */
  struct gc_counter **items;
  _Atomic size_t count;
  size_t cap;
  struct gc_counter_shard *shards[GC_COUNTER_SHARDS_MAX]; /* not owned */
  size_t shard_count; /* set before the loops run */
};

/* Built-in counters, created by gc_counters_init in this order. */
enum gc_system_counter {
  GC_CTR_CONNECTIONS,   /* open connections */
  GC_CTR_ACCEPTED,      /* connections accepted since start */
  GC_CTR_MESSAGES_IN,
  GC_CTR_MESSAGES_OUT,
  GC_CTR_BYTES_IN,
  GC_CTR_BYTES_OUT,
  GC_CTR_QUEUED_BYTES,  /* bytes waiting in output queues */
  GC_CTR_SYSTEM_COUNT
};

struct gc_counter_shard {
  char pad_before[64];
  _Atomic int64_t v[GC_CTR_SYSTEM_COUNT];
  char pad_after[64];
};

/* /metrics' figures of an app beyond the built-in counters (metrics.c
 * renders them, summed over the loops). */

/* Who began a connection's end (gcs_connections_closed_total{by}). */
enum gc_closed_by {
  GC_CLOSED_BY_CLIENT = 1, /* its close frame came first, or it vanished */
  GC_CLOSED_BY_SERVER,     /* ours came first: the app, the shutdown, an error */
  GC_CLOSED_BY_DROP,       /* cut with no close frame: DROP, a RED limit, ... */
  GC_CLOSED_BY_COUNT
};
/* Close codes 1000..1015 one by one, then 3xxx, 4xxx and other. */
#define GC_CLOSE_CODE_BUCKETS 19

/* The adapter events whose wall time is measured (gcs_handler_seconds). */
enum gc_event {
  GC_EV_CONNECT,
  GC_EV_MESSAGE,
  GC_EV_MESSAGE_SENT,
  GC_EV_DISCONNECT,
  GC_EV_TIMER,
  GC_EV_ISSUE,
  GC_EV_CHANNEL_MESSAGE,
  GC_EV_COUNT
};
#define GC_HANDLER_BUCKETS 16 /* bounds; one more slot counts the rest */
/* The bounds in nanoseconds, ascending (metrics.c), and in ticks of
 * gc_clock_ticks (set by gc_counters_init). */
extern const uint64_t gc_handler_bounds_ns[GC_HANDLER_BUCKETS];
extern uint64_t gc_handler_bounds_ticks[GC_HANDLER_BUCKETS];

/* The clock of handler times, read twice per adapter call: the CPU's
 * time-stamp counter where it runs at a constant rate (x86-64 with an
 * invariant TSC: 13 ns a read on the VM of bench/NOTES.md, where
 * uv_hrtime's clock_gettime through kvm-clock takes 34), else uv_hrtime's
 * nanoseconds. gc_counters_init calibrates it once per process. */
extern int gc_clock_tsc;
extern double gc_clock_ticks_per_ns;
static inline uint64_t gc_clock_ticks(void) {
#if defined(__x86_64__)
  if (gc_clock_tsc)
    return __rdtsc();
#endif
  return uv_hrtime();
}

/* One app's share on one worker loop: its built-in counters and the
 * figures above, written by that loop only, read by anyone. */
struct gc_app_shard {
  struct gc_counter_shard c;
  _Atomic uint64_t closed[GC_CLOSED_BY_COUNT][GC_CLOSE_CODE_BUCKETS];
  _Atomic uint64_t limit_hits[GC_STAT_MAX + 1][2]; /* [stat][YELLOW 0, RED 1] */
  struct {
    _Atomic uint64_t bucket[GC_HANDLER_BUCKETS + 1]; /* not cumulative */
    _Atomic uint64_t sum_ticks;
  } handler[GC_EV_COUNT];
  char pad_after[64];
};

int gc_counters_init(struct gc_counters *c) __attribute__((warn_unused_result));
/* Adds a loop's share to what reading a built-in counter sums (before the
 * loops run). 0 or ENOSPC. */
int gc_counters_add_shard(struct gc_counters *c, struct gc_counter_shard *s);
void gc_counters_free(struct gc_counters *c);
/* Creates a counter, or returns the id of the one with that name. -1 on a
 * bad name or no memory. */
int32_t gc_counters_create(struct gc_counters *c, const char *name);
int32_t gc_counters_open(struct gc_counters *c, const char *name);
/* Writes up to 'max' names; returns the number of counters ('system_only':
 * only the built-in ones). */
int32_t gc_counters_names(struct gc_counters *c, const char **names, int32_t max,
                          int system_only);
int gc_counters_get(struct gc_counters *c, int32_t id, int64_t *value);
int gc_counters_set(struct gc_counters *c, int32_t id, int64_t value);
int gc_counters_add(struct gc_counters *c, int32_t id, int64_t delta);
int gc_counters_subscribe(struct gc_counters *c, int32_t id, gc_counter_cb cb,
                          intptr_t user);
int gc_counters_unsubscribe(struct gc_counters *c, int32_t id, gc_counter_cb cb,
                            intptr_t user);

/* Hot-path add to a loop's share of a built-in counter, by that loop's
 * thread only: no checks, no subscribers. */
static inline void gc_counters_bump(struct gc_counter_shard *s, int id, int64_t d) {
  atomic_store_explicit(&s->v[id],
                        atomic_load_explicit(&s->v[id], memory_order_relaxed) + d,
                        memory_order_relaxed);
}

/* The same for a shard's other figures (plain uint64_t arithmetic). */
static inline void gc_counters_inc(_Atomic uint64_t *v, uint64_t d) {
  atomic_store_explicit(v, atomic_load_explicit(v, memory_order_relaxed) + d,
                        memory_order_relaxed);
}

/* One adapter call of event 'ev' from 'start' to 'end' (gc_clock_ticks):
 * a bucket and the sum. A counter read on another CPU may be behind. */
static inline void gc_counters_time(struct gc_app_shard *s, int ev, uint64_t start,
                                    uint64_t end) {
  uint64_t t = end > start ? end - start : 0;
  int b = 0;
  while (b < GC_HANDLER_BUCKETS && t > gc_handler_bounds_ticks[b])
    b++;
  gc_counters_inc(&s->handler[ev].bucket[b], 1);
  gc_counters_inc(&s->handler[ev].sum_ticks, t);
}

#endif
