/* conn.c - a client connection from accept to on_disconnect.
 *
 * States (enum gc_conn_state): HANDSHAKE -> OPEN -> [DRAINING] -> CLOSING ->
 * DEAD. Everything that ends a connection funnels into gc__conn_teardown(),
 * which only calls uv_close(); the adapter hears on_disconnect from the
 * close callback, on a later loop turn, never inside an API call. The slot
 * and its generation are released after on_disconnect returns.
 *
 * Input: the fast lane (conn_fast.c) and wslay behind it, here. Output
 * (conn_output.c) is corked. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "metrics.h"
#include "transport.h"
#include "utf8.h"

/* ---- lifetime ------------------------------------------------------------ */

/* One line about 'c', "connection IP:PORT: ...", through the loop's rate
 * limit (formatted only when it passes). */
void gc__conn_log(struct gc_conn *c, int level, const char *fmt, ...) {
  if (!gc__loop_conn_log_take(c->loop, level))
    return;
  /* The prefix and the message formatted once, into one byte more than a
   * line holds: gc_log_write then cuts an overlong one and says so. */
  char msg[GC_LOG_MSG_MAX + 2];
  int pre = snprintf(msg, sizeof msg, "connection %s:%d: ", c->rip, c->rport);
  if (pre < 0 || (size_t)pre >= sizeof msg)
    return;
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg + pre, sizeof msg - (size_t)pre, fmt, ap);
  va_end(ap);
  if (n >= 0)
    gc_log_write(level, msg);
}


static void report_discarded(void *ctx, const struct gc_msg *m) {
  struct gc_conn *c = ctx;
  struct gc_adapter *a = c->app ? c->app->adapter : NULL;
  gc__stat(c, GC_CTR_QUEUED_BYTES, -(int64_t)(m->len + m->hdr_len));
  if (c->accepted && a && a->on_message_sent)
    GC__TIMED(c->loop, c->app, GC_EV_MESSAGE_SENT,
              a->on_message_sent(c->user, m->cookie, m->len, ECANCELED));
}

/* Refused in on_connect: what it queued vanishes unreported. */
void gc__conn_uncount_queued(void *ctx, const struct gc_msg *m) {
  struct gc_conn *c = ctx;
  gc__stat(c, GC_CTR_QUEUED_BYTES, -(int64_t)(m->len + m->hdr_len));
}

static void conn_free(struct gc_conn *c) {
  struct gc_loop *loop = c->loop;
  loop->buffered -= (int64_t)c->in_held;
  if (c->read_paused) {
    struct gc_conn **pp = &loop->resume;
    while (*pp != c)
      pp = &(*pp)->resume_next;
    *pp = c->resume_next;
  }
  if (c->ws)
    gc_ws_pool_give(&loop->ws_pool, c->ws, gc_ws_clean(c->ws));
  gc__conn_stash_drop(c);
  gc_free(c->mem_pending);
  gc_free(c->close_text);
  gc_free(c->refuse_text);
  gc_free(c->limits);
  gc_free(c->req);
  if (c->counted)
    atomic_fetch_sub_explicit(&loop->server->open_total, 1, memory_order_relaxed);
  gc_free(c);
  loop->conn_count--;
  atomic_fetch_sub_explicit(&loop->server->conn_total, 1, memory_order_relaxed);
  gc__loop_conn_gone(loop);
}

void gc__conn_on_close(uv_handle_t *h) {
  struct gc_conn *c = h->data;
  struct gc_loop *loop = c->loop;
  loop->trim_pending = 1;
  /* Whatever never reached the kernel is reported, then the last event. */
  gc_send_queue_clear(&c->q, report_discarded, c);
  if (c->accepted) {
    struct gc_adapter *a = c->app->adapter;
    loop->open_count--;
    gc__stat(c, GC_CTR_CONNECTIONS, -1);
    gc__metrics_conn_closed(c);
    if (a->on_disconnect)
      GC__TIMED(loop, c->app, GC_EV_DISCONNECT, a->on_disconnect(c->user));
  }
  if (c->handle)
    (void)gc_handle_table_remove(&loop->conns, c->handle);
  if (c->tp->closed)
    c->tp->closed(c);
  conn_free(c);
}

void gc__conn_stop_timers(struct gc_conn *c) {
  if (c->timer_id)
    (void)gc_timers_stop(&c->loop->timers, c->timer_id);
  if (c->deadline_id)
    (void)gc_timers_stop(&c->loop->timers, c->deadline_id);
  c->timer_id = c->deadline_id = 0;
}

/* Ends the connection now. Idempotent; the rest happens in
 * gc__conn_on_close. */
void gc__conn_teardown(struct gc_conn *c) {
  if (c->state == GC_CONN_DEAD)
    return;
  c->state = GC_CONN_DEAD;
  gc__conn_stop_timers(c);
  gc__loop_unmark_dirty(c->loop, c);
  if (c->tp->ending)
    c->tp->ending(c);
  uv_close((uv_handle_t *)&c->tcp, gc__conn_on_close);
}

static void deadline_fired(void *ctx, intptr_t handle) {
  struct gc_loop *loop = ctx;
  struct gc_conn *c = gc_handle_table_get(&loop->conns, handle);
  if (!c)
    return;
  c->deadline_id = 0;
  if (c->state == GC_CONN_HANDSHAKE && !c->close_after_flush)
    gc__conn_log(c, GCL_INFO, "no complete upgrade request in time, closed");
  else
    gc__conn_log(c, gc__loop_forced_drop(loop), "close not completed in %u ms, dropped",
             loop->server->cfg->close_drain_ms);
  gc__conn_teardown(c);
}

/* Bounds what the peer makes us wait for: the handshake, or a close.
 * 'ms' 0 is no bound (the config's "0 = no limit"). */
void gc__conn_arm_deadline_ms(struct gc_conn *c, uint64_t ms) {
  struct gc_loop *loop = c->loop;
  if (c->deadline_id || c->state == GC_CONN_DEAD || ms == 0)
    return;
  if (gc_timers_start(&loop->timers, gc_loop_now(loop), (int64_t)ms, 0,
                      deadline_fired, loop, c->handle, &c->deadline_id) != 0) {
    gc__conn_teardown(c); /* cannot bound it: end it now */
  }
}

void gc__conn_arm_deadline(struct gc_conn *c) {
  gc__conn_arm_deadline_ms(c, c->loop->server->cfg->close_drain_ms);
}

/* ---- wslay callbacks ----------------------------------------------------- */

static ssize_t ws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       int flags, void *ud) {
  struct gc_conn *c = ((struct gc_ws *)ud)->conn;
  (void)flags;
  if (c->in_len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (len > c->in_len)
    len = c->in_len;
  memcpy(buf, c->in, len);
  c->in += len;
  c->in_len -= len;
  return (ssize_t)len;
}

static ssize_t ws_send(wslay_event_context_ptr ctx, const uint8_t *data,
                       size_t len, int flags, void *ud) {
  struct gc_conn *c = ((struct gc_ws *)ud)->conn;
  (void)flags;
  if (gc_send_queue_push_raw(&c->q, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static void ws_fail(struct gc_conn *c, uint16_t code, const char *why) {
  gc__conn_log(c, GCL_NOTICE, "%s, closing with %u", why, code);
  gc__conn_closing(c, GC_CLOSED_BY_SERVER, code);
  c->close_logged = 1;
  (void)wslay_event_queue_close(c->ws->ctx, code, NULL, 0);
  wslay_event_shutdown_read(c->ws->ctx);
}

static void ws_on_msg(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *arg, void *ud) {
  struct gc_conn *c = ((struct gc_ws *)ud)->conn;
  (void)ctx;
  c->read_frames++;
  if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
    gc__conn_closing(c, GC_CLOSED_BY_CLIENT,
                     arg->status_code ? arg->status_code : 1005); /* none */
    if (arg->status_code != 1000 && arg->status_code != 1001 &&
        arg->status_code != 1005 && arg->status_code != 0)
      gc__conn_log(c, GCL_INFO, "peer closed with %u", arg->status_code);
    return;
  }
  if (arg->opcode == WSLAY_PING || arg->opcode == WSLAY_PONG) {
    /* Control frames count in the message rate. wslay has queued a pong
     * for a ping: while the kernel still takes our bytes the pongs go out
     * this turn, once it does not, a peer that keeps pinging is a client
     * that does not read. */
    if (c->state != GC_CONN_OPEN || gc__conn_count_input(c, arg->msg_length))
      return;
    if (arg->opcode == WSLAY_PING && c->write_in_flight)
      (void)gc__conn_queue_room(c, 0); /* the kernel is full: it does not read */
    return;
  }
  if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
    return;
  if (c->state != GC_CONN_OPEN)
    return; /* the app asked to close: no more input for it */
  if (arg->opcode == WSLAY_TEXT_FRAME &&
      !gc_utf8_valid(arg->msg, arg->msg_length)) {
    ws_fail(c, 1007, "invalid UTF-8 in a text message");
    return;
  }
  gc__conn_deliver(c, arg->msg, arg->msg_length);
}

void gc__conn_deliver(struct gc_conn *c, const uint8_t *msg, size_t len) {
  gc__stat(c, GC_CTR_MESSAGES_IN, 1);
  gc__stat(c, GC_CTR_BYTES_IN, (int64_t)len);
  if (gc__conn_count_input(c, len))
    return;
  struct gc_adapter *a = c->app->adapter;
  if (a->on_message)
    GC__TIMED(c->loop, c->app, GC_EV_MESSAGE,
              a->on_message(c->user, (GCT_PTR)msg, len));
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .on_msg_recv_callback = ws_on_msg,
};

/* ---- wslay contexts ------------------------------------------------------ */

/* RED max_msg_size is enforced by wslay before it buffers: close 1009. */
void gc__conn_ws_max_msg(struct gc_conn *c) {
  uint64_t max = gc__conn_limit(c, GC_STAT_STATUS_RED, GC_CONN_STAT_MAX_MSG_SIZE);
  wslay_event_config_set_max_recv_msg_length(c->ws->ctx, gc_msg_size_limit(max));
}

/* Borrows a wslay context (ws_pool.h) unless the connection holds one. */
int gc__conn_ws_bind(struct gc_conn *c) {
  if (c->ws)
    return 0;
  if (gc_ws_pool_take(&c->loop->ws_pool, &ws_callbacks, c, &c->ws) != 0)
    return ENOMEM;
  gc__conn_ws_max_msg(c);
  return 0;
}

/* Gives the context back once an open connection is between frames with
 * nothing for wslay to send: idle connections hold none. */
void gc__conn_ws_park(struct gc_conn *c) {
  if (c->ws && c->state == GC_CONN_OPEN && gc_ws_clean(c->ws)) {
    gc_ws_pool_give(&c->loop->ws_pool, c->ws, 1);
    c->ws = NULL;
  }
}

/* ---- input --------------------------------------------------------------- */

/* Follows the frame headers in 'data' before wslay sees it: a data frame
 * that takes its message (announced payload, and a chunk per fragment)
 * past RED max_msg_size is refused at its header, before wslay buffers
 * any of it. Returns the bytes to give wslay (up to the end of a refused
 * header: wslay then holds no payload of it), '*why' set when refused.
 * Accounts what the message in progress holds against the loop budget. */
static size_t conn_scan(struct gc_conn *c, const uint8_t *data, size_t len,
                        const char **why) {
  struct gc_ws_scan *s = &c->ws->scan;
  uint64_t max = gc_msg_size_limit(
      gc__conn_limit(c, GC_STAT_STATUS_RED, GC_CONN_STAT_MAX_MSG_SIZE));
  size_t off = 0;
  while (off < len) {
    struct gc_ws_hdr h;
    int got;
    off += gc_ws_scan_feed(s, data + off, len - off, &h, &got);
    if (!got || h.opcode > 2)
      continue;
    if (s->msg_bytes > max) {
      *why = "message over max_msg_size announced";
      break;
    }
    if (gc_ws_scan_held(s) > max) {
      *why = "fragmented message holding more than max_msg_size";
      break;
    }
  }
  /* A refused frame's payload is never buffered: what is held stays under
   * the limit. */
  uint64_t held = gc_ws_scan_held(s);
  if (held > max)
    held = max;
  c->loop->buffered += (int64_t)held - (int64_t)c->in_held;
  c->in_held = held;
  if (gc_ws_scan_idle(s))
    c->in_since = 0;
  else if (!c->in_since)
    c->in_since = gc_loop_now(c->loop);
  return off;
}

/* wslay reads 'len' bytes of 'data'. Returns 0 to go on, 2 when wslay
 * reads no more (the caller steps the connection), 1 when the caller must
 * stop at once (the connection is dead, or closing on a protocol error,
 * all said and armed). */
static int conn_input_wslay(struct gc_conn *c, const uint8_t *data,
                            size_t len) {
  if (gc__conn_ws_bind(c) != 0) {
    gc__conn_log(c, GCL_ERR, "out of memory for its input, dropped");
    gc__conn_teardown(c);
    return 1;
  }
  if (!wslay_event_want_read(c->ws->ctx))
    return 2;
  const char *refused = NULL;
  size_t take = conn_scan(c, data, len, &refused);
  c->in = data;
  c->in_len = take;
  int rc = wslay_event_recv(c->ws->ctx);
  c->in = NULL;
  c->in_len = 0;
  if (c->state == GC_CONN_DEAD)
    return 1;
  if (rc == 0) {
    if (refused && wslay_event_want_read(c->ws->ctx)) {
      gc__limit_hit(c, GC_CONN_STAT_MAX_MSG_SIZE, GC_STAT_STATUS_RED);
      ws_fail(c, 1009, refused);
    }
    gc__conn_budget_enforce(c->loop, 0);
  }
  if (c->state == GC_CONN_DEAD)
    return 1;
  if (rc != 0) {
    /* wslay gives up on some protocol errors (an oversized or fragmented
     * control frame) with a negative code and no close frame queued: fail
     * the connection as RFC 6455 7.1.7 says, with 1002, unless we are out
     * of memory. */
    gc__conn_log(c, GCL_NOTICE,
             "protocol error in a frame (wslay %d), "
             "closing with 1002",
             rc);
    gc__conn_closing(c, GC_CLOSED_BY_SERVER, 1002);
    static const uint8_t close_1002[] = {0x88, 0x02, 0x03, 0xea};
    if (rc == WSLAY_ERR_NOMEM || wslay_event_get_close_sent(c->ws->ctx) ||
        gc_send_queue_push_raw(&c->q, close_1002, sizeof close_1002) != 0) {
      gc__conn_teardown(c);
      return 1;
    }
    if (c->state == GC_CONN_OPEN)
      c->state = GC_CONN_CLOSING;
    c->close_after_flush = 1;
    gc__conn_read_stop(c);
    gc__conn_arm_deadline(c);
    gc__loop_mark_dirty(c->loop, c);
    return 1;
  }
  if (!wslay_event_want_read(c->ws->ctx) && c->state == GC_CONN_OPEN) {
    /* The peer closed, or its input broke the protocol: wslay queued the
     * close frame; the app can no longer send. In the second case wslay
     * chose the code: it is logged once the frame is out (gc__conn_flush). */
    if (!c->close_logged && !wslay_event_get_close_received(c->ws->ctx)) {
      c->close_log_pending = 1;
      gc__conn_closing(c, GC_CLOSED_BY_SERVER, 0); /* wslay's code */
    }
    c->state = GC_CONN_CLOSING;
    gc__conn_arm_deadline(c);
  }
  return 0;
}

/* A whole frame, stashed by the fast lane: delivered from the stash if the
 * lane still may take it, else wslay reads it as it came. As
 * conn_input_wslay answers. */
static int conn_input_frame(struct gc_conn *c, uint8_t *frame, size_t size,
                            size_t hdr) {
  if (gc__conn_stash_take(c, frame, size, hdr))
    return c->state == GC_CONN_DEAD ? 1 : 0;
  return conn_input_wslay(c, frame, size);
}

/* How much of 'data' wslay takes next, when the fast lane does not: the
 * rest of a frame it holds the start of, else the frame at 'data' if it is
 * all there, else everything (a frame cut by the end of the read). The
 * fast lane takes over again at the next frame boundary. */
static size_t conn_wslay_share(const struct gc_conn *c, const uint8_t *data,
                               size_t len) {
  const struct gc_ws_scan *s = c->ws ? &c->ws->scan : NULL;
  if (s && s->in_payload)
    return s->left && s->left < len ? (size_t)s->left : len;
  if (s && s->hlen)
    return len;
  size_t n = gc__ws_frame_size(data, len);
  return n ? n : len;
}

void gc__conn_input(struct gc_conn *c, const uint8_t *data, size_t len) {
  if (c->state == GC_CONN_DEAD)
    return;
  if (c->state == GC_CONN_HANDSHAKE) {
    if (!c->req || c->close_after_flush)
      return;
    size_t used = 0;
    int status = gc_http_req_feed(c->req, (const char *)data, len, &used);
    if (status) {
      gc__conn_http_reject(c, status, status == 431 ? "request headers too large"
                                                : "malformed HTTP request");
      return;
    }
    if (c->req->headers_done)
      gc__conn_handshake_done(c, data + used, len - used);
    return;
  }
  if (c->ws && !wslay_event_want_read(c->ws->ctx))
    return;
  c->last_input = gc_loop_now(c->loop);
  c->pings_sent = 0;
  while (len) {
    if (c->stash) { /* a frame the lane stashed: complete it first */
      uint8_t *frame;
      size_t size, hdr = c->stash_hdr;
      size_t n = gc__conn_stash_fill(c, data, len, &frame, &size);
      data += n;
      len -= n;
      if (frame) {
        int rc = conn_input_frame(c, frame, size, hdr);
        gc_free(frame);
        if (rc == 1)
          return;
        if (rc == 2)
          break;
      }
      continue;
    }
    /* Between frames (a parked connection always is), an open connection
     * takes the fast lane first. */
    if (c->state == GC_CONN_OPEN && (!c->ws || gc_ws_scan_idle(&c->ws->scan))) {
      size_t n = gc__conn_fast_input(c, data, len);
      data += n;
      len -= n;
      if (c->state == GC_CONN_DEAD)
        return;
      if (!len)
        break;
    }
    size_t k = conn_wslay_share(c, data, len);
    int rc = conn_input_wslay(c, data, k);
    if (rc == 1)
      return;
    if (rc == 2)
      break;
    data += k;
    len -= k;
  }
  gc__conn_step(c);
}
