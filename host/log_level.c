/* log_level.c - reading log levels ("ERR|WARN", "VERBOSE", 0x1f; the
 * command line's thresholds) and the per-second line limits (see log.h).
 * No state of its own: the server log itself is log.c. */
#include "log.h"

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <string.h>
#include <strings.h>

#include <game-carrier/common.h>


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
