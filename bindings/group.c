/* group.c - the states of each application, and the workers they live on.
 *
 * A Lua state is single-threaded, so an application has one state per
 * worker loop when its connections are spread over the workers (an app
 * entry with a "route": the host's applicationWorker answers -1), else one
 * state on the worker that serves all its connections. This file keeps the
 * table (app_id, worker) -> state and drives the application events
 * through every state of an app, on the right thread:
 *
 *  - application_initialize, application_start and application_shutdown
 *    run on the main thread while no worker loop runs: each state's load
 *    and handlers run with the thread acting as that state's worker
 *    (workerEnter), so the timers they start land on its loop;
 *  - application_stop comes on worker 0's thread while every loop runs:
 *    each state's handler is posted to its own worker (workerPost), where
 *    it runs before that worker's connections are closed.
 *
 * The table is written only during application_initialize and
 * application_shutdown, when no loop runs; the loops only read it. The
 * host's callbacks (timers, posts) carry a state's key (app id and worker,
 * no pointer), so a late one finds no state rather than a freed one.
 *
 * A host older than API 1.1 leaves the worker members NULL: it has one
 * worker, 0, and this file then behaves as the single-state adapter did. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gc_lua.h"

static struct gc_lua_group **groups; /* indexed by app_id */
static size_t groups_len;

/* ---- the workers, as the host tells them --------------------------------- */

/* A host with every worker member: else it has one worker. */
static int has_workers(const struct core_api *api) {
  return api->workerCount && api->workerId && api->workerPost &&
         api->applicationWorker && api->workerEnter;
}

GCT_INT gc_lua_worker_count(const struct core_api *api) {
  if (!has_workers(api))
    return 1;
  GCT_INT n = api->workerCount();
  return n >= 1 ? n : 1;
}

GCT_INT gc_lua_worker_id(const struct core_api *api) {
  return has_workers(api) ? api->workerId() : 0;
}

static int worker_enter(const struct core_api *api, GCT_INT worker) {
  return has_workers(api) ? api->workerEnter(worker) : 0;
}

int gc_lua_worker_post(const struct core_api *api, GCT_INT app_id,
                       GCT_INT worker, GCTimerCallback cb, GCT_INTPTR user) {
  if (api->workerPost)
    return api->workerPost(worker, cb, user);
  /* One worker: a timer due now runs later on it, in the order started. */
  if (api->timerStart == NULL)
    return ENOSYS;
  return api->timerStart(app_id, 0, 0, cb, user) != 0 ? 0 : ENOMEM;
}

/* ---- the table ----------------------------------------------------------- */

struct gc_lua_group *gc_lua_group_find(GCT_INT app_id) {
  if (app_id < 0 || (size_t)app_id >= groups_len)
    return NULL;
  return groups[app_id];
}

struct gc_lua_app *gc_lua_state_find(GCT_INT app_id, GCT_INT worker) {
  struct gc_lua_group *g = gc_lua_group_find(app_id);
  if (g == NULL || worker < 0 || worker >= g->nworkers)
    return NULL;
  return g->states[worker];
}

GCT_INTPTR gc_lua_state_key(const struct gc_lua_app *app) {
  return (GCT_INTPTR)app->worker << GC_LUA_APP_BITS | (GCT_INTPTR)app->app_id;
}

struct gc_lua_app *gc_lua_state_by_key(GCT_INTPTR key) {
  GCT_INTPTR mask = ((GCT_INTPTR)1 << GC_LUA_KEY_BITS) - 1;
  key &= mask;
  return gc_lua_state_find(
      (GCT_INT)(key & (((GCT_INTPTR)1 << GC_LUA_APP_BITS) - 1)),
      (GCT_INT)(key >> GC_LUA_APP_BITS));
}

static int groups_put(GCT_INT app_id, struct gc_lua_group *g) {
  if ((size_t)app_id >= groups_len) {
    size_t n = (size_t)app_id + 8;
    struct gc_lua_group **p = realloc(groups, n * sizeof *p);
    if (p == NULL)
      return ENOMEM;
    memset(p + groups_len, 0, (n - groups_len) * sizeof *p);
    groups = p;
    groups_len = n;
  }
  groups[app_id] = g;
  return 0;
}

/* Frees every state of 'g' (each as its worker), then 'g'. */
static void group_free(const struct core_api *api, struct gc_lua_group *g) {
  if (g == NULL)
    return;
  for (GCT_INT w = 0; w < g->nworkers; w++) {
    if (g->states[w] == NULL)
      continue;
    (void)worker_enter(api, w);
    gc_lua_app_free(g->states[w]);
    g->states[w] = NULL;
    (void)worker_enter(api, -1);
  }
  free(g->states);
  free(g);
}

/* ---- the application events ---------------------------------------------- */

/* Logs a failed workerEnter and answers its errno. */
static int enter_or_log(const struct core_api *api, const char *name,
                        GCT_INT worker) {
  int rc = worker_enter(api, worker);
  if (rc != 0) {
    char line[200];
    snprintf(line, sizeof line, "lua app %s: cannot act as worker %d (%s)",
             name, (int)worker, strerror(rc));
    api->logMessage(GCL_ERR, line);
  }
  return rc;
}

int gc_lua_group_initialize(const struct core_api *api, GCT_INT app_id,
                            const char *name, const char *file) {
  if (gc_lua_group_find(app_id))
    return EEXIST;
  GCT_INT n = gc_lua_worker_count(api);
  GCT_INT where = has_workers(api) ? api->applicationWorker(app_id) : 0;
  const char *label = name ? name : "lua";
  if (where < -1 || where >= n || n > (1 << GC_LUA_WORKER_BITS) ||
      app_id >= (1 << GC_LUA_APP_BITS)) { /* keys could not hold it */
    char line[200];
    snprintf(line, sizeof line,
             "lua app %s (id %d): the host places it on worker %d of %d",
             label, (int)app_id, (int)where, (int)n);
    api->logMessage(GCL_ERR, line);
    return EINVAL;
  }
  struct gc_lua_group *g = calloc(1, sizeof *g);
  if (g == NULL)
    return ENOMEM;
  g->app_id = app_id;
  g->routed = where < 0;
  g->home = where < 0 ? 0 : where;
  g->nworkers = n;
  g->states = calloc((size_t)n, sizeof *g->states);
  if (g->states == NULL || groups_put(app_id, g) != 0) {
    group_free(api, g);
    return ENOMEM;
  }
  struct gc_lua_limits lim;
  gc_lua_limits_read(api, name, &lim);
  int rc = 0;
  /* In the table before loading: a script may start timers at load. */
  for (GCT_INT w = 0; w < n && rc == 0; w++) {
    if (!g->routed && w != g->home)
      continue;
    struct gc_lua_app *app = gc_lua_app_new(api, app_id, name, file, &lim);
    if (app == NULL) {
      rc = ENOMEM;
      break;
    }
    app->worker = w;
    app->worker_count = n;
    app->log_worker = g->routed && n > 1;
    g->states[w] = app;
    if ((rc = enter_or_log(api, label, w)) != 0)
      break;
    gc_lua_counter_window(1); /* gc.counter may create, as in C here */
    rc = gc_lua_app_load(app);
    gc_lua_counter_window(0);
    (void)worker_enter(api, -1);
  }
  if (rc != 0) {
    groups[app_id] = NULL;
    group_free(api, g);
  }
  return rc;
}

/* Runs lifecycle handler 'event' in every state of app 'app_id', each as
 * its worker. */
static void run_everywhere(const struct core_api *api, GCT_INT app_id,
                           const char *event) {
  struct gc_lua_group *g = gc_lua_group_find(app_id);
  for (GCT_INT w = 0; g && w < g->nworkers; w++) {
    struct gc_lua_app *app = g->states[w];
    if (app == NULL || enter_or_log(api, app->name, w) != 0)
      continue;
    gc_lua_app_event(app, event);
    (void)worker_enter(api, -1);
  }
}

void gc_lua_group_start(const struct core_api *api, GCT_INT app_id) {
  run_everywhere(api, app_id, "application_start");
}

/* The posted application_stop of one state, on its worker. */
static void stop_posted(GCT_INTPTR key) {
  struct gc_lua_app *app = gc_lua_state_by_key(key);
  if (app)
    gc_lua_app_event(app, "application_stop");
}

void gc_lua_group_stop(const struct core_api *api, GCT_INT app_id) {
  struct gc_lua_group *g = gc_lua_group_find(app_id);
  if (g == NULL)
    return;
  if (api->workerPost == NULL) { /* one worker, and this is its thread */
    gc_lua_app_event(g->states[g->home], "application_stop");
    return;
  }
  GCT_INT self = gc_lua_worker_id(api);
  for (GCT_INT w = 0; w < g->nworkers; w++) {
    struct gc_lua_app *app = g->states[w];
    if (app == NULL)
      continue;
    int rc = api->workerPost(w, stop_posted, gc_lua_state_key(app));
    if (rc == 0)
      continue;
    if (w == self) { /* no mailbox, but this is the state's thread */
      gc_lua_app_event(app, "application_stop");
      continue;
    }
    gc_lua_log(app, GCL_ERR, "application_stop not run: worker %d refused "
               "it (%s)", (int)w, strerror(rc));
  }
}

/* Every connection is gone: the last handlers run, then the states close. */
void gc_lua_group_shutdown(const struct core_api *api, GCT_INT app_id) {
  struct gc_lua_group *g = gc_lua_group_find(app_id);
  if (g == NULL)
    return;
  run_everywhere(api, app_id, "application_shutdown");
  groups[app_id] = NULL;
  group_free(api, g);
}

void gc_lua_groups_free(const struct core_api *api) {
  for (size_t i = 0; i < groups_len; i++)
    group_free(api, groups[i]);
  free(groups);
  groups = NULL;
  groups_len = 0;
}

struct gc_lua_app *gc_lua_group_connect_state(const struct core_api *api,
                                              GCT_INT app_id) {
  struct gc_lua_group *g = gc_lua_group_find(app_id);
  if (g == NULL)
    return NULL;
  if (!g->routed)
    return g->states[g->home];
  GCT_INT w = gc_lua_worker_id(api);
  if (w >= 0 && w < g->nworkers && g->states[w])
    return g->states[w];
  char line[160];
  snprintf(line, sizeof line,
           "lua app %d: a connection came on worker %d, which has no state "
           "of it: refused", (int)app_id, (int)w);
  api->logMessage(GCL_ERR, line);
  return NULL;
}

/* ---- reload ---------------------------------------------------------------- */

static void reload_posted(GCT_INTPTR key) {
  struct gc_lua_app *app = gc_lua_state_by_key(key);
  if (app)
    (void)gc_lua_app_reload(app, NULL, NULL, 0);
}

int gc_lua_groups_reload(const struct core_api *api) {
  int n = 0;
  for (size_t i = 0; i < groups_len; i++) {
    struct gc_lua_group *g = groups[i];
    for (GCT_INT w = 0; g && w < g->nworkers; w++) {
      struct gc_lua_app *app = g->states[w];
      if (app == NULL)
        continue;
      /* On its own worker, between two of its events. */
      int rc = gc_lua_worker_post(api, app->app_id, w, reload_posted,
                                  gc_lua_state_key(app));
      if (rc != 0)
        gc_lua_log(app, GCL_ERR, "reload not run: %s", strerror(rc));
      else
        n++;
    }
  }
  return n;
}

int gc_lua_groups_reload_now(const struct core_api *api, const char *name,
                             const char *script, char *err, size_t errlen) {
  int rc = ENOENT, first = 0;
  for (size_t i = 0; i < groups_len; i++) {
    struct gc_lua_group *g = groups[i];
    for (GCT_INT w = 0; g && w < g->nworkers; w++) {
      struct gc_lua_app *app = g->states[w];
      if (app == NULL || (name && strcmp(name, app->name) != 0))
        continue;
      if (rc == ENOENT)
        rc = 0;
      int r = enter_or_log(api, app->name, w);
      if (r == 0) {
        r = gc_lua_app_reload(app, script, first ? NULL : err, errlen);
        (void)worker_enter(api, -1);
      }
      if (r != 0 && !first) {
        first = 1;
        rc = r;
      }
    }
  }
  return rc;
}

/* gc.testing's host:settle (one thread runs every worker there). */
GC_ADAPTER_EXPORT size_t gc_lua_io_pending(void) {
  size_t n = 0;
  for (size_t i = 0; i < groups_len; i++)
    for (GCT_INT w = 0; groups[i] && w < groups[i]->nworkers; w++)
      if (groups[i]->states[w])
        n += groups[i]->states[w]->io_waiting;
  return n;
}
