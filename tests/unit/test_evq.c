/* Tests bindings/evq.c: the per-object queue of events that wait behind a
 * handler (a connection's, a link's): order, copies of the data, the bound
 * (final events pass it) and freeing what is left (ASan: no leak). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <cmocka.h>

#include "gc_lua.h"

static void test_order_and_copies(void **state) {
  (void)state;
  struct gc_lua_evq q = {0};
  char buf[] = "hello";
  assert_int_equal(gc_lua_evq_push(&q, 0, GC_LUA_EV_MESSAGE, buf, 5, 0, 0), 0);
  memcpy(buf, "XXXXX", 5); /* the queue holds a copy */
  assert_int_equal(gc_lua_evq_push(&q, 0, GC_LUA_EV_SENT, NULL, 42, 7, 3), 0);
  assert_int_equal(gc_lua_evq_push(&q, 0, GC_LUA_EV_TIMER, NULL, 0, 0, 0), 0);
  assert_int_equal(q.len, 3);
  struct gc_lua_pend *p = gc_lua_evq_pop(&q);
  assert_int_equal(p->kind, GC_LUA_EV_MESSAGE);
  assert_int_equal(p->len, 5);
  assert_memory_equal(p->data, "hello", 5);
  free(p);
  p = gc_lua_evq_pop(&q);
  assert_int_equal(p->kind, GC_LUA_EV_SENT);
  assert_int_equal(p->len, 42);
  assert_int_equal(p->cookie, 7);
  assert_int_equal(p->status, 3);
  free(p);
  p = gc_lua_evq_pop(&q);
  assert_int_equal(p->kind, GC_LUA_EV_TIMER);
  free(p);
  assert_null(gc_lua_evq_pop(&q));
  assert_null(q.head);
  assert_null(q.tail);
  assert_int_equal(q.len, 0);
}

static void test_bound_spares_final_events(void **state) {
  (void)state;
  struct gc_lua_evq q = {0};
  for (int i = 0; i < 2; i++)
    assert_int_equal(gc_lua_evq_push(&q, 2, GC_LUA_EV_MESSAGE, "m", 1, 0, 0), 0);
  assert_int_equal(gc_lua_evq_push(&q, 2, GC_LUA_EV_MESSAGE, "m", 1, 0, 0), EAGAIN);
  assert_int_equal(gc_lua_evq_push(&q, 2, GC_LUA_EV_TIMER, NULL, 0, 0, 0), EAGAIN);
  assert_int_equal(q.len, 2);
  assert_int_equal(gc_lua_evq_push(&q, 2, GC_LUA_EV_ERROR, "why", 4, 0, 0), 0);
  assert_int_equal(gc_lua_evq_push(&q, 2, GC_LUA_EV_DISCONNECT, NULL, 0, 0, 0), 0);
  assert_int_equal(q.len, 4);
  assert_int_equal(q.tail->kind, GC_LUA_EV_DISCONNECT);
  gc_lua_evq_free(&q); /* what is left goes: ASan reports a leak */
  assert_null(q.head);
  assert_int_equal(q.len, 0);
  gc_lua_evq_free(&q); /* idempotent */
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_and_copies),
      cmocka_unit_test(test_bound_spares_final_events),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
