/* options.c - the Lua adapter checks its own keys of the config: the
 * "lua" object at the root and in each app entry of its adapters. The
 * host knows "lua" only as an object whose content is the adapter's
 * (config_schema.c), as it knows "settings" as the game's.
 *
 * The check runs in adapter_initialize, before any script compiles, with
 * the host's quality of message: the place (getOpt's GC_OPT_TYPE_WHERE),
 * the key path and what is wrong,
 *   gcs.json:9:30: adapters[1].apps[0].lua.time_limit_ms: expected a
 *     non-negative integer, got "fast"
 *   gcs.json:9:12: lua: unknown key "time_limit" (did you mean "time_limit_ms"?)
 * one line at ERR, and start-up stops. Keys are visited in the file's
 * order (the JSON text keeps it), so the first problem is the one told.
 * A host without GC_OPT_TYPE_JSON (another Game Carrier host) gets no
 * check: the values read in limits.c keep their defaults when unreadable. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "gc_lua.h"

enum okind { O_UINT, O_STRING, O_BOOL };

static const struct {
  const char *key;
  enum okind kind;
} lua_keys[] = {
    {"instruction_budget", O_UINT}, {"time_limit_ms", O_UINT},
    {"memory_limit", O_UINT},       {"path", O_STRING},
    {"unsafe", O_BOOL},             {"comment", O_STRING},
    {"max_pending_events", O_UINT},
};
#define NKEYS (sizeof lua_keys / sizeof lua_keys[0])

/* Case-insensitive edit distance for "did you mean"; SIZE_MAX when too long. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b);
  return la > 32 || lb > 32 ? SIZE_MAX : gc_lua_edit_distance(a, la, b, lb);
}

/* ---- a scan of compact JSON (the host's, so well-formed) ------------------- */

/* Past the string at 'p' (its opening quote); its decoded bytes (escapes
 * kept as the character after the backslash, enough for a key) go to
 * 'out' when given, cut to 'len'. */
static const char *scan_string(const char *p, char *out, size_t len) {
  size_t n = 0;
  for (p++; *p && *p != '"'; p++) {
    if (*p == '\\' && p[1])
      p++;
    if (out && n + 1 < len)
      out[n++] = *p;
  }
  if (out && len)
    out[n] = '\0';
  return *p ? p + 1 : p;
}

/* Past the value at 'p'. */
static const char *scan_value(const char *p) {
  int depth = 0;
  do {
    if (*p == '"') {
      p = scan_string(p, NULL, 0);
      continue;
    }
    if (*p == '{' || *p == '[')
      depth++;
    else if (*p == '}' || *p == ']')
      depth--;
    else if (depth == 0) { /* a scalar */
      while (*p && !strchr(",}]", *p))
        p++;
      return p;
    }
    if (!*p)
      return p;
    p++;
  } while (depth > 0);
  return p;
}

/* "got ..." of the value spanning [v, end), as the host says it. */
static void describe(const char *v, const char *end, char *out, size_t len) {
  size_t n = (size_t)(end - v);
  if (*v == '{')
    snprintf(out, len, n == 2 ? "{}" : "an object");
  else if (*v == '[')
    snprintf(out, len, n == 2 ? "[]" : "an array");
  else if (n > 48)
    snprintf(out, len, "%.45s...", v);
  else
    snprintf(out, len, "%.*s", (int)n, v);
}

static int kind_ok(enum okind kind, const char *v, const char *end) {
  switch (kind) {
  case O_STRING: return *v == '"';
  case O_BOOL:
    return (end - v == 4 && !strncmp(v, "true", 4)) ||
           (end - v == 5 && !strncmp(v, "false", 5));
  case O_UINT:
    for (const char *q = v; q < end; q++)
      if (*q < '0' || *q > '9')
        return 0; /* a sign, a fraction or an exponent */
    return end > v;
  }
  return 0;
}

static const char *expected(enum okind kind) {
  return kind == O_UINT ? "a non-negative integer"
         : kind == O_STRING ? "a string"
                            : "true or false";
}

/* ---- the check ---------------------------------------------------------------- */

/* Logs "<where>: <path>: <msg>" at ERR (the place of 'at', of its key with
 * 'at_key'; of 'obj' if 'at' cannot be placed) and returns EINVAL. */
static int fail(const struct core_api *api, const char *obj, const char *at,
                int at_key, const char *path, const char *msg) {
  char where[GC_OPT_WHERE_SIZE] = "";
  if (api->getOpt(at, at_key ? GC_OPT_TYPE_WHERE_KEY : GC_OPT_TYPE_WHERE,
                  where) != 0 &&
      api->getOpt(obj, GC_OPT_TYPE_WHERE, where) != 0)
    snprintf(where, sizeof where, "config");
  char line[1024];
  snprintf(line, sizeof line, "%s: %s: %s", where, path, msg);
  api->logMessage(GCL_ERR, line);
  gc_lua_report_error(line);
  return EINVAL;
}

/* Checks the "lua" object at getOpt path 'obj' (absent: fine). */
static int check_lua_object(const struct core_api *api, const char *obj) {
  const char *text = NULL;
  if (api->getOpt(obj, GC_OPT_TYPE_JSON, &text) != 0 || !text || *text != '{')
    return 0; /* none, or a host without JSON: the host checked the kind */
  const char *p = text + 1;
  while (*p == '"') {
    char key[128], at[384], msg[512], got[64];
    p = scan_string(p, key, sizeof key);
    p++; /* ':' */
    const char *v = p;
    p = scan_value(p);
    snprintf(at, sizeof at, "%s.%s", obj, key);
    size_t k = 0;
    while (k < NKEYS && strcmp(lua_keys[k].key, key) != 0)
      k++;
    if (k == NKEYS) {
      size_t best = NKEYS, best_d = SIZE_MAX;
      for (size_t j = 0; j < NKEYS; j++) {
        size_t d = edit_distance(key, lua_keys[j].key);
        if (d < best_d) {
          best_d = d;
          best = j;
        }
      }
      if (best < NKEYS && best_d <= 2 && best_d < strlen(key))
        snprintf(msg, sizeof msg, "unknown key \"%s\" (did you mean \"%s\"?)",
                 key, lua_keys[best].key);
      else
        snprintf(msg, sizeof msg, "unknown key \"%s\"", key);
      return fail(api, obj, at, 1, obj, msg);
    }
    if (!kind_ok(lua_keys[k].kind, v, p)) {
      describe(v, p, got, sizeof got);
      snprintf(msg, sizeof msg, "expected %s, got %s", expected(lua_keys[k].kind),
               got);
      return fail(api, obj, at, 0, at, msg);
    }
    if (*p == ',')
      p++;
  }
  return 0;
}

int gc_lua_options_check(const struct core_api *api, GCT_INT adapter_id) {
  if (api->getOpt == NULL || api->logMessage == NULL)
    return 0;
  int rc = check_lua_object(api, "lua");
  char key[96];
  GCT_INT n = 0;
  snprintf(key, sizeof key, "adapters[%d].apps.len", (int)adapter_id);
  if (rc == 0 && api->getOpt(key, GC_OPT_TYPE_INT, &n) != 0)
    n = 0;
  for (GCT_INT k = 0; k < n && rc == 0; k++) {
    snprintf(key, sizeof key, "adapters[%d].apps[%d].lua", (int)adapter_id,
             (int)k);
    rc = check_lua_object(api, key);
  }
  return rc;
}
