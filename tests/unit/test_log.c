/* Tests host/log.c: level names, the mask, the line format, the file and
 * the stderr copy, truncation, the hook, and whole lines under threads. */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
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

/* "[2026/11/25 10:00:00:1234] N: " */
#define PREFIX_RE "^\\[[0-9]{4}/[0-9]{2}/[0-9]{2} [0-9]{2}:[0-9]{2}:[0-9]{2}:[0-9]{4}\\] "
#define PREFIX_LEN 27

static char tmp_path[64];

/* Every test starts from the same logger: no file, no hook, quiet stderr,
 * the default mask; and a fresh, empty temp file name. */
static int reset(void **state) {
  (void)state;
  gc_log_close();
  gc_log_set_hook(NULL, NULL);
  gc_log_set_stderr(0);
  gc_log_set_level(GCL_NORMAL);
  snprintf(tmp_path, sizeof tmp_path, "/tmp/gc_test_log_XXXXXX");
  int fd = mkstemp(tmp_path);
  if (fd < 0)
    return -1;
  close(fd);
  return 0;
}

static int cleanup(void **state) {
  (void)state;
  gc_log_close();
  gc_log_set_hook(NULL, NULL);
  unlink(tmp_path);
  return 0;
}

/* The whole file as a NUL-terminated string (caller frees). */
static char *slurp(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  assert_int_equal(fseek(f, 0, SEEK_END), 0);
  long n = ftell(f);
  assert_true(n >= 0);
  rewind(f);
  char *buf = malloc((size_t)n + 1);
  assert_non_null(buf);
  assert_int_equal(fread(buf, 1, (size_t)n, f), (size_t)n);
  buf[n] = '\0';
  fclose(f);
  return buf;
}

static size_t count_lines(const char *text) {
  size_t n = 0;
  for (const char *p = text; *p; p++)
    n += *p == '\n';
  return n;
}

static void assert_matches(const char *text, const char *pattern) {
  regex_t re;
  assert_int_equal(regcomp(&re, pattern, REG_EXTENDED | REG_NEWLINE | REG_NOSUB), 0);
  int rc = regexec(&re, text, 0, NULL, 0);
  regfree(&re);
  if (rc != 0)
    fail_msg("'%s' does not match /%s/", text, pattern);
}

/* ---- level names ------------------------------------------------------------ */

static void test_level_parse(void **state) {
  (void)state;
  static const struct {
    const char *s;
    int mask;
  } ok[] = {{"ERR", GCL_ERR},
            {"WARN", GCL_WARN},
            {"NOTICE", GCL_NOTICE},
            {"INFO", GCL_INFO},
            {"DEBUG", GCL_DEBUG},
            {"USER", GCL_USER},
            {"NORMAL", GCL_NORMAL},
            {"VERBOSE", GCL_VERBOSE},
            {"normal", GCL_NORMAL},
            {"Verbose", GCL_VERBOSE},
            {"error", GCL_ERR},
            {"warning", GCL_WARN},
            {"GCL_NOTICE", GCL_NOTICE},
            {"lll_user", GCL_USER},
            {"ERR|warn", GCL_ERR | GCL_WARN},
            {" err | debug ", GCL_ERR | GCL_DEBUG},
            {"NORMAL|INFO|DEBUG", GCL_VERBOSE},
            {"0", 0},
            {"1031", 1031},
            {"010", 10}, /* decimal, never octal */
            {"0x403", 0x403},
            {"65535", 65535},
            {"ERR|16", GCL_ERR | GCL_DEBUG}};
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int m = -1;
    if (gc_log_level_parse(ok[i].s, &m) != 0 || m != ok[i].mask)
      fail_msg("'%s' -> %d, wanted %d", ok[i].s, m, ok[i].mask);
  }
  static const char *const bad[] = {"",      "LOUD", "ERR|",   "|ERR", "ERR||WARN",
                                    "-1",    "65536", "0x",    "1e3",  "ERR WARN",
                                    "NORMAL1", "GCL_", "0x10000", " "};
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
    int m = -1;
    if (gc_log_level_parse(bad[i], &m) != EINVAL || m != -1)
      fail_msg("'%s' was accepted (%d)", bad[i], m);
  }
  int m = 0;
  assert_int_equal(gc_log_level_parse(NULL, &m), EINVAL);
  assert_int_equal(gc_log_level_parse("ERR", NULL), EINVAL);
}

/* gcs -l: the five names are thresholds, anything else a config mask. */
static void test_level_parse_cli(void **state) {
  (void)state;
  static const struct {
    const char *s;
    int mask;
  } ok[] = {
      {"err", GCL_ERR},
      {"Warn", GCL_ERR | GCL_WARN},
      {"warning", GCL_ERR | GCL_WARN},
      {"notice", GCL_NORMAL},
      {"info", GCL_NORMAL | GCL_INFO},
      {"DEBUG", GCL_VERBOSE},
      {"USER", GCL_USER},
      {"ERR|WARN", GCL_ERR | GCL_WARN},
      {"WARN|NOTICE", GCL_WARN | GCL_NOTICE},
      {"0x10", GCL_DEBUG},
      {"NORMAL", GCL_NORMAL},
  };
  for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
    int m = -1;
    if (gc_log_level_parse_cli(ok[i].s, &m) != 0 || m != ok[i].mask)
      fail_msg("\"%s\": got %d, want %d", ok[i].s, m, ok[i].mask);
  }
  int m = -1;
  assert_int_equal(gc_log_level_parse_cli("loud", &m), EINVAL);
  assert_int_equal(gc_log_level_parse_cli("", &m), EINVAL);
  assert_int_equal(gc_log_level_parse_cli("warn|", &m), EINVAL);
  assert_int_equal(m, -1);
  assert_int_equal(gc_log_level_parse_cli(NULL, &m), EINVAL);
}

/* ---- the file, the mask, the format ------------------------------------------ */

static void test_file_and_mask(void **state) {
  (void)state;
  assert_int_equal(gc_log_open(tmp_path, GCL_ERR | GCL_USER), 0);
  assert_true(gc_log_enabled(GCL_ERR));
  assert_false(gc_log_enabled(GCL_INFO));
  gc_log(GCL_ERR, "bad %d", 42);
  gc_log(GCL_INFO, "not shown %s", "info");
  gc_log(GCL_WARN, "not shown warn");
  gc_log_write(GCL_USER, "from an adapter\n"); /* its newline is not doubled */
  gc_log_write(GCL_USER, NULL);                /* ignored */
  gc_log_write(GCL_DEBUG, "not shown debug");
  gc_log_write(0, "not shown: no level");
  /* Lowering the mask at run time takes effect at once. */
  gc_log_set_level(GCL_VERBOSE);
  gc_log_write(GCL_DEBUG, "now shown");
  gc_log_set_level(0);
  gc_log_write(GCL_ERR, "not shown: mask 0");
  gc_log_close();
  char *text = slurp(tmp_path);
  assert_int_equal(count_lines(text), 3);
  assert_null(strstr(text, "not shown"));
  assert_matches(text, PREFIX_RE "E: bad 42$");
  assert_matches(text, PREFIX_RE "U: from an adapter$");
  assert_matches(text, PREFIX_RE "D: now shown$");
  /* In order: the file has exactly these three lines. */
  assert_memory_equal(text + PREFIX_LEN, "E: bad 42\n", 10);
  free(text);
}

static void test_level_letters(void **state) {
  (void)state;
  assert_int_equal(gc_log_open(tmp_path, GCL_VERBOSE), 0);
  gc_log(GCL_ERR, "e");
  gc_log(GCL_WARN, "w");
  gc_log(GCL_NOTICE, "n");
  gc_log(GCL_INFO, "i");
  gc_log(GCL_DEBUG, "d");
  gc_log(GCL_USER, "u");
  gc_log_close();
  char *text = slurp(tmp_path);
  assert_int_equal(count_lines(text), 6);
  const char *want[] = {"E: e", "W: w", "N: n", "I: i", "D: d", "U: u"};
  const char *line = text;
  for (size_t i = 0; i < 6; i++) {
    assert_memory_equal(line + PREFIX_LEN, want[i], 4);
    assert_int_equal(line[PREFIX_LEN + 4], '\n');
    line = strchr(line, '\n') + 1;
  }
  free(text);
}

static void test_appends_and_reopen(void **state) {
  (void)state;
  FILE *f = fopen(tmp_path, "w");
  assert_non_null(f);
  fputs("earlier run\n", f);
  fclose(f);
  assert_int_equal(gc_log_open(tmp_path, GCL_NORMAL), 0);
  gc_log(GCL_NOTICE, "first");
  /* Reopening (a new file, or the same) replaces the old descriptor. */
  assert_int_equal(gc_log_open(tmp_path, GCL_NORMAL), 0);
  gc_log(GCL_NOTICE, "second");
  /* A failed open changes nothing: the old file and mask stay. */
  assert_int_equal(gc_log_open("/nonexistent-dir/x.log", GCL_VERBOSE), ENOENT);
  assert_false(gc_log_enabled(GCL_DEBUG));
  gc_log(GCL_NOTICE, "third");
  /* NULL or "" is stderr only: the file gets nothing more. */
  assert_int_equal(gc_log_open("", GCL_NORMAL), 0);
  gc_log(GCL_NOTICE, "not in the file");
  assert_int_equal(gc_log_open(NULL, GCL_NORMAL), 0);
  gc_log(GCL_NOTICE, "not in the file either");
  char *text = slurp(tmp_path);
  assert_memory_equal(text, "earlier run\n", 12);
  assert_int_equal(count_lines(text), 4);
  assert_matches(text, PREFIX_RE "N: first$");
  assert_matches(text, PREFIX_RE "N: second$");
  assert_matches(text, PREFIX_RE "N: third$");
  assert_null(strstr(text, "not in the file"));
  free(text);
}

/* Runs 'fn' with fd 2 redirected to a file; returns what reached it. */
static char *capture_stderr(void (*fn)(void)) {
  char path[] = "/tmp/gc_test_log_err_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_true(dup2(fd, STDERR_FILENO) >= 0);
  fn();
  assert_true(dup2(saved, STDERR_FILENO) >= 0);
  close(saved);
  close(fd);
  char *text = slurp(path);
  unlink(path);
  return text;
}

static void log_both(void) {
  gc_log_set_stderr(1);
  gc_log(GCL_WARN, "to both %s", "places");
  gc_log_set_stderr(0);
  gc_log(GCL_WARN, "to the file only");
}

static void test_stderr_and_file(void **state) {
  (void)state;
  assert_int_equal(gc_log_open(tmp_path, GCL_NORMAL), 0);
  char *err = capture_stderr(log_both);
  gc_log_close();
  char *file = slurp(tmp_path);
  /* The same line, byte for byte, in both. */
  assert_int_equal(count_lines(err), 1);
  assert_matches(err, PREFIX_RE "W: to both places$");
  assert_memory_equal(file, err, strlen(err));
  assert_int_equal(count_lines(file), 2);
  assert_matches(file, PREFIX_RE "W: to the file only$");
  free(err);
  free(file);
}

/* ---- truncation --------------------------------------------------------------- */

static void test_truncation(void **state) {
  (void)state;
  assert_int_equal(gc_log_open(tmp_path, GCL_VERBOSE), 0);
  char *big = malloc(10001);
  assert_non_null(big);
  memset(big, 'x', 10000);
  big[10000] = '\0';
  gc_log_write(GCL_WARN, big);       /* cut, not lost */
  gc_log(GCL_WARN, "%s!", big);      /* cut by formatting, still says so */
  big[GC_LOG_MSG_MAX] = '\0';
  gc_log_write(GCL_WARN, big);       /* exactly the limit: whole */
  /* Two-byte characters: the cut must not split one. */
  for (size_t i = 0; i + 1 < 10000; i += 2)
    memcpy(big + i, "\xc3\xa9", 2);
  big[10000 - 1] = '\0';
  gc_log_write(GCL_WARN, big);
  gc_log_close();
  free(big);

  char *text = slurp(tmp_path);
  assert_int_equal(count_lines(text), 4);
  char *line = text;
  for (int i = 0; i < 4; i++) {
    char *nl = strchr(line, '\n');
    size_t len = (size_t)(nl - line) - PREFIX_LEN - 3; /* minus "W: " */
    const char *msg = line + PREFIX_LEN + 3;
    if (i < 2) {
      assert_int_equal(len, GC_LOG_MSG_MAX);
      assert_memory_equal(msg + len - 4, "x...", 4);
    } else if (i == 2) {
      assert_int_equal(len, GC_LOG_MSG_MAX);
      assert_int_equal(msg[len - 1], 'x');
    } else {
      /* 4093 bytes would end inside a character: 4092 are kept. */
      assert_int_equal(len, GC_LOG_MSG_MAX - 1);
      assert_memory_equal(msg + len - 5, "\xc3\xa9...", 5);
    }
    line = nl + 1;
  }
  free(text);
}

/* ---- the hook ------------------------------------------------------------------ */

static char hooked_line[8192];
static int hooked_level, hooked_count;

static void hook(int level, const char *line, void *ud) {
  hooked_count++;
  hooked_level = level;
  snprintf(hooked_line, sizeof hooked_line, "%s", line);
  /* A hook that logs must not deadlock; its message is dropped. */
  if (ud)
    gc_log(GCL_ERR, "from inside the hook");
}

static void test_hook(void **state) {
  (void)state;
  assert_int_equal(gc_log_open(tmp_path, GCL_NORMAL), 0);
  hooked_count = 0;
  gc_log_set_hook(hook, NULL);
  gc_log(GCL_NOTICE, "hello %s\n", "hook");
  assert_int_equal(hooked_count, 1);
  assert_int_equal(hooked_level, GCL_NOTICE);
  assert_matches(hooked_line, PREFIX_RE "N: hello hook$"); /* no newline */
  gc_log(GCL_DEBUG, "masked");
  assert_int_equal(hooked_count, 1);
  /* The hook still hears with the stderr copy off (it is, here). */
  gc_log_set_hook(hook, (void *)1);
  gc_log(GCL_WARN, "outer");
  assert_int_equal(hooked_count, 2);
  assert_matches(hooked_line, PREFIX_RE "W: outer$");
  /* Unset: never called again. */
  gc_log_set_hook(NULL, NULL);
  gc_log(GCL_ERR, "unhooked");
  assert_int_equal(hooked_count, 2);
  gc_log_close();
  char *text = slurp(tmp_path);
  assert_null(strstr(text, "inside the hook"));
  assert_int_equal(count_lines(text), 3);
  free(text);
}

/* ---- rate limit --------------------------------------------------------- */

static void test_rate_limit(void **state) {
  (void)state;
  struct gc_log_limit l = {0};
  assert_int_equal(gc_log_limit_roll(&l, 5000), 0);
  for (int i = 0; i < 3; i++)
    assert_true(gc_log_limit_take(&l, 3));
  for (int i = 0; i < 7; i++)
    assert_false(gc_log_limit_take(&l, 3));
  /* Same second: nothing to report yet, still full. */
  assert_int_equal(gc_log_limit_roll(&l, 5999), 0);
  assert_false(gc_log_limit_take(&l, 3));
  /* The next second reports the 8 dropped once and lets lines through. */
  assert_int_equal(gc_log_limit_roll(&l, 6000), 8);
  assert_int_equal(gc_log_limit_roll(&l, 6500), 0);
  assert_true(gc_log_limit_take(&l, 3));
  /* A quiet second in between reports nothing. */
  assert_int_equal(gc_log_limit_roll(&l, 9000), 0);
  /* 0 = no limit. */
  for (int i = 0; i < 1000; i++)
    assert_true(gc_log_limit_take(&l, 0));
  assert_int_equal(gc_log_limit_roll(&l, 10000), 0);
}

/* ---- threads ----------------------------------------------------------------- */

#define THREADS 8
#define LINES 400

/* stderr's reader is gone (gcs | head, a closed terminal): the write meets
 * EPIPE (SIGPIPE ignored, as gcs does); the log file keeps every line and
 * says once, in order, that stderr is gone; stderr is not tried again. */
static void test_stderr_epipe(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  close(p[0]);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  void (*old)(int) = signal(SIGPIPE, SIG_IGN);
  assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
  close(p[1]);
  assert_int_equal(gc_log_open(tmp_path, GCL_NORMAL), 0);
  gc_log_set_stderr(1);
  gc_log(GCL_ERR, "first");
  gc_log(GCL_ERR, "second");
  gc_log(GCL_NOTICE, "third");
  assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
  close(saved);
  signal(SIGPIPE, old);
  gc_log_close();
  char *text = slurp(tmp_path);
  assert_int_equal(count_lines(text), 4);
  assert_matches(text, PREFIX_RE "E: first\n"
                       "\\[[^]]*\\] W: stderr is gone [^\n]*\n"
                       "\\[[^]]*\\] E: second\n"
                       "\\[[^]]*\\] N: third\n");
  free(text);
}

/* Last words before _exit: written whatever the mask, without the hook. */
static void test_urgent(void **state) {
  (void)state;
  assert_int_equal(gc_log_open(tmp_path, 0), 0);
  hooked_count = 0;
  gc_log_set_hook(hook, NULL);
  gc_log(GCL_ERR, "masked");
  gc_log_urgent(GCL_ERR, "going down");
  gc_log_set_hook(NULL, NULL);
  assert_int_equal(hooked_count, 0);
  gc_log_close();
  char *text = slurp(tmp_path);
  assert_int_equal(count_lines(text), 1);
  assert_matches(text, PREFIX_RE "E: going down$");
  free(text);
}

static void *writer(void *arg) {
  int t = (int)(intptr_t)arg;
  char pad[201];
  memset(pad, 'a' + t, 200);
  pad[200] = '\0';
  for (int i = 0; i < LINES; i++)
    gc_log(GCL_NOTICE, "t%d i%d %s", t, i, pad);
  return NULL;
}

static void test_threads_write_whole_lines(void **state) {
  (void)state;
  assert_int_equal(gc_log_open(tmp_path, GCL_NORMAL), 0);
  pthread_t th[THREADS];
  for (int t = 0; t < THREADS; t++)
    assert_int_equal(pthread_create(&th[t], NULL, writer, (void *)(intptr_t)t), 0);
  for (int t = 0; t < THREADS; t++)
    assert_int_equal(pthread_join(th[t], NULL), 0);
  gc_log_close();
  char *text = slurp(tmp_path);
  assert_int_equal(count_lines(text), THREADS * LINES);
  /* Each line whole, and each thread's lines in its own order. */
  int next[THREADS] = {0};
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    int t, i, used = 0;
    assert_int_equal(sscanf(line + PREFIX_LEN, "N: t%d i%d %n", &t, &i, &used), 2);
    assert_true(t >= 0 && t < THREADS);
    assert_int_equal(i, next[t]);
    next[t]++;
    assert_int_equal(strlen(line + PREFIX_LEN + used), 200);
    assert_int_equal(strspn(line + PREFIX_LEN + used, (char[]){(char)('a' + t), 0}), 200);
  }
  for (int t = 0; t < THREADS; t++)
    assert_int_equal(next[t], LINES);
  free(text);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test_setup_teardown(test_level_parse, reset, cleanup),
      cmocka_unit_test(test_level_parse_cli),
      cmocka_unit_test_setup_teardown(test_file_and_mask, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_level_letters, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_appends_and_reopen, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_stderr_and_file, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_truncation, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_hook, reset, cleanup),
      cmocka_unit_test(test_rate_limit),
      cmocka_unit_test_setup_teardown(test_stderr_epipe, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_urgent, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_threads_write_whole_lines, reset, cleanup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
