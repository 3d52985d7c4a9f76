/* send_queue.c - see send_queue.h. */
#include "send_queue.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>

#include "alloc.h"

void gc_send_queue_init(struct gc_send_queue *q) { memset(q, 0, sizeof *q); }

size_t gc_ws_header_size(size_t len) {
  return len < 126 ? 2 : len <= 0xffff ? 4 : 10;
}

/* The block sizes of the pool's classes, message header included. */
static const size_t class_bytes[GC_MSG_POOL_CLASSES] = {64, 256, 2048};
_Static_assert(sizeof(struct gc_msg) <= 64, "class 0 holds a bare entry");
_Static_assert(offsetof(struct gc_msg, hdr) + sizeof((struct gc_msg *)0)->hdr ==
                   sizeof(struct gc_msg),
               "the header ends where an inline payload begins");

void gc_msg_pool_trim(struct gc_msg_pool *p) {
  for (int k = 0; k < GC_MSG_POOL_CLASSES; k++) {
    for (uint32_t n = p->low[k]; n && p->spare[k]; n--) {
      struct gc_msg *m = p->spare[k];
      p->spare[k] = m->next;
      p->count[k]--;
      gc_free(m);
    }
    p->low[k] = p->count[k];
  }
}

void gc_msg_pool_drain(struct gc_msg_pool *p) {
  for (int k = 0; k < GC_MSG_POOL_CLASSES; k++) {
    while (p->spare[k]) {
      struct gc_msg *m = p->spare[k];
      p->spare[k] = m->next;
      gc_free(m);
    }
    p->count[k] = p->low[k] = 0;
  }
}

/* A block for a message and 'len' bytes of payload after it, from the
 * pool's smallest class that holds it, or the heap; its header zeroed. */
static struct gc_msg *msg_block(struct gc_msg_pool *pool, size_t len) {
  if (len > SIZE_MAX - sizeof(struct gc_msg))
    return NULL;
  int cls = 0;
  if (pool)
    for (int k = 0; k < GC_MSG_POOL_CLASSES; k++)
      if (sizeof(struct gc_msg) + len <= class_bytes[k]) {
        cls = k + 1;
        break;
      }
  struct gc_msg *m;
  if (cls && pool->spare[cls - 1]) {
    m = pool->spare[cls - 1];
    pool->spare[cls - 1] = m->next;
    if (--pool->count[cls - 1] < pool->low[cls - 1])
      pool->low[cls - 1] = pool->count[cls - 1];
  } else {
    m = gc_malloc(cls ? class_bytes[cls - 1] : sizeof *m + len);
    if (!m)
      return NULL;
  }
  memset(m, 0, sizeof *m);
  m->pool_class = (uint8_t)cls;
  return m;
}

static struct gc_msg *msg_new(struct gc_msg_pool *pool, const void *data,
                              size_t len) {
  struct gc_msg *m = msg_block(pool, len);
  if (!m)
    return NULL;
  uint8_t *payload = (uint8_t *)(m + 1);
  if (len)
    memcpy(payload, data, len);
  m->data = payload;
  m->len = len;
  return m;
}

static void queue_append(struct gc_send_queue *q, struct gc_msg *m) {
  if (q->tail)
    q->tail->next = m;
  else
    q->head = m;
  q->tail = m;
  q->count++;
  q->bytes += m->hdr_len + m->len;
  if (q->acct)
    *q->acct += (int64_t)(m->hdr_len + m->len);
}

static void msg_free(struct gc_msg_pool *pool, struct gc_msg *m) {
  if (m->shared)
    gc_shared_release(m->shared);
  int k = m->pool_class - 1;
  if (pool && k >= 0 && pool->count[k] < GC_MSG_POOL_KEEP) {
    m->next = pool->spare[k];
    pool->spare[k] = m;
    pool->count[k]++;
    return;
  }
  gc_free(m);
}

struct gc_shared *gc_shared_new(const void *data, size_t len) {
  if (len > SIZE_MAX - sizeof(struct gc_shared))
    return NULL;
  struct gc_shared *sh = gc_malloc(sizeof *sh + len);
  if (!sh)
    return NULL;
  atomic_init(&sh->refs, 0);
  sh->len = len;
  sh->utf8_ok = 0;
  if (len)
    memcpy(sh->data, data, len);
  return sh;
}

void gc_shared_release(struct gc_shared *sh) {
  if (sh && (atomic_load_explicit(&sh->refs, memory_order_acquire) == 0 ||
             atomic_fetch_sub_explicit(&sh->refs, 1, memory_order_acq_rel) == 1))
    gc_free(sh);
}

/* Writes the frame header of a message of 'len' bytes: FIN + binary
 * (0x82), or FIN + text (0x81) when 'text'. */
static void frame_header(struct gc_msg *m, size_t len, int text) {
  m->hdr_len = (uint8_t)gc_ws_header_size(len);
  uint8_t *h = m->hdr + sizeof m->hdr - m->hdr_len;
  h[0] = text ? 0x81 : 0x82;
  if (len < 126) {
    h[1] = (uint8_t)len;
  } else if (len <= 0xffff) {
    h[1] = 126;
    h[2] = (uint8_t)(len >> 8);
    h[3] = (uint8_t)len;
  } else {
    h[1] = 127;
    for (int i = 0; i < 8; i++)
      h[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  }
}

int gc_send_queue_push_frame_as(struct gc_send_queue *q, const void *data,
                                size_t len, intptr_t cookie, int text) {
  struct gc_msg *m = msg_new(q->pool, data, len);
  if (!m)
    return ENOMEM;
  m->cookie = cookie;
  frame_header(m, len, text);
  queue_append(q, m);
  return 0;
}

int gc_send_queue_push_frame(struct gc_send_queue *q, const void *data,
                             size_t len, intptr_t cookie) {
  return gc_send_queue_push_frame_as(q, data, len, cookie, 0);
}

void gc_send_queue_msg_text(struct gc_msg *m) {
  m->hdr[sizeof m->hdr - m->hdr_len] = 0x81;
}

struct gc_msg *gc_send_queue_msg_shared(struct gc_msg_pool *pool,
                                         struct gc_shared *sh, intptr_t cookie) {
  struct gc_msg *m = msg_block(pool, 0);
  if (!m)
    return NULL;
  m->cookie = cookie;
  m->data = sh->data;
  m->len = sh->len;
  m->shared = sh;
  gc_shared_ref(sh);
  frame_header(m, sh->len, 0);
  return m;
}

void gc_send_queue_append(struct gc_send_queue *q, struct gc_msg *m) {
  queue_append(q, m);
}

void gc_send_queue_msg_free(struct gc_msg *m) { msg_free(NULL, m); }

int gc_send_queue_push_shared(struct gc_send_queue *q, struct gc_shared *sh,
                              intptr_t cookie) {
  struct gc_msg *m = gc_send_queue_msg_shared(q->pool, sh, cookie);
  if (!m)
    return ENOMEM;
  queue_append(q, m);
  return 0;
}

int gc_send_queue_push_raw(struct gc_send_queue *q, const void *data,
                           size_t len) {
  struct gc_msg *m = msg_new(q->pool, data, len);
  if (!m)
    return ENOMEM;
  m->internal = 1;
  queue_append(q, m);
  return 0;
}

size_t gc_send_queue_iov(const struct gc_send_queue *q, uv_buf_t *iov,
                         size_t max, size_t *total) {
  size_t n = 0, sum = 0, skip = q->head_off;
  for (const struct gc_msg *m = q->head; m && n < max; m = m->next) {
    size_t whole = m->hdr_len + m->len;
    if (m->data == (const uint8_t *)(m + 1) && whole - skip <= (1u << 30)) {
      /* Header and payload adjoin: one iovec. */
      iov[n++] = uv_buf_init((char *)gc_msg_hdr(m) + skip, (unsigned)(whole - skip));
      sum += whole - skip;
      skip = 0;
      continue;
    }
    if (skip < m->hdr_len) {
      iov[n++] = uv_buf_init((char *)gc_msg_hdr(m) + skip, (unsigned)(m->hdr_len - skip));
      sum += m->hdr_len - skip;
      skip = 0;
    } else {
      skip -= m->hdr_len;
    }
    if (n == max)
      break;
    if (m->len > skip) {
      /* uv_buf_t lengths are unsigned int: split a payload above 1 GiB. */
      size_t left = m->len - skip;
      const uint8_t *p = m->data + skip;
      while (left && n < max) {
        size_t chunk = left > (1u << 30) ? (1u << 30) : left;
        iov[n++] = uv_buf_init((char *)p, (unsigned)chunk);
        sum += chunk;
        p += chunk;
        left -= chunk;
      }
      if (left)
        break;
    }
    skip = 0;
  }
  *total = sum;
  return n;
}

static struct gc_msg *queue_pop(struct gc_send_queue *q) {
  struct gc_msg *m = q->head;
  q->head = m->next;
  if (!q->head)
    q->tail = NULL;
  q->count--;
  q->head_off = 0;
  return m;
}

void gc_send_queue_consume(struct gc_send_queue *q, size_t n, gc_msg_done_cb done,
                           void *ctx) {
  q->bytes -= n;
  if (q->acct)
    *q->acct -= (int64_t)n;
  while (n && q->head) {
    struct gc_msg *m = q->head;
    size_t left = m->hdr_len + m->len - q->head_off;
    if (n < left) {
      q->head_off += n;
      return;
    }
    n -= left;
    queue_pop(q);
    if (!m->internal && done)
      done(ctx, m);
    msg_free(q->pool, m);
  }
  /* A message of zero bytes left (cannot happen with frames) is complete. */
}

void gc_send_queue_clear(struct gc_send_queue *q, gc_msg_done_cb done, void *ctx) {
  while (q->head) {
    struct gc_msg *m = queue_pop(q);
    if (!m->internal && done)
      done(ctx, m);
    msg_free(q->pool, m);
  }
  if (q->acct)
    *q->acct -= (int64_t)q->bytes;
  q->bytes = 0;
}
