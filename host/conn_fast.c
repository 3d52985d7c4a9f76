/* conn_fast.c - the receive path's fast lane.
 *
 * Game traffic is mostly small, complete, unfragmented, masked data frames,
 * several per read. wslay takes each through its frame reader, which
 * unmasks a byte at a time into a buffer of its own: at 1 KiB that was
 * four fifths of the host's instructions per message (bench/NOTES.md,
 * "Beyond uWebSockets"). Here a frame whose header and payload are both in
 * the bytes just read is unmasked a word at a time into the loop's scratch
 * buffer and handed to the adapter at once; such a frame cut by the end of
 * a read is stashed whole-sized until the next reads complete it (large
 * messages are cut at nearly every read, and TLS cuts at its records).
 * Everything else (control
 * frames, fragments, a frame cut by the end of a read, a header wslay
 * would refuse, text that is not UTF-8) stops the lane, and wslay takes it
 * from that frame on with its own checks, so the two never disagree about
 * what is valid: the lane only takes frames wslay would deliver as they
 * are. */
#include <assert.h>
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "conn_limits.h"
#include "internal.h"
#include "utf8.h"

/* The header of the frame at 'p', when the lane may take that frame whole:
 * FIN, no RSV bit, text or binary, masked, the length in its shortest
 * form, at most 'max' bytes. Writes the header's size and the payload's
 * length; 1 when all of the frame is within 'n', 2 when only its header
 * is, 0 when the frame is not the lane's. */
static int fast_frame(const uint8_t *p, size_t n, uint64_t max, size_t *hdr,
                      size_t *plen) {
  if (n < 6 || (p[0] & 0xf0) != 0x80 || (p[1] & 0x80) == 0)
    return 0;
  uint8_t op = p[0] & 0x0f;
  if (op != 1 && op != 2)
    return 0;
  uint64_t len = p[1] & 0x7f;
  size_t h = 6;
  if (len == 126) {
    if (n < 8)
      return 0;
    len = (uint64_t)p[2] << 8 | p[3];
    if (len < 126)
      return 0;
    h = 8;
  } else if (len == 127) {
    if (n < 14)
      return 0;
    len = 0;
    for (int i = 0; i < 8; i++)
      len = len << 8 | p[2 + i];
    if (len < 65536 || (len >> 63))
      return 0;
    h = 14;
  }
  if (len > max || len > GC_FAST_MSG_MAX)
    return 0;
  *hdr = h;
  *plen = (size_t)len;
  return len > n - h ? 2 : 1;
}

/* dst = src XOR the 4-byte mask, 64 then sixteen bytes at a time (GCC's and
 * clang's vector extension: SSE2 on x86-64, NEON on arm64), then eight,
 * then one; 'i' stays a multiple of 4 until the last bytes, so the mask's
 * phase is 0 at every word. */
typedef uint64_t gc__v2u64 __attribute__((vector_size(16)));

static void unmask_copy(uint8_t *dst, const uint8_t *src, size_t n,
                        const uint8_t mask[4]) {
  uint32_t m32;
  memcpy(&m32, mask, 4);
  uint64_t m64 = (uint64_t)m32 << 32 | m32;
  gc__v2u64 m128 = {m64, m64};
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    gc__v2u64 w[4];
    memcpy(w, src + i, 64);
    w[0] ^= m128;
    w[1] ^= m128;
    w[2] ^= m128;
    w[3] ^= m128;
    memcpy(dst + i, w, 64);
  }
  for (; i + 16 <= n; i += 16) {
    gc__v2u64 w;
    memcpy(&w, src + i, 16);
    w ^= m128;
    memcpy(dst + i, &w, 16);
  }
  for (; i + 8 <= n; i += 8) {
    uint64_t w;
    memcpy(&w, src + i, 8);
    w ^= m64;
    memcpy(dst + i, &w, 8);
  }
  for (; i < n; i++)
    dst[i] = src[i] ^ mask[i & 3];
}

/* Keeps the start of a frame of 'size' bytes; 0, or ENOMEM (wslay then
 * takes the frame). */
/* Appends 'len' bytes of the stashed frame, unmasking its payload's on the
 * way (the mask's phase is the payload offset's), so that the whole frame
 * is delivered from the stash with no second pass. */
static void stash_put(struct gc_conn *c, const uint8_t *data, size_t len) {
  size_t at = c->stash_len, h = c->stash_hdr;
  if (at < h) {
    size_t k = len < h - at ? len : h - at;
    memcpy(c->stash + at, data, k);
    at += k;
    data += k;
    len -= k;
  }
  if (len) {
    const uint8_t *m = c->stash + h - 4;
    size_t ph = (at - h) & 3;
    uint8_t rot[4] = {m[ph], m[(ph + 1) & 3], m[(ph + 2) & 3], m[(ph + 3) & 3]};
    unmask_copy(c->stash + at, data, len, rot);
    at += len;
  }
  c->stash_len = (uint32_t)at;
}

static int stash_begin(struct gc_conn *c, const uint8_t *data, size_t len,
                       size_t hdr, size_t size) {
  assert(!c->stash && hdr <= len && len < size &&
         size <= GC_FAST_MSG_MAX + 14);
  if (!(c->stash = gc_malloc(size)))
    return ENOMEM;
  c->stash_hdr = (uint8_t)hdr;
  c->stash_len = 0;
  c->stash_size = (uint32_t)size;
  stash_put(c, data, len);
  c->loop->buffered += (int64_t)size;
  if (!c->in_since) /* message_timeout_ms bounds a frame that never ends */
    c->in_since = gc_loop_now(c->loop);
  return 0;
}

void gc__conn_stash_drop(struct gc_conn *c) {
  if (!c->stash)
    return;
  c->loop->buffered -= (int64_t)c->stash_size;
  gc_free(c->stash);
  c->stash = NULL;
  c->stash_len = c->stash_size = 0;
}

size_t gc__conn_stash_fill(struct gc_conn *c, const uint8_t *data, size_t len,
                           uint8_t **frame, size_t *size) {
  size_t k = c->stash_size - c->stash_len;
  if (k > len)
    k = len;
  stash_put(c, data, k);
  *frame = NULL;
  *size = 0;
  if (c->stash_len == c->stash_size) {
    *frame = c->stash;
    *size = c->stash_size;
    c->loop->buffered -= (int64_t)c->stash_size;
    c->stash = NULL;
    c->stash_len = c->stash_size = 0;
    c->in_since = 0; /* between frames again, and outside any message */
  }
  return k;
}

int gc__conn_stash_take(struct gc_conn *c, uint8_t *frame, size_t size,
                        size_t hdr) {
  uint8_t *payload = frame + hdr;
  size_t n = size - hdr;
  uint64_t max = gc_msg_size_limit(
      gc__conn_limit(c, GC_STAT_STATUS_RED, GC_CONN_STAT_MAX_MSG_SIZE));
  int text = (frame[0] & 0x0f) == 1;
  if (c->state == GC_CONN_OPEN && n <= max &&
      (!text || gc_utf8_valid(payload, n))) {
    c->read_frames++;
    gc__conn_deliver(c, payload, n);
    return 1;
  }
  unmask_copy(payload, payload, n, frame + hdr - 4); /* as it came */
  return 0;
}

size_t gc__conn_fast_input(struct gc_conn *c, const uint8_t *data, size_t len) {
  struct gc_loop *loop = c->loop;
  /* A handler that makes another connection of this loop read (gc.testing's
   * in-memory peers can) must not write over the scratch buffer that the
   * outer message still lives in: that nested read takes the slow lane. */
  if (loop->in_fast)
    return 0;
  uint64_t max = gc_msg_size_limit(
      gc__conn_limit(c, GC_STAT_STATUS_RED, GC_CONN_STAT_MAX_MSG_SIZE));
  size_t off = 0;
  loop->in_fast = 1;
  while (c->state == GC_CONN_OPEN && off < len) {
    size_t h, n;
    int k = fast_frame(data + off, len - off, max, &h, &n);
    if (k == 2 && stash_begin(c, data + off, len - off, h, h + n) == 0)
      off = len;
    if (k != 1)
      break;
    const uint8_t *p = data + off;
    unmask_copy(loop->ubuf, p + h, n, p + h - 4);
    int text = (p[0] & 0x0f) == 1;
    if (text && !gc_utf8_valid(loop->ubuf, n))
      break; /* wslay fails it with 1007, from the original bytes */
    off += h + n;
    c->read_frames++;
    gc__conn_deliver(c, loop->ubuf, n);
  }
  loop->in_fast = 0;
  return off;
}

size_t gc__ws_frame_size(const uint8_t *p, size_t n) {
  if (n < 2)
    return 0;
  uint64_t len = p[1] & 0x7f;
  size_t h = 2 + ((p[1] & 0x80) ? 4 : 0);
  if (len == 126) {
    if (n < 4)
      return 0;
    len = (uint64_t)p[2] << 8 | p[3];
    h += 2;
  } else if (len == 127) {
    if (n < 10)
      return 0;
    len = 0;
    for (int i = 0; i < 8; i++)
      len = len << 8 | p[2 + i];
    h += 8;
  }
  if (n < h || len > n - h)
    return 0;
  return h + (size_t)len;
}
