/* conn_socket.c - a connection's start: accepting it from a listener,
 * handing it to the worker its app's route chose, reading through its
 * transport (transport.h), and the per-turn share's resumption. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "mailbox.h"
#include "tls.h"
#include "transport.h"

/* ---- reading ------------------------------------------------------------- */

void gc__conn_resume_reads(struct gc_loop *loop) {
  struct gc_conn *c = loop->resume;
  loop->resume = NULL;
  while (c) {
    struct gc_conn *next = c->resume_next;
    c->resume_next = NULL;
    c->read_paused = 0; /* on_alloc gives it a buffer again */
    c = next;
  }
}

void gc__conn_read_start(struct gc_conn *c) {
  if (c->reading || c->state == GC_CONN_DEAD)
    return;
  c->reading = 1;
  if (c->tp->read_start(c) != 0) {
    c->reading = 0;
    gc__conn_teardown(c);
  }
}

void gc__conn_read_stop(struct gc_conn *c) {
  if (!c->reading)
    return;
  c->tp->read_stop(c);
  c->reading = 0;
}

/* ---- accept -------------------------------------------------------------- */

struct gc_conn *gc__conn_new(struct gc_listener *l) {
  struct gc_loop *loop = l->loop;
  struct gc_conn *c = gc_calloc(1, sizeof *c);
  if (!c || !(c->req = gc_malloc(sizeof *c->req))) {
    gc_free(c);
    return NULL;
  }
  gc_http_req_init(c->req);
  gc_send_queue_init(&c->q);
  c->q.acct = &loop->buffered;
  c->q.pool = &loop->msg_pool;
  c->loop = loop;
  c->listener = l;
  c->tp = &gc_transport_tcp;
  c->state = GC_CONN_HANDSHAKE;
  if (uv_tcp_init(&loop->uv, &c->tcp) != 0) {
    gc_free(c->req);
    gc_free(c);
    return NULL;
  }
  c->tcp.data = c;
  loop->conn_count++;
  atomic_fetch_add_explicit(&loop->server->conn_total, 1, memory_order_relaxed);
  /* The handle exists from accept, so timers can refer to a connection in
   * its handshake; the app sees it only in on_connect, and every API call
   * checks the state. */
  if (gc_handle_table_add(&loop->conns, c, &c->handle) != 0) {
    c->state = GC_CONN_DEAD;
    uv_close((uv_handle_t *)&c->tcp, gc__conn_on_close);
    return NULL;
  }
  return c;
}

static void free_on_close(uv_handle_t *h) { gc_free(h); }

void gc__conn_refuse_pending(struct gc_listener *l) {
  uv_tcp_t *tmp = gc_malloc(sizeof *tmp);
  if (tmp && uv_tcp_init(&l->loop->uv, tmp) == 0) {
    (void)uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)tmp);
    uv_close((uv_handle_t *)tmp, free_on_close);
  } else {
    gc_free(tmp);
  }
}

void gc__conn_accept(struct gc_listener *l) {
  struct gc_loop *loop = l->loop;
  struct gc_conn *c = gc__conn_new(l);
  if (!c) {
    gc__conn_refuse_pending(l);
    gc_log(GCL_ERR, "accept: out of memory");
    return;
  }
  if (uv_accept((uv_stream_t *)&l->tcp, (uv_stream_t *)&c->tcp) != 0) {
    c->state = GC_CONN_DEAD;
    uv_close((uv_handle_t *)&c->tcp, gc__conn_on_close);
    return;
  }
  (void)uv_tcp_nodelay(&c->tcp, 1);
  if (l->tls && gc__tls_conn_attach(c, l->tls) != 0) {
    gc_log(GCL_ERR, "accept: out of memory for TLS");
    gc__conn_teardown(c);
    return;
  }
  struct sockaddr_storage ss;
  int sl = sizeof ss;
  if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&ss, &sl) == 0) {
    if (ss.ss_family == AF_INET6) {
      uv_ip6_name((struct sockaddr_in6 *)&ss, c->rip, sizeof c->rip);
      c->rport = ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    } else {
      uv_ip4_name((struct sockaddr_in *)&ss, c->rip, sizeof c->rip);
      c->rport = ntohs(((struct sockaddr_in *)&ss)->sin_port);
    }
  }
  gc__conn_arm_deadline_ms(c, loop->server->cfg->handshake_timeout_ms);
  /* Connections in their handshake count: a crowd that never finishes
   * its upgrade must not get past max_connections either. */
  uint64_t max = loop->server->cfg->max_connections;
  if (max && (uint64_t)atomic_load_explicit(&loop->server->conn_total,
                                            memory_order_relaxed) > max) {
    gc__conn_http_reject(c, 503, "too many connections");
    return;
  }
  gc__conn_read_start(c);
}


/* ---- handing a connection to its worker ---------------------------------- */

void gc__conn_hand_over(struct gc_conn *c, int worker, const uint8_t *rest,
                        size_t rest_len) {
  struct gc_loop *loop = c->loop;
  size_t pending = c->mem_pending_len;
  struct gc_adopt *a = rest_len + pending >= rest_len
                           ? gc_malloc(sizeof *a + rest_len + pending)
                           : NULL;
  struct gc_mail *m = a ? gc_mail_new(GC_MAIL_ADOPT, 0) : NULL;
  if (!m) {
    gc_free(a);
    gc__conn_http_reject(c, 500, "out of memory");
    return;
  }
  a->fd = -1;
  a->mem = NULL;
  a->mem_ud = NULL;
  a->tls = NULL;
  a->tp = c->tp;
  if (c->tp->hand_over(c, a) != 0) {
    gc_free(a);
    gc_free(m);
    gc__conn_http_reject(c, 500, "cannot hand the connection over");
    return;
  }
  a->req = c->req;
  c->req = NULL;
  memcpy(a->rip, c->rip, sizeof a->rip);
  a->rport = c->rport;
  a->port = c->listener->port;
  a->rest_len = rest_len + pending;
  if (rest_len)
    memcpy(a->rest, rest, rest_len);
  if (pending)
    memcpy(a->rest + rest_len, c->mem_pending, pending);
  m->ptr = a;
  gc__conn_read_stop(c);
  gc__conn_teardown(c); /* never accepted: no event for it */
  if (gc_mail_post(loop->server->loops[worker], m) != 0)
    gc_log(GCL_WARN, "a connection could not be handed to worker %d: it "
           "has stopped", worker);
}

void gc__conn_adopt(struct gc_loop *loop, struct gc_adopt *a) {
  struct gc_listener *l = NULL;
  for (size_t i = 0; i < loop->listener_count && !l; i++)
    if (loop->listeners[i]->port == a->port)
      l = loop->listeners[i];
  struct gc_conn *c = l ? gc__conn_new(l) : NULL;
  if (!c) {
    gc_log(GCL_ERR, "worker %d: cannot take a connection: %s", loop->id,
           l ? "out of memory" : "no listener");
    if (a->mem && a->mem->on_close)
      a->mem->on_close(a->mem_ud); /* its peer must not wait forever */
    if (a->fd >= 0)
      close(a->fd);
    gc__tls_adopt_discard(a);
    gc_free(a->req);
    gc_free(a);
    return;
  }
  gc_free(c->req);
  c->req = a->req;
  a->req = NULL;
  memcpy(c->rip, a->rip, sizeof c->rip);
  c->rport = a->rport;
  c->tp = a->tp;
  if (c->tp->adopt(c, a) != 0) {
    if (a->fd >= 0)
      close(a->fd);
    gc_free(a);
    gc__conn_teardown(c);
    return;
  }
  gc__conn_handshake_done(c, a->rest, a->rest_len);
  if (c->state == GC_CONN_OPEN)
    gc__conn_read_start(c);
  gc_free(a);
}
