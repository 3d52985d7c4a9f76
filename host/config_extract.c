/* config_extract.c - a validated config into struct gc_config: names and
 * strings copied, defaults put where a key is absent. Validation
 * (config_schema.c) has refused every bad value, so the only possible
 * failure here is ENOMEM. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <game-carrier/server.h>

#include "alloc.h"
#include "config_internal.h"
#include "conn_limits.h"
#include "log.h"

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

/* keep_alive {timeout, interval, retries}, in seconds (see config.h). */
static void keep_alive_extract(struct gc_config *cfg, const json_t *ka) {
  uint64_t timeout = 30, interval = 10, retries = 3;
  if (ka) {
    /* A key left out keeps its default, but the interval is the timeout's.
     * Validation refused an interval or retries of 0. */
    timeout = uint_member(ka, "timeout", 30);
    interval = uint_member(ka, "interval", timeout);
    retries = uint_member(ka, "retries", 3);
  }
  if (timeout == 0)
    return; /* off: all three stay 0 */
  cfg->keep_alive_timeout_ms = timeout * 1000; /* at most UINT32_MAX s */
  cfg->keep_alive_interval_ms = interval * 1000;
  cfg->keep_alive_retries = retries > GC_KEEP_ALIVE_RETRIES_MAX
                                ? GC_KEEP_ALIVE_RETRIES_MAX
                                : (uint32_t)retries;
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

/* Merges the "settings" object 'over' (may be NULL) into 'base', in place:
 * a key holding an object on both sides merges key by key, any other value
 * of 'over' replaces (a copy). 0 or ENOMEM. */
static int settings_merge(json_t *base, const json_t *over) {
  const char *key;
  json_t *val;
  json_object_foreach((json_t *)over, key, val) {
    json_t *cur = json_object_get(base, key);
    if (json_is_object(cur) && json_is_object(val)) {
      int rc = settings_merge(cur, val);
      if (rc)
        return rc;
      continue;
    }
    json_t *copy = json_deep_copy(val);
    if (!copy || json_object_set_new(base, key, copy) != 0)
      return ENOMEM;
  }
  return 0;
}

/* An app's settings: the root's, then its adapter's, then its own. */
static int settings_of(const json_t *root, const json_t *ad, const json_t *app,
                       json_t **out) {
  const json_t *layers[] = {json_object_get(root, "settings"),
                            json_object_get(ad, "settings"),
                            json_object_get(app, "settings")};
  if (!(*out = json_object()))
    return ENOMEM;
  for (size_t i = 0; i < 3; i++)
    if (layers[i] && settings_merge(*out, layers[i]) != 0)
      return ENOMEM;
  return 0;
}

int gc__config_extract(struct gc_config *cfg) {
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
      gc_limits_from_config(&pc->limits, root, app);
      const json_t *route = json_object_get(app, "route");
      const char *param = NULL;
      if (route && gc__config_route_of(route, &pc->route, &param) != 0)
        return EINVAL; /* validated already: cannot happen */
      if (param && !(pc->route_param = gc_strdup(param)))
        return ENOMEM;
      if (settings_of(root, ad, app, &pc->settings) != 0 ||
          !(pc->view = json_copy(app)) ||
          json_object_set(pc->view, "settings", pc->settings) != 0)
        return ENOMEM;
      const json_t *mt = json_object_get(app, "message_type");
      pc->message_text = mt && strcmp(json_string_value(mt), "text") == 0;
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
    if (dup_member(vh, "ip", &vc->ip) || dup_member(vh, "app", &vc->app) ||
        dup_member(json_object_get(vh, "ssl_keys_path") ? vh : root,
                   "ssl_keys_path", &vc->ssl_keys_path))
      return ENOMEM;
  }
  const json_t *logging = json_object_get(root, "logging");
  const json_t *file = json_object_get(logging, "log_file");
  const json_t *level = json_object_get(logging, "level");
  const json_t *format = json_object_get(logging, "format");
  cfg->log_level = GCL_NORMAL;
  cfg->log_format = format && strcmp(json_string_value(format), "json") == 0
                        ? GC_LOG_FORMAT_JSON
                        : GC_LOG_FORMAT_TEXT;
  if (level) {
    int rc = gc__config_level_of(level, &cfg->log_level);
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
  /* Absent or "auto": 0, resolved by whoever starts the workers. */
  const json_t *workers =
      json_object_get(json_object_get(root, "threading"), "worker_count");
  cfg->worker_count =
      json_is_integer(workers) ? (uint32_t)json_integer_value(workers) : 0;
  cfg->conn_lines_per_second =
      (uint32_t)uint_member(logging, "conn_lines_per_second", 100);
  keep_alive_extract(cfg, json_object_get(root, "keep_alive"));
  cfg->drain_s = (uint32_t)uint_member(root, "drain_s", 0);
  const json_t *admin = json_object_get(root, "admin");
  if (admin) {
    cfg->admin_port = (int)uint_member(admin, "port", 0);
    if (dup_member(admin, "ip", &cfg->admin_ip))
      return ENOMEM;
  }
  const json_t *redis = json_object_get(root, "redis");
  cfg->redis_timeout_ms = (uint32_t)uint_member(redis, "timeout_ms", 2000);
  if (redis && dup_member(redis, "url", &cfg->redis_url))
    return ENOMEM;
  const json_t *http = json_object_get(root, "http");
  const json_t *verify = json_object_get(http, "verify");
  cfg->http_verify_off = json_is_false(verify);
  if (http && dup_member(http, "ca_file", &cfg->http_ca_file))
    return ENOMEM;
  const json_t *s2s = json_object_get(root, "s2s");
  cfg->s2s_verify = !json_is_false(json_object_get(s2s, "verify"));
  cfg->io_uring = !json_is_false(json_object_get(root, "io_uring"));
  if (s2s && dup_member(s2s, "ca_file", &cfg->s2s_ca_file))
    return ENOMEM;
  return dup_member(root, "working_dir", &cfg->working_dir);
}
