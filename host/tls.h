/* tls.h - wss: OpenSSL server contexts (tls_ctx.c) and the TLS transport
 * (transport_tls.c).
 *
 * Every key prefix of the config ("ssl_keys_path": PREFIX.key, PREFIX.cert,
 * PREFIX.cacert) has one SSL_CTX shared by every worker loop (SSL_new on
 * a shared SSL_CTX is thread-safe). SIGHUP swaps it under a mutex for one
 * read from the files again; connections keep the SSL_CTX they were made
 * with (each SSL holds a reference). */
#ifndef GC_TLS_H
#define GC_TLS_H

#include <stddef.h>
#include <openssl/ssl.h>

struct gc_server;
struct gc_conn;
struct gc_adopt;
struct gc_tls_keys;

/* Loads the keys of every wss vhost of the config (once per prefix):
 * 0, or an errno with one line in 'err' naming the file at fault. On
 * failure nothing is left (gc_tls_stop is harmless). */
int gc_tls_start(struct gc_server *s, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void gc_tls_stop(struct gc_server *s);
/* The keys of 'prefix' (loaded by gc_tls_start), or NULL. */
struct gc_tls_keys *gc_tls_keys_find(struct gc_server *s, const char *prefix);
/* SIGHUP (loop 0): every prefix read again; a prefix whose new files fail
 * keeps its context, with an error line. The number of prefixes that
 * failed. */
int gc_tls_reload(struct gc_server *s);
/* The current context of 'k' with a reference of the caller's
 * (SSL_CTX_free). */
SSL_CTX *gc_tls_keys_ctx(struct gc_tls_keys *k);
/* A server SSL_CTX from PREFIX.key/.cert/.cacert: NULL with a line in
 * 'err'. Exposed for the tests. */
SSL_CTX *gc_tls_server_ctx_new(const char *prefix, char *err, size_t errlen);

/* tls_client.c: the client side, for links this host opens. A context
 * for TLS 1.2+ with ALPN http/1.1 that verifies the peer against
 * 'ca_file' (PEM; NULL: the system's store) unless 'verify' is 0: NULL
 * with a line in 'err'. */
SSL_CTX *gc_tls_client_ctx_new(const char *ca_file, int verify, char *err,
                               size_t errlen);
/* A client SSL of 'ctx' that must prove 'host' (a name: SNI and the
 * certificate's DNS names; an address: its IP entries). NULL when out of
 * memory or 'host' is not usable. */
SSL *gc_tls_client_ssl_new(SSL_CTX *ctx, const char *host);
/* The server's client context for wss links (s->s2s_ctx) from the
 * config's "s2s": 0, or EINVAL with one line in 'err' naming the CA file
 * that failed. "verify": false is logged as one WARN line. */
int gc_tls_s2s_start(struct gc_server *s, char *err, size_t errlen)
    __attribute__((warn_unused_result));
/* Before a wss link uses s->s2s_ctx, from any thread: loads the system's
 * store once if the context verifies without a CA file (a failure is one
 * ERR line; the links then fail their check). */
void gc_tls_s2s_store(struct gc_server *s);
void gc_tls_s2s_stop(struct gc_server *s);

/* transport_tls.c: puts an accepted connection on the TLS transport with
 * a new SSL of 'k': 0 or ENOMEM. */
int gc__tls_conn_attach(struct gc_conn *c, struct gc_tls_keys *k);
/* The same for a connection this host opened to 'host' (its socket
 * connected), as the client: the ClientHello goes out at once. 0, ENOMEM
 * or EINVAL (a host name OpenSSL cannot check). */
int gc__tls_conn_attach_client(struct gc_conn *c, SSL_CTX *ctx, const char *host);
/* Frees the TLS state a hand-over carried (a mail never run, an adoption
 * that failed). */
void gc__tls_adopt_discard(struct gc_adopt *a);

#endif
