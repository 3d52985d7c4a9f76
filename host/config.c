/* config.c - loading the JSON config (see config.h): the entry points.
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
 * vhosts name real apps), both in config_schema.c -> extraction into
 * struct gc_config (config_extract.c), where the only possible failure is
 * ENOMEM. */
#include "config.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <game-carrier/server.h>

#include "alloc.h"
#include "config_internal.h"

/* A config is a few KiB; anything this big is a mistake, not a config. */
#define CONFIG_MAX_BYTES (16u << 20)

/* ---- entry points -------------------------------------------------------- */

int gc_config_check_serve(const struct gc_config *cfg, char *err,
                          size_t errlen) {
  for (size_t i = 0; i < cfg->vhost_count; i++) {
    const struct gc_vhost_conf *v = &cfg->vhosts[i];
    bool v6 = strchr(v->ip, ':') != NULL;
    if (v->protocol == GC_PROTOCOL_WSS && !v->ssl_keys_path) {
      snprintf(err, errlen,
               "vhosts[%zu] (%s%s%s:%d): protocol \"wss\" needs an "
               "\"ssl_keys_path\" (PREFIX of PREFIX.key and PREFIX.cert), in "
               "the vhost or at the config's root",
               i, v6 ? "[" : "", v->ip, v6 ? "]" : "", v->port);
      return ENOTSUP;
    }
    for (size_t k = 0; k < i; k++) {
      const struct gc_vhost_conf *o = &cfg->vhosts[k];
      if (o->port != v->port || strcmp(o->ip, v->ip) != 0)
        continue;
      if (o->protocol != v->protocol ||
          (v->protocol == GC_PROTOCOL_WSS &&
           strcmp(o->ssl_keys_path, v->ssl_keys_path) != 0)) {
        snprintf(err, errlen,
                 "vhosts[%zu] (%s%s%s:%d): vhosts[%zu] serves the same address "
                 "with another protocol or other keys",
                 i, v6 ? "[" : "", v->ip, v6 ? "]" : "", v->port, k);
        return ENOTSUP;
      }
    }
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
      gc_free(ac->apps[k].route_param);
      json_decref(ac->apps[k].settings);
      json_decref(ac->apps[k].view);
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
    gc_free(cfg->vhosts[i].ssl_keys_path);
  }
  gc_free(cfg->vhosts);
  gc_free(cfg->log_file);
  gc_free(cfg->working_dir);
  gc_free(cfg->admin_ip);
  gc_free(cfg->redis_url);
  gc_free(cfg->http_ca_file);
  gc_free(cfg->s2s_ca_file);
  gc__config_texts_free(cfg->texts);
  gc_free(cfg->text);
  gc_free(cfg->source);
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
  struct gc_config_ctx v = {
      .text = text, .source = source, .err = err, .errlen = errlen};
  int rc = gc__config_validate(&v, root);
  struct gc_config *cfg = NULL;
  if (rc == 0) {
    if (!(cfg = gc_calloc(1, sizeof *cfg))) {
      rc = ENOMEM;
    } else {
      cfg->root = root;
      root = NULL;
      /* Kept for getOpt: GC_OPT_TYPE_WHERE places values in the text. */
      if (!(cfg->text = gc_malloc(len + 1)) || !(cfg->source = gc_strdup(source)) ||
          !(cfg->texts = gc__config_texts_new())) {
        rc = ENOMEM;
      } else {
        memcpy(cfg->text, text, len + 1);
        rc = gc__config_extract(cfg);
      }
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
