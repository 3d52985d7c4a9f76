/* loadgen_tls.c - --tls: OpenSSL through memory BIOs. The bytes to and
 * from the socket stay libuv's; OpenSSL only turns plaintext into records
 * and back. The server's certificate is not verified (a benchmark). */
#include <stdio.h>
#include <stdlib.h>

#include "loadgen.h"

static SSL_CTX *tls_ctx;
uint8_t pbuf[1 << 18];

/* Every connection a full handshake (no resumption), ALPN http/1.1. */
int tls_init(void) {
  static const unsigned char alpn[] = "\x08http/1.1";
  tls_ctx = SSL_CTX_new(TLS_client_method());
  if (!tls_ctx || SSL_CTX_set_alpn_protos(tls_ctx, alpn, sizeof alpn - 1) != 0)
    return -1;
  SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
  SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
  return 0;
}

/* c's TLS state: the ClientHello goes out once the TCP connect is done. */
void tls_conn_init(struct conn *c) {
  c->ssl = SSL_new(tls_ctx);
  c->rb = BIO_new(BIO_s_mem());
  c->wb = BIO_new(BIO_s_mem());
  if (!c->ssl || !c->rb || !c->wb) {
    fprintf(stderr, "loadgen: out of memory\n");
    exit(1);
  }
  BIO_set_mem_eof_return(c->rb, -1);
  SSL_set_bio(c->ssl, c->rb, c->wb);
  SSL_set_connect_state(c->ssl);
  (void)SSL_set_tlsext_host_name(c->ssl, "localhost");
}

/* --tls: the plaintext of 'b' encrypted in place (once the handshake is
 * over), with whatever OpenSSL has to send. */
int tls_seal(struct conn *c, struct obuf *b) {
  if (b->len && SSL_is_init_finished(c->ssl)) {
    if (SSL_write(c->ssl, b->p, (int)b->len) != (int)b->len)
      return -1;
    b->len = 0;
  }
  int n = BIO_pending(c->wb);
  if (n > 0) {
    if (BIO_read(c->wb, ob_reserve(b, (size_t)n), n) != n)
      return -1;
    b->len += (size_t)n;
  }
  return 0;
}

/* --tls: the handshake, then the plaintext of what came into pbuf
 * ('*len' bytes). 0 or -1. */
int tls_read(struct conn *c, size_t *len) {
  *len = 0;
  if (!SSL_is_init_finished(c->ssl)) {
    int r = SSL_do_handshake(c->ssl);
    if (r != 1)
      return SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ ? 0 : -1;
    /* Over: the upgrade request goes out. */
    ob_append(&c->out[c->cur], c->pre.p, c->pre.len);
    c->pre.len = 0;
  }
  while (*len < sizeof pbuf) {
    int n = SSL_read(c->ssl, pbuf + *len, (int)(sizeof pbuf - *len));
    if (n > 0) {
      *len += (size_t)n;
      continue;
    }
    int e = SSL_get_error(c->ssl, n);
    return e == SSL_ERROR_WANT_READ ? 0 : -1;
  }
  return 0;
}

