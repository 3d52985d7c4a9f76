/* Tests host/tls_ctx.c and host/tls_client.c: the server context from an
 * ssl_keys_path (what a missing, broken or mismatched file says), and the
 * client side: a handshake with gcs's server context over a BIO pair is
 * accepted when the certificate chains to the CA given and names the host
 * (DNS name or IP address), refused for another host or another CA, and
 * accepted anyway with verification off; the server's client context for
 * wss links from the config's "s2s" (gc_tls_s2s_start). Certificates are
 * made here with the openssl command. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#include "internal.h"
#include "tls.h"

static char dir[64];
static char path_buf[256];

static const char *at(const char *name) {
  snprintf(path_buf, sizeof path_buf, "%s/%s", dir, name);
  return path_buf;
}

static int sh(const char *fmt, ...) {
  char cmd[2048];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(cmd, sizeof cmd, fmt, ap);
  va_end(ap);
  return system(cmd);
}

/* ca.pem/ca.key, other.pem/other.key (a second CA), srv.key/srv.cert
 * (localhost and 127.0.0.1, signed by ca). */
static int setup(void **state) {
  (void)state;
  snprintf(dir, sizeof dir, "/tmp/gcs-tls-XXXXXX");
  if (!mkdtemp(dir))
    return -1;
  const char *q = ">/dev/null 2>&1";
  if (sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.pem "
         "-days 2 -subj /CN=ca %s", dir, q) ||
      sh("cd %s && openssl req -x509 -newkey rsa:2048 -nodes -keyout other.key -out other.pem "
         "-days 2 -subj /CN=other %s", dir, q) ||
      sh("cd %s && openssl req -newkey rsa:2048 -nodes -keyout srv.key -out srv.csr "
         "-subj /CN=localhost %s", dir, q) ||
      sh("cd %s && printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\\n' > ext && "
         "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
         "-out srv.cert -days 2 -extfile ext %s", dir, q))
    return -1;
  return 0;
}

static int teardown(void **state) {
  (void)state;
  return sh("rm -rf %s", dir) == 0 ? 0 : -1;
}

static void server_ctx_errors(void **state) {
  (void)state;
  char err[512], want[512];
  char prefix[256];
  snprintf(prefix, sizeof prefix, "%s/none", dir);
  assert_null(gc_tls_server_ctx_new(prefix, err, sizeof err));
  snprintf(want, sizeof want, "ssl_keys_path: cannot read %s/none.key: No such file or directory", dir);
  assert_string_equal(err, want);
  /* The CA's key with the server's certificate. */
  assert_int_equal(sh("cd %s && cp ca.key mism.key && cp srv.cert mism.cert", dir), 0);
  snprintf(prefix, sizeof prefix, "%s/mism", dir);
  assert_null(gc_tls_server_ctx_new(prefix, err, sizeof err));
  snprintf(want, sizeof want, "ssl_keys_path: %s/mism.key does not match the certificate %s/mism.cert",
           dir, dir);
  assert_string_equal(err, want);
  /* Not PEM. */
  assert_int_equal(sh("cd %s && cp srv.key junk.key && echo junk > junk.cert", dir), 0);
  snprintf(prefix, sizeof prefix, "%s/junk", dir);
  assert_null(gc_tls_server_ctx_new(prefix, err, sizeof err));
  snprintf(want, sizeof want, "ssl_keys_path: %s/junk.cert: not a PEM certificate", dir);
  assert_true(strncmp(err, want, strlen(want)) == 0);
  /* A chain file that holds no certificate. */
  assert_int_equal(sh("cd %s && cp srv.key ch.key && cp srv.cert ch.cert && echo x > ch.cacert", dir), 0);
  snprintf(prefix, sizeof prefix, "%s/ch", dir);
  assert_null(gc_tls_server_ctx_new(prefix, err, sizeof err));
  snprintf(want, sizeof want, "ssl_keys_path: %s/ch.cacert: no PEM certificate", dir);
  assert_true(strncmp(err, want, strlen(want)) == 0);
  /* With the CA as its chain it loads. */
  assert_int_equal(sh("cd %s && cp ca.pem ch.cacert", dir), 0);
  SSL_CTX *ctx = gc_tls_server_ctx_new(prefix, err, sizeof err);
  assert_non_null(ctx);
  SSL_CTX_free(ctx);
  assert_int_equal(ERR_peek_error(), 0);
}

/* A handshake between 'cli' and a server SSL of 'sctx' over a BIO pair:
 * 1 when both ends finished, 0 when either failed. */
static int handshake(SSL_CTX *sctx, SSL *cli, long *verify) {
  SSL *srv = SSL_new(sctx);
  BIO *a, *b;
  assert_non_null(srv);
  assert_int_equal(BIO_new_bio_pair(&a, 0, &b, 0), 1);
  SSL_set_bio(cli, a, a);
  SSL_set_bio(srv, b, b);
  SSL_set_accept_state(srv);
  int done = 0, failed = 0;
  for (int i = 0; i < 20 && !done && !failed; i++) {
    int rc = SSL_do_handshake(cli);
    if (rc != 1 && SSL_get_error(cli, rc) != SSL_ERROR_WANT_READ)
      failed = 1;
    int rs = SSL_do_handshake(srv);
    if (rs != 1 && SSL_get_error(srv, rs) != SSL_ERROR_WANT_READ)
      failed = 1;
    done = rc == 1 && rs == 1;
  }
  *verify = SSL_get_verify_result(cli);
  const unsigned char *alpn = NULL;
  unsigned alpn_len = 0;
  SSL_get0_alpn_selected(cli, &alpn, &alpn_len);
  if (done)
    assert_memory_equal(alpn, "http/1.1", 8);
  SSL_free(srv);
  SSL_free(cli);
  ERR_clear_error();
  return done;
}

static void client_verifies(void **state) {
  (void)state;
  char err[512], prefix[256];
  snprintf(prefix, sizeof prefix, "%s/srv", dir);
  SSL_CTX *sctx = gc_tls_server_ctx_new(prefix, err, sizeof err);
  assert_non_null(sctx);
  char ca[256], other[256];
  snprintf(ca, sizeof ca, "%s", at("ca.pem"));
  snprintf(other, sizeof other, "%s", at("other.pem"));
  SSL_CTX *good = gc_tls_client_ctx_new(ca, 1, err, sizeof err);
  SSL_CTX *wrong = gc_tls_client_ctx_new(other, 1, err, sizeof err);
  SSL_CTX *off = gc_tls_client_ctx_new(other, 0, err, sizeof err);
  assert_non_null(good);
  assert_non_null(wrong);
  assert_non_null(off);
  long v;
  assert_int_equal(handshake(sctx, gc_tls_client_ssl_new(good, "localhost"), &v), 1);
  assert_int_equal(v, X509_V_OK);
  assert_int_equal(handshake(sctx, gc_tls_client_ssl_new(good, "127.0.0.1"), &v), 1);
  assert_int_equal(v, X509_V_OK);
  /* Another name, another address, another CA: refused. */
  assert_int_equal(handshake(sctx, gc_tls_client_ssl_new(good, "example.com"), &v), 0);
  assert_int_equal(v, X509_V_ERR_HOSTNAME_MISMATCH);
  assert_int_equal(handshake(sctx, gc_tls_client_ssl_new(good, "127.0.0.2"), &v), 0);
  assert_int_equal(v, X509_V_ERR_IP_ADDRESS_MISMATCH);
  assert_int_equal(handshake(sctx, gc_tls_client_ssl_new(wrong, "localhost"), &v), 0);
  assert_int_equal(v, X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  /* Verification off (tests): the handshake completes. */
  assert_int_equal(handshake(sctx, gc_tls_client_ssl_new(off, "example.com"), &v), 1);
  /* A CA file that is not there. */
  assert_null(gc_tls_client_ctx_new(at("missing.pem"), 1, err, sizeof err));
  assert_non_null(strstr(err, "cannot load the CA certificates"));
  SSL_CTX_free(good);
  SSL_CTX_free(wrong);
  SSL_CTX_free(off);
  SSL_CTX_free(sctx);
}

/* "s2s": a CA file is loaded at start (a bad one fails naming it); the
 * system's store waits for the first wss link; verify false loads none. */
static void s2s_ctx_from_config(void **state) {
  (void)state;
  struct gc_config cfg;
  struct gc_server s;
  char err[512] = "", missing[256];
  memset(&cfg, 0, sizeof cfg);
  memset(&s, 0, sizeof s);
  s.cfg = &cfg;
  snprintf(missing, sizeof missing, "%s", at("no-such-ca.pem"));
  cfg.s2s_ca_file = missing;
  cfg.s2s_verify = 1;
  assert_int_equal(gc_tls_s2s_start(&s, err, sizeof err), EINVAL);
  assert_null(s.s2s_ctx);
  assert_non_null(strstr(err, missing));
  char ca[256];
  snprintf(ca, sizeof ca, "%s", at("ca.pem"));
  cfg.s2s_ca_file = ca;
  assert_int_equal(gc_tls_s2s_start(&s, err, sizeof err), 0);
  assert_non_null(s.s2s_ctx);
  assert_int_equal(atomic_load(&s.s2s_store_pending), 0);
  assert_int_equal(SSL_CTX_get_verify_mode(s.s2s_ctx), SSL_VERIFY_PEER);
  gc_tls_s2s_stop(&s);
  assert_null(s.s2s_ctx);
  cfg.s2s_ca_file = NULL; /* the system's store, at the first link */
  assert_int_equal(gc_tls_s2s_start(&s, err, sizeof err), 0);
  assert_int_equal(atomic_load(&s.s2s_store_pending), 1);
  assert_int_equal(SSL_CTX_get_verify_mode(s.s2s_ctx), SSL_VERIFY_PEER);
  gc_tls_s2s_store(&s);
  assert_int_equal(atomic_load(&s.s2s_store_pending), 0);
  gc_tls_s2s_stop(&s);
  cfg.s2s_verify = 0;
  assert_int_equal(gc_tls_s2s_start(&s, err, sizeof err), 0);
  assert_int_equal(atomic_load(&s.s2s_store_pending), 0);
  assert_int_equal(SSL_CTX_get_verify_mode(s.s2s_ctx), SSL_VERIFY_NONE);
  gc_tls_s2s_stop(&s);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(server_ctx_errors),
      cmocka_unit_test(client_verifies),
      cmocka_unit_test(s2s_ctx_from_config),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
