/* http_conn.c - the connections of httpRequest: a keep-alive pool per
 * (scheme, host, port) on each loop, connecting (and the TLS handshake of
 * https, http_tls.c), writing a request, reading its response. A
 * connection is owned by its call while it serves one, by the pool while
 * idle (still reading, so a close by the server is seen), and by libuv
 * from uv_close until its close callback frees it. */
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
  char *host;                /* the pool's key with 'port' and 'https' */
  int port;
  int https;
  struct gc_http_tls *tls;   /* https: the session (owned), else NULL */
  char *fly;                 /* https: the ciphertext being written (owned) */
  int handshaking;           /* https: the request waits for the handshake */
  int idle;    /* in the pool */
  int closing; /* uv_close issued */
  int used;    /* served a request before: a reused one */
  int got;     /* bytes of the current response arrived */
  int writing; /* write_req in flight */
  int64_t idle_since;
  struct gc_http_conn *prev, *next; /* hl->conns */
};

static void conn_free(struct gc_http_conn *k) {
  gc__http_tls_free(k->tls);
  gc_free(k->fly);
  gc_free(k->host);
  gc_free(k);
}

static void conn_closed(uv_handle_t *h) {
  struct gc_http_conn *k = h->data;
  struct gc_http_loop *hl = k->hl;
  if (k->prev)
    k->prev->next = k->next;
  else
    hl->conns = k->next;
  if (k->next)
    k->next->prev = k->prev;
  conn_free(k);
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
    if (k->idle && k->port == u->port && k->https == u->https &&
        strcmp(k->host, u->host) == 0 && (!best || k->idle_since > best->idle_since))
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
    if (o->idle && o->port == k->port && o->https == k->https &&
        strcmp(o->host, k->host) == 0)
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

/* An idle connection hears nothing but its end (over TLS, records that
 * carry no data, such as TLS 1.3's session tickets, are let through). */
static void idle_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct gc_http_conn *k = s->data;
  if (n == 0)
    return;
  if (n > 0 && k->tls && gc__http_tls_in(k->tls, buf->base, (size_t)n) == 0) {
    char err[8];
    size_t got;
    if (gc__http_tls_recv(k->tls, k->hl->rbuf, 65536, &got, err, sizeof err) ==
            EAGAIN &&
        !k->writing && !gc__http_tls_out_len(k->tls))
      return;
  }
  conn_close(k);
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
    conn_free(k);
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

/* Response bytes for the call (n < 0: the connection's end; 'more': more
 * input follows). 1 when the call is done with this input: failed, or its
 * response handed on (the connection may serve another call already). */
static int conn_input(struct gc_http_conn *k, struct gc_http_call *c,
                      const char *data, ssize_t n, int more) {
  size_t used;
  int rc;
  if (n < 0) {
    if (n != UV_EOF) {
      conn_failed(c, ECONNRESET, "connection reset");
      return 1;
    }
    if (!k->got) {
      conn_failed(c, EPROTO, "connection closed before the response");
      return 1;
    }
    rc = gc_http_resp_feed(&c->resp, NULL, 0, &used);
    k->got = 1;
  } else {
    k->got = 1;
    rc = gc_http_resp_feed(&c->resp, data, (size_t)n, &used);
    /* Bytes past the response: the server is not speaking HTTP/1.1 to us. */
    if (!rc && c->resp.complete && (used < (size_t)n || more))
      c->resp.keep_alive = 0;
  }
  if (rc) {
    gc__http_conn_release(c, 0);
    gc__http_call_finish(c, rc, c->resp.err_text ? c->resp.err_text : "bad response");
    return 1;
  }
  if (c->resp.complete) {
    if (n < 0)
      c->resp.keep_alive = 0;
    gc__http_call_response(c);
    return 1;
  }
  return 0;
}

static int tls_flush(struct gc_http_conn *k);
static int tls_request(struct gc_http_conn *k, struct gc_http_call *c);

/* https: ciphertext in; the handshake, then the response's plaintext. */
static void tls_read(struct gc_http_conn *k, struct gc_http_call *c, ssize_t n,
                     const uv_buf_t *buf) {
  char err[160];
  int rc;
  if (n < 0) {
    if (k->handshaking)
      conn_failed(c, n == UV_EOF ? EPROTO : ECONNRESET,
                  n == UV_EOF ? "tls handshake failed: connection closed"
                              : "connection reset");
    else
      (void)conn_input(k, c, NULL, n, 0);
    return;
  }
  if ((rc = gc__http_tls_in(k->tls, buf->base, (size_t)n)) != 0) {
    conn_failed(c, rc, "out of memory");
    return;
  }
  if (k->handshaking) {
    rc = gc__http_tls_handshake(k->tls, err, sizeof err);
    int frc = rc == EPROTO ? 0 : tls_flush(k); /* no alert: we close */
    if (rc == EPROTO || frc) {
      conn_failed(c, rc == EPROTO ? EPROTO : frc,
                  rc == EPROTO ? err : "cannot send the request");
      return;
    }
    if (rc == EAGAIN)
      return;
    k->handshaking = 0;
    if (tls_request(k, c) != 0)
      return;
  }
  for (;;) {
    size_t got;
    /* The ciphertext is in the BIO now: rbuf holds the plaintext. */
    rc = gc__http_tls_recv(k->tls, k->hl->rbuf, 65536, &got, err, sizeof err);
    if (rc == EAGAIN) {
      if ((rc = tls_flush(k)) != 0) /* a key update's answer, say */
        conn_failed(c, rc, "cannot send the request");
      return;
    }
    if (rc == EPIPE) {
      (void)conn_input(k, c, NULL, UV_EOF, 0);
      return;
    }
    if (rc) {
      conn_failed(c, EPROTO, err);
      return;
    }
    if (conn_input(k, c, k->hl->rbuf, (ssize_t)got, gc__http_tls_more(k->tls)))
      return;
  }
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf) {
  struct gc_http_conn *k = s->data;
  struct gc_http_call *c = k->call;
  if (!c || n == 0)
    return;
  if (k->tls)
    tls_read(k, c, n, buf);
  else
    (void)conn_input(k, c, buf->base, n, 0);
}

static void on_write(uv_write_t *w, int status) {
  struct gc_http_conn *k = w->data;
  struct gc_http_call *c = k->call;
  k->writing = 0;
  gc_free(k->fly);
  k->fly = NULL;
  if (k->closing)
    return;
  /* https: what OpenSSL wrote meanwhile goes next. */
  if (status == 0 && k->tls)
    status = -tls_flush(k);
  if (!c || status == 0)
    return;
  conn_failed(c, -status == EPIPE || status == UV_ECONNRESET ? ECONNRESET : -status,
              "cannot send the request");
}

/* https: OpenSSL's output to the socket, one write at a time (the rest
 * waits in its BIO for on_write): 0 or an errno. */
static int tls_flush(struct gc_http_conn *k) {
  size_t n = gc__http_tls_out_len(k->tls);
  if (!n || k->writing)
    return 0;
  if (!(k->fly = gc_malloc(n)))
    return ENOMEM;
  gc__http_tls_out_take(k->tls, k->fly, n);
  uv_buf_t b = uv_buf_init(k->fly, (unsigned)n);
  k->write_req.data = k;
  int rc = uv_write(&k->write_req, (uv_stream_t *)&k->tcp, &b, 1, on_write);
  if (rc) {
    gc_free(k->fly);
    k->fly = NULL;
    return -rc;
  }
  k->writing = 1;
  return 0;
}

/* https: the request, encrypted and sent. 0, or the call failed. */
static int tls_request(struct gc_http_conn *k, struct gc_http_call *c) {
  int rc = gc__http_tls_send(k->tls, c->wbuf, c->wlen);
  if (!rc)
    rc = tls_flush(k);
  if (rc)
    conn_failed(c, rc, rc == ENOMEM ? "out of memory" : "cannot send the request");
  return rc;
}

void gc__http_conn_send(struct gc_http_call *c) {
  struct gc_http_conn *k = c->conn;
  k->call = c;
  k->got = 0;
  k->write_req.data = k;
  int rc = uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, on_read);
  if (rc == 0 && k->tls) {
    (void)tls_request(k, c); /* failed: the call is told */
    return;
  }
  if (rc == 0) {
    uv_buf_t b = uv_buf_init(c->wbuf, (unsigned)c->wlen);
    rc = uv_write(&k->write_req, (uv_stream_t *)&k->tcp, &b, 1, on_write);
  }
  k->writing = rc == 0;
  if (rc)
    conn_failed(c, -rc, "cannot send the request");
}

/* https: the session, then the handshake's first flight. */
static void tls_begin(struct gc_http_conn *k, struct gc_http_call *c) {
  char err[200];
  int rc = gc__http_tls_new(k->hl->loop->server, c->url.host, &k->tls, err,
                            sizeof err);
  if (rc) {
    conn_failed(c, rc, err);
    return;
  }
  k->handshaking = 1;
  k->call = c;
  k->got = 0;
  rc = uv_read_start((uv_stream_t *)&k->tcp, alloc_cb, on_read);
  if (rc) {
    conn_failed(c, -rc, uv_strerror(rc));
    return;
  }
  rc = gc__http_tls_handshake(k->tls, err, sizeof err);
  if (rc == EPROTO) {
    conn_failed(c, rc, err);
    return;
  }
  if ((rc = tls_flush(k)) != 0)
    conn_failed(c, rc, "cannot send the request");
}

static void conn_on_connect(uv_connect_t *req, int status) {
  struct gc_http_conn *k = req->data;
  struct gc_http_call *c = k->call;
  if (!c || k->closing)
    return;
  if (status == 0) {
    (void)uv_tcp_nodelay(&k->tcp, 1);
    if (k->https)
      tls_begin(k, c);
    else
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
  k->https = c->url.https;
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
