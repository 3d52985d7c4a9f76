/* Tests host/timers.c: the per-loop heap. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "timers.h"

static intptr_t fired[64];
static int nfired;
static struct gc_timers *self_timers;
static intptr_t self_id;

static void record(void *ctx, intptr_t arg) {
  (void)ctx;
  fired[nfired++] = arg;
}

static void stop_self(void *ctx, intptr_t arg) {
  (void)ctx;
  fired[nfired++] = arg;
  assert_int_equal(gc_timers_stop(self_timers, self_id), 0);
}

static void test_order_and_fifo(void **state) {
  (void)state;
  struct gc_timers t;
  gc_timers_init(&t);
  nfired = 0;
  intptr_t id;
  assert_int_equal(gc_timers_start(&t, 0, 30, 0, record, NULL, 3, &id), 0);
  assert_int_equal(gc_timers_start(&t, 0, 10, 0, record, NULL, 1, &id), 0);
  assert_int_equal(gc_timers_start(&t, 0, 20, 0, record, NULL, 2, &id), 0);
  assert_int_equal(gc_timers_start(&t, 0, 20, 0, record, NULL, 22, &id), 0);
  assert_int_equal(gc_timers_next_due(&t), 10);
  assert_int_equal(gc_timers_run(&t, 9), 0);
  assert_int_equal(gc_timers_run(&t, 20), 3);
  assert_int_equal(fired[0], 1);
  assert_int_equal(fired[1], 2);
  assert_int_equal(fired[2], 22); /* same deadline: start order */
  assert_int_equal(gc_timers_run(&t, 100), 1);
  assert_int_equal(fired[3], 3);
  assert_int_equal(gc_timers_next_due(&t), -1);
  /* A fired one-shot id is dead. */
  assert_int_equal(gc_timers_stop(&t, id), EINVAL);
  gc_timers_free(&t);
}

static void test_stop_and_repeat(void **state) {
  (void)state;
  struct gc_timers t;
  gc_timers_init(&t);
  nfired = 0;
  intptr_t a, b;
  assert_int_equal(gc_timers_start(&t, 0, 10, 0, record, NULL, 1, &a), 0);
  assert_int_equal(gc_timers_start(&t, 0, 5, 5, record, NULL, 2, &b), 0);
  assert_int_equal(gc_timers_stop(&t, a), 0);
  assert_int_equal(gc_timers_stop(&t, a), EINVAL);
  assert_int_equal(gc_timers_run(&t, 20), 4); /* 5, 10, 15, 20 */
  for (int i = 0; i < 4; i++)
    assert_int_equal(fired[i], 2);
  assert_int_equal(gc_timers_next_due(&t), 25);
  assert_int_equal(gc_timers_stop(&t, b), 0);
  assert_int_equal(gc_timers_next_due(&t), -1);
  assert_int_equal(gc_timers_start(&t, 0, -1, 0, record, NULL, 0, &a), EINVAL);
  assert_int_equal(gc_timers_start(&t, 0, 1, 0, NULL, NULL, 0, &a), EINVAL);
  gc_timers_free(&t);
}

static void test_repeating_timer_stops_itself(void **state) {
  (void)state;
  struct gc_timers t;
  gc_timers_init(&t);
  nfired = 0;
  self_timers = &t;
  assert_int_equal(gc_timers_start(&t, 0, 10, 10, stop_self, NULL, 9, &self_id), 0);
  assert_int_equal(gc_timers_run(&t, 100), 1);
  assert_int_equal(nfired, 1);
  assert_int_equal(gc_timers_next_due(&t), -1);
  gc_timers_free(&t);
}

static void test_many_random(void **state) {
  (void)state;
  struct gc_timers t;
  gc_timers_init(&t);
  intptr_t ids[500];
  unsigned seed = 12345;
  for (int i = 0; i < 500; i++) {
    seed = seed * 1103515245 + 12345;
    assert_int_equal(gc_timers_start(&t, 0, (seed >> 8) % 1000, 0, record, NULL, i,
                                     &ids[i]),
                     0);
  }
  for (int i = 0; i < 500; i += 3)
    assert_int_equal(gc_timers_stop(&t, ids[i]), 0);
  int64_t last = -1;
  int count = 0;
  while (t.count) {
    int64_t due = gc_timers_next_due(&t);
    assert_true(due >= last);
    last = due;
    nfired = 0;
    count += (int)gc_timers_run(&t, due);
  }
  assert_int_equal(count, 500 - 167);
  gc_timers_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_and_fifo),
      cmocka_unit_test(test_stop_and_repeat),
      cmocka_unit_test(test_repeating_timer_stops_itself),
      cmocka_unit_test(test_many_random),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
