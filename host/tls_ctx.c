/* tls_ctx.c - the server's SSL_CTXs (see tls.h): one per key prefix,
 * TLS 1.2 and 1.3 only, Mozilla's "intermediate" ciphers, ALPN http/1.1,
 * stateless session tickets, no renegotiation, buffers released while a
 * connection is idle. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "tls.h"

struct gc_tls_keys {
  char *prefix; /* owned */
  pthread_mutex_t lock; /* guards 'ctx' (swapped by SIGHUP, read on accept) */
  SSL_CTX *ctx;
};

struct gc_tls {
  struct gc_tls_keys *keys;
  size_t count;
};

/* Mozilla's "intermediate" configuration (TLS 1.2 ciphers; TLS 1.3 keeps
 * OpenSSL's three suites, which are that list's). */
#define GC_TLS12_CIPHERS                                                       \
  "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                 \
  "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                 \
  "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                 \
  "DHE-RSA-AES128-GCM-SHA256:DHE-RSA-AES256-GCM-SHA384:"                       \
  "DHE-RSA-CHACHA20-POLY1305"
#define GC_TLS_GROUPS "X25519:prime256v1:secp384r1"

/* OpenSSL's reason for the last error, or 'none'; clears the queue. */
static const char *ssl_reason(const char *none) {
  unsigned long e = ERR_peek_last_error();
  const char *r = e ? ERR_reason_error_string(e) : NULL;
  ERR_clear_error();
  return r ? r : none;
}

/* A passphrase prompt would block the loop on the terminal: refused. */
static int no_password(char *buf, int size, int rw, void *u) {
  (void)buf, (void)size, (void)rw, (void)u;
  return 0;
}

/* ALPN: WebSocket's handshake is HTTP/1.1 (RFC 6455); a client offering
 * ALPN without it gets no_application_protocol (RFC 7301). */
static int alpn_select(SSL *ssl, const unsigned char **out, unsigned char *outlen,
                       const unsigned char *in, unsigned int inlen, void *arg) {
  static const unsigned char ours[] = "\x08http/1.1";
  (void)ssl, (void)arg;
  unsigned char *sel = NULL;
  if (SSL_select_next_proto(&sel, outlen, ours, sizeof ours - 1, in, inlen) !=
      OPENSSL_NPN_NEGOTIATED)
    return SSL_TLSEXT_ERR_ALERT_FATAL;
  *out = sel;
  return SSL_TLSEXT_ERR_OK;
}

/* 0 when 'path' can be opened for reading, else errno with a line. */
static int readable(const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "ssl_keys_path: cannot read %s: %s", path, strerror(e));
    return e;
  }
  fclose(f);
  return 0;
}

/* The chain of PREFIX.cacert, when there is one, after the certificate. */
static int add_chain(SSL_CTX *ctx, const char *path, char *err, size_t errlen) {
  FILE *f = fopen(path, "rb");
  if (!f)
    return errno == ENOENT ? 0 : readable(path, err, errlen);
  int n = 0, rc = 0;
  X509 *x;
  while ((x = PEM_read_X509(f, NULL, no_password, NULL)) != NULL) {
    if (!SSL_CTX_add0_chain_cert(ctx, x)) {
      X509_free(x);
      rc = EINVAL;
      break;
    }
    n++;
  }
  fclose(f);
  if (!rc && n == 0)
    rc = EINVAL;
  if (rc) {
    snprintf(err, errlen, "ssl_keys_path: %s: no PEM certificate (%s)", path,
             ssl_reason("empty"));
    return rc;
  }
  ERR_clear_error(); /* the end of the file reads as an error */
  return 0;
}

SSL_CTX *gc_tls_server_ctx_new(const char *prefix, char *err, size_t errlen) {
  char key[4096], cert[4096], chain[4096];
  if ((size_t)snprintf(key, sizeof key, "%s.key", prefix) >= sizeof key ||
      (size_t)snprintf(cert, sizeof cert, "%s.cert", prefix) >= sizeof cert ||
      (size_t)snprintf(chain, sizeof chain, "%s.cacert", prefix) >= sizeof chain) {
    snprintf(err, errlen, "ssl_keys_path: too long");
    return NULL;
  }
  if (readable(key, err, errlen) || readable(cert, err, errlen))
    return NULL;
  SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
  if (!ctx) {
    snprintf(err, errlen, "TLS: out of memory");
    return NULL;
  }
  SSL_CTX_set_default_passwd_cb(ctx, no_password);
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
      !SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION) ||
      !SSL_CTX_set_cipher_list(ctx, GC_TLS12_CIPHERS) ||
      !SSL_CTX_set1_groups_list(ctx, GC_TLS_GROUPS) ||
      !SSL_CTX_set_dh_auto(ctx, 1)) {
    snprintf(err, errlen, "TLS: cannot set the protocol and ciphers (%s)",
             ssl_reason("?"));
    goto fail;
  }
  SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION);
  SSL_CTX_clear_options(ctx, SSL_OP_NO_TICKET);
  /* Resumption by stateless tickets only: no per-session memory here, and
   * every loop shares the context's ticket keys. */
  SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
  (void)SSL_CTX_set_num_tickets(ctx, 1);
  /* Idle connections give their record buffers back (about 34 KiB). */
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_alpn_select_cb(ctx, alpn_select, NULL);
  if (SSL_CTX_use_certificate_chain_file(ctx, cert) != 1) {
    snprintf(err, errlen, "ssl_keys_path: %s: not a PEM certificate (%s)", cert,
             ssl_reason("?"));
    goto fail;
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key, SSL_FILETYPE_PEM) != 1) {
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_X509 &&
        ERR_GET_REASON(e) == X509_R_KEY_VALUES_MISMATCH)
      goto mismatch;
    snprintf(err, errlen, "ssl_keys_path: %s: not a PEM private key without a "
             "passphrase (%s)", key, ssl_reason("?"));
    goto fail;
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
  mismatch:
    snprintf(err, errlen, "ssl_keys_path: %s does not match the certificate %s",
             key, cert);
    ERR_clear_error();
    goto fail;
  }
  if (add_chain(ctx, chain, err, errlen) != 0)
    goto fail;
  return ctx;
fail:
  SSL_CTX_free(ctx);
  return NULL;
}

/* ---- the server's set ---------------------------------------------------- */

struct gc_tls_keys *gc_tls_keys_find(struct gc_server *s, const char *prefix) {
  for (size_t i = 0; s->tls && prefix && i < s->tls->count; i++)
    if (strcmp(s->tls->keys[i].prefix, prefix) == 0)
      return &s->tls->keys[i];
  return NULL;
}

int gc_tls_start(struct gc_server *s, char *err, size_t errlen) {
  const struct gc_config *cfg = s->cfg;
  size_t n = 0;
  for (size_t i = 0; i < cfg->vhost_count; i++)
    n += cfg->vhosts[i].protocol == GC_PROTOCOL_WSS;
  if (!n)
    return 0;
  struct gc_tls *t = gc_calloc(1, sizeof *t);
  if (!t || !(t->keys = gc_calloc(n, sizeof *t->keys))) {
    gc_free(t);
    snprintf(err, errlen, "out of memory");
    return ENOMEM;
  }
  s->tls = t;
  for (size_t i = 0; i < cfg->vhost_count; i++) {
    const struct gc_vhost_conf *v = &cfg->vhosts[i];
    if (v->protocol != GC_PROTOCOL_WSS || gc_tls_keys_find(s, v->ssl_keys_path))
      continue;
    struct gc_tls_keys *k = &t->keys[t->count];
    if (!(k->prefix = gc_strdup(v->ssl_keys_path))) {
      snprintf(err, errlen, "out of memory");
      gc_tls_stop(s);
      return ENOMEM;
    }
    if (!(k->ctx = gc_tls_server_ctx_new(k->prefix, err, errlen))) {
      gc_free(k->prefix);
      gc_tls_stop(s);
      return EINVAL;
    }
    pthread_mutex_init(&k->lock, NULL);
    t->count++;
  }
  return 0;
}

void gc_tls_stop(struct gc_server *s) {
  struct gc_tls *t = s->tls;
  if (!t)
    return;
  for (size_t i = 0; i < t->count; i++) {
    SSL_CTX_free(t->keys[i].ctx);
    gc_free(t->keys[i].prefix);
    pthread_mutex_destroy(&t->keys[i].lock);
  }
  gc_free(t->keys);
  gc_free(t);
  s->tls = NULL;
}

SSL_CTX *gc_tls_keys_ctx(struct gc_tls_keys *k) {
  pthread_mutex_lock(&k->lock);
  SSL_CTX *ctx = k->ctx;
  SSL_CTX_up_ref(ctx);
  pthread_mutex_unlock(&k->lock);
  return ctx;
}

int gc_tls_reload(struct gc_server *s) {
  int failed = 0;
  for (size_t i = 0; s->tls && i < s->tls->count; i++) {
    struct gc_tls_keys *k = &s->tls->keys[i];
    char err[512];
    SSL_CTX *ctx = gc_tls_server_ctx_new(k->prefix, err, sizeof err);
    if (!ctx) {
      gc_log(GCL_ERR, "%s; new wss connections keep the keys loaded before",
             err);
      failed++;
      continue;
    }
    pthread_mutex_lock(&k->lock);
    SSL_CTX *old = k->ctx;
    k->ctx = ctx;
    pthread_mutex_unlock(&k->lock);
    SSL_CTX_free(old); /* open connections keep their own reference */
    gc_log(GCL_NOTICE, "TLS keys %s.{key,cert} reloaded for new connections",
           k->prefix);
  }
  return failed;
}
