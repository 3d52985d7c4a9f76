/* mailbox.h - work handed to a worker loop by other threads.
 *
 * Every call that targets another loop's connection or timer, every
 * WorkerPost, a connection handed to its owner and the steps of the
 * shutdown travel as one 'struct gc_mail'. Mails from one thread to one
 * loop run in the order posted; the owner runs them on its own thread,
 * once per loop turn (and from gc.testing's pump). */
#ifndef GC_MAILBOX_H
#define GC_MAILBOX_H

#include <stddef.h>
#include <stdint.h>

struct gc_loop;
struct gc_mem_ops;
struct gc_http_req;

enum gc_mail_kind {
  GC_MAIL_SEND,       /* handle, cookie, data[len], level = GC_MESSAGE_* */
  GC_MAIL_CLOSE,      /* handle, arg = reason, level = code, stat = 1 when
                         data holds the text (NUL-terminated) */
  GC_MAIL_TIMER,      /* handle, arg = ms */
  GC_MAIL_LIMIT,      /* handle, level, stat, arg = value */
  GC_MAIL_BCAST,      /* ptr = struct gc_shared (one reference), cookie,
                         data = intptr_t handles[len], level = GC_MESSAGE_* */
  GC_MAIL_TIMER_STOP, /* handle = timer id */
  GC_MAIL_POST,       /* ptr = callback, cookie = user */
  GC_MAIL_ADOPT,      /* ptr = struct gc_adopt: a connection handed over */
  GC_MAIL_STOP,       /* the shutdown: stop accepting, close NORMAL */
  GC_MAIL_DROP_ALL,   /* the second signal: drop every connection */
  GC_MAIL_DRAINED,    /* to loop 0: worker 'arg' has no connection left */
  GC_MAIL_EXIT,       /* every loop drained: leave uv_run */
  GC_MAIL_REDIS_PUB,  /* to loop 0: channelPublish (redis.c); data = the
                         Redis channel (arg bytes), then the payload */
  GC_MAIL_LINK        /* an s2s call (link_api.c): level = the operation */
};

struct gc_mail {
  struct gc_mail *next;
  int kind;
  int level, stat;
  intptr_t handle;
  intptr_t cookie;
  int64_t arg;
  void *ptr;
  size_t len;
  _Alignas(intptr_t) uint8_t data[];
};

/* A connection whose upgrade request was read on one loop and whose
 * application's route places it on another: everything the owner needs
 * to go on as if it had accepted it. */
struct gc_adopt {
  const struct gc_transport *tp;
  int fd;                          /* the socket (a dup), or -1 in memory */
  const struct gc_mem_ops *mem;    /* gc.testing's peer, else NULL */
  void *mem_ud;
  struct gc_tls_conn *tls;         /* TLS's state (owned), else NULL */
  struct gc_http_req *req;         /* owned */
  char rip[46];
  int rport;
  int port;                        /* of the listener it came in on */
  size_t rest_len;                 /* bytes that followed the request */
  uint8_t rest[];
};

/* A mail with 'extra' bytes of data; NULL when out of memory. */
struct gc_mail *gc_mail_new(int kind, size_t extra);
/* Frees a mail that was never run, with what it holds. */
void gc_mail_free(struct gc_mail *m);
/* Hands 'm' to 'to' (consumed either way): 0, or ESHUTDOWN when that loop
 * has ended. */
int gc_mail_post(struct gc_loop *to, struct gc_mail *m);

/* The loop's side (loop.c): set up with the loop, run each turn, closed
 * when it ends (mails still queued are run then, so nothing posted before
 * the close is lost). */
int gc__mailbox_init(struct gc_loop *loop);
/* Runs the mails queued now; 1 if there were any. */
int gc__mailbox_run(struct gc_loop *loop);
/* No more posts (ESHUTDOWN); runs what was queued. */
void gc__mailbox_close(struct gc_loop *loop);
/* Frees the mutex; after uv_loop_close. */
void gc__mailbox_free(struct gc_loop *loop);

#endif
