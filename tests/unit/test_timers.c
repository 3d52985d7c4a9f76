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

/* Re-arms itself with 0 ms, as "next tick" code does, up to 'rearm_left'
 * times (bounded so a regression fails instead of hanging the test). */
static int rearm_left;
static int64_t rearm_now;

static void rearm_zero(void *ctx, intptr_t arg) {
  struct gc_timers *t = ctx;
  fired[nfired++] = arg;
  if (rearm_left-- > 0) {
    intptr_t id;
    assert_int_equal(gc_timers_start(t, rearm_now, 0, 0, rearm_zero, t, arg, &id), 0);
  }
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
  assert_int_equal(gc_timers_run(&t, 20), 1); /* 5; late: no burst */
  assert_int_equal(fired[0], 2);
  assert_int_equal(gc_timers_next_due(&t), 25); /* rescheduled from now */
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

/* A 0 ms timer started by a callback runs on the next run, not this one:
 * otherwise a self-re-arming one never lets the run return. */
static void test_zero_timer_started_in_run_waits(void **state) {
  (void)state;
  struct gc_timers t;
  gc_timers_init(&t);
  nfired = 0;
  rearm_left = 5;
  rearm_now = 0;
  intptr_t id;
  assert_int_equal(gc_timers_start(&t, 0, 0, 0, rearm_zero, &t, 7, &id), 0);
  for (int run = 1; run <= 6; run++) {
    assert_int_equal(gc_timers_run(&t, 0), 1);
    assert_int_equal(nfired, run);
  }
  assert_int_equal(gc_timers_run(&t, 0), 0);
  assert_int_equal(gc_timers_next_due(&t), -1);
  gc_timers_free(&t);
}

/* A timer started during a run with a stale 'now' (earlier than the run's)
 * neither runs in this run nor jumps ahead of the timers still due. */
static void test_started_in_run_keeps_order(void **state) {
  (void)state;
  struct gc_timers t;
  gc_timers_init(&t);
  nfired = 0;
  rearm_left = 1;
  rearm_now = 0;
  intptr_t id;
  assert_int_equal(gc_timers_start(&t, 0, 50, 0, rearm_zero, &t, 1, &id), 0);
  assert_int_equal(gc_timers_start(&t, 0, 60, 0, record, NULL, 2, &id), 0);
  assert_int_equal(gc_timers_run(&t, 100), 2);
  assert_int_equal(fired[0], 1);
  assert_int_equal(fired[1], 2);
  assert_int_equal(gc_timers_next_due(&t), 100);
  assert_int_equal(gc_timers_run(&t, 100), 1);
  assert_int_equal(fired[2], 1);
  gc_timers_free(&t);
}

/* Repeating timers at the edge: the smallest period, and one started with
 * 0 ms, run once per run however late the run is. */
static void test_repeat_once_per_run(void **state) {
  (void)state;
  for (int exact = 0; exact <= 1; exact++) {
    struct gc_timers t;
    gc_timers_init(&t);
    t.exact_steps = exact;
    nfired = 0;
    intptr_t id;
    assert_int_equal(gc_timers_start(&t, 0, 0, 1, record, NULL, 3, &id), 0);
    assert_int_equal(gc_timers_run(&t, 0), 1);
    assert_int_equal(gc_timers_next_due(&t), 1);
    assert_int_equal(gc_timers_run(&t, 0), 0);
    assert_int_equal(gc_timers_run(&t, 40), 1);
    assert_int_equal(gc_timers_next_due(&t), exact ? 2 : 41);
    assert_int_equal(gc_timers_stop(&t, id), 0);
    gc_timers_free(&t);
  }
}

/* After a stall, real time fires a late interval once and reschedules it
 * from now; exact steps (virtual time) fire every missed period, in
 * order, one per run. */
static void test_catch_up(void **state) {
  (void)state;
  struct gc_timers t;
  intptr_t id;
  gc_timers_init(&t);
  nfired = 0;
  assert_int_equal(gc_timers_start(&t, 0, 10, 10, record, NULL, 4, &id), 0);
  assert_int_equal(gc_timers_run(&t, 510), 1);
  assert_int_equal(gc_timers_next_due(&t), 520);
  assert_int_equal(gc_timers_run(&t, 515), 0);
  assert_int_equal(gc_timers_run(&t, 519), 0);
  assert_int_equal(gc_timers_run(&t, 520), 1);
  assert_int_equal(gc_timers_next_due(&t), 530); /* on time: keeps its phase */
  assert_int_equal(gc_timers_run(&t, 537), 1);
  assert_int_equal(gc_timers_next_due(&t), 540); /* late, but not a period */
  assert_int_equal(gc_timers_run(&t, 555), 1);
  assert_int_equal(gc_timers_next_due(&t), 565); /* a period late: from now */
  gc_timers_free(&t);

  gc_timers_init(&t);
  t.exact_steps = 1;
  assert_int_equal(gc_timers_start(&t, 0, 10, 10, record, NULL, 4, &id), 0);
  size_t total = 0;
  int runs = 0;
  while (gc_timers_next_due(&t) >= 0 && gc_timers_next_due(&t) <= 515) {
    assert_int_equal(gc_timers_run(&t, 515), 1);
    total++;
    assert_true(++runs <= 51);
  }
  assert_int_equal(total, 51); /* 10, 20, ..., 510 */
  assert_int_equal(gc_timers_next_due(&t), 520);
  gc_timers_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_order_and_fifo),
      cmocka_unit_test(test_stop_and_repeat),
      cmocka_unit_test(test_repeating_timer_stops_itself),
      cmocka_unit_test(test_many_random),
      cmocka_unit_test(test_zero_timer_started_in_run_waits),
      cmocka_unit_test(test_started_in_run_keeps_order),
      cmocka_unit_test(test_repeat_once_per_run),
      cmocka_unit_test(test_catch_up),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
