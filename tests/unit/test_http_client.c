/* Tests host/http_client*.c through core_api's httpRequest/httpCancel on a
 * real worker loop, against a real HTTP/1.1 server on 127.0.0.1 started
 * by each case (http_test_server.h: answers chosen by path, so each case
 * controls exactly what the server does). */
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
#include <cmocka.h>

#include "alloc.h"
#include "http_client.h"
#include "internal.h"

#include "http_test_server.h"

/* ---- the host side ------------------------------------------------------- */

static struct gc_server server;
static struct gc_app app;
static struct core_api api;
static struct gc_loop *loop;
static int in_request; /* inside httpRequest/httpCancel now */

struct result {
  int done, calls, err, status;
  char text[128];
  char body[4096];
  size_t body_len;
  char headers[1024]; /* "name=value\n"... */
};

static void on_done(GCT_INTPTR user, GCT_INT err, GCT_CSTR text,
                    const struct gc_http_response *res) {
  struct result *r = (struct result *)user;
  assert_false(in_request); /* never inside the call */
  r->calls++;
  r->done = 1;
  r->err = err;
  if (err) {
    assert_null(res);
    assert_non_null(text);
    snprintf(r->text, sizeof r->text, "%s", text);
    return;
  }
  assert_non_null(res);
  r->status = res->status;
  assert_int_equal(((const char *)res->body)[res->body_len], '\0');
  r->body_len = res->body_len;
  snprintf(r->body, sizeof r->body, "%s", (const char *)res->body);
  size_t at = 0;
  for (size_t i = 0; i < res->header_count; i++)
    at += (size_t)snprintf(r->headers + at, sizeof r->headers - at, "%s=%s\n",
                           res->headers[i].name, res->headers[i].value);
}

static int setup(void **state) {
  (void)state;
  memset(&server, 0, sizeof server);
  app.id = 0;
  server.apps = &app;
  server.app_count = 1;
  assert_int_equal(gc_server_loops_create(&server, 1, 0), 0);
  loop = server.loops[0];
  gc__core_api_fill(&api);
  server_start();
  return 0;
}

static int teardown(void **state) {
  (void)state;
  gc_server_loops_quiesce(&server);
  assert_int_equal(gc_server_loops_close(&server), 0);
  server_stop();
  return 0;
}

static intptr_t request(const char *method, const char *url, const char *body,
                        const struct gc_http_header *h, size_t nh, int timeout_ms,
                        size_t max_body, int redirects, struct result *r, int *err) {
  char full[512];
  if (url[0] == '/') { /* a path on the test server */
    snprintf(full, sizeof full, "http://127.0.0.1:%d%s", srv_port, url);
    url = full;
  }
  struct gc_http_request req = {.method = method, .url = url, .headers = h,
                                .header_count = nh, .body = body,
                                .body_len = body ? strlen(body) : 0,
                                .timeout_ms = timeout_ms, .max_body = max_body,
                                .max_redirects = redirects};
  memset(r, 0, sizeof *r);
  in_request = 1;
  intptr_t id = api.httpRequest(0, &req, on_done, (GCT_INTPTR)r, err);
  in_request = 0;
  return id;
}

static void wait_for(struct result *r) {
  for (int i = 0; i < 100000 && !r->done; i++)
    uv_run(&loop->uv, UV_RUN_ONCE);
  assert_true(r->done);
  assert_int_equal(r->calls, 1);
}

static void get(const char *url, struct result *r) {
  int err = -1;
  assert_true(request(NULL, url, NULL, NULL, 0, 0, 0, 0, r, &err) > 0);
  assert_int_equal(err, 0);
  assert_false(r->done); /* only on a later turn */
  wait_for(r);
}

/* ---- the cases ----------------------------------------------------------- */

static void test_get_headers(void **state) {
  (void)state;
  struct result r;
  get("/hello", &r);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "hello");
  assert_int_equal(r.body_len, 5);
  /* Lower-cased names; the repeated one joined, at its first place. */
  assert_string_equal(r.headers,
                      "x-test=a, b\ncontent-type=text/plain\ncontent-length=5\n");
  get("/nothing", &r);
  assert_int_equal(r.status, 404);
  assert_string_equal(r.body, "none");
}

static void test_request_bytes(void **state) {
  (void)state;
  struct result r;
  struct gc_http_header h[] = {{"X-Custom", "one two"}, {"Content-Length", "99"}};
  int err;
  assert_true(request("PUT", "/reqheaders", "abc", h, 2, 0, 0, 0, &r, &err) > 0);
  wait_for(&r);
  char want[128];
  snprintf(want, sizeof want, "PUT /reqheaders HTTP/1.1\r\nHost: 127.0.0.1:%d\r\n"
           "X-Custom: one two\r\nContent-Length: 3\r\n\r\n", srv_port);
  assert_string_equal(r.body, want);
}

static void test_post_body(void **state) {
  (void)state;
  struct result r;
  int err;
  assert_true(request("POST", "/echo", "ping", NULL, 0, 0, 0, 0, &r, &err) > 0);
  wait_for(&r);
  assert_int_equal(r.status, 201);
  assert_string_equal(r.body, "POST:ping");
}

static void test_chunked(void **state) {
  (void)state;
  struct result r;
  get("/chunked", &r);
  assert_int_equal(r.err, 0);
  assert_string_equal(r.body, "hello world");
}

static void test_keep_alive_reuse(void **state) {
  (void)state;
  struct result r;
  get("/hello", &r);
  get("/chunked", &r);
  get("/hello", &r);
  assert_int_equal(r.status, 200);
  assert_int_equal(atomic_load(&srv_conns), 1); /* one TCP connection */
  get("/close", &r); /* Connection: close: not pooled */
  assert_string_equal(r.body, "bye");
  get("/hello", &r);
  assert_int_equal(atomic_load(&srv_conns), 2);
}

static void test_pooled_closed_retry(void **state) {
  (void)state;
  struct result r;
  get("/flaky", &r); /* pooled after */
  get("/flaky", &r); /* the server closes the reused one: retried once */
  assert_int_equal(r.err, 0);
  assert_string_equal(r.body, "ok");
  assert_int_equal(atomic_load(&srv_conns), 2);
  /* Not idempotent: no retry, the failure is the answer. */
  int err;
  assert_true(request("POST", "/flaky", "x", NULL, 0, 0, 0, 0, &r, &err) > 0);
  wait_for(&r);
  assert_int_equal(r.err, EPROTO);
  assert_int_equal(atomic_load(&srv_conns), 2);
}

static void test_timeout(void **state) {
  (void)state;
  struct result r;
  int err;
  assert_true(request(NULL, "/slow", NULL, NULL, 0, 200, 0, 0, &r, &err) > 0);
  wait_for(&r);
  assert_int_equal(r.err, ETIMEDOUT);
  assert_string_equal(r.text, "timeout");
}

static void test_refused(void **state) {
  (void)state;
  int s = socket(AF_INET, SOCK_STREAM, 0);
  struct sockaddr_in a = {.sin_family = AF_INET,
                          .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  assert_int_equal(bind(s, (struct sockaddr *)&a, sizeof a), 0);
  socklen_t len = sizeof a;
  assert_int_equal(getsockname(s, (struct sockaddr *)&a, &len), 0);
  close(s); /* a port nobody listens on */
  char url[64];
  snprintf(url, sizeof url, "http://127.0.0.1:%d/", ntohs(a.sin_port));
  struct result r;
  get(url, &r);
  assert_int_equal(r.err, ECONNREFUSED);
  assert_string_equal(r.text, "connection refused");
}

static void test_name_resolution(void **state) {
  (void)state;
  char url[64];
  snprintf(url, sizeof url, "http://localhost:%d/hello", srv_port);
  struct result r;
  get(url, &r); /* ::1 may come first: refused, then 127.0.0.1 */
  assert_int_equal(r.err, 0);
  assert_string_equal(r.body, "hello");
}

static void test_body_too_large(void **state) {
  (void)state;
  struct result r;
  int err;
  assert_true(request(NULL, "/big", NULL, NULL, 0, 0, 1000, 0, &r, &err) > 0);
  wait_for(&r);
  assert_int_equal(r.err, EMSGSIZE);
  assert_true(request(NULL, "/bigchunked", NULL, NULL, 0, 0, 1500, 0, &r, &err) > 0);
  wait_for(&r);
  assert_int_equal(r.err, EMSGSIZE);
  assert_string_equal(r.text, "body too large");
  assert_true(request(NULL, "/bigchunked", NULL, NULL, 0, 0, 3000, 0, &r, &err) > 0);
  wait_for(&r);
  assert_int_equal(r.err, 0);
  assert_int_equal(r.body_len, 3000);
}

static void test_bad_args(void **state) {
  (void)state;
  static const char *const bad[] = {"ftp://x/", "http://", "not a url",
                                    "http://h/pa th", "http://u@h/", ""};
  struct result r;
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
    int err = 0;
    assert_int_equal(request(NULL, bad[i], NULL, NULL, 0, 0, 0, 0, &r, &err), 0);
    assert_int_equal(err, EINVAL);
  }
  int err = 0;
  assert_int_equal(request("GE T", "/hello", NULL, NULL, 0, 0, 0, 0, &r, &err), 0);
  assert_int_equal(err, EINVAL);
  struct gc_http_header h = {"X-Bad", "a\r\nInjected: 1"};
  assert_int_equal(request(NULL, "/hello", NULL, &h, 1, 0, 0, 0, &r, &err), 0);
  assert_int_equal(err, EINVAL);
  struct gc_http_request req = {.url = "http://127.0.0.1/"};
  assert_int_equal(api.httpRequest(7, &req, on_done, 0, &err), 0); /* no app 7 */
  assert_int_equal(err, EINVAL);
  assert_int_equal(api.httpRequest(0, &req, NULL, 0, NULL), 0);
  assert_int_equal(api.httpCancel(12345), EINVAL);
  assert_false(r.done);
}

static void test_redirects(void **state) {
  (void)state;
  struct result r;
  get("/redirect", &r); /* max_redirects 0: the 3xx is the answer */
  assert_int_equal(r.status, 302);
  int err;
  assert_true(request(NULL, "/redirect", NULL, NULL, 0, 0, 0, 2, &r, &err) > 0);
  wait_for(&r);
  assert_int_equal(r.status, 200);
  assert_string_equal(r.body, "hello");
  /* 303 after a POST: a GET without the body. */
  assert_true(request("POST", "/redirect-post", "x", NULL, 0, 0, 0, 1, &r, &err) > 0);
  wait_for(&r);
  assert_string_equal(r.body, "GET:");
  /* To https (port 1, where nobody listens): followed. */
  assert_true(request(NULL, "/redirect-https", NULL, NULL, 0, 0, 0, 1, &r, &err) > 0);
  wait_for(&r);
  assert_int_equal(r.err, ECONNREFUSED);
  assert_string_equal(r.text, "connection refused");
}

/* https to a server that answers HTTP: the handshake fails, cleanly. (The
 * e2e http_client test covers https against a real TLS server.) */
static void test_https_plain_server(void **state) {
  (void)state;
  struct result r;
  char url[64];
  snprintf(url, sizeof url, "https://127.0.0.1:%d/hello", srv_port);
  get(url, &r);
  assert_int_equal(r.err, EPROTO);
  assert_true(strncmp(r.text, "tls handshake failed: ", 22) == 0);
  int err;
  assert_true(request(NULL, "https://127.0.0.1:1/", NULL, NULL, 0, 0, 0, 0, &r,
                      &err) > 0);
  wait_for(&r);
  assert_int_equal(r.err, ECONNREFUSED);
}

static void test_cancel(void **state) {
  (void)state;
  struct result r;
  int err;
  intptr_t id = request(NULL, "/slow", NULL, NULL, 0, 0, 0, 0, &r, &err);
  assert_true(id > 0);
  in_request = 1;
  assert_int_equal(api.httpCancel(id), 0);
  assert_int_equal(api.httpCancel(id), EINVAL);
  in_request = 0;
  assert_false(r.done);
  wait_for(&r);
  assert_int_equal(r.err, ECANCELED);
  assert_int_equal(api.httpCancel(id), EINVAL); /* delivered: unknown */
  /* Answered but not yet delivered: delivered as cancelled. */
  get("/hello", &r); /* a pooled connection for the next one */
  id = request(NULL, "/hello", NULL, NULL, 0, 0, 0, 0, &r, &err);
  for (int i = 0; i < 100000 && !atomic_load(&loop->http)->done; i++)
    uv_run(&loop->uv, UV_RUN_ONCE);
  assert_false(r.done);
  assert_int_equal(api.httpCancel(id), 0);
  wait_for(&r);
  assert_int_equal(r.err, ECANCELED);
}

/* The loop's end: what is pending ends with ECANCELED at once, later
 * requests are refused. */
static void test_shutdown(void **state) {
  (void)state;
  struct result a, b;
  int err;
  assert_true(request(NULL, "/slow", NULL, NULL, 0, 0, 0, 0, &a, &err) > 0);
  char url[64];
  snprintf(url, sizeof url, "http://localhost:%d/slow", srv_port);
  assert_true(request(NULL, url, NULL, NULL, 0, 0, 0, 0, &b, &err) > 0);
  uv_run(&loop->uv, UV_RUN_NOWAIT);
  gc__http_loop_stop(loop);
  assert_int_equal(a.calls, 1);
  assert_int_equal(a.err, ECANCELED);
  assert_int_equal(b.calls, 1);
  assert_int_equal(b.err, ECANCELED);
  assert_int_equal(request(NULL, "/hello", NULL, NULL, 0, 0, 0, 0, &a, &err), 0);
  assert_int_equal(err, ESHUTDOWN);
}

/* A loop that ends before any request (the state is made then) refuses
 * those that come after, such as application_shutdown's. */
static void test_shutdown_before_any(void **state) {
  (void)state;
  gc__http_loop_stop(loop);
  struct result r;
  int err = 0;
  assert_int_equal(request(NULL, "/hello", NULL, NULL, 0, 0, 0, 0, &r, &err), 0);
  assert_int_equal(err, ESHUTDOWN);
}

/* Every allocation of the host's during a request with a redirect is
 * failed in turn (a fresh loop each time, so the loop's first request
 * state is covered too): each must end in an immediate error or exactly
 * one callback, with nothing leaked (LeakSanitizer at exit). */
static long alloc_budget = -1, alloc_count;
static void *failing_realloc(void *p, size_t n) {
  alloc_count++;
  if (alloc_budget == 0)
    return NULL;
  if (alloc_budget > 0)
    alloc_budget--;
  return realloc(p, n);
}

static int one_failing_run(long budget, const char *url) {
  memset(&server, 0, sizeof server);
  server.apps = &app;
  server.app_count = 1;
  assert_int_equal(gc_server_loops_create(&server, 1, 0), 0);
  loop = server.loops[0];
  struct result r;
  int err = 0;
  alloc_budget = budget;
  alloc_count = 0;
  gc_alloc_set(failing_realloc, NULL);
  intptr_t id = request(NULL, url, NULL, NULL, 0, 2000, 0, 1, &r, &err);
  if (id)
    wait_for(&r);
  else
    assert_int_equal(err, ENOMEM);
  gc_alloc_set(NULL, NULL);
  alloc_budget = -1;
  gc_server_loops_quiesce(&server);
  assert_int_equal(gc_server_loops_close(&server), 0);
  return id && r.err == 0;
}

static void test_allocation_failures(void **state) {
  (void)state;
  gc_server_loops_quiesce(&server); /* setup's loop: each run makes its own */
  assert_int_equal(gc_server_loops_close(&server), 0);
  assert_true(one_failing_run(-1, "/redirect"));
  long total = alloc_count;
  assert_true(total > 10);
  int failed = 0;
  for (long n = 0; n < total; n++)
    failed += !one_failing_run(n, "/redirect");
  assert_true(failed > 0);
  /* https's own allocations (the session, the ciphertext written): the
   * handshake with this plain server fails either way, once. */
  char url[64];
  snprintf(url, sizeof url, "https://127.0.0.1:%d/hello", srv_port);
  assert_false(one_failing_run(-1, url));
  total = alloc_count;
  for (long n = 0; n < total; n++)
    assert_false(one_failing_run(n, url));
  memset(&server, 0, sizeof server); /* for teardown: no loop left */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_get_headers, setup, teardown),
      cmocka_unit_test_setup_teardown(test_request_bytes, setup, teardown),
      cmocka_unit_test_setup_teardown(test_post_body, setup, teardown),
      cmocka_unit_test_setup_teardown(test_chunked, setup, teardown),
      cmocka_unit_test_setup_teardown(test_keep_alive_reuse, setup, teardown),
      cmocka_unit_test_setup_teardown(test_pooled_closed_retry, setup, teardown),
      cmocka_unit_test_setup_teardown(test_timeout, setup, teardown),
      cmocka_unit_test_setup_teardown(test_refused, setup, teardown),
      cmocka_unit_test_setup_teardown(test_name_resolution, setup, teardown),
      cmocka_unit_test_setup_teardown(test_body_too_large, setup, teardown),
      cmocka_unit_test_setup_teardown(test_bad_args, setup, teardown),
      cmocka_unit_test_setup_teardown(test_redirects, setup, teardown),
      cmocka_unit_test_setup_teardown(test_https_plain_server, setup, teardown),
      cmocka_unit_test_setup_teardown(test_cancel, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown, setup, teardown),
      cmocka_unit_test_setup_teardown(test_shutdown_before_any, setup, teardown),
      cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
