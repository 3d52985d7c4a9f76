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
#include "tls_conn.h"
#include "transport.h"

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

/* Puts 'c' on the TLS transport with 'ssl' (taken, freed on failure). */
static int tls_attach(struct gc_conn *c, SSL *ssl) {
  BIO_METHOD *bio_method = gc__tls_bio_method();
  if (!bio_method) {
    SSL_free(ssl);
    return ENOMEM;
  }
  struct gc_tls_conn *t = gc_calloc(1, sizeof *t);
  BIO *bio = t ? BIO_new(bio_method) : NULL;
  if (!bio) {
    SSL_free(ssl);
    gc_free(t);
    ERR_clear_error();
    return ENOMEM;
  }
  t->ssl = ssl;
  BIO_set_data(bio, t);
  SSL_set_bio(t->ssl, bio, bio);
  t->c = c;
  c->tls = t;
  c->tp = &gc_transport_tls;
  return 0;
}

int gc__tls_conn_attach(struct gc_conn *c, struct gc_tls_keys *k) {
  SSL_CTX *ctx = gc_tls_keys_ctx(k);
  SSL *ssl = SSL_new(ctx); /* takes a reference of its own */
  SSL_CTX_free(ctx);
  if (!ssl) {
    ERR_clear_error();
    return ENOMEM;
  }
  SSL_set_accept_state(ssl);
  return tls_attach(c, ssl);
}

static void tls_input(struct gc_conn *c, const uint8_t *data, size_t len);

int gc__tls_conn_attach_client(struct gc_conn *c, SSL_CTX *ctx, const char *host) {
  SSL *ssl = gc_tls_client_ssl_new(ctx, host);
  if (!ssl)
    return EINVAL;
  int rc = tls_attach(c, ssl);
  if (rc == 0)
    tls_input(c, (const uint8_t *)"", 0); /* the ClientHello */
  return rc;
}

void gc__tls_adopt_discard(struct gc_adopt *a) {
  tls_free(a->tls);
  a->tls = NULL;
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
  gc__tls_flush(c, t); /* OpenSSL's alert, if the kernel takes it now */
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
        gc__tls_flush(c, t);
      else
        handshake_failed(c, t);
      return;
    }
    gc__tls_flush(c, t);
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
      gc__tls_flush(c, t);
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
    gc__tls_flush(c, t);
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
  (void)gc__tls_stage_push(c, t);
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
    .try_write = gc__tls_try_write,
    .write = gc__tls_write,
    .local_addr = gc__tcp_local_addr,
    .closed = tls_closed,
    .hand_over = tls_hand_over,
    .adopt = tls_adopt,
    .drain_inline = 0,
    .input = tls_input,
    .ending = tls_ending,
};
