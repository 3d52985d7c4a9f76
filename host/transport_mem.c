/* transport_mem.c - gc.testing's in-memory client: bytes handed to a
 * struct gc_mem_ops (embed.h) instead of a socket. The tcp handle of such
 * a connection is initialised but never opened: it only gives uv_close's
 * deferred callback, so teardown runs exactly as for a real client. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "mailbox.h"
#include "transport.h"

static int mem_read_start(struct gc_conn *c) {
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
  return 0;
}

static void mem_read_stop(struct gc_conn *c) { (void)c; }

/* A peer takes everything, or, paused, nothing: the queue then waits as
 * behind a full kernel buffer, until gc_host_resume. */
static int mem_try_write(struct gc_conn *c, const uv_buf_t *iov, size_t n) {
  if (c->mem->paused && c->mem->paused(c->mem_ud))
    return 0;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    c->mem->on_data(c->mem_ud, (const uint8_t *)iov[i].base, iov[i].len);
    total += iov[i].len;
  }
  return (int)total;
}

/* Only a paused peer gets here: nothing moves until gc_host_resume. */
static int mem_write(struct gc_conn *c, const uv_buf_t *iov, size_t n,
                     size_t total) {
  (void)c, (void)iov, (void)n, (void)total;
  return 0;
}

static void mem_local_addr(struct gc_conn *c, char *ip, size_t iplen, int *port) {
  (void)c, (void)port;
  snprintf(ip, iplen, "127.0.0.1");
}

static void mem_closed(struct gc_conn *c) {
  if (c->mem && c->mem->on_close)
    c->mem->on_close(c->mem_ud);
}

static int mem_hand_over(struct gc_conn *c, struct gc_adopt *a) {
  a->mem = c->mem;
  a->mem_ud = c->mem_ud;
  c->mem = NULL; /* the peer is the new connection's: this one ends unheard */
  return 0;
}

static int mem_adopt(struct gc_conn *c, struct gc_adopt *a) {
  c->mem = a->mem;
  c->mem_ud = a->mem_ud;
  c->reading = 1;
  if (c->mem->on_moved)
    c->mem->on_moved(c->mem_ud, c);
  return 0;
}

const struct gc_transport gc_transport_mem = {
    .name = "memory",
    .read_start = mem_read_start,
    .read_stop = mem_read_stop,
    .try_write = mem_try_write,
    .write = mem_write,
    .local_addr = mem_local_addr,
    .closed = mem_closed,
    .hand_over = mem_hand_over,
    .adopt = mem_adopt,
    .drain_inline = 1,
};

/* ---- what gc.testing drives (embed.c) ------------------------------------ */

struct gc_conn *gc__conn_accept_mem(struct gc_listener *l, const char *rip,
                                    int rport, const struct gc_mem_ops *ops,
                                    void *ud) {
  struct gc_conn *c = gc__conn_new(l);
  if (!c)
    return NULL;
  c->tp = &gc_transport_mem;
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

void gc__conn_mem_resume(struct gc_conn *c) {
  /* A paused peer left the queue "in flight": what a socket's write
   * callback does, with no byte written. */
  if (c->state != GC_CONN_DEAD && c->write_in_flight)
    gc__conn_write_done(c, 0, 0);
}
