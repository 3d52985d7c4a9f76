/* redis_cmd.c - redisCommand (API 1.4): Redis commands from the workers.
 *
 * Each worker loop that sends a command gets its own connection to the
 * config's "redis" (made at its first command, on its own uv loop), so a
 * command and its answer never cross threads: no mailbox, no lock, and
 * the callback runs on the caller's loop by construction. Redis is
 * single-threaded anyway; a few connections more cost it nothing, and one
 * shared connection would put every worker's commands through loop 0 and
 * two mailbox hops. Concurrent commands of a worker are pipelined on its
 * connection (hiredis queues their callbacks in order).
 *
 * A connection says AUTH (or PING), then SELECT for a database other than
 * 0, before the commands sent meanwhile. A command unanswered for
 * timeout_ms, a reset or a refusal fails the connection: the commands in
 * flight are answered with an error, and from then until it is back every
 * call fails at once (ENOTCONN), while it retries after 100 ms, doubling
 * to 5 s. One WARN line when commands start failing, one NOTICE line when
 * they work again (for the process, not per worker). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "redis_glue.h"
#include "redis_url.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define RESOLVE_QUEUE_MAX 10000 /* commands held while the name resolves */

enum { C_IDLE, C_RESOLVING, C_CONNECTING, C_READY };

/* A command on its way: hiredis's privdata, or held while resolving. */
struct cmd_req {
  struct gc_redis_cmd *rc;
  GCRedisCallback cb;
  GCT_INTPTR user;
  char *text; /* the formatted command while held, else NULL */
  int len;
  struct cmd_req *next;
};

struct gc_redis_cmd {
  struct gc_loop *loop;
  struct gc_redis_url url;
  char where[GC_REDIS_HOST_MAX + 16];
  uint32_t timeout_ms;
  int state;
  int down; /* failed and not back yet: calls fail at once */
  int stopped;
  int refs; /* the timer's close and a getaddrinfo in flight */
  redisAsyncContext *ac;
  uv_timer_t timer; /* the retry, the connect's bound, the answers' bound */
  uv_getaddrinfo_t gai;
  int gai_busy;
  uint32_t backoff_ms;
  size_t outstanding;
  int64_t last_progress;
  int fail_err;
  char fail_text[160];
  struct cmd_req *held, *held_tail; /* while resolving */
  size_t nheld;
};

/* Commands fail somewhere in the process: the outage is told once. */
static _Atomic int outage;

static int64_t now_ms(const struct gc_redis_cmd *rc) {
  return (int64_t)uv_now(&rc->loop->uv);
}

static void cmd_timer(uv_timer_t *t);
static void cmd_start(struct gc_redis_cmd *rc);

static void timer_arm(struct gc_redis_cmd *rc, uint64_t ms) {
  (void)uv_timer_start(&rc->timer, cmd_timer, ms, 0);
}

/* ---- answers -------------------------------------------------------------- */

static void answer_error(struct cmd_req *q, int err, const char *text) {
  q->cb(q->user, err, text, NULL);
  if (q->text)
    redisFreeCommand(q->text);
  gc_free(q);
}

/* hiredis: a command's reply, or NULL when its connection went (then the
 * reason of cmd_fail). */
static void on_reply(redisAsyncContext *ac, void *reply, void *priv) {
  struct cmd_req *q = priv;
  struct gc_redis_cmd *rc = q->rc;
  if (!reply) {
    answer_error(q, rc->fail_err ? rc->fail_err : ECONNRESET,
                 rc->fail_text[0] ? rc->fail_text : "connection lost");
    return;
  }
  if (rc->ac == ac && rc->outstanding > 0)
    rc->outstanding--;
  rc->last_progress = now_ms(rc);
  struct gc_redis_reply out;
  if (gc__redis_reply_convert(reply, &out) != 0) {
    gc__redis_reply_free(&out);
    answer_error(q, ENOMEM, "out of memory");
    return;
  }
  q->cb(q->user, 0, NULL, &out);
  gc__redis_reply_free(&out);
  gc_free(q);
}

/* ---- the connection --------------------------------------------------------- */

/* Fails what waits for a name (never inside redisCommand: on the loop). */
static void held_fail(struct gc_redis_cmd *rc) {
  struct cmd_req *q = rc->held;
  rc->held = rc->held_tail = NULL;
  rc->nheld = 0;
  while (q) {
    struct cmd_req *next = q->next;
    answer_error(q, rc->fail_err, rc->fail_text);
    q = next;
  }
}

/* The connection failed: answers what was in flight, says so once per
 * outage, retries later. 'free_ctx' 0 when hiredis frees it itself. */
static void cmd_fail(struct gc_redis_cmd *rc, int err, const char *why,
                     int free_ctx) {
  redisAsyncContext *ac = rc->ac;
  int was_ready = rc->state == C_READY;
  rc->ac = NULL;
  rc->state = C_IDLE;
  rc->outstanding = 0;
  rc->fail_err = err;
  snprintf(rc->fail_text, sizeof rc->fail_text, "%s",
           why && *why ? why : "closed");
  (void)uv_timer_stop(&rc->timer);
  if (!rc->down) {
    rc->down = 1;
    if (!atomic_exchange(&outage, 1))
      gc_log(GCL_WARN,
             "redis %s: commands fail: %s (gc.redis answers nil, err until "
             "it is back)",
             rc->where, rc->fail_text);
  } else {
    gc_log(GCL_DEBUG, "redis %s (worker %d): still down: %s", rc->where,
           rc->loop->id, rc->fail_text);
  }
  if (ac && free_ctx)
    redisAsyncFree(ac); /* the commands in flight are answered now */
  held_fail(rc);
  if (rc->stopped)
    return;
  if (was_ready)
    rc->backoff_ms = BACKOFF_MIN_MS;
  timer_arm(rc, rc->backoff_ms);
  rc->backoff_ms =
      rc->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : rc->backoff_ms * 2;
}

static struct gc_redis_cmd *cmd_of(const redisAsyncContext *ac) {
  return ac ? ac->data : NULL;
}

static void on_tcp_connect(const redisAsyncContext *ac, int status) {
  struct gc_redis_cmd *rc = cmd_of(ac);
  if (rc && rc->ac == ac && status != REDIS_OK)
    cmd_fail(rc, ECONNREFUSED, ac->errstr, 0);
}

static void on_tcp_disconnect(const redisAsyncContext *ac, int status) {
  struct gc_redis_cmd *rc = cmd_of(ac);
  (void)status;
  if (rc && rc->ac == ac)
    cmd_fail(rc, ECONNRESET, ac->err ? ac->errstr : "closed by the server", 0);
}

/* The answer to AUTH/PING, then SELECT: the last one makes it ready. */
static void on_hello(redisAsyncContext *ac, void *reply, void *priv) {
  struct gc_redis_cmd *rc = cmd_of(ac);
  redisReply *rep = reply;
  if (!rc || rc->ac != ac || !rep)
    return;
  if (rep->type == REDIS_REPLY_ERROR) {
    cmd_fail(rc, ECONNREFUSED, rep->str, 1);
    return;
  }
  rc->last_progress = now_ms(rc);
  if (!priv) /* not the last one */
    return;
  rc->state = C_READY;
  rc->backoff_ms = BACKOFF_MIN_MS;
  if (!rc->outstanding)
    (void)uv_timer_stop(&rc->timer);
  if (rc->down) {
    rc->down = 0;
    if (atomic_exchange(&outage, 0))
      gc_log(GCL_NOTICE, "redis %s: commands work again", rc->where);
  }
}

static void cmd_connect(struct gc_redis_cmd *rc, const char *addr) {
  redisAsyncContext *ac = redisAsyncConnect(addr, rc->url.port);
  if (!ac) {
    cmd_fail(rc, ENOMEM, "out of memory", 0);
    return;
  }
  if (ac->err) {
    char why[160];
    snprintf(why, sizeof why, "%s", ac->errstr);
    redisAsyncFree(ac);
    cmd_fail(rc, ECONNREFUSED, why, 0);
    return;
  }
  int err = gc__redis_ev_attach(ac, &rc->loop->uv);
  if (err) {
    redisAsyncFree(ac);
    cmd_fail(rc, err, strerror(err), 0);
    return;
  }
  ac->data = rc;
  rc->ac = ac;
  rc->state = C_CONNECTING;
  (void)redisEnableKeepAlive(&ac->c);
  redisAsyncSetConnectCallback(ac, on_tcp_connect);
  redisAsyncSetDisconnectCallback(ac, on_tcp_disconnect);
  void *last = rc->url.db ? NULL : rc; /* non-NULL: the last hello */
  int ok;
  if (rc->url.has_password && rc->url.user[0])
    ok = redisAsyncCommand(ac, on_hello, last, "AUTH %s %s", rc->url.user,
                           rc->url.password);
  else if (rc->url.has_password)
    ok = redisAsyncCommand(ac, on_hello, last, "AUTH %s", rc->url.password);
  else
    ok = redisAsyncCommand(ac, on_hello, last, "PING");
  if (ok == REDIS_OK && rc->url.db)
    ok = redisAsyncCommand(ac, on_hello, rc, "SELECT %d", rc->url.db);
  /* What was sent while the name resolved, in order, after the hello. */
  while (ok == REDIS_OK && rc->held) {
    struct cmd_req *q = rc->held;
    rc->held = q->next;
    rc->nheld--;
    q->next = NULL;
    ok = redisAsyncFormattedCommand(ac, on_reply, q, q->text, (size_t)q->len);
    redisFreeCommand(q->text);
    q->text = NULL;
    if (ok == REDIS_OK)
      rc->outstanding++;
    else
      answer_error(q, ENOMEM, "cannot queue the command");
  }
  if (!rc->held)
    rc->held_tail = NULL;
  if (ok != REDIS_OK) {
    cmd_fail(rc, ENOMEM, "cannot queue the first commands", 1);
    return;
  }
  rc->last_progress = now_ms(rc);
  if (rc->timeout_ms)
    timer_arm(rc, rc->timeout_ms);
}

static void cmd_free(struct gc_redis_cmd *rc) {
  if (--rc->refs == 0)
    gc_free(rc);
}

static void on_resolved(uv_getaddrinfo_t *req, int status,
                        struct addrinfo *res) {
  struct gc_redis_cmd *rc = req->data;
  char addr[64] = "";
  if (status == 0)
    gc__redis_addr(res, addr, sizeof addr);
  uv_freeaddrinfo(res);
  rc->gai_busy = 0;
  if (rc->stopped) {
    cmd_free(rc);
    return;
  }
  rc->refs--;
  if (rc->state != C_RESOLVING)
    return;
  rc->state = C_IDLE;
  if (!addr[0]) {
    char why[GC_REDIS_HOST_MAX + 64];
    snprintf(why, sizeof why, "cannot resolve %s: %s", rc->url.host,
             status ? uv_strerror(status) : "no address");
    cmd_fail(rc, EHOSTUNREACH, why, 0);
    return;
  }
  cmd_connect(rc, addr);
}

static void cmd_start(struct gc_redis_cmd *rc) {
  unsigned char bin[16];
  if (rc->url.ipv6 || inet_pton(AF_INET, rc->url.host, bin) == 1) {
    cmd_connect(rc, rc->url.host);
    return;
  }
  if (rc->gai_busy) {
    cmd_fail(rc, ETIMEDOUT, "still resolving the host name", 0);
    return;
  }
  struct addrinfo hints = {.ai_socktype = SOCK_STREAM};
  rc->gai.data = rc;
  rc->state = C_RESOLVING;
  int err = uv_getaddrinfo(&rc->loop->uv, &rc->gai, on_resolved, rc->url.host,
                           NULL, &hints);
  if (err) {
    rc->state = C_IDLE;
    cmd_fail(rc, EHOSTUNREACH, uv_strerror(err), 0);
    return;
  }
  rc->gai_busy = 1;
  rc->refs++;
  if (rc->timeout_ms)
    timer_arm(rc, rc->timeout_ms);
}

/* The one timer: the retry (IDLE), a connect's bound, the answers'. */
static void cmd_timer(uv_timer_t *t) {
  struct gc_redis_cmd *rc = t->data;
  char why[96];
  if (rc->stopped)
    return;
  switch (rc->state) {
  case C_IDLE:
    cmd_start(rc);
    return;
  case C_RESOLVING:
    (void)uv_cancel((uv_req_t *)&rc->gai);
    rc->state = C_IDLE;
    snprintf(why, sizeof why, "no address within %u ms", rc->timeout_ms);
    cmd_fail(rc, ETIMEDOUT, why, 0);
    return;
  case C_CONNECTING:
  case C_READY: {
    if (rc->state == C_READY && (!rc->outstanding || !rc->timeout_ms))
      return;
    int64_t idle = now_ms(rc) - rc->last_progress;
    if (idle < (int64_t)rc->timeout_ms) {
      timer_arm(rc, (uint64_t)((int64_t)rc->timeout_ms - idle));
      return;
    }
    snprintf(why, sizeof why, "timeout (no answer within %u ms)",
             rc->timeout_ms);
    cmd_fail(rc, ETIMEDOUT, why, 1);
    return;
  }
  }
}

/* ---- the API ------------------------------------------------------------ */

static struct gc_redis_cmd *cmd_new(struct gc_loop *loop, const char *url,
                                    uint32_t timeout_ms) {
  struct gc_redis_cmd *rc = gc_calloc(1, sizeof *rc);
  if (!rc)
    return NULL;
  char why[192];
  if (gc_redis_url_parse(url, &rc->url, why, sizeof why) != 0) {
    gc_free(rc); /* validated with the config: cannot be */
    return NULL;
  }
  rc->loop = loop;
  rc->timeout_ms = timeout_ms;
  rc->backoff_ms = BACKOFF_MIN_MS;
  rc->refs = 1; /* the timer's */
  snprintf(rc->where, sizeof rc->where, rc->url.ipv6 ? "[%s]:%d" : "%s:%d",
           rc->url.host, rc->url.port);
  (void)uv_timer_init(&loop->uv, &rc->timer);
  rc->timer.data = rc;
  return rc;
}

int gc__redis_command(struct gc_server *s, int argc, const char *const *argv,
                      const size_t *argvlen, GCRedisCallback cb,
                      intptr_t user) {
  if (!s)
    return EINVAL;
  if (!s->cfg || !s->cfg->redis_url)
    return ENOSYS;
  struct gc_loop *loop = gc__loop_current;
  if (!loop || loop->server != s || argc < 1 || !argv || !argvlen || !cb)
    return EINVAL;
  struct gc_redis_cmd *rc = loop->redis_cmd;
  if (!rc) {
    rc = cmd_new(loop, s->cfg->redis_url, s->cfg->redis_timeout_ms);
    if (!rc)
      return ENOMEM;
    loop->redis_cmd = rc;
    cmd_start(rc); /* fails later, on the loop, if it fails */
  }
  if (rc->stopped)
    return ESHUTDOWN;
  if (rc->down || rc->state == C_IDLE)
    return ENOTCONN;
  struct cmd_req *q = gc_calloc(1, sizeof *q);
  if (!q)
    return ENOMEM;
  q->rc = rc;
  q->cb = cb;
  q->user = user;
  char *text = NULL;
  int len = redisFormatCommandArgv(&text, argc, (const char **)argv, argvlen);
  if (len < 0 || !text) {
    gc_free(q);
    return ENOMEM;
  }
  if (rc->state == C_RESOLVING) { /* sent once connected */
    if (rc->nheld >= RESOLVE_QUEUE_MAX) {
      redisFreeCommand(text);
      gc_free(q);
      return EAGAIN;
    }
    q->text = text;
    q->len = len;
    if (rc->held_tail)
      rc->held_tail->next = q;
    else
      rc->held = q;
    rc->held_tail = q;
    rc->nheld++;
    return 0;
  }
  int ok = redisAsyncFormattedCommand(rc->ac, on_reply, q, text, (size_t)len);
  redisFreeCommand(text);
  if (ok != REDIS_OK) {
    gc_free(q);
    return ENOMEM;
  }
  if (rc->outstanding++ == 0) {
    if (rc->state == C_READY)
      rc->last_progress = now_ms(rc);
    if (rc->timeout_ms && !uv_is_active((uv_handle_t *)&rc->timer))
      timer_arm(rc, rc->timeout_ms);
  }
  return 0;
}

static void timer_closed(uv_handle_t *h) { cmd_free(h->data); }

void gc__redis_cmd_stop(struct gc_loop *loop) {
  struct gc_redis_cmd *rc = loop->redis_cmd;
  if (!rc)
    return;
  loop->redis_cmd = NULL;
  rc->stopped = 1;
  rc->fail_err = ECANCELED;
  snprintf(rc->fail_text, sizeof rc->fail_text, "host shutting down");
  if (rc->gai_busy)
    (void)uv_cancel((uv_req_t *)&rc->gai); /* on_resolved frees its share */
  redisAsyncContext *ac = rc->ac;
  rc->ac = NULL;
  rc->state = C_IDLE;
  if (ac)
    redisAsyncFree(ac); /* the commands in flight: ECANCELED */
  held_fail(rc);
  uv_close((uv_handle_t *)&rc->timer, timer_closed);
}
