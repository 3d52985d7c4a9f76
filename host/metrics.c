/* metrics.c - GET /metrics (admin.c): the counters in Prometheus's text
 * format, per app and per worker where they apply. Every figure is read
 * from atomics the loops write (their shares of the built-in counters,
 * their lag histograms, their refusal counts), so rendering on loop 0
 * takes no lock on a hot path. */
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "metrics.h"

/* Upper bounds (seconds) of the loop-lag histogram's buckets. */
static const double lag_bounds[GC_LAG_BUCKETS] = {0.001, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,   0.25,  0.5,  1,     2.5};

/* Upper bounds of gcs_handler_seconds' buckets: an adapter's call takes
 * from well under a microsecond (a native echo) to milliseconds (a Lua
 * handler that does real work); past a second is a stuck loop. */
const uint64_t gc_handler_bounds_ns[GC_HANDLER_BUCKETS] = {
    1000,     2500,     5000,      10000,     25000,     50000,
    100000,   250000,   500000,    1000000,   2500000,   5000000,
    10000000, 25000000, 100000000, 1000000000};

static const char *const event_names[GC_EV_COUNT] = {
    "connect", "message", "message_sent", "disconnect", "timer", "issue",
    "channel_message"};

static const char *const by_names[GC_CLOSED_BY_COUNT] = {NULL, "client", "server",
                                                          "drop"};

/* A close code's bucket, so that 'code' has at most GC_CLOSE_CODE_BUCKETS
 * values whatever peers send: the codes RFC 6455 and IANA define
 * (1000-1015) one by one, 3000-3999 (registered for libraries) and
 * 4000-4999 (an application's own: thousands of possible values, one
 * series each would have no bound) as one each, anything else as
 * "other". */
static int code_bucket(unsigned code) {
  if (code >= 1000 && code <= 1015)
    return (int)code - 1000;
  if (code >= 3000 && code <= 3999)
    return 16;
  if (code >= 4000 && code <= 4999)
    return 17;
  return 18;
}

static void code_label(char *buf, size_t n, int bucket) {
  if (bucket < 16)
    snprintf(buf, n, "%d", 1000 + bucket);
  else
    snprintf(buf, n, "%s", bucket == 16 ? "3xxx" : bucket == 17 ? "4xxx" : "other");
}

void gc__metrics_conn_closed(struct gc_conn *c) {
  struct gc_app_shard *s = gc__app_shard(c->loop, c->app);
  if (!s)
    return;
  unsigned by = c->close_by, code = c->closed_code;
  if (!by) {
    /* No close frame either way: 1006, RFC 6455's code for that. */
    by = c->peer_eof ? GC_CLOSED_BY_CLIENT : GC_CLOSED_BY_DROP;
    code = 1006;
  } else if (!code) {
    code = c->ws ? wslay_event_get_status_code_sent(c->ws->ctx) : 1006;
  }
  gc_counters_inc(&s->closed[by][code_bucket(code)], 1);
}

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

/* A loop's socket sends or reads, by way: [1] io_uring, [0] 'plain'. */
static void socket_ops(struct gc_text *t, const struct gc_server *s, const char *name,
                       const char *help, const char *plain, int reads) {
  head(t, name, "counter", help);
  for (size_t w = 0; w < s->loop_count; w++)
    for (int via = 0; via < 2; via++) {
      const _Atomic uint64_t *v = reads ? &s->loops[w]->reads[via] : &s->loops[w]->sends[via];
      gc_text_printf(t, "%s{via=\"%s\",worker=\"%zu\"} %llu\n", name,
                     via ? "io_uring" : plain, w,
                     (unsigned long long)atomic_load_explicit(v, memory_order_relaxed));
    }
}

/* One family per built-in counter: a sample per (app, worker). */
static void per_app(struct gc_text *t, const struct gc_server *s, int id,
                    const char *name, const char *type, const char *help) {
  head(t, name, type, help);
  for (size_t a = 0; a < s->app_count; a++)
    for (size_t w = 0; w < s->loop_count; w++) {
      const struct gc_loop *loop = s->loops[w];
      int64_t v = loop->app_ctr ? atomic_load_explicit(&loop->app_ctr[a].c.v[id],
                                                       memory_order_relaxed)
                                : 0;
      gc_text_printf(t, "%s{app=\"", name);
      label(t, s->apps[a].conf->name);
      gc_text_printf(t, "\",worker=\"%zu\"} %lld\n", w, (long long)v);
    }
}

/* One app's figures of counters.h's shards, summed over the loops. */
struct app_sums {
  uint64_t closed[GC_CLOSED_BY_COUNT][GC_CLOSE_CODE_BUCKETS];
  uint64_t hits[GC_STAT_MAX + 1][2];
  uint64_t bucket[GC_EV_COUNT][GC_HANDLER_BUCKETS + 1];
  uint64_t sum_ticks[GC_EV_COUNT];
};

static uint64_t ld(const _Atomic uint64_t *v) {
  return atomic_load_explicit(v, memory_order_relaxed);
}

static void app_sum(const struct gc_server *s, size_t a, struct app_sums *o) {
  memset(o, 0, sizeof *o);
  for (size_t w = 0; w < s->loop_count; w++) {
    const struct gc_loop *loop = s->loops[w];
    if (!loop->app_ctr)
      continue;
    const struct gc_app_shard *sh = &loop->app_ctr[a];
    for (int by = 0; by < GC_CLOSED_BY_COUNT; by++)
      for (int b = 0; b < GC_CLOSE_CODE_BUCKETS; b++)
        o->closed[by][b] += ld(&sh->closed[by][b]);
    for (int st = 0; st <= GC_STAT_MAX; st++)
      for (int l = 0; l < 2; l++)
        o->hits[st][l] += ld(&sh->limit_hits[st][l]);
    for (int ev = 0; ev < GC_EV_COUNT; ev++) {
      for (int b = 0; b <= GC_HANDLER_BUCKETS; b++)
        o->bucket[ev][b] += ld(&sh->handler[ev].bucket[b]);
      o->sum_ticks[ev] += ld(&sh->handler[ev].sum_ticks);
    }
  }
}

/* Whether the app's adapter exports the handler of 'ev': those get a
 * histogram (zeros until called), the others none. */
static int has_handler(const struct gc_adapter *ad, int ev) {
  switch (ev) {
  case GC_EV_CONNECT: return ad->on_connect != NULL;
  case GC_EV_MESSAGE: return ad->on_message != NULL;
  case GC_EV_MESSAGE_SENT: return ad->on_message_sent != NULL;
  case GC_EV_DISCONNECT: return ad->on_disconnect != NULL;
  case GC_EV_TIMER: return ad->on_timer != NULL;
  case GC_EV_ISSUE: return ad->on_issue != NULL;
  default: return ad->on_channel_message != NULL;
  }
}

static void app_label(struct gc_text *t, const char *name, const struct gc_server *s,
                      size_t a) {
  gc_text_printf(t, "%s{app=\"", name);
  label(t, s->apps[a].conf->name);
  gc_text_append(t, "\"", 1);
}

/* Closes, limit hits and handler time of every app (counters.h). */
static void app_figures(struct gc_text *t, const struct gc_server *s) {
  struct app_sums *sums = s->app_count ? gc_calloc(s->app_count, sizeof *sums) : NULL;
  if (s->app_count && !sums)
    return; /* out of memory: the rest of the page still renders */
  for (size_t a = 0; a < s->app_count; a++)
    app_sum(s, a, &sums[a]);
  head(t, "gcs_connections_closed_total", "counter",
       "Accepted connections that ended, by close code and by who began the end: "
       "client or server (whose close frame came first; a client that went away "
       "without one: 1006), drop (the server cut it without a close frame: 1006). "
       "Codes 1000-1015 one by one, 3xxx, 4xxx, other.");
  for (size_t a = 0; a < s->app_count; a++)
    for (int by = 1; by < GC_CLOSED_BY_COUNT; by++)
      for (int b = 0; b < GC_CLOSE_CODE_BUCKETS; b++) {
        if (!sums[a].closed[by][b])
          continue;
        char code[8];
        code_label(code, sizeof code, b);
        app_label(t, "gcs_connections_closed_total", s, a);
        gc_text_printf(t, ",by=\"%s\",code=\"%s\"} %llu\n", by_names[by], code,
                       (unsigned long long)sums[a].closed[by][b]);
      }
  head(t, "gcs_limit_hits_total", "counter",
       "Connections crossing a limit (conn_notice: yellow, asked through on_issue "
       "once per episode; conn_critical: red, dropped), by statistic.");
  for (size_t a = 0; a < s->app_count; a++)
    for (int st = 1; st <= GC_STAT_MAX; st++)
      for (int l = 0; l < 2; l++) {
        app_label(t, "gcs_limit_hits_total", s, a);
        gc_text_printf(t, ",stat=\"%s\",level=\"%s\"} %llu\n", gc_stat_name(st),
                       l ? "red" : "yellow", (unsigned long long)sums[a].hits[st][l]);
      }
  head(t, "gcs_handler_seconds", "histogram",
       "Wall time of the application's event handlers (a Lua app's: its Lua "
       "handler), by event.");
  for (size_t a = 0; a < s->app_count; a++)
    for (int ev = 0; ev < GC_EV_COUNT; ev++) {
      if (!has_handler(s->apps[a].adapter, ev))
        continue;
      uint64_t cum = 0;
      for (int b = 0; b <= GC_HANDLER_BUCKETS; b++) {
        cum += sums[a].bucket[ev][b];
        app_label(t, "gcs_handler_seconds_bucket", s, a);
        if (b < GC_HANDLER_BUCKETS)
          gc_text_printf(t, ",event=\"%s\",le=\"%g\"} %llu\n", event_names[ev],
                         (double)gc_handler_bounds_ns[b] / 1e9, (unsigned long long)cum);
        else
          gc_text_printf(t, ",event=\"%s\",le=\"+Inf\"} %llu\n", event_names[ev],
                         (unsigned long long)cum);
      }
      app_label(t, "gcs_handler_seconds_sum", s, a);
      gc_text_printf(t, ",event=\"%s\"} %.9f\n", event_names[ev],
                     (double)sums[a].sum_ticks[ev] / gc_clock_ticks_per_ns / 1e9);
      app_label(t, "gcs_handler_seconds_count", s, a);
      gc_text_printf(t, ",event=\"%s\"} %llu\n", event_names[ev],
                     (unsigned long long)cum);
    }
  gc_free(sums);
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
  socket_ops(t, s, "gcs_socket_sends_total",
             "Sends of connections' output to their sockets: batched through "
             "io_uring (one system call a loop turn), or one write() each.",
             "write", 0);
  socket_ops(t, s, "gcs_socket_reads_total",
             "Input read from connections' sockets: completions of their io_uring "
             "receives, or read() calls.",
             "read", 1);
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
    if (count < cum)
      count = cum; /* read while the loop was between its two adds */
    gc_text_printf(t, "gcs_loop_lag_seconds_bucket{worker=\"%zu\",le=\"+Inf\"} %llu\n", w,
                   (unsigned long long)count);
    gc_text_printf(t, "gcs_loop_lag_seconds_sum{worker=\"%zu\"} %.3f\n", w,
                   (double)atomic_load_explicit(&loop->lag.sum_ms, memory_order_relaxed) /
                       1000.0);
    gc_text_printf(t, "gcs_loop_lag_seconds_count{worker=\"%zu\"} %llu\n", w,
                   (unsigned long long)count);
  }
  app_figures(t, s);
  app_counters(t, s);
}
