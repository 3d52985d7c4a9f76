/* log.c - the server log (see log.h).
 *
 * The threads that log never write. gc_log makes the message, takes the
 * time, gives the line to the hook and copies message and time into
 * 'ring', a byte ring of GC_LOG_QUEUE_BYTES guarded by 'lock', which is
 * held for that copy only: a worker loop waits for no disk and no reader.
 * One writer thread takes records out in batches, formats them (text or
 * JSON) and writes them under 'io': first to stderr, whole lines in writes
 * of at most PIPE_BUF bytes once poll() says it takes them (a pipe takes
 * such a write at once and whole), then to the file, with write(2) on an
 * O_APPEND descriptor, whole lines per call, so lines of other processes
 * sharing the file never cut ours and nothing sits in a stdio buffer when
 * the process dies. A stderr that takes nothing for GC_LOG_STDERR_WAIT_MS
 * is passed over until it takes lines again, so it cannot hold up the file
 * nor the end of the process. A full ring counts lost lines; the next line
 * that finds room queues a note before itself, or the writer writes it
 * once it has caught up.
 *
 * Locks: 'io' may be held when 'lock' is taken, never the other way round;
 * 'hook_lock' is taken alone. */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
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

#include "log_format.h"

/* One queued line (REC_LINE, its 'len' message bytes follow) or the count
 * of lines lost before it (REC_LOST). */
struct rec {
  int64_t sec; /* when it was logged, CLOCK_REALTIME */
  uint64_t lost;
  int32_t nsec;
  int32_t level;
  uint32_t len;
  uint8_t kind;
  uint8_t to_stderr; /* the stderr copy was on when it was logged */
  uint8_t pad[2];
};
enum { REC_LINE, REC_LOST };

/* The records the writer takes at once, and the text it writes at once. */
#define BATCH_BYTES (64 * 1024)
#define OUT_BYTES (64 * 1024 + GC__LOG_LINE_MAX)

/* The log's own lines about itself: their message, and the line. */
#define NOTE_MAX 1024
#define NOTE_LINE_MAX (6 * NOTE_MAX + 128)

static unsigned char ring[GC_LOG_QUEUE_BYTES];

static struct {
  /* Under 'lock': the queue and what the threads that log read. */
  pthread_mutex_t lock;
  pthread_cond_t wake; /* to the writer: something to do */
  pthread_cond_t idle; /* from the writer: it has done everything */
  uint64_t head, tail; /* bytes of 'ring' taken and queued, ever */
  uint64_t lost;       /* lines not queued (full), not yet said */
  bool to_stderr;
  bool stderr_retry; /* gc_log_set_stderr since: worth a new try */
  bool writer_on;    /* a writer thread runs */
  bool writer_stop;  /* gc_log_close: write everything, then leave */
  bool writer_busy;  /* writing what it took */
  bool reopen;       /* gc_log_reopen: once 'head' is at 'reopen_at' */
  uint64_t reopen_at;
  char *path; /* the file's, for gc_log_reopen; NULL: none */
  pthread_t writer;
  /* Read anywhere; 'fd' changes under 'io'. */
  atomic_int mask;
  atomic_int format;
  atomic_int fd; /* the file, or -1 */
  atomic_bool has_hook;
  /* Under 'io': the writing side, held while writing. */
  pthread_mutex_t io;
  bool file_failed;       /* a write to the file failed; said once on stderr */
  bool stderr_gone;       /* a write to stderr met EPIPE: its reader is gone */
  bool stderr_stalled;    /* stderr took nothing for GC_LOG_STDERR_WAIT_MS */
  bool stderr_midline;    /* ... and what it took last ends inside a line */
  uint64_t stderr_missed; /* lines not written there since it stalled */
  /* Under 'hook_lock'. */
  pthread_mutex_t hook_lock;
  void (*hook)(int, const char *, void *);
  void *hook_ud;
} logger = {.lock = PTHREAD_MUTEX_INITIALIZER,
            .wake = PTHREAD_COND_INITIALIZER,
            .idle = PTHREAD_COND_INITIALIZER,
            .to_stderr = true,
            .mask = GCL_NORMAL,
            .format = GC_LOG_FORMAT_TEXT,
            .fd = -1,
            .io = PTHREAD_MUTEX_INITIALIZER,
            .hook_lock = PTHREAD_MUTEX_INITIALIZER};

/* Set while this thread runs the hook: a hook that logs is dropped rather
 * than deadlocking. */
static _Thread_local bool in_log;

/* ---- writing ------------------------------------------------------------- */

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

/* One line of the log's own, timed now, into 'line' (NOTE_LINE_MAX). */
static size_t note_format(char *line, int level, const char *msg) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return gc__log_format(line, atomic_load(&logger.format), level, &ts, msg,
                        strnlen(msg, NOTE_MAX));
}

static size_t lost_format(char *line, int format, const struct timespec *ts,
                          uint64_t lost) {
  char msg[96];
  int n = snprintf(msg, sizeof msg, "%llu log lines lost: the log could not "
                   "keep up", (unsigned long long)lost);
  return gc__log_format(line, format, GCL_WARN, ts, msg, (size_t)n);
}

/* Under 'io'. */
static void file_write(const char *buf, size_t len) {
  int fd = atomic_load(&logger.fd);
  if (fd < 0 || !len)
    return;
  if (log_write_all(fd, buf, len) != 0 && !logger.file_failed) {
    /* Say it once, on stderr even when the copy there is off: losing the
     * log file silently would hide every later problem. */
    logger.file_failed = true;
    static const char warn[] = "gcs: writing the log file failed; later "
                               "lines may be lost\n";
    if (!logger.stderr_gone && stderr_ready(0))
      (void)log_write_all(STDERR_FILENO, warn, sizeof warn - 1);
  }
}

/* Under 'io': a line of the log's own, to the file only. */
static void file_note(int level, const char *msg) {
  char line[NOTE_LINE_MAX];
  if (atomic_load(&logger.fd) >= 0)
    file_write(line, note_format(line, level, msg));
}

enum { SENT, GONE, STALLED };

/* Under 'io': writes 'len' bytes of whole lines to stderr. '*done' is
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

/* Under 'io': stderr takes lines again after a stall; it says how many it
 * missed first. */
static void stderr_resume(void) {
  char msg[NOTE_MAX], line[NOTE_LINE_MAX + 1];
  snprintf(msg, sizeof msg, "%llu log lines were not written to stderr "
           "while it was not read%s", (unsigned long long)logger.stderr_missed,
           atomic_load(&logger.fd) >= 0 ? " (the log file has them)" : "");
  size_t n = 0;
  if (logger.stderr_midline)
    line[n++] = '\n';
  n += note_format(line + n, GCL_WARN, msg);
  logger.stderr_stalled = logger.stderr_midline = false;
  logger.stderr_missed = 0;
  (void)log_write_all(STDERR_FILENO, line, n);
}

/* Under 'io': writes 'len' bytes of whole lines, to stderr if 'to_stderr',
 * then to the file. When stderr's reader turns out gone or not reading,
 * the file says so after the first line stderr did not get. */
static void sink_write(const char *buf, size_t len, bool to_stderr) {
  size_t done = len;
  int rc = SENT;
  if (to_stderr && !logger.stderr_gone) {
    if (logger.stderr_stalled && stderr_ready(0))
      stderr_resume();
    if (logger.stderr_stalled)
      logger.stderr_missed += count_lines(buf, len);
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
    logger.stderr_gone = true;
    pthread_mutex_lock(&logger.lock);
    logger.to_stderr = false;
    pthread_mutex_unlock(&logger.lock);
    file_note(GCL_WARN, "stderr is gone (its reader closed it): from now "
              "on lines go to this file only");
  } else {
    /* Full for GC_LOG_STDERR_WAIT_MS: nobody reads it (a stopped pager, a
     * hung collector). Passed over until it takes lines again. */
    logger.stderr_stalled = true;
    logger.stderr_midline = done > 0 && buf[done - 1] != '\n';
    logger.stderr_missed += count_lines(buf + done, len - done);
    file_note(GCL_WARN, "stderr is not being read: lines go to this file "
              "only until it is");
  }
  file_write(buf + cut, len - cut);
}

/* ---- the writer ---------------------------------------------------------- */

static void ring_put(uint64_t at, const void *src, size_t n) {
  size_t off = (size_t)(at % GC_LOG_QUEUE_BYTES);
  size_t first = GC_LOG_QUEUE_BYTES - off < n ? GC_LOG_QUEUE_BYTES - off : n;
  memcpy(ring + off, src, first);
  memcpy(ring, (const char *)src + first, n - first);
}

static void ring_get(uint64_t at, void *dst, size_t n) {
  size_t off = (size_t)(at % GC_LOG_QUEUE_BYTES);
  size_t first = GC_LOG_QUEUE_BYTES - off < n ? GC_LOG_QUEUE_BYTES - off : n;
  memcpy(dst, ring + off, first);
  memcpy((char *)dst + first, ring, n - first);
}

/* Under 'lock', with the writer on: queues one line. A full ring counts
 * it; the first line that finds room again brings the count before it. */
static void queue_line(int level, const struct timespec *ts, const char *msg,
                       size_t len) {
  struct rec r = {.sec = ts->tv_sec, .nsec = (int32_t)ts->tv_nsec,
                  .level = level, .len = (uint32_t)len, .kind = REC_LINE,
                  .to_stderr = logger.to_stderr};
  size_t need = sizeof r + len;
  uint64_t room = GC_LOG_QUEUE_BYTES - (logger.tail - logger.head);
  if (logger.lost) {
    if (room < sizeof r + need) {
      logger.lost++;
      return;
    }
    struct rec note = r;
    note.kind = REC_LOST;
    note.level = GCL_WARN;
    note.len = 0;
    note.lost = logger.lost;
    ring_put(logger.tail, &note, sizeof note);
    logger.tail += sizeof note;
    room -= sizeof note;
    logger.lost = 0;
  }
  if (room < need) {
    logger.lost++;
    return;
  }
  ring_put(logger.tail, &r, sizeof r);
  ring_put(logger.tail + sizeof r, msg, len);
  logger.tail += need;
  pthread_cond_signal(&logger.wake);
}

/* Formats and writes a batch of records, consecutive ones with the same
 * stderr flag together. */
static void write_batch(const unsigned char *b, size_t n, bool retry) {
  static char out[OUT_BYTES]; /* the writer's: one at a time */
  size_t used = 0;
  bool unit_stderr = false;
  int format = atomic_load(&logger.format);
  pthread_mutex_lock(&logger.io);
  if (retry)
    logger.stderr_gone = false;
  for (size_t i = 0; i < n;) {
    struct rec r;
    memcpy(&r, b + i, sizeof r);
    const char *msg = (const char *)b + i + sizeof r;
    i += sizeof r + r.len;
    bool to_stderr = r.to_stderr != 0;
    if (used && (to_stderr != unit_stderr || used + GC__LOG_LINE_MAX > OUT_BYTES)) {
      sink_write(out, used, unit_stderr);
      used = 0;
    }
    unit_stderr = to_stderr;
    struct timespec ts = {.tv_sec = (time_t)r.sec, .tv_nsec = r.nsec};
    used += r.kind == REC_LOST
                ? lost_format(out + used, format, &ts, r.lost)
                : gc__log_format(out + used, format, r.level, &ts, msg, r.len);
  }
  if (used)
    sink_write(out, used, unit_stderr);
  pthread_mutex_unlock(&logger.io);
}

/* Opens 'path' again and writes there from now on; if it cannot, says so
 * and keeps the file open before. The writer's (or, without one, the
 * caller's). */
static void log_reopen_now(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int err = errno;
  pthread_mutex_lock(&logger.io);
  if (fd >= 0) {
    int old = atomic_exchange(&logger.fd, fd);
    logger.file_failed = false;
    if (old >= 0)
      close(old); /* a close error of a log file has no one to tell */
    if (gc_log_enabled(GCL_NOTICE))
      file_note(GCL_NOTICE, "log file reopened");
  } else {
    char msg[NOTE_MAX], line[NOTE_LINE_MAX];
    snprintf(msg, sizeof msg, "cannot reopen the log file %.700s (%s): "
             "lines still go to the file open before", path, strerror(err));
    pthread_mutex_lock(&logger.lock);
    bool to_stderr = logger.to_stderr;
    pthread_mutex_unlock(&logger.lock);
    sink_write(line, note_format(line, GCL_WARN, msg), to_stderr);
  }
  pthread_mutex_unlock(&logger.io);
}

static void *writer_main(void *arg) {
  static unsigned char batch[BATCH_BYTES]; /* the writer's: one at a time */
  (void)arg;
  pthread_mutex_lock(&logger.lock);
  for (;;) {
    if (logger.reopen && logger.head == logger.reopen_at) {
      logger.reopen = false;
      logger.writer_busy = true;
      char *path = logger.path ? strdup(logger.path) : NULL;
      pthread_mutex_unlock(&logger.lock);
      if (path)
        log_reopen_now(path);
      free(path);
      pthread_mutex_lock(&logger.lock);
      continue;
    }
    uint64_t end = logger.reopen ? logger.reopen_at : logger.tail;
    if (logger.head == end) {
      if (logger.lost && logger.head == logger.tail) {
        /* Caught up after lines were lost, and nothing came since. */
        char line[NOTE_LINE_MAX];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        size_t n = lost_format(line, atomic_load(&logger.format), &ts, logger.lost);
        bool to_stderr = logger.to_stderr;
        logger.lost = 0;
        logger.writer_busy = true;
        pthread_mutex_unlock(&logger.lock);
        pthread_mutex_lock(&logger.io);
        sink_write(line, n, to_stderr);
        pthread_mutex_unlock(&logger.io);
        pthread_mutex_lock(&logger.lock);
        continue;
      }
      if (logger.writer_stop && !logger.reopen)
        break;
      logger.writer_busy = false;
      pthread_cond_broadcast(&logger.idle);
      pthread_cond_wait(&logger.wake, &logger.lock);
      continue;
    }
    size_t n = 0;
    while (logger.head != end) {
      struct rec r;
      ring_get(logger.head, &r, sizeof r);
      size_t size = sizeof r + r.len;
      if (n + size > sizeof batch)
        break;
      ring_get(logger.head, batch + n, size);
      n += size;
      logger.head += size;
    }
    bool retry = logger.stderr_retry;
    logger.stderr_retry = false;
    logger.writer_busy = true;
    pthread_mutex_unlock(&logger.lock);
    write_batch(batch, n, retry);
    pthread_mutex_lock(&logger.lock);
  }
  logger.writer_busy = false;
  pthread_cond_broadcast(&logger.idle);
  pthread_mutex_unlock(&logger.lock);
  return NULL;
}

/* Starts the writer if it is not running; without one (no thread to be
 * had), lines are written by the threads that log them. */
static void writer_start(void) {
  pthread_mutex_lock(&logger.lock);
  if (!logger.writer_on) {
    /* Signals are for the loops (SIGTERM, SIGUSR1...): the writer takes
     * none but those its own faults raise. */
    sigset_t all, old;
    sigfillset(&all);
    sigdelset(&all, SIGSEGV);
    sigdelset(&all, SIGBUS);
    sigdelset(&all, SIGFPE);
    sigdelset(&all, SIGILL);
    sigdelset(&all, SIGABRT);
    pthread_sigmask(SIG_BLOCK, &all, &old);
    if (pthread_create(&logger.writer, NULL, writer_main, NULL) == 0) {
      logger.writer_on = true;
      logger.writer_stop = false;
    }
    pthread_sigmask(SIG_SETMASK, &old, NULL);
  }
  pthread_mutex_unlock(&logger.lock);
}

void gc_log_flush(void) {
  pthread_mutex_lock(&logger.lock);
  while (logger.writer_on && (logger.head != logger.tail || logger.writer_busy ||
                              logger.reopen || logger.lost))
    pthread_cond_wait(&logger.idle, &logger.lock);
  pthread_mutex_unlock(&logger.lock);
}

/* ---- opening and closing ------------------------------------------------- */

int gc_log_open(const char *file, int level_mask) {
  int fd = -1;
  char *path = NULL;
  if (file && *file) {
    fd = open(file, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
      return errno ? errno : EIO;
    if (!(path = strdup(file))) {
      close(fd);
      return ENOMEM;
    }
  }
  writer_start();
  gc_log_flush(); /* what was logged before goes to the file open before */
  pthread_mutex_lock(&logger.io);
  int old = atomic_exchange(&logger.fd, fd);
  logger.file_failed = false;
  pthread_mutex_lock(&logger.lock);
  char *old_path = logger.path;
  logger.path = path;
  pthread_mutex_unlock(&logger.lock);
  atomic_store(&logger.mask, level_mask);
  pthread_mutex_unlock(&logger.io);
  free(old_path);
  if (old >= 0)
    close(old);
  return 0;
}

void gc_log_close(void) {
  pthread_mutex_lock(&logger.lock);
  bool join = logger.writer_on && !logger.writer_stop;
  if (join) {
    logger.writer_stop = true;
    pthread_cond_signal(&logger.wake);
  }
  pthread_mutex_unlock(&logger.lock);
  if (join) {
    pthread_join(logger.writer, NULL);
    pthread_mutex_lock(&logger.lock);
    logger.writer_on = logger.writer_stop = false;
    pthread_mutex_unlock(&logger.lock);
  }
  pthread_mutex_lock(&logger.io);
  int old = atomic_exchange(&logger.fd, -1);
  pthread_mutex_lock(&logger.lock);
  char *path = logger.path;
  logger.path = NULL;
  pthread_mutex_unlock(&logger.lock);
  pthread_mutex_unlock(&logger.io);
  free(path);
  if (old >= 0)
    close(old);
}

int gc_log_reopen(void) {
  pthread_mutex_lock(&logger.lock);
  if (!logger.path) {
    pthread_mutex_unlock(&logger.lock);
    return ENOENT;
  }
  if (logger.writer_on && !logger.writer_stop) {
    logger.reopen = true;
    logger.reopen_at = logger.tail;
    pthread_cond_signal(&logger.wake);
    pthread_mutex_unlock(&logger.lock);
    return 0;
  }
  char *path = strdup(logger.path);
  pthread_mutex_unlock(&logger.lock);
  if (!path)
    return ENOMEM;
  log_reopen_now(path);
  free(path);
  return 0;
}

/* ---- settings ------------------------------------------------------------ */

void gc_log_set_level(int level_mask) {
  atomic_store_explicit(&logger.mask, level_mask, memory_order_relaxed);
}

int gc_log_enabled(int level) {
  return (atomic_load_explicit(&logger.mask, memory_order_relaxed) & level) !=
         0;
}

void gc_log_set_format(int format) {
  if (format == GC_LOG_FORMAT_TEXT || format == GC_LOG_FORMAT_JSON)
    atomic_store(&logger.format, format);
}

void gc_log_set_stderr(int on) {
  pthread_mutex_lock(&logger.lock);
  logger.to_stderr = on != 0;
  logger.stderr_retry = true; /* asked for again: worth a new try */
  pthread_mutex_unlock(&logger.lock);
}

void gc_log_set_hook(void (*hook)(int, const char *, void *), void *ud) {
  pthread_mutex_lock(&logger.hook_lock);
  logger.hook = hook;
  logger.hook_ud = ud;
  atomic_store(&logger.has_hook, hook != NULL);
  pthread_mutex_unlock(&logger.hook_lock);
}

/* ---- logging ------------------------------------------------------------- */

static void hook_call(int level, const struct timespec *ts, const char *msg,
                      size_t len) {
  char line[GC__LOG_TEXT_MAX];
  pthread_mutex_lock(&logger.hook_lock);
  if (logger.hook) {
    size_t n = gc__log_format(line, GC_LOG_FORMAT_TEXT, level, ts, msg, len);
    line[n - 1] = '\0';
    in_log = true;
    logger.hook(level, line, logger.hook_ud);
    in_log = false;
  }
  pthread_mutex_unlock(&logger.hook_lock);
}

/* Without a writer: the calling thread writes the line itself. */
static void __attribute__((noinline))
write_now(int level, const struct timespec *ts, const char *msg, size_t len,
          bool to_stderr, bool retry) {
  char line[GC__LOG_LINE_MAX];
  size_t n = gc__log_format(line, atomic_load(&logger.format), level, ts, msg, len);
  pthread_mutex_lock(&logger.io);
  if (retry)
    logger.stderr_gone = false;
  sink_write(line, n, to_stderr);
  pthread_mutex_unlock(&logger.io);
}

/* Emits one message: 'rawlen' bytes at 'raw' (not NUL-terminated); 'cut'
 * says the caller already lost the end of it. */
static void log_emit(int level, const char *raw, size_t rawlen, bool cut) {
  char msg[GC_LOG_MSG_MAX];
  size_t len = gc__log_message(msg, raw, rawlen, cut);
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  if (atomic_load(&logger.has_hook))
    hook_call(level, &ts, msg, len);
  pthread_mutex_lock(&logger.lock);
  if (logger.writer_on && !logger.writer_stop) {
    queue_line(level, &ts, msg, len);
    pthread_mutex_unlock(&logger.lock);
    return;
  }
  bool to_stderr = logger.to_stderr, retry = logger.stderr_retry;
  logger.stderr_retry = false;
  pthread_mutex_unlock(&logger.lock);
  write_now(level, &ts, msg, len, to_stderr, retry);
}

void gc_log_urgent(int level, const char *msg) {
  char m[GC_LOG_MSG_MAX], line[GC__LOG_LINE_MAX];
  size_t len = gc__log_message(m, msg, strnlen(msg, GC_LOG_MSG_MAX + 1), 0);
  struct timespec ts, until;
  clock_gettime(CLOCK_REALTIME, &ts);
  until = ts;
  until.tv_nsec += 200 * 1000000L;
  if (until.tv_nsec >= 1000000000L) {
    until.tv_sec++;
    until.tv_nsec -= 1000000000L;
  }
  /* After the lines queued before, if the writer gets them out in time:
   * it may be the thing that is stuck. */
  pthread_mutex_lock(&logger.lock);
  while (logger.writer_on &&
         (logger.head != logger.tail || logger.writer_busy || logger.reopen) &&
         pthread_cond_timedwait(&logger.idle, &logger.lock, &until) == 0)
    ;
  bool to_stderr = logger.to_stderr;
  pthread_mutex_unlock(&logger.lock);
  size_t n = gc__log_format(line, atomic_load(&logger.format), level, &ts, m, len);
  bool locked = pthread_mutex_timedlock(&logger.io, &until) == 0;
  /* stderr first (a stuck disk must not keep the words from it), and not
   * into a full pipe: nobody may be reading it, and this must not block. */
  if (to_stderr && !(locked && logger.stderr_gone) && stderr_ready(0))
    (void)log_write_all(STDERR_FILENO, line, n);
  int fd = atomic_load(&logger.fd);
  if (fd >= 0)
    (void)log_write_all(fd, line, n);
  if (locked)
    pthread_mutex_unlock(&logger.io);
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
