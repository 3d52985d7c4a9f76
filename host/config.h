/* config.h - the JSON config (Game Carrier's keys plus a few of ours).
 *
 * Loading validates everything: an unknown key or a bad value fails with
 * "<file>:<line>:<col>: <key path>: <what is wrong>". The parsed JSON stays
 * alive for getOpt. */
#ifndef GC_CONFIG_H
#define GC_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct gc_app_conf {
  char *name, *type_name, *file_name; /* owned; type/file may be NULL */
  int id;                             /* from 0 over all apps, config order */
  json_t *json;                       /* borrowed from root: the app entry */
};

struct gc_adapter_conf {
  char *type; /* "native" or "lua" */
  char *dir;  /* NULL when absent */
  char *name; /* library base name; NULL for "lua" when absent */
  int id;     /* from 0, config order */
  struct gc_app_conf *apps;
  size_t app_count;
};

struct gc_vhost_conf {
  char *ip;
  int port;
  int protocol; /* GC_PROTOCOL_WS or GC_PROTOCOL_WSS */
  char *app;
};

struct gc_config {
  json_t *root; /* owned; getOpt reads it */
  struct gc_adapter_conf *adapters;
  size_t adapter_count;
  struct gc_vhost_conf *vhosts;
  size_t vhost_count;
  char *log_file;           /* NULL = stderr only; "%p" expanded */
  int log_level;            /* GCL_* mask, default GCL_NORMAL */
  uint64_t max_connections; /* 0 = unlimited */
  uint32_t close_drain_ms;  /* bound of a NORMAL close, default 5000 */
  uint32_t worker_count;    /* threading.worker_count, default 1 */
};

/* 0, or an errno with the message in 'err'. */
int gc_config_load_file(const char *path, struct gc_config **out, char *err,
                        size_t errlen) __attribute__((warn_unused_result));
int gc_config_load_string(const char *json, const char *source_name,
                          struct gc_config **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));
void gc_config_free(struct gc_config *cfg);
/* getOpt over the loaded config; see GetOpt in server.h. */
int gc_config_getopt(const struct gc_config *cfg, const char *name, int type,
                     void *value);

#endif
