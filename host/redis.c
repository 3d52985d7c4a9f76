/* redis.c - channels between hosts: the config's "redis" on loop 0 (the
 * link's connections and messages in; publishing is redis_pub.c, the
 * records redis_link.h, the libuv glue redis_glue.c).
 *
 * Two hiredis connections on loop 0's uv loop: one publishes (PUBLISH
 * gcs:<app>:<channel> data), one is subscribed (PSUBSCRIBE gcs:<app>:* for
 * each app whose adapter exports on_channel_message) and hands each
 * message to that adapter, on loop 0's thread. A publish from another
 * thread travels to loop 0 as a GC_MAIL_REDIS_PUB; one from loop 0's own
 * thread is issued at once. Every host, this one included, hears a message
 * from Redis: the one order Redis took them in is the order everywhere.
 *
 * The link is "up" while both connections are ready (connected, answered
 * AUTH or PING, and for the subscriber every PSUBSCRIBE confirmed); only
 * then are publishes taken (other threads read 'up', an atomic), else they
 * fail at once with ENOTCONN. A connection that fails (refused, closed,
 * no answer within timeout_ms) is retried after 100 ms, doubling to 5 s,
 * and its subscriptions are made again when it is back. One WARN line
 * when an outage begins, one NOTICE line when it is over; the retries in
 * between log at DEBUG.
 *
 * The libuv glue is ours (redis_glue.c, shared with the commands of
 * redis_cmd.c, which have a connection per worker). Names that are not
 * numeric addresses are
 * resolved with uv_getaddrinfo before each connect, never blocking loop 0.
 *
 * Why local delivery goes through Redis too: a host that delivered its
 * own messages at once and the others' later would show two players of
 * one channel on two hosts two different orders; through Redis every
 * state everywhere sees one order, at the price of a round trip. */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "mailbox.h"
#include "metrics.h"
#include "redis_glue.h"
#include "redis_link.h"
#include "redis_url.h"

/* ---- the link: up, down, one line each ----------------------------------- */

static int link_ready(const struct gc_redis *r) {
  return r->pub.state == RC_READY &&
         (r->napps == 0 || r->sub.state == RC_READY);
}

/* After a connection changed state; 'why' says what failed (NULL: it got
 * ready). Logs the start and the end of an outage, once each. */
static void link_update(struct gc_redis *r, struct rconn *rc, const char *why) {
  int ready = link_ready(r);
  if (ready) {
    if (atomic_load(&r->up))
      return;
    atomic_store(&r->up, 1);
    double secs = (double)(gc__redis_now(r) - r->down_since) / 1000.0;
    if (r->outage_logged && r->ever_up) {
      uint64_t refused = atomic_exchange(&r->refused, 0);
      gc_log(GCL_NOTICE,
             "redis %s: back after %.1f s: publishing again, subscriptions "
             "renewed (%llu publishes refused, %llu lost or unconfirmed)",
             r->where, secs, (unsigned long long)refused,
             (unsigned long long)r->lost);
    } else if (r->outage_logged) {
      uint64_t refused = atomic_exchange(&r->refused, 0);
      gc_log(GCL_NOTICE,
             "redis %s: connected after %.1f s: channels go through it (%zu "
             "app%s subscribed; %llu publishes refused before)",
             r->where, secs, r->napps, r->napps == 1 ? "" : "s",
             (unsigned long long)refused);
    } else {
      gc_log(GCL_NOTICE,
             "redis %s: connected: channels go through it (%zu app%s "
             "subscribed)",
             r->where, r->napps, r->napps == 1 ? "" : "s");
    }
    r->outage_logged = 0;
    r->ever_up = 1;
    r->lost = 0;
    return;
  }
  atomic_store(&r->up, 0);
  if (!why)
    return;
  if (r->outage_logged || atomic_load(&r->stopped)) {
    gc_log(GCL_DEBUG, "redis %s: %s connection: %s", r->where, rc->role, why);
    return;
  }
  r->outage_logged = 1;
  r->down_since = gc__redis_now(r);
  atomic_store(&r->refused, 0);
  if (r->ever_up)
    gc_log(GCL_WARN,
           "redis %s: connection lost (%s): publishes fail until it is back; "
           "reconnecting",
           r->where, why);
  else
    gc_log(GCL_WARN,
           "redis %s: cannot connect (%s): publishes fail until it answers; "
           "retrying",
           r->where, why);
}

/* ---- one connection ------------------------------------------------------ */

static void conn_timer(uv_timer_t *t);
static void conn_start(struct rconn *rc);

void gc__redis_timer_arm(struct rconn *rc, uint64_t ms) {
  (void)uv_timer_start(&rc->timer, conn_timer, ms, 0);
}

/* The connection failed: let go of its context ('free_ctx' 0 when hiredis
 * frees it itself, after the callback we are in), say why, retry later. */
static void conn_fail(struct rconn *rc, const char *why, int free_ctx) {
  struct gc_redis *r = rc->r;
  redisAsyncContext *ac = rc->ac;
  int was_ready = rc->state == RC_READY;
  rc->ac = NULL;
  rc->state = RC_IDLE;
  rc->outstanding = 0;
  rc->hello_ok = 0;
  rc->subscribed = 0;
  (void)uv_timer_stop(&rc->timer);
  char text[160];
  snprintf(text, sizeof text, "%s", why && *why ? why : "closed");
  /* Its callbacks still find 'rc' (ac->data), but no longer as rc->ac:
   * they only settle the accounts. */
  if (ac && free_ctx)
    redisAsyncFree(ac);
  if (atomic_load(&r->stopped))
    return;
  link_update(r, rc, text);
  if (was_ready)
    rc->backoff_ms = BACKOFF_MIN_MS;
  gc__redis_timer_arm(rc, rc->backoff_ms);
  rc->backoff_ms =
      rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2;
}

static void conn_ready(struct rconn *rc) {
  rc->state = RC_READY;
  rc->backoff_ms = BACKOFF_MIN_MS;
  rc->last_progress = gc__redis_now(rc->r);
  (void)uv_timer_stop(&rc->timer);
  gc_log(GCL_DEBUG, "redis %s: %s connection ready", rc->r->where, rc->role);
  link_update(rc->r, rc, NULL);
}

/* hiredis: the TCP connect finished (or failed: hiredis then frees the
 * context after this returns, without a disconnect callback). */
static void on_tcp_connect(const redisAsyncContext *ac, int status) {
  struct rconn *rc = gc__redis_conn_of(ac);
  if (!rc || rc->ac != ac)
    return;
  if (status != REDIS_OK)
    conn_fail(rc, ac->errstr, 0);
}

/* hiredis: a connected context ends (it is freed after this returns). */
static void on_tcp_disconnect(const redisAsyncContext *ac, int status) {
  struct rconn *rc = gc__redis_conn_of(ac);
  (void)status;
  if (!rc || rc->ac != ac)
    return;
  conn_fail(rc, ac->err ? ac->errstr : "closed by the server", 0);
}

static void maybe_ready(struct rconn *rc) {
  if (rc->state == RC_CONNECTING && rc->hello_ok &&
      (!rc->subscriber || rc->subscribed == rc->r->napps))
    conn_ready(rc);
}

/* The answer to AUTH or PING, the first command of each connection. */
static void on_hello(redisAsyncContext *ac, void *reply, void *priv) {
  struct rconn *rc = gc__redis_conn_of(ac);
  redisReply *rep = reply;
  (void)priv;
  if (!rc || rc->ac != ac || !rep)
    return;
  if (rep->type == REDIS_REPLY_ERROR) {
    conn_fail(rc, rep->str, 1); /* freed once this callback returns */
    return;
  }
  rc->hello_ok = 1;
  rc->last_progress = gc__redis_now(rc->r);
  maybe_ready(rc);
}


/* ---- messages in --------------------------------------------------------- */

static void deliver(struct sub_app *sa, const redisReply *chan,
                    const redisReply *data) {
  struct gc_server *s = sa->r->s;
  int phase = atomic_load(&s->phase);
  if (phase != GC_PHASE_RUNNING && phase != GC_PHASE_STOPPING)
    return;
  if (chan->type != REDIS_REPLY_STRING || data->type != REDIS_REPLY_STRING ||
      chan->len < sa->prefix_len ||
      memcmp(chan->str, sa->prefix, sa->prefix_len) != 0 ||
      chan->len - sa->prefix_len > CHANNEL_MAX ||
      memchr(chan->str, '\0', chan->len))
    return; /* not one of ours: no adapter could have published it */
  struct gc_app *app = &s->apps[sa->app_id];
  if (!app->started || !app->adapter->on_channel_message)
    return;
  GC__TIMED(gc__loop_current, app, GC_EV_CHANNEL_MESSAGE,
            app->adapter->on_channel_message(
                app->id, chan->str + sa->prefix_len, data->str, data->len));
}

/* Every reply of the subscriber's PSUBSCRIBE patterns ('priv' is the app). */
static void on_sub(redisAsyncContext *ac, void *reply, void *priv) {
  struct rconn *rc = gc__redis_conn_of(ac);
  redisReply *rep = reply;
  if (!rc || rc->ac != ac || !rep || rep->type != REDIS_REPLY_ARRAY ||
      rep->elements < 3 || rep->element[0]->type != REDIS_REPLY_STRING)
    return;
  const char *kind = rep->element[0]->str;
  if (strcasecmp(kind, "pmessage") == 0 && rep->elements == 4) {
    if (rc->state == RC_READY)
      deliver(priv, rep->element[2], rep->element[3]);
  } else if (strcasecmp(kind, "psubscribe") == 0) {
    rc->subscribed++;
    maybe_ready(rc);
  }
}

/* ---- connecting ---------------------------------------------------------- */

static void conn_connect(struct rconn *rc, const char *addr) {
  struct gc_redis *r = rc->r;
  redisAsyncContext *ac = redisAsyncConnect(addr, r->url.port);
  if (!ac) {
    conn_fail(rc, "out of memory", 0);
    return;
  }
  if (ac->err) {
    char why[160];
    snprintf(why, sizeof why, "%s", ac->errstr);
    redisAsyncFree(ac);
    conn_fail(rc, why, 0);
    return;
  }
  int err = gc__redis_ev_attach(ac, &r->loop->uv);
  if (err) {
    redisAsyncFree(ac);
    conn_fail(rc, strerror(err), 0);
    return;
  }
  ac->data = rc;
  rc->ac = ac;
  rc->state = RC_CONNECTING;
  (void)redisEnableKeepAlive(&ac->c);
  redisAsyncSetConnectCallback(ac, on_tcp_connect);
  redisAsyncSetDisconnectCallback(ac, on_tcp_disconnect);
  /* AUTH (or PING) first: a Redis that wants a password says so here. */
  int ok;
  if (r->url.has_password && r->url.user[0])
    ok = redisAsyncCommand(ac, on_hello, NULL, "AUTH %s %s", r->url.user,
                           r->url.password);
  else if (r->url.has_password)
    ok = redisAsyncCommand(ac, on_hello, NULL, "AUTH %s", r->url.password);
  else
    ok = redisAsyncCommand(ac, on_hello, NULL, "PING");
  for (size_t i = 0; ok == REDIS_OK && rc->subscriber && i < r->napps; i++)
    ok = redisAsyncCommand(ac, on_sub, &r->apps[i], "PSUBSCRIBE %s",
                           r->apps[i].pattern);
  if (ok != REDIS_OK) {
    conn_fail(rc, "cannot queue the first commands", 1);
    return;
  }
  if (r->timeout_ms)
    gc__redis_timer_arm(rc, r->timeout_ms);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  struct rconn *rc = req->data;
  char addr[INET6_ADDRSTRLEN] = "";
  if (status == 0)
    gc__redis_addr(res, addr, sizeof addr);
  uv_freeaddrinfo(res);
  rc->gai_busy = 0;
  if (atomic_load(&rc->r->stopped) || rc->state != RC_RESOLVING)
    return;
  rc->state = RC_IDLE;
  if (!addr[0]) {
    char why[GC_REDIS_HOST_MAX + 64];
    snprintf(why, sizeof why, "cannot resolve %s: %s", rc->r->url.host,
             status ? uv_strerror(status) : "no address");
    conn_fail(rc, why, 0);
    return;
  }
  conn_connect(rc, addr);
}

static void conn_start(struct rconn *rc) {
  struct gc_redis *r = rc->r;
  unsigned char bin[16];
  if (r->url.ipv6 || inet_pton(AF_INET, r->url.host, bin) == 1) {
    conn_connect(rc, r->url.host);
    return;
  }
  if (rc->gai_busy) { /* the last one, timed out, has not ended yet */
    conn_fail(rc, "still resolving the host name", 0);
    return;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  rc->gai.data = rc;
  rc->state = RC_RESOLVING;
  int err = uv_getaddrinfo(&r->loop->uv, &rc->gai, on_resolved, r->url.host,
                           NULL, &hints);
  rc->gai_busy = err == 0;
  if (err) {
    rc->state = RC_IDLE;
    conn_fail(rc, uv_strerror(err), 0);
    return;
  }
  if (r->timeout_ms)
    gc__redis_timer_arm(rc, r->timeout_ms);
}

/* The one timer of a connection: the retry (IDLE), the bound of a connect
 * (RESOLVING, CONNECTING) or of the answers to PUBLISH (READY). */
static void conn_timer(uv_timer_t *t) {
  struct rconn *rc = t->data;
  struct gc_redis *r = rc->r;
  char why[96];
  if (atomic_load(&r->stopped))
    return;
  switch (rc->state) {
  case RC_IDLE:
    conn_start(rc);
    return;
  case RC_RESOLVING:
    (void)uv_cancel((uv_req_t *)&rc->gai); /* its callback finds IDLE */
    rc->state = RC_IDLE;
    snprintf(why, sizeof why, "no address for it within %u ms", r->timeout_ms);
    conn_fail(rc, why, 0);
    return;
  case RC_CONNECTING:
    snprintf(why, sizeof why, "no answer within %u ms", r->timeout_ms);
    conn_fail(rc, why, 1);
    return;
  case RC_READY: {
    if (!rc->outstanding || !r->timeout_ms)
      return;
    int64_t idle = gc__redis_now(r) - rc->last_progress;
    if (idle < (int64_t)r->timeout_ms) {
      gc__redis_timer_arm(rc, (uint64_t)((int64_t)r->timeout_ms - idle));
      return;
    }
    snprintf(why, sizeof why, "no answer to PUBLISH within %u ms",
             r->timeout_ms);
    conn_fail(rc, why, 1);
    return;
  }
  }
}

/* ---- life ---------------------------------------------------------------- */

/* "gcs:<name>:*" with the glob's special characters of 'name' escaped. */
static int sub_app_init(struct sub_app *sa, struct gc_redis *r,
                        const struct gc_app *app) {
  const char *name = app->conf->name;
  size_t n = strlen(name);
  sa->r = r;
  sa->app_id = app->id;
  sa->prefix_len = 4 + n + 1;
  sa->prefix = gc_malloc(sa->prefix_len + 1);
  sa->pattern = gc_malloc(4 + 2 * n + 3);
  if (!sa->prefix || !sa->pattern)
    return ENOMEM;
  snprintf(sa->prefix, sa->prefix_len + 1, "gcs:%s:", name);
  char *p = sa->pattern;
  memcpy(p, "gcs:", 4);
  p += 4;
  for (size_t i = 0; i < n; i++) {
    if (strchr("*?[]\\", name[i]))
      *p++ = '\\';
    *p++ = name[i];
  }
  memcpy(p, ":*", 3);
  return 0;
}

static void redis_free(struct gc_redis *r) {
  for (size_t i = 0; i < r->napps; i++) {
    gc_free(r->apps[i].pattern);
    gc_free(r->apps[i].prefix);
  }
  gc_free(r->apps);
  gc_free(r);
}

int gc__redis_start(struct gc_loop *loop, char *err, size_t errlen) {
  struct gc_server *s = loop->server;
  if (!s->cfg->redis_url || s->redis)
    return 0;
  struct gc_redis *r = gc_calloc(1, sizeof *r);
  if (!r) {
    snprintf(err, errlen, "redis: out of memory");
    return ENOMEM;
  }
  char why[192];
  if (gc_redis_url_parse(s->cfg->redis_url, &r->url, why, sizeof why) != 0) {
    snprintf(err, errlen, "redis.url: %s", why); /* validated: cannot be */
    gc_free(r);
    return EINVAL;
  }
  r->s = s;
  r->loop = loop;
  r->timeout_ms = s->cfg->redis_timeout_ms;
  snprintf(r->where, sizeof r->where, r->url.ipv6 ? "[%s]:%d" : "%s:%d",
           r->url.host, r->url.port);
  for (size_t i = 0; i < s->app_count; i++)
    r->napps += s->apps[i].adapter->on_channel_message != NULL;
  if (r->napps && !(r->apps = gc_calloc(r->napps, sizeof *r->apps))) {
    redis_free(r);
    snprintf(err, errlen, "redis: out of memory");
    return ENOMEM;
  }
  for (size_t i = 0, k = 0; i < s->app_count; i++) {
    if (!s->apps[i].adapter->on_channel_message)
      continue;
    if (sub_app_init(&r->apps[k++], r, &s->apps[i]) != 0) {
      r->napps = k;
      redis_free(r);
      snprintf(err, errlen, "redis: out of memory");
      return ENOMEM;
    }
  }
  struct rconn *conns[2] = {&r->pub, &r->sub};
  for (int i = 0; i < 2; i++) {
    struct rconn *rc = conns[i];
    rc->r = r;
    rc->subscriber = i == 1;
    rc->role = i ? "subscribe" : "publish";
    rc->backoff_ms = BACKOFF_MIN_MS;
    (void)uv_timer_init(&loop->uv, &rc->timer); /* cannot fail */
    rc->timer.data = rc;
  }
  r->timers_ready = 1;
  s->redis = r;
  gc_log(GCL_INFO, "redis %s: connecting (for the channels of %zu app%s)",
         r->where, r->napps, r->napps == 1 ? "" : "s");
  conn_start(&r->pub);
  if (r->napps)
    conn_start(&r->sub);
  return 0;
}

static void timer_closed(uv_handle_t *h) { (void)h; }

void gc__redis_stop(struct gc_server *s) {
  struct gc_redis *r = s ? s->redis : NULL;
  if (!r || atomic_exchange(&r->stopped, 1))
    return;
  atomic_store(&r->up, 0);
  struct rconn *conns[2] = {&r->pub, &r->sub};
  for (int i = 0; i < 2; i++) {
    struct rconn *rc = conns[i];
    if (rc->state == RC_RESOLVING)
      (void)uv_cancel((uv_req_t *)&rc->gai); /* runs, then finds 'stopped' */
    if (r->timers_ready)
      uv_close((uv_handle_t *)&rc->timer, timer_closed);
    redisAsyncContext *ac = rc->ac;
    rc->ac = NULL;
    rc->state = RC_IDLE;
    if (ac)
      redisAsyncFree(ac); /* the PUBLISH callbacks run with NULL */
  }
  r->timers_ready = 0;
  gc_log(GCL_INFO, "redis %s: disconnected", r->where);
}

void gc__redis_free(struct gc_server *s) {
  if (!s || !s->redis)
    return;
  gc__redis_stop(s);
  redis_free(s->redis);
  s->redis = NULL;
}
