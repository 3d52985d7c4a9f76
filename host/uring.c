/* uring.c - the loop's batched send (uring.h).
 *
 * Why: a system call costs about a microsecond on the machines we measure
 * on (bench/NOTES.md), as much as the kernel's work for a small send, and
 * a room broadcast or an echo turn makes one per connection. liburing
 * (Debian's liburing-dev) sets the ring up; the sends are plain
 * IORING_OP_SEND with MSG_DONTWAIT, which the kernel issues inline during
 * the submission and completes with -EAGAIN rather than waiting. */
#include <assert.h>
#include <errno.h>
#include <liburing.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "uring.h"

#define GC_URING_SLOTS 1024u
#define GC_URING_ARENA (256u * 1024u)

struct gc_uring {
  struct io_uring ring;
  unsigned count;  /* sends prepared in this batch */
  size_t used;     /* arena bytes reserved in this batch */
  int broken;      /* the kernel refused a submission: never again */
  int handing;     /* gc__uring_run hands out results: no new batch */
  struct gc_conn *conn[GC_URING_SLOTS];
  int res[GC_URING_SLOTS];
  uint8_t done[GC_URING_SLOTS];
  uint8_t arena[GC_URING_ARENA];
};

struct gc_uring *gc__uring_get(struct gc_loop *loop) {
  if (loop->uring || loop->uring_off)
    return loop->uring && !loop->uring->broken ? loop->uring : NULL;
  loop->uring_off = 1; /* until it is made */
  if (!loop->server->cfg->io_uring)
    return NULL;
  struct gc_uring *u = gc_malloc(sizeof *u);
  if (!u) {
    gc_log(GCL_WARN, "worker %d: no memory for io_uring, sending with write()",
           loop->id);
    return NULL;
  }
  memset(u, 0, offsetof(struct gc_uring, arena));
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  /* SUBMIT_ALL: a send that fails to start does not hold back the rest. */
  p.flags = IORING_SETUP_SUBMIT_ALL;
  int rc = io_uring_queue_init_params(GC_URING_SLOTS, &u->ring, &p);
  if (rc == -EINVAL) {
    memset(&p, 0, sizeof p);
    rc = io_uring_queue_init_params(GC_URING_SLOTS, &u->ring, &p);
  }
  if (rc < 0) {
    /* Docker's default seccomp profile, for one, refuses it. Said once:
     * every worker meets the same kernel. */
    static atomic_flag said = ATOMIC_FLAG_INIT;
    if (!atomic_flag_test_and_set(&said))
      gc_log(GCL_NOTICE, "io_uring unavailable (%s): output is sent with a "
             "write() per connection", strerror(-rc));
    gc_free(u);
    return NULL;
  }
  loop->uring = u;
  loop->uring_off = 0;
  return u;
}

void gc__uring_free(struct gc_loop *loop) {
  struct gc_uring *u = loop->uring;
  if (!u)
    return;
  assert(u->count == 0);
  io_uring_queue_exit(&u->ring);
  gc_free(u);
  loop->uring = NULL;
}

int gc__uring_has_room(const struct gc_uring *u) {
  return !u->handing && u->count < GC_URING_SLOTS;
}

int gc__uring_full(const struct gc_uring *u) {
  return u->count == GC_URING_SLOTS || u->used > GC_URING_ARENA - GC_URING_GATHER_MAX;
}

uint8_t *gc__uring_reserve(struct gc_uring *u, size_t len) {
  if (u->handing || u->count >= GC_URING_SLOTS || len > GC_URING_ARENA - u->used)
    return NULL;
  uint8_t *p = u->arena + u->used;
  u->used += (len + 15) & ~(size_t)15;
  if (u->used > GC_URING_ARENA)
    u->used = GC_URING_ARENA;
  return p;
}

/* The next slot of the batch, for c's send: its SQE, and in '*slot' the
 * index the caller sets as user_data once the SQE is prepared (a prep
 * helper may clear it). */
static struct io_uring_sqe *take_slot(struct gc_uring *u, struct gc_conn *c,
                                      unsigned *slot) {
  assert(u->count < GC_URING_SLOTS);
  /* The SQ has GC_URING_SLOTS entries and each batch is submitted before
   * it holds more. */
  struct io_uring_sqe *sqe = io_uring_get_sqe(&u->ring);
  assert(sqe);
  unsigned i = u->count++;
  gc_counters_inc(&c->loop->sends[1], 1);
  u->conn[i] = c;
  u->res[i] = 0;
  u->done[i] = 0;
  *slot = i;
  return sqe;
}

void gc__uring_send(struct gc_uring *u, struct gc_conn *c, int fd,
                    const void *data, size_t len) {
  unsigned i;
  struct io_uring_sqe *sqe = take_slot(u, c, &i);
  io_uring_prep_send(sqe, fd, data, len, MSG_DONTWAIT | MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, i);
}

int gc__uring_sendv(struct gc_uring *u, struct gc_conn *c, int fd,
                    const uv_buf_t *iov, size_t n) {
  /* The message header and its vector live in the arena until the batch
   * has run: the kernel reads them when it issues the send. */
  struct msghdr *mh = (struct msghdr *)(void *)gc__uring_reserve(
      u, sizeof *mh + n * sizeof(struct iovec));
  if (!mh)
    return ENOSPC;
  struct iovec *v = (struct iovec *)(mh + 1);
  for (size_t i = 0; i < n; i++) {
    v[i].iov_base = iov[i].base;
    v[i].iov_len = iov[i].len;
  }
  memset(mh, 0, sizeof *mh);
  mh->msg_iov = v;
  mh->msg_iovlen = n;
  unsigned i;
  struct io_uring_sqe *sqe = take_slot(u, c, &i);
  io_uring_prep_sendmsg(sqe, fd, mh, MSG_DONTWAIT | MSG_NOSIGNAL);
  io_uring_sqe_set_data64(sqe, i);
  return 0;
}

/* Takes the completions there are; returns how many. */
static unsigned reap(struct gc_uring *u) {
  struct io_uring_cqe *cqe;
  unsigned head, n = 0;
  io_uring_for_each_cqe(&u->ring, head, cqe) {
    uint64_t i = io_uring_cqe_get_data64(cqe);
    assert(i < u->count && !u->done[i]);
    u->res[i] = cqe->res;
    u->done[i] = 1;
    n++;
  }
  io_uring_cq_advance(&u->ring, n);
  return n;
}

void gc__uring_run(struct gc_loop *loop) {
  struct gc_uring *u = loop->uring;
  if (!u || !u->count || u->handing)
    return;
  unsigned want = u->count, got = 0;
  int rc = io_uring_submit(&u->ring);
  /* Inline sends are complete when the submission returns; anything the
   * kernel handed to a worker is waited for, so that no buffer of the
   * batch outlives this call. */
  for (int tries = 0; rc >= 0 || rc == -EINTR || rc == -EAGAIN || rc == -EBUSY;
       tries++) {
    got += reap(u);
    if (got >= want)
      break;
    if (tries > 1000) {
      rc = -ETIMEDOUT;
      break;
    }
    rc = io_uring_submit_and_wait(&u->ring, 1);
  }
  if (got < want) {
    /* The kernel refused the ring (it never happens with the sizes used
     * here): the sends not done stay unsubmitted for ever, as the ring is
     * not entered again, and their connections end. */
    gc_log(GCL_ERR, "worker %d: io_uring_enter failed (%s); closing %u "
           "connections of the batch, sending with write() from now on",
           loop->id, strerror(rc < 0 ? -rc : EIO), want - got);
    u->broken = 1;
    for (unsigned i = 0; i < want; i++)
      if (!u->done[i]) {
        u->res[i] = -EIO;
        u->done[i] = 1;
      }
  }
  /* A handler run by a result may flush again (a nested batch would
   * overwrite this one's slots): its connections go the usual way. */
  u->handing = 1;
  for (unsigned i = 0; i < want; i++) {
    int r = u->res[i];
    /* libuv's errors are negative errnos on Linux. */
    gc__conn_sent(u->conn[i], r == -EAGAIN ? 0 : r);
  }
  u->handing = 0;
  u->count = 0;
  u->used = 0;
}
