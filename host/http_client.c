/* http_client.c - httpRequest and httpCancel (server.h, API 1.4): a
 * request's life on the calling worker's loop. See http_client.h.
 *
 * Every ending (a response, an error, a cancel, the timeout) puts the call
 * on its loop's delivery list; an idle handle runs the callbacks on the
 * next turn (http_deliver.c), so no callback ever runs inside httpRequest
 * or httpCancel. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "http_client.h"
#include "internal.h"
#include "mailbox.h"

struct gc_http_resolve {
  uv_getaddrinfo_t req;
  struct gc_http_call *call; /* NULL once the call no longer waits for it */
};

/* ---- the per-loop state -------------------------------------------------- */

static void on_kick(uv_idle_t *h) { gc__http_deliver_all(h->data); }

static struct gc_http_loop *loop_http(struct gc_loop *loop) {
  struct gc_http_loop *hl = atomic_load(&loop->http);
  if (hl)
    return hl;
  hl = gc_calloc(1, sizeof *hl);
  if (!hl)
    return NULL;
  hl->loop = loop;
  gc_handle_table_init_tagged(&hl->ids, (uint8_t)loop->id);
  hl->kick.data = hl;
  if (uv_idle_init(&loop->uv, &hl->kick) != 0) {
    gc_free(hl);
    return NULL;
  }
  hl->kick_ready = 1;
  atomic_store(&loop->http, hl); /* other threads' httpCancel read it */
  return hl;
}

/* ---- a call -------------------------------------------------------------- */

static void call_unlink(struct gc_http_call *c, struct gc_http_call **head) {
  if (c->prev)
    c->prev->next = c->next;
  else
    *head = c->next;
  if (c->next)
    c->next->prev = c->prev;
  c->prev = c->next = NULL;
}

void gc__http_call_free(struct gc_http_call *c) {
  gc_http_url_free(&c->url);
  gc_http_resp_free(&c->resp);
  if (c->addrs)
    uv_freeaddrinfo(c->addrs);
  gc_free(c->url_text);
  gc_free(c->method);
  gc_free(c->hdrs);
  gc_free(c->body);
  gc_free(c->wbuf);
  gc_free(c);
}

/* Lets go of what the call waits on: its resolver, connection, timer. */
static void call_detach(struct gc_http_call *c) {
  if (c->resolve) {
    c->resolve->call = NULL; /* its callback frees it */
    (void)uv_cancel((uv_req_t *)&c->resolve->req);
    c->resolve = NULL;
  }
  gc__http_conn_release(c, 0);
  if (c->timer_id)
    (void)gc_timers_stop(&c->hl->loop->timers, c->timer_id);
  c->timer_id = 0;
}

void gc__http_call_finish(struct gc_http_call *c, int err, const char *text) {
  struct gc_http_loop *hl = c->hl;
  if (c->done)
    return;
  call_detach(c);
  c->done = 1;
  c->err = err;
  snprintf(c->err_text, sizeof c->err_text, "%s", text ? text : "");
  if (err)
    gc_http_resp_free(&c->resp);
  call_unlink(c, &hl->live);
  c->prev = hl->done_tail;
  if (hl->done_tail)
    hl->done_tail->next = c;
  else
    hl->done = c;
  hl->done_tail = c;
  if (!hl->stopped)
    (void)uv_idle_start(&hl->kick, on_kick);
}

/* ---- connecting ---------------------------------------------------------- */

static void try_addrs(struct gc_http_call *c) {
  int rc = EHOSTUNREACH;
  while (c->next_addr) {
    struct addrinfo *a = c->next_addr;
    c->next_addr = a->ai_next;
    if (a->ai_family != AF_INET && a->ai_family != AF_INET6)
      continue;
    if ((rc = gc__http_conn_open(c, a->ai_addr)) == 0)
      return;
  }
  gc__http_call_finish(c, rc, rc == EHOSTUNREACH ? "no address to connect to"
                                                 : strerror(rc));
}

static void on_resolved(uv_getaddrinfo_t *req, int status, struct addrinfo *res) {
  struct gc_http_resolve *r = req->data;
  struct gc_http_call *c = r->call;
  gc_free(r);
  if (!c) { /* cancelled, timed out, or the loop ended */
    if (res)
      uv_freeaddrinfo(res);
    return;
  }
  c->resolve = NULL;
  if (status != 0) {
    if (res)
      uv_freeaddrinfo(res);
    gc__http_call_finish(c, EHOSTUNREACH, "cannot resolve the host name");
    return;
  }
  c->addrs = c->next_addr = res;
  try_addrs(c);
}

void gc__http_call_connect(struct gc_http_call *c) {
  struct gc_http_loop *hl = c->hl;
  /* A retry goes to a fresh connection, not another pooled one. */
  struct gc_http_conn *k = c->retried ? NULL : gc__http_pool_take(hl, &c->url);
  if (k) {
    c->conn = k;
    gc__http_conn_send(c);
    return;
  }
  if (c->url.ip) {
    struct sockaddr_storage sa;
    int rc = strchr(c->url.host, ':')
                 ? uv_ip6_addr(c->url.host, c->url.port, (struct sockaddr_in6 *)&sa)
                 : uv_ip4_addr(c->url.host, c->url.port, (struct sockaddr_in *)&sa);
    if (rc == 0)
      rc = -gc__http_conn_open(c, (struct sockaddr *)&sa);
    if (rc)
      gc__http_call_finish(c, -rc, uv_strerror(rc));
    return;
  }
  if (c->addrs) { /* resolved before (a retry) */
    c->next_addr = c->addrs;
    try_addrs(c);
    return;
  }
  struct gc_http_resolve *r = gc_calloc(1, sizeof *r);
  if (!r) {
    gc__http_call_finish(c, ENOMEM, "out of memory");
    return;
  }
  char port[16];
  snprintf(port, sizeof port, "%d", c->url.port);
  struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM};
  r->req.data = r;
  r->call = c;
  int rc = uv_getaddrinfo(&hl->loop->uv, &r->req, on_resolved, c->url.host,
                          port, &hints);
  if (rc) {
    gc_free(r);
    gc__http_call_finish(c, EHOSTUNREACH, "cannot resolve the host name");
    return;
  }
  c->resolve = r;
}

static int build(struct gc_http_call *c) {
  gc_free(c->wbuf);
  c->wbuf = NULL;
  return gc_http_request_build(c->method, &c->url, c->hdrs, c->hdrs_len,
                               c->has_host, c->body, c->body_len, &c->wbuf,
                               &c->wlen);
}

/* A 3xx with a Location while redirects are left: the same call goes on
 * to the new URL. 1 when it did (or ended the call trying). */
static int follow_redirect(struct gc_http_call *c) {
  int st = (int)c->resp.parser.status_code;
  char loc[8192];
  if (c->redirects_left <= 0 ||
      (st != 301 && st != 302 && st != 303 && st != 307 && st != 308) ||
      !gc_http_resp_header(&c->resp, "location", loc, sizeof loc))
    return 0;
  gc__http_conn_release(c, c->resp.keep_alive);
  struct gc_http_url nu;
  int rc = gc_http_url_resolve(&c->url, loc, &nu);
  if (rc) {
    gc__http_call_finish(c, rc, rc == ENOMEM ? "out of memory"
                                             : "bad redirect location");
    return 1;
  }
  c->redirects_left--;
  /* 303, and 301/302 after a POST, continue with a GET (as browsers do);
   * 307 and 308 repeat the request as it was. */
  if (st == 303 || ((st == 301 || st == 302) && strcmp(c->method, "POST") == 0)) {
    if (strcmp(c->method, "HEAD") != 0) {
      char *get = gc_strdup("GET");
      if (!get) {
        gc_http_url_free(&nu);
        gc__http_call_finish(c, ENOMEM, "out of memory");
        return 1;
      }
      gc_free(c->method);
      c->method = get;
    }
    gc_free(c->body);
    c->body = NULL;
    c->body_len = 0;
    c->idempotent = 1;
  }
  if (strcmp(nu.host, c->url.host) != 0 || nu.port != c->url.port) {
    /* Another place (an http -> https redirect is one): resolved anew. */
    if (c->addrs)
      uv_freeaddrinfo(c->addrs);
    c->addrs = c->next_addr = NULL;
  }
  gc_http_url_free(&c->url);
  c->url = nu;
  if (build(c) != 0) {
    gc__http_call_finish(c, ENOMEM, "out of memory");
    return 1;
  }
  c->retried = 0;
  gc_http_resp_init(&c->resp, c->max_body, c->head);
  gc__http_call_connect(c);
  return 1;
}

void gc__http_call_response(struct gc_http_call *c) {
  if (follow_redirect(c))
    return;
  gc__http_conn_release(c, c->resp.keep_alive);
  if (gc_http_resp_finish(&c->resp) != 0) {
    gc__http_call_finish(c, ENOMEM, "out of memory");
    return;
  }
  gc__http_call_finish(c, 0, NULL);
}

static void on_timeout(void *ctx, intptr_t id) {
  struct gc_http_loop *hl = ctx;
  struct gc_http_call *c = gc_handle_table_get(&hl->ids, id);
  if (!c || c->done)
    return;
  c->timer_id = 0; /* a one-shot timer is gone once it fired */
  gc__http_call_finish(c, ETIMEDOUT, "timeout");
}

/* ---- the API ------------------------------------------------------------- */

static int is_idempotent(const char *m) {
  static const char *const list[] = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE",
                                     "TRACE"};
  for (size_t i = 0; i < sizeof list / sizeof *list; i++)
    if (strcmp(m, list[i]) == 0)
      return 1;
  return 0;
}

static int call_fill(struct gc_http_call *c, const struct gc_http_request *req) {
  const char *method = req->method ? req->method : "GET";
  if (gc_http_method_check(method) != 0 || (req->body_len && !req->body))
    return EINVAL;
  size_t ulen = strlen(req->url);
  int rc = gc_http_url_parse(req->url, ulen, &c->url);
  if (rc)
    return rc;
  if ((rc = gc_http_headers_serialise(req->headers, req->header_count, &c->hdrs,
                                      &c->hdrs_len, &c->has_host)) != 0)
    return rc;
  if (!(c->method = gc_strdup(method)) || !(c->url_text = gc_strdup(req->url)))
    return ENOMEM;
  if (req->body_len) {
    if (!(c->body = gc_malloc(req->body_len)))
      return ENOMEM;
    memcpy(c->body, req->body, req->body_len);
    c->body_len = req->body_len;
  }
  c->idempotent = is_idempotent(method);
  c->head = strcmp(method, "HEAD") == 0;
  c->timeout_ms = req->timeout_ms > 0 ? req->timeout_ms : GC_HTTP_TIMEOUT_MS;
  c->max_body = req->max_body ? req->max_body : GC_HTTP_MAX_BODY;
  c->redirects_left = req->max_redirects > 0 ? req->max_redirects : 0;
  gc_http_resp_init(&c->resp, c->max_body, c->head);
  return build(c);
}

intptr_t gc__http_request(int app_id, const struct gc_http_request *req,
                          GCHttpCallback cb, intptr_t user, int *err) {
  struct gc_loop *loop = gc__loop_current;
  int rc = 0;
  struct gc_http_loop *hl = NULL;
  struct gc_http_call *c = NULL;
  if (!loop || !req || !req->url || !cb || app_id < 0 ||
      (size_t)app_id >= loop->server->app_count)
    rc = EINVAL;
  else if (loop->finished || ((hl = atomic_load(&loop->http)) && hl->stopped))
    rc = ESHUTDOWN;
  else if (!(hl = loop_http(loop)) || !(c = gc_calloc(1, sizeof *c)))
    rc = ENOMEM;
  if (!rc) {
    c->hl = hl;
    c->cb = cb;
    c->user = user;
    c->app_id = app_id;
    rc = call_fill(c, req);
  }
  if (!rc)
    rc = gc_handle_table_add(&hl->ids, c, &c->id);
  if (rc) {
    if (c)
      gc__http_call_free(c);
    if (err)
      *err = rc;
    return 0;
  }
  c->next = hl->live;
  if (hl->live)
    hl->live->prev = c;
  hl->live = c;
  if (gc__http_mock_on()) { /* gc.testing: answered on the next turn */
    c->mock = 1;
    gc__http_call_finish(c, 0, NULL);
    return c->id;
  }
  if (gc_timers_start(&loop->timers, gc_loop_now(loop), c->timeout_ms, 0,
                      on_timeout, hl, c->id, &c->timer_id) != 0) {
    c->timer_id = 0;
    gc__http_call_finish(c, ENOMEM, "out of memory");
    return c->id;
  }
  gc__http_call_connect(c);
  return c->id;
}

static int cancel_here(struct gc_loop *loop, intptr_t id) {
  struct gc_http_loop *hl = atomic_load(&loop->http);
  struct gc_http_call *c = hl ? gc_handle_table_get(&hl->ids, id) : NULL;
  if (!c || (c->done && c->err == ECANCELED))
    return EINVAL;
  if (!c->done) {
    gc__http_call_finish(c, ECANCELED, "cancelled");
    return 0;
  }
  /* Ended but not yet delivered: it is delivered as cancelled. */
  gc_http_resp_free(&c->resp);
  c->err = ECANCELED;
  snprintf(c->err_text, sizeof c->err_text, "cancelled");
  return 0;
}

static void cancel_mail(GCT_INTPTR id) {
  struct gc_loop *loop = gc__loop_current;
  if (loop)
    (void)cancel_here(loop, id);
}

int gc__http_cancel(intptr_t id) {
  struct gc_loop *loop = gc__loop_current;
  unsigned tag = gc_handle_tag(id);
  if (id <= 0)
    return EINVAL;
  if (loop && tag == (unsigned)loop->id)
    return cancel_here(loop, id);
  struct gc_server *s = loop ? loop->server : atomic_load(&gc__server_process);
  if (!s || tag >= s->loop_count)
    return EINVAL;
  struct gc_loop *to = s->loops[tag];
  struct gc_http_loop *hl = atomic_load(&to->http);
  if (!hl || !gc_handle_table_alive(&hl->ids, id))
    return EINVAL;
  struct gc_mail *m = gc_mail_new(GC_MAIL_POST, 0);
  if (!m)
    return ENOMEM;
  GCTimerCallback fn = cancel_mail;
  memcpy(&m->ptr, &fn, sizeof fn);
  m->cookie = id;
  return gc_mail_post(to, m) == 0 ? 0 : EINVAL;
}

/* ---- the loop's end ------------------------------------------------------ */

void gc__http_loop_stop(struct gc_loop *loop) {
  /* Made if no request came yet: 'stopped' refuses those of
   * application_shutdown (ESHUTDOWN), finished loop or not (gc.testing's
   * forced end). Out of memory, there is nothing to cancel anyway. */
  struct gc_http_loop *hl = loop_http(loop);
  if (!hl || hl->stopped)
    return;
  hl->stopped = 1;
  while (hl->live)
    gc__http_call_finish(hl->live, ECANCELED, "host shutting down");
  for (struct gc_http_call *c = hl->done; c; c = c->next)
    if (c->mock && !c->err) {
      c->err = ECANCELED;
      snprintf(c->err_text, sizeof c->err_text, "host shutting down");
    }
  /* Now, on the loop's thread: application_shutdown comes after. */
  for (int i = 0; i < 100 && hl->done; i++)
    gc__http_deliver_all(hl);
  gc__http_conns_close_all(hl);
}

void gc__http_loop_close(struct gc_loop *loop) {
  struct gc_http_loop *hl = atomic_load(&loop->http);
  if (!hl)
    return;
  /* Not stopped (a start-up that failed): no callback may run now, the
   * adapters are gone; the calls are dropped. */
  hl->stopped = 1;
  struct gc_http_call *lists[2] = {hl->live, hl->done};
  hl->live = hl->done = hl->done_tail = NULL;
  for (int i = 0; i < 2; i++)
    while (lists[i]) {
      struct gc_http_call *c = lists[i];
      lists[i] = c->next;
      call_detach(c);
      gc__http_call_free(c);
    }
  gc__http_conns_close_all(hl);
}

void gc__http_loop_free(struct gc_loop *loop) {
  struct gc_http_loop *hl = atomic_load(&loop->http);
  if (!hl)
    return;
  gc__http_conns_free(hl);
  gc_handle_table_free(&hl->ids);
  gc_free(hl->rbuf);
  gc_free(hl);
  atomic_store(&loop->http, NULL);
}
