/* config_getopt.c - getOpt (GetOpt in server.h) over the loaded config.
 *
 * A path is keys separated by dots, each key followed by any number of
 * "[n]": "adapters[0].apps[1].name". A final "len" that is not a key of its
 * container is the size of that array or object ("vhosts.len"). The whole
 * path is checked for form first, so a malformed path is EINVAL whether or
 * not a prefix of it exists; then it is walked in place, allocating
 * nothing (but GC_OPT_TYPE_JSON's text, once per value, under a lock):
 * adapters call this from any thread.
 *
 * "apps[ID]" and "apps.NAME" are not in the file (the schema has no root
 * "apps"): they lead to an app's view, its entry with the merged
 * "settings" (config_extract.c). WHERE places a value in the text with
 * gc__config_locate (config_path.c): a value under a view is placed where
 * it comes from, the app's entry, else its adapter's, else the root. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <game-carrier/server.h>

#include "alloc.h"
#include "config.h"
#include "config_internal.h"
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

/* ---- apps[ID], apps.NAME --------------------------------------------------- */

/* When 'p' starts with "apps[" or "apps." and the root has no "apps": 1,
 * with '*app' the app it names (NULL: none, or "apps.len" when '*len' is
 * set to the number of apps) and '*rest' what follows it ("" or a path
 * starting with a key). Else 0. */
static int getopt_app_prefix(const struct gc_config *cfg, const char *p,
                             const struct gc_app_conf **app, const char **rest,
                             bool *is_len, size_t *len) {
  if (strncmp(p, "apps", 4) != 0 || (p[4] != '[' && p[4] != '.') ||
      json_object_get(cfg->root, "apps"))
    return 0;
  *app = NULL;
  *is_len = false;
  p += 4;
  size_t total = 0, id = SIZE_MAX, n = 0;
  const char *name = NULL;
  if (*p == '[') {
    id = 0;
    for (p++; *p != ']'; p++)
      id = id > SIZE_MAX / 10 - 1 ? SIZE_MAX / 2 : id * 10 + (size_t)(*p - '0');
    p++;
  } else {
    name = ++p;
    n = strcspn(p, ".[");
    p += n;
  }
  for (size_t a = 0; a < cfg->adapter_count; a++)
    for (size_t k = 0; k < cfg->adapters[a].app_count; k++, total++) {
      const struct gc_app_conf *pc = &cfg->adapters[a].apps[k];
      if (name ? strlen(pc->name) == n && memcmp(pc->name, name, n) == 0
               : (size_t)pc->id == id)
        *app = pc;
    }
  if (!*app && name && n == 3 && memcmp(name, "len", 3) == 0 && !*p) {
    *is_len = true;
    *len = total;
  }
  *rest = *p == '.' ? p + 1 : p; /* '[': an entry is no array: ENOENT */
  return 1;
}

/* Resolves 'name' over the file and the apps' views (see above). */
static int getopt_find(const struct gc_config *cfg, const char *name,
                       const json_t **out, size_t *len) {
  const struct gc_app_conf *app;
  const char *rest;
  bool is_len;
  if (!getopt_app_prefix(cfg, name, &app, &rest, &is_len, len))
    return getopt_resolve(cfg->root, name, out, len);
  if (is_len) {
    *out = NULL;
    return 0;
  }
  if (!app || *rest == '[')
    return ENOENT;
  if (!*rest) {
    *out = app->view;
    return 0;
  }
  return getopt_resolve(app->view, rest, out, len);
}

/* ---- GC_OPT_TYPE_JSON -------------------------------------------------------- */

struct gc_config_text {
  struct gc_config_text *next;
  const json_t *node;
  char *text; /* jansson's memory */
};

struct gc_config_texts {
  pthread_mutex_t lock;
  struct gc_config_text *head;
};

struct gc_config_texts *gc__config_texts_new(void) {
  struct gc_config_texts *t = gc_calloc(1, sizeof *t);
  if (t && pthread_mutex_init(&t->lock, NULL) != 0) {
    gc_free(t);
    t = NULL;
  }
  return t;
}

void gc__config_texts_free(struct gc_config_texts *t) {
  if (!t)
    return;
  json_free_t jfree;
  json_get_alloc_funcs(NULL, &jfree);
  for (struct gc_config_text *e = t->head, *next; e; e = next) {
    next = e->next;
    jfree(e->text);
    gc_free(e);
  }
  pthread_mutex_destroy(&t->lock);
  gc_free(t);
}

/* The JSON text of 'v', made at the first request and kept with the
 * config. 0 or ENOMEM. */
static int getopt_json(const struct gc_config *cfg, const json_t *v,
                       const char **out) {
  struct gc_config_texts *t = cfg->texts;
  if (!t)
    return ENOMEM;
  int rc = 0;
  pthread_mutex_lock(&t->lock);
  struct gc_config_text *e = t->head;
  while (e && e->node != v)
    e = e->next;
  if (!e) {
    e = gc_malloc(sizeof *e);
    char *text = e ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY |
                                       JSON_REAL_PRECISION(17))
                   : NULL;
    if (!text) {
      gc_free(e);
      e = NULL;
      rc = ENOMEM;
    } else {
      *e = (struct gc_config_text){t->head, v, text};
      t->head = e;
    }
  }
  if (e)
    *out = e->text;
  pthread_mutex_unlock(&t->lock);
  return rc;
}

/* ---- GC_OPT_TYPE_WHERE --------------------------------------------------- */

#define WHERE_PATH_MAX 1024
#define WHERE_STEPS_MAX 64

/* Places the well-formed file path 'p' (which exists) in the text. */
static void getopt_where_file(const struct gc_config *cfg, const char *p,
                              bool at_key, char *out) {
  char buf[WHERE_PATH_MAX];
  struct gc_config_step steps[WHERE_STEPS_MAX];
  size_t n = 0;
  snprintf(buf, sizeof buf, "%s", p);
  for (char *q = buf; *q && n < WHERE_STEPS_MAX;) {
    char *key = q;
    q += strcspn(q, ".[");
    char c = *q;
    *q = '\0';
    steps[n++] = (struct gc_config_step){key, 0};
    while (c == '[' && n < WHERE_STEPS_MAX) {
      size_t idx = 0;
      for (q++; *q >= '0' && *q <= '9'; q++)
        idx = idx * 10 + (size_t)(*q - '0');
      q++; /* ']' */
      steps[n++] = (struct gc_config_step){NULL, idx};
      c = *q;
    }
    if (c != '.' && c != '[')
      break;
    q += c == '.';
  }
  int line = 0, col = 0;
  bool key = at_key && n > 0 && steps[n - 1].key;
  gc__config_locate(cfg->text, steps, n, key, &line, &col);
  snprintf(out, GC_OPT_WHERE_SIZE, "%s:%d:%d", cfg->source ? cfg->source : "config",
           line, col);
}

/* WHERE of 'name' (found): a path under an app's view becomes the file
 * path it comes from. */
static int getopt_where(const struct gc_config *cfg, const char *name,
                        bool at_key, char *out) {
  if (!cfg->text)
    return ENOENT;
  const struct gc_app_conf *app;
  const char *rest;
  bool is_len;
  size_t len;
  if (!getopt_app_prefix(cfg, name, &app, &rest, &is_len, &len)) {
    getopt_where_file(cfg, name, at_key, out);
    return 0;
  }
  if (!app)
    return ENOENT; /* apps.len: nowhere in the file */
  size_t a = 0, k = 0;
  for (a = 0; a < cfg->adapter_count; a++) {
    const struct gc_adapter_conf *ac = &cfg->adapters[a];
    if (app >= ac->apps && app < ac->apps + ac->app_count) {
      k = (size_t)(app - ac->apps);
      break;
    }
  }
  char path[WHERE_PATH_MAX];
  const json_t *v;
  bool settings = strncmp(rest, "settings", 8) == 0 &&
                  (rest[8] == '\0' || rest[8] == '.' || rest[8] == '[');
  /* The app's own entry, else (settings) its adapter's, else the root's. */
  for (int layer = 0; layer < (settings ? 3 : 1); layer++) {
    if (layer == 0)
      snprintf(path, sizeof path, "adapters[%zu].apps[%zu]%s%s", a, k,
               *rest ? "." : "", rest);
    else if (layer == 1)
      snprintf(path, sizeof path, "adapters[%zu].%s", a, rest);
    else
      snprintf(path, sizeof path, "%s", rest);
    if (getopt_resolve(cfg->root, path, &v, &len) == 0 && v) {
      getopt_where_file(cfg, path, at_key, out);
      return 0;
    }
  }
  return ENOENT; /* "settings" that no layer wrote, or a final "len" */
}

int gc_config_getopt(const struct gc_config *cfg, const char *name, int type,
                     void *value) {
  if (!cfg || !cfg->root || !name)
    return EINVAL;
  if (type != GC_OPT_TYPE_NULL && type != GC_OPT_TYPE_STRING &&
      type != GC_OPT_TYPE_UINT64 && type != GC_OPT_TYPE_INT &&
      type != GC_OPT_TYPE_JSON && type != GC_OPT_TYPE_WHERE &&
      type != GC_OPT_TYPE_WHERE_KEY)
    return EINVAL;
  if (type != GC_OPT_TYPE_NULL && !value)
    return EINVAL;
  if (!getopt_path_wellformed(name))
    return EINVAL;
  const json_t *v = NULL;
  size_t len = 0;
  int rc = getopt_find(cfg, name, &v, &len);
  if (rc)
    return rc;
  if (type == GC_OPT_TYPE_NULL)
    return 0;
  if (type == GC_OPT_TYPE_JSON)
    return v ? getopt_json(cfg, v, (const char **)value) : EINVAL;
  if (type == GC_OPT_TYPE_WHERE || type == GC_OPT_TYPE_WHERE_KEY)
    return v ? getopt_where(cfg, name, type == GC_OPT_TYPE_WHERE_KEY, value)
             : ENOENT;
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
