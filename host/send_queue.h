/* send_queue.h - a connection's output: a FIFO of ready-to-write frames.
 *
 * Each queued message owns one allocation holding its WebSocket frame
 * header and a copy of the payload, so a whole queue is written with one
 * writev (uv_try_write) per loop turn. 'internal' entries (the HTTP
 * response, control frames produced by wslay) are host bytes and are never
 * reported to the adapter. */
#ifndef GC_SEND_QUEUE_H
#define GC_SEND_QUEUE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* A payload shared by many queues (a broadcast): serialized once, freed
 * when the last queue lets go. The queues may be on several loops, so the
 * count is atomic. */
struct gc_shared {
  _Atomic size_t refs;
  size_t len;
  /* 1 when 'data' is valid UTF-8 (may go as text); set by its maker
   * before any other thread sees it, read-only after. */
  uint8_t utf8_ok;
  uint8_t data[];
};

struct gc_msg {
  struct gc_msg *next;
  intptr_t cookie;
  size_t len; /* payload bytes: what on_message_sent reports */
  const uint8_t *data;
  struct gc_shared *shared; /* NULL: the payload follows the struct */
  uint8_t internal;
  uint8_t hdr_len;
  uint8_t pool_class; /* 0: its own allocation; k: a block of class k - 1 */
  /* The frame header, in its last hdr_len bytes (gc_msg_hdr): the struct
   * ends there, so a payload that follows it makes one iovec with it. */
  uint8_t hdr[13];
};
/* Where a message's frame header starts. */
static inline const uint8_t *gc_msg_hdr(const struct gc_msg *m) {
  return m->hdr + sizeof m->hdr - m->hdr_len;
}

/* A loop's spare message blocks, so that the usual message (a payload up
 * to ~2 KiB) costs no malloc and no free: glibc serves blocks above 1 KiB
 * from its slower bins. Three size classes (a broadcast's entry without
 * payload, a short message, ~2 KiB) of at most GC_MSG_POOL_KEEP
 * spares each (19 MiB in all at most); the spares a whole second did not
 * need are freed (gc_msg_pool_trim), so an idle loop keeps none. One
 * loop's only. */
#define GC_MSG_POOL_CLASSES 3
#define GC_MSG_POOL_KEEP 8192
struct gc_msg_pool {
  struct gc_msg *spare[GC_MSG_POOL_CLASSES];
  uint32_t count[GC_MSG_POOL_CLASSES];
  uint32_t low[GC_MSG_POOL_CLASSES]; /* the fewest spares since the last trim */
};
/* Frees the spares unused since the last call (the loop's second tick). */
void gc_msg_pool_trim(struct gc_msg_pool *p);
void gc_msg_pool_drain(struct gc_msg_pool *p);

struct gc_send_queue {
  struct gc_msg *head, *tail;
  size_t count;    /* messages, internal ones included */
  size_t bytes;    /* bytes not yet written, headers included */
  size_t head_off; /* bytes of 'head' already written */
  int64_t *acct;   /* NULL, or a total that follows 'bytes' (many queues) */
  struct gc_msg_pool *pool; /* NULL, or where its message blocks come from */
};

/* Called once per adapter message leaving the queue. */
typedef void (*gc_msg_done_cb)(void *ctx, const struct gc_msg *msg);

void gc_send_queue_init(struct gc_send_queue *q);
/* Appends one binary WebSocket frame (FIN, server side: unmasked) carrying
 * a copy of 'data'. 0 or ENOMEM. */
int gc_send_queue_push_frame(struct gc_send_queue *q, const void *data,
                             size_t len, intptr_t cookie)
    __attribute__((warn_unused_result));
/* The same, a text frame (FIN + 0x1) when 'text' is non-zero. The caller
 * has checked that a text payload is UTF-8. */
int gc_send_queue_push_frame_as(struct gc_send_queue *q, const void *data,
                                size_t len, intptr_t cookie, int text)
    __attribute__((warn_unused_result));
/* A shared payload holding a copy of 'data', with no reference yet; free
 * it with gc_shared_release when no queue took it. NULL: no memory. */
struct gc_shared *gc_shared_new(const void *data, size_t len);
void gc_shared_release(struct gc_shared *sh);
static inline void gc_shared_ref(struct gc_shared *sh) {
  atomic_fetch_add_explicit(&sh->refs, 1, memory_order_relaxed);
}
/* Appends one binary frame whose payload is 'sh' (one more reference). */
int gc_send_queue_push_shared(struct gc_send_queue *q, struct gc_shared *sh,
                              intptr_t cookie) __attribute__((warn_unused_result));
/* The two halves of gc_send_queue_push_shared, so that a broadcast can
 * allocate every receiver's entry before it queues any: a message holding
 * one more reference to 'sh' (NULL: no memory), appended later with
 * gc_send_queue_append or freed unqueued with gc_send_queue_msg_free. */
struct gc_msg *gc_send_queue_msg_shared(struct gc_msg_pool *pool,
                                         struct gc_shared *sh, intptr_t cookie);
/* Makes such a message, not yet queued, a text frame. */
void gc_send_queue_msg_text(struct gc_msg *m);
void gc_send_queue_append(struct gc_send_queue *q, struct gc_msg *m);
void gc_send_queue_msg_free(struct gc_msg *m);
/* Appends host bytes written verbatim. 0 or ENOMEM. */
int gc_send_queue_push_raw(struct gc_send_queue *q, const void *data,
                           size_t len) __attribute__((warn_unused_result));
/* Fills up to 'max' buffers with the unwritten bytes, in order; returns
 * the number used and their total size in '*total'. */
size_t gc_send_queue_iov(const struct gc_send_queue *q, uv_buf_t *iov,
                         size_t max, size_t *total);
/* Marks 'n' bytes as written; every message completed leaves the queue and
 * is reported to 'done' (adapter messages only) before it is freed. */
void gc_send_queue_consume(struct gc_send_queue *q, size_t n, gc_msg_done_cb done,
                           void *ctx);
/* Empties the queue, reporting every adapter message to 'done'. */
void gc_send_queue_clear(struct gc_send_queue *q, gc_msg_done_cb done, void *ctx);

/* Number of bytes the frame header of a 'len' byte payload takes. */
size_t gc_ws_header_size(size_t len);

#endif
