/* config.c - loading and validating the JSON config.
 *
 * jansson parses (and reports syntax errors with line and column); a small
 * second pass over the text records where every key and value sits, so a
 * validation error can point at its line and column too (jansson keeps no
 * positions for values). Validation follows one table per object kind:
 * unknown keys and bad values are errors, "comment" is allowed anywhere. */
#include "config.h"

#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <game-carrier/server.h>

#include "alloc.h"
#include "log.h"

/* ---- positions of keys and values in the text ---------------------------- */

/* "base.key", or "base[idx]" when key is NULL. A path too long for 'out'
 * (a config nested absurdly deep) is cut: it only names a place. */
static void path_child(char *out, size_t n, const char *base, const char *key,
                       size_t idx) {
  int w = key ? snprintf(out, n, "%s%s%s", base, *base ? "." : "", key)
              : snprintf(out, n, "%s[%zu]", base, idx);
  if (w < 0 || (size_t)w >= n)
    out[n - 1] = '\0';
}


struct pos {
  char *path;
  int key_line, key_col; /* 0 for array elements and the root */
  int line, col;         /* of the value */
};

struct scan {
  const char *s;
  int line, col;
  struct pos *v;
  size_t n, cap;
  int oom;
};

static void sc_adv(struct scan *sc) {
  if (*sc->s == '\n') {
    sc->line++;
    sc->col = 1;
  } else {
    sc->col++;
  }
  sc->s++;
}

static void sc_ws(struct scan *sc) {
  while (*sc->s == ' ' || *sc->s == '\t' || *sc->s == '\n' || *sc->s == '\r')
    sc_adv(sc);
}

static void sc_string(struct scan *sc, char *out, size_t outlen) {
  size_t n = 0;
  sc_adv(sc); /* opening quote */
  while (*sc->s && *sc->s != '"') {
    if (*sc->s == '\\') {
      sc_adv(sc);
      if (!*sc->s)
        break;
    }
    if (out && n + 1 < outlen)
      out[n++] = *sc->s;
    sc_adv(sc);
  }
  if (*sc->s)
    sc_adv(sc);
  if (out)
    out[n] = '\0';
}

static void sc_record(struct scan *sc, const char *path, int kl, int kc) {
  if (sc->n == sc->cap) {
    size_t cap = sc->cap ? sc->cap * 2 : 64;
    struct pos *v = gc_realloc(sc->v, cap * sizeof *v);
    if (!v) {
      sc->oom = 1;
      return;
    }
    sc->v = v;
    sc->cap = cap;
  }
  char *p = gc_strdup(path);
  if (!p) {
    sc->oom = 1;
    return;
  }
  sc->v[sc->n++] = (struct pos){p, kl, kc, sc->line, sc->col};
}

/* The text is valid JSON (jansson said so): no error handling needed. */
static void sc_value(struct scan *sc, const char *path, int kl, int kc, int depth) {
  sc_ws(sc);
  sc_record(sc, path, kl, kc);
  if (depth > 64)
    return;
  char sub[512];
  if (*sc->s == '{') {
    sc_adv(sc);
    sc_ws(sc);
    while (*sc->s && *sc->s != '}') {
      char key[256];
      int l = sc->line, c = sc->col;
      sc_string(sc, key, sizeof key);
      sc_ws(sc);
      sc_adv(sc); /* ':' */
      path_child(sub, sizeof sub, path, key, 0);
      sc_value(sc, sub, l, c, depth + 1);
      sc_ws(sc);
      if (*sc->s == ',') {
        sc_adv(sc);
        sc_ws(sc);
      }
    }
    if (*sc->s)
      sc_adv(sc);
  } else if (*sc->s == '[') {
    sc_adv(sc);
    sc_ws(sc);
    for (size_t i = 0; *sc->s && *sc->s != ']'; i++) {
      path_child(sub, sizeof sub, path, NULL, i);
      sc_value(sc, sub, 0, 0, depth + 1);
      sc_ws(sc);
      if (*sc->s == ',') {
        sc_adv(sc);
        sc_ws(sc);
      }
    }
    if (*sc->s)
      sc_adv(sc);
  } else if (*sc->s == '"') {
    sc_string(sc, NULL, 0);
  } else {
    while (*sc->s && !strchr(",]} \t\r\n", *sc->s))
      sc_adv(sc);
  }
}

static void sc_free(struct scan *sc) {
  for (size_t i = 0; i < sc->n; i++)
    gc_free(sc->v[i].path);
  gc_free(sc->v);
}

/* ---- validation ---------------------------------------------------------- */

enum kind { K_STR, K_UINT, K_PORT, K_BOOL, K_LEVEL, K_OBJ, K_ARR, K_PROTO, K_ATYPE };

struct spec {
  const char *key;
  enum kind kind;
  const struct spec *sub; /* K_OBJ: its keys; K_ARR: its elements' keys */
  int required;
};

static const struct spec limits_spec[] = {{"msg_per_second", K_UINT, NULL, 0},
                                          {"kbytes_per_second", K_UINT, NULL, 0},
                                          {"max_msg_size", K_UINT, NULL, 0},
                                          {"output_queue_size", K_UINT, NULL, 0},
                                          {NULL, 0, NULL, 0}};
static const struct spec lua_spec[] = {{"instruction_budget", K_UINT, NULL, 0},
                                       {"memory_limit", K_UINT, NULL, 0},
                                       {"path", K_STR, NULL, 0},
                                       {NULL, 0, NULL, 0}};
static const struct spec app_spec[] = {{"name", K_STR, NULL, 1},
                                       {"type_name", K_STR, NULL, 0},
                                       {"file_name", K_STR, NULL, 0},
                                       {"conn_notice", K_OBJ, limits_spec, 0},
                                       {"conn_critical", K_OBJ, limits_spec, 0},
                                       {"lua", K_OBJ, lua_spec, 0},
                                       {NULL, 0, NULL, 0}};
static const struct spec adapter_spec[] = {{"type", K_ATYPE, NULL, 1},
                                           {"dir", K_STR, NULL, 0},
                                           {"name", K_STR, NULL, 0},
                                           {"apps", K_ARR, app_spec, 1},
                                           {NULL, 0, NULL, 0}};
static const struct spec vhost_spec[] = {{"ip", K_STR, NULL, 1},
                                         {"port", K_PORT, NULL, 1},
                                         {"protocol", K_PROTO, NULL, 0},
                                         {"app", K_STR, NULL, 1},
                                         {NULL, 0, NULL, 0}};
static const struct spec logging_spec[] = {{"log_file", K_STR, NULL, 0},
                                           {"level", K_LEVEL, NULL, 0},
                                           {NULL, 0, NULL, 0}};
static const struct spec keepalive_spec[] = {{"timeout", K_UINT, NULL, 0},
                                             {"retries", K_UINT, NULL, 0},
                                             {"interval", K_UINT, NULL, 0},
                                             {NULL, 0, NULL, 0}};
static const struct spec threading_spec[] = {{"worker_count", K_UINT, NULL, 0},
                                             {"use_libuv", K_BOOL, NULL, 0},
                                             {NULL, 0, NULL, 0}};
static const struct spec counters_spec[] = {{"per_second_window", K_UINT, NULL, 0},
                                            {"update_interval", K_UINT, NULL, 0},
                                            {NULL, 0, NULL, 0}};
static const struct spec root_spec[] = {
    {"server_name", K_STR, NULL, 0},       {"ssl_keys_path", K_STR, NULL, 0},
    {"auth_file", K_STR, NULL, 0},         {"working_dir", K_STR, NULL, 0},
    {"extra_adapters", K_STR, NULL, 0},    {"max_connections", K_UINT, NULL, 0},
    {"max_client_connections", K_UINT, NULL, 0},
    {"adapters", K_ARR, adapter_spec, 1},  {"vhosts", K_ARR, vhost_spec, 1},
    {"logging", K_OBJ, logging_spec, 0},   {"keep_alive", K_OBJ, keepalive_spec, 0},
    {"threading", K_OBJ, threading_spec, 0}, {"counters", K_OBJ, counters_spec, 0},
    {"group_max_size", K_UINT, NULL, 0},   {"max_groups", K_UINT, NULL, 0},
    {"conn_notice", K_OBJ, limits_spec, 0}, {"conn_critical", K_OBJ, limits_spec, 0},
    {"close_drain_ms", K_UINT, NULL, 0},   {"handshake_timeout_ms", K_UINT, NULL, 0},
    {"lua", K_OBJ, lua_spec, 0},           {NULL, 0, NULL, 0}};

struct vctx {
  const char *source;
  struct scan *sc;
  char *err;
  size_t errlen;
};

static const struct pos *pos_of(const struct vctx *v, const char *path) {
  for (size_t i = 0; i < v->sc->n; i++)
    if (strcmp(v->sc->v[i].path, path) == 0)
      return &v->sc->v[i];
  return NULL;
}

/* Formats "<source>:<line>:<col>: <path>: <message>"; 'at_key' points at
 * the key rather than its value. Returns EINVAL for the caller. */
static int verr(const struct vctx *v, const char *path, int at_key,
                const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int verr(const struct vctx *v, const char *path, int at_key,
                const char *fmt, ...) {
  char msg[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  const struct pos *p = pos_of(v, path);
  int line = p ? (at_key && p->key_line ? p->key_line : p->line) : 1;
  int col = p ? (at_key && p->key_line ? p->key_col : p->col) : 1;
  snprintf(v->err, v->errlen, "%s:%d:%d: %s%s%s", v->source, line, col, path,
           *path ? ": " : "", msg);
  return EINVAL;
}

static const char *type_name(const json_t *j) {
  switch (json_typeof(j)) {
  case JSON_OBJECT: return "an object";
  case JSON_ARRAY: return "an array";
  case JSON_STRING: return "a string";
  case JSON_INTEGER: return "an integer";
  case JSON_REAL: return "a number";
  case JSON_TRUE:
  case JSON_FALSE: return "a boolean";
  default: return "null";
  }
}

static int validate_obj(const struct vctx *v, const json_t *obj, const char *path,
                        const struct spec *specs);

static int validate_value(const struct vctx *v, const json_t *val,
                          const char *path, const struct spec *sp) {
  switch (sp->kind) {
  case K_STR:
    if (!json_is_string(val))
      return verr(v, path, 0, "expected a string, got %s", type_name(val));
    return 0;
  case K_UINT:
    if (!json_is_integer(val) || json_integer_value(val) < 0)
      return verr(v, path, 0, "expected a non-negative integer, got %s",
                  json_is_integer(val) ? "a negative one" : type_name(val));
    return 0;
  case K_PORT:
    if (!json_is_integer(val) || json_integer_value(val) < 1 ||
        json_integer_value(val) > 65535)
      return verr(v, path, 0, "expected an integer 1..65535, got %s",
                  json_is_integer(val) ? "one out of range" : type_name(val));
    return 0;
  case K_BOOL:
    if (!json_is_boolean(val))
      return verr(v, path, 0, "expected true or false, got %s", type_name(val));
    return 0;
  case K_LEVEL: {
    int mask;
    if (json_is_integer(val) && json_integer_value(val) >= 0)
      return 0;
    if (json_is_string(val) && gc_log_level_parse(json_string_value(val), &mask) == 0)
      return 0;
    return verr(v, path, 0,
                "expected a level (ERR, WARN, NOTICE, INFO, DEBUG, USER, NORMAL, "
                "VERBOSE, joined with '|') or a number");
  }
  case K_PROTO:
    if (!json_is_string(val) || (strcmp(json_string_value(val), "ws") != 0 &&
                                 strcmp(json_string_value(val), "wss") != 0))
      return verr(v, path, 0, "expected \"ws\" or \"wss\"");
    return 0;
  case K_ATYPE:
    if (!json_is_string(val))
      return verr(v, path, 0, "expected \"native\" or \"lua\", got %s", type_name(val));
    if (strcmp(json_string_value(val), "native") != 0 &&
        strcmp(json_string_value(val), "lua") != 0)
      return verr(v, path, 0,
                  "adapter type \"%s\" is not supported (\"native\" or \"lua\")",
                  json_string_value(val));
    return 0;
  case K_OBJ:
    if (!json_is_object(val))
      return verr(v, path, 0, "expected an object, got %s", type_name(val));
    return validate_obj(v, val, path, sp->sub);
  case K_ARR: {
    if (!json_is_array(val))
      return verr(v, path, 0, "expected an array, got %s", type_name(val));
    if (json_array_size(val) == 0)
      return verr(v, path, 0, "must not be empty");
    size_t i;
    const json_t *el;
    json_array_foreach(val, i, el) {
      char sub[512];
      path_child(sub, sizeof sub, path, NULL, i);
      if (!json_is_object(el))
        return verr(v, sub, 0, "expected an object, got %s", type_name(el));
      int rc = validate_obj(v, el, sub, sp->sub);
      if (rc)
        return rc;
    }
    return 0;
  }
  }
  return 0;
}

static int validate_obj(const struct vctx *v, const json_t *obj, const char *path,
                        const struct spec *specs) {
  const char *key;
  const json_t *val;
  char sub[512];
  json_object_foreach((json_t *)obj, key, val) {
    path_child(sub, sizeof sub, path, key, 0);
    if (strcmp(key, "comment") == 0) {
      if (!json_is_string(val))
        return verr(v, sub, 0, "a comment must be a string");
      continue;
    }
    const struct spec *sp = specs;
    while (sp->key && strcmp(sp->key, key) != 0)
      sp++;
    if (!sp->key)
      return verr(v, sub, 1, "unknown key \"%s\"", key);
    int rc = validate_value(v, val, sub, sp);
    if (rc)
      return rc;
  }
  for (const struct spec *sp = specs; sp->key; sp++)
    if (sp->required && !json_object_get(obj, sp->key))
      return verr(v, path, 0, "missing required key \"%s\"", sp->key);
  return 0;
}

/* ---- extraction ---------------------------------------------------------- */

static char *dup_opt(const json_t *obj, const char *key) {
  const json_t *v = json_object_get(obj, key);
  return v ? gc_strdup(json_string_value(v)) : NULL;
}

static uint64_t uint_opt(const json_t *obj, const char *key, uint64_t def) {
  const json_t *v = json_object_get(obj, key);
  return v ? (uint64_t)json_integer_value(v) : def;
}

/* "%p" becomes the process id, as Game Carrier does. */
static char *expand_pid(const char *s) {
  size_t n = strlen(s);
  char *out = gc_malloc(n * 8 + 1);
  if (!out)
    return NULL;
  char *o = out;
  for (const char *p = s; *p; p++) {
    if (p[0] == '%' && p[1] == 'p') {
      o += sprintf(o, "%ld", (long)getpid());
      p++;
    } else {
      *o++ = *p;
    }
  }
  *o = '\0';
  return out;
}

static int extract(struct gc_config *cfg, const struct vctx *v) {
  const json_t *root = cfg->root;
  const json_t *ads = json_object_get(root, "adapters");
  cfg->adapter_count = json_array_size(ads);
  cfg->adapters = gc_calloc(cfg->adapter_count, sizeof *cfg->adapters);
  if (!cfg->adapters)
    return ENOMEM;
  int app_id = 0;
  for (size_t i = 0; i < cfg->adapter_count; i++) {
    const json_t *a = json_array_get(ads, i);
    struct gc_adapter_conf *ac = &cfg->adapters[i];
    char path[128];
    ac->id = (int)i;
    ac->type = dup_opt(a, "type");
    ac->dir = dup_opt(a, "dir");
    ac->name = dup_opt(a, "name");
    const json_t *apps = json_object_get(a, "apps");
    ac->app_count = json_array_size(apps);
    ac->apps = gc_calloc(ac->app_count, sizeof *ac->apps);
    if (!ac->type || !ac->apps)
      return ENOMEM;
    int native = strcmp(ac->type, "native") == 0;
    if (native && !ac->name) {
      snprintf(path, sizeof path, "adapters[%zu]", i);
      return verr(v, path, 0, "a native adapter needs \"name\" (its library is "
                              "<dir>/lib<name>.so)");
    }
    for (size_t k = 0; k < ac->app_count; k++) {
      json_t *p = json_array_get(apps, k);
      struct gc_app_conf *app = &ac->apps[k];
      app->id = app_id++;
      app->json = p;
      app->name = dup_opt(p, "name");
      app->type_name = dup_opt(p, "type_name");
      app->file_name = dup_opt(p, "file_name");
      if (!app->name)
        return ENOMEM;
      snprintf(path, sizeof path, "adapters[%zu].apps[%zu]", i, k);
      if (!native && !app->file_name)
        return verr(v, path, 0, "a lua app needs \"file_name\" (its script)");
      if (!*app->name)
        return verr(v, path, 0, "\"name\" must not be empty");
      /* Names are unique: clients and vhosts address apps by name. */
      for (size_t pi = 0; pi <= i; pi++)
        for (size_t pk = 0; pk < (pi == i ? k : cfg->adapters[pi].app_count); pk++)
          if (strcmp(cfg->adapters[pi].apps[pk].name, app->name) == 0) {
            char prev[128];
            snprintf(prev, sizeof prev, "adapters[%zu].apps[%zu]", pi, pk);
            const struct pos *pp = pos_of(v, prev);
            char at[300];
            snprintf(path, sizeof path, "adapters[%zu].apps[%zu].name", i, k);
            snprintf(at, sizeof at, "duplicate app name \"%s\" (also %s at line %d)",
                     app->name, prev, pp ? pp->line : 0);
            return verr(v, path, 0, "%s", at);
          }
    }
  }
  const json_t *vhs = json_object_get(root, "vhosts");
  cfg->vhost_count = json_array_size(vhs);
  cfg->vhosts = gc_calloc(cfg->vhost_count, sizeof *cfg->vhosts);
  if (!cfg->vhosts)
    return ENOMEM;
  for (size_t i = 0; i < cfg->vhost_count; i++) {
    const json_t *vh = json_array_get(vhs, i);
    struct gc_vhost_conf *vc = &cfg->vhosts[i];
    vc->ip = dup_opt(vh, "ip");
    vc->app = dup_opt(vh, "app");
    vc->port = (int)json_integer_value(json_object_get(vh, "port"));
    const json_t *proto = json_object_get(vh, "protocol");
    vc->protocol = proto && strcmp(json_string_value(proto), "wss") == 0
                       ? GC_PROTOCOL_WSS
                       : GC_PROTOCOL_WS;
    if (!vc->ip || !vc->app)
      return ENOMEM;
    int found = 0;
    for (size_t a = 0; a < cfg->adapter_count && !found; a++)
      for (size_t k = 0; k < cfg->adapters[a].app_count; k++)
        if (strcmp(cfg->adapters[a].apps[k].name, vc->app) == 0)
          found = 1;
    if (!found) {
      char path[64];
      snprintf(path, sizeof path, "vhosts[%zu].app", i);
      return verr(v, path, 0, "no app is named \"%s\"", vc->app);
    }
  }
  const json_t *logging = json_object_get(root, "logging");
  cfg->log_level = GCL_NORMAL;
  if (logging) {
    const json_t *lf = json_object_get(logging, "log_file");
    if (lf && *json_string_value(lf) && !(cfg->log_file = expand_pid(json_string_value(lf))))
      return ENOMEM;
    const json_t *lv = json_object_get(logging, "level");
    if (lv && json_is_integer(lv))
      cfg->log_level = (int)json_integer_value(lv);
    else if (lv)
      (void)gc_log_level_parse(json_string_value(lv), &cfg->log_level);
  }
  cfg->max_connections = uint_opt(root, "max_connections", 0);
  uint64_t drain = uint_opt(root, "close_drain_ms", 5000);
  cfg->close_drain_ms = drain > 3600000 ? 3600000 : (uint32_t)drain;
  const json_t *th = json_object_get(root, "threading");
  uint64_t workers = th ? uint_opt(th, "worker_count", 1) : 1;
  cfg->worker_count = workers < 1 ? 1 : workers > 64 ? 64 : (uint32_t)workers;
  return 0;
}

/* ---- entry points -------------------------------------------------------- */

void gc_config_free(struct gc_config *cfg) {
  if (!cfg)
    return;
  for (size_t i = 0; i < cfg->adapter_count; i++) {
    struct gc_adapter_conf *a = &cfg->adapters[i];
    gc_free(a->type);
    gc_free(a->dir);
    gc_free(a->name);
    for (size_t k = 0; a->apps && k < a->app_count; k++) {
      gc_free(a->apps[k].name);
      gc_free(a->apps[k].type_name);
      gc_free(a->apps[k].file_name);
    }
    gc_free(a->apps);
  }
  gc_free(cfg->adapters);
  for (size_t i = 0; cfg->vhosts && i < cfg->vhost_count; i++) {
    gc_free(cfg->vhosts[i].ip);
    gc_free(cfg->vhosts[i].app);
  }
  gc_free(cfg->vhosts);
  gc_free(cfg->log_file);
  json_decref(cfg->root);
  gc_free(cfg);
}

int gc_config_load_string(const char *json, const char *source_name,
                          struct gc_config **out, char *err, size_t errlen) {
  *out = NULL;
  json_error_t je;
  json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
  if (!root) {
    snprintf(err, errlen, "%s:%d:%d: %s", source_name, je.line, je.column, je.text);
    return EINVAL;
  }
  struct scan sc = {.s = json, .line = 1, .col = 1};
  sc_value(&sc, "", 0, 0, 0);
  struct vctx v = {source_name, &sc, err, errlen};
  struct gc_config *cfg = NULL;
  int rc;
  if (sc.oom) {
    rc = ENOMEM;
  } else if (!json_is_object(root)) {
    rc = verr(&v, "", 0, "the config must be a JSON object");
  } else if ((rc = validate_obj(&v, root, "", root_spec)) == 0) {
    cfg = gc_calloc(1, sizeof *cfg);
    if (!cfg) {
      rc = ENOMEM;
    } else {
      cfg->root = root;
      root = NULL;
      rc = extract(cfg, &v);
    }
  }
  if (rc == ENOMEM)
    snprintf(err, errlen, "%s: out of memory", source_name);
  sc_free(&sc);
  json_decref(root);
  if (rc) {
    gc_config_free(cfg);
    return rc;
  }
  *out = cfg;
  return 0;
}

int gc_config_load_file(const char *path, struct gc_config **out, char *err,
                        size_t errlen) {
  *out = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    int e = errno;
    snprintf(err, errlen, "cannot read %s: %s", path, strerror(e));
    return e ? e : EIO;
  }
  char *text = NULL;
  size_t len = 0, cap = 0;
  for (;;) {
    if (len + 4096 + 1 > cap) {
      cap = cap ? cap * 2 : 8192;
      if (cap > (64u << 20)) {
        fclose(f);
        gc_free(text);
        snprintf(err, errlen, "%s: config larger than 64 MiB", path);
        return EFBIG;
      }
      char *t = gc_realloc(text, cap);
      if (!t) {
        fclose(f);
        gc_free(text);
        snprintf(err, errlen, "%s: out of memory", path);
        return ENOMEM;
      }
      text = t;
    }
    size_t n = fread(text + len, 1, cap - len - 1, f);
    len += n;
    if (n == 0)
      break;
  }
  int rerr = ferror(f);
  fclose(f);
  if (rerr) {
    gc_free(text);
    snprintf(err, errlen, "cannot read %s: read error", path);
    return EIO;
  }
  text[len] = '\0';
  if (strlen(text) != len) {
    gc_free(text);
    snprintf(err, errlen, "%s: the file contains a NUL byte", path);
    return EINVAL;
  }
  int rc = gc_config_load_string(text, path, out, err, errlen);
  gc_free(text);
  return rc;
}
