/* loop.c - one worker loop: the corked flush, the timer heap, the
 * housekeeping tick, signals (loop 0's), its part of the shutdown, and its
 * life (init, run, close). Listeners are in listen.c. */
#include <errno.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "http_client.h"
#include "internal.h"
#include "tls.h"
#include "log.h"
#include "link.h"
#include "mailbox.h"
#include "uring.h"
#include "uring_recv.h"

_Thread_local struct gc_loop *gc__loop_current;

int64_t gc_loop_now(const struct gc_loop *loop) {
  return loop->virtual_clock ? loop->vnow : (int64_t)uv_now(&loop->uv);
}

/* ---- dirty list: connections to flush this turn -------------------------- */

void gc__loop_mark_dirty(struct gc_loop *loop, struct gc_conn *c) {
  if (c->dirty)
    return;
  c->dirty = 1;
  c->dirty_prev = NULL;
  c->dirty_next = loop->dirty;
  if (loop->dirty)
    loop->dirty->dirty_prev = c;
  loop->dirty = c;
}

void gc__loop_unmark_dirty(struct gc_loop *loop, struct gc_conn *c) {
  if (c->dirty != 1)
    return; /* 2: in the batch being flushed, which skips dead ones */
  if (c->dirty_prev)
    c->dirty_prev->dirty_next = c->dirty_next;
  else
    loop->dirty = c->dirty_next;
  if (c->dirty_next)
    c->dirty_next->dirty_prev = c->dirty_prev;
  c->dirty = 0;
  c->dirty_prev = c->dirty_next = NULL;
}

/* Flushes the connections dirty at entry; those dirtied meanwhile (an
 * on_message_sent that sends again) wait for the next phase, so one
 * connection cannot starve the loop. */
void gc__loop_flush(struct gc_loop *loop) {
  struct gc_conn *batch = loop->dirty;
  loop->dirty = NULL;
  if (!batch)
    return;
  for (struct gc_conn *c = batch; c; c = c->dirty_next)
    c->dirty = 2; /* in the batch, not on the list */
  struct gc_uring *u = gc__uring_get(loop);
  if (u) {
    /* First every plain send into one submission (uring.h): no adapter
     * runs until it is done. The others stay in the batch, in order. */
    struct gc_conn *rest = NULL, *tail = NULL;
    while (batch) {
      struct gc_conn *c = batch;
      batch = c->dirty_next;
      c->dirty_next = c->dirty_prev = NULL;
      if (gc__uring_full(u))
        gc__uring_run(loop); /* its handlers leave this batch's list be */
      if (gc__conn_flush_offer(c, u)) {
        c->dirty = 0;
        continue;
      }
      if (tail)
        tail->dirty_next = c;
      else
        rest = c;
      c->dirty_prev = tail;
      tail = c;
    }
    gc__uring_run(loop);
    batch = rest;
  }
  while (batch) {
    struct gc_conn *c = batch;
    batch = c->dirty_next;
    if (batch)
      batch->dirty_prev = NULL;
    c->dirty = 0;
    c->dirty_next = c->dirty_prev = NULL;
    gc__conn_flush(c);
  }
}

static void loop_on_timer(uv_timer_t *t) {
  struct gc_loop *loop = t->data;
  gc_timers_run(&loop->timers, gc_loop_now(loop));
}

static void on_prepare(uv_prepare_t *p) {
  struct gc_loop *loop = p->data;
  gc__conn_resume_reads(loop);
  gc__loop_flush(loop);
  gc__urecv_submit(loop); /* receives armed or cancelled this turn */
  /* Timers started by anything this turn are armed before the loop blocks:
   * one uv timer for the earliest deadline of the heap. */
  int64_t due = gc_timers_next_due(&loop->timers);
  if (due < 0 || loop->virtual_clock) {
    uv_timer_stop(&loop->timer);
    return;
  }
  int64_t wait = due - gc_loop_now(loop);
  (void)uv_timer_start(&loop->timer, loop_on_timer, wait > 0 ? (uint64_t)wait : 0, 0);
}

static void on_check(uv_check_t *ch) { gc__loop_flush(ch->data); }

/* ---- shutdown ------------------------------------------------------------ */

/* Every loop drained (GC_MAIL_EXIT): leave uv_run. */
void gc__loop_exit(struct gc_loop *loop) {
  if (loop->finished)
    return;
  loop->finished = 1;
  if (loop->id == 0) /* no channel message reaches an adapter after this */
    gc__redis_stop(loop->server);
  gc__http_loop_stop(loop); /* pending requests: ECANCELED, now */
  uv_stop(&loop->uv);
}

/* Stopping and empty: tell loop 0, once (supervisor.c). */
void gc__loop_conn_gone(struct gc_loop *loop) {
  if (!loop->stopping || loop->conn_count || loop->link_count || loop->drained)
    return;
  loop->drained = 1;
  struct gc_mail *m = gc_mail_new(GC_MAIL_DRAINED, 0);
  if (!m || gc_mail_post(loop->server->loops[0], m) != 0)
    gc_log(GCL_ERR, "worker %d cannot report its end: out of memory", loop->id);
}

static void close_listener(uv_handle_t *h) { (void)h; }

/* GC_MAIL_STOP: stop accepting and close every connection NORMAL; the
 * loop reports drained once every on_disconnect was delivered. */
void gc__loop_stop_local(struct gc_loop *loop) {
  if (loop->stopping)
    return;
  loop->stopping = 1;
  gc__watch_stop(loop);
  for (size_t i = 0; i < loop->listener_count; i++)
    if (loop->listeners[i]->tcp.loop &&
        !uv_is_closing((uv_handle_t *)&loop->listeners[i]->tcp))
      uv_close((uv_handle_t *)&loop->listeners[i]->tcp, close_listener);
  gc__conn_close_all(loop, GC_CLOSE_REASON_NORMAL);
  gc__loop_conn_gone(loop);
}

int gc__loop_forced_drop(struct gc_loop *loop) {
  if (!loop->stopping)
    return GCL_INFO;
  atomic_store(&loop->server->forced, 1);
  return GCL_NOTICE;
}

/* ---- signals ------------------------------------------------------------- */

/* SIGTERM with drain_s: /health answers 503 while players keep playing,
 * so the load balancer sends no new ones; then the shutdown. */
static void drain_over(uv_timer_t *t) {
  struct gc_loop *loop = t->data;
  gc_log(GCL_NOTICE, "drained for %u s: shutting down", loop->server->cfg->drain_s);
  gc_server_stop(loop->server);
}

static void drain_start(struct gc_loop *loop) {
  struct gc_server *srv = loop->server;
  atomic_store(&srv->draining, 1);
  gc_log(GCL_NOTICE, "draining: /health answers 503 for %u s, then the "
         "shutdown (another signal starts it now)", srv->cfg->drain_s);
  loop->drain_timer.data = loop;
  if (uv_timer_init(&loop->uv, &loop->drain_timer) != 0 ||
      uv_timer_start(&loop->drain_timer, drain_over,
                     (uint64_t)srv->cfg->drain_s * 1000, 0) != 0) {
    gc_log(GCL_WARN, "cannot time the drain: shutting down now");
    gc_server_stop(srv);
  }
}

static void on_signal(uv_signal_t *s, int signum) {
  struct gc_loop *loop = s->data;
  struct gc_server *srv = loop->server;
  unsigned received = gc__signal_guard_received();
  gc_log(GCL_NOTICE, "signal %d received", signum);
  if (!atomic_load(&srv->stopping)) {
    gc__signal_guard_take(received);
    if (signum == SIGTERM && srv->cfg->drain_s && !atomic_load(&srv->draining)) {
      drain_start(loop);
      return;
    }
    if (atomic_load(&srv->draining))
      (void)uv_timer_stop(&loop->drain_timer); /* asked again: stop now */
  } else {
    /* Taken once every loop dropped its connections: a loop stuck in an
     * adapter never does, and the guard ends the process. */
    atomic_store(&srv->drop_mark, received);
    atomic_store(&srv->drops_pending, (int)srv->loop_count);
  }
  gc_server_stop(srv);
}

/* SIGHUP reloads what the adapters can (the Lua adapter: its scripts),
 * as "systemctl reload" expects; its default action would end the process
 * without a word. Loop 0's, for gcs only: started when gc_loop_listen
 * binds real sockets (gc.testing's embedding keeps its dispositions). */
static void on_sighup(uv_signal_t *s, int signum) {
  struct gc_loop *loop = s->data;
  (void)signum;
  if (atomic_load(&loop->server->stopping)) {
    gc_log(GCL_NOTICE, "SIGHUP received while shutting down: ignored");
    return;
  }
  gc_log(GCL_NOTICE, "SIGHUP received: reloading");
  (void)gc_tls_reload(loop->server); /* wss keys, for new connections */
  (void)gc_server_reload(loop->server);
}

/* SIGUSR1 reopens the log file (logrotate's postrotate, after it renamed
 * the file): the writer thread opens it once the lines logged before are
 * in the old one, so this never waits for a disk. */
static void on_sigusr1(uv_signal_t *s, int signum) {
  struct gc_loop *loop = s->data;
  (void)signum;
  const char *file = loop->server->cfg->log_file;
  if (!file) {
    gc_log(GCL_NOTICE, "SIGUSR1 received: no log file to reopen (logging to "
           "stderr only)");
    return;
  }
  gc_log(GCL_NOTICE, "SIGUSR1 received: reopening the log file %s", file);
  if (gc_log_reopen() != 0)
    gc_log(GCL_WARN, "cannot reopen the log file %s: out of memory", file);
}

/* The process's signals, taken before the first socket is bound: a SIGTERM
 * sent as soon as gcs listens (an orchestrator, a test) must be a graceful
 * stop, not death by the default action. */
static void signals_start(struct gc_loop *loop) {
  int rc;
  if ((rc = uv_signal_start(&loop->sigint, on_signal, SIGINT)) != 0 ||
      (rc = uv_signal_start(&loop->sigterm, on_signal, SIGTERM)) != 0)
    gc_log(GCL_WARN, "cannot handle SIGINT/SIGTERM: %s", uv_strerror(rc));
  if (uv_is_active((uv_handle_t *)&loop->sighup))
    return;
  loop->sighup.data = loop;
  if ((rc = uv_signal_init(&loop->uv, &loop->sighup)) != 0 ||
      (rc = uv_signal_start(&loop->sighup, on_sighup, SIGHUP)) != 0)
    gc_log(GCL_WARN, "cannot handle SIGHUP (%s): it ends gcs", uv_strerror(rc));
  loop->sigusr1.data = loop;
  if ((rc = uv_signal_init(&loop->uv, &loop->sigusr1)) != 0 ||
      (rc = uv_signal_start(&loop->sigusr1, on_sigusr1, SIGUSR1)) != 0)
    gc_log(GCL_WARN, "cannot handle SIGUSR1 (%s): the log file cannot be "
           "reopened", uv_strerror(rc));
}

static int loop_housekeeping_start(struct gc_loop *loop);

/* ---- listening ------------------------------------------------------------ */

int gc_loop_listen(struct gc_loop *loop, int bind_sockets, char *err,
                   size_t errlen) {
  if (bind_sockets && loop->id == 0)
    signals_start(loop);
  int rc = gc__loop_listeners_open(loop, bind_sockets, err, errlen);
  if (rc)
    return rc;
  if (loop_housekeeping_start(loop) != 0) {
    snprintf(err, errlen, "out of memory");
    return ENOMEM;
  }
  return 0;
}

/* ---- keep-alive ----------------------------------------------------------- */

/* glibc's malloc_trim. Not under ASan or TSan: they replace malloc, so
 * glibc's arenas are first set up by this very call, and two loops doing
 * that at once crash in glibc's lazy init; their heap is theirs to trim. */
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
static void heap_trim(void) {}
#else
static void heap_trim(void) { (void)malloc_trim(0); }
#endif

/* Once a second: keep-alive pings, the message blocks the second did not
 * need back to the heap; every 5 s, if connections went away or messages
 * piled up, hand freed heap back to the OS (glibc keeps it otherwise, and
 * RSS after a burst of hostile clients would never come down). */
static void housekeeping_fired(void *ctx, intptr_t arg) {
  struct gc_loop *loop = ctx;
  (void)arg;
  if (!loop->virtual_clock) {
    int64_t now = gc_loop_now(loop);
    gc__loop_lag_observe(loop, now - loop->lag_due);
    loop->lag_due = now + 1000;
  }
  gc__loop_conn_log_roll(loop);
  gc__conn_sweep(loop);
  gc_msg_pool_trim(&loop->msg_pool);
  if (loop->buffered > (1 << 20)) /* a burst of queued messages */
    loop->trim_pending = 1;
  if (++loop->housekeeping_ticks % 5 == 0 && loop->trim_pending) {
    loop->trim_pending = 0;
    heap_trim();
  }
}

void gc__loop_conn_log_roll(struct gc_loop *loop) {
  struct gc_server *s = loop->server;
  pthread_mutex_lock(&s->conn_log_lock);
  uint64_t dropped = gc_log_limit_roll(&s->conn_log, gc_loop_now(loop));
  pthread_mutex_unlock(&s->conn_log_lock);
  if (dropped)
    gc_log(GCL_WARN, "%llu lines about connections not logged in the last "
           "second (over logging.conn_lines_per_second = %u)",
           (unsigned long long)dropped, loop->conn_log_per_second);
}

int gc__loop_conn_log_take(struct gc_loop *loop, int level) {
  if (!gc_log_enabled(level))
    return 0;
  gc__loop_conn_log_roll(loop);
  struct gc_server *s = loop->server;
  pthread_mutex_lock(&s->conn_log_lock);
  int ok = gc_log_limit_take(&s->conn_log, loop->conn_log_per_second);
  pthread_mutex_unlock(&s->conn_log_lock);
  return ok;
}

/* keep_alive {timeout, interval, retries}: after 'timeout' seconds without
 * input a connection is pinged every 'interval' seconds; after 'retries'
 * pings without any input it is dropped. timeout 0 turns it off. One sweep
 * a second for the whole loop, not a timer per connection. */
static int loop_housekeeping_start(struct gc_loop *loop) {
  const struct gc_config *cfg = loop->server->cfg;
  loop->conn_log_per_second = cfg->conn_lines_per_second;
  if (cfg->keep_alive_timeout_ms) {
    loop->ka_timeout_ms = (int64_t)cfg->keep_alive_timeout_ms;
    loop->ka_interval_ms = (int64_t)cfg->keep_alive_interval_ms;
    loop->ka_retries = (int)cfg->keep_alive_retries;
  }
  loop->lag_due = gc_loop_now(loop) + 1000;
  return gc_timers_start(&loop->timers, gc_loop_now(loop), 1000, 1000,
                         housekeeping_fired, loop, 0, &loop->housekeeping_id);
}

/* ---- init / run / close -------------------------------------------------- */

/* A libuv error (negative errno) as the positive errno callers expect. */
static int loop_errno(int uv_rc) { return uv_rc < 0 ? -uv_rc : uv_rc ? uv_rc : EIO; }

/* On failure everything done so far is undone here, and the loop is left
 * so that gc_loop_close on it does nothing: main and gc.testing may call
 * it either way. */
int gc_loop_init(struct gc_loop *loop, struct gc_server *server, int id) {
  memset(loop, 0, sizeof *loop);
  loop->server = server;
  loop->id = id;
  gc_handle_table_init_tagged(&loop->conns, (uint8_t)id);
  gc__links_init(loop);
  gc_timers_init(&loop->timers);
  loop->timers.ids.tag = (uint8_t)id;
  if (!(loop->rbuf = gc_malloc(65536)))
    return ENOMEM;
  if (!(loop->ubuf = gc_malloc(GC_FAST_MSG_MAX))) {
    gc_free(loop->rbuf);
    loop->rbuf = NULL;
    return ENOMEM;
  }
  int rc = uv_loop_init(&loop->uv);
  if (rc != 0) {
    gc_free(loop->rbuf);
    gc_free(loop->ubuf);
    loop->rbuf = NULL;
    loop->ubuf = NULL;
    return loop_errno(rc);
  }
  loop->uv_ready = 1;
  /* None of these allocates in libuv 1.44, but a version that does may
   * fail: every handle initialised so far is closed by gc_loop_close. */
  if ((rc = uv_timer_init(&loop->uv, &loop->timer)) != 0 ||
      (rc = uv_prepare_init(&loop->uv, &loop->prepare)) != 0 ||
      (rc = uv_check_init(&loop->uv, &loop->check)) != 0 ||
      (rc = uv_signal_init(&loop->uv, &loop->sigint)) != 0 ||
      (rc = uv_signal_init(&loop->uv, &loop->sigterm)) != 0)
    goto fail;
  loop->timer.data = loop->prepare.data = loop->check.data = loop;
  loop->sigint.data = loop->sigterm.data = loop;
  if ((rc = uv_prepare_start(&loop->prepare, on_prepare)) != 0 ||
      (rc = uv_check_start(&loop->check, on_check)) != 0)
    goto fail;
  uv_unref((uv_handle_t *)&loop->prepare);
  uv_unref((uv_handle_t *)&loop->check);
  if ((rc = gc__mailbox_init(loop)) != 0) {
    rc = -rc;
    goto fail;
  }
  return 0;
fail:
  (void)gc_loop_close(loop);
  memset(loop, 0, sizeof *loop);
  return loop_errno(rc);
}

int gc_loop_run(struct gc_loop *loop) {
  gc__loop_current = loop;
  atomic_store(&loop->running, 1);
  /* The mailbox does not keep the loop alive, so with nothing else to wait
   * for (no listener, no connection) the loop waits for its mail. */
  while (!loop->finished) {
    if (uv_run(&loop->uv, UV_RUN_DEFAULT) == 0 && !loop->finished) {
      if (!loop->server->threaded)
        break;
      uv_ref((uv_handle_t *)&loop->mbox.async);
      (void)uv_run(&loop->uv, UV_RUN_ONCE);
      uv_unref((uv_handle_t *)&loop->mbox.async);
    }
  }
  atomic_store(&loop->running, 0);
  return 0;
}

int gc_loop_run_signals(struct gc_loop *loop) {
  int rc;
  if (!uv_is_active((uv_handle_t *)&loop->sigterm))
    signals_start(loop); /* a loop that bound no socket */
  if ((rc = gc__signal_guard_start()) != 0)
    gc_log(GCL_WARN, "cannot start the signal watcher (%s): a second signal "
           "cannot end a stuck loop", strerror(rc));
  return gc_loop_run(loop);
}

static void close_walk(uv_handle_t *h, void *arg) {
  (void)arg;
  if (!uv_is_closing(h))
    uv_close(h, NULL);
}

int gc_loop_close(struct gc_loop *loop) {
  /* Every connection is gone by now; close the loop's own handles. A loop
   * whose gc_loop_init failed has none (and a zeroed uv_loop_t must not be
   * walked). */
  gc__signal_guard_stop();
  int rc = 0;
  if (loop->uv_ready) {
    gc__watch_stop(loop);
    gc__admin_stop(loop);
    if (loop->id == 0) /* its handles, before the walk closes them */
      gc__redis_stop(loop->server);
    gc__http_loop_close(loop);
    gc__redis_cmd_stop(loop);
    uv_walk(&loop->uv, close_walk, NULL);
    /* A uv_stop not yet consumed (the loop finished before it ran) makes
     * the first uv_run return at once: run until the closes are done. */
    for (int i = 0; i < 3 && uv_run(&loop->uv, UV_RUN_DEFAULT) != 0; i++)
      ;
    if (loop->id == 0)
      gc__redis_free(loop->server);
    gc__http_loop_free(loop);
    rc = uv_loop_close(&loop->uv);
    loop->uv_ready = 0;
  }
  for (size_t i = 0; i < loop->listener_count; i++) {
    gc_free(loop->listeners[i]->apps);
    gc_free(loop->listeners[i]);
  }
  gc_free(loop->listeners);
  loop->listeners = NULL;
  loop->listener_count = 0;
  gc_timers_free(&loop->timers);
  gc_handle_table_free(&loop->conns);
  gc__links_free(loop);
  gc_free(loop->rbuf);
  loop->rbuf = NULL;
  gc_free(loop->ubuf);
  loop->ubuf = NULL;
  gc_msg_pool_drain(&loop->msg_pool);
  gc_ws_pool_free(&loop->ws_pool);
  gc__uring_free(loop);
  gc__urecv_free(loop);
  gc_free(loop->app_ctr);
  loop->app_ctr = NULL;
  gc__mailbox_free(loop);
  if (gc__loop_current == loop)
    gc__loop_current = NULL;
  return rc;
}
