/* conn_api.c - the connection calls of the core API (send, broadcast,
 * close, timers) and the close of every connection at shutdown. They only
 * queue and mark the connection dirty: conn.c writes, once per loop turn. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

/* ---- the API ------------------------------------------------------------- */

struct gc_conn *gc__conn_get(struct gc_loop *loop, intptr_t h) {
  return loop ? gc_handle_table_get(&loop->conns, h) : NULL;
}

int gc_conn_send(struct gc_loop *loop, intptr_t h, const void *data, size_t len,
                 intptr_t cookie) {
  struct gc_conn *c = gc__conn_get(loop, h);
  if (!c || c->state != GC_CONN_OPEN || (!data && len))
    return EINVAL;
  int rc = gc__conn_queue_room(c, len);
  if (!rc)
    rc = gc_send_queue_push_frame(&c->q, data, len, cookie);
  if (rc)
    return rc;
  gc__conn_queued(c, len);
  return 0;
}

int gc__conn_broadcast_shared(struct gc_loop *loop, const intptr_t *handles,
                              size_t count, struct gc_shared *sh,
                              intptr_t cookie, size_t *queued) {
  /* All or nothing: every receiver's entry is allocated before any is
   * queued, so ENOMEM leaves no receiver with the message and the others
   * without it. */
  size_t len = sh->len;
  struct gc_msg **msgs = count ? gc_malloc(count * sizeof *msgs) : NULL;
  if (count && !msgs)
    return ENOMEM;
  int rc = 0;
  size_t i;
  for (i = 0; i < count; i++) {
    struct gc_conn *c = gc__conn_get(loop, handles[i]);
    msgs[i] = NULL;
    if (!c || c->state != GC_CONN_OPEN || gc__conn_queue_room(c, len))
      continue;
    if (!(msgs[i] = gc_send_queue_msg_shared(sh, cookie))) {
      rc = ENOMEM;
      break;
    }
  }
  size_t n = 0;
  for (size_t k = 0; k < i; k++) {
    if (!msgs[k])
      continue;
    struct gc_conn *c = gc__conn_get(loop, handles[k]);
    /* A later receiver's room check may have dropped an earlier one (the
     * server-wide budget), or a handle may repeat: queue to live ones. */
    if (rc || !c || c->state != GC_CONN_OPEN) {
      gc_send_queue_msg_free(msgs[k]);
      continue;
    }
    gc_send_queue_append(&c->q, msgs[k]);
    gc__conn_queued(c, len);
    n++;
  }
  gc_free(msgs);
  if (queued)
    *queued = n;
  return rc;
}

int gc_conn_broadcast(struct gc_loop *loop, const intptr_t *handles, size_t count,
                      const void *data, size_t len, intptr_t cookie,
                      size_t *queued) {
  if (queued)
    *queued = 0;
  if (!loop || (!handles && count) || (!data && len))
    return EINVAL;
  if (len > loop->server->cfg->max_output_msg_size)
    return EMSGSIZE;
  struct gc_shared *sh = gc_shared_new(data, len);
  if (!sh)
    return ENOMEM;
  gc_shared_ref(sh); /* ours, until the loop is done */
  int rc = gc__conn_broadcast_shared(loop, handles, count, sh, cookie, queued);
  gc_shared_release(sh);
  return rc;
}

int gc_conn_close(struct gc_loop *loop, intptr_t h, int reason) {
  struct gc_conn *c = gc__conn_get(loop, h);
  if (!c || c->state != GC_CONN_OPEN)
    return EINVAL;
  if (reason == GC_CLOSE_REASON_DROP) {
    gc__conn_teardown(c);
    return 0;
  }
  if (reason != GC_CLOSE_REASON_NORMAL)
    return EINVAL;
  c->state = GC_CONN_DRAINING;
  if (c->timer_id) {
    (void)gc_timers_stop(&loop->timers, c->timer_id);
    c->timer_id = 0;
  }
  gc__conn_read_stop(c);
  gc__conn_arm_deadline(c);
  gc__loop_mark_dirty(loop, c);
  return 0;
}

static void conn_timer_fired(void *ctx, intptr_t handle) {
  struct gc_loop *loop = ctx;
  struct gc_conn *c = gc_handle_table_get(&loop->conns, handle);
  if (!c)
    return;
  c->timer_id = 0;
  if (c->state != GC_CONN_OPEN || !c->accepted)
    return;
  struct gc_adapter *a = c->app->adapter;
  if (a->on_timer)
    a->on_timer(c->user);
}

int gc_conn_set_timer(struct gc_loop *loop, intptr_t h, int ms) {
  struct gc_conn *c = gc__conn_get(loop, h);
  if (!c || c->state != GC_CONN_OPEN)
    return EINVAL;
  if (c->timer_id) {
    (void)gc_timers_stop(&loop->timers, c->timer_id);
    c->timer_id = 0;
  }
  if (ms <= 0)
    return 0;
  return gc_timers_start(&loop->timers, gc_loop_now(loop), ms, 0,
                         conn_timer_fired, loop, h, &c->timer_id);
}

/* Shutdown: every accepted connection closes with 'reason', handshakes
 * are cut. */
struct close_all {
  struct gc_loop *loop;
  int reason;
};

static void close_one(uv_handle_t *h, void *arg) {
  struct close_all *ca = arg;
  struct gc_loop *loop = ca->loop;
  if (h->type != UV_TCP || uv_is_closing(h))
    return;
  for (size_t i = 0; i < loop->listener_count; i++)
    if (h == (uv_handle_t *)&loop->listeners[i]->tcp)
      return;
  struct gc_conn *c = h->data;
  if (c->state == GC_CONN_OPEN && ca->reason == GC_CLOSE_REASON_NORMAL)
    (void)gc_conn_close(loop, c->handle, GC_CLOSE_REASON_NORMAL);
  else if (c->state == GC_CONN_HANDSHAKE || ca->reason == GC_CLOSE_REASON_DROP)
    gc__conn_teardown(c); /* no app has seen it, or we are in a hurry */
}

void gc__conn_close_all(struct gc_loop *loop, int reason) {
  struct close_all ca = {loop, reason};
  uv_walk(&loop->uv, close_one, &ca);
}
