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

struct gc_counters {
  pthread_mutex_t lock; /* creation, names, subscriptions */
  struct gc_counter **items;
  _Atomic size_t count;
  size_t cap;
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

int gc_counters_init(struct gc_counters *c) __attribute__((warn_unused_result));
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

/* Hot-path add for built-in counters: no checks, no subscribers. */
static inline void gc_counters_bump(struct gc_counters *c, int id, int64_t d) {
  atomic_fetch_add_explicit(&c->items[id]->value, d, memory_order_relaxed);
}

#endif
