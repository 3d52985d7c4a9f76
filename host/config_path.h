/* config_path.h - key paths of the config ("adapters[0].apps[1].name")
 * and where they stand in its text, for config.c's messages. */
#ifndef GC_CONFIG_PATH_H
#define GC_CONFIG_PATH_H

#include <stdbool.h>
#include <stddef.h>

/* One step of a key path: an object key, or an array index when key is
 * NULL. */
struct gc_config_step {
  const char *key;
  size_t idx;
};

/* "adapters[0].apps[1].name"; "" for the root. Cut to fit 'len'. */
void gc__config_path_format(char *out, size_t len,
                            const struct gc_config_step *path, size_t n);

/* Finds where the value at 'path' starts in 'text' (where its key starts
 * with 'at_key'): line and column from 1, columns in characters. */
void gc__config_locate(const char *text, const struct gc_config_step *path,
                       size_t n, bool at_key, int *line, int *col);

#endif
