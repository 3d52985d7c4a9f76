/* log_sink.c - where the server log's lines go (see log_sink.h): stderr,
 * whole lines in writes of at most PIPE_BUF bytes once poll() says it takes
 * them, then the file, with write(2) on an O_APPEND descriptor, whole lines
 * per call. A stderr whose reader is gone (EPIPE) is left for good; one
 * that takes nothing for GC_LOG_STDERR_WAIT_MS is passed over until it
 * takes lines again; the file says so either way. */
#include "log_sink.h"

#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <game-carrier/common.h>

#include "log.h"
#include "log_format.h"

static struct {
  pthread_mutex_t io;     /* held while writing */
  atomic_int fd;          /* the file, or -1; changes under 'io' */
  /* Under 'io'. */
  bool file_failed;       /* a write to the file failed; said once on stderr */
  bool stderr_gone;       /* a write to stderr met EPIPE: its reader is gone */
  bool stderr_stalled;    /* stderr took nothing for GC_LOG_STDERR_WAIT_MS */
  bool stderr_midline;    /* ... and what it took last ends inside a line */
  uint64_t stderr_missed; /* lines not written there since it stalled */
} sink = {.io = PTHREAD_MUTEX_INITIALIZER, .fd = -1};

void gc__log_sink_lock(void) { pthread_mutex_lock(&sink.io); }

void gc__log_sink_unlock(void) { pthread_mutex_unlock(&sink.io); }

int gc__log_sink_fd(void) { return atomic_load(&sink.fd); }

int gc__log_sink_swap_fd(int fd) {
  sink.file_failed = false;
  return atomic_exchange(&sink.fd, fd);
}

void gc__log_sink_retry_stderr(void) { sink.stderr_gone = false; }

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

/* 1 when stderr takes a write within 'ms' or has an error for the write
 * to report, 0 when it stays full. */
static int stderr_ready(int ms) {
  struct pollfd p = {.fd = STDERR_FILENO, .events = POLLOUT};
  for (;;) {
    int rc = poll(&p, 1, ms);
    if (rc >= 0)
      return rc > 0;
    if (errno != EINTR)
      return 1;
  }
}

static uint64_t count_lines(const char *s, size_t n) {
  uint64_t k = 0;
  for (const char *end = s + n; (s = memchr(s, '\n', (size_t)(end - s))); s++)
    k++;
  return k;
}

/* One line of the log's own, timed now, into 'line' (GC__LOG_NOTE_LINE_MAX). */
size_t gc__log_note_format(char *line, int level, const char *msg) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return gc__log_format(line, gc__log_format_now(), level, &ts, msg,
                        strnlen(msg, GC__LOG_NOTE_MAX));
}

/* Under the sink's lock. */
static void file_write(const char *buf, size_t len) {
  int fd = atomic_load(&sink.fd);
  if (fd < 0 || !len)
    return;
  if (log_write_all(fd, buf, len) != 0 && !sink.file_failed) {
    /* Say it once, on stderr even when the copy there is off: losing the
     * log file silently would hide every later problem. */
    sink.file_failed = true;
    static const char warn[] = "gcs: writing the log file failed; later "
                               "lines may be lost\n";
    if (!sink.stderr_gone && stderr_ready(0))
      (void)log_write_all(STDERR_FILENO, warn, sizeof warn - 1);
  }
}

/* Under the sink's lock: a line of the log's own, to the file only. */
void gc__log_sink_note(int level, const char *msg) {
  char line[GC__LOG_NOTE_LINE_MAX];
  if (atomic_load(&sink.fd) >= 0)
    file_write(line, gc__log_note_format(line, level, msg));
}

enum { SENT, GONE, STALLED };

/* Under the sink's lock: writes 'len' bytes of whole lines to stderr. '*done' is
 * what it took (a line boundary unless a long line stalled). */
static int stderr_send(const char *buf, size_t len, size_t *done) {
  size_t off = 0;
  int rc = SENT;
  while (off < len) {
    size_t n = len - off;
    if (n > PIPE_BUF) {
      /* Whole lines per write: a pipe takes PIPE_BUF bytes at once. */
      const char *nl = memrchr(buf + off, '\n', PIPE_BUF);
      n = nl ? (size_t)(nl - (buf + off)) + 1 : PIPE_BUF;
    }
    if (!stderr_ready(GC_LOG_STDERR_WAIT_MS)) {
      rc = STALLED;
      break;
    }
    int err = log_write_all(STDERR_FILENO, buf + off, n);
    if (err == EPIPE) {
      rc = GONE;
      break;
    }
    if (err) {
      off = len; /* other errors have nowhere to be reported */
      break;
    }
    off += n;
  }
  *done = off;
  return rc;
}

/* Under the sink's lock: stderr takes lines again after a stall; it says how many it
 * missed first. */
static void stderr_resume(void) {
  char msg[GC__LOG_NOTE_MAX], line[GC__LOG_NOTE_LINE_MAX + 1];
  snprintf(msg, sizeof msg, "%llu log lines were not written to stderr "
           "while it was not read%s", (unsigned long long)sink.stderr_missed,
           atomic_load(&sink.fd) >= 0 ? " (the log file has them)" : "");
  size_t n = 0;
  if (sink.stderr_midline)
    line[n++] = '\n';
  n += gc__log_note_format(line + n, GCL_WARN, msg);
  sink.stderr_stalled = sink.stderr_midline = false;
  sink.stderr_missed = 0;
  (void)log_write_all(STDERR_FILENO, line, n);
}

/* Under the sink's lock: writes 'len' bytes of whole lines, to stderr if 'to_stderr',
 * then to the file. When stderr's reader turns out gone or not reading,
 * the file says so after the first line stderr did not get. */
void gc__log_sink_write(const char *buf, size_t len, bool to_stderr) {
  size_t done = len;
  int rc = SENT;
  if (to_stderr && !sink.stderr_gone) {
    if (sink.stderr_stalled && stderr_ready(0))
      stderr_resume();
    if (sink.stderr_stalled)
      sink.stderr_missed += count_lines(buf, len);
    else
      rc = stderr_send(buf, len, &done);
  }
  if (rc == SENT) {
    file_write(buf, len);
    return;
  }
  const char *nl = memchr(buf + done, '\n', len - done);
  size_t cut = nl ? (size_t)(nl - buf) + 1 : len;
  file_write(buf, cut);
  if (rc == GONE) {
    /* Its reader is gone (a closed terminal, "gcs | head", journald
     * restarting): gcs ignores SIGPIPE, stops writing there and goes on
     * with the file. */
    sink.stderr_gone = true;
    gc__log_stderr_gone();
    gc__log_sink_note(GCL_WARN, "stderr is gone (its reader closed it): from now "
              "on lines go to this file only");
  } else {
    /* Full for GC_LOG_STDERR_WAIT_MS: nobody reads it (a stopped pager, a
     * hung collector). Passed over until it takes lines again. */
    sink.stderr_stalled = true;
    sink.stderr_midline = done > 0 && buf[done - 1] != '\n';
    sink.stderr_missed += count_lines(buf + done, len - done);
    gc__log_sink_note(GCL_WARN, "stderr is not being read: lines go to this file "
              "only until it is");
  }
  file_write(buf + cut, len - cut);
}

void gc__log_sink_urgent(const char *line, size_t n, bool to_stderr,
                         const struct timespec *until) {
  bool locked = pthread_mutex_timedlock(&sink.io, until) == 0;
  /* stderr first (a stuck disk must not keep the words from it), and not
   * into a full pipe: nobody may be reading it, and this must not block. */
  if (to_stderr && !(locked && sink.stderr_gone) && stderr_ready(0))
    (void)log_write_all(STDERR_FILENO, line, n);
  int fd = atomic_load(&sink.fd);
  if (fd >= 0)
    (void)log_write_all(fd, line, n);
  if (locked)
    pthread_mutex_unlock(&sink.io);
}
