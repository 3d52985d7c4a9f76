/* http_conn.c - the connections of httpRequest: a keep-alive pool per
 * (host, port) on each loop, connecting, writing a request, reading its
 * response. A connection is owned by its call while it serves one, by the
 * pool while idle (still reading, so a close by the server is seen), and
 * by libuv from uv_close until its close callback frees it. */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "http_client.h"
#include "internal.h"

struct gc_http_conn {
  uv_tcp_t tcp;
  uv_connect_t connect_req;
  uv_write_t write_req;
  struct gc_http_loop *hl;
  struct gc_http_call *call; /* serving, or NULL */
  char *host;                /* the pool's key with 'port' */
  int port;
  int idle;    /* in the pool */
  int closing; /* uv_close issued */
  int used;    /* served a request before: a reused one */
  int got;     /* bytes of the current response arrived */
  int writing; /* write_req in flight */
  int64_t idle_since;
  struct gc_http_conn *prev, *next; /* hl->conns */
};

static void conn_closed(uv_handle_t *h) {
  struct gc_http_conn *k = h->data;
  struct gc_http_loop *hl = k->hl;
  if (k->prev)
    k->prev->next = k->next;
  else
    hl->conns = k->next;
  if (k->next)
    k->next->prev = k->prev;
  gc_free(k->host);
  gc_free(k);
}

static void conn_close(struct gc_http_conn *k) {
  if (k->closing)
    return;
  if (k->idle) {
    k->idle = 0;
    k->hl->idle_count--;
  }
  k->closing = 1;
  k->call = NULL;
  uv_close((uv_handle_t *)&k->tcp, conn_closed);
}

/* ---- the pool ------------------------------------------------------------ */

static void sweep(void *ctx, intptr_t arg) {
  struct gc_http_loop *hl = ctx;
  (void)arg;
  int64_t now = gc_loop_now(hl->loop);
  for (struct gc_http_conn *k = hl->conns, *next; k; k = next) {
    next = k->next;
    if (k->idle && now - k->idle_since >= GC_HTTP_IDLE_MS)
      conn_close(k);
  }
  if (!hl->idle_count && hl->sweep_id) {
    (void)gc_timers_stop(&hl->loop->timers, hl->sweep_id);
    hl->sweep_id = 0;
  }
}

struct gc_http_conn *gc__http_pool_take(struct gc_http_loop *hl,
                                        const struct gc_http_url *u) {
  /* The most recently used first: the least likely to be timed out by
   * the server. */
  struct gc_http_conn *best = NULL;
  for (struct gc_http_conn *k = hl->conns; k; k = k->next)
    if (k->idle && k->port == u->port && strcmp(k->host, u->host) == 0 &&
        (!best || k->idle_since > best->idle_since))
      best = k;
  if (best) {
    best->idle = 0;
    hl->idle_count--;
    uv_read_stop((uv_stream_t *)&best->tcp); /* idle_read no more */
  }
  return best;
}

static void idle_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf);
static void alloc_cb(uv_handle_t *h, size_t hint, uv_buf_t *buf) {
  struct gc_http_conn *k = h->data;
  (void)hint;
  buf->base = k->hl->rbuf;
  buf->len = 65536;
}

/* Back to the pool, or closed when the pool for its host is full. */
static void pool_put(struct gc_http_conn *k) {
  struct gc_http_loop *hl = k->hl;
  size_t same = 0;
  for (struct gc_http_conn *o = hl->conns; o; o = o->next)
    if (o->idle && o->port == k->port && strcmp(o->host, k->host) == 0)
      same++;
  if (hl->stopped || k->writing || same >= GC_HTTP_IDLE_PER_HOST ||
      hl->idle_count >= GC_HTTP_IDLE_MAX ||
      uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, idle_read) != 0) {
    conn_close(k);
    return;
  }
  k->call = NULL;
  k->idle = 1;
  k->used = 1;
  k->idle_since = gc_loop_now(hl->loop);
  hl->idle_count++;
  if (!hl->sweep_id &&
      gc_timers_start(&hl->loop->timers, gc_loop_now(hl->loop), 1000, 1000,
                      sweep, hl, 0, &hl->sweep_id) != 0)
    hl->sweep_id = 0; /* no sweep: the server's own timeout closes them */
}

/* An idle connection hears nothing but its end. */
static void idle_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  (void)buf;
  if (n != 0)
    conn_close(s->data);
}

void gc__http_conn_release(struct gc_http_call *c, int reusable) {
  struct gc_http_conn *k = c->conn;
  if (!k)
    return;
  c->conn = NULL;
  k->call = NULL;
  if (k->closing)
    return;
  uv_read_stop((uv_stream_t *)&k->tcp);
  if (reusable)
    pool_put(k);
  else
    conn_close(k);
}

void gc__http_conns_close_all(struct gc_http_loop *hl) {
  for (struct gc_http_conn *k = hl->conns; k; k = k->next)
    conn_close(k);
  if (hl->sweep_id)
    (void)gc_timers_stop(&hl->loop->timers, hl->sweep_id);
  hl->sweep_id = 0;
}

void gc__http_conns_free(struct gc_http_loop *hl) {
  while (hl->conns) {
    struct gc_http_conn *k = hl->conns;
    hl->conns = k->next;
    gc_free(k->host);
    gc_free(k);
  }
}

/* ---- one request on a connection ---------------------------------------- */

/* The connection failed the call before any byte of the response: a
 * reused one may just have been closed by the server, so an idempotent
 * request tries once more on a fresh one. */
static void conn_failed(struct gc_http_call *c, int err, const char *text) {
  struct gc_http_conn *k = c->conn;
  int retry = k && k->used && !k->got && c->idempotent && !c->retried;
  gc__http_conn_release(c, 0);
  if (retry) {
    c->retried = 1;
    gc_http_resp_init(&c->resp, c->max_body, c->head);
    gc__http_call_connect(c);
    return;
  }
  gc__http_call_finish(c, err, text);
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct gc_http_conn *k = s->data;
  struct gc_http_call *c = k->call;
  if (!c || n == 0)
    return;
  size_t used;
  int rc;
  if (n < 0) {
    if (n != UV_EOF) {
      conn_failed(c, ECONNRESET, "connection reset");
      return;
    }
    if (!k->got) {
      conn_failed(c, EPROTO, "connection closed before the response");
      return;
    }
    rc = gc_http_resp_feed(&c->resp, NULL, 0, &used);
    k->got = 1;
  } else {
    k->got = 1;
    rc = gc_http_resp_feed(&c->resp, buf->base, (size_t)n, &used);
    /* Bytes past the response: the server is not speaking HTTP/1.1 to us. */
    if (!rc && c->resp.complete && used < (size_t)n)
      c->resp.keep_alive = 0;
  }
  if (rc) {
    gc__http_conn_release(c, 0);
    gc__http_call_finish(c, rc, c->resp.err_text ? c->resp.err_text : "bad response");
    return;
  }
  if (c->resp.complete) {
    if (n < 0)
      c->resp.keep_alive = 0;
    gc__http_call_response(c);
  }
}

static void on_write(uv_write_t *w, int status) {
  struct gc_http_conn *k = w->data;
  struct gc_http_call *c = k->call;
  k->writing = 0;
  if (!c || status == 0 || k->closing)
    return;
  conn_failed(c, -status == EPIPE || status == UV_ECONNRESET ? ECONNRESET : -status,
              "cannot send the request");
}

void gc__http_conn_send(struct gc_http_call *c) {
  struct gc_http_conn *k = c->conn;
  k->call = c;
  k->got = 0;
  uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)c->wlen);
  k->write_req.data = k;
  int rc = uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, on_read);
  if (rc == 0)
    rc = uv_write(&k->write_req, (uv_stream_t *)&k->tcp, &b, 1, on_write);
  k->writing = rc == 0;
  if (rc)
    conn_failed(c, -rc, "cannot send the request");
}

static void conn_on_connect(uv_connect_t *req, int status) {
  struct gc_http_conn *k = req->data;
  struct gc_http_call *c = k->call;
  if (!c || k->closing)
    return;
  if (status == 0) {
    (void)uv_tcp_nodelay(&k->tcp, 1);
    gc__http_conn_send(c);
    return;
  }
  gc__http_conn_release(c, 0);
  /* The next address of the name, if any. */
  while (c->next_addr) {
    struct addrinfo *a = c->next_addr;
    c->next_addr = a->ai_next;
    if (gc__http_conn_open(c, a->ai_addr) == 0)
      return;
  }
  gc__http_call_finish(c, -status,
                       status == UV_ECONNREFUSED ? "connection refused"
                       : status == UV_ETIMEDOUT  ? "connect timeout"
                                                 : uv_strerror(status));
}

int gc__http_conn_open(struct gc_http_call *c, const struct sockaddr *addr) {
  struct gc_http_loop *hl = c->hl;
  if (!hl->rbuf && !(hl->rbuf = gc_malloc(65536))) /* with the first socket */
    return ENOMEM;
  struct gc_http_conn *k = gc_calloc(1, sizeof *k);
  if (!k || !(k->host = gc_strdup(c->url.host))) {
    gc_free(k);
    return ENOMEM;
  }
  k->hl = hl;
  k->port = c->url.port;
  k->tcp.data = k;
  int rc = uv_tcp_init(&hl->loop->uv, &k->tcp);
  if (rc) {
    gc_free(k->host);
    gc_free(k);
    return -rc;
  }
  k->next = hl->conns;
  if (hl->conns)
    hl->conns->prev = k;
  hl->conns = k;
  k->call = c;
  c->conn = k;
  k->connect_req.data = k;
  rc = uv_tcp_connect(&k->connect_req, &k->tcp, addr, conn_on_connect);
  if (rc) {
    c->conn = NULL;
    conn_close(k);
    return -rc;
  }
  return 0;
}
