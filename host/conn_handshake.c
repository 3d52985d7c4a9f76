/* conn_handshake.c - the HTTP upgrade of a connection: routing to an
 * application, the answers that refuse it, on_connect. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "metrics.h"
#include "transport.h"


/* Answers an HTTP error with a one-line body, then closes. */
void gc__conn_http_reject(struct gc_conn *c, int status, const char *body) {
  char buf[512];
  int n = gc_http_response(buf, sizeof buf, status, body);
  gc__conn_log(c, GCL_INFO, "HTTP %d: %s", status, body);
  if (status >= 400 && status < 400 + GC_REFUSED_STATUSES)
    atomic_fetch_add_explicit(&c->loop->refused[status - 400], 1,
                              memory_order_relaxed);
  gc__conn_read_stop(c);
  if (n < 0 || gc_send_queue_push_raw(&c->q, buf, (size_t)n) != 0) {
    gc__conn_teardown(c);
    return;
  }
  c->close_after_flush = 1;
  gc__loop_mark_dirty(c->loop, c);
}

static struct gc_app *conn_route(struct gc_conn *c, const char *target) {
  struct gc_listener *l = c->listener;
  if (l->app_count == 1)
    return l->apps[0];
  /* Several apps on one address: the first path segment names one. */
  const char *seg = target + 1;
  size_t n = strcspn(seg, "/?#");
  for (size_t i = 0; i < l->app_count; i++) {
    const char *name = l->apps[i]->conf->name;
    if (strlen(name) == n && strncmp(seg, name, n) == 0)
      return l->apps[i];
  }
  return NULL;
}

void gc__conn_handshake_done(struct gc_conn *c, const uint8_t *rest,
                                size_t rest_len) {
  struct gc_loop *loop = c->loop;
  struct gc_server *srv = loop->server;
  const char *why = NULL;
  int status = gc_http_req_check(c->req, &why);
  if (status) {
    gc__conn_http_reject(c, status, why);
    return;
  }
  const char *target = c->req->target;
  struct gc_app *app = conn_route(c, target);
  if (!app) {
    gc__conn_http_reject(c, 404, "unknown application");
    return;
  }
  c->app = app;
  if (loop->stopping || atomic_load_explicit(&srv->stopping, memory_order_relaxed)) {
    gc__conn_http_reject(c, 503, "server shutting down");
    return;
  }
  /* The app's route may place it on another worker: it goes on there. */
  int worker = gc__app_worker(srv, app, target);
  if (worker >= 0 && worker != loop->id) {
    gc__conn_hand_over(c, worker, rest, rest_len);
    return;
  }
  /* Counted before on_connect, across every loop, so that the limit holds
   * exactly however many loops accept at once. */
  uint64_t max = srv->cfg->max_connections;
  if (max && (uint64_t)atomic_fetch_add(&srv->open_total, 1) >= max) {
    atomic_fetch_sub(&srv->open_total, 1);
    gc__conn_http_reject(c, 503, "too many connections");
    return;
  }
  if (!max)
    atomic_fetch_add_explicit(&srv->open_total, 1, memory_order_relaxed);
  c->counted = 1;
  char accept[29];
  char resp[256];
  int n;
  if (gc_ws_accept_key(c->req->key, accept) != 0 ||
      (n = snprintf(resp, sizeof resp,
                    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    "Connection: Upgrade\r\nSec-WebSocket-Accept: %s\r\n\r\n",
                    accept)) < 0 ||
      (size_t)n >= sizeof resp || gc__conn_ws_bind(c) != 0 ||
      gc_send_queue_push_raw(&c->q, resp, (size_t)n) != 0) {
    gc__conn_http_reject(c, 500, "out of memory");
    return;
  }
  /* OPEN before on_connect, so the app may already send from it. */
  if (c->deadline_id) {
    (void)gc_timers_stop(&loop->timers, c->deadline_id);
    c->deadline_id = 0;
  }
  c->state = GC_CONN_OPEN;
  struct gc_adapter *a = app->adapter;
  intptr_t user = 0;
  if (a->on_connect) {
    char lip[46] = "";
    int lport = c->listener->port;
    c->tp->local_addr(c, lip, sizeof lip, &lport);
    c->in_connect = 1; /* connectionRefuse may choose the answer */
    GC__TIMED(loop, app, GC_EV_CONNECT,
              user = a->on_connect(app->id, c->handle, c->listener->protocol,
                                   c->rip, c->rport, lip, lport, target));
    c->in_connect = 0;
  }
  if (user == GC_DROP_CONNECTION) {
    /* Refused: nothing the app did for it is reported, no event follows. */
    gc__conn_stop_timers(c);
    gc_send_queue_clear(&c->q, gc__conn_uncount_queued, c);
    if (c->state != GC_CONN_DEAD) {
      c->state = GC_CONN_HANDSHAKE;
      gc__conn_http_reject(c, c->refuse_status ? c->refuse_status : 403,
                           c->refuse_text ? c->refuse_text
                                          : "connection refused by the application");
    }
    return;
  }
  /* Accepted: an answer connectionRefuse prepared is forgotten. */
  gc_free(c->refuse_text);
  c->refuse_text = NULL;
  c->refuse_status = 0;
  c->user = user;
  c->accepted = 1;
  gc__stat(c, GC_CTR_CONNECTIONS, 1);
  gc__stat(c, GC_CTR_ACCEPTED, 1);
  c->win_start = c->last_input = gc_loop_now(loop);
  loop->open_count++;
  gc_free(c->req);
  c->req = NULL;
  gc__loop_mark_dirty(loop, c);
  if (rest_len && c->state == GC_CONN_OPEN)
    gc__conn_input(c, rest, rest_len);
}
