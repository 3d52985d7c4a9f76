/* supervisor.c - the worker loops of one server: creating them, placing
 * connections on them, running them on threads, and the one shutdown
 * sequence across them.
 *
 * The shutdown: loop 0 (which takes the signals) calls application_stop
 * once per app, then mails GC_MAIL_STOP to every loop, itself included, so
 * whatever an adapter posted from application_stop runs first. Each loop
 * closes its listeners and its connections NORMAL and, when its last
 * connection is gone, mails GC_MAIL_DRAINED to loop 0; once all have,
 * loop 0 mails GC_MAIL_EXIT to every loop. application_shutdown comes
 * after the threads are joined (gc_server_loops_end), on the caller's. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "http_client.h"
#include "internal.h"
#include "log.h"
#include "mailbox.h"

struct gc_server *_Atomic gc__server_process;

int gc_server_loops_create(struct gc_server *s, size_t n, int threaded) {
  if (n < 1 || n > GC_WORKERS_MAX)
    return EINVAL;
  if (pthread_mutex_init(&s->conn_log_lock, NULL) != 0)
    return ENOMEM;
  s->conn_log_ready = 1;
  s->loops = gc_calloc(n, sizeof *s->loops);
  if (!s->loops)
    return ENOMEM;
  s->threaded = threaded;
  for (size_t i = 0; i < n; i++) {
    struct gc_loop *loop = gc_calloc(1, sizeof *loop);
    if (!loop)
      return ENOMEM;
    int rc = gc_loop_init(loop, s, (int)i);
    if (rc) {
      gc_free(loop);
      return rc;
    }
    s->loops[i] = loop;
    s->loop_count = i + 1;
  }
  gc__loop_current = s->loops[0];
  return 0;
}

int gc_server_listen(struct gc_server *s, int bind_sockets, char *err,
                     size_t errlen) {
  for (size_t i = 0; i < s->loop_count; i++) {
    int rc = gc_loop_listen(s->loops[i], bind_sockets, err, errlen);
    if (rc)
      return rc;
  }
  if (!bind_sockets)
    return 0; /* gc.testing: no admin listener, no Redis */
  int rc = gc__admin_start(s->loops[0], err, errlen);
  return rc ? rc : gc__redis_start(s->loops[0], err, errlen);
}

/* ---- placement ----------------------------------------------------------- */

static uint32_t fnv1a(const char *p, size_t n) {
  uint32_t h = 2166136261u;
  for (size_t i = 0; i < n; i++) {
    h ^= (uint8_t)p[i];
    h *= 16777619u;
  }
  return h;
}

/* The value of query parameter 'name' in 'target' (not decoded: the key
 * only has to be the same for the same room), or an empty one. */
static void query_value(const char *target, const char *name, const char **v,
                        size_t *vlen) {
  *v = "";
  *vlen = 0;
  const char *q = strchr(target, '?');
  size_t nl = strlen(name);
  while (q) {
    q++;
    size_t kl = strcspn(q, "=&#");
    if (kl == nl && strncmp(q, name, nl) == 0) {
      if (q[kl] == '=') {
        *v = q + kl + 1;
        *vlen = strcspn(*v, "&#");
      }
      return;
    }
    q = strchr(q, '&');
  }
}

int gc__app_worker(const struct gc_server *s, const struct gc_app *app,
                   const char *target) {
  if (s->loop_count == 1)
    return 0;
  if (app->home >= 0)
    return app->home;
  const char *key;
  size_t len;
  switch (app->conf->route) {
  case GC_ROUTE_QUERY:
    query_value(target, app->conf->route_param, &key, &len);
    break;
  case GC_ROUTE_PATH:
    key = target;
    len = strcspn(target, "?#");
    break;
  default:
    return -1; /* where it was accepted */
  }
  return (int)(fnv1a(key, len) % (uint32_t)s->loop_count);
}

int gc__server_place_apps(struct gc_server *s) {
  for (size_t k = 0; k < s->loop_count; k++) {
    struct gc_loop *loop = s->loops[k];
    gc_free(loop->app_ctr);
    loop->app_ctr = s->app_count ? gc_calloc(s->app_count, sizeof *loop->app_ctr)
                                 : NULL;
    if (s->app_count && !loop->app_ctr)
      return ENOMEM;
  }
  for (size_t i = 0; i < s->app_count; i++) {
    struct gc_app *app = &s->apps[i];
    const struct gc_adapter_conf *ac = app->adapter->conf;
    int lua = ac->type && strcmp(ac->type, "lua") == 0;
    /* A Lua state serves one thread: without a route the app has one, and
     * apps are spread over the workers by id. */
    app->home = lua && app->conf->route == GC_ROUTE_NONE
                    ? (int)((size_t)app->id % (s->loop_count ? s->loop_count : 1))
                    : -1;
  }
  return 0;
}

/* ---- running ------------------------------------------------------------- */

static void worker_main(void *arg) {
  struct gc_loop *loop = arg;
  gc__loop_current = loop;
  (void)gc_loop_run(loop);
  gc__loop_current = NULL;
}

int gc_server_run(struct gc_server *s) {
  struct gc_loop *first = s->loops[0];
  if (s->loop_count > 1)
    gc_log(GCL_NOTICE, "%zu worker loops running", s->loop_count);
  else
    gc_log(GCL_NOTICE, "1 worker loop running");
  for (size_t i = 1; i < s->loop_count; i++) {
    struct gc_loop *loop = s->loops[i];
    atomic_store(&loop->running, 1);
    int rc = uv_thread_create(&loop->thread, worker_main, loop);
    if (rc) {
      atomic_store(&loop->running, 0);
      gc_log(GCL_ERR, "cannot start worker %zu: %s; stopping", i, uv_strerror(rc));
      gc_server_stop(s);
      break;
    }
    loop->thread_started = 1;
  }
  atomic_store(&first->running, 1);
  int status = gc_loop_run_signals(first);
  for (size_t i = 1; i < s->loop_count; i++) {
    struct gc_loop *loop = s->loops[i];
    if (loop->thread_started && uv_thread_join(&loop->thread) == 0)
      loop->thread_started = 0;
  }
  gc__loop_current = first;
  return status ? status : atomic_load(&s->forced) ? GC_EXIT_FORCED : 0;
}

/* ---- shutdown ------------------------------------------------------------ */

static void post_all(struct gc_server *s, int kind) {
  for (size_t i = 0; i < s->loop_count; i++) {
    struct gc_mail *m = gc_mail_new(kind, 0);
    if (!m) {
      gc_log(GCL_ERR, "out of memory telling worker %zu to stop", i);
      continue;
    }
    (void)gc_mail_post(s->loops[i], m);
  }
}

void gc_server_stop(struct gc_server *s) {
  if (atomic_exchange(&s->stopping, 1)) {
    gc_log(GCL_WARN, "second stop request: dropping every connection");
    atomic_store(&s->forced, 1);
    post_all(s, GC_MAIL_DROP_ALL);
    return;
  }
  int64_t open = atomic_load(&s->open_total);
  gc_log(GCL_NOTICE, "shutting down: %lld connection(s) open", (long long)open);
  gc_server_stop_apps(s);
  post_all(s, GC_MAIL_STOP);
}

void gc__server_loop_drained(struct gc_server *s) {
  if (++s->loops_drained == s->loop_count)
    post_all(s, GC_MAIL_EXIT);
}

int gc_server_finished(const struct gc_server *s) {
  for (size_t i = 0; i < s->loop_count; i++)
    if (!s->loops[i]->finished)
      return 0;
  return s->loop_count > 0;
}

/* After the loops ended: what is still in their mailboxes runs (on this
 * thread, each as its loop), then they take no more. */
void gc_server_loops_quiesce(struct gc_server *s) {
  for (size_t i = 0; i < s->loop_count; i++) {
    gc__mailbox_close(s->loops[i]);
    gc__loop_current = s->loops[i];
    gc__http_loop_stop(s->loops[i]); /* a loop that never got GC_MAIL_EXIT */
  }
  gc__loop_current = s->loop_count ? s->loops[0] : NULL;
}

int gc_server_loops_close(struct gc_server *s) {
  int rc = 0;
  for (size_t i = s->loop_count; i-- > 0;) {
    struct gc_loop *loop = s->loops[i];
    gc__mailbox_close(loop);
    int r = gc_loop_close(loop);
    if (r && !rc)
      rc = r;
    gc_free(loop);
  }
  gc_free(s->loops);
  s->loops = NULL;
  s->loop_count = 0;
  gc_http_tls_stop(s); /* no connection is left to use it */
  if (s->conn_log_ready)
    pthread_mutex_destroy(&s->conn_log_lock);
  s->conn_log_ready = 0;
  return rc;
}

/* ---- the worker members of the API --------------------------------------- */

int gc__worker_enter(struct gc_server *s, int worker) {
  static _Thread_local struct gc_loop *own; /* the thread's loop before */
  static _Thread_local int entered;
  if (worker < 0) {
    if (entered) {
      gc__loop_current = own;
      entered = 0;
    }
    return 0;
  }
  if ((size_t)worker >= s->loop_count)
    return EINVAL;
  struct gc_loop *loop = s->loops[worker];
  if (s->threaded && atomic_load(&loop->running) && loop != gc__loop_current)
    return EBUSY;
  if (!entered) {
    own = gc__loop_current;
    entered = 1;
  }
  gc__loop_current = loop;
  return 0;
}
