/* evq.c - the events of one object (a connection, a link) that wait.
 *
 * While a handler of the object waits (coro.c marks its queue 'busy'),
 * its later events are copied here, oldest first, and run in order when
 * the handler ends (the owner's 'drain'). The owner decides what a full
 * queue means (conn_events.c drops the connection, link.c closes the
 * link); this file only keeps the list and its bound. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "gc_lua.h"

int gc_lua_evq_push(struct gc_lua_evq *q, size_t max, int kind,
                    const void *data, size_t len, GCT_INTPTR cookie,
                    GCT_INT status) {
  int final = kind == GC_LUA_EV_DISCONNECT || kind == GC_LUA_EV_ERROR;
  if (!final && max && q->len >= max)
    return EAGAIN;
  struct gc_lua_pend *p = malloc(sizeof *p + (data ? len : 0));
  if (p == NULL)
    return ENOMEM;
  p->next = NULL;
  p->kind = kind;
  p->cookie = cookie;
  p->status = status;
  p->len = len;
  if (data && len)
    memcpy(p->data, data, len);
  if (q->tail)
    q->tail->next = p;
  else
    q->head = p;
  q->tail = p;
  q->len++;
  return 0;
}

struct gc_lua_pend *gc_lua_evq_pop(struct gc_lua_evq *q) {
  struct gc_lua_pend *p = q->head;
  if (p == NULL)
    return NULL;
  q->head = p->next;
  if (q->head == NULL)
    q->tail = NULL;
  q->len--;
  return p;
}

void gc_lua_evq_free(struct gc_lua_evq *q) {
  struct gc_lua_pend *p;
  while ((p = gc_lua_evq_pop(q)) != NULL)
    free(p);
}
