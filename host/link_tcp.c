/* link_tcp.c - a link over TCP: uv_getaddrinfo (libuv's thread pool, so
 * the loop never blocks on a name), uv_tcp_connect to the first address,
 * reads into the loop's shared buffer, uv_write for the queue. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "internal.h"
#include "link.h"

static struct gc_link *of(uv_handle_t *h) { return h->data; }

static void on_close(uv_handle_t *h) { gc__link_closed(of(h)); }

void gc__link_tcp_close(struct gc_link *l) {
  if (!uv_is_closing(&l->io.handle))
    uv_close(&l->io.handle, on_close);
}

static void on_alloc(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct gc_link *l = of(h);
  (void)hint;
  *buf = uv_buf_init(l->loop->rbuf, 65536);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct gc_link *l = of((uv_handle_t *)s);
  if (l->tp->read) {
    if (n != 0)
      l->tp->read(l, n, (const uint8_t *)buf->base);
    return;
  }
  if (n > 0)
    gc__link_input(l, (const uint8_t *)buf->base, (size_t)n);
  else if (n == UV_EOF)
    gc__link_eof(l);
  else if (n < 0) {
    char why[96];
    snprintf(why, sizeof why, "read failed: %s", uv_strerror((int)n));
    gc__link_fail(l, why);
  }
}

static void on_tcp_connect(uv_connect_t *req, int status) {
  struct gc_link *l = req->data;
  if (l->torn)
    return;
  if (status < 0) {
    char why[96];
    snprintf(why, sizeof why, "%s",
             status == UV_ECONNREFUSED ? "connection refused" : uv_strerror(status));
    gc__link_fail(l, why);
    return;
  }
  (void)uv_tcp_nodelay(&l->io.tcp, 1);
  int rc = uv_read_start((uv_stream_t *)&l->io.tcp, on_alloc, on_read);
  if (rc < 0) {
    gc__link_fail(l, uv_strerror(rc));
    return;
  }
  if (l->tp->opened)
    l->tp->opened(l);
  else
    gc__link_connected(l);
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct gc_link *l = req->data;
  l->resolving = 0;
  if (l->torn) { /* ended while resolving: the close was left to us */
    uv_freeaddrinfo(res);
    gc__link_tcp_close(l);
    return;
  }
  if (status < 0 || !res) {
    char why[128];
    snprintf(why, sizeof why, "cannot resolve %s: %s", l->host,
             status < 0 ? uv_strerror(status) : "no address");
    uv_freeaddrinfo(res);
    gc__link_fail(l, why);
    return;
  }
  l->state = GC_LINK_CONNECTING;
  l->creq.data = l;
  int rc = uv_tcp_connect(&l->creq, &l->io.tcp, res->ai_addr, on_tcp_connect);
  uv_freeaddrinfo(res);
  if (rc < 0)
    gc__link_fail(l, rc == UV_ECONNREFUSED ? "connection refused" : uv_strerror(rc));
}

int gc__link_tcp_connect(struct gc_link *l) {
  int rc = uv_tcp_init(&l->loop->uv, &l->io.tcp);
  if (rc < 0)
    return -rc;
  l->io.handle.data = l;
  l->io_ready = 1;
  char port[8];
  snprintf(port, sizeof port, "%d", l->port);
  struct addrinfo hints;
  memset(&hints, 0, sizeof hints);
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_ADDRCONFIG;
  l->gai.data = l;
  rc = uv_getaddrinfo(&l->loop->uv, &l->gai, on_resolved, l->host, port, &hints);
  if (rc < 0)
    return -rc;
  l->resolving = 1;
  return 0;
}

static void on_write(uv_write_t *w, int status) {
  gc__link_write_done(w->data, status);
}

static int tcp_write(struct gc_link *l, const uv_buf_t *iov, size_t n) {
  l->wreq.data = l;
  return uv_write(&l->wreq, (uv_stream_t *)&l->io.tcp, iov, (unsigned)n, on_write);
}

const struct gc_link_transport gc_link_tcp = {"tcp", gc__link_tcp_connect, tcp_write,
                                              gc__link_tcp_close, NULL, NULL};
