/* config.h - the JSON config: Game Carrier's keys plus a few of ours.
 *
 * Loading validates everything before anything uses it: an unknown key or a
 * bad value fails with one line naming the place,
 *   "<source>:<line>:<col>: <key path>: <what is wrong>"
 * (or "<source>:<line>:<col>: <jansson's text>" for a syntax error). The
 * parsed JSON stays alive in the result for getOpt. */
#ifndef GC_CONFIG_H
#define GC_CONFIG_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "conn_limits.h"

/* How an app's connections are placed on workers ("route"). */
enum gc_route {
  GC_ROUTE_NONE,  /* native: where accepted; Lua: the app's one worker */
  GC_ROUTE_QUERY, /* "query.NAME": the value of query parameter NAME */
  GC_ROUTE_PATH   /* "path": the request path (without the query) */
};

/* The longest NAME of a "query.NAME" route. */
#define GC_ROUTE_PARAM_MAX 64
/* The most workers "threading.worker_count" may ask for. */
#define GC_WORKER_COUNT_MAX 64
/* keep_alive.retries above this are taken as this. */
#define GC_KEEP_ALIVE_RETRIES_MAX 100

struct gc_app_conf {
  char *name, *type_name, *file_name; /* owned; type/file NULL when absent */
  /* "route": GC_ROUTE_NONE when absent. */
  enum gc_route route;
  /* GC_ROUTE_QUERY: the parameter's name, 1..GC_ROUTE_PARAM_MAX of
   * [A-Za-z0-9_.~-] (owned); NULL otherwise. */
  char *route_param;
  /* "message_type": 1 for "text", 0 for "binary" (the default): the frame
   * type of connectionAddMessage and GC_MESSAGE_DEFAULT. */
  int message_text;
  int id;                             /* from 0 over all apps, config order */
  json_t *json;                       /* borrowed from root: the app entry */
  /* The app's "settings" merged over its adapter's and the root's (an
   * app's key wins over its adapter's, which wins over the root's; objects
   * merge key by key, any other value replaces): owned, never NULL after
   * a load (an empty object when nobody has any). getOpt serves it at
   * "apps[ID].settings" and "apps.NAME.settings". */
  json_t *settings;
  /* What getOpt walks at "apps[ID]": a shallow copy of the entry whose
   * "settings" is 'settings' (owned). */
  json_t *view;
  /* The connection limits of this app: the defaults (RED max_msg_size
   * GC_DEFAULT_MAX_MSG_SIZE, RED output_queue_size GC_DEFAULT_OUTPUT_QUEUE,
   * all else 0), then the root's conn_notice / conn_critical, then the app
   * entry's; kbytes_per_second already in bytes. What
   * gc_limits_from_config(root, json) gives. */
  struct gc_limits limits;
};

struct gc_adapter_conf {
  char *type; /* "native" or "lua" */
  char *dir;  /* required for "native"; NULL when absent ("lua") */
  char *name; /* library base name; required for "native", else may be NULL */
  int id;     /* from 0, config order */
  struct gc_app_conf *apps;
  size_t app_count; /* >= 1 */
};

struct gc_vhost_conf {
  char *ip;     /* a numeric IPv4 or IPv6 address */
  int port;     /* 1..65535 */
  int protocol; /* GC_PROTOCOL_WS (default) or GC_PROTOCOL_WSS */
  char *app;    /* names a configured app */
  /* "ssl_keys_path": the vhost's, else the root's (owned), else NULL. */
  char *ssl_keys_path;
};

struct gc_config_texts; /* getOpt's JSON texts (config_getopt.c) */

struct gc_config {
  json_t *root; /* owned; getOpt reads it */
  char *text;   /* owned: the text it was parsed from (GC_OPT_TYPE_WHERE) */
  char *source; /* owned: its name in messages ("gcs.json") */
  struct gc_config_texts *texts; /* owned */
  struct gc_adapter_conf *adapters;
  size_t adapter_count; /* >= 1 */
  struct gc_vhost_conf *vhosts;
  size_t vhost_count;       /* >= 1 */
  char *log_file;           /* NULL = stderr only; "%p" expanded to the PID */
  int log_level;            /* GCL_* mask, default GCL_NORMAL */
  int log_format;           /* logging.format: GC_LOG_FORMAT_TEXT (default) or _JSON */
  /* Every number: 0 is "no limit" where a limit can be off; where off
   * makes no sense, the loader refuses 0 (README "Config"). */
  uint64_t max_connections; /* 0 = unlimited (default) */
  uint32_t close_drain_ms;  /* bound of a NORMAL close, default 5000; 0 = none */
  uint32_t handshake_timeout_ms; /* the upgrade, default 10000; 0 = none */
  /* Largest message the app may queue (default: the inbound maximum; 0 in
   * the config: GC_MSG_SIZE_HARD_MAX). */
  uint64_t max_output_msg_size;
  uint32_t message_timeout_ms; /* an unfinished inbound message; 0 = none */
  uint32_t send_timeout_ms;    /* an output queue that never empties; 0 = none */
  /* Output queued and partial input over all connections; UINT64_MAX when
   * absent (the loop then takes a quarter of the memory), 0 = no limit. */
  uint64_t max_buffered_bytes;
  /* threading.worker_count 1..64; 0 = "auto" (the default, or the string
   * "auto"): gcs takes the online CPUs, gc.testing 1. Resolved by them,
   * not here. */
  uint32_t worker_count;
  /* logging.conn_lines_per_second: lines about single connections a loop
   * logs per second; default 100, 0 = no limit. */
  uint32_t conn_lines_per_second;
  /* keep_alive: after keep_alive_timeout_ms without input a connection is
   * pinged every keep_alive_interval_ms; after keep_alive_retries pings
   * without input it is dropped. Without a "keep_alive" object: 30 s,
   * 10 s, 3. With one, a key left out keeps its default, except that
   * "interval" then defaults to "timeout"; "retries" over
   * GC_KEEP_ALIVE_RETRIES_MAX count as that many. "timeout": 0 turns
   * keep-alive off: then all three are 0. The config's keys are seconds;
   * these are milliseconds. */
  uint64_t keep_alive_timeout_ms;
  uint64_t keep_alive_interval_ms;
  uint32_t keep_alive_retries;
  char *working_dir;        /* NULL when absent; stored, never chdir'ed to */
  /* "admin": the listener of /metrics and /health; admin_ip NULL when
   * absent (off, the default). Port 0: the kernel's choice, logged. */
  char *admin_ip;
  int admin_port;
  /* Seconds /health answers 503 "draining" after SIGTERM before the
   * shutdown begins (default 0). */
  uint32_t drain_s;
  /* "redis" (ours): the Redis server gc.publish goes through between
   * hosts (host/redis.c; gc.redis shares it). 'redis_url' NULL when
   * absent: publish and subscribe stay inside the process. A valid
   * redis_url.h URL (validation parsed it). 'redis_timeout_ms': the bound
   * of a connect and of an answer, default 2000, 0 = none. */
  char *redis_url;
  uint32_t redis_timeout_ms;
  /* "http" (ours): how httpRequest checks an https server. 'http_ca_file'
   * the PEM of the CAs it trusts (owned), NULL: the system's store;
   * 'http_verify_off' 1 ("verify": false) accepts any certificate (0 by
   * default: verified). The file is read at start-up (http_tls.c). */
  char *http_ca_file;
  int http_verify_off;
  /* "s2s" (ours): wss links check the peer's certificate against
   * 's2s_ca_file' (PEM; NULL when absent: the system's store) and its
   * host name, unless 's2s_verify' is 0 ("verify": false; default 1). */
  char *s2s_ca_file;
  int s2s_verify;
  /* "io_uring" (ours): connections' output is sent in one batch a loop
   * turn through io_uring (host/uring.c); false: a write() each. Default
   * 1; where the kernel refuses io_uring, write() too. */
  int io_uring;
};

/* Reads and loads the config file at 'path' (see gc_config_load_string).
 * An unreadable file fails with its errno and "cannot read <path>: <why>".
 * On success '*out' owns everything (free with gc_config_free); on failure
 * '*out' is NULL and 'err' (may be NULL) holds one line. */
int gc_config_load_file(const char *path, struct gc_config **out, char *err,
                        size_t errlen) __attribute__((warn_unused_result));

/* Parses and validates the NUL-terminated JSON text 'json'; 'source_name'
 * (NULL: "config") prefixes every message. 0, EINVAL (bad JSON or a bad
 * config, explained in 'err') or ENOMEM ("<source>: out of memory"). */
int gc_config_load_string(const char *json, const char *source_name,
                          struct gc_config **out, char *err, size_t errlen)
    __attribute__((warn_unused_result));

/* What a valid config may hold but this host cannot serve: a "wss" vhost
 * without an ssl_keys_path, ws and wss on one address (ENOTSUP, explained
 * in 'err'). Checked before any adapter is loaded, so no application code
 * runs for a config that cannot start. 0 or ENOTSUP. */
int gc_config_check_serve(const struct gc_config *cfg, char *err,
                          size_t errlen) __attribute__((warn_unused_result));

/* Frees everything the config owns, the JSON included; NULL is fine.
 * Pointers handed out by gc_config_getopt die with it. */
void gc_config_free(struct gc_config *cfg);

/* getOpt over the loaded config (the GetOpt contract of server.h): 'name'
 * is a path ("adapters[0].apps[1].name", "vhosts.len"); 'type' is a
 * GC_OPT_TYPE_*. NULL tests existence ('value' may be NULL); STRING writes
 * a 'const char *' into the JSON, valid while 'cfg' lives; UINT64 writes a
 * uint64_t, INT an int32_t, from an integer, a boolean (1/0), a '.len' or
 * the level name at "logging.level" (its mask); JSON writes a 'const char
 * *' to the compact JSON text of any value, valid while 'cfg' lives; WHERE
 * writes "SOURCE:LINE:COL" of the value (of its key, for a key of an
 * object) into a char array of GC_OPT_WHERE_SIZE. "apps[ID]" and
 * "apps.NAME" (not keys of the file: the root has no "apps") are the
 * entry of the app with that id or name, whose "settings" are the merged
 * ones (gc_app_conf.settings). 0; ENOENT when the path
 * does not exist; EINVAL for a NULL cfg, name or value, a malformed path,
 * an unknown type, a value of another kind or one that does not fit;
 * ENOMEM (JSON). */
int gc_config_getopt(const struct gc_config *cfg, const char *name, int type,
                     void *value);

#endif
