/* client.c - the wire side of gc.testing's in-memory clients: the bytes
 * the host writes (struct gc_mem_ops), a wslay client context that makes
 * and parses real WebSocket frames, the upgrade's answer. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "testing.h"

/* ---- buffers ------------------------------------------------------------- */

int gc_tbuf_add(struct tbuf *b, const void *data, size_t len) {
  if (b->len + len > b->cap) {
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + len)
      cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p)
      return ENOMEM;
    b->p = p;
    b->cap = cap;
  }
  memcpy(b->p + b->len, data, len);
  b->len += len;
  return 0;
}

void gc_tbuf_take(struct tbuf *b, size_t n) {
  memmove(b->p, b->p + n, b->len - n);
  b->len -= n;
}

/* ---- the in-memory transport's peer side -------------------------------- */

static void mem_on_data(void *ud, const uint8_t *data, size_t len) {
  struct tclient *c = ud;
  (void)gc_tbuf_add(&c->in, data, len);
}

static void mem_on_close(void *ud) {
  struct tclient *c = ud;
  c->conn = NULL;
  c->gone = 1;
}

static int mem_paused(void *ud) { return ((struct tclient *)ud)->paused; }

/* Handed to the worker its app's route chose: the same client, a new
 * connection object. */
static void mem_on_moved(void *ud, struct gc_conn *conn) {
  ((struct tclient *)ud)->conn = conn;
}

const struct gc_mem_ops gc_tclient_mem_ops = {mem_on_data, mem_on_close, mem_paused,
                                          mem_on_moved};

/* ---- the client's WebSocket side (wslay client context) ----------------- */

static ssize_t cws_recv(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                        int flags, void *ud) {
  struct tclient *c = ud;
  (void)flags;
  if (c->in.len == 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_WOULDBLOCK);
    return -1;
  }
  if (len > c->in.len)
    len = c->in.len;
  memcpy(buf, c->in.p, len);
  gc_tbuf_take(&c->in, len);
  return (ssize_t)len;
}

static ssize_t cws_send(wslay_event_context_ptr ctx, const uint8_t *data,
                        size_t len, int flags, void *ud) {
  struct tclient *c = ud;
  (void)flags;
  if (gc_tbuf_add(&c->out, data, len) != 0) {
    wslay_event_set_error(ctx, WSLAY_ERR_CALLBACK_FAILURE);
    return -1;
  }
  return (ssize_t)len;
}

static int cws_genmask(wslay_event_context_ptr ctx, uint8_t *buf, size_t len,
                       void *ud) {
  (void)ctx, (void)ud;
  for (size_t i = 0; i < len; i++)
    buf[i] = (uint8_t)(rand() & 0xff);
  return 0;
}

static void cws_on_msg(wslay_event_context_ptr ctx,
                       const struct wslay_event_on_msg_recv_arg *arg, void *ud) {
  struct tclient *c = ud;
  (void)ctx;
  if (arg->opcode == WSLAY_CONNECTION_CLOSE) {
    c->got_close = 1;
    c->close_code = arg->status_code;
    size_t n = arg->msg_length > 2 ? arg->msg_length - 2 : 0;
    if (n >= sizeof c->close_text)
      n = sizeof c->close_text - 1;
    if (n)
      memcpy(c->close_text, arg->msg + 2, n);
    c->close_text[n] = '\0';
    return;
  }
  if (arg->opcode != WSLAY_TEXT_FRAME && arg->opcode != WSLAY_BINARY_FRAME)
    return;
  struct tmsg *m = malloc(sizeof *m + arg->msg_length + 1);
  if (!m)
    return;
  m->next = NULL;
  m->len = arg->msg_length;
  m->text = arg->opcode == WSLAY_TEXT_FRAME;
  memcpy(m->data, arg->msg, arg->msg_length);
  if (c->tail)
    c->tail->next = m;
  else
    c->head = m;
  c->tail = m;
}

static const struct wslay_event_callbacks cws_callbacks = {
    .recv_callback = cws_recv,
    .send_callback = cws_send,
    .genmask_callback = cws_genmask,
    .on_msg_recv_callback = cws_on_msg,
};

/* Parses what the server wrote; returns 1 if the client has bytes to send. */
int gc_tclient_process(struct tclient *c) {
  if (!c->opened && !c->http_status) {
    uint8_t *end = NULL;
    for (size_t i = 0; i + 3 < c->in.len; i++)
      if (!memcmp(c->in.p + i, "\r\n\r\n", 4)) {
        end = c->in.p + i + 4;
        break;
      }
    if (!end)
      goto done;
    int status = 0;
    if (c->in.len > 12 && !memcmp(c->in.p, "HTTP/1.1 ", 9))
      status = atoi((const char *)c->in.p + 9);
    c->http_status = status ? status : 500;
    gc_tbuf_take(&c->in, (size_t)(end - c->in.p));
    if (status == 101) {
      c->opened = 1;
      if (wslay_event_context_client_init(&c->ws, &cws_callbacks, c) != 0)
        c->ws = NULL;
    } else {
      /* The error body: one line (the host writes it with the head). */
      size_t n = c->in.len;
      while (n && (c->in.p[n - 1] == '\n' || c->in.p[n - 1] == '\r'))
        n--;
      free(c->body);
      if ((c->body = malloc(n + 1)) != NULL) {
        memcpy(c->body, c->in.p, n);
        c->body[n] = '\0';
      }
      c->in.len = 0;
    }
  }
  if (c->ws && c->in.len && wslay_event_want_read(c->ws))
    (void)wslay_event_recv(c->ws);
  /* Ignoring a close: its reply (and anything after it) stays unsent. */
  if (c->ws && wslay_event_want_write(c->ws) && !(c->ignore_close && c->got_close))
    (void)wslay_event_send(c->ws);
done:
  if (c->gone && !c->finished) {
    c->finished = 1;
    if (!c->opened)
      c->close_reason = "refused";
    else if (c->got_close)
      c->close_reason = "normal";
    else
      c->close_reason = "drop";
  }
  return c->conn && c->out.len;
}

/* Hands what the client's wslay wrote to the host (which runs it). */
void gc_tclient_flush(struct tclient *c) {
  struct tbuf out = c->out;
  c->out = (struct tbuf){0};
  gc_host_input(c->host->h, c->conn, out.p, out.len);
  free(out.p);
}

