/* http_tls.c - https for httpRequest (see http_client.h): the server's one
 * client SSL_CTX ("http": ca_file, verify), and a TLS session per
 * connection driven through memory BIOs, so http_conn.c moves the
 * ciphertext on the loop itself: no blocking call, no thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "alloc.h"
#include "config.h"
#include "http_client.h"
#include "internal.h"
#include "log.h"
#include "tls.h"

struct gc_http_tls {
  SSL *ssl;
  BIO *rbio, *wbio; /* ciphertext in and out; owned by 'ssl' */
};

/* Guards every server's 'http_tls' (made by the first https request of
 * any loop, or at start-up). */
static pthread_mutex_t ctx_lock = PTHREAD_MUTEX_INITIALIZER;

/* The server's client context, made now if need be; NULL with 'err'. */
static SSL_CTX *ctx_get(struct gc_server *s, char *err, size_t errlen) {
  const struct gc_config *cfg = s->cfg;
  pthread_mutex_lock(&ctx_lock);
  SSL_CTX *ctx = s->http_tls;
  if (!ctx) {
    /* Without a config (unit tests): the system's store, verified. */
    ctx = gc_tls_client_ctx_new(cfg ? cfg->http_ca_file : NULL,
                                cfg ? !cfg->http_verify_off : 1, err, errlen);
    s->http_tls = ctx;
  }
  pthread_mutex_unlock(&ctx_lock);
  return ctx;
}

int gc_http_tls_start(struct gc_server *s, char *err, size_t errlen) {
  const struct gc_config *cfg = s->cfg;
  if (!cfg || (!cfg->http_ca_file && !cfg->http_verify_off))
    return 0; /* the system's store, loaded by the first https request */
  if (cfg->http_verify_off) {
    gc_log(GCL_WARN, "http.verify is false: https requests accept any "
           "server certificate");
    return ctx_get(s, err, errlen) ? 0 : EINVAL;
  }
  /* A missing file is said plainly; OpenSSL's text names neither. */
  FILE *f = fopen(cfg->http_ca_file, "rb");
  if (!f) {
    snprintf(err, errlen, "http.ca_file: cannot read %s: %s", cfg->http_ca_file,
             strerror(errno));
    return EINVAL;
  }
  fclose(f);
  char why[200];
  if (!ctx_get(s, why, sizeof why)) {
    snprintf(err, errlen, "http.ca_file: %s", why);
    return EINVAL;
  }
  return 0;
}

void gc_http_tls_stop(struct gc_server *s) {
  pthread_mutex_lock(&ctx_lock);
  SSL_CTX_free(s->http_tls);
  s->http_tls = NULL;
  pthread_mutex_unlock(&ctx_lock);
}

/* ---- a session ----------------------------------------------------------- */

int gc__http_tls_new(struct gc_server *s, const char *host,
                     struct gc_http_tls **out, char *err, size_t errlen) {
  *out = NULL;
  SSL_CTX *ctx = ctx_get(s, err, errlen);
  if (!ctx)
    return EPROTO;
  struct gc_http_tls *t = gc_calloc(1, sizeof *t);
  if (!t || !(t->ssl = gc_tls_client_ssl_new(ctx, host)) ||
      !(t->rbio = BIO_new(BIO_s_mem())) || !(t->wbio = BIO_new(BIO_s_mem()))) {
    if (t) {
      BIO_free(t->rbio);
      SSL_free(t->ssl);
    }
    gc_free(t);
    ERR_clear_error();
    snprintf(err, errlen, "out of memory");
    return ENOMEM;
  }
  /* A read of an empty BIO is "retry", not the end. */
  BIO_set_mem_eof_return(t->rbio, -1);
  SSL_set_bio(t->ssl, t->rbio, t->wbio);
  *out = t;
  return 0;
}

void gc__http_tls_free(struct gc_http_tls *t) {
  if (!t)
    return;
  SSL_free(t->ssl); /* and its BIOs */
  ERR_clear_error();
  gc_free(t);
}

int gc__http_tls_in(struct gc_http_tls *t, const char *p, size_t n) {
  if (n > INT32_MAX || BIO_write(t->rbio, p, (int)n) != (int)n) {
    ERR_clear_error();
    return ENOMEM;
  }
  return 0;
}

/* Why the handshake failed: the certificate's problem first. */
static void handshake_error(struct gc_http_tls *t, char *err, size_t errlen) {
  long v = SSL_get_verify_result(t->ssl);
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  if (v != X509_V_OK)
    snprintf(err, errlen, "certificate verify failed: %s",
             X509_verify_cert_error_string(v));
  else
    snprintf(err, errlen, "tls handshake failed: %s", r ? r : "protocol error");
  ERR_clear_error();
}

int gc__http_tls_handshake(struct gc_http_tls *t, char *err, size_t errlen) {
  ERR_clear_error();
  int rc = SSL_do_handshake(t->ssl);
  if (rc == 1)
    return 0;
  int e = SSL_get_error(t->ssl, rc);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
    return EAGAIN;
  handshake_error(t, err, errlen);
  return EPROTO;
}

int gc__http_tls_send(struct gc_http_tls *t, const void *p, size_t n) {
  ERR_clear_error();
  while (n) {
    int chunk = n > (1u << 30) ? 1 << 30 : (int)n;
    int w = SSL_write(t->ssl, p, chunk);
    if (w <= 0) {
      int e = SSL_get_error(t->ssl, w);
      ERR_clear_error();
      return e == SSL_ERROR_SSL ? EPROTO : ENOMEM;
    }
    p = (const char *)p + w;
    n -= (size_t)w;
  }
  return 0;
}

int gc__http_tls_recv(struct gc_http_tls *t, char *out, size_t cap, size_t *n,
                      char *err, size_t errlen) {
  *n = 0;
  ERR_clear_error();
  int r = SSL_read(t->ssl, out, cap > INT32_MAX ? INT32_MAX : (int)cap);
  if (r > 0) {
    *n = (size_t)r;
    return 0;
  }
  switch (SSL_get_error(t->ssl, r)) {
  case SSL_ERROR_WANT_READ:
  case SSL_ERROR_WANT_WRITE:
    return EAGAIN;
  case SSL_ERROR_ZERO_RETURN:
    return EPIPE; /* the server's close_notify */
  default: {
    unsigned long e = ERR_peek_last_error();
    const char *why = e ? ERR_reason_error_string(e) : NULL;
    snprintf(err, errlen, "tls error: %s", why ? why : "protocol error");
    ERR_clear_error();
    return EPROTO;
  }
  }
}

int gc__http_tls_more(const struct gc_http_tls *t) {
  return SSL_pending(t->ssl) > 0 || BIO_ctrl_pending(t->rbio) > 0;
}

size_t gc__http_tls_out_len(const struct gc_http_tls *t) {
  return BIO_ctrl_pending(t->wbio);
}

void gc__http_tls_out_take(struct gc_http_tls *t, char *dst, size_t n) {
  /* A memory BIO hands over all it holds: 'n' is what out_len said. */
  int r = BIO_read(t->wbio, dst, (int)n);
  (void)r;
}
