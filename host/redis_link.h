/* redis_link.h - the records of the channels' link to Redis, shared by
 * redis.c (the connections, messages in, life) and redis_pub.c
 * (publishing). Loop 0's only, but for the atomics. */
#ifndef GC_REDIS_LINK_H
#define GC_REDIS_LINK_H

#include <stdatomic.h>
#include <stdint.h>

#include <hiredis/async.h>

#include "internal.h"
#include "redis_url.h"

#define CHANNEL_MAX 1024                /* bytes of an app's channel name */
#define PENDING_MAX ((int64_t)64 << 20) /* bytes awaiting PUBLISH answers */
#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000

enum rc_state {
  RC_IDLE,       /* not connected: waiting for the retry (or stopped) */
  RC_RESOLVING,  /* uv_getaddrinfo of a host name */
  RC_CONNECTING, /* connect, AUTH/PING and PSUBSCRIBE in progress */
  RC_READY
};

struct gc_redis;

/* One of the two connections. */
struct rconn {
  struct gc_redis *r;
  const char *role; /* "publish" or "subscribe", for DEBUG lines */
  int subscriber;
  enum rc_state state;
  redisAsyncContext *ac; /* while CONNECTING or READY */
  uv_timer_t timer; /* the retry, the connect's bound, the answers' bound */
  uv_getaddrinfo_t gai;
  int gai_busy; /* 'gai' is in flight (a cancelled one may still run) */
  uint32_t backoff_ms;
  int hello_ok;          /* AUTH or PING answered */
  size_t subscribed;     /* PSUBSCRIBE confirmations */
  size_t outstanding;    /* PUBLISHes not answered yet */
  int64_t last_progress; /* when an answer last came */
};

/* An app whose adapter hears its channels. */
struct sub_app {
  struct gc_redis *r;
  int app_id;
  char *pattern;     /* gcs:<name, glob-escaped>:* */
  size_t prefix_len; /* of "gcs:<name>:" as channels carry it */
  char *prefix;
};

struct gc_redis {
  struct gc_server *s;
  struct gc_loop *loop; /* loop 0 */
  struct gc_redis_url url;
  char where[GC_REDIS_HOST_MAX + 16]; /* "HOST:PORT" for log lines */
  uint32_t timeout_ms;
  struct rconn pub, sub;
  struct sub_app *apps;
  size_t napps;
  _Atomic int up;           /* publishes are taken */
  _Atomic int stopped;      /* gc__redis_stop ran */
  _Atomic int64_t pending;  /* bytes of publishes not answered yet */
  _Atomic uint64_t refused; /* publishes refused in this outage */
  uint64_t lost; /* taken, then dropped or unanswered with the connection */
  int ever_up;
  int outage_logged;
  int64_t down_since;
  int timers_ready;
};

static inline int64_t gc__redis_now(const struct gc_redis *r) {
  return gc_loop_now(r->loop);
}

static inline void gc__redis_pending_sub(struct gc_redis *r, int64_t cost) {
  atomic_fetch_sub(&r->pending, cost);
}

static inline struct rconn *gc__redis_conn_of(const redisAsyncContext *ac) {
  return ac ? ac->data : NULL;
}

/* (Re)arms a connection's one timer (redis.c). */
void gc__redis_timer_arm(struct rconn *rc, uint64_t ms);

#endif
