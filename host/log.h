/* log.h - the server log: one line per message, level-masked, to stderr
 * and to the configured file, in libwebsockets' format (Game Carrier's):
 *   "[2026/11/25 10:00:00:1234] N: text"
 * (local time, the last field in 1/10000 s; the letter is E W N I D U for
 * GCL_ERR WARN NOTICE INFO DEBUG USER). Process-wide and thread-safe: the one
 * piece of mutable global state, shared by every worker loop. */
#ifndef GC_LOG_H
#define GC_LOG_H

#include <stdint.h>

/* The longest message kept whole, in bytes; a longer one is cut and ends in
 * "..." (a cut never splits a UTF-8 character). */
#define GC_LOG_MSG_MAX 4096

/* Opens 'file' for appending (created 0644 if missing; '%p' is expanded by
 * the config, not here) and sets the level mask. NULL or "" = stderr only.
 * Replaces (closes) a file opened before. 0, or the errno of open() with
 * nothing changed. */
int gc_log_open(const char *file, int level_mask);

/* Closes the file; later lines go to stderr only. The mask stays. */
void gc_log_close(void);

/* Sets the GCL_* mask: a message whose level shares no bit with it is
 * dropped. The default is GCL_NORMAL. */
void gc_log_set_level(int level_mask);

/* Non-zero when a message at 'level' would be written (cheap: lets callers
 * skip formatting). */
int gc_log_enabled(int level);

/* Turns the stderr copy on (default) or off (gc.testing keeps its output
 * clean); the file and the hook still get every line. A write to stderr
 * that fails with EPIPE turns it off by itself, and says so once in the
 * file (gcs ignores SIGPIPE; an embedding keeps its own disposition). */
void gc_log_set_stderr(int on);

/* Formats and writes one message at 'level' (one GCL_* flag). Trailing
 * newlines are dropped; the line gets exactly one. */
void gc_log(int level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* Writes 'msg' as the last words of a process about to _exit: whatever the
 * mask, to the file and to stderr, never waiting long for the log's lock
 * (its holder may be stuck) nor blocking on a full stderr pipe; no hook. */
void gc_log_urgent(int level, const char *msg);

/* Writes 'msg' at 'level' as gc_log does; what core_api.logMessage calls.
 * NULL is ignored. */
void gc_log_write(int level, const char *msg);

/* Every line that passes the mask is also given to 'hook' (tests, the
 * gc.testing error collector), without its newline, under the log's lock:
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
