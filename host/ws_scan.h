/* ws_scan.h - a frame-header scanner that reads the client's bytes beside
 * wslay.
 *
 * wslay reports a frame only once payload bytes arrive, and it allocates
 * the whole announced payload, plus a chunk per fragment, at that moment.
 * The host needs to judge a frame when its header is complete: refuse a
 * message announced over the limit before a byte of it is buffered, count
 * what a fragmented message really holds, count control frames in the
 * message rate, and know when the input is between frames (the context can
 * then go back to the pool). The scanner follows frame boundaries only: it
 * validates nothing that wslay validates. */
#ifndef GC_WS_SCAN_H
#define GC_WS_SCAN_H

#include <stddef.h>
#include <stdint.h>

/* What wslay holds per received frame besides its payload (a chunk header
 * and its allocation): measured at ~92 bytes for a 1-byte fragment. */
#define GC_WS_FRAGMENT_COST 96u

struct gc_ws_scan {
  uint64_t left;      /* payload bytes of the current frame not yet seen */
  uint64_t msg_bytes; /* payload announced by the data message so far */
  uint64_t msg_frags; /* its frames */
  uint8_t hdr[14];    /* a header being assembled */
  uint8_t hlen;
  uint8_t in_payload; /* inside the current frame's payload */
  uint8_t msg_open;   /* a data message started and its FIN frame not done */
  uint8_t fin_pending; /* the current data frame carries FIN */
};

/* A frame header, complete. */
struct gc_ws_hdr {
  uint8_t opcode;
  uint8_t fin;
  uint64_t len; /* payload length as announced */
};

void gc_ws_scan_init(struct gc_ws_scan *s);
/* Scans up to 'n' bytes: stops right after a header completes (writes it
 * to 'h', '*got' = 1) or at the end of the bytes. Returns the bytes
 * consumed. */
size_t gc_ws_scan_feed(struct gc_ws_scan *s, const uint8_t *p, size_t n,
                       struct gc_ws_hdr *h, int *got);
/* Between frames and outside any data message. */
int gc_ws_scan_idle(const struct gc_ws_scan *s);
/* Memory wslay holds for the message in progress (announced payload of
 * every frame and a chunk per fragment after the first), 0 when none. */
uint64_t gc_ws_scan_held(const struct gc_ws_scan *s);

#endif
