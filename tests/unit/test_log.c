/* Tests host/log.c: level masks, the file, the format. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include <game-carrier/common.h>

#include "log.h"

static void test_level_parse(void **state) {
  (void)state;
  int m = -1;
  assert_int_equal(gc_log_level_parse("NORMAL", &m), 0);
  assert_int_equal(m, GCL_NORMAL);
  assert_int_equal(gc_log_level_parse("verbose", &m), 0);
  assert_int_equal(m, GCL_VERBOSE);
  assert_int_equal(gc_log_level_parse("ERR|warn", &m), 0);
  assert_int_equal(m, GCL_ERR | GCL_WARN);
  assert_int_equal(gc_log_level_parse("1031", &m), 0);
  assert_int_equal(m, 1031);
  assert_int_equal(gc_log_level_parse("0", &m), 0);
  assert_int_equal(m, 0);
  assert_int_equal(gc_log_level_parse("LOUD", &m), EINVAL);
  assert_int_equal(gc_log_level_parse("", &m), EINVAL);
  assert_int_equal(gc_log_level_parse("-3", &m), EINVAL);
}

static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  static char buf[65536];
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static void test_file_and_mask(void **state) {
  (void)state;
  char path[] = "/tmp/gc_test_log_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  gc_log_set_stderr(0);
  assert_int_equal(gc_log_open(path, GCL_ERR | GCL_USER), 0);
  gc_log(GCL_ERR, "bad %d", 42);
  gc_log(GCL_INFO, "not shown");
  gc_log_write(GCL_USER, "from an adapter\n");
  gc_log_write(GCL_USER, NULL);
  gc_log_close();
  char *text = slurp(path);
  assert_non_null(strstr(text, "] E: bad 42\n"));
  assert_non_null(strstr(text, "] U: from an adapter\n"));
  assert_null(strstr(text, "not shown"));
  assert_int_equal(text[0], '[');
  /* "[YYYY/MM/DD hh:mm:ss:ffff] " */
  assert_int_equal(text[5], '/');
  assert_int_equal(text[25], ']');
  unlink(path);
  assert_int_equal(gc_log_open("/nonexistent-dir/x.log", GCL_NORMAL), ENOENT);
}

static char last[8192];
static int hooked;
static void hook(int level, const char *line, void *ud) {
  (void)ud;
  assert_int_equal(level, GCL_WARN);
  snprintf(last, sizeof last, "%s", line);
  hooked++;
}

static void test_hook_and_truncation(void **state) {
  (void)state;
  gc_log_set_stderr(0);
  assert_int_equal(gc_log_open(NULL, GCL_VERBOSE), 0);
  gc_log_set_hook(hook, NULL);
  char *big = malloc(10000);
  memset(big, 'x', 9999);
  big[9999] = '\0';
  gc_log_write(GCL_WARN, big);
  free(big);
  gc_log_set_hook(NULL, NULL);
  assert_int_equal(hooked, 1);
  size_t n = strlen(last);
  assert_true(n < 4200);
  assert_memory_equal(last + n - 3, "...", 3);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_level_parse),
      cmocka_unit_test(test_file_and_mask),
      cmocka_unit_test(test_hook_and_truncation),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
