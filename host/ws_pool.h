/* ws_pool.h - wslay contexts lent to connections only while they need one.
 *
 * A wslay event context costs ~8.5 KiB (its frame parser and its fragment
 * writer each hold a 4 KiB buffer), eight times the rest of a connection.
 * An idle connection needs none: between two frames, with nothing queued
 * in wslay, a context holds no state a fresh one lacks. So a connection
 * borrows one when bytes arrive or a control frame must go out, and gives
 * it back as soon as it is clean again; each loop keeps a few spare ones
 * so the busy path does not pay malloc. */
#ifndef GC_WS_POOL_H
#define GC_WS_POOL_H

#include <stdint.h>
#include <wslay/wslay.h>

#include "ws_scan.h"

struct gc_conn;

/* A wslay context and what is needed to tell when it is clean again. The
 * wslay user data is this struct, so a context can change borrowers. */
struct gc_ws {
  wslay_event_context_ptr ctx;
  struct gc_conn *conn;  /* the borrower */
  struct gc_ws_scan scan; /* frame boundaries of the bytes given to wslay */
};

#define GC_WS_POOL_SPARE 32

struct gc_ws_pool {
  struct gc_ws *spare[GC_WS_POOL_SPARE];
  unsigned n;
};

/* A clean context bound to 'conn' (a spare one, or a new one made with
 * 'cb'). 0 or ENOMEM. */
int gc_ws_pool_take(struct gc_ws_pool *p, const struct wslay_event_callbacks *cb,
                    struct gc_conn *conn, struct gc_ws **out)
    __attribute__((warn_unused_result));
/* Gives back a context that is clean (gc_ws_clean) to the spares, or
 * frees it when the spares are full or 'clean' is 0. */
void gc_ws_pool_give(struct gc_ws_pool *p, struct gc_ws *ws, int clean);
/* Frees every spare. */
void gc_ws_pool_free(struct gc_ws_pool *p);

/* Non-zero when 'ws' holds no partial frame or message, nothing to send
 * and no close: it may serve another connection. */
int gc_ws_clean(const struct gc_ws *ws);

#endif
