/* transport_tcp.c - a client on a TCP socket: read through the loop's
 * io_uring receives once open (uring_recv.h), else with libuv into one read
 * buffer per loop and a bounded share per loop turn; uv_try_write first,
 * uv_write for what the kernel does not take. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"
#include "mailbox.h"
#include "transport.h"
#include "uring_recv.h"

/* ---- reading ------------------------------------------------------------- */

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct gc_conn *c = h->data;
  (void)suggested;
  /* Its share of this turn read: no buffer ends libuv's read loop for this
   * socket (UV_ENOBUFS) without taking it out of epoll, which a
   * uv_read_stop and uv_read_start each turn would (two epoll_ctl). */
  if (c->read_paused) {
    *buf = uv_buf_init(NULL, 0);
    return;
  }
  /* One buffer per loop: input is consumed before the callback returns
   * (the fast lane stashes and wslay copies partial frames), so idle
   * connections own none. */
  *buf = uv_buf_init(c->loop->rbuf, c->read_max ? c->read_max : 65536);
}

/* The share of one connection per loop turn once it keeps the read buffer
 * full: about GC_TURN_FRAMES frames (what a client that waits for its
 * answers sends in a turn) and at most GC_TURN_BYTES (bench/NOTES.md,
 * fairness). */
#define GC_TURN_FRAMES 16
#define GC_TURN_BYTES 65536
/* Reads in a row that leave the socket empty before a connection that
 * brought too much for the ring (rx_bulk) goes back to it. */
#define GC_RX_CALM_READS 8

/* An open plain connection on a loop whose ring reads. */
static int ring_ok(const struct gc_conn *c) {
  return c->tp == &gc_transport_tcp && c->state == GC_CONN_OPEN &&
         gc__urecv_usable(c->loop);
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct gc_conn *c = s->data;
  if (nread == 0 || (nread == UV_ENOBUFS && c->read_paused))
    return; /* nothing read, or its share of the turn taken (on_alloc) */
  if (nread < 0) {
    c->peer_eof = 1;
    if (nread != UV_EOF && c->state != GC_CONN_HANDSHAKE)
      gc__conn_log(c, GCL_INFO, "%s", uv_strerror((int)nread));
    gc__conn_teardown(c);
    return;
  }
  c->read_frames = 0;
  gc_counters_inc(&c->loop->reads[0], 1);
  if (c->tp->input)
    c->tp->input(c, (const uint8_t *)buf->base, (size_t)nread);
  else
    gc__conn_input(c, (const uint8_t *)buf->base, (size_t)nread);
  if ((size_t)nread < buf->len) {
    c->read_max = 0; /* not flooding: a full buffer next time */
    /* Its socket is empty: on through the ring, if it may; one that came
     * from the ring for bringing too much only after a few such reads in
     * a row, or a flooder that falls behind now and then would go back
     * and forth, taking a pass's worth each time it is back. */
    if (c->rx_bulk && c->rx_calm < GC_RX_CALM_READS) {
      c->rx_calm++;
      return;
    }
    if (c->reading && !c->read_paused && ring_ok(c)) {
      uv_read_stop((uv_stream_t *)&c->tcp);
      c->rx_bulk = 0;
      c->rx_calm = 0; /* counts afresh if it floods again */
      if (gc__urecv_arm(c) != 0 &&
          uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
        gc__conn_teardown(c);
    }
    return;
  }
  c->rx_calm = 0;
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
   * cannot take the loop from the others; the socket stays in epoll
   * (level-triggered: the next turn reads on). */
  if (c->reading && !c->read_paused && c->state != GC_CONN_DEAD) {
    c->read_paused = 1;
    c->resume_next = c->loop->resume;
    c->loop->resume = c;
  }
}

int gc__tcp_read_start(struct gc_conn *c) {
  /* A receive being cancelled: its last completion starts the next read
   * (gc__tcp_read_resume), so that no byte is read out of order. */
  if (c->rx != GC_RX_NONE)
    return 0;
  if (!c->rx_bulk && ring_ok(c) && gc__urecv_arm(c) == 0)
    return 0;
  return uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read);
}

void gc__tcp_read_resume(struct gc_conn *c) {
  assert(c->rx == GC_RX_NONE);
  if (gc__tcp_read_start(c) != 0)
    gc__conn_teardown(c);
}

void gc__tcp_read_stop(struct gc_conn *c) {
  gc__urecv_stop(c);
  uv_read_stop((uv_stream_t *)&c->tcp);
}

/* Before its socket closes: a receive in the ring would hold it open. */
static void tcp_ending(struct gc_conn *c) { gc__urecv_stop(c); }

/* ---- writing ------------------------------------------------------------- */

static int tcp_try_write(struct gc_conn *c, const uv_buf_t *iov, size_t n) {
  int w = uv_try_write((uv_stream_t *)&c->tcp, iov, (unsigned)n);
  return w == UV_EAGAIN || w == UV_ENOSYS ? 0 : w;
}

static void on_write(uv_write_t *req, int status) {
  struct gc_conn *c = req->data;
  assert(c->wreq == req);
  gc_free(req);
  c->wreq = NULL;
  gc__conn_write_done(c, status, c->in_flight);
}

/* The request is made for the write: most connections never need one (the
 * kernel takes their output at once), and an idle one holds none. */
static int tcp_write(struct gc_conn *c, const uv_buf_t *iov, size_t n,
                     size_t total) {
  (void)total;
  assert(!c->wreq);
  if (!(c->wreq = gc_malloc(sizeof *c->wreq)))
    return UV_ENOMEM;
  c->wreq->data = c;
  int rc = uv_write(c->wreq, (uv_stream_t *)&c->tcp, iov, (unsigned)n, on_write);
  if (rc != 0) {
    gc_free(c->wreq);
    c->wreq = NULL;
  }
  return rc;
}

/* ---- addresses, hand-over ------------------------------------------------ */

void gc__tcp_local_addr(struct gc_conn *c, char *ip, size_t iplen, int *port) {
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  if (uv_tcp_getsockname(&c->tcp, (struct sockaddr *)&ss, &sl) != 0)
    return;
  if (ss.ss_family == AF_INET6) {
    uv_ip6_name((struct sockaddr_in6 *)&ss, ip, iplen);
    *port = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
  } else {
    uv_ip4_name((struct sockaddr_in *)&ss, ip, iplen);
    *port = ntohs(((struct sockaddr_in *)&ss)->sin_port);
  }
}

/* The socket goes on under a duplicate: closing ours takes it out of this
 * loop's epoll and leaves the connection open. */
int gc__tcp_hand_over(struct gc_conn *c, struct gc_adopt *a) {
  uv_os_fd_t fd;
  assert(c->rx == GC_RX_NONE); /* handed over during its handshake */
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    return EBADF;
  if ((a->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0)) < 0)
    return errno;
  return 0;
}

int gc__tcp_adopt(struct gc_conn *c, struct gc_adopt *a) {
  int rc = uv_tcp_open(&c->tcp, a->fd);
  if (rc)
    return -rc;
  a->fd = -1;
  (void)uv_tcp_nodelay(&c->tcp, 1);
  return 0;
}

const struct gc_transport gc_transport_tcp = {
    .name = "tcp",
    .read_start = gc__tcp_read_start,
    .read_stop = gc__tcp_read_stop,
    .try_write = tcp_try_write,
    .write = tcp_write,
    .local_addr = gc__tcp_local_addr,
    .closed = NULL,
    .ending = tcp_ending,
    .hand_over = gc__tcp_hand_over,
    .adopt = gc__tcp_adopt,
    .drain_inline = 0,
};
