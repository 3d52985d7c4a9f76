/* Tests host/log.c: level names, the mask, the line format, the file and
 * the stderr copy, truncation, the hook, whole lines under threads, the
 * writer thread (a full queue, a stderr nobody reads, last words while it
 * is stuck), reopening the file, the JSON format. */
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
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <cmocka.h>
#include <jansson.h>

#include <game-carrier/common.h>

#include "log.h"
#include "log_format.h"

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
  gc_log_set_format(GC_LOG_FORMAT_TEXT);
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
  gc_log_flush(); /* the writer's lines reach this stderr, not the next */
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
  gc_log_flush();
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

/* ---- the writer thread ---------------------------------------------------- */

/* A stderr whose pipe is full and nobody reads: p[0] to read it later. */
static int stderr_full_pipe(int p[2]) {
  assert_int_equal(pipe(p), 0);
  int fl = fcntl(p[1], F_GETFL);
  assert_int_equal(fcntl(p[1], F_SETFL, fl | O_NONBLOCK), 0);
  char junk[4096];
  memset(junk, 'x', sizeof junk);
  for (int i = 0; i < 1024 && write(p[1], junk, sizeof junk) > 0; i++)
    ;
  assert_int_equal(fcntl(p[1], F_SETFL, fl), 0);
  int saved = dup(STDERR_FILENO);
  assert_true(saved >= 0);
  assert_int_equal(dup2(p[1], STDERR_FILENO), STDERR_FILENO);
  close(p[1]);
  return saved;
}

/* Reads what is in the pipe now (bounded by 'cap'). */
static size_t drain(int fd, char *buf, size_t cap) {
  int fl = fcntl(fd, F_GETFL);
  fcntl(fd, F_SETFL, fl | O_NONBLOCK);
  size_t n = 0;
  ssize_t k;
  char junk[4096];
  while ((k = read(fd, n < cap ? buf + n : junk, n < cap ? cap - n : sizeof junk)) > 0)
    n += n < cap ? (size_t)k : 0;
  fcntl(fd, F_SETFL, fl);
  return n;
}

struct reader {
  int fd;
  char *buf;
  size_t len, cap;
};

/* Reads 'fd' to its end. */
static void *read_all(void *arg) {
  struct reader *r = arg;
  for (;;) {
    if (r->len + 65536 > r->cap) {
      r->cap = r->cap ? r->cap * 2 : 1 << 20;
      r->buf = realloc(r->buf, r->cap + 1);
      if (!r->buf)
        abort();
    }
    ssize_t n = read(r->fd, r->buf + r->len, r->cap - r->len);
    if (n <= 0)
      break;
    r->len += (size_t)n;
  }
  r->buf[r->len] = '\0';
  return NULL;
}

#define FLOOD 30000

/* The file is a FIFO nobody reads yet (a disk that stopped): gc_log never
 * waits, the queue fills, lines are counted, and once the writer gets on
 * one line says how many were lost. Every line is either written, whole
 * and in order, or counted; each keeps the time it was logged at. */
static void test_queue_full_counts_lost_lines(void **state) {
  (void)state;
  unlink(tmp_path);
  assert_int_equal(mkfifo(tmp_path, 0600), 0);
  int rfd = open(tmp_path, O_RDONLY | O_NONBLOCK);
  assert_true(rfd >= 0);
  assert_int_equal(gc_log_open(tmp_path, GCL_NORMAL), 0);
  char pad[121];
  memset(pad, 'p', 120);
  pad[120] = '\0';
  for (int i = 0; i < FLOOD; i++)
    gc_log(GCL_NOTICE, "flood %05d %s", i, pad);
  /* Logged by now, whenever written. */
  struct timespec t1;
  clock_gettime(CLOCK_REALTIME, &t1);
  char until[GC__LOG_TEXT_MAX];
  gc__log_format(until, GC_LOG_FORMAT_TEXT, GCL_NOTICE, &t1, "", 0);
  fcntl(rfd, F_SETFL, fcntl(rfd, F_GETFL) & ~O_NONBLOCK);
  struct reader r = {.fd = rfd};
  pthread_t th;
  assert_int_equal(pthread_create(&th, NULL, read_all, &r), 0);
  gc_log(GCL_NOTICE, "after the flood");
  gc_log_close(); /* writes everything queued, then closes: EOF */
  assert_int_equal(pthread_join(th, NULL), 0);
  close(rfd);

  unsigned long long lost = 0;
  int written = 0, next = 0, after = 0, notes = 0;
  char *save = NULL;
  for (char *line = strtok_r(r.buf, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save)) {
    assert_matches(line, PREFIX_RE "[NW]: ");
    const char *msg = line + PREFIX_LEN;
    int i, used = 0;
    unsigned long long n;
    if (sscanf(msg, "N: flood %d %n", &i, &used) == 1) {
      assert_true(i >= next); /* in order, each once */
      next = i + 1;
      assert_string_equal(msg + used, pad);
      /* Stamped when logged, not when written. */
      assert_true(memcmp(line, until, PREFIX_LEN - 1) <= 0);
      written++;
    } else if (sscanf(msg, "W: %llu log lines lost: the log could not keep up%n",
                      &n, &used) == 1 && !msg[used]) {
      lost += n;
      notes++;
    } else {
      assert_string_equal(msg, "N: after the flood");
      after++;
    }
  }
  free(r.buf);
  assert_true(notes >= 1);
  assert_true(lost > 0);
  assert_int_equal((unsigned long long)written + (unsigned long long)after + lost,
                   FLOOD + 1);
}

/* stderr is a pipe nobody reads: gc_log does not wait; the writer waits
 * GC_LOG_STDERR_WAIT_MS for it once, then passes it over and the file
 * gets every line and one note; once stderr is read again, it gets a line
 * saying how many it missed, then the new lines. */
static void test_stderr_not_read(void **state) {
  (void)state;
  int p[2];
  int saved = stderr_full_pipe(p);
  assert_int_equal(gc_log_open(tmp_path, GCL_NORMAL), 0);
  gc_log_set_stderr(1);
  for (int i = 0; i < 300; i++)
    gc_log(GCL_NOTICE, "line %d", i);
  gc_log_flush();
  char *text = slurp(tmp_path);
  assert_int_equal(count_lines(text), 301);
  assert_matches(text, PREFIX_RE "N: line 0\n"
                       "\\[[^]]*\\] W: stderr is not being read: lines go to "
                       "this file only until it is\n"
                       "\\[[^]]*\\] N: line 1\n");
  assert_matches(text, PREFIX_RE "N: line 299$");
  free(text);
  char *buf = malloc(1 << 20);
  assert_non_null(buf);
  drain(p[0], buf, 1 << 20); /* the filler */
  gc_log(GCL_NOTICE, "resumed");
  gc_log_flush();
  size_t n = drain(p[0], buf, (1 << 20) - 1);
  buf[n] = '\0';
  assert_int_equal(count_lines(buf), 2);
  assert_matches(buf, PREFIX_RE "W: 300 log lines were not written to stderr "
                      "while it was not read \\(the log file has them\\)\n"
                      "\\[[^]]*\\] N: resumed\n");
  free(buf);
  assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
  close(saved);
  close(p[0]);
  gc_log_close();
  text = slurp(tmp_path);
  assert_int_equal(count_lines(text), 302);
  free(text);
}

/* Last words while the writer is stuck (here: waiting for a full stderr):
 * written to the file by the caller before it returns, never into the
 * full pipe. */
static void test_urgent_while_writer_stuck(void **state) {
  (void)state;
  int p[2];
  int saved = stderr_full_pipe(p);
  assert_int_equal(gc_log_open(tmp_path, GCL_NORMAL), 0);
  gc_log_set_stderr(1);
  gc_log(GCL_NOTICE, "queued");
  gc_log_urgent(GCL_ERR, "last words");
  char *text = slurp(tmp_path);
  assert_matches(text, PREFIX_RE "E: last words$");
  free(text);
  /* Read again: the writer's line gets there, the last words did not. */
  char *buf = malloc(1 << 20);
  assert_non_null(buf);
  size_t n = drain(p[0], buf, (1 << 20) - 1);
  gc_log_flush();
  n += drain(p[0], buf + n, (1 << 20) - 1 - n);
  buf[n] = '\0';
  assert_null(strstr(buf, "last words"));
  assert_non_null(strstr(buf, "N: queued\n"));
  free(buf);
  assert_int_equal(dup2(saved, STDERR_FILENO), STDERR_FILENO);
  close(saved);
  close(p[0]);
  gc_log_close();
  text = slurp(tmp_path);
  assert_matches(text, PREFIX_RE "N: queued$");
  free(text);
}

/* ---- reopening ------------------------------------------------------------ */

static char *path_in(const char *dir, const char *name) {
  char *p = malloc(strlen(dir) + strlen(name) + 2);
  assert_non_null(p);
  sprintf(p, "%s/%s", dir, name);
  return p;
}

/* logrotate: the file is renamed, gc_log_reopen: the lines before go to
 * the renamed file, the later ones to a new one at the path. A file that
 * cannot be opened again keeps the old one, which says why. */
static void test_reopen(void **state) {
  (void)state;
  char dir[] = "/tmp/gc_test_log_dir_XXXXXX", away[] = "/tmp/gc_test_log_away_XXXXXX";
  assert_non_null(mkdtemp(dir));
  assert_non_null(mkdtemp(away));
  char *log = path_in(dir, "gcs.log"), *log1 = path_in(dir, "gcs.log.1");
  char *moved = path_in(away, "gcs.log"), *moved1 = path_in(away, "gcs.log.1");
  assert_int_equal(gc_log_open(log, GCL_NORMAL), 0);
  gc_log(GCL_NOTICE, "before");
  assert_int_equal(rename(log, log1), 0);
  assert_int_equal(gc_log_reopen(), 0);
  gc_log(GCL_NOTICE, "after");
  gc_log_flush();
  char *old = slurp(log1), *cur = slurp(log);
  assert_int_equal(count_lines(old), 1);
  assert_matches(old, PREFIX_RE "N: before$");
  assert_int_equal(count_lines(cur), 2);
  assert_matches(cur, PREFIX_RE "N: log file reopened\n\\[[^]]*\\] N: after\n");
  free(old);
  free(cur);

  /* The directory is gone: the file open now stays. */
  assert_int_equal(rename(log, moved), 0);
  assert_int_equal(rename(log1, moved1), 0);
  assert_int_equal(rmdir(dir), 0);
  assert_int_equal(gc_log_reopen(), 0);
  gc_log(GCL_NOTICE, "still here");
  gc_log_close();
  cur = slurp(moved);
  assert_int_equal(count_lines(cur), 4);
  assert_matches(cur, PREFIX_RE "W: cannot reopen the log file /tmp/gc_test_log_dir_"
                      "[^ ]*/gcs.log \\(No such file or directory\\): lines still go "
                      "to the file open before\n\\[[^]]*\\] N: still here\n");
  free(cur);
  unlink(moved);
  unlink(moved1);
  rmdir(away);
  free(log);
  free(log1);
  free(moved);
  free(moved1);

  /* Nothing to reopen: stderr only, or closed. */
  assert_int_equal(gc_log_open(NULL, GCL_NORMAL), 0);
  assert_int_equal(gc_log_reopen(), ENOENT);
  gc_log_close();
  assert_int_equal(gc_log_reopen(), ENOENT);
}

#define ROT_THREADS 4
#define ROT_LINES 1500
#define ROTATIONS 5

static void *rot_writer(void *arg) {
  int t = (int)(intptr_t)arg;
  for (int i = 0; i < ROT_LINES; i++)
    gc_log(GCL_NOTICE, "t%d i%d end", t, i);
  return NULL;
}

/* Rotations while threads log: the files, oldest first, hold every line
 * once, whole, each thread's in order. (The lines fit the queue: none is
 * lost whatever the scheduling.) */
static void test_reopen_under_threads(void **state) {
  (void)state;
  char dir[] = "/tmp/gc_test_log_rot_XXXXXX";
  assert_non_null(mkdtemp(dir));
  char *log = path_in(dir, "gcs.log");
  assert_int_equal(gc_log_open(log, GCL_NORMAL), 0);
  pthread_t th[ROT_THREADS];
  for (int t = 0; t < ROT_THREADS; t++)
    assert_int_equal(pthread_create(&th[t], NULL, rot_writer, (void *)(intptr_t)t), 0);
  for (int k = 1; k <= ROTATIONS; k++) {
    nanosleep(&(struct timespec){0, 1000000}, NULL); /* spacing, not a bound */
    char name[32];
    snprintf(name, sizeof name, "gcs.log.%d", k);
    char *to = path_in(dir, name);
    assert_int_equal(rename(log, to), 0);
    assert_int_equal(gc_log_reopen(), 0);
    free(to);
    /* The writer opens the new file by itself, after the lines before. */
    for (int i = 0; i < 20000 && access(log, F_OK) != 0; i++)
      nanosleep(&(struct timespec){0, 1000000}, NULL);
    assert_int_equal(access(log, F_OK), 0);
  }
  for (int t = 0; t < ROT_THREADS; t++)
    assert_int_equal(pthread_join(th[t], NULL), 0);
  gc_log_close();
  int next[ROT_THREADS] = {0};
  for (int k = 1; k <= ROTATIONS + 1; k++) {
    char name[32];
    snprintf(name, sizeof name, k <= ROTATIONS ? "gcs.log.%d" : "gcs.log", k);
    char *path = path_in(dir, name);
    char *text = slurp(path);
    char *save = NULL;
    for (char *line = strtok_r(text, "\n", &save); line;
         line = strtok_r(NULL, "\n", &save)) {
      int t, i, used = 0;
      if (strcmp(line + PREFIX_LEN, "N: log file reopened") == 0)
        continue;
      assert_int_equal(sscanf(line + PREFIX_LEN, "N: t%d i%d end%n", &t, &i, &used), 2);
      assert_int_equal(line[PREFIX_LEN + used], '\0');
      assert_true(t >= 0 && t < ROT_THREADS);
      assert_int_equal(i, next[t]);
      next[t]++;
    }
    free(text);
    unlink(path);
    free(path);
  }
  for (int t = 0; t < ROT_THREADS; t++)
    assert_int_equal(next[t], ROT_LINES);
  rmdir(dir);
  free(log);
}

/* ---- JSON ------------------------------------------------------------------- */

static void expect_escape(const char *in, size_t len, const char *want) {
  char out[256];
  size_t n = gc__log_json_escape(out, in, len);
  out[n] = '\0';
  if (strcmp(out, want) != 0)
    fail_msg("escaped to '%s', want '%s'", out, want);
}

static void test_json_escape(void **state) {
  (void)state;
  expect_escape("plain", 5, "plain");
  expect_escape("q\"b\\s/", 6, "q\\\"b\\\\s/");
  expect_escape("\n\r\t\b\f", 5, "\\n\\r\\t\\b\\f");
  expect_escape("\x01\x1f\x7f", 3, "\\u0001\\u001f\\u007f");
  expect_escape("a\0b", 3, "a\\u0000b");
  /* Valid UTF-8 stays as it is. */
  expect_escape("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9, "\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80");
  /* Each byte that is not part of a valid character: U+FFFD. */
  expect_escape("\xff", 1, "\\ufffd");
  expect_escape("\xc0\xaf", 2, "\\ufffd\\ufffd");             /* overlong */
  expect_escape("\xed\xa0\x80", 3, "\\ufffd\\ufffd\\ufffd");  /* surrogate */
  expect_escape("\xf4\x90\x80\x80", 4, "\\ufffd\\ufffd\\ufffd\\ufffd"); /* > U+10FFFF */
  expect_escape("\xe2\x82x", 3, "\\ufffd\\ufffdx");           /* cut short */
  expect_escape("\xe2\x82", 2, "\\ufffd\\ufffd");             /* at the end */
  expect_escape("\x80", 1, "\\ufffd");
}

/* "format": "json": one object per line, which a JSON parser reads back
 * to the message logged (bytes that are not UTF-8 as U+FFFD); the hook
 * still sees text. */
static void test_json_format(void **state) {
  (void)state;
  static const struct {
    int level;
    const char *in, *word, *out;
  } lines[] = {
      {GCL_NOTICE, "plain", "notice", "plain"},
      {GCL_ERR, "q\"b\\s/\x01\x1f\x7f\tin\r\nside\n", "error",
       "q\"b\\s/\x01\x1f\x7f\tin\r\nside"},
      {GCL_WARN, "bad \xff\xfe overlong \xc0\xaf sur \xed\xa0\x80 cut \xe2\x82 end",
       "warn",
       "bad \xef\xbf\xbd\xef\xbf\xbd overlong \xef\xbf\xbd\xef\xbf\xbd sur "
       "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd cut \xef\xbf\xbd\xef\xbf\xbd end"},
      {GCL_USER, "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ok", "user",
       "\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80 ok"},
      {GCL_INFO, "i", "info", "i"},
      {GCL_DEBUG, "d", "debug", "d"},
  };
  size_t count = sizeof lines / sizeof lines[0];
  gc_log_set_format(GC_LOG_FORMAT_JSON);
  gc_log_set_format(7); /* not a format: ignored */
  assert_int_equal(gc_log_open(tmp_path, GCL_VERBOSE), 0);
  hooked_count = 0;
  gc_log_set_hook(hook, NULL);
  for (size_t i = 0; i < count; i++)
    gc_log_write(lines[i].level, lines[i].in);
  assert_matches(hooked_line, PREFIX_RE "D: d$");
  gc_log_set_hook(NULL, NULL);
  /* A long message of control characters: cut, each escaped. */
  char *big = malloc(10001);
  assert_non_null(big);
  memset(big, 1, 10000);
  big[10000] = '\0';
  gc_log_write(GCL_WARN, big);
  free(big);
  gc_log_close();

  char *text = slurp(tmp_path);
  for (const char *p = text; *p; p++)
    assert_true(*p == '\n' || ((unsigned char)*p >= 0x20 && *p != 0x7f));
  char *save = NULL;
  size_t k = 0;
  for (char *line = strtok_r(text, "\n", &save); line;
       line = strtok_r(NULL, "\n", &save), k++) {
    json_error_t err;
    json_t *o = json_loads(line, JSON_REJECT_DUPLICATES, &err);
    if (!o)
      fail_msg("line %zu is not JSON (%s): %s", k, err.text, line);
    assert_int_equal(json_object_size(o), 3);
    const char *ts = json_string_value(json_object_get(o, "ts"));
    assert_non_null(ts);
    assert_matches(ts, "^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\\.[0-9]{3}Z$");
    const char *level = json_string_value(json_object_get(o, "level"));
    json_t *msg = json_object_get(o, "msg");
    assert_non_null(level);
    assert_true(json_is_string(msg));
    if (k < count) {
      assert_string_equal(level, lines[k].word);
      assert_int_equal(json_string_length(msg), strlen(lines[k].out));
      assert_memory_equal(json_string_value(msg), lines[k].out, strlen(lines[k].out));
    } else {
      assert_int_equal(k, count);
      assert_string_equal(level, "warn");
      assert_int_equal(json_string_length(msg), GC_LOG_MSG_MAX);
      assert_memory_equal(json_string_value(msg) + GC_LOG_MSG_MAX - 4, "\x01...", 4);
    }
    /* The key order operators' tools show. */
    assert_memory_equal(line, "{\"ts\":\"", 7);
    assert_non_null(strstr(line, "\",\"level\":\""));
    json_decref(o);
  }
  assert_int_equal(k, count + 1);
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
      cmocka_unit_test_setup_teardown(test_queue_full_counts_lost_lines, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_stderr_not_read, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_urgent_while_writer_stuck, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_reopen, reset, cleanup),
      cmocka_unit_test_setup_teardown(test_reopen_under_threads, reset, cleanup),
      cmocka_unit_test(test_json_escape),
      cmocka_unit_test_setup_teardown(test_json_format, reset, cleanup),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
