/* watch.c - gcs --watch: a Lua script, or a module next to it, changed on
 * disk, so the scripts are reloaded as on SIGHUP.
 *
 * One inotify watch (uv_fs_event) per folder holding a Lua app's script:
 * the modules a script requires from its folder are covered too. Editors
 * write a file in several steps (truncate, write, rename), so a change
 * waits GC_WATCH_SETTLE_MS of quiet before the reload. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

#define GC_WATCH_SETTLE_MS 150
#define GC_WATCH_DIRS_MAX 16

struct gc_watch {
  struct gc_loop *loop;
  uv_timer_t settle;
  uv_fs_event_t ev[GC_WATCH_DIRS_MAX];
  char *dirs[GC_WATCH_DIRS_MAX];
  size_t count;
  int closing; /* handles to close before freeing */
  int open;    /* handles not closed yet */
};

static void settled(uv_timer_t *t) {
  struct gc_watch *w = t->data;
  if (atomic_load(&w->loop->server->stopping))
    return;
  gc_log(GCL_NOTICE, "--watch: a script changed: reloading");
  (void)gc_server_reload(w->loop->server);
}

static void changed(uv_fs_event_t *h, const char *file, int events, int status) {
  struct gc_watch *w = h->data;
  (void)events;
  if (status < 0) {
    gc_log(GCL_WARN, "--watch: %s", uv_strerror(status));
    return;
  }
  size_t n = file ? strlen(file) : 0;
  if (n < 4 || strcmp(file + n - 4, ".lua") != 0)
    return; /* an editor's swap file, a log... */
  (void)uv_timer_start(&w->settle, settled, GC_WATCH_SETTLE_MS, 0);
}

/* The folder of 'path' (owned), "." for a bare name; NULL: no memory. */
static char *folder_of(const char *path) {
  const char *slash = strrchr(path, '/');
  if (!slash)
    return gc_strdup(".");
  size_t n = slash == path ? 1 : (size_t)(slash - path);
  char *d = gc_malloc(n + 1);
  if (d) {
    memcpy(d, path, n);
    d[n] = '\0';
  }
  return d;
}

int gc__watch_start(struct gc_loop *loop) {
  struct gc_server *s = loop->server;
  struct gc_watch *w = gc_calloc(1, sizeof *w);
  if (!w)
    return ENOMEM;
  w->loop = loop;
  int rc = uv_timer_init(&loop->uv, &w->settle);
  if (rc) {
    gc_free(w);
    return -rc;
  }
  w->settle.data = w;
  w->open = 1;
  loop->watch = w;
  for (size_t i = 0; i < s->app_count; i++) {
    const struct gc_app *app = &s->apps[i];
    const char *type = app->adapter->conf->type;
    if (!type || strcmp(type, "lua") != 0 || !app->conf->file_name)
      continue;
    char *dir = folder_of(app->conf->file_name);
    if (!dir)
      return ENOMEM;
    int dup = 0;
    for (size_t k = 0; k < w->count; k++)
      dup |= strcmp(w->dirs[k], dir) == 0;
    if (dup || w->count == GC_WATCH_DIRS_MAX) {
      gc_free(dir);
      continue;
    }
    size_t k = w->count;
    if ((rc = uv_fs_event_init(&loop->uv, &w->ev[k])) != 0) {
      gc_free(dir);
      return -rc;
    }
    w->open++;
    w->count++;
    w->dirs[k] = dir;
    w->ev[k].data = w;
    if ((rc = uv_fs_event_start(&w->ev[k], changed, dir, 0)) != 0) {
      gc_log(GCL_WARN, "--watch: cannot watch %s: %s", dir, uv_strerror(rc));
      continue;
    }
    gc_log(GCL_NOTICE, "--watch: reloading when a .lua file in %s changes", dir);
  }
  return 0;
}

static void watch_closed(uv_handle_t *h) {
  struct gc_watch *w = h->data;
  if (--w->open > 0)
    return;
  for (size_t k = 0; k < w->count; k++)
    gc_free(w->dirs[k]);
  gc_free(w);
}

void gc__watch_stop(struct gc_loop *loop) {
  struct gc_watch *w = loop->watch;
  if (!w || w->closing)
    return;
  w->closing = 1;
  loop->watch = NULL;
  uv_close((uv_handle_t *)&w->settle, watch_closed);
  for (size_t k = 0; k < w->count; k++)
    uv_close((uv_handle_t *)&w->ev[k], watch_closed);
}
