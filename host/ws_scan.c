/* ws_scan.c - see ws_scan.h. */
#include "ws_scan.h"

#include <string.h>

void gc_ws_scan_init(struct gc_ws_scan *s) { memset(s, 0, sizeof *s); }

static int is_data(uint8_t opcode) { return opcode <= 2; }

/* Bytes the header in s->hdr needs in all, once its second byte is known. */
static size_t header_size(const struct gc_ws_scan *s) {
  uint8_t l7 = s->hdr[1] & 0x7f;
  size_t n = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
  return n + ((s->hdr[1] & 0x80) ? 4 : 0);
}

/* The payload of a frame ended: a FIN data frame ends its message. */
static void frame_done(struct gc_ws_scan *s) {
  s->in_payload = 0;
  if (s->fin_pending) {
    s->fin_pending = 0;
    s->msg_open = 0;
    s->msg_bytes = s->msg_frags = 0;
  }
}

size_t gc_ws_scan_feed(struct gc_ws_scan *s, const uint8_t *p, size_t n,
                       struct gc_ws_hdr *h, int *got) {
  size_t used = 0;
  *got = 0;
  while (used < n) {
    if (s->in_payload) {
      uint64_t k = n - used < s->left ? n - used : s->left;
      used += (size_t)k;
      s->left -= k;
      if (s->left == 0)
        frame_done(s);
      continue;
    }
    s->hdr[s->hlen++] = p[used++];
    if (s->hlen < 2 || s->hlen < header_size(s))
      continue;
    uint8_t l7 = s->hdr[1] & 0x7f;
    uint64_t len = l7;
    if (l7 == 126)
      len = (uint64_t)s->hdr[2] << 8 | s->hdr[3];
    else if (l7 == 127)
      for (int i = 0; i < 8; i++)
        len = len << 8 | s->hdr[2 + i];
    h->opcode = s->hdr[0] & 0x0f;
    h->fin = (s->hdr[0] & 0x80) != 0;
    h->len = len;
    s->hlen = 0;
    if (is_data(h->opcode)) {
      s->msg_open = 1;
      s->msg_bytes += len;
      s->msg_frags++;
      s->fin_pending = h->fin;
    }
    s->left = len;
    s->in_payload = 1;
    if (len == 0)
      frame_done(s);
    *got = 1;
    break;
  }
  return used;
}

int gc_ws_scan_idle(const struct gc_ws_scan *s) {
  return !s->in_payload && s->hlen == 0 && !s->msg_open;
}

uint64_t gc_ws_scan_held(const struct gc_ws_scan *s) {
  if (!s->msg_open)
    return 0;
  return s->msg_bytes + (s->msg_frags - 1) * GC_WS_FRAGMENT_COST;
}
