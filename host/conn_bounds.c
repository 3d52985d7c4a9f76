/* conn_bounds.c - what one connection may make the host hold or do: its
 * statistics against YELLOW / RED limits, its output queue, the server-wide
 * buffer budget, and the once-a-second sweep (keep-alive, stalled input or
 * output). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "metrics.h"


/* ---- statistics and limits ---------------------------------------------- */

/* Checks one statistic against the connection's thresholds. RED drops the
 * connection; YELLOW asks the app once per episode (on_issue) and obeys
 * its reaction. Returns 1 when the connection no longer takes input. */
static int conn_stat_check(struct gc_conn *c, int stat, uint64_t value) {
  uint64_t red = gc__conn_limit(c, GC_STAT_STATUS_RED, stat);
  if (red && value > red) {
    gc__conn_log(c, GCL_NOTICE, "%s %llu over the RED limit %llu, dropped",
             gc_stat_name(stat), (unsigned long long)value,
             (unsigned long long)red);
    gc__limit_hit(c, stat, GC_STAT_STATUS_RED);
    gc__conn_teardown(c);
    return 1;
  }
  uint64_t yellow = gc__conn_limit(c, GC_STAT_STATUS_YELLOW, stat);
  uint8_t bit = (uint8_t)(1u << stat);
  if (!yellow || value <= yellow || (c->issued & bit))
    return 0;
  c->issued |= bit;
  gc__limit_hit(c, stat, GC_STAT_STATUS_YELLOW);
  struct gc_adapter *a = c->app->adapter;
  int reaction = GC_STAT_REACTION_DEFAULT;
  if (a->on_issue)
    GC__TIMED(c->loop, c->app, GC_EV_ISSUE,
              reaction = a->on_issue(c->user, stat, (GCT_COUNTER_VALUE)value));
  if (c->state != GC_CONN_OPEN)
    return 1; /* the app closed it meanwhile */
  if (reaction == GC_STAT_REACTION_CLOSE) {
    gc__conn_log(c, GCL_INFO,
             "%s %llu over the YELLOW limit, closed "
             "by the application",
             gc_stat_name(stat), (unsigned long long)value);
    (void)gc_conn_close(c->loop, c->handle, GC_CLOSE_REASON_NORMAL);
    return 1;
  }
  if (reaction == GC_STAT_REACTION_DEFAULT)
    gc__conn_log(c, GCL_INFO, "%s %llu over the YELLOW limit %llu",
             gc_stat_name(stat), (unsigned long long)value,
             (unsigned long long)yellow);
  return 0;
}

/* The lower of a statistic's YELLOW and RED thresholds (0: none). */
static inline uint64_t stat_bound(const struct gc_limits *l, int stat) {
  uint64_t y = l->v[GC_STAT_STATUS_YELLOW][stat];
  uint64_t r = l->v[GC_STAT_STATUS_RED][stat];
  y = y ? y : UINT64_MAX;
  r = r ? r : UINT64_MAX;
  return y < r ? y : r;
}

/* Counts one inbound message; 1 when it must not be delivered. */
int gc__conn_count_input(struct gc_conn *c, size_t len) {
  int64_t now = gc_loop_now(c->loop);
  if (now - c->win_start >= 1000) {
    c->win_start = now;
    c->win_msgs = c->win_bytes = 0;
    /* A new window: rate and size issues may be reported again. */
    c->issued &= (uint8_t)(1u << GC_CONN_STAT_OUTPUT_QUEUE_SIZE);
  }
  c->win_msgs++;
  c->win_bytes += len;
  /* Nearly every message is under every threshold: compare inline, and
   * take the full check only when one is passed. */
  const struct gc_limits *l = c->limits ? c->limits : &c->app->limits;
  if (len <= stat_bound(l, GC_CONN_STAT_MAX_MSG_SIZE) &&
      c->win_msgs <= stat_bound(l, GC_CONN_STAT_MSG_PER_SECOND) &&
      c->win_bytes <= stat_bound(l, GC_CONN_STAT_BYTES_PER_SECOND))
    return 0;
  return conn_stat_check(c, GC_CONN_STAT_MAX_MSG_SIZE, len) ||
         conn_stat_check(c, GC_CONN_STAT_MSG_PER_SECOND, c->win_msgs) ||
         conn_stat_check(c, GC_CONN_STAT_BYTES_PER_SECOND, c->win_bytes);
}

/* YELLOW output queue: asked from the flush, never inside the API call
 * that queued; the report re-arms once the queue is back under it. */
void gc__conn_queue_check(struct gc_conn *c) {
  if (c->state != GC_CONN_OPEN || !c->accepted)
    return;
  uint8_t bit = (uint8_t)(1u << GC_CONN_STAT_OUTPUT_QUEUE_SIZE);
  uint64_t yellow =
      gc__conn_limit(c, GC_STAT_STATUS_YELLOW, GC_CONN_STAT_OUTPUT_QUEUE_SIZE);
  if (yellow && c->q.count <= yellow)
    c->issued &= (uint8_t)~bit;
  else if (yellow)
    (void)conn_stat_check(c, GC_CONN_STAT_OUTPUT_QUEUE_SIZE, c->q.count);
}

/* Room for one more message of 'len' bytes. A message over
 * max_output_msg_size is refused and changes nothing (EMSGSIZE). A client
 * that does not read must not grow our memory without bound: past RED
 * output_queue_size, or the byte bound (one message of the largest size and
 * GC_OUTPUT_QUEUE_MAX_BYTES more), counting the control frames wslay holds
 * for it (pongs, close), it is dropped (ENOBUFS). So is the largest holder
 * when the server-wide budget is reached. */
int gc__conn_queue_room(struct gc_conn *c, size_t len) {
  const struct gc_config *cfg = c->loop->server->cfg;
  if (len > cfg->max_output_msg_size)
    return EMSGSIZE;
  size_t count = c->q.count, bytes = c->q.bytes;
  if (c->ws) {
    count += wslay_event_get_queued_msg_count(c->ws->ctx);
    bytes += wslay_event_get_queued_msg_length(c->ws->ctx);
  }
  uint64_t red = gc__conn_limit(c, GC_STAT_STATUS_RED, GC_CONN_STAT_OUTPUT_QUEUE_SIZE);
  if ((red && count + 1 > red) ||
      bytes + len > cfg->max_output_msg_size + GC_OUTPUT_QUEUE_MAX_BYTES) {
    gc__conn_log(c, GCL_NOTICE,
             "output queue full (%zu messages, %zu "
             "bytes): the client does not read, dropped",
             count, bytes);
    gc__limit_hit(c, GC_CONN_STAT_OUTPUT_QUEUE_SIZE, GC_STAT_STATUS_RED);
    gc__conn_teardown(c);
    return ENOBUFS;
  }
  gc__conn_budget_enforce(c->loop, (int64_t)len);
  return c->state == GC_CONN_DEAD ? ENOBUFS : 0;
}

void gc__conn_queued(struct gc_conn *c, size_t len) {
  gc__stat(c, GC_CTR_QUEUED_BYTES,
                   (int64_t)(len + gc_ws_header_size(len)));
  if (!c->out_since)
    c->out_since = gc_loop_now(c->loop);
  gc__loop_mark_dirty(c->loop, c);
}

/* ---- the server-wide budget (max_buffered_bytes) -------------------------- */

static uint64_t loop_budget(struct gc_loop *loop) {
  if (!loop->buffer_budget_set) {
    uint64_t b = loop->server->cfg->max_buffered_bytes;
    if (b == UINT64_MAX) {
      /* Default: a quarter of the memory we may use (a cgroup's limit when
       * one is set). */
      uint64_t mem = uv_get_total_memory();
      uint64_t lim = uv_get_constrained_memory();
      if (lim && lim < mem)
        mem = lim;
      b = mem / 4;
    }
    loop->buffer_budget = b;
    loop->buffer_budget_set = 1;
  }
  return loop->buffer_budget;
}

static uint64_t conn_holds(const struct gc_conn *c) {
  return c->q.bytes + c->in_held + c->stash_size;
}

/* Past the budget, with 'more' bytes about to be queued, drops the largest
 * holders first (Redis's maxmemory-clients) until a tenth of the budget is
 * free again, so that the next message does not search again.
 *
 * The budget is the server's, over every loop. Each loop publishes what it
 * holds; a loop under its share (budget / loops) stops there without
 * reading the others, since the total can pass the budget only when some
 * loop is over its share, and that loop enforces it, on its own
 * connections, against the sum. */
void gc__conn_budget_enforce(struct gc_loop *loop, int64_t more) {
  uint64_t budget = loop_budget(loop);
  if (!budget)
    return;
  struct gc_server *srv = loop->server;
  atomic_store_explicit(&loop->published, loop->buffered, memory_order_relaxed);
  if (loop->buffered + more <= (int64_t)(budget / srv->loop_count))
    return;
  int64_t others = 0;
  for (size_t i = 0; i < srv->loop_count; i++)
    if (srv->loops[i] != loop)
      others += atomic_load_explicit(&srv->loops[i]->published, memory_order_relaxed);
  if (loop->buffered + more + others <= (int64_t)budget)
    return;
  /* What dying connections still hold goes with their close callback. */
  int64_t live = more + others;
  struct gc_handle_table *t = &loop->conns;
  for (uint32_t i = 0; i < t->cap; i++) {
    struct gc_conn *c = gc_handle_table_at(t, i);
    if (c && c->state != GC_CONN_DEAD)
      live += (int64_t)conn_holds(c);
  }
  while (live > (int64_t)(budget - budget / 10)) {
    struct gc_conn *big = NULL;
    for (uint32_t i = 0; i < t->cap; i++) {
      struct gc_conn *c = gc_handle_table_at(t, i);
      if (c && c->state != GC_CONN_DEAD && conn_holds(c) &&
          (!big || conn_holds(c) > conn_holds(big)))
        big = c;
    }
    if (!big)
      return;
    live -= (int64_t)conn_holds(big);
    /* Each eviction is a line, past the per-connection rate limit: they
     * are few, and the operator needs every one. */
    gc_log(GCL_NOTICE,
           "connection %s:%d: holds %llu bytes, the largest share of "
           "max_buffered_bytes (%llu): dropped",
           big->rip, big->rport, (unsigned long long)conn_holds(big),
           (unsigned long long)budget);
    gc__conn_teardown(big);
  }
}

int gc_conn_set_limit(struct gc_loop *loop, intptr_t h, int level, int stat,
                      int64_t value) {
  struct gc_conn *c = gc__conn_get(loop, h);
  if (!c || c->state != GC_CONN_OPEN || value < 0 ||
      (level != GC_STAT_STATUS_YELLOW && level != GC_STAT_STATUS_RED) ||
      stat < 1 || stat > GC_STAT_MAX)
    return EINVAL;
  if (!c->limits) {
    /* Copy on first write: most connections share their app's limits. */
    c->limits = gc_malloc(sizeof *c->limits);
    if (!c->limits)
      return ENOMEM;
    *c->limits = c->app->limits;
  }
  c->limits->v[level][stat] = (uint64_t)value;
  if (level == GC_STAT_STATUS_RED && stat == GC_CONN_STAT_MAX_MSG_SIZE && c->ws)
    gc__conn_ws_max_msg(c); /* a parked connection gets it when it binds */
  c->issued &= (uint8_t)~(1u << stat);
  return 0;
}

static void keepalive_one(struct gc_loop *loop, struct gc_conn *c, int64_t now) {
  if (c->state != GC_CONN_OPEN || !c->accepted)
    return;
  int64_t idle = now - c->last_input;
  if (idle < loop->ka_timeout_ms)
    return;
  int64_t due = 1 + (idle - loop->ka_timeout_ms) /
                        (loop->ka_interval_ms ? loop->ka_interval_ms : 1);
  if (c->pings_sent >= loop->ka_retries && c->pings_sent < due) {
    gc__conn_log(c, GCL_INFO, "no answer to %d pings, dropped", c->pings_sent);
    gc__conn_teardown(c);
    return;
  }
  if (c->pings_sent >= due)
    return;
  struct wslay_event_msg ping = {WSLAY_PING, NULL, 0};
  if (gc__conn_ws_bind(c) == 0 && wslay_event_queue_msg(c->ws->ctx, &ping) == 0) {
    c->pings_sent++;
    gc__loop_mark_dirty(loop, c);
  }
}

/* A peer that stalls mid-message, or stops reading for good, holds memory
 * while it keeps keep-alive happy: both get a time bound. */
static void stall_one(struct gc_loop *loop, struct gc_conn *c, int64_t now) {
  const struct gc_config *cfg = loop->server->cfg;
  if (c->state == GC_CONN_DEAD || c->state == GC_CONN_HANDSHAKE)
    return;
  if (c->in_since && cfg->message_timeout_ms &&
      now - c->in_since > (int64_t)cfg->message_timeout_ms) {
    gc__conn_log(c, GCL_NOTICE,
             "message not completed within message_timeout_ms (%u ms, "
             "%llu bytes held), dropped",
             cfg->message_timeout_ms,
             (unsigned long long)(c->in_held + c->stash_size));
    gc__conn_teardown(c);
    return;
  }
  if (c->out_since && c->q.head && cfg->send_timeout_ms &&
      now - c->out_since > (int64_t)cfg->send_timeout_ms) {
    gc__conn_log(c, GCL_NOTICE,
             "output queue not emptied within send_timeout_ms (%u ms, %zu "
             "bytes): the client does not read, dropped",
             cfg->send_timeout_ms, c->q.bytes);
    gc__conn_teardown(c);
  }
}

void gc__conn_sweep(struct gc_loop *loop) {
  int64_t now = gc_loop_now(loop);
  struct gc_handle_table *t = &loop->conns;
  for (uint32_t i = 0; i < t->cap; i++) {
    struct gc_conn *c = gc_handle_table_at(t, i);
    if (!c)
      continue;
    stall_one(loop, c, now);
    if (loop->ka_timeout_ms)
      keepalive_one(loop, c, now);
  }
  gc__conn_budget_enforce(loop, 0);
}
