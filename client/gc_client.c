/* gc_client.c - libgc_client.so (include/game-carrier/client.h): gcs's
 * links (host/link*.c) on a worker loop of their own, without listeners
 * or adapters. Active and Hybrid run that loop on a library thread;
 * Passive runs it inside gc_clients_service(). Calls from any thread use
 * the link API's own routing (link_api.c): on the loop's thread at once,
 * from others by mail. Hybrid wraps the caller's events: the library
 * thread queues them (messages copied) and gc_clients_service() delivers
 * them on the caller's thread. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <game-carrier/client.h>

#include "alloc.h"
#include "internal.h"
#include "link.h"
#include "log.h"
#include "mailbox.h"
#include "tls.h"

static struct gc_server srv;
static struct gc_config *cfg;
static int mode, started;
static uv_thread_t thread;
static int thread_started;
static int log_level = GCL_NORMAL, log_flags = GCL_STANDARD_FLAGS;
static char *log_file; /* NULL: the default; "" none */
static int log_set;

/* ---- Hybrid: events queued by the library thread ------------------------------- */

enum { EV_CONNECT, EV_DISCONNECT, EV_ERROR, EV_MESSAGE, EV_SENT, EV_TIMER };

struct hy { /* one per gc_client_start in Hybrid mode */
  struct client_events ev;
  GCT_INTPTR user;
};

struct qev {
  struct qev *next;
  int kind, status;
  struct hy *hy;
  GCT_INTPTR handle, cookie;
  size_t len;
  char data[]; /* a message, or a reason (NUL-terminated) */
};

static pthread_mutex_t q_lock = PTHREAD_MUTEX_INITIALIZER;
static struct qev *q_head, *q_tail;

static void q_push(int kind, GCT_INTPTR user, const void *data, size_t len,
                   GCT_INTPTR handle, GCT_INTPTR cookie, int status) {
  struct qev *e = malloc(sizeof *e + len + 1);
  if (!e) {
    gc_log(GCL_ERR, "gc_client: out of memory queueing an event: lost");
    return;
  }
  e->next = NULL;
  e->kind = kind;
  e->status = status;
  e->hy = (struct hy *)user;
  e->handle = handle;
  e->cookie = cookie;
  e->len = len;
  if (len)
    memcpy(e->data, data, len);
  e->data[len] = 0;
  pthread_mutex_lock(&q_lock);
  if (q_tail)
    q_tail->next = e;
  else
    q_head = e;
  q_tail = e;
  pthread_mutex_unlock(&q_lock);
}

static void hy_connect(GCT_INTPTR u, GCT_INTPTR h) { q_push(EV_CONNECT, u, NULL, 0, h, 0, 0); }
static void hy_disconnect(GCT_INTPTR u) { q_push(EV_DISCONNECT, u, NULL, 0, 0, 0, 0); }
static void hy_error(GCT_INTPTR u, GCT_CSTR r) {
  q_push(EV_ERROR, u, r ? r : "", r ? strlen(r) : 0, 0, 0, 0);
}
static void hy_message(GCT_INTPTR u, GCT_PTR d, GCT_SIZE n) { q_push(EV_MESSAGE, u, d, n, 0, 0, 0); }
static void hy_sent(GCT_INTPTR u, GCT_INTPTR c, GCT_SIZE n, int st) {
  q_push(EV_SENT, u, NULL, 0, (GCT_INTPTR)n, c, st);
}
static void hy_timer(GCT_INTPTR u) { q_push(EV_TIMER, u, NULL, 0, 0, 0, 0); }

static struct client_events hy_events = {hy_connect, hy_disconnect, hy_error,
                                         hy_message, hy_sent, hy_timer};

static int q_deliver(void) {
  pthread_mutex_lock(&q_lock);
  struct qev *e = q_head;
  q_head = q_tail = NULL;
  pthread_mutex_unlock(&q_lock);
  int n = 0;
  while (e) {
    struct qev *next = e->next;
    struct hy *h = e->hy;
    const struct client_events *ev = &h->ev;
    switch (e->kind) {
    case EV_CONNECT:
      if (ev->on_client_connect)
        ev->on_client_connect(h->user, e->handle);
      break;
    case EV_DISCONNECT:
      if (ev->on_client_disconnect)
        ev->on_client_disconnect(h->user);
      break;
    case EV_ERROR:
      if (ev->on_client_connection_error)
        ev->on_client_connection_error(h->user, e->data);
      break;
    case EV_MESSAGE:
      if (ev->on_client_message)
        ev->on_client_message(h->user, e->data, e->len);
      break;
    case EV_SENT:
      if (ev->on_client_message_sent)
        ev->on_client_message_sent(h->user, e->cookie, (GCT_SIZE)e->handle, e->status);
      break;
    case EV_TIMER:
      if (ev->on_client_timer)
        ev->on_client_timer(h->user);
      break;
    }
    if (e->kind == EV_DISCONNECT || e->kind == EV_ERROR)
      free(h); /* the attempt's final event */
    free(e);
    e = next;
    n++;
  }
  return n;
}

/* ---- the loop ------------------------------------------------------------------ */

static struct gc_loop *the_loop(void) { return srv.loop_count ? srv.loops[0] : NULL; }

static void thread_main(void *arg) {
  (void)gc_loop_run(arg);
}

/* Passive: one turn of the loop on the caller's thread. */
static void pump(struct gc_loop *loop) {
  struct gc_loop *was = gc__loop_current;
  gc__loop_current = loop;
  (void)gc__mailbox_run(loop);
  (void)uv_run(&loop->uv, UV_RUN_NOWAIT);
  gc__loop_flush(loop);
  gc__loop_current = was;
}

static int log_start(void) {
  char path[512];
  const char *file = log_file;
  if (!log_set || !file) {
    snprintf(path, sizeof path, "gc_client.%ld.log", (long)getpid());
    file = path;
  } else if (strstr(file, "%p")) {
    const char *p = strstr(file, "%p");
    snprintf(path, sizeof path, "%.*s%ld%s", (int)(p - file), file, (long)getpid(), p + 2);
    file = path;
  }
  gc_log_set_stderr((log_flags & GCL_TO_STDERR) != 0);
  return gc_log_open(*file ? file : NULL, log_level);
}

GC_CLIENT_API GCT_INT gc_clients_init(GCT_INT m) {
  if (m != GC_MODE_PASSIVE && m != GC_MODE_ACTIVE && m != GC_MODE_HYBRID)
    return EINVAL;
  if (started)
    return EALREADY;
  int rc = log_start();
  if (rc)
    return rc;
  memset(&srv, 0, sizeof srv);
  if (!(cfg = gc_calloc(1, sizeof *cfg)))
    return ENOMEM;
  cfg->close_drain_ms = 5000;
  cfg->max_output_msg_size = 16u << 20;
  cfg->s2s_verify = 1; /* wss: the system's store (SSL_CERT_FILE, SSL_CERT_DIR) */
  srv.cfg = cfg;
  char err[256];
  if (gc_tls_s2s_start(&srv, err, sizeof err) != 0) {
    gc_log(GCL_ERR, "gc_client: %s", err);
    gc_free(cfg);
    return EIO;
  }
  if ((rc = gc_server_loops_create(&srv, 1, m != GC_MODE_PASSIVE)) != 0) {
    (void)gc_server_loops_close(&srv);
    gc_tls_s2s_stop(&srv);
    gc_free(cfg);
    return rc;
  }
  /* The loop is the library thread's (or, Passive, gc_clients_service's):
   * the caller's calls go by mail, not straight into the loop. */
  gc__loop_current = NULL;
  atomic_store(&srv.phase, GC_PHASE_RUNNING);
  mode = m;
  atomic_store(&gc__server_process, &srv);
  if (m != GC_MODE_PASSIVE) {
    if (uv_thread_create(&thread, thread_main, srv.loops[0]) != 0) {
      atomic_store(&gc__server_process, NULL);
      (void)gc_server_loops_close(&srv);
      gc_tls_s2s_stop(&srv);
      gc_free(cfg);
      return EAGAIN;
    }
    thread_started = 1;
  }
  started = 1;
  return 0;
}

GC_CLIENT_API GCT_INT gc_clients_service(void) {
  if (!started)
    return -1;
  if (mode == GC_MODE_PASSIVE)
    pump(the_loop());
  return mode == GC_MODE_ACTIVE ? 0 : q_deliver();
}

GC_CLIENT_API void gc_clients_cleanup(void) {
  if (!started)
    return;
  struct gc_loop *loop = the_loop();
  if (thread_started) {
    struct gc_mail *m = gc_mail_new(GC_MAIL_STOP, 0);
    if (m)
      (void)gc_mail_post(loop, m);
    uv_thread_join(&thread);
    thread_started = 0;
  } else {
    gc__loop_current = loop;
    gc__loop_stop_local(loop);
    gc__loop_current = NULL;
    /* The NORMAL closes end when the peers answer, or at close_drain_ms. */
    for (int i = 0; i < 6000 && !loop->finished; i++) {
      pump(loop);
      if (!loop->finished)
        usleep(1000);
    }
  }
  gc_server_loops_quiesce(&srv);
  (void)q_deliver();
  gc__loop_current = NULL;
  atomic_store(&gc__server_process, NULL);
  (void)gc_server_loops_close(&srv);
  gc_tls_s2s_stop(&srv);
  gc_free(cfg);
  cfg = NULL;
  started = 0;
  gc_log_close();
}

/* ---- connections ------------------------------------------------------------------ */

GC_CLIENT_API GCT_INT gc_client_start(GCT_INTPTR user, GCT_INT proto, GCT_CSTR host,
                                      GCT_INT port, GCT_CSTR app,
                                      struct client_events *events) {
  if (!started)
    return ESHUTDOWN;
  if (!events)
    return EINVAL;
  if (mode != GC_MODE_HYBRID)
    return gc__s2s_create(0, user, proto, host, port, app, events);
  struct hy *h = malloc(sizeof *h);
  if (!h)
    return ENOMEM;
  h->ev = *events;
  h->user = user;
  int rc = gc__s2s_create(0, (GCT_INTPTR)h, proto, host, port, app, &hy_events);
  if (rc)
    free(h);
  return rc;
}

GC_CLIENT_API GCT_INT gc_client_stop(GCT_INTPTR h) {
  return started ? gc__s2s_destroy(h) : EINVAL;
}

GC_CLIENT_API void gc_client_add_message(GCT_INTPTR h, GCT_PTR data, GCT_SIZE len,
                                         GCT_INTPTR cookie) {
  if (started)
    gc__s2s_add_message(h, data, len, cookie);
}

GC_CLIENT_API GCT_INT gc_client_set_timer(GCT_INTPTR h, GCT_INT ms) {
  return started ? gc__s2s_set_timer(h, ms) : EINVAL;
}

/* ---- logging ------------------------------------------------------------------------ */

GC_CLIENT_API void gc_log_setopt(GCT_INT level, GCT_CSTR file_name, GCT_INT flags) {
  log_level = level;
  log_flags = flags;
  free(log_file);
  log_file = file_name ? strdup(file_name) : NULL;
  log_set = 1;
}

GC_CLIENT_API void gc_log_message(GCT_INT level, GCT_CSTR msg) {
  gc_log(level, "%s", msg ? msg : "");
}
