/* link_mem.c - a link inside gc.testing's host: it connects in memory to
 * the host's own virtual listener of that port, as gc.testing's clients
 * do (transport_mem.c), so a lobby app and a game app of one T.host talk
 * in virtual time through the same upgrade, frames and close code as over
 * TCP. The server side calls back from inside its loop, where nothing may
 * call into the host, so every step here (connecting, delivering a write,
 * reading, the peer's end) runs from the link's idle handle, a loop turn
 * later, as a socket's events would. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "link.h"

static void mem_step(uv_idle_t *h);

static void kick(struct gc_link *l) {
  if (!uv_is_closing(&l->io.handle))
    (void)uv_idle_start(&l->io.idle, mem_step);
}

static void peer_data(void *ud, const uint8_t *data, size_t len) {
  struct gc_link *l = ud;
  uint8_t *nb = gc_realloc(l->mem_in, l->mem_in_len + len);
  if (!nb) {
    l->mem_eof = 1; /* out of memory: as if the socket broke */
  } else {
    memcpy(nb + l->mem_in_len, data, len);
    l->mem_in = nb;
    l->mem_in_len += len;
  }
  kick(l);
}

static void peer_close(void *ud) {
  struct gc_link *l = ud;
  l->peer = NULL;
  l->peer_gone = 1;
  l->mem_eof = 1;
  kick(l);
}

static void peer_moved(void *ud, struct gc_conn *c) {
  struct gc_link *l = ud;
  l->peer = c;
}

static const struct gc_mem_ops link_peer_ops = {peer_data, peer_close, NULL,
                                                peer_moved};

/* What the peer's connection hears once this link is gone. */
static void orphan_data(void *ud, const uint8_t *d, size_t n) { (void)ud, (void)d, (void)n; }
static void orphan_close(void *ud) { (void)ud; }
static void orphan_moved(void *ud, struct gc_conn *c) { (void)ud, (void)c; }
static const struct gc_mem_ops orphan_ops = {orphan_data, orphan_close, NULL,
                                             orphan_moved};

static void with_loop(struct gc_loop *loop, void (*fn)(struct gc_conn *, const uint8_t *, size_t),
                      struct gc_conn *c, const uint8_t *d, size_t n) {
  struct gc_loop *was = gc__loop_current;
  gc__loop_current = loop;
  fn(c, d, n);
  gc__loop_current = was;
}

static void do_connect(struct gc_link *l) {
  struct gc_server *s = l->loop->server;
  struct gc_loop *first = s->loops[0];
  struct gc_listener *lis = NULL;
  for (size_t i = 0; !s->links_refused && i < first->listener_count; i++)
    if (first->listeners[i]->port == l->port ||
        first->listeners[i]->conf_port == l->port)
      lis = first->listeners[i];
  if (!lis || first->stopping) {
    gc__link_fail(l, "connection refused");
    return;
  }
  static int rport = 40000;
  rport = rport >= 65000 ? 40000 : rport + 1;
  struct gc_loop *was = gc__loop_current;
  gc__loop_current = first;
  l->peer = gc__conn_accept_mem(lis, "127.0.0.1", rport, &link_peer_ops, l);
  gc__loop_current = was;
  if (!l->peer) {
    gc__link_fail(l, "connection refused");
    return;
  }
  l->state = GC_LINK_CONNECTING;
  gc__link_connected(l);
}

static void mem_step(uv_idle_t *h) {
  struct gc_link *l = h->data;
  (void)uv_idle_stop(h);
  if (l->state == GC_LINK_RESOLVING && !l->torn) {
    do_connect(l);
    return;
  }
  if (l->mem_iov) {
    const uv_buf_t *iov = l->mem_iov;
    size_t n = l->mem_iov_n;
    l->mem_iov = NULL;
    for (size_t i = 0; i < n && l->peer; i++)
      with_loop(l->peer->loop, gc__conn_mem_input, l->peer,
                (const uint8_t *)iov[i].base, iov[i].len);
    gc__link_write_done(l, l->peer_gone ? UV_EPIPE : 0);
    if (l->torn)
      return;
  }
  if (l->mem_in_len) {
    uint8_t *p = l->mem_in;
    size_t n = l->mem_in_len;
    l->mem_in = NULL;
    l->mem_in_len = 0;
    gc__link_input(l, p, n);
    gc_free(p);
    if (l->torn)
      return;
  }
  if (l->mem_eof && !l->torn)
    gc__link_eof(l);
}

static int mem_connect(struct gc_link *l) {
  int rc = uv_idle_init(&l->loop->uv, &l->io.idle);
  if (rc < 0)
    return -rc;
  l->io.handle.data = l;
  l->io_ready = 1;
  kick(l);
  return 0;
}

static int mem_write(struct gc_link *l, const uv_buf_t *iov, size_t n) {
  l->mem_iov = iov;
  l->mem_iov_n = n;
  kick(l);
  return 0;
}

static void on_close(uv_handle_t *h) {
  struct gc_link *l = h->data;
  if (l->peer) { /* the server side hears the end, not us any more */
    struct gc_conn *c = l->peer;
    l->peer = NULL;
    c->mem = &orphan_ops;
    c->mem_ud = NULL;
    struct gc_loop *was = gc__loop_current;
    gc__loop_current = c->loop;
    gc__conn_mem_eof(c);
    gc__loop_current = was;
  }
  gc__link_closed(l);
}

static void mem_close(struct gc_link *l) {
  if (!uv_is_closing(&l->io.handle))
    uv_close(&l->io.handle, on_close);
}

const struct gc_link_transport gc_link_mem = {"memory", mem_connect, mem_write,
                                              mem_close, NULL, NULL};
