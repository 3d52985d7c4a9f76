/* link_tls.c - a link over TLS (wss): the TCP transport's socket
 * (link_tcp.c) with an OpenSSL client in between, on the loop, without a
 * thread or a blocking call.
 *
 * OpenSSL reads the socket's bytes from one memory BIO and writes its
 * ciphertext to another; after every OpenSSL call what it wrote goes to
 * the socket in one uv_write of its own (libuv keeps their order), so
 * handshake records, alerts and application data leave in the order
 * OpenSSL made them. A link write (link.h) is encrypted at once and ends
 * with the uv_write that carries its ciphertext. The handshake runs
 * inside the attempt's bound (GC_LINK_CONNECT_MS); the WebSocket upgrade
 * starts once it is over. The server's certificate is checked against
 * the server's client SSL_CTX (config "s2s") and the link's host name. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "alloc.h"
#include "internal.h"
#include "link.h"
#include "tls.h"

struct gc_link_tls {
  SSL *ssl;
  BIO *net_in;  /* the socket's bytes, for OpenSSL (owned by 'ssl') */
  BIO *net_out; /* OpenSSL's bytes, for the socket (owned by 'ssl') */
  unsigned done : 1; /* handshake over: the upgrade was started */
};

/* One uv_write of ciphertext; 'link_write' when it ends a link write. */
struct tls_wr {
  uv_write_t req;
  struct gc_link *l;
  int link_write;
  uint8_t data[];
};

void gc__link_tls_free(struct gc_link *l) {
  if (!l->tls)
    return;
  SSL_free(l->tls->ssl); /* and both BIOs */
  gc_free(l->tls);
  l->tls = NULL;
}

static void on_wr(uv_write_t *req, int status) {
  struct tls_wr *w = req->data;
  struct gc_link *l = w->l;
  int link_write = w->link_write;
  gc_free(w);
  if (link_write)
    gc__link_write_done(l, status);
}

/* Writes what OpenSSL produced: 0 or a negative libuv error. With
 * 'link_write', the write is made even when empty, so it still ends. */
static int tls_out(struct gc_link *l, int link_write) {
  struct gc_link_tls *t = l->tls;
  size_t n = BIO_ctrl_pending(t->net_out);
  if (!n && !link_write)
    return 0;
  struct tls_wr *w = gc_malloc(sizeof *w + n);
  if (!w)
    return UV_ENOMEM;
  if (n && BIO_read(t->net_out, w->data, (int)n) != (int)n) {
    gc_free(w);
    return UV_EIO;
  }
  w->l = l;
  w->link_write = link_write;
  w->req.data = w;
  uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)n);
  int rc = uv_write(&w->req, (uv_stream_t *)&l->io.tcp, &b, 1, on_wr);
  if (rc < 0)
    gc_free(w);
  return rc;
}

/* OpenSSL's own output; a failure ends the link. */
static void tls_flush(struct gc_link *l) {
  int rc = tls_out(l, 0);
  if (rc < 0) {
    char why[96];
    snprintf(why, sizeof why, "write failed: %s", uv_strerror(rc));
    gc__link_fail(l, why);
  }
}

/* ---- connecting ----------------------------------------------------------- */

/* The socket first: once its handle is made, a failure here closes it
 * through the usual teardown (gc__link_create checked the SSL_CTX). */
static int tls_connect(struct gc_link *l) {
  int rc = gc__link_tcp_connect(l);
  if (rc)
    return rc;
  struct gc_link_tls *t = gc_calloc(1, sizeof *t);
  if (!t)
    return ENOMEM;
  l->tls = t;
  if (!(t->ssl = gc_tls_client_ssl_new(l->loop->server->s2s_ctx, l->host)))
    return ENOMEM; /* the host name was checked when the link was made */
  t->net_in = BIO_new(BIO_s_mem());
  t->net_out = BIO_new(BIO_s_mem());
  if (!t->net_in || !t->net_out) {
    BIO_free(t->net_in);
    BIO_free(t->net_out);
    ERR_clear_error();
    return ENOMEM;
  }
  /* An empty input BIO means "wait for the socket", not end of stream. */
  BIO_set_mem_eof_return(t->net_in, -1);
  BIO_set_mem_eof_return(t->net_out, -1);
  SSL_set_bio(t->ssl, t->net_in, t->net_out);
  return 0;
}

/* The handshake failed: the reason for on_client_connection_error. */
static void handshake_failed(struct gc_link *l) {
  struct gc_link_tls *t = l->tls;
  char why[128];
  long vr = SSL_get_verify_result(t->ssl);
  unsigned long e = ERR_peek_last_error();
  if (vr != X509_V_OK) {
    snprintf(why, sizeof why, "TLS handshake failed: certificate verify failed: %s",
             X509_verify_cert_error_string(vr));
  } else if (e && ERR_GET_LIB(e) == ERR_LIB_SSL &&
             (ERR_GET_REASON(e) == SSL_R_WRONG_VERSION_NUMBER ||
              ERR_GET_REASON(e) == SSL_R_PACKET_LENGTH_TOO_LONG)) {
    snprintf(why, sizeof why, "TLS handshake failed: %s (the peer does not speak TLS?)",
             ERR_reason_error_string(e));
  } else {
    const char *r = e ? ERR_reason_error_string(e) : NULL;
    snprintf(why, sizeof why, "TLS handshake failed: %s", r ? r : "protocol error");
  }
  ERR_clear_error();
  (void)tls_out(l, 0); /* OpenSSL's alert, best effort */
  gc__link_fail(l, why);
}

/* Runs the handshake, then hands every record's plaintext to the link. */
static void tls_pump(struct gc_link *l) {
  static _Thread_local uint8_t plain[16384];
  struct gc_link_tls *t = l->tls;
  if (!t->done) {
    ERR_clear_error();
    int r = SSL_do_handshake(t->ssl);
    if (r != 1) {
      int e = SSL_get_error(t->ssl, r);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
        tls_flush(l);
      else
        handshake_failed(l);
      return;
    }
    t->done = 1;
    tls_flush(l);
    if (l->torn)
      return;
    gc__link_connected(l); /* the upgrade request */
  }
  /* 'plain' is only read by gc__link_input before the next SSL_read, and
   * nothing in between reads a link: one buffer per thread serves all. */
  while (!l->torn) {
    ERR_clear_error();
    int n = SSL_read(t->ssl, plain, sizeof plain);
    if (n > 0) {
      gc__link_input(l, plain, (size_t)n);
      continue;
    }
    int e = SSL_get_error(t->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
      tls_flush(l);
    } else if (e == SSL_ERROR_ZERO_RETURN) {
      gc__link_eof(l); /* the peer's close_notify */
    } else {
      unsigned long err = ERR_peek_last_error();
      const char *r = err ? ERR_reason_error_string(err) : NULL;
      char why[128];
      snprintf(why, sizeof why, "TLS error: %s", r ? r : "connection error");
      ERR_clear_error();
      gc__link_fail(l, why);
    }
    break;
  }
}

static void tls_opened(struct gc_link *l) {
  tls_pump(l); /* the ClientHello */
}

static void tls_read(struct gc_link *l, ssize_t n, const uint8_t *data) {
  if (l->torn)
    return;
  if (n < 0) {
    char why[96];
    if (n == UV_EOF && !l->tls->done)
      snprintf(why, sizeof why, "TLS handshake failed: connection closed by the peer");
    else if (n == UV_EOF)
      snprintf(why, sizeof why, l->state < GC_LINK_OPEN
                                    ? "connection closed during the upgrade"
                                    : "connection closed by the peer");
    else
      snprintf(why, sizeof why, "read failed: %s", uv_strerror((int)n));
    gc__link_fail(l, why);
    return;
  }
  if (BIO_write(l->tls->net_in, data, (int)n) != (int)n) {
    ERR_clear_error();
    gc__link_fail(l, "out of memory");
    return;
  }
  tls_pump(l);
}

/* ---- writing and the end ------------------------------------------------------ */

static int tls_write(struct gc_link *l, const uv_buf_t *iov, size_t n) {
  struct gc_link_tls *t = l->tls;
  for (size_t i = 0; i < n; i++) {
    if (!iov[i].len)
      continue;
    ERR_clear_error();
    if (SSL_write(t->ssl, iov[i].base, (int)iov[i].len) != (int)iov[i].len) {
      ERR_clear_error();
      return UV_EPROTO;
    }
  }
  return tls_out(l, 1);
}

/* After an orderly end (both close frames passed, all written), a
 * close_notify if the kernel takes it now; then the socket closes. */
static void tls_close(struct gc_link *l) {
  struct gc_link_tls *t = l->tls;
  if (t && t->done && l->connected && !l->writing && gc__link_ws_close_done(l)) {
    ERR_clear_error();
    (void)SSL_shutdown(t->ssl);
    ERR_clear_error();
    uint8_t buf[256];
    int n = BIO_read(t->net_out, buf, sizeof buf);
    if (n > 0) {
      uv_buf_t b = uv_buf_init((char *)buf, (unsigned)n);
      (void)uv_try_write((uv_stream_t *)&l->io.tcp, &b, 1); /* best effort */
    }
  }
  gc__link_tcp_close(l);
}

const struct gc_link_transport gc_link_tls = {"tls", tls_connect, tls_write,
                                              tls_close, tls_opened, tls_read};
