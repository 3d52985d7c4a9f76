/* config.c - loading and validating the JSON config (see config.h).
 *
 * jansson parses and places syntax errors, but it keeps no position for a
 * value. So validation works on the parsed tree and tracks only the key path
 * it is at; when it finds a problem, gc__config_locate() (config_path.c)
 * walks the original text once more, guided by that path, to find the line
 * and column. Nothing is recorded on the success path, and the walk needs
 * no memory.
 *
 * Order of work: schema (types, ranges, unknown keys) -> cross-checks
 * (native needs dir and name, lua apps need a script, app names unique,
 * vhosts name real apps) -> extraction into struct gc_config, where the only
 * possible failure is ENOMEM. */
#include "config.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <game-carrier/server.h>

#include "alloc.h"
#include "config_path.h"
#include "conn_limits.h"
#include "log.h"

/* A config is a few KiB; anything this big is a mistake, not a config. */
#define CONFIG_MAX_BYTES (16u << 20)
/* The schema is at most 7 steps deep (adapters[0].apps[0].lua.path). */
#define PATH_MAX_STEPS 16
/* How much of an offending value a message quotes. */
#define DESCRIBE_MAX 48

/* ---- key paths ----------------------------------------------------------- */

struct vctx {
  const char *text; /* the JSON text, to place errors */
  const char *source;
  char *err;
  size_t errlen;
  struct gc_config_step path[PATH_MAX_STEPS];
  size_t depth;
};

static void path_push_key(struct vctx *v, const char *key) {
  assert(v->depth < PATH_MAX_STEPS); /* bounded by the schema tables */
  v->path[v->depth++] = (struct gc_config_step){key, 0};
}

static void path_push_idx(struct vctx *v, size_t idx) {
  assert(v->depth < PATH_MAX_STEPS);
  v->path[v->depth++] = (struct gc_config_step){NULL, idx};
}

static void path_pop(struct vctx *v) {
  assert(v->depth > 0);
  v->depth--;
}

/* ---- messages ------------------------------------------------------------ */

/* Writes "<source>:<line>:<col>: <path>: <message>" into v->err, where
 * <path> is the first 'named' steps of v->path and the position is that of
 * the whole v->path (of its last key with 'at_key'). Returns EINVAL. */
static int config_fail(const struct vctx *v, size_t named, bool at_key,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int config_fail(const struct vctx *v, size_t named, bool at_key,
                       const char *fmt, ...) {
  char msg[768], where[256];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  gc__config_path_format(where, sizeof where, v->path, named);
  int line, col;
  gc__config_locate(v->text, v->path, v->depth, at_key, &line, &col);
  snprintf(v->err, v->errlen, "%s:%d:%d: %s%s%s", v->source, line, col, where,
           *where ? ": " : "", msg);
  return EINVAL;
}

/* A short human form of a value for "got ...": strings and numbers quoted
 * as JSON (cut to DESCRIBE_MAX), containers by kind. */
static void describe(const json_t *j, char *out, size_t len) {
  switch (json_typeof(j)) {
  case JSON_OBJECT:
    snprintf(out, len, json_object_size(j) ? "an object" : "{}");
    return;
  case JSON_ARRAY:
    snprintf(out, len, json_array_size(j) ? "an array" : "[]");
    return;
  case JSON_INTEGER:
    snprintf(out, len, "%" JSON_INTEGER_FORMAT, json_integer_value(j));
    return;
  case JSON_TRUE: snprintf(out, len, "true"); return;
  case JSON_FALSE: snprintf(out, len, "false"); return;
  case JSON_NULL: snprintf(out, len, "null"); return;
  case JSON_STRING:
  case JSON_REAL: break;
  }
  char *text = json_dumps(j, JSON_ENCODE_ANY | JSON_COMPACT);
  if (!text) {
    snprintf(out, len, json_is_string(j) ? "a string" : "a number");
    return;
  }
  if (strlen(text) > DESCRIBE_MAX)
    snprintf(out, len, "%.*s...", DESCRIBE_MAX - 3, text);
  else
    snprintf(out, len, "%s", text);
  json_free_t jfree;
  json_get_alloc_funcs(NULL, &jfree);
  jfree(text);
}

/* Damerau-free Levenshtein distance, case-insensitive, for "did you mean";
 * SIZE_MAX for strings too long to bother. */
static size_t edit_distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[33];
  if (la > 32 || lb > 32)
    return SIZE_MAX;
  for (size_t j = 0; j <= lb; j++)
    row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j];
      size_t sub = diag + (tolower((unsigned char)a[i - 1]) !=
                           tolower((unsigned char)b[j - 1]));
      size_t best = up + 1 < row[j - 1] + 1 ? up + 1 : row[j - 1] + 1;
      row[j] = sub < best ? sub : best;
      diag = up;
    }
  }
  return row[lb];
}

/* ---- the schema ---------------------------------------------------------- */

enum kind {
  K_STRING,
  K_UINT,   /* an integer in min..max */
  K_BOOL,
  K_LEVEL,  /* a log level name (gc_log_level_parse) or 0..65535 */
  K_CHOICE, /* one of 'choices' */
  K_IP,     /* a numeric IPv4 or IPv6 address, as the listener parses it */
  K_OBJECT, /* with the keys 'sub' */
  K_ARRAY   /* non-empty, of objects with the keys 'sub' */
};

#define F_REQUIRED 1u
#define F_NONEMPTY 2u /* K_STRING: "" is a bad value */

struct key_spec {
  const char *key;
  enum kind kind;
  unsigned flags;
  uint64_t min, max;
  const char *const *choices; /* NULL-terminated */
  const struct key_spec *sub;
  /* K_UINT with min 1: why 0 is refused, said after "got 0". The rule for
   * every number: 0 is "no limit" where a limit can be off, and refused
   * where off makes no sense (README "Config"). */
  const char *zero_hint;
};

#define JSON_UINT_MAX ((uint64_t)INT64_MAX) /* the most jansson reads */
#define S_STR(k, f) {k, K_STRING, f, 0, 0, NULL, NULL, NULL}
#define S_UINT(k) {k, K_UINT, 0, 0, JSON_UINT_MAX, NULL, NULL, NULL}
#define S_RANGE(k, f, lo, hi) {k, K_UINT, f, lo, hi, NULL, NULL, NULL}
#define S_BOOL(k) {k, K_BOOL, 0, 0, 0, NULL, NULL, NULL}
#define S_LEVEL(k) {k, K_LEVEL, 0, 0, 0, NULL, NULL, NULL}
#define S_CHOICE(k, f, c) {k, K_CHOICE, f, 0, 0, c, NULL, NULL}
#define S_IP(k, f) {k, K_IP, f, 0, 0, NULL, NULL, NULL}
#define S_OBJ(k, sub) {k, K_OBJECT, 0, 0, 0, NULL, sub, NULL}
#define S_ARR(k, f, sub) {k, K_ARRAY, f, 0, 0, NULL, sub, NULL}
#define S_NONZERO(k, hi, why) {k, K_UINT, 0, 1, hi, NULL, NULL, why}
#define S_END {NULL, K_STRING, 0, 0, 0, NULL, NULL, NULL}

static const char *const adapter_types[] = {"native", "lua", NULL};
static const char *const protocols[] = {"ws", "wss", NULL};

static const struct key_spec limits_keys[] = {
    S_UINT("msg_per_second"), S_UINT("kbytes_per_second"),
    S_RANGE("max_msg_size", 0, 0, GC_MSG_SIZE_HARD_MAX),
    S_UINT("output_queue_size"), S_END};
static const struct key_spec lua_keys[] = {
    S_UINT("instruction_budget"), S_UINT("time_limit_ms"), S_UINT("memory_limit"),
    S_STR("path", 0), S_BOOL("unsafe"),
    S_END};
static const struct key_spec app_keys[] = {
    S_STR("name", F_REQUIRED | F_NONEMPTY), S_STR("type_name", 0),
    S_STR("file_name", 0), S_OBJ("conn_notice", limits_keys),
    S_OBJ("conn_critical", limits_keys), S_OBJ("lua", lua_keys), S_END};
static const struct key_spec adapter_keys[] = {
    S_CHOICE("type", F_REQUIRED, adapter_types), S_STR("dir", 0),
    S_STR("name", F_NONEMPTY), S_ARR("apps", F_REQUIRED, app_keys), S_END};
static const struct key_spec vhost_keys[] = {
    S_IP("ip", F_REQUIRED), S_RANGE("port", F_REQUIRED, 0, 65535),
    S_CHOICE("protocol", 0, protocols), S_STR("app", F_REQUIRED | F_NONEMPTY),
    S_END};
static const struct key_spec logging_keys[] = {
    S_STR("log_file", 0), S_LEVEL("level"),
    S_RANGE("conn_lines_per_second", 0, 0, UINT32_MAX), S_END};
/* Seconds; the host multiplies them by 1000 in 64 bits. A ping interval or
 * a number of pings cannot be "off": timeout 0 turns keep-alive off. */
#define KA_OFF "keep-alive is turned off with \"timeout\": 0"
static const struct key_spec keep_alive_keys[] = {
    S_RANGE("timeout", 0, 0, UINT32_MAX), S_NONZERO("retries", UINT32_MAX, KA_OFF),
    S_NONZERO("interval", UINT32_MAX, KA_OFF), S_END};
static const struct key_spec threading_keys[] = {
    S_RANGE("worker_count", 0, 1, 64), S_BOOL("use_libuv"), S_END};
static const struct key_spec counters_keys[] = {
    S_UINT("per_second_window"), S_UINT("update_interval"), S_END};
static const struct key_spec root_keys[] = {
    S_STR("server_name", 0),
    S_STR("ssl_keys_path", 0),
    S_STR("auth_file", 0),
    S_STR("working_dir", 0),
    S_STR("extra_adapters", 0),
    S_UINT("max_connections"),
    S_UINT("max_client_connections"),
    S_ARR("adapters", F_REQUIRED, adapter_keys),
    S_ARR("vhosts", F_REQUIRED, vhost_keys),
    S_OBJ("logging", logging_keys),
    S_OBJ("keep_alive", keep_alive_keys),
    S_OBJ("threading", threading_keys),
    S_OBJ("counters", counters_keys),
    S_UINT("group_max_size"),
    S_UINT("max_groups"),
    S_OBJ("conn_notice", limits_keys),
    S_OBJ("conn_critical", limits_keys),
    S_RANGE("close_drain_ms", 0, 0, UINT32_MAX),
    S_RANGE("handshake_timeout_ms", 0, 0, UINT32_MAX),
    S_RANGE("max_output_msg_size", 0, 0, GC_MSG_SIZE_HARD_MAX),
    S_RANGE("message_timeout_ms", 0, 0, UINT32_MAX),
    S_RANGE("send_timeout_ms", 0, 0, UINT32_MAX),
    S_UINT("max_buffered_bytes"),
    S_OBJ("lua", lua_keys),
    S_END};

/* The mask of a valid "logging.level" value: 0 or EINVAL. */
static int level_of(const json_t *val, int *mask) {
  if (json_is_integer(val)) {
    json_int_t n = json_integer_value(val);
    if (n < 0 || n > 0xFFFF)
      return EINVAL;
    *mask = (int)n;
    return 0;
  }
  if (json_is_string(val))
    return gc_log_level_parse(json_string_value(val), mask);
  return EINVAL;
}

static int check_object(struct vctx *v, const json_t *obj,
                        const struct key_spec *keys);

/* Fails with "expected <what>, got <the value>" at v->path. */
static int fail_got(const struct vctx *v, const json_t *val, const char *what) {
  char got[DESCRIBE_MAX + 16];
  describe(val, got, sizeof got);
  return config_fail(v, v->depth, false, "expected %s, got %s", what, got);
}

/* Checks the value at v->path against 'ks'. */
static int check_value(struct vctx *v, const json_t *val,
                       const struct key_spec *ks) {
  char what[192];
  switch (ks->kind) {
  case K_STRING:
    if (!json_is_string(val))
      return fail_got(v, val, "a string");
    if ((ks->flags & F_NONEMPTY) && json_string_length(val) == 0)
      return fail_got(v, val, "a non-empty string");
    return 0;
  case K_UINT:
    if (json_is_integer(val) && json_integer_value(val) >= 0 &&
        (uint64_t)json_integer_value(val) >= ks->min &&
        (uint64_t)json_integer_value(val) <= ks->max)
      return 0;
    if (ks->min == 0 && ks->max == JSON_UINT_MAX)
      return fail_got(v, val, "a non-negative integer");
    snprintf(what, sizeof what, "an integer %llu..%llu",
             (unsigned long long)ks->min, (unsigned long long)ks->max);
    if (ks->zero_hint && json_is_integer(val) && json_integer_value(val) == 0)
      return config_fail(v, v->depth, false, "expected %s, got 0 (%s)", what,
                         ks->zero_hint);
    return fail_got(v, val, what);
  case K_BOOL:
    return json_is_boolean(val) ? 0 : fail_got(v, val, "true or false");
  case K_LEVEL: {
    int mask;
    if (level_of(val, &mask) == 0)
      return 0;
    return fail_got(v, val,
                    "a log level (ERR, WARN, NOTICE, INFO, DEBUG, USER, "
                    "NORMAL or VERBOSE, several joined with '|') or a number "
                    "0..65535");
  }
  case K_CHOICE: {
    if (json_is_string(val))
      for (const char *const *c = ks->choices; *c; c++)
        if (strcmp(json_string_value(val), *c) == 0)
          return 0;
    what[0] = '\0';
    for (const char *const *c = ks->choices; *c; c++) {
      size_t used = strlen(what);
      snprintf(what + used, sizeof what - used, "%s\"%s\"",
               c == ks->choices ? "" : c[1] ? ", " : " or ", *c);
    }
    return fail_got(v, val, what);
  }
  case K_IP: {
    unsigned char addr[sizeof(struct in6_addr)];
    if (json_is_string(val)) {
      const char *ip = json_string_value(val);
      /* The listener's rule: a ':' means IPv6 (uv_ip6_addr), else IPv4. */
      if (inet_pton(strchr(ip, ':') ? AF_INET6 : AF_INET, ip, addr) == 1)
        return 0;
    }
    return fail_got(v, val, "a numeric IPv4 or IPv6 address");
  }
  case K_OBJECT:
    if (!json_is_object(val))
      return fail_got(v, val, "an object");
    return check_object(v, val, ks->sub);
  case K_ARRAY: {
    if (!json_is_array(val) || json_array_size(val) == 0)
      return fail_got(v, val, "a non-empty array");
    size_t i;
    const json_t *el;
    json_array_foreach(val, i, el) {
      path_push_idx(v, i);
      int rc = json_is_object(el) ? check_object(v, el, ks->sub)
                                  : fail_got(v, el, "an object");
      path_pop(v);
      if (rc)
        return rc;
    }
    return 0;
  }
  }
  return 0;
}

/* Checks every key of 'obj' (at v->path) against 'keys', then that the
 * required ones are there. Keys are visited in text order (jansson keeps
 * insertion order), so the first problem in the file is the one reported. */
static int check_object(struct vctx *v, const json_t *obj,
                        const struct key_spec *keys) {
  const char *key;
  const json_t *val;
  json_object_foreach((json_t *)obj, key, val) {
    path_push_key(v, key);
    int rc = 0;
    const struct key_spec *ks = keys;
    while (ks->key && strcmp(ks->key, key) != 0)
      ks++;
    if (strcmp(key, "comment") == 0) {
      static const struct key_spec comment = S_STR("comment", 0);
      rc = check_value(v, val, &comment);
    } else if (ks->key) {
      rc = check_value(v, val, ks);
    } else {
      /* Name the object the key is in; point at the key itself. */
      const struct key_spec *best = NULL;
      size_t best_d = SIZE_MAX;
      for (const struct key_spec *k = keys; k->key; k++) {
        size_t d = edit_distance(key, k->key);
        if (d < best_d) {
          best_d = d;
          best = k;
        }
      }
      if (best && best_d <= 2 && best_d < strlen(key))
        rc = config_fail(v, v->depth - 1, true,
                         "unknown key \"%s\" (did you mean \"%s\"?)", key,
                         best->key);
      else
        rc = config_fail(v, v->depth - 1, true, "unknown key \"%s\"", key);
    }
    path_pop(v);
    if (rc)
      return rc;
  }
  for (const struct key_spec *ks = keys; ks->key; ks++)
    if ((ks->flags & F_REQUIRED) && !json_object_get(obj, ks->key))
      return config_fail(v, v->depth, false, "missing required key \"%s\"",
                         ks->key);
  return 0;
}

/* ---- cross-checks -------------------------------------------------------- */

/* Sets v->path to adapters[a] (.apps[k] when k != SIZE_MAX) (.key). */
static void path_set_app(struct vctx *v, size_t a, size_t k, const char *key) {
  v->depth = 0;
  path_push_key(v, "adapters");
  path_push_idx(v, a);
  if (k != SIZE_MAX) {
    path_push_key(v, "apps");
    path_push_idx(v, k);
  }
  if (key)
    path_push_key(v, key);
}

static const char *app_name_at(const json_t *root, size_t a, size_t k) {
  const json_t *ad = json_array_get(json_object_get(root, "adapters"), a);
  const json_t *app = json_array_get(json_object_get(ad, "apps"), k);
  return json_string_value(json_object_get(app, "name"));
}

/* Finds the first app before (a, k) in config order named 'name'. */
static bool app_name_earlier(const json_t *root, size_t a, size_t k,
                             const char *name, size_t *pa, size_t *pk) {
  const json_t *ads = json_object_get(root, "adapters");
  for (size_t i = 0; i <= a; i++) {
    size_t n = json_array_size(json_object_get(json_array_get(ads, i), "apps"));
    for (size_t j = 0; j < (i == a ? k : n); j++)
      if (strcmp(app_name_at(root, i, j), name) == 0) {
        *pa = i;
        *pk = j;
        return true;
      }
  }
  return false;
}

/* Rules that span keys: what the schema tables cannot say. */
static int check_cross(struct vctx *v, const json_t *root) {
  const json_t *ads = json_object_get(root, "adapters");
  size_t a;
  const json_t *ad;
  json_array_foreach(ads, a, ad) {
    bool native = strcmp(json_string_value(json_object_get(ad, "type")),
                         "native") == 0;
    /* The library is <dir>/lib<name>.so: both halves are needed. */
    static const char *const native_keys[] = {"dir", "name"};
    for (size_t i = 0; native && i < 2; i++)
      if (!json_object_get(ad, native_keys[i])) {
        path_set_app(v, a, SIZE_MAX, NULL);
        return config_fail(v, v->depth, false,
                           "missing required key \"%s\" (a native adapter "
                           "loads <dir>/lib<name>.so)",
                           native_keys[i]);
      }
    const json_t *apps = json_object_get(ad, "apps");
    size_t k;
    const json_t *app;
    json_array_foreach(apps, k, app) {
      if (!native && !json_object_get(app, "file_name")) {
        path_set_app(v, a, k, NULL);
        return config_fail(v, v->depth, false,
                           "missing required key \"file_name\" (the script "
                           "of a lua app)");
      }
      /* Clients and vhosts address apps by name: it must be unique. */
      const char *name = json_string_value(json_object_get(app, "name"));
      size_t pa, pk;
      if (app_name_earlier(root, a, k, name, &pa, &pk)) {
        int line, col;
        path_set_app(v, pa, pk, "name");
        gc__config_locate(v->text, v->path, v->depth, false, &line, &col);
        char first[128];
        gc__config_path_format(first, sizeof first, v->path, v->depth);
        path_set_app(v, a, k, "name");
        return config_fail(v, v->depth, false,
                           "duplicate app name \"%s\" (first used by %s at "
                           "%d:%d)",
                           name, first, line, col);
      }
    }
  }
  const json_t *vhs = json_object_get(root, "vhosts");
  size_t i;
  const json_t *vh;
  json_array_foreach(vhs, i, vh) {
    const char *want = json_string_value(json_object_get(vh, "app"));
    char names[256] = "";
    bool found = false;
    json_array_foreach(ads, a, ad) {
      size_t k;
      const json_t *app;
      json_array_foreach(json_object_get(ad, "apps"), k, app) {
        const char *name = json_string_value(json_object_get(app, "name"));
        if (strcmp(name, want) == 0)
          found = true;
        size_t used = strlen(names);
        snprintf(names + used, sizeof names - used, "%s%s", used ? ", " : "",
                 name);
      }
    }
    if (!found) {
      v->depth = 0;
      path_push_key(v, "vhosts");
      path_push_idx(v, i);
      path_push_key(v, "app");
      return config_fail(v, v->depth, false,
                         "no app is named \"%s\" (configured: %s)", want,
                         names);
    }
  }
  return 0;
}

/* ---- extraction ---------------------------------------------------------- */

/* Copies the string member 'key' of 'obj' into '*out' (NULL when absent). */
static int dup_member(const json_t *obj, const char *key, char **out) {
  const json_t *s = json_object_get(obj, key);
  *out = NULL;
  if (!s)
    return 0;
  *out = gc_strdup(json_string_value(s));
  return *out ? 0 : ENOMEM;
}

static uint64_t uint_member(const json_t *obj, const char *key, uint64_t def) {
  const json_t *n = json_object_get(obj, key);
  return n ? (uint64_t)json_integer_value(n) : def;
}

/* "%p" becomes the process id, as in Game Carrier's "gcs.%p.log". */
static int expand_pid(const char *s, char **out) {
  char pid[24];
  int pn = snprintf(pid, sizeof pid, "%ld", (long)getpid());
  size_t count = 0;
  for (const char *p = s; (p = strstr(p, "%p")) != NULL; p += 2)
    count++;
  char *o = gc_malloc(strlen(s) + count * (size_t)pn + 1);
  if (!o)
    return ENOMEM;
  *out = o;
  for (const char *p = s; *p; p++) {
    if (p[0] == '%' && p[1] == 'p') {
      memcpy(o, pid, (size_t)pn);
      o += pn;
      p++;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return 0;
}

/* Fills 'cfg' from its validated root. Counts are set only once their
 * arrays exist, so gc_config_free can undo a partial extraction. */
static int config_extract(struct gc_config *cfg) {
  const json_t *root = cfg->root;
  const json_t *ads = json_object_get(root, "adapters");
  size_t na = json_array_size(ads);
  if (!(cfg->adapters = gc_calloc(na, sizeof *cfg->adapters)))
    return ENOMEM;
  cfg->adapter_count = na;
  int app_id = 0;
  for (size_t a = 0; a < na; a++) {
    const json_t *ad = json_array_get(ads, a);
    struct gc_adapter_conf *ac = &cfg->adapters[a];
    ac->id = (int)a;
    if (dup_member(ad, "type", &ac->type) || dup_member(ad, "dir", &ac->dir) ||
        dup_member(ad, "name", &ac->name))
      return ENOMEM;
    const json_t *apps = json_object_get(ad, "apps");
    size_t np = json_array_size(apps);
    if (!(ac->apps = gc_calloc(np, sizeof *ac->apps)))
      return ENOMEM;
    ac->app_count = np;
    for (size_t k = 0; k < np; k++) {
      json_t *app = json_array_get(apps, k);
      struct gc_app_conf *pc = &ac->apps[k];
      pc->id = app_id++;
      pc->json = app;
      if (dup_member(app, "name", &pc->name) ||
          dup_member(app, "type_name", &pc->type_name) ||
          dup_member(app, "file_name", &pc->file_name))
        return ENOMEM;
    }
  }
  const json_t *vhs = json_object_get(root, "vhosts");
  size_t nv = json_array_size(vhs);
  if (!(cfg->vhosts = gc_calloc(nv, sizeof *cfg->vhosts)))
    return ENOMEM;
  cfg->vhost_count = nv;
  for (size_t i = 0; i < nv; i++) {
    const json_t *vh = json_array_get(vhs, i);
    struct gc_vhost_conf *vc = &cfg->vhosts[i];
    const json_t *proto = json_object_get(vh, "protocol");
    vc->port = (int)json_integer_value(json_object_get(vh, "port"));
    vc->protocol = proto && strcmp(json_string_value(proto), "wss") == 0
                       ? GC_PROTOCOL_WSS
                       : GC_PROTOCOL_WS;
    if (dup_member(vh, "ip", &vc->ip) || dup_member(vh, "app", &vc->app))
      return ENOMEM;
  }
  const json_t *logging = json_object_get(root, "logging");
  const json_t *file = json_object_get(logging, "log_file");
  const json_t *level = json_object_get(logging, "level");
  cfg->log_level = GCL_NORMAL;
  if (level) {
    int rc = level_of(level, &cfg->log_level);
    if (rc)
      return rc; /* validated already: cannot happen */
  }
  if (file && *json_string_value(file)) {
    int rc = expand_pid(json_string_value(file), &cfg->log_file);
    if (rc)
      return rc;
  }
  cfg->max_connections = uint_member(root, "max_connections", 0);
  cfg->close_drain_ms = (uint32_t)uint_member(root, "close_drain_ms", 5000);
  /* libwebsockets allows 5 s per handshake step, 10 s with TLS. */
  cfg->handshake_timeout_ms =
      (uint32_t)uint_member(root, "handshake_timeout_ms", 10000);
  cfg->max_output_msg_size =
      uint_member(root, "max_output_msg_size", GC_DEFAULT_MAX_MSG_SIZE);
  if (cfg->max_output_msg_size == 0) /* no limit of its own */
    cfg->max_output_msg_size = GC_MSG_SIZE_HARD_MAX;
  cfg->message_timeout_ms =
      (uint32_t)uint_member(root, "message_timeout_ms", 30000);
  cfg->send_timeout_ms = (uint32_t)uint_member(root, "send_timeout_ms", 30000);
  cfg->max_buffered_bytes = uint_member(root, "max_buffered_bytes", UINT64_MAX);
  cfg->worker_count = (uint32_t)uint_member(
      json_object_get(root, "threading"), "worker_count", 1);
  return dup_member(root, "working_dir", &cfg->working_dir);
}

/* ---- entry points -------------------------------------------------------- */

int gc_config_check_serve(const struct gc_config *cfg, char *err,
                          size_t errlen) {
  for (size_t i = 0; i < cfg->vhost_count; i++) {
    const struct gc_vhost_conf *v = &cfg->vhosts[i];
    if (v->protocol != GC_PROTOCOL_WSS)
      continue;
    bool v6 = strchr(v->ip, ':') != NULL;
    snprintf(err, errlen,
             "vhosts[%zu] (%s%s%s:%d): protocol \"wss\" is not supported yet; "
             "use \"ws\" behind a TLS proxy",
             i, v6 ? "[" : "", v->ip, v6 ? "]" : "", v->port);
    return ENOTSUP;
  }
  return 0;
}

void gc_config_free(struct gc_config *cfg) {
  if (!cfg)
    return;
  for (size_t a = 0; a < cfg->adapter_count; a++) {
    struct gc_adapter_conf *ac = &cfg->adapters[a];
    for (size_t k = 0; k < ac->app_count; k++) {
      gc_free(ac->apps[k].name);
      gc_free(ac->apps[k].type_name);
      gc_free(ac->apps[k].file_name);
    }
    gc_free(ac->apps);
    gc_free(ac->type);
    gc_free(ac->dir);
    gc_free(ac->name);
  }
  gc_free(cfg->adapters);
  for (size_t i = 0; i < cfg->vhost_count; i++) {
    gc_free(cfg->vhosts[i].ip);
    gc_free(cfg->vhosts[i].app);
  }
  gc_free(cfg->vhosts);
  gc_free(cfg->log_file);
  gc_free(cfg->working_dir);
  json_decref(cfg->root);
  gc_free(cfg);
}

/* Loads 'len' bytes of 'text' (NUL-terminated at text[len]: the position
 * walk relies on it). */
static int config_load(const char *text, size_t len, const char *source,
                       struct gc_config **out, char *err, size_t errlen) {
  json_error_t je;
  json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    if (json_error_code(&je) == json_error_out_of_memory) {
      snprintf(err, errlen, "%s: out of memory", source);
      return ENOMEM;
    }
    snprintf(err, errlen, "%s:%d:%d: %s", source, je.line, je.column, je.text);
    return EINVAL;
  }
  struct vctx v = {.text = text, .source = source, .err = err, .errlen = errlen};
  int rc;
  if (!json_is_object(root)) {
    rc = fail_got(&v, root, "an object at the top");
  } else if ((rc = check_object(&v, root, root_keys)) == 0) {
    rc = check_cross(&v, root);
  }
  struct gc_config *cfg = NULL;
  if (rc == 0) {
    if (!(cfg = gc_calloc(1, sizeof *cfg))) {
      rc = ENOMEM;
    } else {
      cfg->root = root;
      root = NULL;
      rc = config_extract(cfg);
    }
  }
  if (rc == ENOMEM)
    snprintf(err, errlen, "%s: out of memory", source);
  else if (rc && errlen && !*err)
    snprintf(err, errlen, "%s: %s", source, strerror(rc));
  json_decref(root);
  if (rc) {
    gc_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

/* The common start of both loaders: an empty 'err' (a scratch byte when
 * NULL) and a NULL '*out'. EINVAL when 'out' is NULL. */
static int load_begin(char **err, size_t *errlen, char *scratch,
                      struct gc_config **out) {
  if (!*err) {
    *err = scratch;
    *errlen = 1;
  }
  if (*errlen)
    (*err)[0] = '\0';
  if (!out)
    return EINVAL;
  *out = NULL;
  return 0;
}

int gc_config_load_string(const char *json, const char *source_name,
                          struct gc_config **out, char *err, size_t errlen) {
  char scratch[1];
  if (load_begin(&err, &errlen, scratch, out) != 0)
    return EINVAL;
  if (!source_name)
    source_name = "config";
  if (!json) {
    snprintf(err, errlen, "%s: no text", source_name);
    return EINVAL;
  }
  return config_load(json, strlen(json), source_name, out, err, errlen);
}

int gc_config_load_file(const char *path, struct gc_config **out, char *err,
                        size_t errlen) {
  char scratch[1];
  if (load_begin(&err, &errlen, scratch, out) != 0)
    return EINVAL;
  if (!path) {
    snprintf(err, errlen, "cannot read the config: no path");
    return EINVAL;
  }
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  struct stat st;
  int rc = 0;
  if (fd < 0)
    rc = errno;
  else if (fstat(fd, &st) != 0)
    rc = errno;
  else if (S_ISDIR(st.st_mode))
    rc = EISDIR; /* open() takes a directory, read() would say EISDIR late */
  if (rc) {
    if (fd >= 0)
      close(fd);
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(rc));
    return rc;
  }
  char *text = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 1 >= cap) {
      if (cap >= CONFIG_MAX_BYTES) {
        rc = EFBIG;
        snprintf(err, errlen, "cannot read %s: larger than %u MiB", path,
                 CONFIG_MAX_BYTES >> 20);
        break;
      }
      size_t ncap = cap ? cap * 2 : 8192;
      char *t = gc_realloc(text, ncap);
      if (!t) {
        rc = ENOMEM;
        snprintf(err, errlen, "%s: out of memory", path);
        break;
      }
      text = t;
      cap = ncap;
    }
    ssize_t n = read(fd, text + len, cap - len - 1);
    if (n < 0 && errno == EINTR)
      continue;
    if (n < 0) {
      rc = errno;
      snprintf(err, errlen, "cannot read %s: %s", path, strerror(rc));
      break;
    }
    if (n == 0)
      break;
    len += (size_t)n;
  }
  close(fd);
  if (rc == 0) {
    text[len] = '\0';
    /* jansson reports a NUL byte with its position; the walk stops there
     * too, but only valid JSON (which has none) ever reaches the walk. */
    rc = config_load(text, len, path, out, err, errlen);
  }
  gc_free(text);
  return rc;
}
