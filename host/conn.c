/* conn.c - a client connection from accept to on_disconnect.
 *
 * States (enum gc_conn_state): HANDSHAKE -> OPEN -> [DRAINING] -> CLOSING ->
 * DEAD. Everything that ends a connection funnels into gc__conn_teardown(),
 * which only calls uv_close(); the adapter hears on_disconnect from the
 * close callback, on a later loop turn, never inside an API call. The slot
 * and its generation are released after on_disconnect returns.
 *
 * Output is corked: API calls only append to the queue and mark the
 * connection dirty; the loop writes every dirty queue once per turn
 * (loop.c), with uv_try_write and a uv_write for what the kernel did not
 * take. wslay parses frames and produces control frames; its output goes
 * through the same queue so the byte stream stays ordered. Data frames are
 * built here because wslay's event API has no per-message completion, which
 * on_message_sent needs. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "utf8.h"

#define GC_IOV_MAX 64

static void conn_step(struct gc_conn *c);

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

#define CTR(c) (&(c)->loop->server->counters)

static void report_sent(void *ctx, const struct gc_msg *m) {
  struct gc_conn *c = ctx;
  struct gc_adapter *a = c->app->adapter;
  gc_counters_bump(CTR(c), GC_CTR_MESSAGES_OUT, 1);
  gc_counters_bump(CTR(c), GC_CTR_BYTES_OUT, (int64_t)m->len);
  gc_counters_bump(CTR(c), GC_CTR_QUEUED_BYTES, -(int64_t)(m->len + m->hdr_len));
  if (c->accepted && a->on_message_sent)
    a->on_message_sent(c->user, m->cookie, m->len, 0);
}

static void report_discarded(void *ctx, const struct gc_msg *m) {
  struct gc_conn *c = ctx;
  struct gc_adapter *a = c->app ? c->app->adapter : NULL;
  gc_counters_bump(CTR(c), GC_CTR_QUEUED_BYTES, -(int64_t)(m->len + m->hdr_len));
  if (c->accepted && a && a->on_message_sent)
    a->on_message_sent(c->user, m->cookie, m->len, ECANCELED);
}

/* Refused in on_connect: what it queued vanishes unreported. */
void gc__conn_uncount_queued(void *ctx, const struct gc_msg *m) {
  struct gc_conn *c = ctx;
  gc_counters_bump(CTR(c), GC_CTR_QUEUED_BYTES, -(int64_t)(m->len + m->hdr_len));
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
  gc_free(c->mem_pending);
  gc_free(c->limits);
  gc_free(c->req);
  gc_free(c);
  loop->conn_count--;
  gc__loop_conn_gone(loop);
}

static void on_close(uv_handle_t *h) {
  struct gc_conn *c = h->data;
  struct gc_loop *loop = c->loop;
  loop->trim_pending = 1;
  /* Whatever never reached the kernel is reported, then the last event. */
  gc_send_queue_clear(&c->q, report_discarded, c);
  if (c->accepted) {
    struct gc_adapter *a = c->app->adapter;
    loop->open_count--;
    gc_counters_bump(CTR(c), GC_CTR_CONNECTIONS, -1);
    if (a->on_disconnect)
      a->on_disconnect(c->user);
  }
  if (c->handle)
    (void)gc_handle_table_remove(&loop->conns, c->handle);
  if (c->mem && c->mem->on_close)
    c->mem->on_close(c->mem_ud);
  conn_free(c);
}

void gc__conn_stop_timers(struct gc_conn *c) {
  if (c->timer_id)
    (void)gc_timers_stop(&c->loop->timers, c->timer_id);
  if (c->deadline_id)
    (void)gc_timers_stop(&c->loop->timers, c->deadline_id);
  c->timer_id = c->deadline_id = 0;
}

/* Ends the connection now. Idempotent; the rest happens in on_close. */
void gc__conn_teardown(struct gc_conn *c) {
  if (c->state == GC_CONN_DEAD)
    return;
  c->state = GC_CONN_DEAD;
  gc__conn_stop_timers(c);
  gc__loop_unmark_dirty(c->loop, c);
  uv_close((uv_handle_t *)&c->tcp, on_close);
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
static void conn_arm_deadline_ms(struct gc_conn *c, uint64_t ms) {
  struct gc_loop *loop = c->loop;
  if (c->deadline_id || c->state == GC_CONN_DEAD || ms == 0)
    return;
  if (gc_timers_start(&loop->timers, gc_loop_now(loop), (int64_t)ms, 0,
                      deadline_fired, loop, c->handle, &c->deadline_id) != 0) {
    gc__conn_teardown(c); /* cannot bound it: end it now */
  }
}

void gc__conn_arm_deadline(struct gc_conn *c) {
  conn_arm_deadline_ms(c, c->loop->server->cfg->close_drain_ms);
}

static uint64_t handshake_timeout_ms(const struct gc_loop *loop) {
  return loop->server->cfg->handshake_timeout_ms; /* 0: no bound */
}

/* ---- reading ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct gc_conn *c = h->data;
  (void)suggested;
  /* One buffer per loop: input is consumed before the callback returns
   * (wslay copies partial frames), so idle connections own none. */
  *buf = uv_buf_init(c->loop->rbuf, c->read_max ? c->read_max : 65536);
}

/* The share of one connection per loop turn once it keeps the read buffer
 * full: about GC_TURN_FRAMES frames (what a client that waits for its
 * answers sends in a turn) and at most GC_TURN_BYTES (bench/NOTES.md,
 * fairness). */
#define GC_TURN_FRAMES 16
#define GC_TURN_BYTES 16384

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct gc_conn *c = s->data;
  if (nread == 0)
    return;
  if (nread < 0) {
    c->peer_eof = 1;
    if (nread != UV_EOF && c->state != GC_CONN_HANDSHAKE)
      gc__conn_log(c, GCL_INFO, "%s", uv_strerror((int)nread));
    gc__conn_teardown(c);
    return;
  }
  c->read_frames = 0;
  gc__conn_input(c, (const uint8_t *)buf->base, (size_t)nread);
  if ((size_t)nread < buf->len) {
    c->read_max = 0; /* not flooding: a full buffer next time */
  } else {
    /* Flooding: the next read takes about GC_TURN_FRAMES frames of the
     * size just seen, and no more than GC_TURN_BYTES; the kernel keeps the
     * rest (and TCP slows the sender). */
    uint64_t want = GC_TURN_BYTES;
    if (c->read_frames > GC_TURN_FRAMES)
      want = (uint64_t)nread * GC_TURN_FRAMES / c->read_frames;
    if (want < 512)
      want = 512;
    if (want > GC_TURN_BYTES)
      want = GC_TURN_BYTES;
    c->read_max = (uint32_t)want;
  }
  /* A full buffer means more is waiting: libuv would read it again (up to
   * 32 times) before any other connection is served. One buffer per turn
   * each, so a flooder cannot take the loop from the others. */
  if ((size_t)nread == buf->len && c->reading && c->state != GC_CONN_DEAD) {
    uv_read_stop((uv_stream_t *)&c->tcp);
    c->reading = 0;
    c->read_paused = 1;
    c->resume_next = c->loop->resume;
    c->loop->resume = c;
  }
}

void gc__conn_resume_reads(struct gc_loop *loop) {
  struct gc_conn *c = loop->resume;
  loop->resume = NULL;
  while (c) {
    struct gc_conn *next = c->resume_next;
    c->resume_next = NULL;
    c->read_paused = 0;
    /* Unless reading was meant to stop meanwhile (a NORMAL close drains
     * without reading, an HTTP answer or a failed frame closes). */
    if ((c->state == GC_CONN_OPEN || c->state == GC_CONN_CLOSING) &&
        !c->close_after_flush)
      gc__conn_read_start(c);
    c = next;
  }
}

void gc__conn_read_start(struct gc_conn *c) {
  if (c->reading || c->state == GC_CONN_DEAD)
    return;
  if (c->mem) {
    c->reading = 1;
    if (c->mem_pending) {
      /* What the peer sent while we were not reading, as a kernel keeps it. */
      uint8_t *p = c->mem_pending;
      size_t n = c->mem_pending_len;
      c->mem_pending = NULL;
      c->mem_pending_len = 0;
      gc__conn_input(c, p, n);
      gc_free(p);
    }
    return;
  }
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) == 0)
    c->reading = 1;
  else
    gc__conn_teardown(c);
}

void gc__conn_read_stop(struct gc_conn *c) {
  if (!c->reading)
    return;
  if (c->mem) {
    c->reading = 0;
    return;
  }
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->reading = 0;
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
  gc_counters_bump(CTR(c), GC_CTR_MESSAGES_IN, 1);
  gc_counters_bump(CTR(c), GC_CTR_BYTES_IN, (int64_t)arg->msg_length);
  if (gc__conn_count_input(c, arg->msg_length))
    return;
  struct gc_adapter *a = c->app->adapter;
  if (a->on_message)
    a->on_message(c->user, (GCT_PTR)arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks ws_callbacks = {
    .recv_callback = ws_recv,
    .send_callback = ws_send,
    .on_msg_recv_callback = ws_on_msg,
};

/* ---- handshake ----------------------------------------------------------- */

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
static void conn_ws_park(struct gc_conn *c) {
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
  if (gc__conn_ws_bind(c) != 0) {
    gc__conn_log(c, GCL_ERR, "out of memory for its input, dropped");
    gc__conn_teardown(c);
    return;
  }
  if (!wslay_event_want_read(c->ws->ctx))
    return;
  c->last_input = gc_loop_now(c->loop);
  c->pings_sent = 0;
  const char *refused = NULL;
  size_t take = conn_scan(c, data, len, &refused);
  c->in = data;
  c->in_len = take;
  int rc = wslay_event_recv(c->ws->ctx);
  c->in = NULL;
  c->in_len = 0;
  if (c->state == GC_CONN_DEAD)
    return;
  if (refused && rc == 0 && wslay_event_want_read(c->ws->ctx)) {
    ws_fail(c, 1009, refused);
    gc__conn_budget_enforce(c->loop, 0);
  } else if (rc == 0) {
    gc__conn_budget_enforce(c->loop, 0);
  }
  if (c->state == GC_CONN_DEAD)
    return;
  if (rc != 0) {
    /* wslay gives up on some protocol errors (an oversized or fragmented
     * control frame) with a negative code and no close frame queued: fail
     * the connection as RFC 6455 7.1.7 says, with 1002, unless we are out
     * of memory. */
    gc__conn_log(c, GCL_NOTICE,
             "protocol error in a frame (wslay %d), "
             "closing with 1002",
             rc);
    static const uint8_t close_1002[] = {0x88, 0x02, 0x03, 0xea};
    if (rc == WSLAY_ERR_NOMEM || wslay_event_get_close_sent(c->ws->ctx) ||
        gc_send_queue_push_raw(&c->q, close_1002, sizeof close_1002) != 0) {
      gc__conn_teardown(c);
      return;
    }
    if (c->state == GC_CONN_OPEN)
      c->state = GC_CONN_CLOSING;
    c->close_after_flush = 1;
    gc__conn_read_stop(c);
    gc__conn_arm_deadline(c);
    gc__loop_mark_dirty(c->loop, c);
    return;
  }
  if (!wslay_event_want_read(c->ws->ctx) && c->state == GC_CONN_OPEN) {
    /* The peer closed, or its input broke the protocol: wslay queued the
     * close frame; the app can no longer send. In the second case wslay
     * chose the code: it is logged once the frame is out (gc__conn_flush). */
    if (!c->close_logged && !wslay_event_get_close_received(c->ws->ctx))
      c->close_log_pending = 1;
    c->state = GC_CONN_CLOSING;
    gc__conn_arm_deadline(c);
  }
  conn_step(c);
}

/* ---- output -------------------------------------------------------------- */

static void conn_consume(struct gc_conn *c, size_t n) {
  gc_send_queue_consume(&c->q, n, report_sent, c);
}

static void on_write(uv_write_t *req, int status) {
  struct gc_conn *c = req->data;
  c->write_in_flight = 0;
  if (c->state == GC_CONN_DEAD)
    return; /* cancelled by uv_close: on_close reports the rest */
  if (status < 0) {
    gc__conn_log(c, GCL_INFO, "write failed: %s", uv_strerror(status));
    gc__conn_teardown(c);
    return;
  }
  size_t n = c->in_flight;
  c->in_flight = 0;
  conn_consume(c, n);
  if (c->state != GC_CONN_DEAD)
    gc__conn_flush(c);
}

/* Writes what is queued: called by the loop once per turn for every dirty
 * connection, and again when a uv_write completes. */
void gc__conn_flush(struct gc_conn *c) {
  if (c->state == GC_CONN_DEAD)
    return;
  if (c->write_in_flight) {
    /* The peer takes nothing now: what is queued meanwhile still counts
     * for YELLOW (a client that stopped reading never completes a write). */
    gc__conn_queue_check(c);
    return;
  }
  if (c->ws && wslay_event_want_write(c->ws->ctx) &&
      wslay_event_send(c->ws->ctx) != 0) {
    gc__conn_teardown(c);
    return;
  }
  if (c->close_log_pending && c->ws && wslay_event_get_close_sent(c->ws->ctx)) {
    c->close_log_pending = 0;
    gc__conn_log(c, GCL_NOTICE, "invalid frame, closing with %u",
             wslay_event_get_status_code_sent(c->ws->ctx));
  }
  uv_buf_t iov[GC_IOV_MAX];
  size_t total;
  size_t n = gc_send_queue_iov(&c->q, iov, GC_IOV_MAX, &total);
  if (n) {
    int w;
    if (c->mem) {
      /* An in-memory peer takes everything, batch after batch; a paused
       * one nothing: the queue waits as behind a full kernel buffer, until
       * gc_host_resume. */
      while (n && !(c->mem->paused && c->mem->paused(c->mem_ud))) {
        for (size_t i = 0; i < n; i++)
          c->mem->on_data(c->mem_ud, (const uint8_t *)iov[i].base, iov[i].len);
        conn_consume(c, total);
        if (c->state == GC_CONN_DEAD)
          return;
        n = gc_send_queue_iov(&c->q, iov, GC_IOV_MAX, &total);
      }
      if (n) {
        c->write_in_flight = 1;
        gc__conn_queue_check(c);
        return;
      }
      w = 0;
    } else {
      w = uv_try_write((uv_stream_t *)&c->tcp, iov, (unsigned)n);
    }
    if (w == UV_EAGAIN || w == UV_ENOSYS)
      w = 0;
    if (w < 0) {
      gc__conn_log(c, GCL_INFO, "write failed: %s", uv_strerror(w));
      gc__conn_teardown(c);
      return;
    }
    if (w > 0) {
      conn_consume(c, (size_t)w);
      if (c->state == GC_CONN_DEAD)
        return;
    }
    if (c->q.head) {
      /* The kernel is full: hand libuv the rest, it wakes us when done. */
      n = gc_send_queue_iov(&c->q, iov, GC_IOV_MAX, &total);
      c->wreq.data = c;
      if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, iov, (unsigned)n,
                   on_write) != 0) {
        gc__conn_teardown(c);
        return;
      }
      c->write_in_flight = 1;
      c->in_flight = total;
      gc__conn_queue_check(c);
      return;
    }
  }
  gc__conn_queue_check(c);
  if (!c->q.head)
    c->out_since = 0;
  if (c->state != GC_CONN_DEAD)
    conn_step(c);
}

/* Decides what comes next once the queue is empty. */
static void conn_step(struct gc_conn *c) {
  if (c->state == GC_CONN_DEAD)
    return;
  /* First, so a context serves one connection's input and goes back to
   * the spares before the next connection reads. */
  conn_ws_park(c);
  if (c->write_in_flight)
    return;
  if (c->q.head || (c->ws && wslay_event_want_write(c->ws->ctx))) {
    gc__loop_mark_dirty(c->loop, c);
    return;
  }
  if (c->close_after_flush) {
    gc__conn_teardown(c);
    return;
  }
  if (c->state == GC_CONN_HANDSHAKE)
    return;
  if (c->state == GC_CONN_OPEN && !c->ws)
    return; /* parked above: nothing in progress */
  if (c->state == GC_CONN_DRAINING &&
      (gc__conn_ws_bind(c) != 0 || !wslay_event_get_close_sent(c->ws->ctx))) {
    /* Everything queued is out: now the close frame. */
    if (!c->ws || wslay_event_queue_close(c->ws->ctx, 1000, NULL, 0) != 0) {
      gc__conn_teardown(c);
      return;
    }
    gc__loop_mark_dirty(c->loop, c);
    return;
  }
  if (c->ws && wslay_event_get_close_sent(c->ws->ctx)) {
    if (!wslay_event_want_read(c->ws->ctx) || c->peer_eof) {
      gc__conn_teardown(c); /* both close frames exchanged, or reading is over */
      return;
    }
    /* Wait, bounded, for the peer's close frame. */
    c->state = GC_CONN_CLOSING;
    gc__conn_arm_deadline(c);
    gc__conn_read_start(c);
  }
}

/* ---- accept -------------------------------------------------------------- */

/* A new connection in HANDSHAKE state with its tcp handle initialised. */
static struct gc_conn *conn_new(struct gc_listener *l) {
  struct gc_loop *loop = l->loop;
  struct gc_conn *c = gc_calloc(1, sizeof *c);
  if (!c || !(c->req = gc_malloc(sizeof *c->req))) {
    gc_free(c);
    return NULL;
  }
  gc_http_req_init(c->req);
  gc_send_queue_init(&c->q);
  c->q.acct = &loop->buffered;
  c->loop = loop;
  c->listener = l;
  c->state = GC_CONN_HANDSHAKE;
  if (uv_tcp_init(&loop->uv, &c->tcp) != 0) {
    gc_free(c->req);
    gc_free(c);
    return NULL;
  }
  c->tcp.data = c;
  loop->conn_count++;
  /* The handle exists from accept, so timers can refer to a connection in
   * its handshake; the app sees it only in on_connect, and every API call
   * checks the state. */
  if (gc_handle_table_add(&loop->conns, c, &c->handle) != 0) {
    c->state = GC_CONN_DEAD;
    uv_close((uv_handle_t *)&c->tcp, on_close);
    return NULL;
  }
  return c;
}

struct gc_conn *gc__conn_accept_mem(struct gc_listener *l, const char *rip,
                                    int rport, const struct gc_mem_ops *ops,
                                    void *ud) {
  struct gc_conn *c = conn_new(l);
  if (!c)
    return NULL;
  /* The tcp handle never gets a socket: it only gives uv_close's deferred
   * callback, so teardown runs exactly as for a real client. */
  c->mem = ops;
  c->mem_ud = ud;
  snprintf(c->rip, sizeof c->rip, "%s", rip);
  c->rport = rport;
  c->reading = 1;
  conn_arm_deadline_ms(c, handshake_timeout_ms(l->loop));
  return c;
}

void gc__conn_mem_input(struct gc_conn *c, const uint8_t *data, size_t len) {
  if (c->state == GC_CONN_DEAD || !len)
    return;
  if (!c->reading) {
    uint8_t *p = gc_realloc(c->mem_pending, c->mem_pending_len + len);
    if (!p) {
      gc__conn_teardown(c);
      return;
    }
    memcpy(p + c->mem_pending_len, data, len);
    c->mem_pending = p;
    c->mem_pending_len += len;
    return;
  }
  gc__conn_input(c, data, len);
}

void gc__conn_mem_eof(struct gc_conn *c) {
  c->peer_eof = 1;
  gc__conn_teardown(c);
}

static void free_on_close(uv_handle_t *h) { gc_free(h); }

void gc__conn_refuse_pending(struct gc_listener *l) {
  uv_tcp_t *tmp = gc_malloc(sizeof *tmp);
  if (tmp && uv_tcp_init(&l->loop->uv, tmp) == 0) {
    (void)uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)tmp);
    uv_close((uv_handle_t *)tmp, free_on_close);
  } else {
    gc_free(tmp);
  }
}

void gc__conn_accept(struct gc_listener *l) {
  struct gc_loop *loop = l->loop;
  struct gc_conn *c = conn_new(l);
  if (!c) {
    gc__conn_refuse_pending(l);
    gc_log(GCL_ERR, "accept: out of memory");
    return;
  }
  if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->tcp) != 0) {
    c->state = GC_CONN_DEAD;
    uv_close((uv_handle_t *)&c->tcp, on_close);
    return;
  }
  (void)uv_tcp_nodelay(&c->tcp, 1);
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, c->rip, sizeof c->rip);
      c->rport = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, c->rip, sizeof c->rip);
      c->rport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  conn_arm_deadline_ms(c, handshake_timeout_ms(loop));
  /* Connections in their handshake count: a crowd that never finishes
   * its upgrade must not get past max_connections either. */
  uint64_t max = loop->server->cfg->max_connections;
  if (max && loop->conn_count > max) {
    gc__conn_http_reject(c, 503, "too many connections");
    return;
  }
  gc__conn_read_start(c);
}

