/* embed.c - see embed.h. */
#include "embed.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"
#include "mailbox.h"

struct gc_host {
  struct gc_server server;
  int loops_ready;
};

static void host_enter(struct gc_host *h) { gc__loop_current = h->server.loops[0]; }

/* Every worker runs on this thread, one after the other, in id order:
 * their mail, their dirty connections, their libuv callbacks. */
void gc_host_pump(struct gc_host *h) {
  struct gc_server *s = &h->server;
  /* Bounded: an app that keeps producing work cannot hang a test. */
  for (int i = 0; i < 1000; i++) {
    int busy = 0;
    for (size_t k = 0; k < s->loop_count; k++) {
      struct gc_loop *loop = s->loops[k];
      gc__loop_current = loop;
      busy |= gc__mailbox_run(loop);
      /* In-memory connections keep no libuv handle active, so flush here;
       * uv_run then delivers the close callbacks. */
      gc__loop_flush(loop);
      uv_run(&loop->uv, UV_RUN_NOWAIT);
      busy |= loop->dirty != NULL || uv_loop_alive(&loop->uv);
    }
    /* A later loop's turn may have given an earlier one work (an
     * in-memory link's peer on another worker wrote to it). */
    for (size_t k = 0; !busy && k < s->loop_count; k++)
      busy = s->loops[k]->dirty != NULL || uv_loop_alive(&s->loops[k]->uv);
    if (!busy)
      break;
  }
  host_enter(h);
}

static int64_t next_due(struct gc_host *h) {
  int64_t due = -1;
  for (size_t k = 0; k < h->server.loop_count; k++) {
    int64_t d = gc_timers_next_due(&h->server.loops[k]->timers);
    if (d >= 0 && (due < 0 || d < due))
      due = d;
  }
  return due;
}

static void set_now(struct gc_host *h, int64_t now) {
  for (size_t k = 0; k < h->server.loop_count; k++)
    h->server.loops[k]->vnow = now;
}

/* Each pass of the loop below is one loop turn at one virtual instant: it
 * runs the timers due when it starts (gc_timers_run leaves those they
 * start to the next turn), then pumps. Timers that keep starting 0 ms
 * timers never let time move; past GC_HOST_TURNS_MAX turns at one instant,
 * advance gives up rather than hang the spec. */
int gc_host_advance(struct gc_host *h, int64_t ms) {
  host_enter(h);
  int64_t now = gc_host_now(h);
  int64_t target = now + (ms > 0 ? ms : 0);
  long turns = 0;
  gc_host_pump(h);
  for (;;) {
    int64_t due = next_due(h);
    if (due < 0 || due > target)
      break;
    if (due > now) {
      now = due;
      set_now(h, now);
      turns = 0;
    }
    if (++turns > GC_HOST_TURNS_MAX)
      return ELOOP;
    for (size_t k = 0; k < h->server.loop_count; k++) {
      gc__loop_current = h->server.loops[k];
      gc_timers_run(&h->server.loops[k]->timers, now);
    }
    gc_host_pump(h);
  }
  set_now(h, target);
  gc_host_pump(h);
  return 0;
}

int64_t gc_host_now(const struct gc_host *h) { return h->server.loops[0]->vnow; }

void gc_host_refuse_links(struct gc_host *h, int on) { h->server.links_refused = on; }

int gc_host_counter(struct gc_host *h, const char *name, int64_t *value) {
  int32_t id = gc_counters_open(&h->server.counters, name);
  if (id < 0 || gc_counters_get(&h->server.counters, id, value) != 0)
    return ENOENT;
  return 0;
}

int gc_host_create(const char *config_json, const char *source,
                   const char *lua_adapter, struct gc_host **out, char *err,
                   size_t errlen) {
  *out = NULL;
  struct gc_host *h = gc_calloc(1, sizeof *h);
  if (!h) {
    snprintf(err, errlen, "out of memory");
    return ENOMEM;
  }
  int rc = gc_config_load_string(config_json, source, &h->server.cfg, err, errlen);
  if (rc) {
    gc_free(h);
    return rc;
  }
  if (lua_adapter && !(h->server.lua_adapter_path = gc_strdup(lua_adapter))) {
    gc_host_destroy(h);
    snprintf(err, errlen, "out of memory");
    return ENOMEM;
  }
  /* "auto" is one worker here: a spec asks for more with 'workers'. */
  size_t workers = h->server.cfg->worker_count ? h->server.cfg->worker_count : 1;
  if ((rc = gc_server_loops_create(&h->server, workers, 0)) != 0) {
    gc_host_destroy(h);
    snprintf(err, errlen, "cannot create the event loops");
    return rc;
  }
  h->loops_ready = 1;
  for (size_t k = 0; k < h->server.loop_count; k++) {
    h->server.loops[k]->virtual_clock = 1;
    /* Virtual time keeps exact steps: advance(1000) fires a 10 ms interval
     * 100 times, in order, as a spec expects. */
    h->server.loops[k]->timers.exact_steps = 1;
  }
  host_enter(h);
  if ((rc = gc_server_load(&h->server, err, errlen)) != 0 ||
      (rc = gc_server_listen(&h->server, 0, err, errlen)) != 0) {
    gc_host_destroy(h);
    return rc;
  }
  gc_server_start_apps(&h->server);
  gc_host_pump(h);
  *out = h;
  return 0;
}

void gc_host_stop(struct gc_host *h) {
  host_enter(h);
  if (h->server.phase == GC_PHASE_RUNNING)
    gc_server_stop(&h->server);
  gc_host_pump(h);
}

int gc_host_finished(const struct gc_host *h) { return gc_server_finished(&h->server); }

void gc_host_destroy(struct gc_host *h) {
  if (!h)
    return;
  struct gc_server *s = &h->server;
  if (h->loops_ready) {
    host_enter(h);
    if (s->phase == GC_PHASE_RUNNING || s->phase == GC_PHASE_STOPPING) {
      if (s->phase == GC_PHASE_RUNNING)
        gc_server_stop(s);
      /* NORMAL closes end when the in-memory peers answer, or at the drain
       * deadline: move virtual time until the last one is gone. */
      for (int i = 0; i < 100 && !gc_host_finished(h); i++)
        if (gc_host_advance(h, s->cfg->close_drain_ms / 4 + 1) != 0)
          break; /* timers spin at one instant: drop the rest below */
      if (!gc_host_finished(h))
        for (size_t k = 0; k < s->loop_count; k++) {
          gc__loop_current = s->loops[k];
          gc__conn_close_all(s->loops[k], GC_CLOSE_REASON_DROP);
        }
      gc_host_pump(h);
    }
    gc_server_loops_quiesce(s);
    gc_server_unload(s);
    if (gc_server_loops_close(s) != 0)
      gc_log(GCL_WARN, "gc.testing: event loop closed with handles open");
  } else {
    gc_server_unload(s);
    (void)gc_server_loops_close(s);
  }
  gc_free(s->lua_adapter_path);
  gc_config_free(s->cfg);
  gc_free(h);
}

struct gc_conn *gc_host_connect(struct gc_host *h, int port, const char *rip,
                                int rport, const struct gc_mem_ops *ops,
                                void *ud) {
  host_enter(h);
  struct gc_loop *first = h->server.loops[0];
  if (first->stopping)
    return NULL;
  for (size_t i = 0; i < first->listener_count; i++) {
    struct gc_listener *l = first->listeners[i];
    if (port == 0 || l->port == port)
      return gc__conn_accept_mem(l, rip, rport, ops, ud);
  }
  return NULL;
}

void gc_host_input(struct gc_host *h, struct gc_conn *c, const void *data,
                   size_t len) {
  gc__loop_current = c->loop;
  gc__conn_mem_input(c, data, len);
  gc_host_pump(h);
}

void gc_host_eof(struct gc_host *h, struct gc_conn *c) {
  gc__loop_current = c->loop;
  gc__conn_mem_eof(c);
  gc_host_pump(h);
}

void gc_host_resume(struct gc_host *h, struct gc_conn *c) {
  gc__loop_current = c->loop;
  gc__conn_mem_resume(c);
  gc_host_pump(h);
}
