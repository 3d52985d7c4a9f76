/* loadgen_flood.c - the flooders (echo mode, --flood-conns): connections
 * that send as fast as the socket takes it and discard what comes back. */
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"
#include "payload.h"

static uint8_t *flood_buf; /* prebuilt frames, written again and again */
static size_t flood_len;
static uint64_t flood_frames; /* messages in flood_buf */
uv_prepare_t t_resume;
static struct conn *resume_head;
struct flood_stats fl;

/* Builds flood_buf: as many S-byte messages as fit in 16 KiB (at least
 * one), each masked with its own key (keys repeat from copy to copy). */
int flood_build(void) {
  size_t frame = (size_t)opt.flood_size + (opt.raw ? 0 : 14);
  size_t n = ((size_t)16 << 10) / frame;
  if (n < 1)
    n = 1;
  if (n > (size_t)opt.flood_window)
    n = (size_t)opt.flood_window;
  struct conn tmp;
  memset(&tmp, 0, sizeof tmp);
  uint8_t *fpat = payload_pattern((size_t)opt.flood_size);
  if (!fpat)
    return -1;
  for (size_t k = 0; k < n; k++) {
    const uint8_t *data = fpat + payload_offset(k, 0);
    if (opt.raw)
      ob_append(&tmp.out[0], data, (size_t)opt.flood_size);
    else
      append_frame(&tmp, 2, data, (size_t)opt.flood_size);
  }
  free(fpat);
  flood_buf = tmp.out[0].p;
  flood_len = tmp.out[0].len;
  flood_frames = n;
  return 0;
}

static void on_flood_write(uv_write_t *req, int status) {
  struct conn *c = req->data;
  c->fbusy = 0;
  if (status < 0) {
    if (status != UV_ECANCELED && !stopping) {
      st.conn_errors++;
      error_at(c, "flood write: %s", uv_strerror(status));
    }
    return;
  }
  if (measuring) {
    fl.out_bytes += flood_len * (uint64_t)c->fcopies;
    fl.out_msgs += flood_frames * (uint64_t)c->fcopies;
  }
  flood_write(c);
}

/* One write in flight per flooder, of as many copies of flood_buf (up to
 * 64) as the window has room for: libuv writes it as the socket takes it,
 * the next starts when it is done or when echoes made room. */
void flood_write(struct conn *c) {
  if (stopping || c->state != C_OPEN || c->fbusy)
    return;
  uint64_t unechoed = c->sent - c->recvd;
  if (unechoed >= (uint64_t)opt.flood_window)
    return;
  uint64_t k = ((uint64_t)opt.flood_window - unechoed) / flood_frames;
  if (k < 1)
    return;
  if (k > 64)
    k = 64;
  uv_buf_t bufs[64];
  for (uint64_t i = 0; i < k; i++)
    bufs[i] = uv_buf_init((char *)flood_buf, (unsigned)flood_len);
  c->fwreq.data = c;
  if (uv_write(&c->fwreq, (uv_stream_t *)&c->tcp, bufs, (unsigned)k,
               on_flood_write) != 0) {
    st.conn_errors++;
    error_at(c, "flood: uv_write failed");
    conn_close(c, 1);
    return;
  }
  c->fbusy = 1;
  c->fcopies = (int)k;
  c->sent += k * flood_frames;
}

/* What a flooder gets back: skipped, frames counted; a close ends it. */
long flood_discard(struct conn *c, const uint8_t *p, size_t len) {
  if (measuring)
    fl.in_bytes += len;
  if (opt.raw) {
    if (measuring)
      fl.in_msgs += len; /* bytes; divided by the size when printed */
    c->raw_off += len;
    c->recvd += c->raw_off / (size_t)opt.flood_size;
    c->raw_off %= (size_t)opt.flood_size;
    flood_write(c);
    return (long)len;
  }
  size_t off = 0;
  while (off < len) {
    if (c->fskip) {
      uint64_t n = len - off < c->fskip ? len - off : c->fskip;
      off += (size_t)n;
      c->fskip -= n;
      continue;
    }
    c->fhdr[c->fhdr_len++] = p[off++];
    if (c->fhdr_len < 2)
      continue;
    int l7 = c->fhdr[1] & 0x7f;
    int need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
    if (c->fhdr[1] & 0x80) {
      error_at(c, "masked frame from server (flooder)");
      conn_close(c, 1);
      return -1;
    }
    if (c->fhdr_len < need)
      continue;
    uint64_t plen = (uint64_t)l7;
    if (l7 >= 126) {
      plen = 0;
      for (int i = 2; i < need; i++)
        plen = (plen << 8) | c->fhdr[i];
    }
    int op = c->fhdr[0] & 0x0f;
    c->fhdr_len = 0;
    c->fskip = plen;
    if (op == 8) {
      if (!stopping) {
        st.closed++;
        fl.closed++;
        error_at(c, "flooder closed by the server");
      }
      conn_close(c, 1);
      return -1;
    }
    if ((op == 1 || op == 2 || op == 0) && (c->fhdr[0] & 0x80)) {
      c->recvd++;
      if (measuring)
        fl.in_msgs++;
    }
  }
  flood_write(c);
  return (long)len;
}

/* A flooder that filled its read buffer reads again next loop turn. */

void flood_pause(struct conn *c) {
  if (c->read_paused || stopping)
    return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->read_paused = 1;
  c->resume_next = resume_head;
  resume_head = c;
}

void on_resume(uv_prepare_t *h) {
  (void)h;
  struct conn *c = resume_head;
  resume_head = NULL;
  while (c) {
    struct conn *next = c->resume_next;
    c->resume_next = NULL;
    c->read_paused = 0;
    if (c->state == C_OPEN && !stopping &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
      conn_close(c, 1);
    c = next;
  }
}
