/* link.c - a link's life: creation, the events, close and the final event
 * (see link.h). Every client_events callback runs from a loop callback of
 * the link's own loop (a transport callback, a timer, the close callback),
 * never inside an API call. */
#include "link.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "tls.h"

static void link_progress(struct gc_link *l);

static struct gc_link *link_get(struct gc_loop *loop, intptr_t h) {
  return h ? gc_handle_table_get(&loop->links, h) : NULL;
}

void gc__links_init(struct gc_loop *loop) {
  gc_handle_table_init_tagged(&loop->links, (uint8_t)loop->id);
}

static void link_free(struct gc_link *l) {
  gc__link_ws_free(l);
  gc__link_tls_free(l);
  gc_free(l->hbuf);
  gc_free(l->mem_in);
  gc_free(l->host);
  gc_free(l->target);
  gc_free(l);
}

void gc__links_free(struct gc_loop *loop) {
  struct gc_handle_table *t = &loop->links;
  for (uint32_t i = 0; i < t->cap; i++) {
    struct gc_link *l = gc_handle_table_at(t, i);
    if (l) {
      while (l->head) { /* no adapter is told: the loop is gone */
        struct gc_link_msg *m = l->head;
        l->head = m->next;
        gc_free(m);
      }
      link_free(l);
    }
  }
  gc_handle_table_free(t);
}

/* ---- timers -------------------------------------------------------------- */

static void stop_timer(struct gc_link *l, intptr_t *id) {
  if (*id)
    (void)gc_timers_stop(&l->loop->timers, *id);
  *id = 0;
}

static void deadline_fired(void *ctx, intptr_t arg) {
  struct gc_link *l = ctx;
  (void)arg;
  l->deadline_id = 0;
  if (l->state < GC_LINK_OPEN)
    gc__link_fail(l, "timeout");
  else {
    if (!l->reason[0])
      snprintf(l->reason, sizeof l->reason, "close timed out");
    gc__link_teardown(l);
  }
}

static void arm_deadline(struct gc_link *l, int64_t ms) {
  stop_timer(l, &l->deadline_id);
  if (ms > 0 &&
      gc_timers_start(&l->loop->timers, gc_loop_now(l->loop), ms, 0,
                      deadline_fired, l, 0, &l->deadline_id) != 0)
    l->deadline_id = 0; /* out of memory: the close waits for the peer */
}

static void timer_fired(void *ctx, intptr_t arg) {
  struct gc_link *l = ctx;
  (void)arg;
  l->timer_id = 0;
  if (l->state == GC_LINK_OPEN && l->ev.on_client_timer)
    l->ev.on_client_timer(l->user);
}

/* ---- creation ------------------------------------------------------------ */

/* Printable ASCII without spaces: what a request target may hold as is. */
static int target_ok(const char *s) {
  for (; *s; s++)
    if ((unsigned char)*s <= 0x20 || (unsigned char)*s >= 0x7f)
      return 0;
  return 1;
}

int gc__link_create(struct gc_loop *loop, int adapter, intptr_t user, int proto,
                    const char *host, int port, const char *app,
                    const struct client_events *ev) {
  if (!ev || !host || !*host || !app || !*app || *app == '/' || port < 1 ||
      port > 65535 || strlen(host) > 255 || strlen(app) > 2000 ||
      !target_ok(app) || !target_ok(host))
    return EINVAL;
  if (proto != GC_PROTOCOL_WS && proto != GC_PROTOCOL_WSS)
    return EINVAL;
  /* gc.testing's host (virtual time, no sockets): links, wss ones too,
   * connect in memory. Else wss needs the server's client SSL_CTX. */
  const struct gc_link_transport *tp =
      loop->virtual_clock ? &gc_link_mem
                          : proto == GC_PROTOCOL_WSS ? &gc_link_tls : &gc_link_tcp;
  if (tp == &gc_link_tls) {
    if (!loop->server->s2s_ctx)
      return ENOTSUP;
    gc_tls_s2s_store(loop->server);
  }
  if (loop->stopping || atomic_load(&loop->server->stopping))
    return ESHUTDOWN;
  struct gc_link *l = gc_calloc(1, sizeof *l);
  if (!l)
    return ENOMEM;
  l->loop = loop;
  l->adapter = adapter;
  l->user = user;
  l->ev = *ev;
  l->port = port;
  size_t an = strlen(app);
  l->host = gc_strdup(host);
  l->target = gc_malloc(an + 2);
  if (!l->host || !l->target || gc_handle_table_add(&loop->links, l, &l->handle)) {
    link_free(l);
    return ENOMEM;
  }
  l->target[0] = '/';
  memcpy(l->target + 1, app, an + 1);
  l->tp = tp;
  loop->link_count++;
  l->state = GC_LINK_RESOLVING;
  arm_deadline(l, GC_LINK_CONNECT_MS);
  int rc = l->tp->connect(l);
  if (rc) {
    char why[96];
    snprintf(why, sizeof why, "cannot connect: %s", strerror(rc));
    gc__link_fail(l, why);
  }
  return 0;
}

/* ---- the end --------------------------------------------------------------- */

void gc__link_fail(struct gc_link *l, const char *why) {
  if (!l->reason[0])
    snprintf(l->reason, sizeof l->reason, "%s", why);
  gc__link_teardown(l);
}

void gc__link_teardown(struct gc_link *l) {
  if (l->torn)
    return;
  l->torn = 1;
  l->state = GC_LINK_DEAD;
  stop_timer(l, &l->timer_id);
  stop_timer(l, &l->deadline_id);
  if (l->resolving)
    return; /* the resolver's callback closes it */
  l->tp->close(l);
}

void gc__link_closed(struct gc_link *l) {
  struct gc_loop *loop = l->loop;
  if (l->connected) {
    gc__link_queue_clear(l);
    if (l->ev.on_client_disconnect)
      l->ev.on_client_disconnect(l->user);
  } else if (l->ev.on_client_connection_error) {
    l->ev.on_client_connection_error(l->user, l->reason[0] ? l->reason : "closed");
  }
  (void)gc_handle_table_remove(&loop->links, l->handle);
  while (l->head) { /* only internal bytes are left */
    struct gc_link_msg *m = l->head;
    l->head = m->next;
    gc_free(m);
  }
  link_free(l);
  loop->link_count--;
  gc__loop_conn_gone(loop);
}

/* ---- transport events ------------------------------------------------------ */

void gc__link_connected(struct gc_link *l) {
  if (l->torn)
    return;
  l->state = GC_LINK_UPGRADING;
  if (gc__link_ws_request(l) != 0) {
    gc__link_fail(l, "out of memory");
    return;
  }
  gc__link_flush(l);
}

void gc__link_input(struct gc_link *l, const uint8_t *data, size_t len) {
  if (l->torn || !len)
    return;
  if (l->state == GC_LINK_UPGRADING) {
    size_t used = 0;
    int rc = gc__link_ws_answer(l, data, len, &used);
    if (rc == EAGAIN)
      return;
    if (rc) {
      gc__link_fail(l, l->reason[0] ? l->reason : "bad upgrade answer");
      return;
    }
    l->state = GC_LINK_OPEN;
    stop_timer(l, &l->deadline_id);
    l->connected = 1;
    if (l->ev.on_client_connect)
      l->ev.on_client_connect(l->user, l->handle);
    data += used;
    len -= used;
    if (!len || l->torn) {
      link_progress(l);
      return;
    }
  }
  if (l->state == GC_LINK_OPEN || l->state == GC_LINK_CLOSING) {
    if (gc__link_ws_recv(l, data, len) != 0) {
      gc__link_fail(l, "protocol error from the peer");
      return;
    }
    link_progress(l);
  }
}

void gc__link_eof(struct gc_link *l) {
  if (l->torn)
    return;
  gc__link_fail(l, l->state < GC_LINK_OPEN ? "connection closed during the upgrade"
                                           : "connection closed by the peer");
}

/* The close is over once both close frames passed and ours is written. */
static void link_progress(struct gc_link *l) {
  if (l->torn || l->state < GC_LINK_OPEN)
    return;
  if (gc__link_ws_close_received(l) && l->state == GC_LINK_OPEN) {
    /* The peer closes: wslay queued our answer. */
    l->state = GC_LINK_CLOSING;
    if (!l->reason[0])
      snprintf(l->reason, sizeof l->reason, "closed by the peer");
    arm_deadline(l, l->loop->server->cfg->close_drain_ms);
  }
  gc__link_flush(l);
  if (l->state == GC_LINK_CLOSING && gc__link_ws_close_done(l) && !l->head &&
      !l->writing)
    gc__link_teardown(l);
}

static void report_sent(struct gc_link *l, struct gc_link_msg *m, int status) {
  if (!m->internal && l->connected && l->ev.on_client_message_sent)
    l->ev.on_client_message_sent(l->user, m->cookie, m->len, status);
  gc_free(m);
}

void gc__link_write_done(struct gc_link *l, int status) {
  l->writing = 0;
  size_t n = l->inflight;
  l->inflight = 0;
  if (status < 0) {
    char why[96];
    snprintf(why, sizeof why, "write failed: %s", uv_strerror(status));
    gc__link_fail(l, why);
    return;
  }
  while (n && l->head) {
    struct gc_link_msg *m = l->head;
    size_t rem = m->size - l->head_off;
    if (n < rem) {
      l->head_off += n;
      break;
    }
    n -= rem;
    l->head = m->next;
    if (!l->head)
      l->tail = NULL;
    l->head_off = 0;
    l->queued -= m->size;
    report_sent(l, m, 0); /* may call the API: the queue is consistent */
  }
  link_progress(l);
}

void gc__link_flush(struct gc_link *l) {
  if (l->writing || !l->head || l->state < GC_LINK_UPGRADING ||
      (l->torn && !l->writing))
    return;
  uv_buf_t *iov = l->iov;
  size_t n = 0, total = 0;
  for (struct gc_link_msg *m = l->head; m && n < GC_LINK_IOV; m = m->next, n++) {
    size_t off = m == l->head ? l->head_off : 0;
    iov[n] = uv_buf_init((char *)m->bytes + off, (unsigned)(m->size - off));
    total += m->size - off;
  }
  l->writing = 1;
  l->inflight = total;
  int rc = l->tp->write(l, iov, n);
  if (rc < 0) {
    l->writing = 0;
    l->inflight = 0;
    char why[96];
    snprintf(why, sizeof why, "write failed: %s", uv_strerror(rc));
    gc__link_fail(l, why);
  }
}

/* ---- the API, on the link's loop --------------------------------------------- */

/* NORMAL: what is queued goes out, then our close frame; the link ends when
 * the peer answers it, or after close_drain_ms. */
int gc__link_destroy(struct gc_loop *loop, intptr_t h) {
  struct gc_link *l = link_get(loop, h);
  if (!l || l->torn || l->state == GC_LINK_CLOSING)
    return EINVAL;
  if (l->state < GC_LINK_OPEN) {
    gc__link_fail(l, "cancelled");
    return 0;
  }
  l->state = GC_LINK_CLOSING;
  snprintf(l->reason, sizeof l->reason, "closed by this side");
  gc__link_ws_close(l);
  arm_deadline(l, loop->server->cfg->close_drain_ms);
  if (!l->in_recv)
    link_progress(l);
  return 0;
}

int gc__link_send(struct gc_loop *loop, intptr_t h, const void *data,
                  size_t len, intptr_t cookie) {
  struct gc_link *l = link_get(loop, h);
  if (!l || l->state != GC_LINK_OPEN || (!data && len))
    return EINVAL;
  if (len > loop->server->cfg->max_output_msg_size)
    return EMSGSIZE;
  if (l->queued + len > GC_LINK_QUEUE_MAX) {
    gc_log(GCL_WARN, "link to %s:%d%s: output queue full (%zu bytes): the "
           "peer does not read; dropped", l->host, l->port, l->target, l->queued);
    gc__link_fail(l, "output queue full: the peer does not read");
    return ENOBUFS;
  }
  int rc = gc__link_ws_frame(l, data, len, cookie);
  if (rc)
    return rc;
  if (!l->in_recv)
    gc__link_flush(l);
  return 0;
}

int gc__link_set_timer(struct gc_loop *loop, intptr_t h, int ms) {
  struct gc_link *l = link_get(loop, h);
  if (!l || l->state != GC_LINK_OPEN)
    return EINVAL;
  stop_timer(l, &l->timer_id);
  if (ms <= 0)
    return 0;
  return gc_timers_start(&loop->timers, gc_loop_now(loop), ms, 0, timer_fired,
                         l, 0, &l->timer_id);
}

void gc__links_close_all(struct gc_loop *loop, int reason) {
  struct gc_handle_table *t = &loop->links;
  for (uint32_t i = 0; i < t->cap; i++) {
    struct gc_link *l = gc_handle_table_at(t, i);
    if (!l || l->torn)
      continue;
    if (l->state < GC_LINK_OPEN)
      gc__link_fail(l, "host shutting down");
    else if (reason == GC_CLOSE_REASON_DROP)
      gc__link_fail(l, "dropped at shutdown");
    else if (l->state == GC_LINK_OPEN)
      (void)gc__link_destroy(loop, l->handle);
  }
}
