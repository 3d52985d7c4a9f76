/* log_sink.h - the server log's writing side (log_sink.c), for log.c: the
 * lines it formatted go to stderr and the log file. Lock order: log.c's
 * queue lock may be taken while the sink's lock is held, never the other
 * way round. */
#ifndef GC_LOG_SINK_H
#define GC_LOG_SINK_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

/* The log's own lines about itself: their message, and the line. */
#define GC__LOG_NOTE_MAX 1024
#define GC__LOG_NOTE_LINE_MAX (6 * GC__LOG_NOTE_MAX + 128)

void gc__log_sink_lock(void);
void gc__log_sink_unlock(void);

/* Under the lock: writes 'len' bytes of whole lines, to stderr if
 * 'to_stderr', then to the file. */
void gc__log_sink_write(const char *buf, size_t len, bool to_stderr);
/* Under the lock: a line of the log's own, to the file only. */
void gc__log_sink_note(int level, const char *msg);
/* Under the lock: the file is now 'fd' (-1: none); returns the one before
 * (the caller closes it). */
int gc__log_sink_swap_fd(int fd);
/* Under the lock: stderr was asked for again: worth a new try. */
void gc__log_sink_retry_stderr(void);

/* Any thread: the file's descriptor, or -1. */
int gc__log_sink_fd(void);
/* Any thread, without waiting past 'until' for the lock: 'line' to stderr
 * (if 'to_stderr' and it takes it at once) and to the file. */
void gc__log_sink_urgent(const char *line, size_t n, bool to_stderr,
                         const struct timespec *until);
/* One line of the log's own, timed now, into 'line'
 * (GC__LOG_NOTE_LINE_MAX bytes); returns its length. */
size_t gc__log_note_format(char *line, int level, const char *msg);

/* Given by log.c: the format of the lines written now, and the news that
 * stderr's reader is gone (log.c stops queueing lines for it). */
int gc__log_format_now(void);
void gc__log_stderr_gone(void);

#endif
