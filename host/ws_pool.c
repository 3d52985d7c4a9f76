/* ws_pool.c - wslay contexts lent to connections; see ws_pool.h. */
#include <errno.h>

#include "alloc.h"
#include "ws_pool.h"

static void ws_destroy(struct gc_ws *ws) {
  wslay_event_context_free(ws->ctx);
  gc_free(ws);
}

int gc_ws_pool_take(struct gc_ws_pool *p, const struct wslay_event_callbacks *cb,
                    struct gc_conn *conn, struct gc_ws **out) {
  struct gc_ws *ws;
  if (p->n) {
    ws = p->spare[--p->n];
  } else {
    ws = gc_malloc(sizeof *ws);
    if (!ws)
      return ENOMEM;
    if (wslay_event_context_server_init(&ws->ctx, cb, ws) != 0) {
      gc_free(ws);
      return ENOMEM;
    }
  }
  ws->conn = conn;
  gc_ws_scan_init(&ws->scan);
  *out = ws;
  return 0;
}

void gc_ws_pool_give(struct gc_ws_pool *p, struct gc_ws *ws, int clean) {
  if (!ws)
    return;
  ws->conn = NULL;
  if (clean && p->n < GC_WS_POOL_SPARE) {
    p->spare[p->n++] = ws;
    return;
  }
  ws_destroy(ws);
}

void gc_ws_pool_free(struct gc_ws_pool *p) {
  while (p->n)
    ws_destroy(p->spare[--p->n]);
}

int gc_ws_clean(const struct gc_ws *ws) {
  wslay_event_context_ptr x = ws->ctx;
  return gc_ws_scan_idle(&ws->scan) && wslay_event_want_read(x) &&
         !wslay_event_want_write(x) && !wslay_event_get_close_sent(x) &&
         !wslay_event_get_close_received(x);
}
