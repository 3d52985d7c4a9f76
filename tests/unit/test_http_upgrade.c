/* Tests host/http_upgrade.c and host/utf8.c. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "http_upgrade.h"
#include "utf8.h"

#define GOOD                                                                   \
  "GET /chat?room=7 HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n"             \
  "Connection: keep-alive, Upgrade\r\nSec-WebSocket-Key: "                     \
  "dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"

static int feed_all(struct gc_http_req *r, const char *s, size_t *used) {
  gc_http_req_init(r);
  return gc_http_req_feed(r, s, strlen(s), used);
}

static void test_rfc_accept_key(void **state) {
  (void)state;
  char out[29];
  /* RFC 6455 section 1.3's example. */
  assert_int_equal(gc_ws_accept_key("dGhlIHNhbXBsZSBub25jZQ==", out), 0);
  assert_string_equal(out, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
}

static void test_good_request_and_pipelined_bytes(void **state) {
  (void)state;
  struct gc_http_req r;
  const char *req = GOOD "\x81\x85";
  size_t used;
  assert_int_equal(feed_all(&r, req, &used), 0);
  assert_true(r.headers_done);
  assert_int_equal(used, strlen(GOOD)); /* frame bytes start right after */
  const char *why = "x";
  assert_int_equal(gc_http_req_check(&r, &why), 0);
  assert_null(why);
  assert_string_equal(r.target, "/chat?room=7");
}

static void test_byte_by_byte(void **state) {
  (void)state;
  struct gc_http_req r;
  gc_http_req_init(&r);
  const char *req = GOOD;
  size_t total = 0;
  for (size_t i = 0; i < strlen(req); i++) {
    size_t used;
    assert_int_equal(gc_http_req_feed(&r, req + i, 1, &used), 0);
    total += used;
  }
  assert_true(r.headers_done);
  assert_int_equal(total, strlen(req));
  const char *why;
  assert_int_equal(gc_http_req_check(&r, &why), 0);
}

static void expect_400(const char *req, const char *why_part) {
  struct gc_http_req r;
  size_t used;
  int st = feed_all(&r, req, &used);
  if (st == 0) {
    assert_true(r.headers_done);
    const char *why = NULL;
    st = gc_http_req_check(&r, &why);
    assert_non_null(why);
    if (why_part && !strstr(why, why_part))
      fail_msg("reason '%s' lacks '%s'", why, why_part);
  }
  assert_int_equal(st, 400);
}

static void test_bad_requests(void **state) {
  (void)state;
  expect_400("GET / HTTP/1.1\r\nHost: x\r\n\r\n", "Upgrade");
  expect_400("POST / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
             "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n",
             "GET");
  expect_400("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
             "Upgrade\r\nSec-WebSocket-Version: 13\r\n\r\n",
             "Key");
  expect_400("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
             "Upgrade\r\nSec-WebSocket-Key: short==\r\nSec-WebSocket-Version: "
             "13\r\n\r\n",
             "Key");
  expect_400("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
             "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 8\r\n\r\n",
             "Version");
  expect_400("GET / HTTP/1.1\r\nUpgrade: websocket\r\nConnection: "
             "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             "Host");
  expect_400("GET / HTTP/1.0\r\nHost: x\r\nUpgrade: websocket\r\nConnection: "
             "Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
             "Sec-WebSocket-Version: 13\r\n\r\n",
             "1.1");
  expect_400("\x16\x03\x01 garbage that is not HTTP\r\n\r\n", NULL);
}

static void test_header_limit(void **state) {
  (void)state;
  static char big[GC_HTTP_MAX_HEADER + 200];
  strcpy(big, "GET / HTTP/1.1\r\nX-Pad: ");
  size_t n = strlen(big);
  memset(big + n, 'a', GC_HTTP_MAX_HEADER);
  big[n + GC_HTTP_MAX_HEADER] = '\0';
  struct gc_http_req r;
  size_t used;
  assert_int_equal(feed_all(&r, big, &used), 431);
}

static void test_response(void **state) {
  (void)state;
  char buf[256];
  int n = gc_http_response(buf, sizeof buf, 404, "unknown application");
  assert_true(n > 0);
  assert_non_null(strstr(buf, "HTTP/1.1 404 Not Found\r\n"));
  assert_non_null(strstr(buf, "Content-Length: 20\r\n"));
  assert_non_null(strstr(buf, "\r\n\r\nunknown application\n"));
}

static void test_utf8(void **state) {
  (void)state;
  const struct { const char *s; int ok; } cases[] = {
      {"", 1}, {"plain ascii", 1}, {"caf\xc3\xa9", 1}, {"\xe2\x82\xac", 1},
      {"\xf0\x9f\x8e\xae", 1},   {"\xc3", 0},       {"\xc0\xaf", 0},
      {"\xe0\x80\xaf", 0},       {"\xed\xa0\x80", 0}, /* surrogate */
      {"\xf4\x90\x80\x80", 0},   /* above U+10FFFF */
      {"\xff", 0},               {"a\x80", 0}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
    assert_int_equal(gc_utf8_valid((const uint8_t *)cases[i].s, strlen(cases[i].s)),
                     cases[i].ok);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_rfc_accept_key),
      cmocka_unit_test(test_good_request_and_pipelined_bytes),
      cmocka_unit_test(test_byte_by_byte),
      cmocka_unit_test(test_bad_requests),
      cmocka_unit_test(test_header_limit),
      cmocka_unit_test(test_response),
      cmocka_unit_test(test_utf8),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
