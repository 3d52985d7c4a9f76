/* libFuzzer target: the config loader (validation, positions) and getOpt
 * paths taken from the input's tail. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <game-carrier/server.h>

#include "config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  /* Input: JSON text, then optionally "\n#" and a getOpt path. */
  char *text = malloc(size + 1);
  if (!text)
    return 0;
  memcpy(text, data, size);
  text[size] = '\0';
  char *path = strstr(text, "\n#");
  if (path) {
    *path = '\0';
    path += 2;
  }
  struct gc_config *cfg = NULL;
  char err[512];
  if (gc_config_load_string(text, "fuzz.json", &cfg, err, sizeof err) == 0) {
    const char *paths[] = {path ? path : "adapters.len", "vhosts[0].port",
                           "logging.level", "adapters[0].apps[0].name"};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++) {
      const char *s;
      int32_t v32;
      uint64_t v64;
      (void)gc_config_getopt(cfg, paths[i], GC_OPT_TYPE_NULL, NULL);
      (void)gc_config_getopt(cfg, paths[i], GC_OPT_TYPE_STRING, &s);
      (void)gc_config_getopt(cfg, paths[i], GC_OPT_TYPE_INT, &v32);
      (void)gc_config_getopt(cfg, paths[i], GC_OPT_TYPE_UINT64, &v64);
    }
    gc_config_free(cfg);
  }
  free(text);
  return 0;
}
