/* core_api.c - the 'struct core_api' table handed to every adapter.
 *
 * Each entry point validates everything an adapter can get wrong and
 * answers EINVAL, never asserting: adapters are third-party code. The
 * entry points find their loop through the calling thread
 * (gc__loop_current), because the Game Carrier signatures carry no
 * context. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

static GCT_INT api_get_opt(GCT_CSTR name, GCT_INT type, GCT_PTR value) {
  struct gc_loop *loop = gc__loop_current;
  if (!loop)
    return EINVAL;
  return gc_config_getopt(loop->server->cfg, name, type, value);
}

static GCT_INT api_add_message(GCT_INTPTR h, GCT_PTR data, GCT_SIZE len,
                               GCT_INTPTR cookie) {
  return gc_conn_send(gc__loop_current, h, data, len, cookie);
}

static GCT_INT api_close(GCT_INTPTR h, GCT_INT reason) {
  return gc_conn_close(gc__loop_current, h, reason);
}

static GCT_INT api_set_timer(GCT_INTPTR h, GCT_INT ms) {
  return gc_conn_set_timer(gc__loop_current, h, ms);
}

static GCT_INT api_set_limit(GCT_INTPTR h, GCT_INT level, GCT_INT id,
                             GCT_COUNTER_VALUE value) {
  return gc_conn_set_limit(gc__loop_current, h, level, id, value);
}

/* ---- server to server: not offered yet ---------------------------------- */

static GCT_INT api_s2s_create(GCT_INT adapter, GCT_INTPTR user, GCT_INT proto,
                              GCT_PTR host, GCT_INT port, GCT_PTR app,
                              struct client_events *events) {
  (void)adapter, (void)user, (void)proto, (void)host, (void)port, (void)app,
      (void)events;
  return ENOSYS;
}

static GCT_INT api_s2s_destroy(GCT_INTPTR h) {
  (void)h;
  return ENOSYS;
}

static void api_s2s_add_message(GCT_INTPTR h, GCT_PTR data, GCT_SIZE len,
                                GCT_INTPTR cookie) {
  (void)h, (void)data, (void)len, (void)cookie;
  gc_log(GCL_WARN, "s2sAddMessage: server-to-server is not available yet");
}

static GCT_INT api_s2s_set_timer(GCT_INTPTR h, GCT_INT ms) {
  (void)h, (void)ms;
  return ENOSYS;
}

/* ---- counters ------------------------------------------------------------ */

static struct gc_server *api_server(void) {
  struct gc_loop *loop = gc__loop_current;
  return loop ? loop->server : NULL;
}

/* Creation only during application_initialize, as Game Carrier documents. */
static GCT_INT api_counter_create(GCT_CSTR name) {
  struct gc_server *s = api_server();
  if (!s || s->phase != GC_PHASE_APP_INIT) {
    gc_log(GCL_WARN, "counterCreate(\"%s\"): only allowed in application_initialize",
           name ? name : "(null)");
    return -1;
  }
  return gc_counters_create(&s->counters, name);
}

static GCT_INT api_counter_open(GCT_CSTR name) {
  struct gc_server *s = api_server();
  return s ? gc_counters_open(&s->counters, name) : -1;
}

/* During application_initialize only the built-in counters are listed. */
static GCT_INT api_counter_get_names(GCT_CSTR *names, GCT_INT max) {
  struct gc_server *s = api_server();
  if (!s || max < 0 || (max > 0 && !names))
    return -1;
  return gc_counters_names(&s->counters, names, max,
                           s->phase <= GC_PHASE_APP_INIT);
}

static GCT_INT api_counter_get(GCT_INT id, GCT_COUNTER_VALUE *value) {
  struct gc_server *s = api_server();
  return s ? gc_counters_get(&s->counters, id, value) : EINVAL;
}

static GCT_INT api_counter_set(GCT_INT id, GCT_COUNTER_VALUE v) {
  struct gc_server *s = api_server();
  return s ? gc_counters_set(&s->counters, id, v) : EINVAL;
}

static GCT_INT api_counter_add(GCT_INT id, GCT_COUNTER_VALUE v) {
  struct gc_server *s = api_server();
  return s ? gc_counters_add(&s->counters, id, v) : EINVAL;
}

static GCT_INT api_counter_increment(GCT_INT id) { return api_counter_add(id, 1); }
static GCT_INT api_counter_decrement(GCT_INT id) { return api_counter_add(id, -1); }

static GCT_INT api_counter_subscribe(GCT_INT id, OnCounterChange cb,
                                     GCT_INTPTR user) {
  struct gc_server *s = api_server();
  return s ? gc_counters_subscribe(&s->counters, id, cb, user) : EINVAL;
}

static GCT_INT api_counter_unsubscribe(GCT_INT id, OnCounterChange cb,
                                       GCT_INTPTR user) {
  struct gc_server *s = api_server();
  return s ? gc_counters_unsubscribe(&s->counters, id, cb, user) : EINVAL;
}

/* ---- smart locks: recursive mutexes shared by workers -------------------- */

static GCT_INTPTR api_lock_create(void) {
  pthread_mutex_t *m = gc_malloc(sizeof *m);
  pthread_mutexattr_t attr;
  if (!m)
    return 0;
  if (pthread_mutexattr_init(&attr) != 0) {
    gc_free(m);
    return 0;
  }
  int rc = pthread_mutexattr_settype(&attr, PTHREAD_MUTEX_RECURSIVE);
  if (rc == 0)
    rc = pthread_mutex_init(m, &attr);
  pthread_mutexattr_destroy(&attr);
  if (rc != 0) {
    gc_free(m);
    return 0;
  }
  return (GCT_INTPTR)m;
}

static void api_lock_destroy(GCT_INTPTR lock) {
  if (!lock)
    return;
  pthread_mutex_destroy((pthread_mutex_t *)lock);
  gc_free((void *)lock);
}

static GCT_INT api_lock(GCT_INTPTR lock) {
  return lock ? pthread_mutex_lock((pthread_mutex_t *)lock) : EINVAL;
}

static void api_unlock(GCT_INTPTR lock) {
  if (lock)
    (void)pthread_mutex_unlock((pthread_mutex_t *)lock);
}

/* ---- logging ------------------------------------------------------------- */

static void api_log(GCT_INT level, GCT_CPTR msg) { gc_log_write(level, msg); }

/* ---- application timers -------------------------------------------------- */



static void app_timer_fired(void *ctx, intptr_t arg) {
  struct gc_loop *loop = gc__loop_current;
  if (loop && loop->server->phase >= GC_PHASE_SHUTDOWN)
    return; /* no application code after application_shutdown */
  GCTimerCallback cb;
  memcpy(&cb, &ctx, sizeof cb); /* function pointer carried in 'ctx' */
  cb(arg);
}

static GCT_INTPTR api_timer_start(GCT_INT app_id, GCT_INT ms, GCT_INT repeat_ms,
                                  GCTimerCallback cb, GCT_INTPTR user) {
  struct gc_loop *loop = gc__loop_current;
  if (!loop || !cb || ms < 0 || repeat_ms < 0 || app_id < 0 ||
      (size_t)app_id >= loop->server->app_count)
    return 0;
  void *ctx;
  _Static_assert(sizeof cb == sizeof ctx, "function pointers fit in void *");
  memcpy(&ctx, &cb, sizeof ctx);
  intptr_t id = 0;
  if (gc_timers_start(&loop->timers, gc_loop_now(loop), ms, repeat_ms,
                      app_timer_fired, ctx, user, &id) != 0)
    return 0;
  return id;
}

static GCT_INT api_timer_stop(GCT_INTPTR id) {
  struct gc_loop *loop = gc__loop_current;
  if (!loop)
    return EINVAL;
  /* Only application timers: connection and close timers are the host's. */
  const struct gc_timer *tm = gc_handle_table_get(&loop->timers.ids, id);
  if (!tm || tm->cb != app_timer_fired)
    return EINVAL;
  return gc_timers_stop(&loop->timers, id);
}

static GCT_INT api_broadcast(const GCT_INTPTR *handles, GCT_SIZE count,
                             GCT_PTR data, GCT_SIZE len, GCT_INTPTR cookie,
                             GCT_SIZE *queued) {
  return gc_conn_broadcast(gc__loop_current, handles, count, data, len, cookie,
                           queued);
}

static int64_t api_now_ms(void) {
  struct gc_loop *loop = gc__loop_current;
  return loop ? gc_loop_now(loop) : 0;
}

void gc__core_api_fill(struct core_api *api) {
  memset(api, 0, sizeof *api);
  api->getOpt = api_get_opt;
  api->connectionAddMessage = api_add_message;
  api->connectionClose = api_close;
  api->connectionSetTimer = api_set_timer;
  api->connectionSetLimit = api_set_limit;
  api->s2sCreate = api_s2s_create;
  api->s2sDestroy = api_s2s_destroy;
  api->s2sAddMessage = api_s2s_add_message;
  api->s2sSetTimer = api_s2s_set_timer;
  api->counterCreate = api_counter_create;
  api->counterCreateAtomic = api_counter_create;
  api->counterOpen = api_counter_open;
  api->counterGetNames = api_counter_get_names;
  api->counterGet = api_counter_get;
  api->counterSet = api_counter_set;
  api->counterAdd = api_counter_add;
  api->counterIncrement = api_counter_increment;
  api->counterDecrement = api_counter_decrement;
  api->counterSubscribe = api_counter_subscribe;
  api->counterUnsubscribe = api_counter_unsubscribe;
  api->smartLockCreate = api_lock_create;
  api->smartLockDestroy = api_lock_destroy;
  api->smartLock = api_lock;
  api->smartUnlock = api_unlock;
  api->logMessage = api_log;
  api->timerStart = api_timer_start;
  api->timerStop = api_timer_stop;
  api->nowMs = api_now_ms;
  api->connectionsBroadcast = api_broadcast;
}
