/* conn_api.c - the connection calls of the core API (send, broadcast,
 * close, timers) and the close of every connection at shutdown. They only
 * queue and mark the connection dirty: conn.c writes, once per loop turn. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "link.h"
#include "log.h"
#include "metrics.h"
#include "utf8.h"

/* ---- the API ------------------------------------------------------------- */

struct gc_conn *gc__conn_get(struct gc_loop *loop, intptr_t h) {
  return loop ? gc_handle_table_get(&loop->conns, h) : NULL;
}

/* ---- frame types (API 1.2) ------------------------------------------------ */

int gc__msg_flags_check(int flags) {
  return flags == GC_MESSAGE_DEFAULT || flags == GC_MESSAGE_BINARY ||
                 flags == GC_MESSAGE_TEXT
             ? 0
             : EINVAL;
}

int gc__msg_text_check(int flags, const void *data, size_t len) {
  if (gc__msg_flags_check(flags))
    return EINVAL;
  if (flags == GC_MESSAGE_TEXT && len && !gc_utf8_valid(data, len))
    return EILSEQ;
  return 0;
}

int gc__server_any_text(const struct gc_server *s) {
  for (size_t i = 0; s->apps && i < s->app_count; i++)
    if (s->apps[i].conf && s->apps[i].conf->message_text)
      return 1;
  return 0;
}

/* Does a message with 'flags' go to 'c' as a text frame? */
static int conn_text(const struct gc_conn *c, int flags) {
  return flags == GC_MESSAGE_TEXT ||
         (flags == GC_MESSAGE_DEFAULT && c->app && c->app->conf->message_text);
}

int gc_conn_send(struct gc_loop *loop, intptr_t h, const void *data, size_t len,
                 intptr_t cookie, int flags) {
  struct gc_conn *c = gc__conn_get(loop, h);
  if (!c || c->state != GC_CONN_OPEN || (!data && len) ||
      gc__msg_flags_check(flags))
    return EINVAL;
  /* Before the room check, which may drop the client: EILSEQ changes
   * nothing. */
  int text = conn_text(c, flags);
  if (text && len && !gc_utf8_valid(data, len))
    return EILSEQ;
  int rc = gc__conn_queue_room(c, len);
  if (!rc)
    rc = gc_send_queue_push_frame_as(&c->q, data, len, cookie, text);
  if (rc)
    return rc;
  gc__conn_queued(c, len);
  return 0;
}

int gc__conn_broadcast_shared(struct gc_loop *loop, const intptr_t *handles,
                              size_t count, struct gc_shared *sh,
                              intptr_t cookie, int flags, size_t *queued) {
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
    /* A receiver whose app sends text skips a payload that is not UTF-8
     * (GC_MESSAGE_DEFAULT; with TEXT the caller refused it already). */
    int text = c ? conn_text(c, flags) : 0;
    if (!c || c->state != GC_CONN_OPEN || (text && !sh->utf8_ok) ||
        gc__conn_queue_room(c, len))
      continue;
    if (!(msgs[i] = gc_send_queue_msg_shared(c->q.pool, sh, cookie))) {
      rc = ENOMEM;
      break;
    }
    if (text)
      gc_send_queue_msg_text(msgs[i]);
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
                      const void *data, size_t len, intptr_t cookie, int flags,
                      size_t *queued) {
  if (queued)
    *queued = 0;
  if (!loop || (!handles && count) || (!data && len) ||
      gc__msg_flags_check(flags))
    return EINVAL;
  if (len > loop->server->cfg->max_output_msg_size)
    return EMSGSIZE;
  /* Checked once for every receiver, and only when one may get text. */
  int ok = 1;
  if (len && (flags == GC_MESSAGE_TEXT ||
              (flags == GC_MESSAGE_DEFAULT && gc__server_any_text(loop->server))))
    ok = gc_utf8_valid(data, len);
  if (!ok && flags == GC_MESSAGE_TEXT)
    return EILSEQ;
  struct gc_shared *sh = gc_shared_new(data, len);
  if (!sh)
    return ENOMEM;
  sh->utf8_ok = (uint8_t)ok;
  gc_shared_ref(sh); /* ours, until the loop is done */
  int rc = gc__conn_broadcast_shared(loop, handles, count, sh, cookie, flags,
                                     queued);
  gc_shared_release(sh);
  return rc;
}

/* ---- closing and refusing (API 1.2) ---------------------------------------- */

int gc__close_args_check(int reason, int code, const char *text) {
  if (reason != GC_CLOSE_REASON_NORMAL && reason != GC_CLOSE_REASON_DROP)
    return EINVAL;
  /* RFC 6455 7.4: 1000 is the one a server picks among the registered
   * codes; 3000-3999 are registered by libraries, 4000-4999 private. */
  if (code != 0 && code != 1000 && (code < 3000 || code > 4999))
    return EINVAL;
  if (text) {
    size_t n = strlen(text);
    if (n > GC_CLOSE_TEXT_MAX || !gc_utf8_valid((const uint8_t *)text, n))
      return EINVAL;
  }
  return 0;
}

int gc_conn_close(struct gc_loop *loop, intptr_t h, int reason) {
  return gc_conn_close_ex(loop, h, reason, 0, NULL);
}

int gc_conn_close_ex(struct gc_loop *loop, intptr_t h, int reason, int code,
                     const char *text) {
  struct gc_conn *c = gc__conn_get(loop, h);
  if (!c || c->state != GC_CONN_OPEN || gc__close_args_check(reason, code, text))
    return EINVAL;
  if (reason == GC_CLOSE_REASON_DROP) {
    gc__conn_closing(c, GC_CLOSED_BY_DROP, 1006);
    gc__conn_teardown(c); /* no close frame: code and text are not sent */
    return 0;
  }
  char *copy = NULL;
  if (text && *text && !(copy = gc_strdup(text)))
    return ENOMEM;
  c->close_code = (uint16_t)code; /* conn_step sends them after the queue */
  gc__conn_closing(c, GC_CLOSED_BY_SERVER, code ? code : 1000);
  c->close_text = copy;
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

/* A body line of an HTTP answer: 1..GC_REFUSE_TEXT_MAX bytes of UTF-8
 * without control characters (no CR or LF can end the line early). */
static int refuse_text_ok(const char *text) {
  size_t n = strlen(text);
  if (n == 0 || n > GC_REFUSE_TEXT_MAX || !gc_utf8_valid((const uint8_t *)text, n))
    return 0;
  for (size_t i = 0; i < n; i++)
    if ((unsigned char)text[i] < 0x20 || text[i] == 0x7f)
      return 0;
  return 1;
}

int gc_conn_refuse(struct gc_loop *loop, intptr_t h, int status,
                   const char *text) {
  struct gc_conn *c = gc__conn_get(loop, h);
  if (!c || !c->in_connect || status < 400 || status > 599 ||
      (text && !refuse_text_ok(text)))
    return EINVAL;
  char *copy = NULL;
  if (text && !(copy = gc_strdup(text)))
    return ENOMEM;
  gc_free(c->refuse_text);
  c->refuse_text = copy;
  c->refuse_status = (uint16_t)status;
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
    GC__TIMED(loop, c->app, GC_EV_TIMER, a->on_timer(c->user));
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
 * are cut. Every connection is in the loop's table from accept on (the
 * loop's other TCP handles, listeners and the admin's, are not). */
void gc__conn_close_all(struct gc_loop *loop, int reason) {
  gc__links_close_all(loop, reason);
  struct gc_handle_table *t = &loop->conns;
  for (uint32_t i = 0; i < t->cap; i++) {
    struct gc_conn *c = gc_handle_table_at(t, i);
    if (!c || c->state == GC_CONN_DEAD)
      continue;
    if (c->state == GC_CONN_OPEN && reason == GC_CLOSE_REASON_NORMAL)
      (void)gc_conn_close(loop, c->handle, GC_CLOSE_REASON_NORMAL);
    else if (c->state == GC_CONN_HANDSHAKE || reason == GC_CLOSE_REASON_DROP)
      gc__conn_teardown(c); /* no app has seen it, or we are in a hurry */
  }
}
