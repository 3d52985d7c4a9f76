/* log.h - the server log: one line per message, level-masked, to stderr
 * and to the configured file, in libwebsockets' format (Game Carrier's):
 * "[2026/11/25 10:00:00:1234] N: text". Process-wide and thread-safe: the
 * one piece of mutable state every loop shares. */
#ifndef GC_LOG_H
#define GC_LOG_H

/* Opens 'file' for appending ('%p' already expanded; NULL or "" = stderr
 * only) and sets the mask. 0 or an errno. */
int gc_log_open(const char *file, int level_mask);
void gc_log_close(void);
void gc_log_set_level(int level_mask);
int gc_log_enabled(int level);
/* Silences stderr (gc.testing keeps its output clean); the file and the
 * hook still get every line. */
void gc_log_set_stderr(int on);
void gc_log(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* What core_api.logMessage calls; NULL is ignored. */
void gc_log_write(int level, const char *msg);
/* Every line that passes the mask is also given to 'hook' (tests). */
void gc_log_set_hook(void (*hook)(int level, const char *line, void *ud), void *ud);
/* Parses a level: a name (ERR WARN NOTICE INFO DEBUG USER NORMAL VERBOSE,
 * any case, joined with '|'), or a number. 0 or EINVAL. */
int gc_log_level_parse(const char *s, int *mask);

#endif
