/* tls_client.c - the client side of TLS (see tls.h), for links this host
 * opens (server-to-server, https): a context that verifies the peer, and
 * SSLs bound to the host name they must prove. */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <arpa/inet.h>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "config.h"
#include "internal.h"
#include "log.h"
#include "tls.h"

SSL_CTX *gc_tls_client_ctx_new(const char *ca_file, int verify, char *err,
                               size_t errlen) {
  static const unsigned char alpn[] = "\x08http/1.1";
  SSL_CTX *ctx = SSL_CTX_new(TLS_client_method());
  if (!ctx) {
    snprintf(err, errlen, "TLS: out of memory");
    return NULL;
  }
  if (!SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) ||
      SSL_CTX_set_alpn_protos(ctx, alpn, sizeof alpn - 1) != 0) {
    snprintf(err, errlen, "TLS: cannot set the client's protocols");
    goto fail;
  }
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  SSL_CTX_set_verify(ctx, verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
  if (verify) {
    int ok = ca_file ? SSL_CTX_load_verify_locations(ctx, ca_file, NULL)
                     : SSL_CTX_set_default_verify_paths(ctx);
    if (ok != 1) {
      unsigned long e = ERR_peek_last_error();
      snprintf(err, errlen, "TLS: cannot load the CA certificates %s (%s)",
               ca_file ? ca_file : "of the system",
               e ? ERR_reason_error_string(e) : "?");
      goto fail;
    }
  }
  ERR_clear_error();
  return ctx;
fail:
  ERR_clear_error();
  SSL_CTX_free(ctx);
  return NULL;
}

SSL *gc_tls_client_ssl_new(SSL_CTX *ctx, const char *host) {
  SSL *ssl = SSL_new(ctx);
  if (!ssl)
    return NULL;
  unsigned char bin[16];
  int ip = inet_pton(AF_INET, host, bin) == 1 || inet_pton(AF_INET6, host, bin) == 1;
  X509_VERIFY_PARAM *vp = SSL_get0_param(ssl);
  /* An address is matched against the certificate's IP entries, a name
   * against its DNS entries (and sent as SNI, which names only). */
  int ok = ip ? X509_VERIFY_PARAM_set1_ip_asc(vp, host)
              : SSL_set_tlsext_host_name(ssl, host) && SSL_set1_host(ssl, host);
  if (!ok) {
    SSL_free(ssl);
    ERR_clear_error();
    return NULL;
  }
  SSL_set_connect_state(ssl);
  return ssl;
}

/* The system's store is loaded at the first wss link rather than at
 * start: a few hundred certificates that every gcs would otherwise hold
 * for nothing. A CA file is loaded at start, so a bad one stops it. */
static pthread_mutex_t store_lock = PTHREAD_MUTEX_INITIALIZER;

int gc_tls_s2s_start(struct gc_server *s, char *err, size_t errlen) {
  const struct gc_config *cfg = s->cfg;
  int lazy = cfg->s2s_verify && !cfg->s2s_ca_file;
  s->s2s_ctx = gc_tls_client_ctx_new(cfg->s2s_ca_file, lazy ? 0 : cfg->s2s_verify,
                                     err, errlen);
  if (!s->s2s_ctx)
    return EINVAL;
  if (lazy)
    SSL_CTX_set_verify(s->s2s_ctx, SSL_VERIFY_PEER, NULL);
  atomic_store(&s->s2s_store_pending, lazy);
  if (!cfg->s2s_verify)
    gc_log(GCL_WARN, "s2s.verify is false: wss links accept any certificate "
           "of any host (for tests only)");
  return 0;
}

void gc_tls_s2s_stop(struct gc_server *s) {
  SSL_CTX_free(s->s2s_ctx);
  s->s2s_ctx = NULL;
}

void gc_tls_s2s_store(struct gc_server *s) {
  if (!atomic_load(&s->s2s_store_pending))
    return;
  pthread_mutex_lock(&store_lock);
  if (atomic_load(&s->s2s_store_pending)) {
    if (SSL_CTX_set_default_verify_paths(s->s2s_ctx) != 1) {
      unsigned long e = ERR_peek_last_error();
      gc_log(GCL_ERR, "TLS: cannot load the system's CA certificates (%s): "
             "wss links will fail their certificate check",
             e ? ERR_reason_error_string(e) : "?");
    }
    ERR_clear_error();
    atomic_store(&s->s2s_store_pending, 0);
  }
  pthread_mutex_unlock(&store_lock);
}
