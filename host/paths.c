/* paths.c - see paths.h. */
#include "paths.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"

#ifndef GC_INSTALL_ADAPTER_DIR
#define GC_INSTALL_ADAPTER_DIR "lib/gcs"
#endif
#ifndef GC_LUA_CMOD_DIR
#define GC_LUA_CMOD_DIR "lib/lua/5.4"
#endif

/* The folder of the running binary into 'dir' (no trailing '/'): 0, or -1. */
static int exe_dir(char *dir, size_t len) {
  ssize_t n = readlink("/proc/self/exe", dir, len - 1);
  if (n <= 0)
    return -1;
  dir[n] = '\0';
  char *slash = strrchr(dir, '/');
  if (!slash)
    return -1;
  *slash = '\0';
  return 0;
}

/* "<prefix>/<rel>" for a binary in <prefix>/bin, into 'out': 0, or -1. */
static int under_prefix(const char *dir, const char *rel, char *out, size_t len) {
  const char *slash = strrchr(dir, '/');
  if (!slash || strcmp(slash, "/bin") != 0)
    return -1;
  int n = snprintf(out, len, "%.*s/%s", (int)(slash - dir), dir, rel);
  return n > 0 && (size_t)n < len ? 0 : -1;
}

char *gc_paths_lua_adapter(void) {
  const char *env = getenv("GC_LUA_ADAPTER");
  if (env && *env)
    return gc_strdup(env);
  char dir[PATH_MAX], built[PATH_MAX + 32], installed[PATH_MAX + 64];
  if (exe_dir(dir, sizeof dir) != 0)
    return gc_strdup("./libgc_lua.so");
  snprintf(built, sizeof built, "%s/libgc_lua.so", dir);
  int have_installed =
      under_prefix(dir, GC_INSTALL_ADAPTER_DIR "/libgc_lua.so", installed,
                   sizeof installed) == 0;
  /* The build tree's first; an installed gcs has none beside it. When
   * neither exists, the path named in the error is the one expected. */
  if (access(built, F_OK) == 0 || !have_installed)
    return gc_strdup(built);
  return gc_strdup(installed);
}

char *gc_paths_testing_cdir(void) {
  char dir[PATH_MAX], path[PATH_MAX + 64];
  if (exe_dir(dir, sizeof dir) != 0)
    return NULL;
  snprintf(path, sizeof path, "%s/lua/gc/testing.so", dir);
  if (access(path, F_OK) == 0) {
    path[strlen(path) - sizeof "/gc/testing.so" + 1] = '\0';
    return gc_strdup(path);
  }
  if (under_prefix(dir, GC_LUA_CMOD_DIR "/gc/testing.so", path, sizeof path) == 0 &&
      access(path, F_OK) == 0) {
    path[strlen(path) - sizeof "/gc/testing.so" + 1] = '\0';
    return gc_strdup(path);
  }
  return NULL;
}
