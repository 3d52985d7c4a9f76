/* log_format.h - the shapes of a log line (log.c's): libwebsockets' text
 * and one JSON object per line. Internal to the log; pure functions, so
 * the writer thread, the hook and gc_log_urgent can all use them. */
#ifndef GC_LOG_FORMAT_H
#define GC_LOG_FORMAT_H

#include <stddef.h>
#include <time.h>

#include "log.h"

/* "[YYYY/MM/DD hh:mm:ss:ffff] X: " plus slack for odd years. */
#define GC__LOG_PREFIX_MAX 48

/* The longest text line: prefix, message, "\n", NUL. */
#define GC__LOG_TEXT_MAX (GC__LOG_PREFIX_MAX + GC_LOG_MSG_MAX + 2)

/* The longest line in either format: a JSON message byte takes at most 6
 * ("\u001f", or "\ufffd" for a byte that is not UTF-8). */
#define GC__LOG_LINE_MAX (6 * GC_LOG_MSG_MAX + 128)

/* Makes the message of a line from 'len' bytes at 'msg' (not
 * NUL-terminated) into 'dst' (GC_LOG_MSG_MAX bytes; may be 'msg'):
 * trailing newlines dropped; a message over GC_LOG_MSG_MAX bytes, or one
 * the caller already 'cut', ends in "..." (never splitting a UTF-8
 * character). Returns its length, at most GC_LOG_MSG_MAX. */
size_t gc__log_message(char *dst, const char *msg, size_t len, int cut);

/* Formats one line, newline included and NUL-terminated, into 'line'
 * (GC__LOG_TEXT_MAX bytes for GC_LOG_FORMAT_TEXT, GC__LOG_LINE_MAX for
 * JSON): 'msg' is 'len' bytes made by gc__log_message, 'ts' the moment it
 * was logged (CLOCK_REALTIME). Returns the line's length. Text:
 *   [2026/11/25 10:00:00:1234] N: text     (local time)
 * JSON:
 *   {"ts":"2026-11-25T09:00:00.123Z","level":"notice","msg":"text"} */
size_t gc__log_format(char *line, int format, int level,
                      const struct timespec *ts, const char *msg, size_t len);

/* Writes 'len' bytes of 's' as the inside of a JSON string (no quotes)
 * into 'out' (6 * len bytes at most): '"', '\\' and every control
 * character escaped, valid UTF-8 kept, each byte that is not part of a
 * well-formed UTF-8 character replaced by "\ufffd". Returns the length. */
size_t gc__log_json_escape(char *out, const char *s, size_t len);

#endif
