/* mailbox.c - see mailbox.h. */
#include "mailbox.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

#include "alloc.h"
#include "internal.h"
#include "link.h"
#include "tls.h"

struct gc_mail *gc_mail_new(int kind, size_t extra) {
  if (extra > SIZE_MAX - sizeof(struct gc_mail))
    return NULL;
  struct gc_mail *m = gc_malloc(sizeof *m + extra);
  if (!m)
    return NULL;
  memset(m, 0, sizeof *m);
  m->kind = kind;
  return m;
}

static void adopt_free(struct gc_adopt *a) {
  if (!a)
    return;
  if (a->fd >= 0)
    close(a->fd);
  gc__tls_adopt_discard(a);
  gc_free(a->req);
  gc_free(a);
}

void gc_mail_free(struct gc_mail *m) {
  if (!m)
    return;
  if (m->kind == GC_MAIL_BCAST)
    gc_shared_release(m->ptr);
  else if (m->kind == GC_MAIL_ADOPT)
    adopt_free(m->ptr);
  gc_free(m);
}

int gc_mail_post(struct gc_loop *to, struct gc_mail *m) {
  struct gc_mailbox *mb = &to->mbox;
  m->next = NULL;
  pthread_mutex_lock(&mb->lock);
  if (mb->closed) {
    pthread_mutex_unlock(&mb->lock);
    gc_mail_free(m);
    return ESHUTDOWN;
  }
  int was_empty = mb->head == NULL;
  if (mb->tail)
    mb->tail->next = m;
  else
    mb->head = m;
  mb->tail = m;
  /* One wake-up per batch: the owner takes the whole list at once. Under
   * the lock, so that a loop being closed (which takes the lock to refuse
   * posts) never has its async handle touched after. Under gc.testing the
   * pump runs the mailboxes itself. */
  if (was_empty && to->server->threaded)
    (void)uv_async_send(&mb->async);
  pthread_mutex_unlock(&mb->lock);
  return 0;
}

static void mail_run(struct gc_loop *loop, struct gc_mail *m) {
  switch (m->kind) {
  case GC_MAIL_SEND:
    if (gc_conn_send(loop, m->handle, m->data, m->len, m->cookie, m->level) ==
        EILSEQ) {
      /* GC_MESSAGE_DEFAULT to a text app: known only here (server.h). */
      struct gc_conn *c = gc__conn_get(loop, m->handle);
      if (c)
        gc__conn_log(c, GCL_WARN,
                     "a text message from another thread is not valid "
                     "UTF-8: not sent");
    }
    break;
  case GC_MAIL_CLOSE:
    (void)gc_conn_close_ex(loop, m->handle, (int)m->arg, m->level,
                           m->stat ? (const char *)m->data : NULL);
    break;
  case GC_MAIL_TIMER:
    (void)gc_conn_set_timer(loop, m->handle, (int)m->arg);
    break;
  case GC_MAIL_LIMIT:
    (void)gc_conn_set_limit(loop, m->handle, m->level, m->stat, m->arg);
    break;
  case GC_MAIL_BCAST:
    gc__conn_broadcast_shared(loop, (const intptr_t *)(void *)m->data, m->len,
                              m->ptr, m->cookie, m->level, NULL);
    break;
  case GC_MAIL_TIMER_STOP:
    (void)gc__app_timer_stop(loop, m->handle);
    break;
  case GC_MAIL_POST: {
    GCTimerCallback cb;
    memcpy(&cb, &m->ptr, sizeof cb);
    cb(m->cookie);
    break;
  }
  case GC_MAIL_ADOPT:
    gc__conn_adopt(loop, m->ptr);
    m->ptr = NULL; /* the connection's now */
    break;
  case GC_MAIL_STOP:
    gc__loop_stop_local(loop);
    break;
  case GC_MAIL_DROP_ALL:
    gc__conn_close_all(loop, GC_CLOSE_REASON_DROP);
    if (atomic_fetch_sub(&loop->server->drops_pending, 1) == 1)
      gc__signal_guard_take(atomic_load(&loop->server->drop_mark));
    break;
  case GC_MAIL_DRAINED:
    gc__server_loop_drained(loop->server);
    break;
  case GC_MAIL_EXIT:
    gc__loop_exit(loop);
    break;
  case GC_MAIL_REDIS_PUB:
    gc__redis_publish_mail(loop, m);
    break;
  case GC_MAIL_LINK:
    gc__link_mail(loop, m);
    break;
  }
  gc_mail_free(m);
}

int gc__mailbox_run(struct gc_loop *loop) {
  struct gc_mailbox *mb = &loop->mbox;
  pthread_mutex_lock(&mb->lock);
  struct gc_mail *m = mb->head;
  mb->head = mb->tail = NULL;
  pthread_mutex_unlock(&mb->lock);
  if (!m)
    return 0;
  struct gc_loop *was = gc__loop_current;
  gc__loop_current = loop;
  while (m) {
    struct gc_mail *next = m->next;
    mail_run(loop, m);
    m = next;
  }
  gc__loop_current = was;
  return 1;
}

static void on_async(uv_async_t *a) { (void)gc__mailbox_run(a->data); }

int gc__mailbox_init(struct gc_loop *loop) {
  struct gc_mailbox *mb = &loop->mbox;
  memset(mb, 0, sizeof *mb);
  int rc = pthread_mutex_init(&mb->lock, NULL);
  if (rc)
    return rc;
  if ((rc = uv_async_init(&loop->uv, &mb->async, on_async)) != 0) {
    pthread_mutex_destroy(&mb->lock);
    return rc < 0 ? -rc : rc;
  }
  mb->async.data = loop;
  mb->async_ready = 1;
  /* Waiting for mail does not keep a loop alive: its listeners and
   * connections do, and the shutdown ends it with GC_MAIL_EXIT. */
  uv_unref((uv_handle_t *)&mb->async);
  loop->mbox_ready = 1;
  return 0;
}

void gc__mailbox_close(struct gc_loop *loop) {
  if (!loop->mbox_ready)
    return;
  /* Run until empty: a mail may post another to this loop. */
  for (int i = 0; i < 100 && gc__mailbox_run(loop); i++)
    ;
  pthread_mutex_lock(&loop->mbox.lock);
  loop->mbox.closed = 1;
  struct gc_mail *m = loop->mbox.head;
  loop->mbox.head = loop->mbox.tail = NULL;
  pthread_mutex_unlock(&loop->mbox.lock);
  while (m) {
    struct gc_mail *next = m->next;
    gc_mail_free(m);
    m = next;
  }
}

void gc__mailbox_free(struct gc_loop *loop) {
  if (!loop->mbox_ready)
    return;
  pthread_mutex_destroy(&loop->mbox.lock);
  loop->mbox_ready = 0;
}
