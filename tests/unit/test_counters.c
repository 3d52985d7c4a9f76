/* Tests host/counters.c: the process-wide counter registry. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "counters.h"

static int64_t seen_value;
static int seen_calls;
static void on_change(intptr_t user, int32_t id, int64_t value) {
  assert_int_equal(user, 42);
  assert_true(id >= GC_CTR_SYSTEM_COUNT);
  seen_value = value;
  seen_calls++;
}

static void test_system_counters_exist(void **state) {
  (void)state;
  struct gc_counters c;
  assert_int_equal(gc_counters_init(&c), 0);
  const char *names[16];
  assert_int_equal(gc_counters_names(&c, names, 16, 0), GC_CTR_SYSTEM_COUNT);
  assert_string_equal(names[GC_CTR_CONNECTIONS], "gcs.connections");
  assert_int_equal(gc_counters_open(&c, "gcs.bytes_in"), GC_CTR_BYTES_IN);
  /* Each loop bumps its own share; a read sums them. */
  static struct gc_counter_shard a, b;
  assert_int_equal(gc_counters_add_shard(&c, &a), 0);
  assert_int_equal(gc_counters_add_shard(&c, &b), 0);
  gc_counters_bump(&a, GC_CTR_BYTES_IN, 10);
  gc_counters_bump(&b, GC_CTR_BYTES_IN, 5);
  gc_counters_bump(&b, GC_CTR_BYTES_OUT, 7);
  int64_t v = 0;
  assert_int_equal(gc_counters_get(&c, GC_CTR_BYTES_IN, &v), 0);
  assert_int_equal(v, 15);
  assert_int_equal(gc_counters_get(&c, GC_CTR_BYTES_OUT, &v), 0);
  assert_int_equal(v, 7);
  /* Built-in counters are the host's: apps cannot write them. */
  assert_int_equal(gc_counters_set(&c, GC_CTR_BYTES_IN, 0), EINVAL);
  gc_counters_free(&c);
}

static void test_create_open_add(void **state) {
  (void)state;
  struct gc_counters c;
  assert_int_equal(gc_counters_init(&c), 0);
  int32_t id = gc_counters_create(&c, "game.rooms");
  assert_true(id >= GC_CTR_SYSTEM_COUNT);
  assert_int_equal(gc_counters_create(&c, "game.rooms"), id); /* same name, same id */
  assert_int_equal(gc_counters_open(&c, "game.rooms"), id);
  assert_int_equal(gc_counters_open(&c, "nope"), -1);
  assert_int_equal(gc_counters_create(&c, ""), -1);
  assert_int_equal(gc_counters_create(&c, NULL), -1);
  assert_int_equal(gc_counters_add(&c, id, 5), 0);
  assert_int_equal(gc_counters_add(&c, id, -2), 0);
  int64_t v;
  assert_int_equal(gc_counters_get(&c, id, &v), 0);
  assert_int_equal(v, 3);
  assert_int_equal(gc_counters_get(&c, 9999, &v), EINVAL);
  assert_int_equal(gc_counters_get(&c, -1, &v), EINVAL);
  assert_int_equal(gc_counters_names(&c, NULL, 0, 1), GC_CTR_SYSTEM_COUNT);
  assert_int_equal(gc_counters_names(&c, NULL, 0, 0), GC_CTR_SYSTEM_COUNT + 1);
  gc_counters_free(&c);
}

static void test_subscribe(void **state) {
  (void)state;
  struct gc_counters c;
  assert_int_equal(gc_counters_init(&c), 0);
  int32_t id = gc_counters_create(&c, "x");
  seen_calls = 0;
  assert_int_equal(gc_counters_subscribe(&c, id, on_change, 42), 0);
  assert_int_equal(gc_counters_set(&c, id, 7), 0);
  assert_int_equal(seen_calls, 1);
  assert_int_equal(seen_value, 7);
  assert_int_equal(gc_counters_add(&c, id, 3), 0);
  assert_int_equal(seen_value, 10);
  assert_int_equal(gc_counters_unsubscribe(&c, id, on_change, 42), 0);
  assert_int_equal(gc_counters_unsubscribe(&c, id, on_change, 42), ENOENT);
  assert_int_equal(gc_counters_add(&c, id, 1), 0);
  assert_int_equal(seen_calls, 2);
  gc_counters_free(&c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_system_counters_exist),
      cmocka_unit_test(test_create_open_add),
      cmocka_unit_test(test_subscribe),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
