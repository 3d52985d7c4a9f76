/* link_ws.c - the WebSocket client side of a link (RFC 6455 4.1): the
 * upgrade request and its answer, masked data frames, and a wslay client
 * context that parses the server's frames and answers pings and closes.
 * Everything a link writes goes through one FIFO (link.h), so the byte
 * stream keeps the order in which frames were made. */
#include <errno.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "http_upgrade.h"
#include "internal.h"
#include "link.h"

/* Masking keys need to be unpredictable to the page's script (RFC 6455
 * 10.3), not secret: xorshift64* seeded from OpenSSL's generator. */
static uint32_t link_rand(struct gc_link *l) {
  if (!l->rng && RAND_bytes((unsigned char *)&l->rng, sizeof l->rng) != 1)
    l->rng = (uint64_t)(uintptr_t)l ^ (uint64_t)gc_loop_now(l->loop);
  if (!l->rng)
    l->rng = 0x9e3779b97f4a7c15ull;
  l->rng ^= l->rng >> 12;
  l->rng ^= l->rng << 25;
  l->rng ^= l->rng >> 27;
  return (uint32_t)((l->rng * 0x2545f4914f6cdd1dull) >> 32);
}

static struct gc_link_msg *msg_new(size_t size) {
  struct gc_link_msg *m = gc_malloc(sizeof *m + size);
  if (m)
    memset(m, 0, sizeof *m);
  return m;
}

static void msg_append(struct gc_link *l, struct gc_link_msg *m) {
  if (l->tail)
    l->tail->next = m;
  else
    l->head = m;
  l->tail = m;
  l->queued += m->size;
}

int gc__link_queue_raw(struct gc_link *l, const void *data, size_t len) {
  struct gc_link_msg *m = msg_new(len);
  if (!m)
    return ENOMEM;
  m->internal = 1;
  m->size = len;
  memcpy(m->bytes, data, len);
  msg_append(l, m);
  return 0;
}

void gc__link_queue_clear(struct gc_link *l) {
  while (l->head) {
    struct gc_link_msg *m = l->head;
    l->head = m->next;
    if (!l->head)
      l->tail = NULL;
    l->queued -= m->size;
    l->head_off = 0;
    if (!m->internal && l->ev.on_client_message_sent)
      l->ev.on_client_message_sent(l->user, m->cookie, m->len,
                                   m->status ? m->status : ECANCELED);
    gc_free(m);
  }
}

int gc__link_ws_frame(struct gc_link *l, const void *data, size_t len,
                      intptr_t cookie) {
  size_t hdr = len < 126 ? 2 : len <= 0xffff ? 4 : 10;
  struct gc_link_msg *m = msg_new(hdr + 4 + len);
  if (!m)
    return ENOMEM;
  uint8_t *p = m->bytes;
  p[0] = 0x82; /* FIN, binary */
  if (len < 126) {
    p[1] = (uint8_t)(0x80 | len);
  } else if (len <= 0xffff) {
    p[1] = 0x80 | 126;
    p[2] = (uint8_t)(len >> 8);
    p[3] = (uint8_t)len;
  } else {
    p[1] = 0x80 | 127;
    for (int i = 0; i < 8; i++)
      p[2 + i] = (uint8_t)((uint64_t)len >> (56 - 8 * i));
  }
  uint32_t key = link_rand(l);
  uint8_t *mask = p + hdr;
  memcpy(mask, &key, 4);
  const uint8_t *src = data;
  uint8_t *dst = mask + 4;
  for (size_t i = 0; i < len; i++)
    dst[i] = src[i] ^ mask[i & 3];
  m->cookie = cookie;
  m->len = len;
  m->size = hdr + 4 + len;
  msg_append(l, m);
  return 0;
}

/* ---- the upgrade ------------------------------------------------------------ */

int gc__link_ws_request(struct gc_link *l) {
  unsigned char raw[16];
  for (int i = 0; i < 4; i++) {
    uint32_t r = link_rand(l);
    memcpy(raw + 4 * i, &r, 4);
  }
  EVP_EncodeBlock((unsigned char *)l->key, raw, sizeof raw); /* 24 + NUL */
  char req[2600];
  int n = snprintf(req, sizeof req,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\nUser-Agent: gcs-link\r\n\r\n",
                   l->target, l->host, l->port, l->key);
  if (n < 0 || (size_t)n >= sizeof req)
    return EINVAL;
  return gc__link_queue_raw(l, req, (size_t)n);
}

/* The value of header 'name' in the header block 'h' (lines ending in
 * CRLF), copied into 'out'; 0 when absent. */
static int header_value(const char *h, const char *name, char *out, size_t cap) {
  size_t nl = strlen(name);
  for (const char *p = strstr(h, "\r\n"); p && p[2]; p = strstr(p + 2, "\r\n")) {
    const char *line = p + 2;
    if (strncasecmp(line, name, nl) || line[nl] != ':')
      continue;
    const char *v = line + nl + 1;
    while (*v == ' ' || *v == '\t')
      v++;
    const char *e = strstr(v, "\r\n");
    size_t n = e ? (size_t)(e - v) : strlen(v);
    while (n && (v[n - 1] == ' ' || v[n - 1] == '\t'))
      n--;
    if (n >= cap)
      n = cap - 1;
    memcpy(out, v, n);
    out[n] = 0;
    return 1;
  }
  return 0;
}

static int ws_open(struct gc_link *l);

int gc__link_ws_answer(struct gc_link *l, const uint8_t *data, size_t len,
                       size_t *used) {
  size_t old = l->hlen;
  size_t take = len;
  if (old + take > GC_LINK_MAX_HEADER)
    take = GC_LINK_MAX_HEADER - old;
  uint8_t *nb = gc_realloc(l->hbuf, old + take + 1);
  if (!nb) {
    snprintf(l->reason, sizeof l->reason, "out of memory");
    return EPROTO;
  }
  l->hbuf = nb;
  memcpy(nb + old, data, take);
  l->hlen = old + take;
  nb[l->hlen] = 0;
  char *end = strstr((char *)nb, "\r\n\r\n");
  if (!end) {
    if (l->hlen >= GC_LINK_MAX_HEADER || memchr(nb, 0, l->hlen)) {
      snprintf(l->reason, sizeof l->reason, "upgrade answer too long");
      return EPROTO;
    }
    return EAGAIN;
  }
  size_t hdr_len = (size_t)(end - (char *)nb) + 4;
  *used = hdr_len - old;
  end[2] = 0; /* keep the last CRLF for header_value */
  int status = 0;
  if (sscanf((char *)nb, "HTTP/1.1 %d", &status) != 1) {
    snprintf(l->reason, sizeof l->reason, "not an HTTP answer");
    return EPROTO;
  }
  if (status != 101) {
    snprintf(l->reason, sizeof l->reason, "upgrade refused: HTTP %d", status);
    return EPROTO;
  }
  char accept[64], want[29], upgrade[32];
  if (!header_value((char *)nb, "upgrade", upgrade, sizeof upgrade) ||
      strcasecmp(upgrade, "websocket")) {
    snprintf(l->reason, sizeof l->reason, "upgrade answer without Upgrade: websocket");
    return EPROTO;
  }
  if (!header_value((char *)nb, "sec-websocket-accept", accept, sizeof accept) ||
      gc_ws_accept_key(l->key, want) != 0 || strcmp(accept, want)) {
    snprintf(l->reason, sizeof l->reason, "bad Sec-WebSocket-Accept");
    return EPROTO;
  }
  gc_free(l->hbuf);
  l->hbuf = NULL;
  l->hlen = 0;
  if (ws_open(l) != 0) {
    snprintf(l->reason, sizeof l->reason, "out of memory");
    return EPROTO;
  }
  return 0;
}

/* ---- wslay -------------------------------------------------------------------- */

static ssize_t ws_recv_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                          int flags, void *ud) {
  struct gc_link *l = ud;
  (void)flags;
  if (!l->in_len) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  size_t n = len < l->in_len ? len : l->in_len;
  memcpy(buf, l->in, n);
  l->in += n;
  l->in_len -= n;
  return (ssize_t)n;
}

static ssize_t ws_send_cb(wslay_event_context_ptr ctx, const uint8_t *data,
                          size_t len, int flags, void *ud) {
  (void)flags;
  if (gc__link_queue_raw(ud, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_NOMEM);
    return -1;
  }
  return (ssize_t)len;
}

static int ws_genmask_cb(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                         void *ud) {
  (void)ctx;
  for (size_t i = 0; i < len; i++)
    buf[i] = (uint8_t)link_rand(ud);
  return 0;
}

static void ws_msg_cb(wslay_event_context_ptr ctx,
                      const struct wslay_event_on_msg_recv_arg *arg, void *ud) {
  struct gc_link *l = ud;
  (void)ctx;
  if (wslay_is_ctrl_frame(arg->opcode))
    return; /* wslay answers pings and closes itself */
  if (l->state == GC_LINK_OPEN && l->ev.on_client_message)
    l->ev.on_client_message(l->user, (GCT_PTR)arg->msg, arg->msg_length);
}

static const struct wslay_event_callbacks ws_callbacks = {
    ws_recv_cb, ws_send_cb, ws_genmask_cb, NULL, NULL, NULL, ws_msg_cb};

static int ws_open(struct gc_link *l) {
  if (wslay_event_context_client_init(&l->ws, &ws_callbacks, l) != 0)
    return ENOMEM;
  uint64_t max = l->loop->server->cfg->max_output_msg_size;
  wslay_event_config_set_max_recv_msg_length(l->ws, max ? max : (16u << 20));
  return 0;
}

/* Moves what wslay made (pongs, closes) into the link's queue. */
static int ws_pump(struct gc_link *l) {
  return wslay_event_send(l->ws) == 0 ? 0 : EIO;
}

int gc__link_ws_recv(struct gc_link *l, const uint8_t *data, size_t len) {
  if (!l->ws)
    return EPROTO;
  l->in = data;
  l->in_len = len;
  l->in_recv = 1;
  int rc = wslay_event_recv(l->ws);
  l->in_recv = 0;
  l->in = NULL;
  l->in_len = 0;
  if (rc != 0 || l->torn)
    return rc ? EPROTO : 0;
  return ws_pump(l);
}

void gc__link_ws_close(struct gc_link *l) {
  if (!l->ws)
    return;
  (void)wslay_event_queue_close(l->ws, WSLAY_CODE_NORMAL_CLOSURE, NULL, 0);
  if (!l->in_recv) /* else gc__link_ws_recv pumps it after the input */
    (void)ws_pump(l);
}

int gc__link_ws_close_received(const struct gc_link *l) {
  return l->ws && wslay_event_get_close_received(l->ws);
}

int gc__link_ws_close_done(const struct gc_link *l) {
  return l->ws && wslay_event_get_close_received(l->ws) &&
         wslay_event_get_close_sent(l->ws);
}

void gc__link_ws_free(struct gc_link *l) {
  if (l->ws)
    wslay_event_context_free(l->ws);
  l->ws = NULL;
}
