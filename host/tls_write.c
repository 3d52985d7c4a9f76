/* tls_write.c - the TLS transport's output (see transport_tls.c): its BIO,
 * and each flush's batch encrypted once, small frames gathered into full
 * records, the ciphertext handed to the kernel with one write. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "tls_conn.h"
#include "transport.h"

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

BIO_METHOD *gc__tls_bio_method(void) {
  if (pthread_once(&bio_once, bio_init_once) != 0)
    return NULL;
  return bio_method;
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

int gc__tls_stage_push(struct gc_conn *c, struct gc_tls_conn *t) {
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

void gc__tls_flush(struct gc_conn *c, struct gc_tls_conn *t) {
  if (t->flying || t->stage.off == t->stage.len || c->state == GC_CONN_DEAD)
    return;
  int rc = gc__tls_stage_push(c, t);
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
  gc__tls_flush(c, t); /* what OpenSSL or the batch added meanwhile */
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

int gc__tls_try_write(struct gc_conn *c, const uv_buf_t *iov, size_t n) {
  struct gc_tls_conn *t = c->tls;
  if (!SSL_is_init_finished(t->ssl) || t->flying)
    return 0;
  int rc;
  if (t->stage.len) {
    if ((rc = gc__tls_stage_push(c, t)) != 0)
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
  if ((rc = gc__tls_stage_push(c, t)) != 0)
    return rc;
  if (t->stage.len)
    return 0;
  t->enc_ahead = 0;
  return (int)e;
}

int gc__tls_write(struct gc_conn *c, const uv_buf_t *iov, size_t n,
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
