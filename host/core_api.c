/* core_api.c - the 'struct core_api' table handed to every adapter.
 *
 * Each entry point validates everything an adapter can get wrong and
 * answers EINVAL, never asserting: adapters are third-party code. The
 * Game Carrier signatures carry no context, so an entry point finds the
 * server through the calling thread (gc__loop_current on a worker, the
 * process's supervisor on an adapter's own thread) and the loop of a
 * connection or timer through its handle's tag. A call for the calling
 * worker's own connection runs at once; any other travels as a mail
 * (mailbox.h) and answers 0 once the arguments check out, since whether
 * the connection is still open is known only to its loop. */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include "alloc.h"
#include "http_client.h"
#include "internal.h"
#include "link.h"
#include "log.h"
#include "mailbox.h"

static struct gc_server *api_server(void) {
  struct gc_loop *loop = gc__loop_current;
  return loop ? loop->server : atomic_load(&gc__server_process);
}

/* The loop that owns the connection 'h' (not the caller's), or NULL for
 * a handle that is stale or that no loop can own. A connection may still
 * end before its loop reads the mail: the call is then dropped there. */
static struct gc_loop *owner_of(intptr_t h) {
  struct gc_server *s = api_server();
  unsigned tag = gc_handle_tag(h);
  if (!s || !h || tag >= s->loop_count ||
      !gc_handle_table_alive(&s->loops[tag]->conns, h))
    return NULL;
  return s->loops[tag];
}

/* The same for an application timer. */
static struct gc_loop *timer_owner_of(intptr_t id) {
  struct gc_server *s = api_server();
  unsigned tag = gc_handle_tag(id);
  if (!s || !id || tag >= s->loop_count ||
      !gc_handle_table_alive(&s->loops[tag]->timers.ids, id))
    return NULL;
  return s->loops[tag];
}

/* Is 'h' the calling worker's? */
static inline int here(intptr_t h) {
  struct gc_loop *loop = gc__loop_current;
  return loop && gc_handle_tag(h) == (unsigned)loop->id;
}

/* Posts 'm' for 'h' to its loop: 0, or EINVAL (no such loop, or it has
 * ended, so no connection of it is open). */
static int post_to(struct gc_loop *to, intptr_t h, struct gc_mail *m) {
  if (!to) {
    gc_mail_free(m);
    return EINVAL;
  }
  m->handle = h;
  return gc_mail_post(to, m) == 0 ? 0 : EINVAL;
}

static GCT_INT api_get_opt(GCT_CSTR name, GCT_INT type, GCT_PTR value) {
  struct gc_server *s = api_server();
  if (!s)
    return EINVAL;
  return gc_config_getopt(s->cfg, name, type, value);
}

/* connectionAddMessageEx; connectionAddMessage is its GC_MESSAGE_DEFAULT.
 * Handed to another loop, a text message is checked here (EILSEQ before
 * it leaves), a DEFAULT one there, where the app's type is known. */
static GCT_INT api_add_message_ex(GCT_INTPTR h, GCT_CPTR data, GCT_SIZE len,
                                  GCT_INTPTR cookie, GCT_INT flags) {
  if (here(h))
    return gc_conn_send(gc__loop_current, h, data, len, cookie, flags);
  struct gc_server *s = api_server();
  struct gc_loop *to = owner_of(h);
  if (!to || (!data && len))
    return EINVAL;
  int rc = gc__msg_text_check(flags, data, len);
  if (rc)
    return rc;
  if (len > s->cfg->max_output_msg_size)
    return EMSGSIZE;
  struct gc_mail *m = gc_mail_new(GC_MAIL_SEND, len);
  if (!m)
    return ENOMEM;
  m->cookie = cookie;
  m->len = len;
  m->level = flags;
  if (len)
    memcpy(m->data, data, len);
  return post_to(to, h, m);
}

static GCT_INT api_add_message(GCT_INTPTR h, GCT_PTR data, GCT_SIZE len,
                               GCT_INTPTR cookie) {
  return api_add_message_ex(h, data, len, cookie, GC_MESSAGE_DEFAULT);
}

/* connectionCloseEx; connectionClose is it without code and text. */
static GCT_INT api_close_ex(GCT_INTPTR h, GCT_INT reason, GCT_INT code,
                            GCT_CSTR text) {
  if (here(h))
    return gc_conn_close_ex(gc__loop_current, h, reason, code, text);
  if (gc__close_args_check(reason, code, text))
    return EINVAL;
  struct gc_loop *to = owner_of(h);
  if (!to)
    return EINVAL;
  size_t n = text && reason == GC_CLOSE_REASON_NORMAL ? strlen(text) : 0;
  struct gc_mail *m = gc_mail_new(GC_MAIL_CLOSE, n ? n + 1 : 0);
  if (!m)
    return ENOMEM;
  m->arg = reason;
  m->level = code;
  if (n) {
    memcpy(m->data, text, n + 1);
    m->stat = 1;
  }
  return post_to(to, h, m);
}

static GCT_INT api_close(GCT_INTPTR h, GCT_INT reason) {
  return api_close_ex(h, reason, 0, NULL);
}

/* Only inside the connection's on_connect, which runs on its own loop. */
static GCT_INT api_refuse(GCT_INTPTR h, GCT_INT status, GCT_CSTR text) {
  if (!here(h))
    return EINVAL;
  return gc_conn_refuse(gc__loop_current, h, status, text);
}

static GCT_INT api_set_timer(GCT_INTPTR h, GCT_INT ms) {
  if (here(h))
    return gc_conn_set_timer(gc__loop_current, h, ms);
  struct gc_loop *to = owner_of(h);
  if (!to)
    return EINVAL;
  struct gc_mail *m = gc_mail_new(GC_MAIL_TIMER, 0);
  if (!m)
    return ENOMEM;
  m->arg = ms;
  return post_to(to, h, m);
}

static GCT_INT api_set_limit(GCT_INTPTR h, GCT_INT level, GCT_INT id,
                             GCT_COUNTER_VALUE value) {
  if (here(h))
    return gc_conn_set_limit(gc__loop_current, h, level, id, value);
  struct gc_loop *to = owner_of(h);
  if (!to)
    return EINVAL;
  struct gc_mail *m = gc_mail_new(GC_MAIL_LIMIT, 0);
  if (!m)
    return ENOMEM;
  m->level = level;
  m->stat = id;
  m->arg = value;
  return post_to(to, h, m);
}

/* ---- server to server (link_api.c) -------------------------------------- */

static GCT_INT api_s2s_create(GCT_INT adapter, GCT_INTPTR user, GCT_INT proto,
                              GCT_PTR host, GCT_INT port, GCT_PTR app,
                              struct client_events *events) {
  return gc__s2s_create(adapter, user, proto, host, port, app, events);
}

static GCT_INT api_s2s_destroy(GCT_INTPTR h) { return gc__s2s_destroy(h); }

static void api_s2s_add_message(GCT_INTPTR h, GCT_PTR data, GCT_SIZE len,
                                GCT_INTPTR cookie) {
  gc__s2s_add_message(h, data, len, cookie);
}

static GCT_INT api_s2s_set_timer(GCT_INTPTR h, GCT_INT ms) {
  return gc__s2s_set_timer(h, ms);
}

/* ---- counters ------------------------------------------------------------ */

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

int gc__app_timer_stop(struct gc_loop *loop, intptr_t id) {
  /* Only application timers: connection and close timers are the host's. */
  const struct gc_timer *tm = gc_handle_table_get(&loop->timers.ids, id);
  if (!tm || tm->cb != app_timer_fired)
    return EINVAL;
  return gc_timers_stop(&loop->timers, id);
}

static GCT_INT api_timer_stop(GCT_INTPTR id) {
  if (here(id))
    return gc__app_timer_stop(gc__loop_current, id);
  struct gc_loop *to = timer_owner_of(id);
  if (!to)
    return EINVAL;
  struct gc_mail *m = gc_mail_new(GC_MAIL_TIMER_STOP, 0);
  if (!m)
    return ENOMEM;
  return post_to(to, id, m);
}

/* Handles of several loops: the payload is serialized once and shared;
 * each other loop gets one mail with its receivers, so a broadcast crosses
 * to a loop once, not once per receiver. All or nothing on ENOMEM. */
static GCT_INT api_broadcast_ex(const GCT_INTPTR *handles, GCT_SIZE count,
                                GCT_CPTR data, GCT_SIZE len, GCT_INTPTR cookie,
                                GCT_INT flags, GCT_SIZE *queued) {
  struct gc_server *s = api_server();
  struct gc_loop *cur = gc__loop_current;
  if (s && s->loop_count == 1 && cur)
    return gc_conn_broadcast(cur, handles, count, data, len, cookie, flags,
                             queued);
  if (queued)
    *queued = 0;
  if (!s || (!handles && count) || (!data && len) || gc__msg_flags_check(flags))
    return EINVAL;
  if (len > s->cfg->max_output_msg_size)
    return EMSGSIZE;
  size_t per[GC_WORKERS_MAX] = {0};
  for (size_t i = 0; i < count; i++) {
    unsigned tag = gc_handle_tag(handles[i]);
    if (handles[i] && tag < s->loop_count)
      per[tag]++;
  }
  if (cur && per[cur->id] == count)
    return gc_conn_broadcast(cur, handles, count, data, len, cookie, flags,
                             queued);
  /* UTF-8 checked once, here, for the receivers of every loop. */
  int ok = 1;
  if (len && (flags == GC_MESSAGE_TEXT ||
              (flags == GC_MESSAGE_DEFAULT && gc__server_any_text(s))))
    ok = gc__msg_text_check(GC_MESSAGE_TEXT, data, len) == 0;
  if (!ok && flags == GC_MESSAGE_TEXT)
    return EILSEQ;
  struct gc_shared *sh = gc_shared_new(data, len);
  if (!sh)
    return ENOMEM;
  sh->utf8_ok = (uint8_t)ok;
  gc_shared_ref(sh); /* ours, until the mails are out */
  struct gc_mail *mails[GC_WORKERS_MAX] = {0};
  int rc = 0;
  for (size_t l = 0; l < s->loop_count && !rc; l++) {
    if (!per[l] || (cur && (size_t)cur->id == l))
      continue;
    if (!(mails[l] = gc_mail_new(GC_MAIL_BCAST, per[l] * sizeof(intptr_t)))) {
      rc = ENOMEM;
      break;
    }
    gc_shared_ref(sh);
    mails[l]->ptr = sh;
    mails[l]->cookie = cookie;
    mails[l]->level = flags;
  }
  if (!rc) {
    for (size_t i = 0; i < count; i++) {
      unsigned tag = gc_handle_tag(handles[i]);
      if (handles[i] && tag < s->loop_count && mails[tag]) {
        intptr_t *to = (intptr_t *)(void *)mails[tag]->data;
        to[mails[tag]->len++] = handles[i];
      }
    }
    size_t n = 0;
    /* The caller's own receivers first: the handles of other loops are
     * not in its table, so they are skipped there. */
    if (cur && per[cur->id])
      rc = gc__conn_broadcast_shared(cur, handles, count, sh, cookie, flags,
                                     &n);
    for (size_t l = 0; !rc && l < s->loop_count; l++)
      if (mails[l]) {
        struct gc_mail *m = mails[l];
        mails[l] = NULL;
        size_t k = m->len;
        if (gc_mail_post(s->loops[l], m) == 0)
          n += k;
      }
    if (queued && !rc)
      *queued = n;
  }
  for (size_t l = 0; l < s->loop_count; l++)
    gc_mail_free(mails[l]);
  gc_shared_release(sh);
  return rc;
}

static GCT_INT api_broadcast(const GCT_INTPTR *handles, GCT_SIZE count,
                             GCT_PTR data, GCT_SIZE len, GCT_INTPTR cookie,
                             GCT_SIZE *queued) {
  return api_broadcast_ex(handles, count, data, len, cookie,
                          GC_MESSAGE_DEFAULT, queued);
}

static int64_t api_now_ms(void) {
  struct gc_loop *loop = gc__loop_current;
  if (loop)
    return gc_loop_now(loop);
  /* An adapter's own thread: the clock the loops read (uv_now is this,
   * taken once per turn). */
  return api_server() ? (int64_t)(uv_hrtime() / 1000000) : 0;
}

/* ---- workers ------------------------------------------------------------- */

static GCT_INT api_worker_count(void) {
  struct gc_server *s = api_server();
  return s ? (GCT_INT)s->loop_count : 1;
}

static GCT_INT api_worker_id(void) {
  struct gc_loop *loop = gc__loop_current;
  return loop ? loop->id : -1;
}

static GCT_INT api_worker_post(GCT_INT worker, GCTimerCallback cb,
                               GCT_INTPTR user) {
  struct gc_server *s = api_server();
  if (!s || !cb || worker < 0 || (size_t)worker >= s->loop_count)
    return EINVAL;
  struct gc_mail *m = gc_mail_new(GC_MAIL_POST, 0);
  if (!m)
    return ENOMEM;
  _Static_assert(sizeof cb == sizeof m->ptr, "function pointers fit in void *");
  memcpy(&m->ptr, &cb, sizeof cb);
  m->cookie = user;
  return gc_mail_post(s->loops[worker], m);
}

static GCT_INT api_application_worker(GCT_INT app_id) {
  struct gc_server *s = api_server();
  if (!s || app_id < 0 || (size_t)app_id >= s->app_count)
    return -2;
  return s->apps[app_id].home;
}

static GCT_INT api_worker_enter(GCT_INT worker) {
  struct gc_server *s = api_server();
  return s ? gc__worker_enter(s, worker) : EINVAL;
}

/* API 1.3: channels between hosts (redis.c). */
static GCT_INT api_channel_publish(GCT_INT app_id, GCT_CSTR channel,
                                   GCT_CPTR data, GCT_SIZE len) {
  return gc__redis_publish(api_server(), app_id, channel, data, len);
}

/* API 1.4: outgoing HTTP (http_client.c). */
static GCT_INTPTR api_http_request(GCT_INT app_id,
                                   const struct gc_http_request *req,
                                   GCHttpCallback cb, GCT_INTPTR user,
                                   GCT_INT *err) {
  int e = 0;
  intptr_t id = gc__http_request(app_id, req, cb, user, &e);
  if (err)
    *err = id ? 0 : e;
  return id;
}

static GCT_INT api_http_cancel(GCT_INTPTR id) { return gc__http_cancel(id); }

/* API 1.4: Redis commands from a worker (redis_cmd.c). */
static GCT_INT api_redis_command(GCT_INT argc, const GCT_CSTR *argv,
                                 const GCT_SIZE *argvlen, GCRedisCallback cb,
                                 GCT_INTPTR user) {
  return gc__redis_command(api_server(), argc, argv, argvlen, cb, user);
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
  api->workerCount = api_worker_count;
  api->workerId = api_worker_id;
  api->workerPost = api_worker_post;
  api->applicationWorker = api_application_worker;
  api->workerEnter = api_worker_enter;
  api->connectionAddMessageEx = api_add_message_ex;
  api->connectionsBroadcastEx = api_broadcast_ex;
  api->connectionCloseEx = api_close_ex;
  api->connectionRefuse = api_refuse;
  api->channelPublish = api_channel_publish;
  api->httpRequest = api_http_request;
  api->httpCancel = api_http_cancel;
  api->redisCommand = api_redis_command;
}
