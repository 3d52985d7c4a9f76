/* config_getopt.c - getOpt (GetOpt in server.h) over the loaded config.
 *
 * A path is keys separated by dots, each key followed by any number of
 * "[n]": "adapters[0].apps[1].name". A final "len" that is not a key of its
 * container is the size of that array or object ("vhosts.len"). The whole
 * path is checked for form first, so a malformed path is EINVAL whether or
 * not a prefix of it exists; then it is walked in place, allocating
 * nothing: adapters call this from any thread. */
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include <game-carrier/server.h>

#include "config.h"
#include "log.h"

/* path := key ('[' digits ']')* ('.' key ('[' digits ']')*)*, where a key is
 * one or more characters other than '.', '[' and ']'. */
static bool getopt_path_wellformed(const char *p) {
  for (;;) {
    size_t n = strcspn(p, ".[]");
    if (n == 0)
      return false; /* "", "a..b", ".a", "a.", "[0]", "a.[0]", "a]" */
    p += n;
    while (*p == '[') {
      p++;
      if (*p < '0' || *p > '9')
        return false; /* "a[", "a[]", "a[x]", "a[-1]" */
      while (*p >= '0' && *p <= '9')
        p++;
      if (*p++ != ']')
        return false; /* "a[1", "a[1x]" */
    }
    if (!*p)
      return true;
    if (*p != '.')
      return false; /* "a[0]b", "a]" */
    p++;
  }
}

/* Walks a well-formed 'p' from 'root'. Found: 0 with '*out' the value, or
 * with '*out' NULL and '*len' the size for a final "len". ENOENT when a
 * step does not exist (a missing key, an index past the end, a key of a
 * non-object, an index of a non-array). */
static int getopt_resolve(const json_t *root, const char *p,
                          const json_t **out, size_t *len) {
  const json_t *cur = root;
  for (;;) {
    size_t n = strcspn(p, ".[");
    const char *key = p;
    p += n;
    const json_t *next =
        json_is_object(cur) ? json_object_getn(cur, key, n) : NULL;
    if (!next) {
      if (!*p && n == 3 && memcmp(key, "len", 3) == 0 &&
          (json_is_array(cur) || json_is_object(cur))) {
        *len = json_is_array(cur) ? json_array_size(cur) : json_object_size(cur);
        *out = NULL;
        return 0;
      }
      return ENOENT;
    }
    cur = next;
    while (*p == '[') {
      size_t idx = 0;
      bool huge = false;
      for (p++; *p != ']'; p++) {
        if (idx > (SIZE_MAX - 9) / 10)
          huge = true; /* no array is that long: ENOENT below */
        else
          idx = idx * 10 + (size_t)(*p - '0');
      }
      p++;
      if (!json_is_array(cur) || huge || idx >= json_array_size(cur))
        return ENOENT;
      cur = json_array_get(cur, idx);
    }
    if (!*p)
      break;
    p++; /* '.' */
  }
  *out = cur;
  return 0;
}

/* The number a value reads as for UINT64 and INT: an integer, a boolean
 * (1/0), or, at "logging.level" only, a level name's mask (Game Carrier's
 * .NET wrapper reads the level that way). Elsewhere a string stays a string:
 * "16" is not a number and a server_name of "debug" is not 16. */
static int getopt_number(const struct gc_config *cfg, const json_t *v,
                         long long *num) {
  if (json_is_integer(v)) {
    *num = json_integer_value(v);
    return 0;
  }
  if (json_is_boolean(v)) {
    *num = json_is_true(v);
    return 0;
  }
  const json_t *level =
      json_object_get(json_object_get(cfg->root, "logging"), "level");
  if (v == level && json_is_string(v)) {
    int mask;
    if (gc_log_level_parse(json_string_value(v), &mask) != 0)
      return EINVAL;
    *num = mask;
    return 0;
  }
  return EINVAL;
}

int gc_config_getopt(const struct gc_config *cfg, const char *name, int type,
                     void *value) {
  if (!cfg || !cfg->root || !name)
    return EINVAL;
  if (type != GC_OPT_TYPE_NULL && type != GC_OPT_TYPE_STRING &&
      type != GC_OPT_TYPE_UINT64 && type != GC_OPT_TYPE_INT)
    return EINVAL;
  if (type != GC_OPT_TYPE_NULL && !value)
    return EINVAL;
  if (!getopt_path_wellformed(name))
    return EINVAL;
  const json_t *v = NULL;
  size_t len = 0;
  int rc = getopt_resolve(cfg->root, name, &v, &len);
  if (rc)
    return rc;
  if (type == GC_OPT_TYPE_NULL)
    return 0;
  if (type == GC_OPT_TYPE_STRING) {
    if (!v || !json_is_string(v))
      return EINVAL; /* numbers are not converted: the caller asked wrong */
    *(const char **)value = json_string_value(v);
    return 0;
  }
  long long num;
  if (!v) {
    if (len > (size_t)INT64_MAX)
      return EINVAL;
    num = (long long)len;
  } else if ((rc = getopt_number(cfg, v, &num)) != 0) {
    return rc;
  }
  if (type == GC_OPT_TYPE_UINT64) {
    if (num < 0)
      return EINVAL;
    *(uint64_t *)value = (uint64_t)num;
    return 0;
  }
  if (num < INT32_MIN || num > INT32_MAX)
    return EINVAL;
  *(int32_t *)value = (int32_t)num;
  return 0;
}
