/* Tests host/config_getopt.c: getOpt's paths, types and errors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include <game-carrier/server.h>

#include "config.h"

static const char *JSON =
    "{\"server_name\": \"eu-1\",\n"
    " \"adapters\": [{\"type\": \"native\", \"dir\": \"/x\", \"name\": \"echo\",\n"
    "   \"apps\": [{\"name\": \"echo\", \"type_name\": \"E\"}, {\"name\": \"two\"}]}],\n"
    " \"vhosts\": [{\"ip\": \"127.0.0.1\", \"port\": 7681, \"app\": \"echo\"}],\n"
    " \"logging\": {\"level\": \"NORMAL\"},\n"
    " \"threading\": {\"use_libuv\": true},\n"
    " \"max_connections\": 5000000000,\n"
    " \"keep_alive\": {\"timeout\": 0}}";

static int setup(void **state) {
  struct gc_config *cfg;
  char err[256];
  if (gc_config_load_string(JSON, "t.json", &cfg, err, sizeof err) != 0)
    return -1;
  *state = cfg;
  return 0;
}

static int teardown(void **state) {
  gc_config_free(*state);
  return 0;
}

static void test_strings(void **state) {
  const struct gc_config *cfg = *state;
  const char *s = NULL;
  assert_int_equal(gc_config_getopt(cfg, "server_name", GC_OPT_TYPE_STRING, &s), 0);
  assert_string_equal(s, "eu-1");
  assert_int_equal(gc_config_getopt(cfg, "adapters[0].apps[1].name", GC_OPT_TYPE_STRING, &s), 0);
  assert_string_equal(s, "two");
  assert_int_equal(gc_config_getopt(cfg, "adapters[0].apps[0].type_name", GC_OPT_TYPE_STRING, &s), 0);
  assert_string_equal(s, "E");
  /* A number is not a string. */
  assert_int_equal(gc_config_getopt(cfg, "vhosts[0].port", GC_OPT_TYPE_STRING, &s), EINVAL);
}

static void test_numbers(void **state) {
  const struct gc_config *cfg = *state;
  int32_t i = 0;
  uint64_t u = 0;
  assert_int_equal(gc_config_getopt(cfg, "vhosts[0].port", GC_OPT_TYPE_INT, &i), 0);
  assert_int_equal(i, 7681);
  assert_int_equal(gc_config_getopt(cfg, "max_connections", GC_OPT_TYPE_UINT64, &u), 0);
  assert_true(u == 5000000000ull);
  /* Does not fit in 32 bits. */
  assert_int_equal(gc_config_getopt(cfg, "max_connections", GC_OPT_TYPE_INT, &i), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "threading.use_libuv", GC_OPT_TYPE_INT, &i), 0);
  assert_int_equal(i, 1);
  /* A level name reads as its mask. */
  assert_int_equal(gc_config_getopt(cfg, "logging.level", GC_OPT_TYPE_INT, &i), 0);
  assert_int_equal(i, GCL_NORMAL);
  assert_int_equal(gc_config_getopt(cfg, "keep_alive.timeout", GC_OPT_TYPE_UINT64, &u), 0);
  assert_true(u == 0);
  assert_int_equal(gc_config_getopt(cfg, "server_name", GC_OPT_TYPE_INT, &i), EINVAL);
}

static void test_len(void **state) {
  const struct gc_config *cfg = *state;
  int32_t i = 0;
  assert_int_equal(gc_config_getopt(cfg, "adapters.len", GC_OPT_TYPE_INT, &i), 0);
  assert_int_equal(i, 1);
  assert_int_equal(gc_config_getopt(cfg, "adapters[0].apps.len", GC_OPT_TYPE_INT, &i), 0);
  assert_int_equal(i, 2);
  assert_int_equal(gc_config_getopt(cfg, "logging.len", GC_OPT_TYPE_INT, &i), 0);
  assert_int_equal(i, 1);
  assert_int_equal(gc_config_getopt(cfg, "apps.len", GC_OPT_TYPE_INT, &i), ENOENT);
}

static void test_null_type_and_errors(void **state) {
  const struct gc_config *cfg = *state;
  int32_t i;
  assert_int_equal(gc_config_getopt(cfg, "logging", GC_OPT_TYPE_NULL, NULL), 0);
  assert_int_equal(gc_config_getopt(cfg, "nope", GC_OPT_TYPE_NULL, NULL), ENOENT);
  assert_int_equal(gc_config_getopt(cfg, "adapters[3]", GC_OPT_TYPE_NULL, NULL), ENOENT);
  assert_int_equal(gc_config_getopt(cfg, "logging.level.x", GC_OPT_TYPE_NULL, NULL), ENOENT);
  assert_int_equal(gc_config_getopt(cfg, "a..b", GC_OPT_TYPE_INT, &i), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "adapters[", GC_OPT_TYPE_INT, &i), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "adapters[x]", GC_OPT_TYPE_INT, &i), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "logging.", GC_OPT_TYPE_INT, &i), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "", GC_OPT_TYPE_INT, &i), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, NULL, GC_OPT_TYPE_INT, &i), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "vhosts[0].port", GC_OPT_TYPE_INT, NULL), EINVAL);
  assert_int_equal(gc_config_getopt(cfg, "vhosts[0].port", 9, &i), EINVAL);
  assert_int_equal(gc_config_getopt(NULL, "x", GC_OPT_TYPE_NULL, NULL), EINVAL);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_strings),
      cmocka_unit_test(test_numbers),
      cmocka_unit_test(test_len),
      cmocka_unit_test(test_null_type_and_errors),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
