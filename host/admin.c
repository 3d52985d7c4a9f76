/* admin.c - the admin listener (config "admin": {ip, port}): GET /metrics
 * (Prometheus text, metrics.c) and GET /health (200 "ok" while serving,
 * 503 "draining" or "stopping" after SIGTERM), for load balancers and
 * scrapers. Off by default and never served on a vhost's port.
 *
 * Loop 0 serves it: one small HTTP/1.1 exchange per connection (request,
 * answer, close), each bounded in size and in time, so a client that
 * never finishes its request cannot hold anything. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <http_parser.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

#define GC_ADMIN_REQ_MAX 4096   /* request line + headers */
#define GC_ADMIN_TIMEOUT_MS 5000
#define GC_ADMIN_CONNS_MAX 64

struct gc_admin {
  struct gc_loop *loop;
  uv_tcp_t listener;
  int listening;
  int conns;   /* admin connections open */
  int handles; /* our handles not closed yet (listener + each conn's two) */
  int closing;
  char ip[64];
  int port;
  struct admin_conn *head; /* open connections, to close at stop */
};

struct admin_conn {
  struct admin_conn *prev, *next;
  uv_tcp_t tcp;
  uv_timer_t timer;
  struct gc_admin *admin;
  http_parser parser;
  char url[256];
  size_t url_len;
  size_t seen;
  int complete, too_long, closing, open_handles;
  uv_write_t wreq;
  struct gc_text resp;
  char rbuf[1024];
};

static void admin_maybe_free(struct gc_admin *a) {
  if (a->closing && a->handles == 0)
    gc_free(a);
}

static void conn_handle_closed(uv_handle_t *h) {
  struct admin_conn *c = h->data;
  struct gc_admin *a = c->admin;
  a->handles--;
  if (--c->open_handles > 0)
    return;
  gc_text_free(&c->resp);
  if (c->prev)
    c->prev->next = c->next;
  else
    a->head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  gc_free(c);
  a->conns--;
  admin_maybe_free(a);
}

static void conn_close(struct admin_conn *c) {
  if (c->closing)
    return;
  c->closing = 1;
  uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
  uv_close((uv_handle_t *)&c->timer, conn_handle_closed);
}

static void on_written(uv_write_t *w, int status) {
  (void)status;
  conn_close(w->data);
}

static void respond(struct admin_conn *c, int status, const char *ctype,
                    const char *body, size_t len) {
  const char *reason = status == 200 ? "OK"
                       : status == 404 ? "Not Found"
                       : status == 405 ? "Method Not Allowed"
                       : status == 503 ? "Service Unavailable"
                                       : "Bad Request";
  struct gc_text head = {0};
  gc_text_printf(&head,
                 "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                 "Cache-Control: no-store\r\nConnection: close\r\n\r\n",
                 status, reason, ctype, len);
  gc_text_append(&head, body, len);
  if (head.oom) {
    gc_text_free(&head);
    conn_close(c);
    return;
  }
  c->resp = head;
  uv_buf_t buf = uv_buf_init(c->resp.p, (unsigned)c->resp.len);
  c->wreq.data = c;
  (void)uv_read_stop((uv_stream_t *)&c->tcp);
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_written) != 0)
    conn_close(c);
}

static void text_respond(struct admin_conn *c, int status, const char *body) {
  respond(c, status, "text/plain; charset=utf-8", body, strlen(body));
}

static void serve(struct admin_conn *c) {
  struct gc_server *s = c->admin->loop->server;
  if (c->parser.method != HTTP_GET && c->parser.method != HTTP_HEAD) {
    text_respond(c, 405, "GET only\n");
    return;
  }
  size_t path_len = strcspn(c->url, "?#");
  if (path_len == 7 && strncmp(c->url, "/health", 7) == 0) {
    if (atomic_load(&s->stopping))
      text_respond(c, 503, "stopping\n");
    else if (atomic_load(&s->draining))
      text_respond(c, 503, "draining\n");
    else
      text_respond(c, 200, "ok\n");
    return;
  }
  if (path_len == 8 && strncmp(c->url, "/metrics", 8) == 0) {
    struct gc_text body = {0};
    gc__metrics_render(s, &body);
    if (body.oom) {
      gc_text_free(&body);
      text_respond(c, 503, "out of memory\n");
      return;
    }
    respond(c, 200, "text/plain; version=0.0.4; charset=utf-8", body.p, body.len);
    gc_text_free(&body);
    return;
  }
  text_respond(c, 404, "not found: try /metrics or /health\n");
}

static int on_url(http_parser *p, const char *at, size_t len) {
  struct admin_conn *c = p->data;
  if (c->url_len + len >= sizeof c->url) {
    c->too_long = 1;
    return 1;
  }
  memcpy(c->url + c->url_len, at, len);
  c->url_len += len;
  c->url[c->url_len] = '\0';
  return 0;
}

static int on_complete(http_parser *p) {
  ((struct admin_conn *)p->data)->complete = 1;
  return 1; /* one request per connection: stop here */
}

static const http_parser_settings settings = {.on_url = on_url,
                                              .on_message_complete = on_complete};

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  struct admin_conn *c = h->data;
  (void)suggested;
  *buf = uv_buf_init(c->rbuf, sizeof c->rbuf);
}

static void on_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf) {
  struct admin_conn *c = st->data;
  if (n < 0) {
    conn_close(c);
    return;
  }
  if (n == 0 || c->complete)
    return;
  c->seen += (size_t)n;
  size_t used = http_parser_execute(&c->parser, &settings, buf->base, (size_t)n);
  if (c->complete) {
    serve(c);
    return;
  }
  if (c->too_long || c->seen > GC_ADMIN_REQ_MAX) {
    text_respond(c, 400, "request too long\n");
    return;
  }
  if (used != (size_t)n || HTTP_PARSER_ERRNO(&c->parser) != HPE_OK)
    text_respond(c, 400, "bad request\n");
}

static void on_timeout(uv_timer_t *t) { conn_close(t->data); }

static void on_connection(uv_stream_t *server, int status) {
  struct gc_admin *a = server->data;
  if (status < 0 || a->closing)
    return;
  struct admin_conn *c = a->conns < GC_ADMIN_CONNS_MAX ? gc_calloc(1, sizeof *c) : NULL;
  uv_tcp_t spare;
  if (!c) {
    /* Take it off the backlog and let it go. */
    if (uv_tcp_init(&a->loop->uv, &spare) == 0) {
      (void)uv_accept(server, (uv_stream_t *)&spare);
      uv_close((uv_handle_t *)&spare, NULL);
    }
    return;
  }
  c->admin = a;
  if (uv_tcp_init(&a->loop->uv, &c->tcp) != 0) {
    gc_free(c);
    return;
  }
  c->next = a->head;
  if (a->head)
    a->head->prev = c;
  a->head = c;
  c->tcp.data = c->timer.data = c;
  c->open_handles = 1;
  a->handles++;
  a->conns++;
  if (uv_timer_init(&a->loop->uv, &c->timer) != 0) {
    c->closing = 1;
    uv_close((uv_handle_t *)&c->tcp, conn_handle_closed);
    return;
  }
  c->open_handles = 2;
  a->handles++;
  http_parser_init(&c->parser, HTTP_REQUEST);
  c->parser.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0 ||
      uv_timer_start(&c->timer, on_timeout, GC_ADMIN_TIMEOUT_MS, 0) != 0)
    conn_close(c);
}

static void listener_closed(uv_handle_t *h) {
  struct gc_admin *a = h->data;
  a->handles--;
  admin_maybe_free(a);
}

int gc__admin_start(struct gc_loop *loop, char *err, size_t errlen) {
  const struct gc_config *cfg = loop->server->cfg;
  if (!cfg->admin_ip)
    return 0;
  struct gc_admin *a = gc_calloc(1, sizeof *a);
  if (!a) {
    snprintf(err, errlen, "admin: out of memory");
    return ENOMEM;
  }
  a->loop = loop;
  snprintf(a->ip, sizeof a->ip, "%s", cfg->admin_ip);
  struct sockaddr_storage addr;
  int rc = strchr(a->ip, ':')
               ? uv_ip6_addr(a->ip, cfg->admin_port, (struct sockaddr_in6 *)&addr)
               : uv_ip4_addr(a->ip, cfg->admin_port, (struct sockaddr_in *)&addr);
  if (rc == 0 && (rc = uv_tcp_init(&loop->uv, &a->listener)) == 0) {
    a->listener.data = a;
    a->handles = 1;
    loop->admin = a;
    if ((rc = uv_tcp_bind(&a->listener, (struct sockaddr *)&addr, 0)) == 0)
      rc = uv_listen((uv_stream_t *)&a->listener, 64, on_connection);
  }
  if (rc) {
    snprintf(err, errlen, "cannot listen on admin %s:%d: %s", a->ip,
             cfg->admin_port, uv_strerror(rc));
    if (!loop->admin)
      gc_free(a);
    return EADDRINUSE;
  }
  a->listening = 1;
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  a->port = cfg->admin_port;
  if (uv_tcp_getsockname(&a->listener, (struct sockaddr *)&ss, &sl) == 0)
    a->port = ntohs(ss.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&ss)->sin6_port
                                             : ((struct sockaddr_in *)&ss)->sin_port);
  char line[160];
  snprintf(line, sizeof line, "admin listening on http://%s%s%s:%d (/metrics, /health)",
           strchr(a->ip, ':') ? "[" : "", a->ip, strchr(a->ip, ':') ? "]" : "",
           a->port);
  /* Port 0: this line is the only way to learn the port. */
  if (cfg->admin_port)
    gc_log(GCL_NOTICE, "%s", line);
  else
    gc_log_urgent(GCL_NOTICE, line);
  return 0;
}

void gc__admin_stop(struct gc_loop *loop) {
  struct gc_admin *a = loop->admin;
  if (!a || a->closing)
    return;
  loop->admin = NULL;
  a->closing = 1;
  uv_close((uv_handle_t *)&a->listener, listener_closed);
  for (struct admin_conn *c = a->head; c; c = c->next)
    conn_close(c);
}
