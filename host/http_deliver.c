/* http_deliver.c - the callbacks of httpRequest: run from the loop's idle
 * handle on the turn after a call ended (never inside httpRequest), or at
 * the loop's end; and gc.testing's stand-in for the network, asked at that
 * same moment. See http_client.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"
#include "http_client.h"
#include "internal.h"

static struct gc_http_mock mock;
static int mock_on;

void gc_http_mock_set(const struct gc_http_mock *m) {
  if (m)
    mock = *m;
  mock_on = m != NULL;
}

int gc__http_mock_on(void) { return mock_on; }

struct mock_reply_ctx {
  struct gc_http_call *call;
  int replied;
};

static void mock_reply(void *rctx, int err, const char *err_text,
                       const struct gc_http_response *res) {
  struct mock_reply_ctx *r = rctx;
  if (r->replied)
    return;
  r->replied = 1;
  struct gc_http_call *c = r->call;
  if (!err && !res)
    err = EPROTO, err_text = "no response";
  c->cb(c->user, err, err ? (err_text ? err_text : "error") : NULL,
        err ? NULL : res);
}

/* gc.testing: the request as the mock sees it (the user's headers parsed
 * back from their serialised form). */
static void mock_deliver(struct gc_http_call *c) {
  struct mock_reply_ctx r = {c, 0};
  size_t n = 0;
  for (size_t i = 0; i + 1 < c->hdrs_len; i++)
    n += c->hdrs[i] == '\r' && c->hdrs[i + 1] == '\n';
  struct gc_http_header *h = gc_calloc(n ? n : 1, sizeof *h);
  char *copy = c->hdrs_len ? gc_malloc(c->hdrs_len + 1) : NULL;
  if (!h || (c->hdrs_len && !copy)) {
    gc_free(h);
    gc_free(copy);
    mock_reply(&r, ENOMEM, "out of memory", NULL);
    return;
  }
  size_t k = 0;
  if (copy) {
    memcpy(copy, c->hdrs, c->hdrs_len + 1);
    for (char *line = copy; *line && k < n;) {
      char *end = strstr(line, "\r\n");
      char *colon = strstr(line, ": ");
      *end = '\0';
      *colon = '\0';
      h[k].name = line;
      h[k++].value = colon + 2;
      line = end + 2;
    }
  }
  struct gc_http_request req = {.method = c->method, .url = c->url_text,
                                .headers = h, .header_count = k,
                                .body = c->body, .body_len = c->body_len,
                                .timeout_ms = c->timeout_ms,
                                .max_body = c->max_body,
                                .max_redirects = c->redirects_left};
  if (mock_on)
    mock.answer(mock.ud, &req, mock_reply, &r);
  if (!r.replied)
    mock_reply(&r, EPROTO, "T.host's http function gave no answer", NULL);
  gc_free(h);
  gc_free(copy);
}

static void deliver(struct gc_http_call *c) {
  (void)gc_handle_table_remove(&c->hl->ids, c->id);
  if (c->mock && !c->err) {
    mock_deliver(c);
  } else if (c->err) {
    c->cb(c->user, c->err, c->err_text, NULL);
  } else {
    struct gc_http_response res = {
        .status = (GCT_INT)c->resp.parser.status_code,
        .headers = c->resp.headers, .header_count = c->resp.header_count,
        .body = c->resp.body, .body_len = c->resp.body_len};
    c->cb(c->user, 0, NULL, &res);
  }
  gc__http_call_free(c);
}

/* Runs the callbacks of the calls done so far; those they start or end
 * wait for the next turn. */
void gc__http_deliver_all(struct gc_http_loop *hl) {
  struct gc_http_call *list = hl->done;
  hl->done = hl->done_tail = NULL;
  (void)uv_idle_stop(&hl->kick);
  while (list) {
    struct gc_http_call *c = list;
    list = c->next;
    c->prev = c->next = NULL;
    deliver(c);
  }
}

