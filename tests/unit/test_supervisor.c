/* Tests host/supervisor.c: where a connection goes (gc__app_worker) and
 * the worker loops' mail (host/mailbox.c) in one thread: the order of
 * posts, WorkerPost through the real core_api, a loop that has ended. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "internal.h"
#include "mailbox.h"

static struct gc_app_conf routed(enum gc_route route, char *param) {
  struct gc_app_conf c;
  memset(&c, 0, sizeof c);
  c.route = route;
  c.route_param = param;
  return c;
}

static void test_route_query(void **state) {
  (void)state;
  struct gc_server s;
  memset(&s, 0, sizeof s);
  s.loop_count = 4;
  char room[] = "room";
  struct gc_app_conf conf = routed(GC_ROUTE_QUERY, room);
  struct gc_app app = {.conf = &conf, .home = -1};
  /* The same key, wherever it stands in the query: the same worker. */
  int w = gc__app_worker(&s, &app, "/chat?room=17");
  assert_true(w >= 0 && w < 4);
  assert_int_equal(gc__app_worker(&s, &app, "/chat?name=bob&room=17"), w);
  assert_int_equal(gc__app_worker(&s, &app, "/other?room=17&x=1#frag"), w);
  /* "roomy" is another parameter; no value is the empty key. */
  assert_int_equal(gc__app_worker(&s, &app, "/chat?roomy=17"),
                   gc__app_worker(&s, &app, "/chat"));
  /* Keys spread: 64 rooms reach every one of 4 workers. */
  int seen[4] = {0};
  char target[64];
  for (int r = 0; r < 64; r++) {
    snprintf(target, sizeof target, "/chat?room=%d", r);
    int k = gc__app_worker(&s, &app, target);
    assert_true(k >= 0 && k < 4);
    seen[k]++;
  }
  for (int k = 0; k < 4; k++)
    assert_true(seen[k] > 4);
}

static void test_route_path_home_none(void **state) {
  (void)state;
  struct gc_server s;
  memset(&s, 0, sizeof s);
  s.loop_count = 2;
  struct gc_app_conf conf = routed(GC_ROUTE_PATH, NULL);
  struct gc_app app = {.conf = &conf, .home = -1};
  /* The path without its query decides. */
  assert_int_equal(gc__app_worker(&s, &app, "/room/a?x=1"),
                   gc__app_worker(&s, &app, "/room/a?x=2"));
  int differ = 0;
  char target[64];
  for (int r = 0; r < 16; r++) {
    snprintf(target, sizeof target, "/room/%d", r);
    differ |= gc__app_worker(&s, &app, target) != gc__app_worker(&s, &app, "/room/0");
  }
  assert_true(differ);
  /* An app with a home (a Lua app without a route) always goes there. */
  struct gc_app_conf none = routed(GC_ROUTE_NONE, NULL);
  struct gc_app lua = {.conf = &none, .home = 1};
  assert_int_equal(gc__app_worker(&s, &lua, "/x?room=1"), 1);
  /* A native app without a route stays where it was accepted. */
  struct gc_app native = {.conf = &none, .home = -1};
  assert_int_equal(gc__app_worker(&s, &native, "/x"), -1);
  /* One worker: always 0. */
  s.loop_count = 1;
  assert_int_equal(gc__app_worker(&s, &app, "/room/7"), 0);
}

static char order[64];
static size_t order_len;
static void record(GCT_INTPTR user) {
  if (order_len + 1 < sizeof order)
    order[order_len++] = (char)user;
  /* From inside a mail, a post to the running loop waits for the next run. */
  if (user == 'b') {
    struct core_api api;
    gc__core_api_fill(&api);
    assert_int_equal(api.workerPost(1, record, 'z'), 0);
  }
}

static void test_worker_post(void **state) {
  (void)state;
  struct gc_server s;
  memset(&s, 0, sizeof s);
  assert_int_equal(gc_server_loops_create(&s, 2, 0), 0);
  struct core_api api;
  gc__core_api_fill(&api);
  order_len = 0;
  assert_int_equal(api.workerCount(), 2);
  assert_int_equal(api.workerId(), 0);
  assert_int_equal(api.workerPost(2, record, 'x'), EINVAL);
  assert_int_equal(api.workerPost(-1, record, 'x'), EINVAL);
  assert_int_equal(api.workerPost(1, NULL, 'x'), EINVAL);
  for (int c = 'a'; c <= 'e'; c++)
    assert_int_equal(api.workerPost(1, record, c), 0);
  /* Never inside the call: nothing ran yet. */
  assert_int_equal(order_len, 0);
  assert_int_equal(gc__mailbox_run(s.loops[0]), 0);
  assert_int_equal(order_len, 0);
  assert_int_equal(gc__mailbox_run(s.loops[1]), 1);
  assert_memory_equal(order, "abcde", 5);
  assert_int_equal(order_len, 5);
  assert_int_equal(gc__mailbox_run(s.loops[1]), 1);
  assert_int_equal(order_len, 6);
  assert_int_equal(order[5], 'z');
  /* WorkerEnter: this thread acts as worker 1 (no loop runs here). */
  assert_int_equal(api.workerEnter(1), 0);
  assert_int_equal(api.workerId(), 1);
  assert_int_equal(api.workerEnter(-1), 0);
  assert_int_equal(api.workerId(), 0);
  assert_int_equal(api.workerEnter(2), EINVAL);
  /* A loop that has ended takes no more: ESHUTDOWN, and cb never runs. */
  gc_server_loops_quiesce(&s);
  assert_int_equal(api.workerPost(1, record, 'q'), ESHUTDOWN);
  assert_int_equal(order_len, 6);
  assert_int_equal(gc_server_loops_close(&s), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_route_query),
      cmocka_unit_test(test_route_path_home_none),
      cmocka_unit_test(test_worker_post),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
