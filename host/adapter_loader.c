/* adapter_loader.c - loading adapters and driving the application lifecycle.
 *
 * Redis moduleLoad and Lua loadlib.c are the model: dlopen with RTLD_NOW |
 * RTLD_LOCAL (a missing symbol fails at load, adapters cannot collide),
 * dlerror() text with the path, a missing 'adapter_initialize' named as
 * such, optional events stored as NULL and skipped, adapters finalised and
 * closed in reverse load order. */
#include <dlfcn.h>
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

struct gc_app *gc_server_app_by_name(struct gc_server *s, const char *name) {
  for (size_t i = 0; i < s->app_count; i++)
    if (s->apps[i].conf && strcmp(s->apps[i].conf->name, name) == 0)
      return &s->apps[i];
  return NULL;
}

static char *adapter_path(struct gc_server *s, const struct gc_adapter_conf *ac) {
  if (strcmp(ac->type, "lua") == 0)
    return s->lua_adapter_path ? gc_strdup(s->lua_adapter_path) : NULL;
  const char *dir = ac->dir ? ac->dir : ".";
  size_t n = strlen(dir) + strlen(ac->name) + 8;
  char *p = gc_malloc(n);
  if (p)
    snprintf(p, n, "%s%slib%s.so", dir,
             *dir && dir[strlen(dir) - 1] == '/' ? "" : "/", ac->name);
  return p;
}

/* One line per failure, the useful one. An initializer that fails has
 * often logged why already (the Lua adapter logs the script's error); the
 * host's "returned 22" then says nothing more. So adapters get a
 * logMessage that counts their GCL_ERR lines: when an initializer fails
 * after logging an error, the host's line goes at DEBUG; when it logged
 * none, the host's line is the only explanation and is an error. */
static LogMessage host_log_message;
static atomic_ulong adapter_err_lines;

static void GC_CORE_API adapter_log_message(GCT_INT level, GCT_CPTR msg) {
  if (level & GCL_ERR)
    atomic_fetch_add_explicit(&adapter_err_lines, 1, memory_order_relaxed);
  host_log_message(level, msg);
}

static unsigned long err_lines(void) {
  return atomic_load_explicit(&adapter_err_lines, memory_order_relaxed);
}

/* Writes the host's line about a failed initializer into 'err' and logs it,
 * at DEBUG when the adapter logged an error since 'before'. Returns
 * ECANCELED: the caller must not log 'err' again. */
static int init_failed(unsigned long before, char *err, size_t errlen,
                       const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static int init_failed(unsigned long before, char *err, size_t errlen,
                       const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  gc_log(err_lines() != before ? GCL_DEBUG : GCL_ERR, "%s", err);
  return ECANCELED;
}

/* POSIX lets dlsym's object pointer become a function pointer. */
#define RESOLVE(a, sym) (*(void **)&(a)->sym = dlsym((a)->dl, #sym))

static int adapter_open(struct gc_server *s, struct gc_adapter *a, char *err,
                        size_t errlen) {
  const char *what = a->conf->name ? a->conf->name : a->conf->type;
  a->path = adapter_path(s, a->conf);
  if (!a->path) {
    snprintf(err, errlen, "adapter %s: no library path", what);
    return ENOMEM;
  }
  a->dl = dlopen(a->path, RTLD_NOW | RTLD_LOCAL);
  if (!a->dl) {
    snprintf(err, errlen, "adapter %s: cannot load %s: %s", what, a->path,
             dlerror());
    return ENOENT;
  }
  for (size_t i = 0; i < s->adapter_count; i++)
    if (&s->adapters[i] != a && s->adapters[i].dl == a->dl) {
      snprintf(err, errlen,
               "adapter %s: %s is already loaded by adapters[%zu]; list its "
               "apps in one adapter entry",
               what, a->path, i);
      return EEXIST;
    }
  const GCT_INT *ver = dlsym(a->dl, "gc_adapter_api_version");
  if (ver && (*ver >> 16) != GC_SERVER_API_VERSION_MAJOR) {
    snprintf(err, errlen,
             "adapter %s (%s): built for server API %d.%d, this host offers %d.%d",
             what, a->path, *ver >> 16, (*ver >> 8) & 0xff,
             GC_SERVER_API_VERSION_MAJOR, GC_SERVER_API_VERSION_MINOR);
    return EINVAL;
  }
  RESOLVE(a, adapter_initialize);
  if (!a->adapter_initialize) {
    snprintf(err, errlen,
             "adapter %s (%s): missing required export 'adapter_initialize'",
             what, a->path);
    return EINVAL;
  }
  RESOLVE(a, adapter_finalize);
  RESOLVE(a, adapter_reload);
  RESOLVE(a, application_initialize);
  RESOLVE(a, application_start);
  RESOLVE(a, application_stop);
  RESOLVE(a, application_shutdown);
  RESOLVE(a, on_connect);
  RESOLVE(a, on_disconnect);
  RESOLVE(a, on_message);
  RESOLVE(a, on_message_sent);
  RESOLVE(a, on_timer);
  RESOLVE(a, on_issue);
  RESOLVE(a, on_channel_message);
  return 0;
}

int gc_server_load(struct gc_server *s, char *err, size_t errlen) {
  struct gc_config *cfg = s->cfg;
  if (gc_counters_init(&s->counters) != 0) {
    snprintf(err, errlen, "out of memory");
    return ENOMEM;
  }
  s->counters_ready = 1;
  for (size_t i = 0; i < s->loop_count; i++)
    if (gc_counters_add_shard(&s->counters, &s->loops[i]->ctr) != 0)
      return ENOMEM; /* GC_WORKERS_MAX fits: cannot happen */
  size_t napps = 0;
  for (size_t i = 0; i < cfg->adapter_count; i++)
    napps += cfg->adapters[i].app_count;
  s->adapters = gc_calloc(cfg->adapter_count ? cfg->adapter_count : 1,
                          sizeof *s->adapters);
  s->apps = gc_calloc(napps ? napps : 1, sizeof *s->apps);
  if (!s->adapters || !s->apps) {
    snprintf(err, errlen, "out of memory");
    return ENOMEM;
  }
  s->app_count = napps;
  for (size_t i = 0; i < cfg->adapter_count; i++) {
    const struct gc_adapter_conf *ac = &cfg->adapters[i];
    s->adapters[i].id = ac->id;
    s->adapters[i].conf = ac;
    for (size_t k = 0; k < ac->app_count; k++) {
      struct gc_app *app = &s->apps[ac->apps[k].id];
      app->id = ac->apps[k].id;
      app->conf = &ac->apps[k];
      app->adapter = &s->adapters[i];
      app->limits = ac->apps[k].limits;
    }
  }
  if (gc__server_place_apps(s) != 0) { /* before application_initialize asks */
    snprintf(err, errlen, "out of memory");
    return ENOMEM;
  }

  s->phase = GC_PHASE_LOAD;
  for (size_t i = 0; i < cfg->adapter_count; i++) {
    struct gc_adapter *a = &s->adapters[i];
    s->adapter_count = i + 1;
    int rc = adapter_open(s, a, err, errlen);
    if (rc)
      return rc;
    struct core_api api;
    gc__core_api_fill(&api);
    host_log_message = api.logMessage;
    api.logMessage = adapter_log_message;
    const char *dir = a->conf->dir ? a->conf->dir : "";
    unsigned long before = err_lines();
    rc = a->adapter_initialize(a->id, &api, dir);
    if (rc != 0)
      return init_failed(before, err, errlen,
                         "adapter %s (%s): adapter_initialize returned %d",
                         a->conf->name ? a->conf->name : a->conf->type,
                         a->path, rc);
    a->initialized = 1;
    gc_log(GCL_NOTICE, "adapter %d loaded: %s (server API %d.%d)", a->id,
           a->path, GC_SERVER_API_VERSION_MAJOR, GC_SERVER_API_VERSION_MINOR);
  }

  s->phase = GC_PHASE_APP_INIT;
  for (size_t i = 0; i < s->app_count; i++) {
    struct gc_app *app = &s->apps[i];
    struct gc_adapter *a = app->adapter;
    const struct gc_app_conf *c = app->conf;
    if (a->application_initialize) {
      unsigned long before = err_lines();
      int rc = a->application_initialize(app->id, c->name,
                                         c->type_name ? c->type_name : "",
                                         c->file_name ? c->file_name : "");
      if (rc != 0)
        return init_failed(before, err, errlen,
                           "application %s (%s): application_initialize "
                           "returned %d",
                           c->name, a->path, rc);
    }
    app->initialized = 1;
  }
  return 0;
}

void gc_server_start_apps(struct gc_server *s) {
  s->phase = GC_PHASE_RUNNING;
  for (size_t i = 0; i < s->app_count; i++) {
    struct gc_app *app = &s->apps[i];
    if (app->adapter->application_start)
      app->adapter->application_start(app->id);
    app->started = 1;
    gc_log(GCL_NOTICE, "application %s started (id %d)", app->conf->name, app->id);
  }
}

void gc_server_stop_apps(struct gc_server *s) {
  s->phase = GC_PHASE_STOPPING;
  for (size_t i = 0; i < s->app_count; i++) {
    struct gc_app *app = &s->apps[i];
    if (app->started && app->adapter->application_stop)
      app->adapter->application_stop(app->id);
  }
}

void gc_server_shutdown_apps(struct gc_server *s) {
  if (s->phase == GC_PHASE_SHUTDOWN)
    return;
  s->phase = GC_PHASE_SHUTDOWN;
  for (size_t i = 0; i < s->app_count; i++) {
    struct gc_app *app = &s->apps[i];
    if (app->initialized && app->adapter->application_shutdown)
      app->adapter->application_shutdown(app->id);
    app->initialized = app->started = 0;
  }
}

void gc_server_unload(struct gc_server *s) {
  gc_server_shutdown_apps(s);
  for (size_t i = s->adapter_count; i-- > 0;) {
    struct gc_adapter *a = &s->adapters[i];
    if (a->initialized && a->adapter_finalize)
      a->adapter_finalize(a->id);
    a->initialized = 0;
  }
  for (size_t i = s->adapter_count; i-- > 0;) {
    struct gc_adapter *a = &s->adapters[i];
    if (a->dl)
      dlclose(a->dl);
    gc_free(a->path);
  }
  gc_free(s->adapters);
  gc_free(s->apps);
  if (s->counters_ready)
    gc_counters_free(&s->counters);
  s->counters_ready = 0;
  s->adapters = NULL;
  s->apps = NULL;
  s->adapter_count = s->app_count = 0;
}

int gc_server_reload(struct gc_server *s) {
  int asked = 0;
  for (size_t i = 0; i < s->adapter_count; i++) {
    struct gc_adapter *a = &s->adapters[i];
    int seen = 0; /* one library under several entries reloads once */
    for (size_t k = 0; k < i; k++)
      seen |= s->adapters[k].dl == a->dl;
    if (!a->initialized || seen)
      continue;
    if (!a->adapter_reload) {
      gc_log(GCL_INFO, "adapter %d (%s): not reloaded (a native library "
             "stays loaded for the life of the process)", a->id, a->path);
      continue;
    }
    a->adapter_reload(a->id);
    asked++;
  }
  return asked;
}
