/* log_format.c - see log_format.h. */
#include "log_format.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <game-carrier/common.h>

/* Cuts 'len' to at most 'max' bytes without splitting a UTF-8 character. */
static size_t log_cut(const char *msg, size_t len, size_t max) {
  if (len <= max)
    return len;
  while (max > 0 && ((unsigned char)msg[max] & 0xC0) == 0x80)
    max--;
  return max;
}

size_t gc__log_message(char *dst, const char *msg, size_t len, int cut) {
  while (len && (msg[len - 1] == '\n' || msg[len - 1] == '\r'))
    len--;
  if (len > GC_LOG_MSG_MAX)
    cut = 1;
  if (!cut) {
    memmove(dst, msg, len);
    return len;
  }
  /* A runaway message is cut, not lost, and says so. */
  len = log_cut(msg, len, GC_LOG_MSG_MAX - 3);
  memmove(dst, msg, len);
  memcpy(dst + len, "...", 3);
  return len + 3;
}

/* The lowest level bit set, as a letter (libwebsockets prints it) and as
 * a word (the JSON "level"). */
static const struct {
  int level;
  char letter;
  const char *word;
} levels[] = {{GCL_ERR, 'E', "error"},  {GCL_WARN, 'W', "warn"},
              {GCL_NOTICE, 'N', "notice"}, {GCL_INFO, 'I', "info"},
              {GCL_DEBUG, 'D', "debug"}, {GCL_USER, 'U', "user"}};

static size_t level_index(int level) {
  size_t i = 0;
  while (i < sizeof levels / sizeof levels[0] && !(level & levels[i].level))
    i++;
  return i; /* the count of levels: none of them */
}

/* The length of the well-formed UTF-8 character at 's' ('n' bytes left),
 * or 0 when the byte at 's' does not start one (Unicode's Table 3-7: no
 * overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_char(const unsigned char *s, size_t n) {
  unsigned char c = s[0], lo = 0x80, hi = 0xBF;
  size_t len;
  if (c < 0x80)
    return 1;
  if (c >= 0xC2 && c <= 0xDF)
    len = 2;
  else if (c >= 0xE0 && c <= 0xEF) {
    len = 3;
    lo = c == 0xE0 ? 0xA0 : 0x80;
    hi = c == 0xED ? 0x9F : 0xBF;
  } else if (c >= 0xF0 && c <= 0xF4) {
    len = 4;
    lo = c == 0xF0 ? 0x90 : 0x80;
    hi = c == 0xF4 ? 0x8F : 0xBF;
  } else
    return 0;
  if (n < len || s[1] < lo || s[1] > hi)
    return 0;
  for (size_t k = 2; k < len; k++)
    if ((s[k] & 0xC0) != 0x80)
      return 0;
  return len;
}

size_t gc__log_json_escape(char *out, const char *s, size_t len) {
  static const char hex[] = "0123456789abcdef";
  const unsigned char *p = (const unsigned char *)s;
  size_t o = 0;
  for (size_t i = 0; i < len;) {
    unsigned char c = p[i];
    if (c >= 0x80) {
      size_t n = utf8_char(p + i, len - i);
      if (n) {
        memcpy(out + o, p + i, n);
        o += n;
        i += n;
      } else {
        memcpy(out + o, "\\ufffd", 6); /* U+FFFD, the replacement character */
        o += 6;
        i++;
      }
      continue;
    }
    i++;
    const char *esc = c == '"'    ? "\\\""
                      : c == '\\' ? "\\\\"
                      : c == '\n' ? "\\n"
                      : c == '\r' ? "\\r"
                      : c == '\t' ? "\\t"
                      : c == '\b' ? "\\b"
                      : c == '\f' ? "\\f"
                                  : NULL;
    if (esc) {
      out[o++] = esc[0];
      out[o++] = esc[1];
    } else if (c < 0x20 || c == 0x7F) {
      /* DEL too: JSON allows it raw, a terminal showing the log does not. */
      memcpy(out + o, "\\u00", 4);
      out[o + 4] = hex[c >> 4];
      out[o + 5] = hex[c & 15];
      o += 6;
    } else {
      out[o++] = (char)c;
    }
  }
  return o;
}

size_t gc__log_format(char *line, int format, int level,
                      const struct timespec *ts, const char *msg, size_t len) {
  struct tm tm;
  size_t li = level_index(level);
  size_t n;
  if (format == GC_LOG_FORMAT_JSON) {
    gmtime_r(&ts->tv_sec, &tm);
    int k = snprintf(line, GC__LOG_PREFIX_MAX * 2,
                     "{\"ts\":\"%04d-%02d-%02dT%02d:%02d:%02d.%03dZ\","
                     "\"level\":\"%s\",\"msg\":\"",
                     tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                     tm.tm_min, tm.tm_sec, (int)(ts->tv_nsec / 1000000),
                     li < sizeof levels / sizeof levels[0] ? levels[li].word
                                                           : "other");
    n = k < 0 ? 0 : (size_t)k >= GC__LOG_PREFIX_MAX * 2 ? GC__LOG_PREFIX_MAX * 2 - 1 : (size_t)k;
    n += gc__log_json_escape(line + n, msg, len);
    memcpy(line + n, "\"}\n", 4);
    return n + 3;
  }
  localtime_r(&ts->tv_sec, &tm);
  int k = snprintf(line, GC__LOG_PREFIX_MAX, "[%04d/%02d/%02d %02d:%02d:%02d:%04d] %c: ",
                   tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
                   tm.tm_min, tm.tm_sec, (int)(ts->tv_nsec / 100000),
                   li < sizeof levels / sizeof levels[0] ? levels[li].letter : '?');
  n = k < 0 ? 0 : (size_t)k >= GC__LOG_PREFIX_MAX ? GC__LOG_PREFIX_MAX - 1 : (size_t)k;
  memcpy(line + n, msg, len);
  n += len;
  line[n++] = '\n';
  line[n] = '\0';
  return n;
}
