/* config_schema.c - what a valid config is: the schema (every key, its
 * kind and range), checked over the parsed tree, then the rules that span
 * keys (native needs dir and name, lua apps need a script, app names are
 * unique, vhosts name real apps). Only the key path is tracked; a problem
 * is placed at line:column by gc__config_fail (config_path.c). */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <game-carrier/server.h>

#include "config_internal.h"
#include "conn_limits.h"
#include "log.h"
#include "redis_url.h"

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
  K_UINT_AUTO, /* an integer in min..max, or "auto" */
  K_BOOL,
  K_LEVEL,  /* a log level name (gc_log_level_parse) or 0..65535 */
  K_CHOICE, /* one of 'choices' */
  K_IP,     /* a numeric IPv4 or IPv6 address, as the listener parses it */
  K_ROUTE,  /* an app's route: "path" or "query.NAME" */
  K_REDIS_URL, /* redis://[[USER]:PASSWORD@]HOST[:PORT][/DB] (redis_url.h) */
  K_OBJECT, /* with the keys 'sub' */
  K_ARRAY,  /* non-empty, of objects with the keys 'sub' */
  K_FREE    /* an object whose content is not the host's to check:
             * "settings" (the game's), "lua" (the Lua adapter's) */
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
#define S_AUTO(k, lo, hi) {k, K_UINT_AUTO, 0, lo, hi, NULL, NULL, NULL}
#define S_ROUTE(k) {k, K_ROUTE, 0, 0, 0, NULL, NULL, NULL}
#define S_REDIS_URL(k, f) {k, K_REDIS_URL, f, 0, 0, NULL, NULL, NULL}
#define S_BOOL(k) {k, K_BOOL, 0, 0, 0, NULL, NULL, NULL}
#define S_LEVEL(k) {k, K_LEVEL, 0, 0, 0, NULL, NULL, NULL}
#define S_CHOICE(k, f, c) {k, K_CHOICE, f, 0, 0, c, NULL, NULL}
#define S_IP(k, f) {k, K_IP, f, 0, 0, NULL, NULL, NULL}
#define S_OBJ(k, sub) {k, K_OBJECT, 0, 0, 0, NULL, sub, NULL}
#define S_ARR(k, f, sub) {k, K_ARRAY, f, 0, 0, NULL, sub, NULL}
#define S_NONZERO(k, hi, why) {k, K_UINT, 0, 1, hi, NULL, NULL, why}
#define S_FREE(k) {k, K_FREE, 0, 0, 0, NULL, NULL, NULL}
#define S_END {NULL, K_STRING, 0, 0, 0, NULL, NULL, NULL}

static const char *const adapter_types[] = {"native", "lua", NULL};
static const char *const protocols[] = {"ws", "wss", NULL};
static const char *const message_types[] = {"text", "binary", NULL};
static const char *const log_formats[] = {"text", "json", NULL};

static const struct key_spec limits_keys[] = {
    S_UINT("msg_per_second"), S_UINT("kbytes_per_second"),
    S_RANGE("max_msg_size", 0, 0, GC_MSG_SIZE_HARD_MAX),
    S_UINT("output_queue_size"), S_END};
/* "lua" (root and app entry) is the Lua adapter's own object: the adapter
 * checks its keys (bindings/options.c), with their place in the text. */
static const struct key_spec app_keys[] = {
    S_STR("name", F_REQUIRED | F_NONEMPTY), S_STR("type_name", 0),
    S_STR("file_name", 0), S_OBJ("conn_notice", limits_keys),
    S_OBJ("conn_critical", limits_keys), S_FREE("lua"),
    S_ROUTE("route"),
    S_CHOICE("message_type", 0, message_types),
    S_FREE("settings"),
    S_END};
static const struct key_spec adapter_keys[] = {
    S_CHOICE("type", F_REQUIRED, adapter_types), S_STR("dir", 0),
    S_STR("name", F_NONEMPTY), S_ARR("apps", F_REQUIRED, app_keys),
    S_FREE("settings"), S_END};
static const struct key_spec vhost_keys[] = {
    S_IP("ip", F_REQUIRED), S_RANGE("port", F_REQUIRED, 0, 65535),
    S_CHOICE("protocol", 0, protocols), S_STR("app", F_REQUIRED | F_NONEMPTY),
    S_STR("ssl_keys_path", 0), S_END};
static const struct key_spec logging_keys[] = {
    S_STR("log_file", 0), S_LEVEL("level"),
    S_RANGE("conn_lines_per_second", 0, 0, UINT32_MAX),
    S_CHOICE("format", 0, log_formats), S_END};
/* Seconds; the host multiplies them by 1000 in 64 bits. A ping interval or
 * a number of pings cannot be "off": timeout 0 turns keep-alive off. */
#define KA_OFF "keep-alive is turned off with \"timeout\": 0"
static const struct key_spec keep_alive_keys[] = {
    S_RANGE("timeout", 0, 0, UINT32_MAX), S_NONZERO("retries", UINT32_MAX, KA_OFF),
    S_NONZERO("interval", UINT32_MAX, KA_OFF), S_END};
static const struct key_spec threading_keys[] = {
    S_AUTO("worker_count", 1, GC_WORKER_COUNT_MAX), S_BOOL("use_libuv"),
    S_END};
static const struct key_spec admin_keys[] = {
    S_IP("ip", F_REQUIRED), S_RANGE("port", F_REQUIRED, 0, 65535), S_END};
/* "redis": the Redis of gc.publish between hosts (and of gc.redis). */
static const struct key_spec redis_keys[] = {
    S_REDIS_URL("url", F_REQUIRED), S_RANGE("timeout_ms", 0, 0, UINT32_MAX),
    S_END};
/* "http": the TLS of httpRequest's https (http_tls.c). */
static const struct key_spec http_keys[] = {
    S_STR("ca_file", F_NONEMPTY), S_BOOL("verify"), S_END};
/* "s2s": how wss links (s2sCreate, gc.connect) check the peer. */
static const struct key_spec s2s_keys[] = {
    S_STR("ca_file", F_NONEMPTY), S_BOOL("verify"), S_END};
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
    S_OBJ("admin", admin_keys),
    S_RANGE("drain_s", 0, 0, 86400),
    S_OBJ("redis", redis_keys),
    S_OBJ("http", http_keys),
    S_OBJ("s2s", s2s_keys),
    S_BOOL("io_uring"),
    S_FREE("lua"),
    S_FREE("settings"),
    S_END};

/* The mask of a valid "logging.level" value: 0 or EINVAL. */
int gc__config_level_of(const json_t *val, int *mask) {
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

/* Query parameter names a route may use: URL-safe characters (RFC 3986's
 * "unreserved"), which need no percent-decoding to be compared. */
static bool route_param_char(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
         (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '~' ||
         c == '-';
}

int gc__config_route_of(const json_t *val, enum gc_route *route,
                        const char **param) {
  if (!json_is_string(val))
    return EINVAL;
  const char *s = json_string_value(val);
  size_t n = json_string_length(val);
  if (n == 4 && memcmp(s, "path", 4) == 0) {
    *route = GC_ROUTE_PATH;
    *param = NULL;
    return 0;
  }
  static const char prefix[] = "query.";
  size_t pn = sizeof prefix - 1;
  if (n <= pn || n - pn > GC_ROUTE_PARAM_MAX || memcmp(s, prefix, pn) != 0)
    return EINVAL;
  for (size_t i = pn; i < n; i++)
    if (!route_param_char(s[i]))
      return EINVAL;
  *route = GC_ROUTE_QUERY;
  *param = s + pn;
  return 0;
}

static int check_object(struct gc_config_ctx *v, const json_t *obj,
                        const struct key_spec *keys);

/* Fails with "expected <what>, got <the value>" at v->path. */
static int fail_got(const struct gc_config_ctx *v, const json_t *val,
                    const char *what) {
  char got[GC_CONFIG_DESCRIBE_MAX + 16];
  gc__config_describe(val, got, sizeof got);
  return gc__config_fail(v, v->depth, false, "expected %s, got %s", what, got);
}

/* A K_UINT or K_UINT_AUTO integer in ks->min..ks->max. */
static bool in_range(const json_t *val, const struct key_spec *ks) {
  return json_is_integer(val) && json_integer_value(val) >= 0 &&
         (uint64_t)json_integer_value(val) >= ks->min &&
         (uint64_t)json_integer_value(val) <= ks->max;
}

/* Checks the value at v->path against 'ks'. */
static int check_value(struct gc_config_ctx *v, const json_t *val,
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
    if (in_range(val, ks))
      return 0;
    if (ks->min == 0 && ks->max == JSON_UINT_MAX)
      return fail_got(v, val, "a non-negative integer");
    snprintf(what, sizeof what, "an integer %llu..%llu",
             (unsigned long long)ks->min, (unsigned long long)ks->max);
    if (ks->zero_hint && json_is_integer(val) && json_integer_value(val) == 0)
      return gc__config_fail(v, v->depth, false, "expected %s, got 0 (%s)",
                             what, ks->zero_hint);
    return fail_got(v, val, what);
  case K_UINT_AUTO:
    if (in_range(val, ks) ||
        (json_is_string(val) && strcmp(json_string_value(val), "auto") == 0))
      return 0;
    snprintf(what, sizeof what, "an integer %llu..%llu or \"auto\"",
             (unsigned long long)ks->min, (unsigned long long)ks->max);
    return fail_got(v, val, what);
  case K_BOOL:
    return json_is_boolean(val) ? 0 : fail_got(v, val, "true or false");
  case K_LEVEL: {
    int mask;
    if (gc__config_level_of(val, &mask) == 0)
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
  case K_ROUTE: {
    enum gc_route route;
    const char *param;
    if (gc__config_route_of(val, &route, &param) == 0)
      return 0;
    char got[GC_CONFIG_DESCRIBE_MAX + 16];
    gc__config_describe(val, got, sizeof got);
    bool query = json_is_string(val) &&
                 strncmp(json_string_value(val), "query.", 6) == 0;
    char name_rule[64] = "";
    if (query) /* say what NAME may be */
      snprintf(name_rule, sizeof name_rule,
               " with NAME 1..%d of A-Z a-z 0-9 _ . ~ -", GC_ROUTE_PARAM_MAX);
    return gc__config_fail(v, v->depth, false,
                           "%s is not a route; use \"path\" or "
                           "\"query.NAME\"%s (e.g. \"query.room\")",
                           got, name_rule);
  }
  case K_REDIS_URL: {
    struct gc_redis_url url;
    char why[192];
    if (!json_is_string(val))
      return fail_got(v, val, "a string");
    if (gc_redis_url_parse(json_string_value(val), &url, why, sizeof why) == 0)
      return 0;
    return gc__config_fail(v, v->depth, false, "%s", why);
  }
  case K_OBJECT:
    if (!json_is_object(val))
      return fail_got(v, val, "an object");
    return check_object(v, val, ks->sub);
  case K_FREE:
    return json_is_object(val) ? 0 : fail_got(v, val, "an object");
  case K_ARRAY: {
    if (!json_is_array(val) || json_array_size(val) == 0)
      return fail_got(v, val, "a non-empty array");
    size_t i;
    const json_t *el;
    json_array_foreach(val, i, el) {
      gc__config_path_push_idx(v, i);
      int rc = json_is_object(el) ? check_object(v, el, ks->sub)
                                  : fail_got(v, el, "an object");
      gc__config_path_pop(v);
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
static int check_object(struct gc_config_ctx *v, const json_t *obj,
                        const struct key_spec *keys) {
  const char *key;
  const json_t *val;
  json_object_foreach((json_t *)obj, key, val) {
    gc__config_path_push_key(v, key);
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
        rc = gc__config_fail(v, v->depth - 1, true,
                             "unknown key \"%s\" (did you mean \"%s\"?)", key,
                             best->key);
      else
        rc = gc__config_fail(v, v->depth - 1, true, "unknown key \"%s\"", key);
    }
    gc__config_path_pop(v);
    if (rc)
      return rc;
  }
  for (const struct key_spec *ks = keys; ks->key; ks++)
    if ((ks->flags & F_REQUIRED) && !json_object_get(obj, ks->key))
      return gc__config_fail(v, v->depth, false, "missing required key \"%s\"",
                             ks->key);
  return 0;
}

/* ---- cross-checks -------------------------------------------------------- */

/* Sets v->path to adapters[a] (.apps[k] when k != SIZE_MAX) (.key). */
static void path_set_app(struct gc_config_ctx *v, size_t a, size_t k,
                         const char *key) {
  v->depth = 0;
  gc__config_path_push_key(v, "adapters");
  gc__config_path_push_idx(v, a);
  if (k != SIZE_MAX) {
    gc__config_path_push_key(v, "apps");
    gc__config_path_push_idx(v, k);
  }
  if (key)
    gc__config_path_push_key(v, key);
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
static int check_cross(struct gc_config_ctx *v, const json_t *root) {
  const json_t *ads = json_object_get(root, "adapters");
  size_t a;
  const json_t *ad;
  json_array_foreach(ads, a, ad) {
    bool native =
        strcmp(json_string_value(json_object_get(ad, "type")), "native") == 0;
    /* The library is <dir>/lib<name>.so: both halves are needed. */
    static const char *const native_keys[] = {"dir", "name"};
    for (size_t i = 0; native && i < 2; i++)
      if (!json_object_get(ad, native_keys[i])) {
        path_set_app(v, a, SIZE_MAX, NULL);
        return gc__config_fail(v, v->depth, false,
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
        return gc__config_fail(v, v->depth, false,
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
        return gc__config_fail(v, v->depth, false,
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
      gc__config_path_push_key(v, "vhosts");
      gc__config_path_push_idx(v, i);
      gc__config_path_push_key(v, "app");
      return gc__config_fail(v, v->depth, false,
                             "no app is named \"%s\" (configured: %s)", want,
                             names);
    }
  }
  return 0;
}

/* ---- entry --------------------------------------------------------------- */

int gc__config_validate(struct gc_config_ctx *v, const json_t *root) {
  if (!json_is_object(root))
    return fail_got(v, root, "an object at the top");
  int rc = check_object(v, root, root_keys);
  return rc ? rc : check_cross(v, root);
}
