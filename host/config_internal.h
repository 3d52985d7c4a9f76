/* config_internal.h - what the config loader's files share; only config*.c
 * include it.
 *
 *   config.c          entry points: reading the file, load, check_serve, free
 *   config_schema.c   the schema (key_spec tables), its checks, cross-checks
 *   config_extract.c  a validated root into struct gc_config
 *   config_path.c     key paths, their place in the text, messages there
 *   config_getopt.c   getOpt over the loaded root */
#ifndef GC_CONFIG_INTERNAL_H
#define GC_CONFIG_INTERNAL_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "config.h"
#include "config_path.h"

/* The schema is at most 7 steps deep (adapters[0].apps[0].lua.path). */
#define GC_CONFIG_PATH_MAX_STEPS 16

/* Where validation is: the text (to place errors), the key path reached,
 * and where a message goes. */
struct gc_config_ctx {
  const char *text;
  const char *source;
  char *err;
  size_t errlen;
  struct gc_config_step path[GC_CONFIG_PATH_MAX_STEPS];
  size_t depth;
};

void gc__config_path_push_key(struct gc_config_ctx *v, const char *key);
void gc__config_path_push_idx(struct gc_config_ctx *v, size_t idx);
void gc__config_path_pop(struct gc_config_ctx *v);

/* Writes "<source>:<line>:<col>: <path>: <message>" into v->err, where
 * <path> is the first 'named' steps of v->path and the position is that of
 * the whole v->path (of its last key with 'at_key'). Returns EINVAL. */
int gc__config_fail(const struct gc_config_ctx *v, size_t named, bool at_key,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* How much of an offending value a message quotes. */
#define GC_CONFIG_DESCRIBE_MAX 48

/* A short human form of a value for "got ...": strings and numbers quoted
 * as JSON (cut to GC_CONFIG_DESCRIBE_MAX), containers by kind. */
void gc__config_describe(const json_t *j, char *out, size_t len);

/* Checks 'root' (parsed from 'text') against the schema, then the rules
 * that span keys. 0, or EINVAL with the message in v->err. */
int gc__config_validate(struct gc_config_ctx *v, const json_t *root)
    __attribute__((warn_unused_result));

/* The values of keys that validation and extraction both read; each is 0
 * for a valid value, EINVAL otherwise. */
/* "logging.level": a level name (gc_log_level_parse) or 0..65535. */
int gc__config_level_of(const json_t *val, int *mask);
/* An app's "route": "path", or "query.NAME" with NAME 1..GC_ROUTE_PARAM_MAX
 * of [A-Za-z0-9_.~-] ('*param' then points at NAME inside 'val'; NULL for
 * "path"). */
int gc__config_route_of(const json_t *val, enum gc_route *route,
                        const char **param);

/* getOpt's cache of JSON texts (GC_OPT_TYPE_JSON), one per value asked
 * for, kept until the config is freed. New: NULL when out of memory. Free:
 * NULL is fine. */
struct gc_config_texts *gc__config_texts_new(void);
void gc__config_texts_free(struct gc_config_texts *t);

/* Fills 'cfg' from its validated root. Counts are set only once their
 * arrays exist, so gc_config_free can undo a partial extraction. 0 or
 * ENOMEM. */
int gc__config_extract(struct gc_config *cfg)
    __attribute__((warn_unused_result));

#endif
