/* log.h - the server log: one line per message, level-masked, to stderr
 * and to the configured file, in libwebsockets' format (Game Carrier's):
 *   "[2026/11/25 10:00:00:1234] N: text"
 * (local time, the last field in 1/10000 s; the letter is E W N I D U for
 * GCL_ERR WARN NOTICE INFO DEBUG USER), or one JSON object per line
 * (gc_log_set_format). Process-wide and thread-safe: the one piece of
 * mutable global state, shared by every worker loop.
 *
 * Between gc_log_open and gc_log_close the lines are written by a writer
 * thread: a thread that logs only queues the message with its time, so a
 * slow disk or a stderr nobody reads never stalls it. The queue is bounded
 * (GC_LOG_QUEUE_BYTES); when it is full, lines are counted instead, and one
 * line says "N log lines lost: the log could not keep up" once there is
 * room. Outside those calls (gc.testing, the unit tests) a line is written
 * at once by the thread that logs it. */
#ifndef GC_LOG_H
#define GC_LOG_H

#include <stdint.h>

/* The longest message kept whole, in bytes; a longer one is cut and ends in
 * "..." (a cut never splits a UTF-8 character). */
#define GC_LOG_MSG_MAX 4096

/* The queue between the threads that log and the writer, in bytes: some
 * 5,000 lines of 150 bytes (a line takes its message and 32 bytes). */
#define GC_LOG_QUEUE_BYTES (1u << 20)

/* The shapes of a line (gc_log_set_format): libwebsockets' text, or
 *   {"ts":"2026-12-02T20:41:00.123Z","level":"notice","msg":"..."}
 * (UTC, milliseconds; level error, warn, notice, info, debug or user; the
 * message escaped, a byte that is not UTF-8 replaced by U+FFFD). */
enum { GC_LOG_FORMAT_TEXT = 0, GC_LOG_FORMAT_JSON = 1 };

/* Opens 'file' for appending (created 0644 if missing; '%p' is expanded by
 * the config, not here), sets the level mask and starts the writer thread
 * if it is not running (it blocks every signal). NULL or "" = stderr only.
 * Replaces a file opened before, after every line logged before the call
 * is written to it (this waits for the writer). 0, or the errno of open()
 * (ENOMEM) with nothing changed. */
int gc_log_open(const char *file, int level_mask);

/* Writes every line queued so far, stops and joins the writer thread and
 * closes the file; later lines go to stderr only, written by the thread
 * that logs them. The mask and the format stay. */
void gc_log_close(void);

/* Has the writer reopen the file opened by gc_log_open, at the same path,
 * once the lines queued before this call are written to the old one
 * (logrotate renamed it: SIGUSR1). Never waits for the writer; a file that
 * cannot be opened is said in the old one, which stays. 0, or ENOENT
 * without a log file (stderr only). */
int gc_log_reopen(void) __attribute__((warn_unused_result));

/* Waits until every line queued so far is written (however long a stuck
 * disk takes: not for a worker loop). */
void gc_log_flush(void);

/* GC_LOG_FORMAT_TEXT (the default) or GC_LOG_FORMAT_JSON, for the lines
 * written from now on (the hook's stay text). Others are ignored. */
void gc_log_set_format(int format);

/* Sets the GCL_* mask: a message whose level shares no bit with it is
 * dropped. The default is GCL_NORMAL. */
void gc_log_set_level(int level_mask);

/* Non-zero when a message at 'level' would be written (cheap: lets callers
 * skip formatting). */
int gc_log_enabled(int level);

/* Turns the stderr copy on (default) or off (gc.testing keeps its output
 * clean) for the lines logged from now on; the file and the hook still get
 * every line. A write to stderr that fails with EPIPE turns it off by
 * itself, and says so once in the file (gcs ignores SIGPIPE; an embedding
 * keeps its own disposition). A stderr that takes nothing for
 * GC_LOG_STDERR_WAIT_MS (its reader stopped reading) is passed over, the
 * file saying so once, until it takes lines again; then a line there says
 * how many it missed. */
void gc_log_set_stderr(int on);

#define GC_LOG_STDERR_WAIT_MS 2000

/* Formats one message at 'level' (one GCL_* flag) and queues it (writes
 * it, without a writer), with the time of the call. Trailing newlines are
 * dropped; the line gets exactly one. */
void gc_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes 'msg' as the last words of a process about to _exit: whatever the
 * mask, to stderr and to the file, by the calling thread, after the lines
 * queued before it if the writer gets them out within 200 ms; never
 * waiting longer for the writer (it may be stuck) nor blocking on a full
 * stderr pipe; no hook. */
void gc_log_urgent(int level, const char *msg);

/* Writes 'msg' at 'level' as gc_log does; what core_api.logMessage calls.
 * NULL is ignored. */
void gc_log_write(int level, const char *msg);

/* Every line that passes the mask is also given to 'hook' (tests, the
 * gc.testing error collector), in the text format without its newline, by
 * the thread that logs it, before gc_log returns, under the hook's lock:
 * once gc_log_set_hook(NULL, NULL) returns, the old hook is not running and
 * will not be called again, so 'ud' may be freed. A hook must not block; a
 * message it logs itself is dropped (it would deadlock). */
void gc_log_set_hook(void (*hook)(int level, const char *line, void *ud),
                     void *ud);

/* Parses a level mask: a name (ERR, WARN, NOTICE, INFO, DEBUG, USER, NORMAL,
 * VERBOSE, also ERROR and WARNING; any case; an optional GCL_ or LLL_
 * prefix), a decimal or 0x number 0..65535, or several of those joined with
 * '|' (spaces around '|' allowed). 0 with '*mask' set, or EINVAL with
 * '*mask' untouched. */
int gc_log_level_parse(const char *s, int *mask);

/* Parses the level of 'gcs -l': one of the names err, warn, notice, info,
 * debug (any case; also error, warning) is a threshold, that level and the
 * more severe ones, USER lines counting with notice (so "notice" is
 * NORMAL and "debug" VERBOSE); anything else is a mask as
 * gc_log_level_parse reads it (the config's "ERR|WARN", "VERBOSE", 0x1f).
 * 0 with '*mask' set, or EINVAL with '*mask' untouched. */
int gc_log_level_parse_cli(const char *s, int *mask);

/* A rate limit for the lines of one source (a loop's connection lines): a
 * flood of hostile clients must not become a flood of log lines filling
 * the disk. Windows are whole seconds of the caller's clock. */
struct gc_log_limit {
  int64_t window;   /* start of the current second, ms */
  uint32_t lines;   /* written in it */
  uint64_t dropped; /* not written in it */
};

/* Moves to the second of 'now_ms'. Returns the number of lines dropped in
 * the second that just ended (the caller says so in one line), else 0. */
uint64_t gc_log_limit_roll(struct gc_log_limit *l, int64_t now_ms);

/* 1 when one more line fits in the current second (then counted), else 0
 * (counted as dropped). 'per_second' 0 means no limit. */
int gc_log_limit_take(struct gc_log_limit *l, uint32_t per_second);

#endif
