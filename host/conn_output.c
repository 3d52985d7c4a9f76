/* conn_output.c - a connection's output and what follows it.
 *
 * Output is corked: API calls only append to the queue and mark the
 * connection dirty; the loop writes every dirty queue once per turn
 * (loop.c), with the transport's try_write and a background write for
 * what the kernel did not take. wslay parses frames and produces control
 * frames; its output goes through the same queue so the byte stream stays
 * ordered. Data frames are built here because wslay's event API has no
 * per-message completion, which on_message_sent needs. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "log.h"
#include "metrics.h"
#include "transport.h"
#include "uring.h"

#define GC_IOV_MAX 64

/* The loop thread's gathering buffer for a flush of small messages. */
static _Thread_local uint8_t cork[GC_URING_GATHER_MAX];

/* Copies the 'n' buffers of 'iov' one after the other into 'dst'. */
static void gather(uint8_t *dst, const uv_buf_t *iov, size_t n) {
  for (size_t i = 0; i < n; i++) {
    memcpy(dst, iov[i].base, iov[i].len);
    dst += iov[i].len;
  }
}

static void report_sent(void *ctx, const struct gc_msg *m) {
  struct gc_conn *c = ctx;
  struct gc_adapter *a = c->app->adapter;
  gc__stat(c, GC_CTR_MESSAGES_OUT, 1);
  gc__stat(c, GC_CTR_BYTES_OUT, (int64_t)m->len);
  gc__stat(c, GC_CTR_QUEUED_BYTES, -(int64_t)(m->len + m->hdr_len));
  if (c->accepted && a->on_message_sent)
    GC__TIMED(c->loop, c->app, GC_EV_MESSAGE_SENT,
              a->on_message_sent(c->user, m->cookie, m->len, 0));
}

static void conn_consume(struct gc_conn *c, size_t n) {
  gc_send_queue_consume(&c->q, n, report_sent, c);
}

/* The kernel took 'w' bytes of the queue, or failed with libuv error 'w':
 * 0 if the connection goes on, -1 if it ended. */
static int conn_took(struct gc_conn *c, int w) {
  if (w < 0) {
    gc__conn_log(c, GCL_INFO, "write failed: %s", uv_strerror(w));
    gc__conn_closing(c, GC_CLOSED_BY_CLIENT, 1006); /* the peer is gone */
    gc__conn_teardown(c);
    return -1;
  }
  if (w > 0)
    conn_consume(c, (size_t)w);
  return c->state == GC_CONN_DEAD ? -1 : 0;
}

/* What the peer did not take now goes to a background write, which wakes
 * us when it is done. */
static void conn_write_rest(struct gc_conn *c, const uv_buf_t *iov, size_t n,
                            size_t total) {
  if (c->tp->write(c, iov, n, total) != 0) {
    gc__conn_teardown(c);
    return;
  }
  c->write_in_flight = 1;
  c->in_flight = c->tp->drain_inline ? 0 : total;
  gc__conn_queue_check(c);
}

/* Written for now: the limits looked at, then what comes next. */
static void conn_written(struct gc_conn *c) {
  gc__conn_queue_check(c);
  if (!c->q.head)
    c->out_since = 0;
  if (c->state != GC_CONN_DEAD)
    gc__conn_step(c);
}

void gc__conn_write_done(struct gc_conn *c, int status, size_t written) {
  c->write_in_flight = 0;
  if (c->state == GC_CONN_DEAD)
    return; /* cancelled by uv_close: on_close reports the rest */
  if (status < 0) {
    gc__conn_log(c, GCL_INFO, "write failed: %s", uv_strerror(status));
    gc__conn_closing(c, GC_CLOSED_BY_CLIENT, 1006); /* the peer is gone */
    gc__conn_teardown(c);
    return;
  }
  c->in_flight = 0;
  if (written)
    conn_consume(c, written);
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
  while (n) {
    int w;
    if (n > 1 && total <= sizeof cork && !c->tp->drain_inline) {
      /* Small messages gathered into one buffer: one contiguous write
       * costs the kernel less than a writev of many short iovecs. */
      gather(cork, iov, n);
      uv_buf_t one = uv_buf_init((char *)cork, (unsigned)total);
      w = c->tp->try_write(c, &one, 1);
    } else {
      w = c->tp->try_write(c, iov, n);
    }
    gc_counters_inc(&c->loop->sends[0], 1);
    if (conn_took(c, w) != 0)
      return;
    if (!c->q.head)
      break;
    size_t offered = total;
    n = gc_send_queue_iov(&c->q, iov, GC_IOV_MAX, &total);
    /* An in-memory peer that takes everything is written batch after
     * batch; a socket whose kernel buffer is full hands the rest to a
     * background write. */
    if (c->tp->drain_inline && (size_t)w == offered)
      continue;
    conn_write_rest(c, iov, n, total);
    return;
  }
  conn_written(c);
}

int gc__conn_flush_offer(struct gc_conn *c, struct gc_uring *u) {
  /* Only the plain case: TLS, wslay's own output, a write in progress
   * or nothing to write go through gc__conn_flush. */
  if (c->tp != &gc_transport_tcp || c->state == GC_CONN_DEAD ||
      c->write_in_flight || c->close_log_pending || !c->q.head ||
      (c->ws && wslay_event_want_write(c->ws->ctx)))
    return 0;
  uv_os_fd_t fd;
  if (uv_fileno((const uv_handle_t *)&c->tcp, &fd) != 0)
    return 0;
  uv_buf_t iov[GC_IOV_MAX];
  size_t total;
  size_t n = gc_send_queue_iov(&c->q, iov, GC_IOV_MAX, &total);
  if (n == 1) {
    if (!gc__uring_has_room(u))
      return 0;
    gc__uring_send(u, c, fd, iov[0].base, iov[0].len);
    return 1;
  }
  if (total > sizeof cork) /* large: no copy */
    return gc__uring_sendv(u, c, fd, iov, n) == 0;
  uint8_t *dst = gc__uring_reserve(u, total);
  if (!dst)
    return 0;
  gather(dst, iov, n);
  gc__uring_send(u, c, fd, dst, total);
  return 1;
}

/* As gc__conn_flush goes on after its try_write. */
void gc__conn_sent(struct gc_conn *c, int w) {
  if (c->state == GC_CONN_DEAD)
    return; /* on_close reports what is left */
  if (conn_took(c, w) != 0 || c->write_in_flight)
    return; /* ended, or a handler's send flushed it meanwhile */
  if (c->q.head) {
    /* What the socket did not take now, or what on_message_sent queued. */
    uv_buf_t iov[GC_IOV_MAX];
    size_t total;
    size_t n = gc_send_queue_iov(&c->q, iov, GC_IOV_MAX, &total);
    conn_write_rest(c, iov, n, total);
    return;
  }
  conn_written(c);
}

/* Decides what comes next once the queue is empty. */
void gc__conn_step(struct gc_conn *c) {
  if (c->state == GC_CONN_DEAD)
    return;
  /* First, so a context serves one connection's input and goes back to
   * the spares before the next connection reads. */
  gc__conn_ws_park(c);
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
    /* Everything queued is out: now the close frame, with the code and
     * reason of connectionCloseEx if it gave them (wslay copies). */
    uint16_t code = c->close_code ? c->close_code : 1000;
    const char *why = c->close_text;
    if (!c->ws ||
        wslay_event_queue_close(c->ws->ctx, code, (const uint8_t *)why,
                                why ? strlen(why) : 0) != 0) {
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
