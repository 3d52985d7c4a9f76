/* loadgen_ring.c - reading and writing through io_uring.
 *
 * A thousand receivers each read one small message per broadcast: with a
 * read() each, the load generator spent more CPU per delivery than the
 * servers it measured (a system call costs about a microsecond on this VM),
 * and the row measured the client. Each receiver gets one multishot recv
 * into a ring of provided buffers instead: no system call per delivery.
 * Echo mode (plain ws or raw, not the flooders) does the same for both
 * directions: a multishot recv per connection, and its replies leave as one
 * IORING_OP_SEND per connection with output (the whole of out[cur]), all
 * of a pass started by one io_uring_submit after its CQE loop, together
 * with the receives armed again. A send owns out[!cur] until its CQE (the
 * same double buffer as a uv_write); what is sent meanwhile goes to out[cur]
 * and leaves once it completes. Tags: the connection's index for its recv,
 * RX_SEND | index for its send, RX_CANCEL for a cancel. */
#include <errno.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

#define RX_CANCEL UINT64_MAX
#define RX_SEND (1ull << 63)
static struct io_uring rx_ring;
int rx_ready;
uv_poll_t rx_poll;
static struct io_uring_buf_ring *rx_br;
static uint8_t *rx_mem;
static unsigned rx_nbuf, rx_bufsz;
static int *tx_dirty; /* connections with a send to start after this pass */
static int tx_ndirty;
int tx_defer;

static void on_rx(uv_poll_t *h, int status, int events);

/* Linux 6.12's values; Debian 12's liburing headers predate them. */
#define RX_PBUF_RING_INC 2
#define RX_CQE_F_BUF_MORE (1U << 4)
static int rx_inc;       /* buffers consumed incrementally */
static uint32_t *rx_off; /* with rx_inc: bytes of each buffer filled */

/* 'nbuf' buffers of 'bufsz' bytes registered as group 1; 0 or -1. */
static int rx_buffers(unsigned nbuf, unsigned bufsz, int inc) {
  void *m = NULL;
  if (posix_memalign(&m, 4096, nbuf * sizeof(struct io_uring_buf)) != 0)
    return -1;
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uintptr_t)m;
  reg.ring_entries = nbuf;
  reg.bgid = 1;
  reg.pad = inc ? RX_PBUF_RING_INC : 0; /* 'flags' in later headers */
  io_uring_buf_ring_init(m);
  if (io_uring_register_buf_ring(&rx_ring, &reg, 0) < 0) {
    free(m);
    return -1;
  }
  if (!(rx_mem = malloc((size_t)nbuf * bufsz)) ||
      (inc && !(rx_off = calloc(nbuf, sizeof *rx_off)))) {
    fprintf(stderr, "loadgen: out of memory\n");
    exit(1);
  }
  rx_br = m;
  rx_nbuf = nbuf;
  rx_bufsz = bufsz;
  for (unsigned i = 0; i < nbuf; i++)
    io_uring_buf_ring_add(rx_br, rx_mem + (size_t)i * bufsz, bufsz, (unsigned short)i,
                          io_uring_buf_ring_mask(nbuf), (int)i);
  io_uring_buf_ring_advance(rx_br, (int)nbuf);
  return 0;
}

/* Broadcast: 16,384 buffers of 1 KiB (a delivery is a few dozen bytes).
 * Echo: a buffer holds a connection's window (1 KiB to 64 KiB: 32 B x16 in
 * one 1 KiB buffer, 1 KiB x16 in one of 32 KiB), two per connection (at
 * least 1,024), 64 MiB at most, where the kernel lacks incrementally
 * consumed buffers (below). A receive that finds none ends (ENOBUFS) and
 * is armed again after the pass. */
int rx_init(void) {
  rx_nbuf = 16384;
  rx_bufsz = 1024;
  if (opt.mode == M_ECHO) {
    size_t batch = (size_t)opt.window * ((size_t)opt.size + (opt.raw ? 0 : 14));
    rx_bufsz = 1024;
    while (rx_bufsz < batch && rx_bufsz < 65536)
      rx_bufsz *= 2;
    rx_nbuf = 1024;
    while (rx_nbuf < 2u * (unsigned)opt.conns && rx_nbuf < 32768)
      rx_nbuf *= 2;
    while ((size_t)rx_nbuf * rx_bufsz > ((size_t)64 << 20) && rx_nbuf > 256)
      rx_nbuf /= 2;
  }
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_CQSIZE;
  /* Echo: the kernel's work for the ring (a receive when data came, the
   * rest of a send when there is room) waits for this process's next
   * system call instead of interrupting it: it reads what arrived since,
   * not each segment as it lands, and answers whole windows. Run at once,
   * echoes came back one or two at a time and the replies went out as
   * small, and the server spent more per message (1 KiB x100: ~10 % fewer
   * messages/s at 99 % server CPU). Not DEFER_TASKRUN: a uv_poll on the
   * ring's fd does not wake for deferred work; this does (the task work
   * interrupts the epoll_wait, runs, and posts its completions). */
  if (opt.mode == M_ECHO)
    p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  p.cq_entries = 65536; /* a pass: a recv and a send per connection, and more */
  if (io_uring_queue_init_params(4096, &rx_ring, &p) < 0) {
    /* a kernel older than 5.19 has no COOP_TASKRUN */
    p.flags &= ~(unsigned)(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
    if (io_uring_queue_init_params(4096, &rx_ring, &p) < 0)
      return -1;
  }
  if (!(tx_dirty = malloc((size_t)nconns * sizeof *tx_dirty)))
    return -1;
  /* Echo: 64 buffers of 64 KiB consumed incrementally (Linux 6.12), as
   * gcs's own receives are: each completion takes what arrived, back to
   * back in the current buffer, so the few buffers in use stay in cache.
   * Whole buffers, sized to a window, came round cold: 1,024 of 64 KiB at
   * 16 KiB x100, where this client was then the bound. */
  if (opt.mode == M_ECHO && rx_buffers(64, 65536, 1) == 0)
    rx_inc = 1;
  else if (rx_buffers(rx_nbuf, rx_bufsz, 0) != 0)
    return -1;
  if (uv_poll_init(loop, &rx_poll, rx_ring.ring_fd) != 0 ||
      uv_poll_start(&rx_poll, UV_READABLE, on_rx) != 0)
    return -1;
  rx_ready = 1;
  return 0;
}

static struct io_uring_sqe *rx_sqe(void) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&rx_ring);
  if (!sqe) {
    io_uring_submit(&rx_ring);
    sqe = io_uring_get_sqe(&rx_ring);
  }
  return sqe;
}

/* Hands c's socket to the ring (libuv stops reading it). Submitted at once,
 * or inside a pass of on_rx with the rest at its end. */
void rx_arm(struct conn *c) {
  uv_os_fd_t fd;
  struct io_uring_sqe *sqe = rx_sqe();
  if (!sqe || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
    error_at(c, "io_uring: cannot arm a receive");
    conn_close(c, 1);
    return;
  }
  c->fd = fd;
  uv_read_stop((uv_stream_t *)&c->tcp);
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = 1;
  io_uring_sqe_set_data64(sqe, (uint64_t)c->id);
  c->rx = 1;
  if (!tx_defer)
    io_uring_submit(&rx_ring);
}

static void rx_cancel_op(uint64_t user_data) {
  struct io_uring_sqe *sqe = rx_sqe();
  if (!sqe)
    return;
  io_uring_prep_cancel64(sqe, user_data, 0);
  io_uring_sqe_set_data64(sqe, RX_CANCEL);
}

/* Before its socket closes: a pending receive or send holds the socket
 * open. A completion that comes later finds c no longer open (a slot is
 * reused only in handshake mode, which does not use the ring), and the
 * buffers it may still touch live as long as the process. */
void rx_cancel(struct conn *c) {
  if (c->rx)
    rx_cancel_op((uint64_t)c->id);
  if (c->tx)
    rx_cancel_op(RX_SEND | (uint64_t)c->id);
  io_uring_submit(&rx_ring);
  c->rx = 0;
}

void tx_mark(struct conn *c) {
  if (!c->dirty) {
    c->dirty = 1;
    tx_dirty[tx_ndirty++] = c->id;
  }
}

/* One send of c: the rest of out[!cur] if one is under way (a partial
 * send), else the whole of out[cur], which becomes out[!cur]. */
static void tx_start(struct conn *c) {
  if (c->tx || c->state != C_OPEN)
    return;
  if (!c->wbusy) {
    if (!c->out[c->cur].len)
      return;
    c->wbusy = 1;
    c->cur = !c->cur;
    c->woff = 0;
  }
  struct obuf *b = &c->out[!c->cur];
  struct io_uring_sqe *sqe = rx_sqe();
  if (!sqe) {
    st.conn_errors++;
    error_at(c, "io_uring: cannot queue a send");
    conn_close(c, 1);
    return;
  }
  io_uring_prep_send(sqe, c->fd, b->p + c->woff, b->len - c->woff,
                     MSG_NOSIGNAL | MSG_WAITALL);
  io_uring_sqe_set_data64(sqe, RX_SEND | (uint64_t)c->id);
  c->tx = 1;
}

/* The sends of the marked connections and whatever else is queued (armed
 * receives, cancels): one io_uring_enter. */
void ring_submit(void) {
  for (int i = 0; i < tx_ndirty; i++) {
    struct conn *c = &conns[tx_dirty[i]];
    c->dirty = 0;
    if (c->ring)
      tx_start(c);
  }
  tx_ndirty = 0;
  if (io_uring_sq_ready(&rx_ring))
    io_uring_submit(&rx_ring);
}

/* A send completed: the rest of a partial one, or the next buffer. */
static void tx_done(struct conn *c, int res) {
  if (!c->tx)
    return;
  c->tx = 0;
  if (c->state != C_OPEN)
    return; /* closed meanwhile: ignored */
  if (res < 0) {
    if (res == -EAGAIN || res == -EINTR) {
      tx_mark(c);
      return;
    }
    if (!stopping) {
      st.conn_errors++;
      error_at(c, "send: %s", strerror(-res));
    }
    conn_close(c, 1);
    return;
  }
  struct obuf *b = &c->out[!c->cur];
  c->woff += (size_t)res;
  if (c->woff < b->len) {
    tx_mark(c);
    return;
  }
  b->len = 0;
  c->woff = 0;
  c->wbusy = 0;
  if (c->out[c->cur].len)
    tx_mark(c);
}

static void on_rx(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)status;
  (void)events;
  unsigned n;
  int passes = 0;
  tx_defer = 1;
  do {
    now_ns = uv_hrtime();
    /* A receive whose multishot ended is armed again after the loop, once
     * the buffers are back: armed inside it, a receive finding none ends
     * at once, again and again. */
    static int *rearm;
    int nrearm = 0;
    if (!rearm && !(rearm = malloc((size_t)nconns * sizeof *rearm))) {
      fprintf(stderr, "loadgen: out of memory\n");
      exit(1);
    }
    /* The completions there now, not those that come in meanwhile (they
     * do, from task work run at any system call): a pass that took them
     * too could go on as long as the echoes flow, its sends held back. */
    struct io_uring_cqe *cqe;
    unsigned head = *rx_ring.cq.khead;
    unsigned ready = io_uring_cq_ready(&rx_ring);
    for (n = 0; n < ready; n++) {
      cqe = &rx_ring.cq.cqes[(head + n) & *rx_ring.cq.kring_mask];
      if (cqe->user_data == RX_CANCEL)
        continue;
      if (cqe->user_data & RX_SEND) {
        tx_done(&conns[cqe->user_data & ~RX_SEND], cqe->res);
        continue;
      }
      struct conn *c = &conns[cqe->user_data];
      if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        uint8_t *b = rx_mem + (size_t)bid * rx_bufsz;
        size_t got = cqe->res > 0 ? (size_t)cqe->res : 0;
        if (c->rx && c->state == C_OPEN && got) /* a partial frame is copied */
          input(c, b + (rx_inc ? rx_off[bid] : 0), got);
        if (rx_inc && (cqe->flags & RX_CQE_F_BUF_MORE)) {
          rx_off[bid] += (uint32_t)got; /* the kernel goes on filling it */
        } else {
          if (rx_inc)
            rx_off[bid] = 0;
          io_uring_buf_ring_add(rx_br, b, rx_bufsz, (unsigned short)bid,
                                io_uring_buf_ring_mask(rx_nbuf), 0);
          io_uring_buf_ring_advance(rx_br, 1);
        }
      }
      if (!c->rx || c->state != C_OPEN || (cqe->flags & IORING_CQE_F_MORE))
        continue;
      if (cqe->res > 0 || cqe->res == -ENOBUFS) {
        c->rx = 2; /* armed again below */
        rearm[nrearm++] = c->id;
        continue;
      }
      c->rx = 0;
      if (!stopping) {
        st.closed++;
        st.conn_errors++;
        error_at(c, "read: %s", cqe->res ? strerror(-cqe->res) : "end of file");
      }
      conn_close(c, 1);
    }
    io_uring_cq_advance(&rx_ring, n);
    for (int i = 0; i < nrearm; i++) {
      struct conn *c = &conns[rearm[i]];
      if (c->rx == 2 && c->state == C_OPEN)
        rx_arm(c);
    }
    /* The replies of the pass and the receives armed again: one submit. */
    ring_submit();
    /* Completions the CQ had no room for wait in the kernel until a
     * peek asks for them. */
    if (IO_URING_READ_ONCE(*rx_ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
      (void)io_uring_peek_cqe(&rx_ring, &cqe);
    /* Not forever: under load completions never stop coming, and the
     * timers (the end of the warm-up, of the run) are libuv's. */
  } while (n && ++passes < 4);
  tx_defer = 0;
}
