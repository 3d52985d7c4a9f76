/* link_api.c - the four s2s members of core_api (server.h) over link.c.
 *
 * As for connections, a call for a link of the calling worker runs at
 * once and any other travels to the link's loop as a GC_MAIL_LINK; the
 * handle's tag names that loop, and a stale handle (slot + generation no
 * longer live) is EINVAL before anything is posted. A link created from
 * a thread that is no worker's lives on worker 0. */
#include <errno.h>
#include <string.h>

#include "internal.h"
#include "link.h"
#include "log.h"
#include "mailbox.h"

enum { LINK_OP_CREATE, LINK_OP_SEND, LINK_OP_CLOSE, LINK_OP_TIMER };

/* A create travelling to worker 0: the arguments, then host and app. */
struct link_args {
  int adapter, proto, port;
  intptr_t user;
  struct client_events ev;
  size_t host_len;
};

static struct gc_server *server_of_caller(void) {
  struct gc_loop *loop = gc__loop_current;
  return loop ? loop->server : atomic_load(&gc__server_process);
}

static struct gc_loop *link_owner(intptr_t h) {
  struct gc_server *s = server_of_caller();
  unsigned tag = gc_handle_tag(h);
  if (!s || !h || tag >= s->loop_count ||
      !gc_handle_table_alive(&s->loops[tag]->links, h))
    return NULL;
  return s->loops[tag];
}

static int here(intptr_t h) {
  struct gc_loop *loop = gc__loop_current;
  return loop && gc_handle_tag(h) == (unsigned)loop->id;
}

int gc__s2s_create(int adapter, intptr_t user, int proto, const char *host,
                   int port, const char *app, struct client_events *ev) {
  struct gc_loop *loop = gc__loop_current;
  if (loop)
    return gc__link_create(loop, adapter, user, proto, host, port, app, ev);
  struct gc_server *s = server_of_caller();
  if (!s || !s->loop_count || !ev || !host || !app)
    return EINVAL;
  size_t hl = strlen(host), al = strlen(app);
  if (hl > 255 || al > 2000)
    return EINVAL;
  struct gc_mail *m = gc_mail_new(GC_MAIL_LINK, sizeof(struct link_args) + hl + al + 2);
  if (!m)
    return ENOMEM;
  struct link_args a = {adapter, proto, port, user, *ev, hl};
  memcpy(m->data, &a, sizeof a);
  memcpy(m->data + sizeof a, host, hl + 1);
  memcpy(m->data + sizeof a + hl + 1, app, al + 1);
  m->level = LINK_OP_CREATE;
  return gc_mail_post(s->loops[0], m) == 0 ? 0 : ESHUTDOWN;
}

static int post(intptr_t h, int op, struct gc_mail *m) {
  struct gc_loop *to = link_owner(h);
  if (!to) {
    gc_mail_free(m);
    return EINVAL;
  }
  m->handle = h;
  m->level = op;
  return gc_mail_post(to, m) == 0 ? 0 : EINVAL;
}

int gc__s2s_destroy(intptr_t h) {
  if (here(h))
    return gc__link_destroy(gc__loop_current, h);
  if (!link_owner(h))
    return EINVAL;
  struct gc_mail *m = gc_mail_new(GC_MAIL_LINK, 0);
  return m ? post(h, LINK_OP_CLOSE, m) : ENOMEM;
}

/* s2sAddMessage has no result: a refused message is logged. */
void gc__s2s_add_message(intptr_t h, const void *data, size_t len,
                         intptr_t cookie) {
  int rc;
  if (here(h)) {
    rc = gc__link_send(gc__loop_current, h, data, len, cookie);
  } else if (!link_owner(h) || (!data && len)) {
    rc = EINVAL;
  } else {
    struct gc_mail *m = gc_mail_new(GC_MAIL_LINK, len);
    if (!m) {
      rc = ENOMEM;
    } else {
      if (len)
        memcpy(m->data, data, len);
      m->len = len;
      m->cookie = cookie;
      rc = post(h, LINK_OP_SEND, m);
    }
  }
  if (rc)
    gc_log(GCL_WARN, "s2sAddMessage: message of %zu bytes not sent: %s", len,
           rc == EINVAL ? "unknown, stale or closing link" : strerror(rc));
}

int gc__s2s_set_timer(intptr_t h, int ms) {
  if (here(h))
    return gc__link_set_timer(gc__loop_current, h, ms);
  if (!link_owner(h))
    return EINVAL;
  struct gc_mail *m = gc_mail_new(GC_MAIL_LINK, 0);
  if (!m)
    return ENOMEM;
  m->arg = ms;
  return post(h, LINK_OP_TIMER, m);
}

void gc__link_mail(struct gc_loop *loop, struct gc_mail *m) {
  int rc = 0;
  switch (m->level) {
  case LINK_OP_CREATE: {
    struct link_args a;
    memcpy(&a, m->data, sizeof a);
    const char *host = (const char *)m->data + sizeof a;
    const char *app = host + a.host_len + 1;
    rc = gc__link_create(loop, a.adapter, a.user, a.proto, host, a.port, app, &a.ev);
    if (rc && a.ev.on_client_connection_error) /* s2sCreate answered 0 */
      a.ev.on_client_connection_error(a.user, strerror(rc));
    break;
  }
  case LINK_OP_SEND:
    rc = gc__link_send(loop, m->handle, m->data, m->len, m->cookie);
    if (rc)
      gc_log(GCL_WARN, "s2sAddMessage: message of %zu bytes not sent: %s",
             m->len, rc == EINVAL ? "link closing or gone" : strerror(rc));
    break;
  case LINK_OP_CLOSE:
    (void)gc__link_destroy(loop, m->handle);
    break;
  case LINK_OP_TIMER:
    (void)gc__link_set_timer(loop, m->handle, (int)m->arg);
    break;
  }
}
