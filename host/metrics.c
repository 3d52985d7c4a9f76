/* metrics.c - GET /metrics (admin.c): the counters in Prometheus's text
 * format, per app and per worker where they apply. Every figure is read
 * from atomics the loops write (their shares of the built-in counters,
 * their lag histograms, their refusal counts), so rendering on loop 0
 * takes no lock on a hot path. */
#include <stdio.h>
#include <string.h>

#include "internal.h"

/* Upper bounds (seconds) of the loop-lag histogram's buckets. */
static const double lag_bounds[GC_LAG_BUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,  0.5,  1,     2.5};

void gc__loop_lag_observe(struct gc_loop *loop, int64_t lag_ms) {
  if (lag_ms < 0)
    lag_ms = 0;
  int b = 0;
  while (b < GC_LAG_BUCKETS && (double)lag_ms / 1000.0 > lag_bounds[b])
    b++;
  if (b < GC_LAG_BUCKETS)
    atomic_fetch_add_explicit(&loop->lag.bucket[b], 1, memory_order_relaxed);
  atomic_fetch_add_explicit(&loop->lag.sum_ms, (uint64_t)lag_ms, memory_order_relaxed);
  atomic_fetch_add_explicit(&loop->lag.count, 1, memory_order_relaxed);
}

/* A label value as Prometheus wants it: \ " and newline escaped. */
static void label(struct gc_text *t, const char *v) {
  for (; *v; v++) {
    if (*v == '\\' || *v == '"')
      gc_text_printf(t, "\\%c", *v);
    else if (*v == '\n')
      gc_text_append(t, "\\n", 2);
    else
      gc_text_append(t, v, 1);
  }
}

static void head(struct gc_text *t, const char *name, const char *type,
                 const char *help) {
  gc_text_printf(t, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* One family per built-in counter: a sample per (app, worker). */
static void per_app(struct gc_text *t, const struct gc_server *s, int id,
                    const char *name, const char *type, const char *help) {
  head(t, name, type, help);
  for (size_t a = 0; a < s->app_count; a++)
    for (size_t w = 0; w < s->loop_count; w++) {
      const struct gc_loop *loop = s->loops[w];
      int64_t v = loop->app_ctr
                      ? atomic_load_explicit(&loop->app_ctr[a].v[id], memory_order_relaxed)
                      : 0;
      gc_text_printf(t, "%s{app=\"", name);
      label(t, s->apps[a].conf->name);
      gc_text_printf(t, "\",worker=\"%zu\"} %lld\n", w, (long long)v);
    }
}

/* "lua.<app>.memory" and the apps' own counters. */
static void app_counters(struct gc_text *t, struct gc_server *s) {
  const char *names[256];
  int32_t n = gc_counters_names(&s->counters, names, 256, 0);
  if (n > 256)
    n = 256;
  int lua_head = 0, own_head = 0;
  for (int pass = 0; pass < 2; pass++)
    for (int32_t i = GC_CTR_SYSTEM_COUNT; i < n; i++) {
      int64_t v = 0;
      if (gc_counters_get(&s->counters, i, &v) != 0)
        continue;
      const char *nm = names[i];
      size_t len = strlen(nm);
      int lua_mem = len > 11 && strncmp(nm, "lua.", 4) == 0 &&
                    strcmp(nm + len - 7, ".memory") == 0;
      if (pass == 0 && lua_mem) {
        if (!lua_head++)
          head(t, "gcs_lua_memory_bytes", "gauge", "Memory of a Lua application's states.");
        gc_text_append(t, "gcs_lua_memory_bytes{app=\"", 26);
        char app[128];
        snprintf(app, sizeof app, "%.*s", (int)(len - 11), nm + 4);
        label(t, app);
        gc_text_printf(t, "\"} %lld\n", (long long)v);
      } else if (pass == 1 && !lua_mem) {
        if (!own_head++)
          head(t, "gcs_counter", "gauge",
               "The applications' own counters (counterCreate, gc.counter), by name.");
        gc_text_append(t, "gcs_counter{name=\"", 18);
        label(t, nm);
        gc_text_printf(t, "\"} %lld\n", (long long)v);
      }
    }
}

void gc__metrics_render(struct gc_server *s, struct gc_text *t) {
  head(t, "gcs_workers", "gauge", "Worker loops running.");
  gc_text_printf(t, "gcs_workers %zu\n", s->loop_count);
  head(t, "gcs_draining", "gauge", "1 after SIGTERM, while /health answers 503.");
  gc_text_printf(t, "gcs_draining %d\n",
                 atomic_load(&s->draining) || atomic_load(&s->stopping));
  per_app(t, s, GC_CTR_CONNECTIONS, "gcs_connections", "gauge",
          "Open WebSocket connections.");
  per_app(t, s, GC_CTR_ACCEPTED, "gcs_connections_accepted_total", "counter",
          "Connections accepted by the application since start.");
  per_app(t, s, GC_CTR_MESSAGES_IN, "gcs_messages_in_total", "counter",
          "Messages received from clients.");
  per_app(t, s, GC_CTR_MESSAGES_OUT, "gcs_messages_out_total", "counter",
          "Messages handed to the kernel for clients.");
  per_app(t, s, GC_CTR_BYTES_IN, "gcs_received_bytes_total", "counter",
          "Payload bytes received from clients.");
  per_app(t, s, GC_CTR_BYTES_OUT, "gcs_sent_bytes_total", "counter",
          "Payload bytes handed to the kernel for clients.");
  per_app(t, s, GC_CTR_QUEUED_BYTES, "gcs_queued_bytes", "gauge",
          "Bytes waiting in output queues.");
  head(t, "gcs_refused_connections_total", "counter",
       "Upgrade requests answered with an HTTP error, by status.");
  for (size_t w = 0; w < s->loop_count; w++)
    for (int st = 0; st < GC_REFUSED_STATUSES; st++) {
      uint64_t v = atomic_load_explicit(&s->loops[w]->refused[st], memory_order_relaxed);
      if (v)
        gc_text_printf(t, "gcs_refused_connections_total{status=\"%d\",worker=\"%zu\"} %llu\n",
                       400 + st, w, (unsigned long long)v);
    }
  head(t, "gcs_loop_lag_seconds", "histogram",
       "How late a worker loop's once-a-second timer fires: time the loop was "
       "busy when it was due.");
  for (size_t w = 0; w < s->loop_count; w++) {
    const struct gc_loop *loop = s->loops[w];
    uint64_t cum = 0;
    for (int b = 0; b < GC_LAG_BUCKETS; b++) {
      cum += atomic_load_explicit(&loop->lag.bucket[b], memory_order_relaxed);
      gc_text_printf(t, "gcs_loop_lag_seconds_bucket{worker=\"%zu\",le=\"%g\"} %llu\n", w,
                     lag_bounds[b], (unsigned long long)cum);
    }
    uint64_t count = atomic_load_explicit(&loop->lag.count, memory_order_relaxed);
    gc_text_printf(t, "gcs_loop_lag_seconds_bucket{worker=\"%zu\",le=\"+Inf\"} %llu\n", w,
                   (unsigned long long)count);
    gc_text_printf(t, "gcs_loop_lag_seconds_sum{worker=\"%zu\"} %.3f\n", w,
                   (double)atomic_load_explicit(&loop->lag.sum_ms, memory_order_relaxed) /
                       1000.0);
    gc_text_printf(t, "gcs_loop_lag_seconds_count{worker=\"%zu\"} %llu\n", w,
                   (unsigned long long)count);
  }
  app_counters(t, s);
}
