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

/* A handle names its table's owner (a worker loop): another table never
 * resolves it, even at the same slot and generation. */
static void test_tag(void **state) {
  (void)state;
  struct gc_handle_table t0, t3;
  gc_handle_table_init_tagged(&t0, 0);
  gc_handle_table_init_tagged(&t3, 3);
  int a = 1, b = 2;
  intptr_t h0, h3;
  assert_int_equal(gc_handle_table_add(&t0, &a, &h0), 0);
  assert_int_equal(gc_handle_table_add(&t3, &b, &h3), 0);
  assert_int_equal(gc_handle_tag(h0), 0);
  assert_int_equal(gc_handle_tag(h3), 3);
  assert_true(h0 != h3);
  assert_null(gc_handle_table_get(&t3, h0));
  assert_null(gc_handle_table_get(&t0, h3));
  assert_ptr_equal(gc_handle_table_get(&t3, h3), &b);
  assert_int_equal(gc_handle_table_remove(&t0, h3), EINVAL);
  gc_handle_table_free(&t0);
  gc_handle_table_free(&t3);
}

/* What another thread may ask: alive while occupied, not once removed nor
 * for the slot's next occupant's old handle; pages never move, so growing
 * does not change an answer. */
static void test_alive(void **state) {
  (void)state;
  struct gc_handle_table t;
  gc_handle_table_init_tagged(&t, 5);
  assert_int_equal(gc_handle_table_alive(&t, (intptr_t)((1ull << 32) | (5u << 24) | 1)), 0);
  int a = 1, b = 2;
  intptr_t ha, hb;
  assert_int_equal(gc_handle_table_add(&t, &a, &ha), 0);
  assert_int_equal(gc_handle_table_alive(&t, ha), 1);
  assert_int_equal(gc_handle_table_remove(&t, ha), 0);
  assert_int_equal(gc_handle_table_alive(&t, ha), 0);
  assert_int_equal(gc_handle_table_add(&t, &b, &hb), 0);
  assert_true((hb & 0xffffff) == (ha & 0xffffff)); /* the same slot */
  assert_int_equal(gc_handle_table_alive(&t, ha), 0);
  assert_int_equal(gc_handle_table_alive(&t, hb), 1);
  /* Another tag, slot 0, a slot past the pages: never alive. */
  assert_int_equal(gc_handle_table_alive(&t, (intptr_t)(((uint64_t)hb & ~0xff000000ull) | (4u << 24))), 0);
  assert_int_equal(gc_handle_table_alive(&t, (intptr_t)((uint64_t)hb & ~0xffffffull)), 0);
  assert_int_equal(gc_handle_table_alive(&t, (intptr_t)(((uint64_t)hb & ~0xffffffull) | 0xfffff0)), 0);
  int many[3000];
  intptr_t hm[3000];
  for (int i = 0; i < 3000; i++)
    assert_int_equal(gc_handle_table_add(&t, &many[i], &hm[i]), 0);
  assert_int_equal(gc_handle_table_alive(&t, hb), 1);
  assert_int_equal(gc_handle_table_alive(&t, hm[2999]), 1);
  assert_ptr_equal(gc_handle_table_at(&t, (uint32_t)(hm[2999] & 0xffffff) - 1), &many[2999]);
  gc_handle_table_free(&t);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_tag),
      cmocka_unit_test(test_alive),
      cmocka_unit_test(test_add_get_remove),
      cmocka_unit_test(test_stale_handle_never_reaches_new_object),
      cmocka_unit_test(test_bad_handles),
      cmocka_unit_test(test_grow_many),
      cmocka_unit_test(test_enomem),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
