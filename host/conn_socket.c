/* conn_socket.c - the socket side of a connection: accepting it (from a
 * listener, or from gc.testing's in-memory transport) and reading from it,
 * one buffer per loop and a bounded share per loop turn. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "mailbox.h"

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
    return;
  }
  /* Flooding: the next read takes about GC_TURN_FRAMES frames of the size
   * just seen, and no more than GC_TURN_BYTES; the kernel keeps the rest
   * (and TCP slows the sender). */
  uint64_t want = GC_TURN_BYTES;
  if (c->read_frames > GC_TURN_FRAMES)
    want = (uint64_t)nread * GC_TURN_FRAMES / c->read_frames;
  if (want < 512)
    want = 512;
  if (want > GC_TURN_BYTES)
    want = GC_TURN_BYTES;
  c->read_max = (uint32_t)want;
  /* More is waiting: libuv would read it again (up to 32 times) before any
   * other connection is served. One read per turn each, so a flooder
   * cannot take the loop from the others. */
  if (c->reading && c->state != GC_CONN_DEAD) {
    gc__conn_read_stop(c);
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
  atomic_fetch_add_explicit(&loop->server->conn_total, 1, memory_order_relaxed);
  /* The handle exists from accept, so timers can refer to a connection in
   * its handshake; the app sees it only in on_connect, and every API call
   * checks the state. */
  if (gc_handle_table_add(&loop->conns, c, &c->handle) != 0) {
    c->state = GC_CONN_DEAD;
    uv_close((uv_handle_t *)&c->tcp, gc__conn_on_close);
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
  gc__conn_arm_deadline_ms(c, l->loop->server->cfg->handshake_timeout_ms);
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
    uv_close((uv_handle_t *)&c->tcp, gc__conn_on_close);
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
  gc__conn_arm_deadline_ms(c, loop->server->cfg->handshake_timeout_ms);
  /* Connections in their handshake count: a crowd that never finishes
   * its upgrade must not get past max_connections either. */
  uint64_t max = loop->server->cfg->max_connections;
  if (max && (uint64_t)atomic_load_explicit(&loop->server->conn_total,
                                            memory_order_relaxed) > max) {
    gc__conn_http_reject(c, 503, "too many connections");
    return;
  }
  gc__conn_read_start(c);
}


/* ---- handing a connection to its worker ---------------------------------- */

void gc__conn_hand_over(struct gc_conn *c, int worker, const uint8_t *rest,
                        size_t rest_len) {
  struct gc_loop *loop = c->loop;
  size_t pending = c->mem_pending_len;
  struct gc_adopt *a = rest_len + pending >= rest_len
                           ? gc_malloc(sizeof *a + rest_len + pending)
                           : NULL;
  struct gc_mail *m = a ? gc_mail_new(GC_MAIL_ADOPT, 0) : NULL;
  if (!m) {
    gc_free(a);
    gc__conn_http_reject(c, 500, "out of memory");
    return;
  }
  a->fd = -1;
  a->mem = NULL;
  a->mem_ud = NULL;
  if (!c->mem) {
    /* The socket goes on under a duplicate: closing ours here takes it
     * out of this loop's epoll and leaves the connection open. */
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0 ||
        (a->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0) {
      gc_free(a);
      gc_free(m);
      gc__conn_http_reject(c, 500, "cannot hand the connection over");
      return;
    }
  }
  a->mem = c->mem;
  a->mem_ud = c->mem_ud;
  c->mem = NULL; /* its peer now belongs to the new connection */
  a->req = c->req;
  c->req = NULL;
  memcpy(a->rip, c->rip, sizeof a->rip);
  a->rport = c->rport;
  a->port = c->listener->port;
  a->rest_len = rest_len + pending;
  if (rest_len)
    memcpy(a->rest, rest, rest_len);
  if (pending)
    memcpy(a->rest + rest_len, c->mem_pending, pending);
  m->ptr = a;
  gc__conn_read_stop(c);
  gc__conn_teardown(c); /* never accepted: no event for it */
  if (gc_mail_post(loop->server->loops[worker], m) != 0)
    gc_log(GCL_WARN, "a connection could not be handed to worker %d: it "
           "has stopped", worker);
}

void gc__conn_adopt(struct gc_loop *loop, struct gc_adopt *a) {
  struct gc_listener *l = NULL;
  for (size_t i = 0; i < loop->listener_count && !l; i++)
    if (loop->listeners[i]->port == a->port)
      l = loop->listeners[i];
  struct gc_conn *c = l ? conn_new(l) : NULL;
  if (!c) {
    gc_log(GCL_ERR, "worker %d: cannot take a connection: %s", loop->id,
           l ? "out of memory" : "no listener");
    if (a->mem && a->mem->on_close)
      a->mem->on_close(a->mem_ud);
    if (a->fd >= 0)
      close(a->fd);
    gc_free(a->req);
    gc_free(a);
    return;
  }
  gc_free(c->req);
  c->req = a->req;
  memcpy(c->rip, a->rip, sizeof c->rip);
  c->rport = a->rport;
  if (a->mem) {
    c->mem = a->mem;
    c->mem_ud = a->mem_ud;
    c->reading = 1;
    if (c->mem->on_moved)
      c->mem->on_moved(c->mem_ud, c);
  } else if (uv_tcp_open(&c->tcp, a->fd) != 0) {
    close(a->fd);
    gc_free(a);
    gc__conn_teardown(c);
    return;
  } else {
    (void)uv_tcp_nodelay(&c->tcp, 1);
  }
  gc__conn_handshake_done(c, a->rest, a->rest_len);
  if (!c->mem && c->state == GC_CONN_OPEN)
    gc__conn_read_start(c);
  gc_free(a);
}
