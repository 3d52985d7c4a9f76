/* counters.c - see counters.h. */
#include "counters.h"

#include <errno.h>
#if defined(__x86_64__)
#include <cpuid.h>
#endif
#include <string.h>

#include "alloc.h"

static const char *const system_names[GC_CTR_SYSTEM_COUNT] = {
    "gcs.connections", "gcs.accepted",  "gcs.messages_in",  "gcs.messages_out",
    "gcs.bytes_in",    "gcs.bytes_out", "gcs.queued_bytes"};

static int32_t find_locked(struct gc_counters *c, const char *name) {
  size_t n = atomic_load(&c->count);
  for (size_t i = 0; i < n; i++)
    if (strcmp(c->items[i]->name, name) == 0)
      return (int32_t)i;
  return -1;
}

static int32_t create_locked(struct gc_counters *c, const char *name, int system) {
  int32_t id = find_locked(c, name);
  if (id >= 0)
    return id;
  size_t n = atomic_load(&c->count);
  if (n == c->cap) {
    /* Readers index 'items' without the lock: never move it once handed
     * out, so grow only before the first read (system counters and app
     * init happen before any loop runs). */
    size_t cap = c->cap ? c->cap * 2 : 64;
    struct gc_counter **items = gc_realloc(c->items, cap * sizeof *items);
    if (!items)
      return -1;
    c->items = items;
    c->cap = cap;
  }
  struct gc_counter *ctr = gc_calloc(1, sizeof *ctr);
  if (!ctr || !(ctr->name = gc_strdup(name))) {
    gc_free(ctr);
    return -1;
  }
  ctr->system = system;
  atomic_init(&ctr->value, 0);
  c->items[n] = ctr;
  atomic_store(&c->count, n + 1);
  return (int32_t)n;
}

/* ---- the clock of handler times (counters.h) ----------------------------- */

int gc_clock_tsc;
double gc_clock_ticks_per_ns = 1;
uint64_t gc_handler_bounds_ticks[GC_HANDLER_BUCKETS];
static pthread_once_t clock_once = PTHREAD_ONCE_INIT;

#if defined(__x86_64__)
/* CPUID 0x80000007 EDX bit 8: the TSC runs at one rate in every P- and
 * C-state (and Linux keeps the CPUs' counters in step). */
static int tsc_invariant(void) {
  unsigned a, b, c, d;
  return __get_cpuid(0x80000007, &a, &b, &c, &d) && (d >> 8 & 1u);
}

/* A TSC reading and uv_hrtime's at the same moment, within 2 us (a
 * preemption between the reads is retried). 0 when none came. */
static int clock_pair(uint64_t *ns, uint64_t *ticks) {
  for (int i = 0; i < 100; i++) {
    uint64_t h0 = uv_hrtime();
    uint64_t t = __rdtsc();
    uint64_t h1 = uv_hrtime();
    if (h1 - h0 < 2000) {
      *ns = h0 + (h1 - h0) / 2;
      *ticks = t;
      return 1;
    }
  }
  return 0;
}
#endif

/* Once per process, before any loop runs: the TSC's rate against
 * uv_hrtime over 5 ms (within some 0.1 %: the pairs' 2 us apart), and the
 * histogram's bounds in its ticks. */
static void clock_init(void) {
#if defined(__x86_64__)
  uint64_t n0, t0, n1, t1;
  if (tsc_invariant() && clock_pair(&n0, &t0)) {
    uv_sleep(5);
    if (clock_pair(&n1, &t1) && n1 > n0 + 4000000 && t1 > t0) {
      gc_clock_ticks_per_ns = (double)(t1 - t0) / (double)(n1 - n0);
      gc_clock_tsc = 1;
    }
  }
#endif
  for (int b = 0; b < GC_HANDLER_BUCKETS; b++)
    gc_handler_bounds_ticks[b] =
        (uint64_t)((double)gc_handler_bounds_ns[b] * gc_clock_ticks_per_ns);
}

int gc_counters_init(struct gc_counters *c) {
  (void)pthread_once(&clock_once, clock_init);
  memset(c, 0, sizeof *c);
  if (pthread_mutex_init(&c->lock, NULL) != 0)
    return ENOMEM;
  for (int i = 0; i < GC_CTR_SYSTEM_COUNT; i++)
    if (create_locked(c, system_names[i], 1) != i) {
      gc_counters_free(c);
      return ENOMEM;
    }
  return 0;
}

void gc_counters_free(struct gc_counters *c) {
  size_t n = atomic_load(&c->count);
  for (size_t i = 0; i < n; i++) {
    gc_free(c->items[i]->name);
    gc_free(c->items[i]->subs);
    gc_free(c->items[i]);
  }
  gc_free(c->items);
  pthread_mutex_destroy(&c->lock);
  memset(c, 0, sizeof *c);
}

static int name_ok(const char *name) {
  return name && *name && strlen(name) < 256;
}

int32_t gc_counters_create(struct gc_counters *c, const char *name) {
  if (!name_ok(name))
    return -1;
  pthread_mutex_lock(&c->lock);
  int32_t id = create_locked(c, name, 0);
  pthread_mutex_unlock(&c->lock);
  return id;
}

int32_t gc_counters_open(struct gc_counters *c, const char *name) {
  if (!name_ok(name))
    return -1;
  pthread_mutex_lock(&c->lock);
  int32_t id = find_locked(c, name);
  pthread_mutex_unlock(&c->lock);
  return id;
}

int32_t gc_counters_names(struct gc_counters *c, const char **names, int32_t max,
                          int system_only) {
  pthread_mutex_lock(&c->lock);
  size_t n = atomic_load(&c->count);
  int32_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (system_only && !c->items[i]->system)
      continue;
    if (names && total < max)
      names[total] = c->items[i]->name;
    total++;
  }
  pthread_mutex_unlock(&c->lock);
  return total;
}

static struct gc_counter *counter_get(struct gc_counters *c, int32_t id) {
  return id >= 0 && (size_t)id < atomic_load(&c->count) ? c->items[id] : NULL;
}

int gc_counters_get(struct gc_counters *c, int32_t id, int64_t *value) {
  struct gc_counter *ctr = counter_get(c, id);
  if (!ctr || !value)
    return EINVAL;
  int64_t v = atomic_load_explicit(&ctr->value, memory_order_relaxed);
  if (ctr->system)
    for (size_t i = 0; i < c->shard_count; i++)
      v += atomic_load_explicit(&c->shards[i]->v[id], memory_order_relaxed);
  *value = v;
  return 0;
}

int gc_counters_add_shard(struct gc_counters *c, struct gc_counter_shard *s) {
  if (c->shard_count == GC_COUNTER_SHARDS_MAX)
    return ENOSPC;
  c->shards[c->shard_count++] = s;
  return 0;
}

/* Tells subscribers; a copy of the list, so a callback may unsubscribe. */
static void notify(struct gc_counters *c, struct gc_counter *ctr, int32_t id,
                   int64_t value) {
  if (!ctr->sub_count)
    return;
  struct gc_counter_sub local[16];
  pthread_mutex_lock(&c->lock);
  size_t n = ctr->sub_count < 16 ? ctr->sub_count : 16;
  memcpy(local, ctr->subs, n * sizeof *local);
  pthread_mutex_unlock(&c->lock);
  for (size_t i = 0; i < n; i++)
    local[i].cb(local[i].user, id, value);
}

int gc_counters_set(struct gc_counters *c, int32_t id, int64_t value) {
  struct gc_counter *ctr = counter_get(c, id);
  if (!ctr || ctr->system)
    return EINVAL; /* built-in counters belong to the host */
  atomic_store_explicit(&ctr->value, value, memory_order_relaxed);
  notify(c, ctr, id, value);
  return 0;
}

int gc_counters_add(struct gc_counters *c, int32_t id, int64_t delta) {
  struct gc_counter *ctr = counter_get(c, id);
  if (!ctr || ctr->system)
    return EINVAL;
  int64_t v = atomic_fetch_add_explicit(&ctr->value, delta, memory_order_relaxed) + delta;
  notify(c, ctr, id, v);
  return 0;
}

int gc_counters_subscribe(struct gc_counters *c, int32_t id, gc_counter_cb cb,
                          intptr_t user) {
  struct gc_counter *ctr = counter_get(c, id);
  if (!ctr || !cb)
    return EINVAL;
  pthread_mutex_lock(&c->lock);
  int rc = 0;
  if (ctr->sub_count >= 16) {
    rc = ENOSPC;
  } else {
    struct gc_counter_sub *s =
        gc_realloc(ctr->subs, (ctr->sub_count + 1) * sizeof *s);
    if (!s) {
      rc = ENOMEM;
    } else {
      s[ctr->sub_count++] = (struct gc_counter_sub){cb, user};
      ctr->subs = s;
    }
  }
  pthread_mutex_unlock(&c->lock);
  return rc;
}

int gc_counters_unsubscribe(struct gc_counters *c, int32_t id, gc_counter_cb cb,
                            intptr_t user) {
  struct gc_counter *ctr = counter_get(c, id);
  if (!ctr)
    return EINVAL;
  int rc = ENOENT;
  pthread_mutex_lock(&c->lock);
  for (size_t i = 0; i < ctr->sub_count; i++)
    if (ctr->subs[i].cb == cb && ctr->subs[i].user == user) {
      ctr->subs[i] = ctr->subs[--ctr->sub_count];
      rc = 0;
      break;
    }
  pthread_mutex_unlock(&c->lock);
  return rc;
}
