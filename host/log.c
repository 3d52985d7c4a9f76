/* log.c - see log.h. */
#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <game-carrier/common.h>

#define LINE_MAX_BYTES 4096

static struct {
  pthread_mutex_t lock;
  FILE *file;
  int mask;
  int to_stderr;
  void (*hook)(int, const char *, void *);
  void *hook_ud;
} logger = {PTHREAD_MUTEX_INITIALIZER, NULL, GCL_NORMAL, 1, NULL, NULL};

int gc_log_open(const char *file, int level_mask) {
  FILE *f = NULL;
  if (file && *file && !(f = fopen(file, "a")))
    return errno ? errno : EIO;
  pthread_mutex_lock(&logger.lock);
  if (logger.file)
    fclose(logger.file);
  logger.file = f;
  logger.mask = level_mask;
  pthread_mutex_unlock(&logger.lock);
  return 0;
}

void gc_log_close(void) {
  pthread_mutex_lock(&logger.lock);
  if (logger.file)
    fclose(logger.file);
  logger.file = NULL;
  pthread_mutex_unlock(&logger.lock);
}

void gc_log_set_level(int level_mask) {
  pthread_mutex_lock(&logger.lock);
  logger.mask = level_mask;
  pthread_mutex_unlock(&logger.lock);
}

void gc_log_set_stderr(int on) {
  pthread_mutex_lock(&logger.lock);
  logger.to_stderr = on;
  pthread_mutex_unlock(&logger.lock);
}

void gc_log_set_hook(void (*hook)(int, const char *, void *), void *ud) {
  pthread_mutex_lock(&logger.lock);
  logger.hook = hook;
  logger.hook_ud = ud;
  pthread_mutex_unlock(&logger.lock);
}

int gc_log_enabled(int level) { return (logger.mask & level) != 0; }

static char level_letter(int level) {
  switch (level) {
  case GCL_ERR: return 'E';
  case GCL_WARN: return 'W';
  case GCL_NOTICE: return 'N';
  case GCL_INFO: return 'I';
  case GCL_DEBUG: return 'D';
  case GCL_USER: return 'U';
  default: return '?';
  }
}

void gc_log_write(int level, const char *msg) {
  if (!msg || !gc_log_enabled(level))
    return;
  char line[LINE_MAX_BYTES + 64];
  struct timeval tv;
  struct tm tm;
  gettimeofday(&tv, NULL);
  localtime_r(&tv.tv_sec, &tm);
  int n = snprintf(line, sizeof line, "[%04d/%02d/%02d %02d:%02d:%02d:%04d] %c: ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, (int)(tv.tv_usec / 100),
                   level_letter(level));
  size_t len = strlen(msg);
  size_t room = sizeof line - (size_t)n - 2;
  if (len > LINE_MAX_BYTES) {
    /* A runaway message is cut, not lost, and says so. */
    memcpy(line + n, msg, LINE_MAX_BYTES - 3);
    memcpy(line + n + LINE_MAX_BYTES - 3, "...", 3);
    len = LINE_MAX_BYTES;
  } else {
    if (len > room)
      len = room;
    memcpy(line + n, msg, len);
  }
  size_t total = (size_t)n + len;
  while (total > (size_t)n && line[total - 1] == '\n')
    total--;
  line[total++] = '\n';
  line[total] = '\0';
  pthread_mutex_lock(&logger.lock);
  if (logger.to_stderr)
    fwrite(line, 1, total, stderr);
  if (logger.file) {
    fwrite(line, 1, total, logger.file);
    fflush(logger.file);
  }
  void (*hook)(int, const char *, void *) = logger.hook;
  void *ud = logger.hook_ud;
  pthread_mutex_unlock(&logger.lock);
  if (hook) {
    line[total - 1] = '\0';
    hook(level, line, ud);
  }
}

void gc_log(int level, const char *fmt, ...) {
  if (!gc_log_enabled(level))
    return;
  char msg[LINE_MAX_BYTES + 1];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  gc_log_write(level, msg);
}

static const struct {
  const char *name;
  int mask;
} level_names[] = {
    {"ERR", GCL_ERR},       {"ERROR", GCL_ERR},      {"WARN", GCL_WARN},
    {"WARNING", GCL_WARN},  {"NOTICE", GCL_NOTICE},  {"INFO", GCL_INFO},
    {"DEBUG", GCL_DEBUG},   {"USER", GCL_USER},      {"NORMAL", GCL_NORMAL},
    {"VERBOSE", GCL_VERBOSE}, {"NONE", 0}};

int gc_log_level_parse(const char *s, int *mask) {
  if (!s || !*s || !mask)
    return EINVAL;
  char *end;
  long v = strtol(s, &end, 0);
  if (!*end) {
    if (v < 0 || v > 0xffff)
      return EINVAL;
    *mask = (int)v;
    return 0;
  }
  int m = 0;
  const char *p = s;
  while (*p) {
    size_t n = strcspn(p, "|");
    size_t k;
    for (k = 0; k < sizeof level_names / sizeof level_names[0]; k++)
      if (strlen(level_names[k].name) == n && strncasecmp(p, level_names[k].name, n) == 0)
        break;
    if (k == sizeof level_names / sizeof level_names[0])
      return EINVAL;
    m |= level_names[k].mask;
    p += n;
    if (*p == '|')
      p++;
  }
  *mask = m;
  return 0;
}
