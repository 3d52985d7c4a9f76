/* Tests host/handle_table.c: generation-tagged handles. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <cmocka.h>

#include "alloc.h"
#include "handle_table.h"

static void test_add_get_remove(void **state) {
  (void)state;
  struct gc_handle_table t;
  gc_handle_table_init(&t);
  int a = 1, b = 2;
  intptr_t ha = 0, hb = 0;
  assert_int_equal(gc_handle_table_add(&t, &a, &ha), 0);
  assert_int_equal(gc_handle_table_add(&t, &b, &hb), 0);
  assert_true(ha != 0 && hb != 0 && ha != hb);
  assert_ptr_equal(gc_handle_table_get(&t, ha), &a);
  assert_ptr_equal(gc_handle_table_get(&t, hb), &b);
  assert_int_equal(t.used, 2);
  assert_int_equal(gc_handle_table_remove(&t, ha), 0);
  assert_null(gc_handle_table_get(&t, ha));
  assert_int_equal(gc_handle_table_remove(&t, ha), EINVAL);
  assert_int_equal(t.used, 1);
  gc_handle_table_free(&t);
}

/* The heart of the promise: a reused slot never answers to the old handle. */
static void test_stale_handle_never_reaches_new_object(void **state) {
  (void)state;
  struct gc_handle_table t;
  gc_handle_table_init(&t);
  int a = 1, b = 2;
  intptr_t ha, hb;
  assert_int_equal(gc_handle_table_add(&t, &a, &ha), 0);
  assert_int_equal(gc_handle_table_remove(&t, ha), 0);
  assert_int_equal(gc_handle_table_add(&t, &b, &hb), 0);
  /* Same slot (LIFO free list), new generation. */
  assert_int_equal((uint64_t)ha & 0xffffffffu, (uint64_t)hb & 0xffffffffu);
  assert_true(ha != hb);
  assert_null(gc_handle_table_get(&t, ha));
  assert_int_equal(gc_handle_table_remove(&t, ha), EINVAL);
  assert_ptr_equal(gc_handle_table_get(&t, hb), &b);
  gc_handle_table_free(&t);
}

static void test_bad_handles(void **state) {
  (void)state;
  struct gc_handle_table t;
  gc_handle_table_init(&t);
  int a = 1;
  intptr_t h;
  assert_null(gc_handle_table_get(&t, 0));
  assert_null(gc_handle_table_get(&t, -1));
  assert_null(gc_handle_table_get(&t, 12345));
  assert_int_equal(gc_handle_table_add(&t, NULL, &h), EINVAL);
  assert_int_equal(gc_handle_table_add(&t, &a, &h), 0);
  assert_null(gc_handle_table_get(&t, h + 1));           /* another slot */
  assert_null(gc_handle_table_get(&t, h + (1LL << 32))); /* another generation */
  assert_null(gc_handle_table_get(&t, (intptr_t)((uint64_t)h | 0xffffffffu)));
  gc_handle_table_free(&t);
}

static void test_grow_many(void **state) {
  (void)state;
  enum { N = 10000 };
  struct gc_handle_table t;
  gc_handle_table_init(&t);
  static int objs[N];
  static intptr_t hs[N];
  for (int i = 0; i < N; i++)
    assert_int_equal(gc_handle_table_add(&t, &objs[i], &hs[i]), 0);
  for (int i = 0; i < N; i++)
    assert_ptr_equal(gc_handle_table_get(&t, hs[i]), &objs[i]);
  for (int i = 0; i < N; i += 2)
    assert_int_equal(gc_handle_table_remove(&t, hs[i]), 0);
  for (int i = 0; i < N; i++)
    assert_ptr_equal(gc_handle_table_get(&t, hs[i]), i % 2 ? &objs[i] : NULL);
  assert_int_equal(t.used, N / 2);
  gc_handle_table_free(&t);
}

/* Allocation failure: ENOMEM, nothing changes. */
static int fail_after;
static void *failing_realloc(void *p, size_t n) {
  if (fail_after-- <= 0)
    return NULL;
  return realloc(p, n);
}

static void test_enomem(void **state) {
  (void)state;
  struct gc_handle_table t;
  gc_handle_table_init(&t);
  int a = 1;
  intptr_t h = 0;
  fail_after = 0;
  gc_alloc_set(failing_realloc, NULL);
  assert_int_equal(gc_handle_table_add(&t, &a, &h), ENOMEM);
  gc_alloc_set(NULL, NULL);
  assert_int_equal(h, 0);
  assert_int_equal(t.used, 0);
  assert_int_equal(gc_handle_table_add(&t, &a, &h), 0);
  gc_handle_table_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_add_get_remove),
      cmocka_unit_test(test_stale_handle_never_reaches_new_object),
      cmocka_unit_test(test_bad_handles),
      cmocka_unit_test(test_grow_many),
      cmocka_unit_test(test_enomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
