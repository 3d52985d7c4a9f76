/* loadgen_wire.c - the load generator's bytes on the wire: output buffers,
 * masked WebSocket frames out; in, the 101 of the upgrade checked, the
 * server's frames parsed, the raw byte echo compared with what was sent. */
#include <inttypes.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "loadgen.h"
#include "payload.h"

/* ---- output buffers ------------------------------------------------------ */

uint8_t *ob_reserve(struct obuf *b, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
      fprintf(stderr, "loadgen: out of memory\n");
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  return b->p + b->len;
}

void ob_append(struct obuf *b, const void *data, size_t n) {
  memcpy(ob_reserve(b, n), data, n);
  b->len += n;
}

/* Appends one masked client frame. */
void append_frame(struct conn *c, int opcode, const uint8_t *data,
                         size_t len) {
  struct obuf *b = &c->out[c->cur];
  uint8_t *p = ob_reserve(b, len + 14);
  size_t h = 0;
  p[h++] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    p[h++] = (uint8_t)(0x80 | len);
  } else if (len < 65536) {
    p[h++] = 0x80 | 126;
    p[h++] = (uint8_t)(len >> 8);
    p[h++] = (uint8_t)len;
  } else {
    p[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--)
      p[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  uint32_t key = xorshift();
  uint8_t mk[4];
  memcpy(mk, &key, 4);
  memcpy(p + h, mk, 4);
  h += 4;
  uint8_t *dst = p + h;
  /* 32 bytes a step (vector extension: SSE2 or AVX, whatever the target
   * has): at 16 KiB the byte or word loop was a quarter of the client's
   * CPU, and the client is the bound in that row (bench/NOTES.md). */
  typedef uint8_t v32 __attribute__((vector_size(32)));
  v32 kv;
  for (int j = 0; j < 32; j++)
    kv[j] = mk[j & 3];
  size_t i = 0;
  for (; i + 32 <= len; i += 32) {
    v32 v;
    memcpy(&v, data + i, 32);
    v ^= kv;
    memcpy(dst + i, &v, 32);
  }
  for (; i < len; i++)
    dst[i] = data[i] ^ mk[i & 3];
  b->len += h + len;
}


/* ---- input --------------------------------------------------------------- */

static const char *find_header(const char *h, size_t hlen, const char *name) {
  size_t nl = strlen(name);
  const char *end = h + hlen;
  for (const char *p = h; p < end;) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol)
      break;
    if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 &&
        p[nl] == ':')
      return p + nl + 1;
    p = eol + 1;
  }
  return NULL;
}

static void ws_accept_for(const char *key, char out[32]) {
  char buf[64 + 40];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  int n = snprintf(buf, sizeof buf, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
                   key);
  EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL);
  EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* Parses the 101 response: returns bytes used, 0 if incomplete, -1 bad. */
long parse_upgrade(struct conn *c, const uint8_t *p, size_t len) {
  const uint8_t *end = NULL;
  for (size_t i = 3; i < len; i++)
    if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
        p[i - 3] == '\r') {
      end = p + i + 1;
      break;
    }
  if (!end)
    return len > 8192 ? -1 : 0;
  size_t hlen = (size_t)(end - p);
  if (hlen < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
    error_at(c, "upgrade refused: %.40s", (const char *)p);
    return -1;
  }
  const char *v = find_header((const char *)p, hlen, "Sec-WebSocket-Accept");
  char want[32];
  ws_accept_for(c->key, want);
  if (!v) {
    error_at(c, "no Sec-WebSocket-Accept");
    return -1;
  }
  while (*v == ' ' || *v == '\t')
    v++;
  if (strncmp(v, want, strlen(want)) != 0) {
    error_at(c, "bad Sec-WebSocket-Accept");
    return -1;
  }
  return (long)hlen;
}

/* Compares n bytes of the echo payload in progress (ws_off, ws_rest) with
 * what was sent; the echo is done when its last byte is. 0, or -1 after
 * closing c. */
static int echo_piece(struct conn *c, const uint8_t *p, size_t n) {
  const uint8_t *exp = pat + payload_offset(c->recvd, c->id) + c->ws_off;
  if (memcmp(p, exp, n) != 0) {
    st.mismatches++;
    error_at(c, "echo %" PRIu64 " differs in its bytes %zu to %zu",
             c->recvd, c->ws_off, c->ws_off + n - 1);
    conn_close(c, 1);
    return -1;
  }
  c->ws_off += n;
  c->ws_rest -= n;
  if (c->ws_rest == 0) {
    c->ws_off = 0;
    echo_done(c);
  }
  return 0;
}

/* Parses frames; returns bytes consumed or -1 after closing c. */
long parse_frames(struct conn *c, const uint8_t *p, size_t len) {
  size_t off = 0;
  if (c->ws_rest && c->state == C_OPEN) { /* the rest of an echo's payload */
    off = len < c->ws_rest ? len : c->ws_rest;
    if (echo_piece(c, p, off) < 0)
      return -1;
  }
  while (len - off >= 2 && c->state == C_OPEN) {
    const uint8_t *f = p + off;
    size_t avail = len - off;
    int fin = f[0] & 0x80, op = f[0] & 0x0f;
    if (f[1] & 0x80) {
      error_at(c, "masked frame from server");
      conn_close(c, 1);
      return -1;
    }
    uint64_t plen = f[1] & 0x7f;
    size_t h = 2;
    if (plen == 126) {
      if (avail < 4)
        break;
      plen = ((uint64_t)f[2] << 8) | f[3];
      h = 4;
    } else if (plen == 127) {
      if (avail < 10)
        break;
      plen = 0;
      for (int i = 0; i < 8; i++)
        plen = (plen << 8) | f[2 + i];
      h = 10;
    }
    if (plen > (1u << 24)) {
      error_at(c, "frame of %" PRIu64 " bytes", plen);
      conn_close(c, 1);
      return -1;
    }
    if (avail < h + plen) {
      /* An echo of the size sent, its header here: its payload is compared
       * as it comes. Anything else waits in 'in' until it is whole. */
      if (avail <= h || opt.mode != M_ECHO || !fin || (op != 1 && op != 2) ||
          plen != (uint64_t)opt.size || c->recvd >= c->sent)
        break;
      c->ws_off = 0;
      c->ws_rest = (size_t)plen;
      if (echo_piece(c, f + h, avail - h) < 0)
        return -1;
      off = len;
      break;
    }
    const uint8_t *pl = f + h;
    off += h + (size_t)plen;
    if (!fin || op == 0) {
      error_at(c, "fragmented message");
      conn_close(c, 1);
      return -1;
    }
    switch (op) {
    case 1:
    case 2:
      on_ws_message(c, pl, (size_t)plen);
      break;
    case 8:
      if (!stopping) {
        st.closed++;
        error_at(c, "closed by the server (code %d)",
                 plen >= 2 ? (pl[0] << 8 | pl[1]) : 0);
      }
      conn_close(c, 1);
      return -1;
    case 9:
      append_frame(c, 10, pl, (size_t)plen);
      break;
    case 10:
      break;
    default:
      error_at(c, "opcode %d", op);
      conn_close(c, 1);
      return -1;
    }
  }
  return c->state == C_OPEN ? (long)off : -1;
}

/* Raw byte echo: compares the stream with what was sent. */
long parse_raw(struct conn *c, const uint8_t *p, size_t len) {
  size_t off = 0;
  while (off < len && c->state == C_OPEN) {
    if (c->recvd >= c->sent) {
      st.mismatches++;
      error_at(c, "unexpected bytes");
      conn_close(c, 1);
      return -1;
    }
    size_t want = (size_t)opt.size - c->raw_off;
    size_t n = len - off < want ? len - off : want;
    const uint8_t *exp = pat + payload_offset(c->recvd, c->id) + c->raw_off;
    if (memcmp(p + off, exp, n) != 0) {
      st.mismatches++;
      error_at(c, "raw echo %" PRIu64 " differs", c->recvd);
      conn_close(c, 1);
      return -1;
    }
    off += n;
    c->raw_off += n;
    if (c->raw_off == (size_t)opt.size) {
      c->raw_off = 0;
      echo_done(c);
    }
  }
  return c->state == C_OPEN ? (long)off : -1;
}
