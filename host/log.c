/* log.c - the server log (see log.h).
 *
 * Lines are written with write(2), one call per line on an O_APPEND
 * descriptor, so lines of concurrent writers (threads here, other processes
 * sharing the file) never interleave and nothing sits in a stdio buffer when
 * the process dies. */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <game-carrier/common.h>

/* "[YYYY/MM/DD hh:mm:ss:ffff] X: " plus slack for odd years. */
#define PREFIX_MAX 48

/* The process-wide logger. 'mask' is atomic so gc_log_enabled needs no
 * lock on the hot path; everything else is guarded by 'lock'. */
static struct {
  pthread_mutex_t lock;
  atomic_int mask;
  int fd;            /* the file, or -1 */
  bool to_stderr;
  bool file_failed;  /* a write to the file failed; said once on stderr */
  bool stderr_gone;  /* a write to stderr met EPIPE: its reader is gone */
  void (*hook)(int, const char *, void *);
  void *hook_ud;
} logger = {PTHREAD_MUTEX_INITIALIZER, GCL_NORMAL, -1, true, false, false,
            NULL, NULL};

/* Set while this thread holds the lock: a hook that logs is dropped rather
 * than deadlocking. */
static _Thread_local bool in_log;

int gc_log_open(const char *file, int level_mask) {
  int fd = -1;
  if (file && *file) {
    fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
      return errno ? errno : EIO;
  }
  pthread_mutex_lock(&logger.lock);
  int old = logger.fd;
  logger.fd = fd;
  logger.file_failed = false;
  atomic_store_explicit(&logger.mask, level_mask, memory_order_relaxed);
  pthread_mutex_unlock(&logger.lock);
  if (old >= 0)
    close(old); /* a close error of a log file has no one to tell */
  return 0;
}

void gc_log_close(void) {
  pthread_mutex_lock(&logger.lock);
  int old = logger.fd;
  logger.fd = -1;
  pthread_mutex_unlock(&logger.lock);
  if (old >= 0)
    close(old);
}

void gc_log_set_level(int level_mask) {
  atomic_store_explicit(&logger.mask, level_mask, memory_order_relaxed);
}

int gc_log_enabled(int level) {
  return (atomic_load_explicit(&logger.mask, memory_order_relaxed) & level) !=
         0;
}

void gc_log_set_stderr(int on) {
  pthread_mutex_lock(&logger.lock);
  logger.to_stderr = on != 0;
  logger.stderr_gone = false; /* asked for again: worth a new try */
  pthread_mutex_unlock(&logger.lock);
}

void gc_log_set_hook(void (*hook)(int, const char *, void *), void *ud) {
  pthread_mutex_lock(&logger.lock);
  logger.hook = hook;
  logger.hook_ud = ud;
  pthread_mutex_unlock(&logger.lock);
}

/* The letter of the lowest level bit set, as libwebsockets prints it. */
static char log_letter(int level) {
  static const struct {
    int level;
    char letter;
  } letters[] = {{GCL_ERR, 'E'},  {GCL_WARN, 'W'},  {GCL_NOTICE, 'N'},
                 {GCL_INFO, 'I'}, {GCL_DEBUG, 'D'}, {GCL_USER, 'U'}};
  for (size_t i = 0; i < sizeof letters / sizeof letters[0]; i++)
    if (level & letters[i].level)
      return letters[i].letter;
  return '?';
}

/* Writes all of 'buf' (a pipe may take it in pieces); 0 or an errno. */
static int log_write_all(int fd, const char *buf, size_t len) {
  while (len) {
    ssize_t n = write(fd, buf, len);
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0)
      return n < 0 ? errno : EIO;
    buf += n;
    len -= (size_t)n;
  }
  return 0;
}

/* Cuts 'len' to at most 'max' bytes without splitting a UTF-8 character. */
static size_t log_cut(const char *msg, size_t len, size_t max) {
  if (len <= max)
    return len;
  while (max > 0 && ((unsigned char)msg[max] & 0xC0) == 0x80)
    max--;
  return max;
}

/* The longest line: prefix, message, "\n", NUL. */
#define LINE_MAX_BYTES (PREFIX_MAX + GC_LOG_MSG_MAX + 2)

/* Formats one line into 'line' (LINE_MAX_BYTES): 'msg' is 'len' bytes (not
 * NUL-terminated); 'cut' says the caller already lost the end of it.
 * Returns its length, newline included. */
static size_t log_format(char *line, int level, const char *msg, size_t len,
                         bool cut) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  localtime_r(&ts.tv_sec, &tm);
  int n = snprintf(line, PREFIX_MAX, "[%04d/%02d/%02d %02d:%02d:%02d:%04d] %c: ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, (int)(ts.tv_nsec / 100000),
                   log_letter(level));
  size_t pre = n < 0 ? 0 : (size_t)n >= PREFIX_MAX ? PREFIX_MAX - 1 : (size_t)n;
  while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
    len--;
  if (len > GC_LOG_MSG_MAX)
    cut = true;
  if (cut) {
    /* A runaway message is cut, not lost, and says so. */
    len = log_cut(msg, len, GC_LOG_MSG_MAX - 3);
    memcpy(line + pre, msg, len);
    memcpy(line + pre + len, "...", 3);
    len += 3;
  } else {
    memcpy(line + pre, msg, len);
  }
  size_t total = pre + len;
  line[total++] = '\n';
  line[total] = '\0';
  return total;
}

/* Emits one line; see log_format. */
static void log_emit(int level, const char *msg, size_t len, bool cut) {
  char line[LINE_MAX_BYTES];
  size_t total = log_format(line, level, msg, len, cut);

  pthread_mutex_lock(&logger.lock);
  in_log = true;
  bool stderr_lost = false;
  if (logger.to_stderr &&
      log_write_all(STDERR_FILENO, line, total) == EPIPE) {
    /* Its reader is gone (a closed terminal, "gcs | head", journald
     * restarting): gcs ignores SIGPIPE, stops writing there and goes on
     * with the file. Other errors have nowhere to be reported. */
    logger.to_stderr = false;
    logger.stderr_gone = stderr_lost = true;
  }
  if (logger.fd >= 0 && log_write_all(logger.fd, line, total) != 0 &&
      !logger.file_failed) {
    /* Say it once, on stderr even when the copy there is off: losing the
     * log file silently would hide every later problem. */
    logger.file_failed = true;
    static const char warn[] = "gcs: writing the log file failed; later "
                               "lines may be lost\n";
    if (!logger.stderr_gone)
      (void)log_write_all(STDERR_FILENO, warn, sizeof warn - 1);
  }
  if (stderr_lost && logger.fd >= 0) {
    static const char gone[] = "stderr is gone (its reader closed it): "
                               "from now on lines go to this file only";
    char note[PREFIX_MAX + sizeof gone + 2];
    size_t n = log_format(note, GCL_WARN, gone, sizeof gone - 1, false);
    (void)log_write_all(logger.fd, note, n);
  }
  if (logger.hook) {
    line[total - 1] = '\0';
    logger.hook(level, line, logger.hook_ud);
  }
  in_log = false;
  pthread_mutex_unlock(&logger.lock);
}

void gc_log_urgent(int level, const char *msg) {
  char line[LINE_MAX_BYTES];
  size_t total = log_format(line, level, msg, strnlen(msg, GC_LOG_MSG_MAX + 1),
                            false);
  /* The lock only briefly: its holder may be the thread that is stuck. */
  struct timespec until;
  clock_gettime(CLOCK_REALTIME, &until);
  until.tv_nsec += 200 * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  bool locked = pthread_mutex_timedlock(&logger.lock, &until) == 0;
  int fd = logger.fd;
  bool to_stderr = logger.to_stderr;
  if (fd >= 0)
    (void)log_write_all(fd, line, total);
  /* Not into a full pipe: nobody may be reading it, and this must not
   * block. */
  struct pollfd p = {.fd = STDERR_FILENO, .events = POLLOUT};
  if (to_stderr && poll(&p, 1, 0) == 1 && (p.revents & POLLOUT))
    (void)log_write_all(STDERR_FILENO, line, total);
  if (locked)
    pthread_mutex_unlock(&logger.lock);
}

void gc_log_write(int level, const char *msg) {
  if (!msg || in_log || !gc_log_enabled(level))
    return;
  /* strnlen: a message is never read past what a line can hold. */
  size_t len = strnlen(msg, GC_LOG_MSG_MAX + 3);
  log_emit(level, msg, len, len > GC_LOG_MSG_MAX + 2);
}

void gc_log(int level, const char *fmt, ...) {
  if (!fmt || in_log || !gc_log_enabled(level))
    return;
  char msg[GC_LOG_MSG_MAX + 1];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (n < 0)
    return; /* a bad format: nothing sensible to print */
  size_t len = (size_t)n < sizeof msg ? (size_t)n : sizeof msg - 1;
  log_emit(level, msg, len, (size_t)n >= sizeof msg);
}

/* ---- level names --------------------------------------------------------- */

static const struct {
  const char *name;
  int mask;
} level_names[] = {
    {"ERR", GCL_ERR},       {"ERROR", GCL_ERR},     {"WARN", GCL_WARN},
    {"WARNING", GCL_WARN},  {"NOTICE", GCL_NOTICE}, {"INFO", GCL_INFO},
    {"DEBUG", GCL_DEBUG},   {"USER", GCL_USER},     {"NORMAL", GCL_NORMAL},
    {"VERBOSE", GCL_VERBOSE}};

/* One part of a level: a name or a number, 'n' bytes at 's'. */
static int level_part(const char *s, size_t n, int *mask) {
  if (n > 4 && (strncasecmp(s, "GCL_", 4) == 0 || strncasecmp(s, "LLL_", 4) == 0)) {
    s += 4;
    n -= 4;
  }
  for (size_t k = 0; k < sizeof level_names / sizeof level_names[0]; k++)
    if (strlen(level_names[k].name) == n &&
        strncasecmp(s, level_names[k].name, n) == 0) {
      *mask = level_names[k].mask;
      return 0;
    }
  /* Decimal, or hex with 0x; never octal: "010" is ten. */
  bool hex = n > 2 && s[0] == '0' && (s[1] == 'x' || s[1] == 'X');
  size_t i = hex ? 2 : 0;
  long v = 0;
  if (i == n)
    return EINVAL;
  for (; i < n; i++) {
    int d = isdigit((unsigned char)s[i])                ? s[i] - '0'
            : hex && isxdigit((unsigned char)s[i])       ? tolower((unsigned char)s[i]) - 'a' + 10
                                                         : -1;
    if (d < 0)
      return EINVAL;
    v = v * (hex ? 16 : 10) + d;
    if (v > 0xFFFF)
      return EINVAL;
  }
  *mask = (int)v;
  return 0;
}

int gc_log_level_parse(const char *s, int *mask) {
  if (!s || !mask)
    return EINVAL;
  int m = 0;
  for (;;) {
    size_t n = strcspn(s, "|");
    const char *a = s, *b = s + n;
    while (a < b && isspace((unsigned char)*a))
      a++;
    while (b > a && isspace((unsigned char)b[-1]))
      b--;
    int part;
    if (a == b || level_part(a, (size_t)(b - a), &part) != 0)
      return EINVAL; /* "", "ERR|", "|ERR", "LOUD" */
    m |= part;
    if (!s[n])
      break;
    s += n + 1;
  }
  *mask = m;
  return 0;
}

int gc_log_level_parse_cli(const char *s, int *mask) {
  static const struct {
    const char *name;
    int mask;
  } thresholds[] = {
      {"err", GCL_ERR},
      {"error", GCL_ERR},
      {"warn", GCL_ERR | GCL_WARN},
      {"warning", GCL_ERR | GCL_WARN},
      {"notice", GCL_NORMAL},
      {"info", GCL_NORMAL | GCL_INFO},
      {"debug", GCL_VERBOSE},
  };
  if (!s || !mask)
    return EINVAL;
  for (size_t k = 0; k < sizeof thresholds / sizeof thresholds[0]; k++)
    if (strcasecmp(s, thresholds[k].name) == 0) {
      *mask = thresholds[k].mask;
      return 0;
    }
  return gc_log_level_parse(s, mask);
}

uint64_t gc_log_limit_roll(struct gc_log_limit *l, int64_t now_ms) {
  int64_t second = now_ms - now_ms % 1000;
  /* Forward only: loops sharing one limit read clocks a moment apart. */
  if (second <= l->window)
    return 0;
  uint64_t dropped = l->dropped;
  l->window = second;
  l->lines = 0;
  l->dropped = 0;
  return dropped;
}

int gc_log_limit_take(struct gc_log_limit *l, uint32_t per_second) {
  if (per_second && l->lines >= per_second) {
    l->dropped++;
    return 0;
  }
  l->lines++;
  return 1;
}
