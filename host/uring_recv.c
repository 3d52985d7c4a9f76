/* uring_recv.c - open connections read through io_uring (uring_recv.h).
 *
 * Why: with a read() per connection a turn, a loop serving a thousand
 * small talkers spends a system call (about a microsecond on the machines
 * we measure on, bench/NOTES.md) for every few messages. A multishot
 * receive per connection lets the kernel read each socket as data lands,
 * and the loop takes all of it from one pass over the completion queue.
 *
 * The ring is set up with COOP_TASKRUN: the kernel's receive work waits for
 * this thread's next system call instead of interrupting it, so it reads
 * what arrived meanwhile in one go; run at once, it read each segment as
 * it landed and cost more than the read() it replaced. Its buffers are
 * consumed incrementally (Linux 6.12): one 64 KiB buffer holds the input
 * of many connections back to back, so a small message takes a few dozen
 * bytes of it, not a whole buffer, and memory in use follows the bytes
 * received. Not DEFER_TASKRUN: the loop waits on the ring's fd in epoll,
 * and deferred work would not wake it. */
#include <assert.h>
#include <errno.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "transport.h"
#include "uring.h"
#include "uring_recv.h"

/* Linux 6.12's values; Debian 12's liburing headers predate them. */
#ifndef IOU_PBUF_RING_INC
#define IOU_PBUF_RING_INC 2
#endif
#ifndef IORING_CQE_F_BUF_MORE
#define IORING_CQE_F_BUF_MORE (1U << 4)
#endif

#define GC_RX_BUFS 32u          /* a power of two */
#define GC_RX_BUF_SIZE 65536u
#define GC_RX_GROUP 0
#define GC_RX_SQ 1024u
#define GC_RX_CQ 16384u
#define GC_RX_CANCEL_TAG 0 /* user_data of a cancel: no handle is 0 */

/* More than this in one pass and a connection reads through libuv, whose
 * reads take a bounded share a turn (transport_tcp.c). */
#define GC_RX_PASS_BYTES 65536u
#define GC_RX_PASS_FRAMES 1024u

struct gc_urecv {
  struct gc_loop *loop;
  struct io_uring ring;
  uv_poll_t poll;
  struct io_uring_buf_ring *br; /* page-aligned: posix_memalign, free() */
  uint8_t *mem;                 /* the buffers, GC_RX_BUFS x GC_RX_BUF_SIZE */
  uint32_t off[GC_RX_BUFS];     /* bytes of each buffer the kernel filled */
  unsigned queued;              /* SQEs not submitted yet */
  uint32_t pass;
  intptr_t *again; /* connections to arm again once the pass is over */
  size_t again_len, again_cap;
};

static void on_ring(uv_poll_t *h, int status, int events);

/* Said once per process: every worker meets the same kernel. */
static void say_no_reads(const char *why, int err) {
  static atomic_flag said = ATOMIC_FLAG_INIT;
  if (!atomic_flag_test_and_set(&said))
    gc_log(GCL_NOTICE, "io_uring: %s (%s): connections are read with read()", why,
           strerror(err));
}

static void urecv_destroy(struct gc_urecv *u) {
  io_uring_queue_exit(&u->ring);
  free(u->br);
  gc_free(u->mem);
  gc_free(u->again);
  gc_free(u);
}

static void on_poll_closed(uv_handle_t *h) { urecv_destroy(h->data); }

static int add_buffers(struct gc_urecv *u) {
  void *br = NULL;
  if (posix_memalign(&br, 4096, GC_RX_BUFS * sizeof(struct io_uring_buf)) != 0)
    return ENOMEM;
  u->br = br;
  if (!(u->mem = gc_malloc((size_t)GC_RX_BUFS * GC_RX_BUF_SIZE)))
    return ENOMEM;
  io_uring_buf_ring_init(u->br);
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uintptr_t)u->br;
  reg.ring_entries = GC_RX_BUFS;
  reg.bgid = GC_RX_GROUP;
  reg.pad = IOU_PBUF_RING_INC; /* 'flags' in later headers */
  int rc = io_uring_register_buf_ring(&u->ring, &reg, 0);
  if (rc < 0)
    return -rc;
  for (unsigned i = 0; i < GC_RX_BUFS; i++)
    io_uring_buf_ring_add(u->br, u->mem + (size_t)i * GC_RX_BUF_SIZE, GC_RX_BUF_SIZE,
                          (unsigned short)i, io_uring_buf_ring_mask(GC_RX_BUFS), (int)i);
  io_uring_buf_ring_advance(u->br, (int)GC_RX_BUFS);
  return 0;
}

int gc__urecv_usable(struct gc_loop *loop) {
  if (loop->urecv || loop->urecv_off)
    return loop->urecv != NULL;
  loop->urecv_off = 1;
  /* Off in the config, or refused by the kernel (said by uring.c). */
  if (!gc__uring_get(loop))
    return 0;
  struct gc_urecv *u = gc_calloc(1, sizeof *u);
  if (!u) {
    say_no_reads("no memory for the receive ring", ENOMEM);
    return 0;
  }
  u->loop = loop;
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_CQSIZE | IORING_SETUP_SUBMIT_ALL |
            IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  p.cq_entries = GC_RX_CQ;
  int rc = io_uring_queue_init_params(GC_RX_SQ, &u->ring, &p);
  if (rc < 0) {
    gc_free(u);
    say_no_reads("cannot set up the receive ring", -rc);
    return 0;
  }
  if ((rc = add_buffers(u)) != 0) {
    urecv_destroy(u);
    say_no_reads(rc == EINVAL ? "no incrementally consumed buffers (Linux 6.12)"
                              : "cannot set up the receive buffers",
                 rc);
    return 0;
  }
  if ((rc = uv_poll_init(&loop->uv, &u->poll, u->ring.ring_fd)) != 0) {
    urecv_destroy(u);
    say_no_reads("cannot watch the receive ring", -rc);
    return 0;
  }
  u->poll.data = u;
  if ((rc = uv_poll_start(&u->poll, UV_READABLE, on_ring)) != 0) {
    uv_close((uv_handle_t *)&u->poll, on_poll_closed);
    say_no_reads("cannot watch the receive ring", -rc);
    return 0;
  }
  loop->urecv = u;
  loop->urecv_off = 0;
  return 1;
}

void gc__urecv_free(struct gc_loop *loop) {
  if (loop->urecv)
    urecv_destroy(loop->urecv);
  loop->urecv = NULL;
}

/* An SQE, submitting the queued ones first when the queue is full. */
static struct io_uring_sqe *sqe_get(struct gc_urecv *u) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
  if (!sqe) {
    gc__urecv_submit(u->loop);
    sqe = io_uring_get_sqe(&u->ring);
  }
  if (sqe)
    u->queued++;
  return sqe;
}

void gc__urecv_submit(struct gc_loop *loop) {
  struct gc_urecv *u = loop->urecv;
  if (!u || !u->queued)
    return;
  int rc = io_uring_submit(&u->ring);
  if (rc >= 0)
    u->queued = 0; /* else they go with the next submission */
}

int gc__urecv_arm(struct gc_conn *c) {
  struct gc_urecv *u = c->loop->urecv;
  uv_os_fd_t fd;
  assert(c->rx == GC_RX_NONE);
  if (!u)
    return ENOTSUP;
  if (uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0)
    return EBADF;
  struct io_uring_sqe *sqe = sqe_get(u);
  if (!sqe)
    return EBUSY;
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = GC_RX_GROUP;
  io_uring_sqe_set_data64(sqe, (uint64_t)c->handle);
  c->rx = GC_RX_ARMED;
  return 0;
}

void gc__urecv_stop(struct gc_conn *c) {
  struct gc_urecv *u = c->loop->urecv;
  if (c->rx != GC_RX_ARMED)
    return;
  assert(u);
  struct io_uring_sqe *sqe = sqe_get(u);
  if (!sqe) {
    /* Cannot happen with a working ring (sqe_get submits to make room). */
    gc__conn_log(c, GCL_WARN, "io_uring: cannot cancel a receive");
    return;
  }
  io_uring_prep_cancel64(sqe, (uint64_t)c->handle, 0);
  io_uring_sqe_set_data64(sqe, GC_RX_CANCEL_TAG);
  c->rx = GC_RX_CANCELLED;
}

static void arm_later(struct gc_urecv *u, struct gc_conn *c) {
  if (u->again_len == u->again_cap) {
    size_t cap = u->again_cap ? u->again_cap * 2 : 64;
    intptr_t *a = gc_realloc(u->again, cap * sizeof *a);
    if (!a) {
      gc__conn_log(c, GCL_WARN, "out of memory: closing the connection");
      gc__conn_teardown(c);
      return;
    }
    u->again = a;
    u->again_cap = cap;
  }
  u->again[u->again_len++] = c->handle;
}

/* Input 'data' for c, as a read of libuv would bring it; a connection that
 * brings more than its share of the pass goes over to libuv's reads. */
static void deliver(struct gc_urecv *u, struct gc_conn *c, const uint8_t *data,
                    size_t len) {
  if (c->rx_pass != u->pass) {
    c->rx_pass = u->pass;
    c->rx_bytes = 0;
    c->read_frames = 0;
  }
  c->rx_bytes += (uint32_t)len;
  gc_counters_inc(&c->loop->reads[1], 1);
  gc__conn_input(c, data, len);
  if (c->rx == GC_RX_ARMED && c->state != GC_CONN_DEAD &&
      (c->rx_bytes >= GC_RX_PASS_BYTES || c->read_frames >= GC_RX_PASS_FRAMES)) {
    c->rx_bulk = 1;
    gc__urecv_stop(c);
  }
}

/* c's receive ended (its last completion, 'res'). */
static void ended(struct gc_urecv *u, struct gc_conn *c, int res) {
  c->rx = GC_RX_NONE;
  if (c->state == GC_CONN_DEAD)
    return;
  if (res == 0 || (res < 0 && res != -ENOBUFS && res != -ECANCELED)) {
    c->peer_eof = 1;
    if (res < 0)
      gc__conn_log(c, GCL_INFO, "%s", strerror(-res));
    gc__conn_teardown(c);
    return;
  }
  /* Out of buffers, cancelled, or ended by the kernel: armed again after
   * the pass has given its buffers back, if it still reads. */
  if (c->reading)
    arm_later(u, c);
}

static void complete(struct gc_urecv *u, const struct io_uring_cqe *cqe) {
  const uint8_t *data = NULL;
  size_t len = 0;
  unsigned bid = 0;
  int give_back = 0;
  if (cqe->flags & IORING_CQE_F_BUFFER) {
    bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
    assert(bid < GC_RX_BUFS);
    data = u->mem + (size_t)bid * GC_RX_BUF_SIZE + u->off[bid];
    len = cqe->res > 0 ? (size_t)cqe->res : 0;
    assert(u->off[bid] + len <= GC_RX_BUF_SIZE);
    if (cqe->flags & IORING_CQE_F_BUF_MORE)
      u->off[bid] += (uint32_t)len;
    else
      give_back = 1;
  }
  uint64_t tag = io_uring_cqe_get_data64(cqe);
  struct gc_conn *c =
      tag == GC_RX_CANCEL_TAG ? NULL : gc_handle_table_get(&u->loop->conns, (intptr_t)tag);
  /* What a receive read before its cancel took effect: an open
   * connection that stopped reading (its output is backed up) gets it, as
   * it would once it read again; one that is ending drops it, as its
   * socket's unread bytes would be (no input after a protocol error or
   * connectionClose). A connection closed meanwhile is gone or dead. */
  if (c && c->rx != GC_RX_NONE) {
    if (len && c->state != GC_CONN_DEAD && (c->reading || c->state == GC_CONN_OPEN))
      deliver(u, c, data, len);
    if (!(cqe->flags & IORING_CQE_F_MORE))
      ended(u, c, cqe->res);
  }
  if (give_back) {
    u->off[bid] = 0;
    io_uring_buf_ring_add(u->br, u->mem + (size_t)bid * GC_RX_BUF_SIZE, GC_RX_BUF_SIZE,
                          (unsigned short)bid, io_uring_buf_ring_mask(GC_RX_BUFS), 0);
    io_uring_buf_ring_advance(u->br, 1);
  }
}

static void on_ring(uv_poll_t *h, int status, int events) {
  struct gc_urecv *u = h->data;
  (void)status;
  (void)events;
  u->pass++;
  /* The completions there now: more come in from the kernel's work at
   * every system call a handler makes, and they wait for the next turn. */
  unsigned ready = io_uring_cq_ready(&u->ring);
  for (unsigned i = 0; i < ready; i++) {
    struct io_uring_cqe *cqe;
    if (io_uring_peek_cqe(&u->ring, &cqe) != 0)
      break;
    struct io_uring_cqe copy = *cqe;
    io_uring_cqe_seen(&u->ring, cqe);
    complete(u, &copy);
  }
  /* Completions the queue had no room for wait in the kernel until asked
   * for: the peek moves them in, and the ring's fd reads ready again. */
  if (IO_URING_READ_ONCE(*u->ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW) {
    struct io_uring_cqe *cqe;
    (void)io_uring_peek_cqe(&u->ring, &cqe);
  }
  for (size_t i = 0; i < u->again_len; i++) {
    struct gc_conn *c = gc_handle_table_get(&u->loop->conns, u->again[i]);
    if (c && c->state != GC_CONN_DEAD && c->reading && c->rx == GC_RX_NONE)
      gc__tcp_read_resume(c);
  }
  u->again_len = 0;
  gc__urecv_submit(u->loop);
}
