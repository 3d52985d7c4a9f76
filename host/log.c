/* log.c - the server log (see log.h).
 *
 * The threads that log never write. gc_log makes the message, takes the
 * time, gives the line to the hook and copies message and time into
 * 'ring', a byte ring of GC_LOG_QUEUE_BYTES guarded by 'lock', which is
 * held for that copy only: a worker loop waits for no disk and no reader.
 * One writer thread takes records out in batches, formats them (text or
 * JSON) and hands them to the sink (log_sink.c: stderr, then the file)
 * under the sink's lock. A full ring counts lost lines; the next line
 * that finds room queues a note before itself, or the writer writes it
 * once it has caught up. Log levels and line limits: log_level.c.
 *
 * Locks: the sink's may be held when 'lock' is taken, never the other way
 * round; 'hook_lock' is taken alone. */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <game-carrier/common.h>

#include "log_format.h"
#include "log_sink.h"

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
  /* Read anywhere. */
  atomic_int mask;
  atomic_int format;
  atomic_bool has_hook;
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
            .hook_lock = PTHREAD_MUTEX_INITIALIZER};

/* Set while this thread runs the hook: a hook that logs is dropped rather
 * than deadlocking. */
static _Thread_local bool in_log;

static size_t lost_format(char *line, int format, const struct timespec *ts,
                          uint64_t lost) {
  char msg[96];
  int n = snprintf(msg, sizeof msg, "%llu log lines lost: the log could not "
                   "keep up", (unsigned long long)lost);
  return gc__log_format(line, format, GCL_WARN, ts, msg, (size_t)n);
}

int gc__log_format_now(void) { return atomic_load(&logger.format); }

void gc__log_stderr_gone(void) {
  pthread_mutex_lock(&logger.lock);
  logger.to_stderr = false;
  pthread_mutex_unlock(&logger.lock);
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
  gc__log_sink_lock();
  if (retry)
    gc__log_sink_retry_stderr();
  for (size_t i = 0; i < n;) {
    struct rec r;
    memcpy(&r, b + i, sizeof r);
    const char *msg = (const char *)b + i + sizeof r;
    i += sizeof r + r.len;
    bool to_stderr = r.to_stderr != 0;
    if (used && (to_stderr != unit_stderr || used + GC__LOG_LINE_MAX > OUT_BYTES)) {
      gc__log_sink_write(out, used, unit_stderr);
      used = 0;
    }
    unit_stderr = to_stderr;
    struct timespec ts = {.tv_sec = (time_t)r.sec, .tv_nsec = r.nsec};
    used += r.kind == REC_LOST
                ? lost_format(out + used, format, &ts, r.lost)
                : gc__log_format(out + used, format, r.level, &ts, msg, r.len);
  }
  if (used)
    gc__log_sink_write(out, used, unit_stderr);
  gc__log_sink_unlock();
}

/* Opens 'path' again and writes there from now on; if it cannot, says so
 * and keeps the file open before. The writer's (or, without one, the
 * caller's). */
static void log_reopen_now(const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  int err = errno;
  gc__log_sink_lock();
  if (fd >= 0) {
    int old = gc__log_sink_swap_fd(fd);
    if (old >= 0)
      close(old); /* a close error of a log file has no one to tell */
    if (gc_log_enabled(GCL_NOTICE))
      gc__log_sink_note(GCL_NOTICE, "log file reopened");
  } else {
    char msg[GC__LOG_NOTE_MAX], line[GC__LOG_NOTE_LINE_MAX];
    snprintf(msg, sizeof msg, "cannot reopen the log file %.700s (%s): "
             "lines still go to the file open before", path, strerror(err));
    pthread_mutex_lock(&logger.lock);
    bool to_stderr = logger.to_stderr;
    pthread_mutex_unlock(&logger.lock);
    gc__log_sink_write(line, gc__log_note_format(line, GCL_WARN, msg), to_stderr);
  }
  gc__log_sink_unlock();
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
        char line[GC__LOG_NOTE_LINE_MAX];
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        size_t n = lost_format(line, atomic_load(&logger.format), &ts, logger.lost);
        bool to_stderr = logger.to_stderr;
        logger.lost = 0;
        logger.writer_busy = true;
        pthread_mutex_unlock(&logger.lock);
        gc__log_sink_lock();
        gc__log_sink_write(line, n, to_stderr);
        gc__log_sink_unlock();
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
  gc__log_sink_lock();
  int old = gc__log_sink_swap_fd(fd);
  pthread_mutex_lock(&logger.lock);
  char *old_path = logger.path;
  logger.path = path;
  pthread_mutex_unlock(&logger.lock);
  atomic_store(&logger.mask, level_mask);
  gc__log_sink_unlock();
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
  gc__log_sink_lock();
  int old = gc__log_sink_swap_fd(-1);
  pthread_mutex_lock(&logger.lock);
  char *path = logger.path;
  logger.path = NULL;
  pthread_mutex_unlock(&logger.lock);
  gc__log_sink_unlock();
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
  gc__log_sink_lock();
  if (retry)
    gc__log_sink_retry_stderr();
  gc__log_sink_write(line, n, to_stderr);
  gc__log_sink_unlock();
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
  gc__log_sink_urgent(line, n, to_stderr, &until);
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

