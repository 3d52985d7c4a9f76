/* embed.c - see embed.h. */
#include "embed.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "internal.h"
#include "log.h"

struct gc_host {
  struct gc_server server;
  struct gc_loop loop;
  int loop_ready;
};

static void host_enter(struct gc_host *h) { gc__loop_current = &h->loop; }

void gc_host_pump(struct gc_host *h) {
  host_enter(h);
  /* Bounded: an app that keeps producing work cannot hang a test. */
  for (int i = 0; i < 1000; i++) {
    /* In-memory connections keep no libuv handle active, so flush here;
     * uv_run then delivers the close callbacks. */
    gc__loop_flush(&h->loop);
    uv_run(&h->loop.uv, UV_RUN_NOWAIT);
    if (!h->loop.dirty && !uv_loop_alive(&h->loop.uv))
      break;
  }
}

/* Each pass of the loop below is one loop turn at one virtual instant: it
 * runs the timers due when it starts (gc_timers_run leaves those they
 * start to the next turn), then pumps. Timers that keep starting 0 ms
 * timers never let time move; past GC_HOST_TURNS_MAX turns at one instant,
 * advance gives up rather than hang the spec. */
int gc_host_advance(struct gc_host *h, int64_t ms) {
  host_enter(h);
  int64_t target = h->loop.vnow + (ms > 0 ? ms : 0);
  long turns = 0;
  gc_host_pump(h);
  for (;;) {
    int64_t due = gc_timers_next_due(&h->loop.timers);
    if (due < 0 || due > target)
      break;
    if (due > h->loop.vnow) {
      h->loop.vnow = due;
      turns = 0;
    }
    if (++turns > GC_HOST_TURNS_MAX)
      return ELOOP;
    gc_timers_run(&h->loop.timers, h->loop.vnow);
    gc_host_pump(h);
  }
  h->loop.vnow = target;
  gc_host_pump(h);
  return 0;
}

int64_t gc_host_now(const struct gc_host *h) { return h->loop.vnow; }

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
  if ((rc = gc_loop_init(&h->loop, &h->server)) != 0) {
    gc_host_destroy(h);
    snprintf(err, errlen, "cannot create the event loop");
    return rc;
  }
  h->loop_ready = 1;
  h->loop.virtual_clock = 1;
  /* Virtual time keeps exact steps: advance(1000) fires a 10 ms interval
   * 100 times, in order, as a spec expects. */
  h->loop.timers.exact_steps = 1;
  host_enter(h);
  if ((rc = gc_server_load(&h->server, err, errlen)) != 0 ||
      (rc = gc_loop_listen(&h->loop, 0, err, errlen)) != 0) {
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
    gc_loop_stop(&h->loop);
  gc_host_pump(h);
}

int gc_host_finished(const struct gc_host *h) { return h->loop.finished; }

void gc_host_destroy(struct gc_host *h) {
  if (!h)
    return;
  if (h->loop_ready) {
    host_enter(h);
    if (h->server.phase == GC_PHASE_RUNNING || h->server.phase == GC_PHASE_STOPPING) {
      if (h->server.phase == GC_PHASE_RUNNING)
        gc_loop_stop(&h->loop);
      /* NORMAL closes end when the in-memory peers answer, or at the drain
       * deadline: move virtual time until the last one is gone. */
      for (int i = 0; i < 100 && !h->loop.finished; i++)
        if (gc_host_advance(h, h->server.cfg->close_drain_ms / 4 + 1) != 0)
          break; /* timers spin at one instant: drop the rest below */
      if (!h->loop.finished)
        gc__conn_close_all(&h->loop, GC_CLOSE_REASON_DROP);
      gc_host_pump(h);
    }
    gc_server_unload(&h->server);
    if (gc_loop_close(&h->loop) != 0)
      gc_log(GCL_WARN, "gc.testing: event loop closed with handles open");
  } else {
    gc_server_unload(&h->server);
  }
  gc_free(h->server.lua_adapter_path);
  gc_config_free(h->server.cfg);
  gc_free(h);
}

struct gc_conn *gc_host_connect(struct gc_host *h, int port, const char *rip,
                                int rport, const struct gc_mem_ops *ops,
                                void *ud) {
  host_enter(h);
  if (h->loop.stopping)
    return NULL;
  for (size_t i = 0; i < h->loop.listener_count; i++) {
    struct gc_listener *l = h->loop.listeners[i];
    if (port == 0 || l->port == port)
      return gc__conn_accept_mem(l, rip, rport, ops, ud);
  }
  return NULL;
}

void gc_host_input(struct gc_host *h, struct gc_conn *c, const void *data,
                   size_t len) {
  host_enter(h);
  gc__conn_mem_input(c, data, len);
  gc_host_pump(h);
}

void gc_host_eof(struct gc_host *h, struct gc_conn *c) {
  host_enter(h);
  gc__conn_mem_eof(c);
  gc_host_pump(h);
}

void gc_host_resume(struct gc_host *h, struct gc_conn *c) {
  host_enter(h);
  /* A paused peer left the queue "in flight" (gc__conn_flush): what a
   * socket's write callback does, without bytes to account for. */
  if (c->mem && c->state != GC_CONN_DEAD && c->write_in_flight) {
    c->write_in_flight = 0;
    gc__conn_flush(c);
  }
  gc_host_pump(h);
}
