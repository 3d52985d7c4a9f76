/* transport_tls.c - wss: a client on a TCP socket with OpenSSL in between,
 * on the loop, without a thread or a blocking call.
 *
 * OpenSSL sees the socket through a BIO of our own: its reads take the
 * bytes the loop just read (no copy into a memory BIO), its writes append
 * to 'stage', the connection's ciphertext not yet written. Output stays
 * corked as on TCP: a flush encrypts the connection's queue (up to
 * GC_TLS_BATCH bytes, small messages gathered into full records) once,
 * then hands the ciphertext to the kernel with one write. The plaintext
 * stays in the connection's queue until its ciphertext is in the kernel,
 * so on_message_sent, the queue limits and a NORMAL close's drain mean
 * what they mean on TCP; 'enc_ahead' counts the queue's first bytes that
 * are encrypted already. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "mailbox.h"
#include "tls.h"
#include "transport.h"

/* Plaintext encrypted per flush at most: bounds the ciphertext a
 * connection holds while the kernel does not take it. */
#define GC_TLS_BATCH (256u << 10)
/* The largest TLS record's plaintext. */
#define GC_TLS_RECORD 16384

struct gc_tls_buf {
  uint8_t *p;
  size_t len, off, cap;
};

struct gc_tls_conn {
  SSL *ssl;
  struct gc_conn *c;
  const uint8_t *in; /* ciphertext being read, not owned */
  size_t in_len;
  uint8_t *pending; /* ciphertext a hand-over carried (owned) */
  size_t pending_len;
  struct gc_tls_buf stage; /* ciphertext not yet written (owned) */
  uint8_t *fly; /* the buffer of the uv_write in flight (owned) */
  uv_write_t wreq;
  size_t enc_ahead; /* bytes of the queue's head encrypted in stage/fly */
  unsigned flying : 1;       /* 'wreq' in progress */
  unsigned conn_waiting : 1; /* the connection's write ends with it */
  unsigned wait_hs : 1;      /* a write waits for the handshake */
  unsigned got_notify : 1;   /* the peer's close_notify came */
  unsigned tcp_reading : 1;  /* the socket is read (see tls_read_stop) */
};

/* ---- the BIO ------------------------------------------------------------- */

static BIO_METHOD *bio_method;
static pthread_once_t bio_once = PTHREAD_ONCE_INIT;

static int bio_write(BIO *b, const char *data, int len) {
  struct gc_tls_conn *t = BIO_get_data(b);
  struct gc_tls_buf *s = &t->stage;
  BIO_clear_retry_flags(b);
  if (len <= 0)
    return 0;
  if (s->len + (size_t)len > s->cap) {
    size_t cap = s->cap ? s->cap : 4096;
    while (cap < s->len + (size_t)len)
      cap *= 2;
    uint8_t *p = gc_realloc(s->p, cap);
    if (!p)
      return -1;
    s->p = p;
    s->cap = cap;
  }
  memcpy(s->p + s->len, data, (size_t)len);
  s->len += (size_t)len;
  return len;
}

static int bio_read(BIO *b, char *out, int len) {
  struct gc_tls_conn *t = BIO_get_data(b);
  BIO_clear_retry_flags(b);
  if (!t->in_len) {
    BIO_set_retry_read(b);
    return -1;
  }
  size_t n = (size_t)len < t->in_len ? (size_t)len : t->in_len;
  memcpy(out, t->in, n);
  t->in += n;
  t->in_len -= n;
  return (int)n;
}

static long bio_ctrl(BIO *b, int cmd, long num, void *ptr) {
  (void)b, (void)num, (void)ptr;
  return cmd == BIO_CTRL_FLUSH ? 1 : 0;
}

static int bio_create(BIO *b) {
  BIO_set_init(b, 1);
  return 1;
}

static void bio_init_once(void) {
  BIO_METHOD *m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "gcs");
  if (m && BIO_meth_set_write(m, bio_write) && BIO_meth_set_read(m, bio_read) &&
      BIO_meth_set_ctrl(m, bio_ctrl) && BIO_meth_set_create(m, bio_create)) {
    bio_method = m;
    return;
  }
  BIO_meth_free(m);
}

/* ---- the connection's state ---------------------------------------------- */

static void tls_free(struct gc_tls_conn *t) {
  if (!t)
    return;
  SSL_free(t->ssl); /* and its BIO */
  gc_free(t->stage.p);
  gc_free(t->pending);
  gc_free(t->fly);
  gc_free(t);
}

int gc__tls_conn_attach(struct gc_conn *c, struct gc_tls_keys *k) {
  if (pthread_once(&bio_once, bio_init_once) != 0 || !bio_method)
    return ENOMEM;
  struct gc_tls_conn *t = gc_calloc(1, sizeof *t);
  if (!t)
    return ENOMEM;
  SSL_CTX *ctx = gc_tls_keys_ctx(k);
  t->ssl = SSL_new(ctx); /* takes a reference of its own */
  SSL_CTX_free(ctx);
  BIO *bio = t->ssl ? BIO_new(bio_method) : NULL;
  if (!bio) {
    tls_free(t);
    ERR_clear_error();
    return ENOMEM;
  }
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio);
  SSL_set_accept_state(t->ssl);
  t->c = c;
  c->tls = t;
  c->tp = &gc_transport_tls;
  return 0;
}

void gc__tls_adopt_discard(struct gc_adopt *a) {
  tls_free(a->tls);
  a->tls = NULL;
}

/* ---- writing ------------------------------------------------------------- */

static void on_fly(uv_write_t *req, int status);

/* Hands what 'stage' holds to a background write: 0 or a libuv error. */
static int fly_start(struct gc_conn *c, struct gc_tls_conn *t) {
  struct gc_tls_buf s = t->stage;
  uv_buf_t b = uv_buf_init((char *)s.p + s.off, (unsigned)(s.len - s.off));
  memset(&t->stage, 0, sizeof t->stage);
  t->fly = s.p;
  t->wreq.data = t;
  int rc = uv_write(&t->wreq, (uv_stream_t *)&c->tcp, &b, 1, on_fly);
  if (rc) {
    gc_free(t->fly);
    t->fly = NULL;
    return rc;
  }
  t->flying = 1;
  return 0;
}

/* Writes what 'stage' holds as far as the kernel takes it now: 0 (the
 * rest, if any, stays), or a negative libuv error. */
static int stage_push(struct gc_conn *c, struct gc_tls_conn *t) {
  struct gc_tls_buf *s = &t->stage;
  while (s->off < s->len) {
    uv_buf_t b = uv_buf_init((char *)s->p + s->off, (unsigned)(s->len - s->off));
    int w = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    if (w == UV_EAGAIN || w == UV_ENOSYS)
      return 0;
    if (w < 0)
      return w;
    s->off += (size_t)w;
  }
  /* All out: an idle connection keeps no buffer. */
  gc_free(s->p);
  memset(s, 0, sizeof *s);
  return 0;
}

/* Output of OpenSSL's own (handshake, alerts): written now, the rest in
 * the background unless a write is in flight already. */
static void tls_flush(struct gc_conn *c, struct gc_tls_conn *t) {
  if (t->flying || t->stage.off == t->stage.len || c->state == GC_CONN_DEAD)
    return;
  int rc = stage_push(c, t);
  if (rc == 0 && t->stage.len)
    rc = fly_start(c, t);
  if (rc) {
    gc__conn_log(c, GCL_INFO, "write failed: %s", uv_strerror(rc));
    gc__conn_teardown(c);
  }
}

static void on_fly(uv_write_t *req, int status) {
  struct gc_tls_conn *t = req->data;
  struct gc_conn *c = t->c;
  gc_free(t->fly);
  t->fly = NULL;
  t->flying = 0;
  if (status < 0 || c->state == GC_CONN_DEAD) {
    if (t->conn_waiting) {
      t->conn_waiting = 0;
      gc__conn_write_done(c, status < 0 ? status : 0, 0);
    } else if (c->state != GC_CONN_DEAD) {
      gc__conn_log(c, GCL_INFO, "write failed: %s", uv_strerror(status));
      gc__conn_teardown(c);
    }
    return;
  }
  tls_flush(c, t); /* what OpenSSL or the batch added meanwhile */
  if (t->flying || c->state == GC_CONN_DEAD || !t->conn_waiting)
    return;
  size_t done = t->enc_ahead;
  t->conn_waiting = 0;
  t->enc_ahead = 0;
  gc__conn_write_done(c, 0, done);
}

/* SSL_write of 'len' bytes: our BIO takes everything, so it writes them
 * all or fails. 0 or -1. */
static int ssl_write_all(struct gc_tls_conn *t, const uint8_t *p, size_t len) {
  while (len) {
    int chunk = len > (1u << 30) ? (1 << 30) : (int)len;
    ERR_clear_error();
    int w = SSL_write(t->ssl, p, chunk);
    if (w <= 0)
      return -1;
    p += w;
    len -= (size_t)w;
  }
  return 0;
}

/* Encrypts the queue's bytes in 'iov' from 'skip' on, at most 'max' of
 * them, into 'stage': small pieces (frame headers, short messages) are
 * gathered into full records, large ones go to SSL_write as they are. The
 * bytes encrypted, or -1. */
static ssize_t encrypt_iov(struct gc_tls_conn *t, const uv_buf_t *iov, size_t n,
                           size_t skip, size_t max) {
  static _Thread_local uint8_t gather[GC_TLS_RECORD];
  size_t glen = 0, done = 0;
  for (size_t i = 0; i < n && done < max; i++) {
    const uint8_t *p = (const uint8_t *)iov[i].base;
    size_t len = iov[i].len;
    if (skip >= len) {
      skip -= len;
      continue;
    }
    p += skip;
    len -= skip;
    skip = 0;
    if (len > max - done)
      len = max - done;
    done += len;
    while (len) {
      if (glen == 0 && len >= GC_TLS_RECORD) {
        if (ssl_write_all(t, p, len) != 0)
          return -1;
        break;
      }
      size_t take = len < GC_TLS_RECORD - glen ? len : GC_TLS_RECORD - glen;
      memcpy(gather + glen, p, take);
      glen += take;
      p += take;
      len -= take;
      if (glen == GC_TLS_RECORD) {
        if (ssl_write_all(t, gather, glen) != 0)
          return -1;
        glen = 0;
      }
    }
  }
  if (glen && ssl_write_all(t, gather, glen) != 0)
    return -1;
  return (ssize_t)done;
}

static int tls_try_write(struct gc_conn *c, const uv_buf_t *iov, size_t n) {
  struct gc_tls_conn *t = c->tls;
  if (!SSL_is_init_finished(t->ssl) || t->flying)
    return 0;
  int rc;
  if (t->stage.len) {
    if ((rc = stage_push(c, t)) != 0)
      return rc;
    if (t->stage.len)
      return 0;
    if (t->enc_ahead) {
      size_t done = t->enc_ahead;
      t->enc_ahead = 0;
      return (int)done;
    }
  }
  ssize_t e = encrypt_iov(t, iov, n, 0, GC_TLS_BATCH);
  if (e < 0) {
    ERR_clear_error();
    return UV_ENOMEM;
  }
  t->enc_ahead = (size_t)e;
  if ((rc = stage_push(c, t)) != 0)
    return rc;
  if (t->stage.len)
    return 0;
  t->enc_ahead = 0;
  return (int)e;
}

static int tls_write(struct gc_conn *c, const uv_buf_t *iov, size_t n,
                     size_t total) {
  struct gc_tls_conn *t = c->tls;
  if (!SSL_is_init_finished(t->ssl)) {
    /* An HTTP answer before the handshake ended (503 at accept): it goes
     * out once the handshake is over, for which the socket is read. */
    t->wait_hs = 1;
    if (!t->tcp_reading) {
      int rc = gc__tcp_read_start(c);
      if (rc)
        return rc;
      t->tcp_reading = 1;
    }
    return 0;
  }
  if (t->enc_ahead < total && t->enc_ahead < GC_TLS_BATCH) {
    ssize_t e = encrypt_iov(t, iov, n, t->enc_ahead, GC_TLS_BATCH - t->enc_ahead);
    if (e < 0) {
      ERR_clear_error();
      return UV_ENOMEM;
    }
    t->enc_ahead += (size_t)e;
  }
  t->conn_waiting = 1;
  if (t->flying)
    return 0; /* on_fly goes on with the stage */
  int rc = t->stage.len ? fly_start(c, t) : UV_EIO;
  if (rc)
    t->conn_waiting = 0;
  return rc;
}

/* ---- reading ------------------------------------------------------------- */

static void handshake_failed(struct gc_conn *c, struct gc_tls_conn *t) {
  unsigned long e = ERR_peek_last_error();
  const char *why = e ? ERR_reason_error_string(e) : NULL;
  if (e && ERR_GET_LIB(e) == ERR_LIB_SSL && ERR_GET_REASON(e) == SSL_R_HTTP_REQUEST)
    why = "a plain HTTP request on a wss port";
  ERR_clear_error();
  gc__conn_log(c, GCL_INFO, "TLS handshake failed (%s), closed",
               why ? why : "connection error");
  tls_flush(c, t); /* OpenSSL's alert, if the kernel takes it now */
  gc__conn_teardown(c);
}

/* Runs OpenSSL over the ciphertext in t->in: the handshake, then every
 * record's plaintext to gc__conn_input, then what OpenSSL has to say. */
static void tls_pump(struct gc_conn *c, struct gc_tls_conn *t) {
  static _Thread_local int depth;
  static _Thread_local uint8_t plain_buf[GC_TLS_RECORD];
  if (!SSL_is_init_finished(t->ssl)) {
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
      int e = SSL_get_error(t->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        tls_flush(c, t);
      else
        handshake_failed(c, t);
      return;
    }
    tls_flush(c, t);
    if (!c->reading && t->tcp_reading) {
      gc__tcp_read_stop(c); /* as asked meanwhile (tls_read_stop) */
      t->tcp_reading = 0;
    }
    if (t->wait_hs && c->state != GC_CONN_DEAD) {
      t->wait_hs = 0;
      gc__conn_write_done(c, 0, 0); /* what waited for the handshake */
    }
  }
  /* The buffer is the thread's; a pump inside a pump (an adoption's
   * pending input) has one of its own. */
  uint8_t *plain = depth ? gc_malloc(GC_TLS_RECORD) : plain_buf;
  if (!plain) {
    gc__conn_teardown(c);
    return;
  }
  depth++;
  while (c->state != GC_CONN_DEAD) {
    ERR_clear_error();
    int n = SSL_read(t->ssl, plain, GC_TLS_RECORD);
    if (n > 0) {
      gc__conn_input(c, plain, (size_t)n);
      if (c->tls != t)
        break; /* handed to another loop: 't' is no longer ours */
      continue;
    }
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      tls_flush(c, t);
      break;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
      t->got_notify = 1; /* the peer's close_notify: no more input */
      c->peer_eof = 1;
    } else {
      unsigned long err = ERR_peek_last_error();
      const char *why = err ? ERR_reason_error_string(err) : NULL;
      gc__conn_log(c, GCL_INFO, "TLS error (%s), closed", why ? why : "?");
      ERR_clear_error();
    }
    tls_flush(c, t);
    gc__conn_teardown(c);
    break;
  }
  depth--;
  if (plain != plain_buf)
    gc_free(plain);
}

static void tls_input(struct gc_conn *c, const uint8_t *data, size_t len) {
  struct gc_tls_conn *t = c->tls;
  if (!t || c->state == GC_CONN_DEAD)
    return;
  t->in = data;
  t->in_len = len;
  tls_pump(c, t);
  if (c->tls == t) {
    t->in = NULL; /* the rest of a dead connection's input is dropped */
    t->in_len = 0;
  }
}

static int tls_read_start(struct gc_conn *c) {
  struct gc_tls_conn *t = c->tls;
  int rc = 0;
  if (!t->tcp_reading && (rc = gc__tcp_read_start(c)) == 0)
    t->tcp_reading = 1;
  if (rc == 0 && t->pending) {
    /* What came after the upgrade request on the loop that read it. */
    uint8_t *p = t->pending;
    size_t n = t->pending_len;
    t->pending = NULL;
    t->pending_len = 0;
    tls_input(c, p, n);
    gc_free(p);
  }
  return rc;
}

/* An HTTP answer before the handshake ended stops reading, but TLS must
 * read on to finish its handshake before the answer can go out: the
 * socket is read until then (the handshake deadline bounds it;
 * gc__conn_input ignores what comes meanwhile). */
static void tls_read_stop(struct gc_conn *c) {
  struct gc_tls_conn *t = c->tls;
  if (!t || !t->tcp_reading || !SSL_is_init_finished(t->ssl))
    return;
  gc__tcp_read_stop(c);
  t->tcp_reading = 0;
}

/* ---- the end, and moving between loops ----------------------------------- */

/* A close_notify after an orderly end (the close frames exchanged, an
 * HTTP answer out, the peer's own close_notify), if the kernel takes it
 * now; a dropped connection just ends. */
static void tls_ending(struct gc_conn *c) {
  struct gc_tls_conn *t = c->tls;
  if (!t || t->flying || t->stage.len || c->q.head ||
      !SSL_is_init_finished(t->ssl))
    return;
  int orderly = t->got_notify || c->close_after_flush ||
                (c->ws && wslay_event_get_close_sent(c->ws->ctx));
  if (!orderly)
    return;
  ERR_clear_error();
  (void)SSL_shutdown(t->ssl);
  ERR_clear_error();
  (void)stage_push(c, t);
}

static void tls_closed(struct gc_conn *c) {
  tls_free(c->tls);
  c->tls = NULL;
}

static int tls_hand_over(struct gc_conn *c, struct gc_adopt *a) {
  struct gc_tls_conn *t = c->tls;
  if (t->flying)
    return EBUSY; /* the socket's write belongs to this loop */
  if (t->in_len) {
    uint8_t *p = gc_realloc(t->pending, t->pending_len + t->in_len);
    if (!p)
      return ENOMEM;
    memcpy(p + t->pending_len, t->in, t->in_len);
    t->pending = p;
    t->pending_len += t->in_len;
  }
  int rc = gc__tcp_hand_over(c, a);
  if (rc)
    return rc;
  t->in = NULL;
  t->in_len = 0;
  a->tls = t;
  c->tls = NULL;
  return 0;
}

static int tls_adopt(struct gc_conn *c, struct gc_adopt *a) {
  int rc = gc__tcp_adopt(c, a);
  if (rc)
    return rc;
  c->tls = a->tls;
  a->tls = NULL;
  c->tls->c = c;
  c->tls->tcp_reading = 0; /* a new handle */
  /* Output left from the handshake goes with the next flush. */
  return 0;
}

const struct gc_transport gc_transport_tls = {
    .name = "tls",
    .read_start = tls_read_start,
    .read_stop = tls_read_stop,
    .try_write = tls_try_write,
    .write = tls_write,
    .local_addr = gc__tcp_local_addr,
    .closed = tls_closed,
    .hand_over = tls_hand_over,
    .adopt = tls_adopt,
    .drain_inline = 0,
    .input = tls_input,
    .ending = tls_ending,
};
