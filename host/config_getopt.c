/* config_getopt.c - getOpt: a dotted path into the loaded JSON.
 *
 * "adapters[0].apps[1].name", "vhosts.len" (an array's or object's size),
 * "logging.level". Paths are parsed in place, never allocated. */
#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <game-carrier/server.h>

#include "config.h"
#include "log.h"

/* A path is keys separated by dots, each followed by any number of [n]. */
static int path_valid(const char *p) {
  if (!*p)
    return 0;
  for (;;) {
    size_t n = strcspn(p, ".[]");
    if (n == 0)
      return 0; /* "a..b", ".a", "[0]" first, "a.[0]" */
    p += n;
    while (*p == '[') {
      p++;
      if (*p < '0' || *p > '9')
        return 0;
      while (*p >= '0' && *p <= '9')
        p++;
      if (*p++ != ']')
        return 0;
    }
    if (!*p)
      return 1;
    if (*p != '.')
      return 0;
    p++;
  }
}

/* Resolves 'name'; a final "len" on a container that has no such key
 * yields its size in '*len' and NULL. */
static int resolve(const json_t *root, const char *name, const json_t **out,
                   long long *len) {
  const json_t *cur = root;
  const char *p = name;
  *len = -1;
  if (!*p)
    return EINVAL;
  while (*p) {
    size_t n = strcspn(p, ".[");
    if (n == 0 && *p != '[')
      return EINVAL; /* "a..b", ".a" */
    if (n) {
      char key[256];
      if (n >= sizeof key)
        return EINVAL;
      memcpy(key, p, n);
      key[n] = '\0';
      p += n;
      const json_t *next = json_is_object(cur) ? json_object_get(cur, key) : NULL;
      if (!next && strcmp(key, "len") == 0 && !*p &&
          (json_is_array(cur) || json_is_object(cur))) {
        *len = json_is_array(cur) ? (long long)json_array_size(cur)
                                  : (long long)json_object_size(cur);
        *out = NULL;
        return 0;
      }
      if (!next)
        return json_is_object(cur) ? ENOENT : (json_is_array(cur) ? EINVAL : ENOENT);
      cur = next;
    }
    while (*p == '[') {
      char *end;
      if (p[1] < '0' || p[1] > '9')
        return EINVAL;
      unsigned long idx = strtoul(p + 1, &end, 10);
      if (*end != ']')
        return EINVAL;
      if (!json_is_array(cur))
        return ENOENT;
      if (idx >= json_array_size(cur))
        return ENOENT;
      cur = json_array_get(cur, idx);
      p = end + 1;
    }
    if (*p == '.') {
      p++;
      if (!*p)
        return EINVAL; /* trailing dot */
    } else if (*p) {
      return EINVAL;
    }
  }
  *out = cur;
  return 0;
}

int gc_config_getopt(const struct gc_config *cfg, const char *name, int type,
                     void *value) {
  if (!cfg || !name)
    return EINVAL;
  if (type != GC_OPT_TYPE_NULL && !value)
    return EINVAL;
  if (!path_valid(name))
    return EINVAL;
  const json_t *v = NULL;
  long long len;
  int rc = resolve(cfg->root, name, &v, &len);
  if (rc)
    return rc;
  long long num;
  switch (type) {
  case GC_OPT_TYPE_NULL:
    return 0;
  case GC_OPT_TYPE_STRING:
    if (!v || !json_is_string(v))
      return EINVAL;
    *(const char **)value = json_string_value(v);
    return 0;
  case GC_OPT_TYPE_UINT64:
  case GC_OPT_TYPE_INT:
    if (!v) {
      num = len;
    } else if (json_is_integer(v)) {
      num = json_integer_value(v);
    } else if (json_is_boolean(v)) {
      num = json_is_true(v);
    } else if (json_is_string(v)) {
      /* A level written as a name ("NORMAL") reads as its mask. */
      int mask;
      if (gc_log_level_parse(json_string_value(v), &mask) != 0)
        return EINVAL;
      num = mask;
    } else {
      return EINVAL;
    }
    if (type == GC_OPT_TYPE_UINT64) {
      if (num < 0)
        return EINVAL;
      *(uint64_t *)value = (uint64_t)num;
    } else {
      if (num < INT32_MIN || num > INT32_MAX)
        return EINVAL;
      *(int32_t *)value = (int32_t)num;
    }
    return 0;
  default:
    return EINVAL;
  }
}
