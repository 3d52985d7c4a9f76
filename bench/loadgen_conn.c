/* loadgen_conn.c - the load generator's connections: connect, upgrade,
 * open, close; reads and writes with libuv (what the ring does not take),
 * and the bytes read handed to the parsers. */
#include <openssl/err.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "loadgen.h"

static uint8_t rbuf[1 << 18];

static void on_open(struct conn *c);
static void setup_check(void);

/* ---- writing and reading with libuv -------------------------------------- */

static void on_write(uv_write_t *req, int status) {
  struct conn *c = req->data;
  c->wbusy = 0;
  c->out[!c->cur].len = 0;
  if (status < 0) {
    if (status != UV_ECANCELED && !stopping) {
      st.conn_errors++;
      error_at(c, "write: %s", uv_strerror(status));
    }
    return;
  }
  if (c->state == C_OPEN || c->state == C_HANDSHAKE)
    flush(c);
}

void flush(struct conn *c) {
  struct obuf *b = &c->out[c->cur];
  if (c->ring) { /* one IORING_OP_SEND at a time, started after the pass */
    if (c->state == C_OPEN && !c->tx && (c->wbusy || b->len)) {
      tx_mark(c);
      if (!tx_defer)
        ring_submit();
    }
    return;
  }
  if (c->wbusy || c->state == C_CLOSING || c->state == C_FREE)
    return;
  if (c->ssl && tls_seal(c, b) != 0) {
    st.conn_errors++;
    error_at(c, "TLS write failed");
    conn_close(c, 1);
    return;
  }
  if (!b->len)
    return;
  uv_buf_t buf = uv_buf_init((char *)b->p, (unsigned)b->len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  if (n == UV_EAGAIN)
    n = 0;
  if (n < 0) {
    st.conn_errors++;
    error_at(c, "write: %s", uv_strerror(n));
    conn_close(c, 1);
    return;
  }
  if ((size_t)n == b->len) {
    b->len = 0;
    return;
  }
  buf = uv_buf_init((char *)b->p + n, (unsigned)(b->len - (size_t)n));
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
    st.conn_errors++;
    error_at(c, "uv_write failed");
    conn_close(c, 1);
    return;
  }
  c->wbusy = 1;
  c->cur = !c->cur;
}

static long consume(struct conn *c, const uint8_t *p, size_t len) {
  size_t off = 0;
  if (c->state == C_HANDSHAKE) {
    long n = parse_upgrade(c, p, len);
    if (n < 0) {
      st.conn_errors++;
      conn_close(c, 1);
      return -1;
    }
    if (n == 0)
      return 0;
    off = (size_t)n;
    on_open(c);
    if (c->state != C_OPEN)
      return -1;
  }
  if (c->state != C_OPEN)
    return -1;
  long n = c->flood  ? flood_discard(c, p + off, len - off)
           : opt.raw ? parse_raw(c, p + off, len - off)
                     : parse_frames(c, p + off, len - off);
  if (n < 0)
    return -1;
  return (long)off + n;
}

void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct conn *c = h->data;
  /* A flooder: 128 KiB per read, one read per loop turn (flood_pause). */
  *buf = uv_buf_init((char *)rbuf, c->flood ? 131072u : (unsigned)sizeof rbuf);
}

static void keep_input(struct conn *c, const uint8_t *p, size_t n) {
  if (c->in_len + n > c->in_cap) {
    size_t cap = c->in_cap ? c->in_cap : 1024;
    while (cap < c->in_len + n)
      cap *= 2;
    c->in = realloc(c->in, cap);
    if (!c->in) {
      fprintf(stderr, "loadgen: out of memory\n");
      exit(1);
    }
    c->in_cap = cap;
  }
  memmove(c->in + c->in_len, p, n);
  c->in_len += n;
}

/* Bytes read for c: frames parsed, a partial one kept, replies flushed. */
void input(struct conn *c, const uint8_t *data, size_t len) {
  if (c->in_len) {
    keep_input(c, data, len);
    data = c->in;
    len = c->in_len;
  }
  long used = consume(c, data, len);
  if (used < 0 || c->state != C_OPEN)
    return; /* closed (or handshake mode done) */
  if (data == c->in) {
    if (used) /* not the whole of a partial frame again */
      memmove(c->in, c->in + used, len - (size_t)used);
    c->in_len = len - (size_t)used;
  } else if ((size_t)used < len) {
    keep_input(c, data + used, len - (size_t)used);
  }
  flush(c);
}

void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = s->data;
  if (nread == 0)
    return;
  now_ns = uv_hrtime();
  if (nread < 0) {
    if (!stopping) {
      st.closed++;
      st.conn_errors++;
      error_at(c, "read: %s", uv_strerror((int)nread));
    }
    conn_close(c, 1);
    return;
  }
  const uint8_t *data = rbuf;
  size_t len = (size_t)nread;
  if (c->ssl) {
    if (BIO_write(c->rb, rbuf, (int)nread) != (int)nread || tls_read(c, &len) != 0) {
      st.conn_errors++;
      error_at(c, "TLS: %s", ERR_reason_error_string(ERR_peek_last_error()));
      ERR_clear_error();
      conn_close(c, 1);
      return;
    }
    data = pbuf;
    if (!len) {
      flush(c); /* the handshake's next flight */
      return;
    }
  }
  if (c->flood && c->state == C_OPEN) {
    long used = flood_discard(c, rbuf, len);
    if (used >= 0 && c->state == C_OPEN && (size_t)nread == buf->len)
      flood_pause(c);
    return;
  }
  input(c, data, len);
}

/* ---- connections --------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  c->state = C_FREE;
  c->in_len = 0;
  if (c->ssl) {
    SSL_free(c->ssl); /* and its BIOs */
    c->ssl = NULL;
    c->pre.len = 0;
  }
  c->out[0].len = c->out[1].len = 0;
  c->wbusy = 0;
  c->cur = 0;
  c->ring = 0;
  c->woff = 0;
  if (opt.mode == M_HANDSHAKE && !stopping)
    conn_start(c);
}

void conn_close(struct conn *c, int reset) {
  if (c->state == C_FREE || c->state == C_CLOSING)
    return;
  int was_open = c->state == C_OPEN;
  int was_pending = c->state == C_CONNECTING || c->state == C_HANDSHAKE;
  if (was_pending)
    pending--;
  c->state = C_CLOSING;
  if (c->rx || c->tx)
    rx_cancel(c);
  if (was_open && opt.mode != M_HANDSHAKE)
    opened--;
  if (!reset || uv_tcp_close_reset(&c->tcp, on_closed) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_closed);
  if (was_pending && !started && opt.mode != M_HANDSHAKE) {
    open_more();
    setup_check();
  }
}


static void on_connect(uv_connect_t *req, int status) {
  struct conn *c = req->data;
  now_ns = uv_hrtime();
  if (status < 0) {
    if (status != UV_ECANCELED && !stopping) {
      st.conn_errors++;
      error_at(c, "connect: %s", uv_strerror(status));
    }
    if (c->state == C_CONNECTING) {
      pending--;
      c->state = C_CLOSING;
      uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
    if (opt.mode != M_HANDSHAKE) {
      open_more();
      setup_check();
    }
    return;
  }
  if (c->state != C_CONNECTING)
    return;
  c->state = C_HANDSHAKE;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    st.conn_errors++;
    conn_close(c, 1);
    return;
  }
  if (opt.raw) {
    on_open(c);
    if (c->state == C_OPEN)
      flush(c);
    return;
  }
  uint8_t nonce[16];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = xorshift();
    memcpy(nonce + i, &r, 4);
  }
  EVP_EncodeBlock((unsigned char *)c->key, nonce, 16);
  char path[256];
  if (opt.mode == M_BROADCAST)
    snprintf(path, sizeof path, c->is_sender ? "%s?room=bench&name=s"
                                             : "%s?room=bench&name=r%d",
             opt.path, c->id);
  else if (opt.rooms)
    snprintf(path, sizeof path, "%s%croom=%d", opt.path,
             strchr(opt.path, '?') ? '&' : '?', c->id % opt.rooms);
  else
    snprintf(path, sizeof path, "%s", opt.path);
  char req_txt[512];
  int n = snprintf(req_txt, sizeof req_txt,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   path, opt.host, opt.port, c->key);
  if (c->ssl) {
    ob_append(&c->pre, req_txt, (size_t)n);
    ERR_clear_error();
    (void)SSL_do_handshake(c->ssl); /* the ClientHello */
  } else {
    ob_append(&c->out[c->cur], req_txt, (size_t)n);
  }
  flush(c);
}

void conn_start(struct conn *c) {
  struct sockaddr_in addr;
  uv_ip4_addr(opt.host, opt.port, &addr);
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  c->state = C_CONNECTING;
  c->sent = c->recvd = 0;
  c->raw_off = 0;
  c->ws_off = c->ws_rest = 0;
  c->t_start = uv_hrtime();
  if (opt.tls)
    tls_conn_init(c);
  pending++;
  uv_tcp_nodelay(&c->tcp, 1);
  int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr,
                          on_connect);
  if (rc != 0) {
    st.conn_errors++;
    error_at(c, "connect: %s", uv_strerror(rc));
    pending--;
    c->state = C_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
  }
}

int setup_total(void) {
  return opt.mode == M_BROADCAST ? opt.receivers + 1
                                 : opt.conns + opt.flood_conns;
}

/* Connects the next slots, at most --concurrency at a time. The broadcast
 * sender (the last slot) only once every receiver is in. */
void open_more(void) {
  int total = setup_total();
  while (!stopping && pending < opt.concurrency && next_to_open < total) {
    struct conn *c = &conns[next_to_open];
    if (c->is_sender && pending > 0)
      break; /* every receiver in first */
    next_to_open++;
    conn_start(c);
  }
}

static void on_open(struct conn *c) {
  c->state = C_OPEN;
  pending--;
  if (opt.mode == M_HANDSHAKE) {
    if (measuring) {
      st.handshakes++;
      h_record(now_ns - c->t_start);
    }
    conn_close(c, 1);
    return;
  }
  opened++;
  if (rx_ready && opt.mode == M_BROADCAST && !c->is_sender && !c->ssl)
    rx_arm(c);
  if (rx_ready && opt.mode == M_ECHO && !c->ssl && !c->flood) {
    /* both directions through the ring; a uv_write of the upgrade request
     * still in flight (never seen) would keep the writes with libuv */
    c->ring = !c->wbusy;
    rx_arm(c);
  }
  if (opt.mode == M_IDLE)
    send_message(c); /* one echo, then idle */
  open_more();
  setup_check();
}

/* Once every connection was tried: the traffic starts with those open. */
static void setup_check(void) {
  if (started || stopping || opt.mode == M_IDLE || opt.mode == M_HANDSHAKE)
    return;
  if (next_to_open < setup_total() || pending > 0)
    return;
  if (opened == 0 ||
      (opt.mode == M_BROADCAST && conns[opt.receivers].state != C_OPEN)) {
    error_at(NULL, "no connection could be opened");
    finish();
    return;
  }
  start_traffic();
}
