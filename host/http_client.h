/* http_client.h - httpRequest/httpCancel (server.h, API 1.4): an
 * asynchronous HTTP/1.1 client on each worker loop.
 *
 * http_client.c: the per-loop state, a request's life (start, cancel,
 *   redirects, the whole-request timeout), the shutdown.
 * http_deliver.c: the callbacks, on a later turn; gc.testing's stand-in
 *   for the network (gc_http_mock_set).
 * http_conn.c: the keep-alive pool, connecting, writing, reading.
 * http_tls.c: https: the server's client SSL_CTX, a TLS session per
 *   connection (memory BIOs; http_conn.c moves the ciphertext).
 * http_parse.c: the response (http-parser) and the merged headers.
 * http_url.c: URLs (parsing, resolving a Location) and the request bytes.
 *
 * A loop's state is touched by its own thread only; another thread's
 * httpCancel travels as a mail. */
#ifndef GC_HTTP_CLIENT_H
#define GC_HTTP_CLIENT_H

#include <game-carrier/server.h>
#include <http_parser.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "handle_table.h"

#define GC_HTTP_TIMEOUT_MS 5000
#define GC_HTTP_MAX_BODY ((size_t)16 << 20)
#define GC_HTTP_MAX_HEADERS_BYTES 65536 /* status line and headers */
#define GC_HTTP_IDLE_PER_HOST 8
#define GC_HTTP_IDLE_MAX 64 /* per loop */
#define GC_HTTP_IDLE_MS 30000

struct gc_loop;
struct gc_http_conn;
struct gc_http_loop;

/* ---- http_url.c ---------------------------------------------------------- */

struct gc_http_url {
  char *host;     /* without brackets; lower-cased; owned */
  int port;
  char *target;   /* "/path?query", owned */
  int ip;         /* an IP literal: no name resolution */
  int https;      /* "https://": TLS (default port 443) */
};

/* 0, EINVAL (not an http(s) URL we can use), ENOMEM. */
int gc_http_url_parse(const char *url, size_t len, struct gc_http_url *u);
void gc_http_url_free(struct gc_http_url *u);
/* 'loc' (a Location) against 'base': the same codes. */
int gc_http_url_resolve(const struct gc_http_url *base, const char *loc,
                        struct gc_http_url *out);
/* The user's headers checked and serialised ("Name: value\r\n"...), to be
 * sent as they are; '*has_host' tells whether one was a Host. 0, EINVAL
 * or ENOMEM; '*out' owned. */
int gc_http_headers_serialise(const struct gc_http_header *h, size_t n,
                              char **out, size_t *len, int *has_host);
/* 0 when 'm' is a method token. */
int gc_http_method_check(const char *m);
/* The request bytes in '*out' (owned): 0 or ENOMEM. */
int gc_http_request_build(const char *method, const struct gc_http_url *u,
                          const char *hdrs, size_t hdrs_len, int has_host,
                          const void *body, size_t body_len, char **out,
                          size_t *len);

/* ---- http_parse.c -------------------------------------------------------- */

struct gc_http_resp {
  http_parser parser;
  size_t max_body;
  int head;         /* a HEAD request: no body follows */
  int complete;     /* on_message_complete seen */
  int keep_alive;   /* the connection may serve another request */
  int err;          /* EMSGSIZE or EPROTO, set by a callback */
  const char *err_text;
  size_t seen;      /* bytes fed */
  /* Headers as received: names and values in 'buf' (offsets). */
  char *buf;
  size_t buf_len, buf_cap;
  struct { size_t name, name_len, value, value_len; } *raw;
  size_t raw_count, raw_cap;
  int in_value;
  char *body;
  size_t body_len, body_cap;
  /* The merged headers handed to the callback (pointers into 'merged'). */
  struct gc_http_header *headers;
  size_t header_count;
  char *merged;
};

void gc_http_resp_init(struct gc_http_resp *r, size_t max_body, int head);
void gc_http_resp_free(struct gc_http_resp *r);
/* Feeds bytes (len 0: the peer's EOF). 0, or an error with r->err_text;
 * '*used' the bytes taken (parsing stops at the end of the message). */
int gc_http_resp_feed(struct gc_http_resp *r, const char *data, size_t len,
                      size_t *used);
/* The merged, lower-cased headers (r->headers) once complete: 0 or ENOMEM. */
int gc_http_resp_finish(struct gc_http_resp *r);
/* A header's value in the raw list (first occurrence), or NULL; names are
 * lower-cased there already. NUL-terminated copy in 'out' (size bytes). */
const char *gc_http_resp_header(const struct gc_http_resp *r, const char *name,
                                char *out, size_t size);

/* ---- http_client.c: the requests of one loop ------------------------------ */

struct gc_http_call {
  struct gc_http_loop *hl;
  intptr_t id;
  GCHttpCallback cb;
  intptr_t user;
  int app_id;
  char *method;
  char *url_text; /* as given (gc.testing's mock sees it) */
  int timeout_ms;
  int idempotent, head;
  struct gc_http_url url;
  char *hdrs; /* serialised user headers */
  size_t hdrs_len;
  int has_host;
  char *body;
  size_t body_len;
  size_t max_body;
  int redirects_left;
  char *wbuf; /* the request bytes for 'url' */
  size_t wlen;
  intptr_t timer_id;
  struct gc_http_resolve *resolve; /* a name being resolved, or NULL */
  struct addrinfo *addrs, *next_addr; /* resolved, tried in turn */
  struct gc_http_conn *conn;       /* the connection serving it, or NULL */
  int retried;
  struct gc_http_resp resp;
  int resp_ready;
  /* gc.testing: the answer is asked of the mock at delivery. */
  int mock;
  /* Done: waiting on hl->done for its delivery. */
  int done;
  int err;
  char err_text[96];
  struct gc_http_call *prev, *next; /* hl->live or hl->done */
};

struct gc_http_loop {
  struct gc_loop *loop;
  struct gc_handle_table ids;
  struct gc_http_call *live; /* in progress */
  struct gc_http_call *done, *done_tail; /* to deliver, in order */
  uv_idle_t kick; /* delivers 'done' on the next turn */
  int kick_ready;
  int stopped;    /* the loop ended: no new request */
  struct gc_http_conn *conns; /* every connection not yet freed */
  size_t idle_count;
  intptr_t sweep_id; /* the idle sweep while idle connections exist */
  char *rbuf; /* 64 KiB read buffer of every connection, made with the first */
};

/* The call failed or ended: it goes on the delivery list (its connection
 * and resolver are let go first). */
void gc__http_call_finish(struct gc_http_call *c, int err, const char *text);
void gc__http_call_free(struct gc_http_call *c);
/* http_deliver.c: runs the callbacks of the calls done so far (those they
 * start or end wait for the next turn); whether the mock answers. */
void gc__http_deliver_all(struct gc_http_loop *hl);
int gc__http_mock_on(void);
/* The response is complete on 'c->conn' (http_conn.c): follows a redirect
 * or finishes. */
void gc__http_call_response(struct gc_http_call *c);
/* Starts (again) on a connection: pooled, or a new one. */
void gc__http_call_connect(struct gc_http_call *c);

/* ---- http_conn.c --------------------------------------------------------- */

/* An idle pooled connection to the call's host, or NULL. */
struct gc_http_conn *gc__http_pool_take(struct gc_http_loop *hl,
                                        const struct gc_http_url *u);
/* Connects a new connection to 'addr' for 'c': 0 or an errno (nothing
 * left behind). */
int gc__http_conn_open(struct gc_http_call *c, const struct sockaddr *addr);
/* Sends c->wbuf on c->conn (pooled: reused) and reads the response. */
void gc__http_conn_send(struct gc_http_call *c);
/* The call lets its connection go: back to the pool when 'reusable', else
 * closed. */
void gc__http_conn_release(struct gc_http_call *c, int reusable);
/* Closes every connection (the loop's end). */
void gc__http_conns_close_all(struct gc_http_loop *hl);
/* Frees what uv_walk closed without our callback (gc_loop_close). */
void gc__http_conns_free(struct gc_http_loop *hl);

/* ---- http_tls.c: https ------------------------------------------------- */

struct gc_http_tls;
struct gc_server;
/* Start-up: with "http": ca_file or verify false, the client context is
 * made now (a CA file that cannot be read stops the start with one line
 * in 'err'; verify false logs its WARN). 0 or EINVAL. */
int gc_http_tls_start(struct gc_server *s, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Frees the context (the loops ended: no connection uses it). */
void gc_http_tls_stop(struct gc_server *s);
/* A client session verifying 'host' (the context made if need be): 0,
 * ENOMEM, or EPROTO (no context; why in 'err'). */
int gc__http_tls_new(struct gc_server *s, const char *host,
                     struct gc_http_tls **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void gc__http_tls_free(struct gc_http_tls *t);
/* Ciphertext that arrived: 0 or ENOMEM. */
int gc__http_tls_in(struct gc_http_tls *t, const char *p, size_t n)
    __attribute__((warn_unused_result));
/* Goes on with the handshake: 0 done, EAGAIN more input needed, EPROTO
 * failed ("certificate verify failed: ..." / "tls handshake failed: ..."
 * in 'err'). Its output waits in out_len/out_take. */
int gc__http_tls_handshake(struct gc_http_tls *t, char *err, size_t errlen);
/* Encrypts plaintext to send: 0, ENOMEM or EPROTO. */
int gc__http_tls_send(struct gc_http_tls *t, const void *p, size_t n)
    __attribute__((warn_unused_result));
/* Plaintext received, into 'out': 0 with '*n' > 0, EAGAIN none yet,
 * EPIPE the server's close_notify, EPROTO an error (in 'err'). */
int gc__http_tls_recv(struct gc_http_tls *t, char *out, size_t cap, size_t *n,
                      char *err, size_t errlen);
/* Whether more received input waits to be decrypted. */
int gc__http_tls_more(const struct gc_http_tls *t);
/* Ciphertext to write: its length, then all of it into 'dst'. */
size_t gc__http_tls_out_len(const struct gc_http_tls *t);
void gc__http_tls_out_take(struct gc_http_tls *t, char *dst, size_t n);

/* ---- the host's hooks (loop.c, supervisor.c, core_api.c) ---------------- */

intptr_t gc__http_request(int app_id, const struct gc_http_request *req,
                          GCHttpCallback cb, intptr_t user, int *err);
int gc__http_cancel(intptr_t id);
/* The loop ends (GC_MAIL_EXIT, and again at quiesce): every pending
 * request's callback runs now with ECANCELED; later calls get ESHUTDOWN. */
void gc__http_loop_stop(struct gc_loop *loop);
/* gc_loop_close: before its uv_walk, then once the handles closed. */
void gc__http_loop_close(struct gc_loop *loop);
void gc__http_loop_free(struct gc_loop *loop);

/* ---- gc.testing ---------------------------------------------------------- */

/* Answers a request: 'err' 0 with 'res', or an error with its text. */
typedef void (*gc_http_mock_reply)(void *rctx, int err, const char *err_text,
                                   const struct gc_http_response *res);
struct gc_http_mock {
  /* Called on the loop's turn that delivers the answer; must call 'reply'
   * once before it returns. */
  void (*answer)(void *ud, const struct gc_http_request *req,
                 gc_http_mock_reply reply, void *rctx);
  void *ud;
};
/* While set, httpRequest of every loop answers through 'm' (copied), not
 * the network: gc.testing's hosts (one at a time). NULL: the network. */
void gc_http_mock_set(const struct gc_http_mock *m);

#endif
