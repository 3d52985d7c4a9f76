/* redis_glue.c - hiredis's async contexts on a libuv loop, ours rather
 * than hiredis's adapters/libuv.h: the one of Debian's hiredis 0.14
 * ignores a poll error (libuv reports POLLERR as status UV_EBADF and stops
 * the handle), so a refused connect or a reset would hang the connection
 * for ever. Ours lets hiredis find the error, as newer hiredis releases
 * do. Shared by the channels' link (redis.c) and the commands
 * (redis_cmd.c); and hiredis's replies as server.h's struct
 * gc_redis_reply (redisCommand's callbacks). */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <string.h>

#include <hiredis/async.h>
#include <hiredis/hiredis.h>

#include <game-carrier/server.h>

#include "alloc.h"
#include "redis_glue.h"

struct rc_events {
  redisAsyncContext *ac; /* NULL once hiredis let go of it */
  uv_poll_t poll;
  int events;
};

static void ev_poll(uv_poll_t *h, int status, int events) {
  struct rc_events *p = h->data;
  /* On an error libuv stopped the handle: hiredis reads or writes to find
   * out what it was and drops the connection. */
  int ev = status < 0 ? p->events : events;
  if (p->ac && (ev & UV_READABLE))
    redisAsyncHandleRead(p->ac);
  if (p->ac && (ev & UV_WRITABLE))
    redisAsyncHandleWrite(p->ac);
}

static void ev_set(struct rc_events *p, int events) {
  if (events == p->events)
    return; /* hiredis asks on every write: no epoll_ctl for nothing */
  p->events = events;
  if (events)
    (void)uv_poll_start(&p->poll, events, ev_poll);
  else
    (void)uv_poll_stop(&p->poll);
}

static void ev_add_read(void *d) {
  struct rc_events *p = d;
  ev_set(p, p->events | UV_READABLE);
}
static void ev_del_read(void *d) {
  struct rc_events *p = d;
  ev_set(p, p->events & ~UV_READABLE);
}
static void ev_add_write(void *d) {
  struct rc_events *p = d;
  ev_set(p, p->events | UV_WRITABLE);
}
static void ev_del_write(void *d) {
  struct rc_events *p = d;
  ev_set(p, p->events & ~UV_WRITABLE);
}

static void ev_closed(uv_handle_t *h) { gc_free(h->data); }

/* hiredis frees the context: the handle goes, before hiredis closes the
 * socket. */
static void ev_cleanup(void *d) {
  struct rc_events *p = d;
  p->ac = NULL;
  uv_close((uv_handle_t *)&p->poll, ev_closed);
}

int gc__redis_ev_attach(redisAsyncContext *ac, uv_loop_t *loop) {
  struct rc_events *p = gc_calloc(1, sizeof *p);
  if (!p)
    return ENOMEM;
  int rc = uv_poll_init(loop, &p->poll, ac->c.fd);
  if (rc) {
    gc_free(p);
    return -rc;
  }
  p->poll.data = p;
  p->ac = ac;
  ac->ev.data = p;
  ac->ev.addRead = ev_add_read;
  ac->ev.delRead = ev_del_read;
  ac->ev.addWrite = ev_add_write;
  ac->ev.delWrite = ev_del_write;
  ac->ev.cleanup = ev_cleanup;
  return 0;
}

int gc__redis_addr(const struct addrinfo *res, char *addr, size_t len) {
  addr[0] = '\0';
  if (!res)
    return EINVAL;
  const void *bin =
      res->ai_family == AF_INET6
          ? (const void *)&((struct sockaddr_in6 *)res->ai_addr)->sin6_addr
          : (const void *)&((struct sockaddr_in *)res->ai_addr)->sin_addr;
  if (!inet_ntop(res->ai_family, bin, addr, (socklen_t)len)) {
    addr[0] = '\0';
    return EINVAL;
  }
  return 0;
}

/* hiredis's reply as the public struct: arrays get element arrays of
 * their own (freed by reply_free). 0 or ENOMEM. */
int gc__redis_reply_convert(const redisReply *r, struct gc_redis_reply *out) {
  memset(out, 0, sizeof *out);
  switch (r->type) {
  case REDIS_REPLY_STRING: out->type = GC_REDIS_STRING; break;
  case REDIS_REPLY_STATUS: out->type = GC_REDIS_STATUS; break;
  case REDIS_REPLY_ERROR: out->type = GC_REDIS_ERROR; break;
  case REDIS_REPLY_INTEGER:
    out->type = GC_REDIS_INTEGER;
    out->integer = r->integer;
    return 0;
  case REDIS_REPLY_ARRAY: {
    out->type = GC_REDIS_ARRAY;
    if (r->elements == 0)
      return 0;
    struct gc_redis_reply *el = gc_calloc(r->elements, sizeof *el);
    if (!el)
      return ENOMEM;
    out->element = el;
    out->elements = r->elements;
    for (size_t i = 0; i < r->elements; i++)
      if (gc__redis_reply_convert(r->element[i], &el[i]) != 0)
        return ENOMEM;
    return 0;
  }
  default: out->type = GC_REDIS_NIL; return 0;
  }
  out->str = r->str ? r->str : "";
  out->len = r->str ? r->len : 0;
  return 0;
}

void gc__redis_reply_free(struct gc_redis_reply *r) {
  if (r->type != GC_REDIS_ARRAY || !r->element)
    return;
  struct gc_redis_reply *el = (struct gc_redis_reply *)r->element;
  for (size_t i = 0; i < r->elements; i++)
    gc__redis_reply_free(&el[i]);
  gc_free(el);
}
