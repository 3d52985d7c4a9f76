/* redis_pub.c - channelPublish (API 1.3): PUBLISH gcs:<app>:<channel> on
 * the link's publishing connection (redis.c), from any thread: a publish
 * from another thread travels to loop 0 as a GC_MAIL_REDIS_PUB, one from
 * loop 0's own thread is issued at once. Taken only while the link is up
 * (else ENOTCONN at once), at most PENDING_MAX bytes awaiting answers. */
#include <errno.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "log.h"
#include "mailbox.h"
#include "redis_link.h"

/* The answer to a PUBLISH ('priv' is its cost in bytes); NULL when its
 * connection went first (it may or may not have reached Redis). */
static void on_published(redisAsyncContext *ac, void *reply, void *priv) {
  struct rconn *rc = gc__redis_conn_of(ac);
  redisReply *rep = reply;
  if (!rc)
    return;
  gc__redis_pending_sub(rc->r, (int64_t)(intptr_t)priv);
  if (!rep) {
    rc->r->lost++;
    return;
  }
  if (rc->ac != ac)
    return;
  if (rc->outstanding)
    rc->outstanding--;
  rc->last_progress = gc__redis_now(rc->r);
  if (rep->type == REDIS_REPLY_ERROR)
    gc_log(GCL_WARN, "redis %s: PUBLISH: %s", rc->r->where, rep->str);
}

/* ---- publishing ---------------------------------------------------------- */

int gc__redis_publish(struct gc_server *s, int app_id, const char *channel,
                      const void *data, size_t len) {
  struct gc_redis *r = s ? s->redis : NULL;
  if (!r)
    return s ? ENOSYS : EINVAL; /* first: see server.h */
  if (app_id < 0 || (size_t)app_id >= s->app_count || !channel ||
      (!data && len))
    return EINVAL;
  size_t chlen = strnlen(channel, CHANNEL_MAX + 1);
  if (chlen > CHANNEL_MAX)
    return EINVAL;
  if (atomic_load(&r->stopped))
    return ESHUTDOWN;
  if (!atomic_load(&r->up)) {
    atomic_fetch_add(&r->refused, 1);
    return ENOTCONN;
  }
  const char *name = s->apps[app_id].conf->name;
  size_t keylen = 4 + strlen(name) + 1 + chlen; /* gcs:<name>:<channel> */
  if (len > (size_t)PENDING_MAX * 8)
    return EMSGSIZE; /* past Redis's 512 MB bulk strings */
  int64_t cost = (int64_t)(keylen + len);
  int64_t pend = atomic_load(&r->pending);
  if (pend > 0 && pend + cost > PENDING_MAX)
    return EAGAIN;
  struct gc_mail *m = gc_mail_new(GC_MAIL_REDIS_PUB, keylen + len);
  if (!m)
    return ENOMEM;
  char *key = (char *)m->data;
  memcpy(key, "gcs:", 4);
  memcpy(key + 4, name, keylen - 5 - chlen);
  key[keylen - 1 - chlen] = ':';
  memcpy(key + keylen - chlen, channel, chlen);
  if (len)
    memcpy(m->data + keylen, data, len);
  m->arg = (int64_t)keylen;
  m->len = keylen + len;
  atomic_fetch_add(&r->pending, cost);
  struct gc_loop *first = s->loops[0];
  if (gc__loop_current == first) { /* loop 0's thread: at once */
    gc__redis_publish_mail(first, m);
    gc_mail_free(m);
    return 0;
  }
  if (gc_mail_post(first, m) != 0) { /* 'm' is freed */
    gc__redis_pending_sub(r, cost);
    return ESHUTDOWN;
  }
  return 0;
}

void gc__redis_publish_mail(struct gc_loop *loop, struct gc_mail *m) {
  struct gc_redis *r = loop->server->redis;
  if (!r)
    return;
  size_t keylen = (size_t)m->arg;
  int64_t cost = (int64_t)m->len;
  struct rconn *rc = &r->pub;
  if (atomic_load(&r->stopped) || rc->state != RC_READY) {
    gc__redis_pending_sub(r, cost); /* it went down after the caller's check */
    r->lost++;
    return;
  }
  const char *argv[3] = {"PUBLISH", (const char *)m->data,
                         (const char *)m->data + keylen};
  size_t lens[3] = {7, keylen, m->len - keylen};
  if (redisAsyncCommandArgv(rc->ac, on_published, (void *)(intptr_t)cost, 3,
                            argv, lens) != REDIS_OK) {
    gc__redis_pending_sub(r, cost);
    r->lost++;
    return;
  }
  if (rc->outstanding++ == 0) {
    rc->last_progress = gc__redis_now(r);
    if (r->timeout_ms && !uv_is_active((uv_handle_t *)&rc->timer))
      gc__redis_timer_arm(rc, r->timeout_ms);
  }
}

