/* http_parse.c - a response of httpRequest read with http-parser: status,
 * headers (names lower-cased; a repeated name merged into one entry, its
 * values joined with ", "), a Content-Length, chunked or read-to-close
 * body under a size bound. See http_client.h. */
#include <errno.h>
#include <string.h>

#include "alloc.h"
#include "http_client.h"

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
  if (need <= *cap)
    return 0;
  size_t n = *cap ? *cap : 16;
  while (n < need)
    n *= 2;
  void *q = gc_realloc(*p, n * elem);
  if (!q)
    return ENOMEM;
  *p = q;
  *cap = n;
  return 0;
}

static int fail(struct gc_http_resp *r, int err, const char *text) {
  if (!r->err) {
    r->err = err;
    r->err_text = text;
  }
  return -1;
}

static int buf_add(struct gc_http_resp *r, const char *at, size_t len) {
  if (r->buf_len + len > GC_HTTP_MAX_HEADERS_BYTES)
    return fail(r, EPROTO, "response headers too large");
  if (grow((void **)&r->buf, &r->buf_cap, r->buf_len + len + 1, 1))
    return fail(r, ENOMEM, "out of memory");
  memcpy(r->buf + r->buf_len, at, len);
  r->buf_len += len;
  return 0;
}

static int on_field(http_parser *p, const char *at, size_t len) {
  struct gc_http_resp *r = p->data;
  if (r->in_value || r->raw_count == 0) { /* a new header begins */
    if (grow((void **)&r->raw, &r->raw_cap, r->raw_count + 1, sizeof *r->raw))
      return fail(r, ENOMEM, "out of memory");
    r->raw[r->raw_count].name = r->buf_len;
    r->raw[r->raw_count].name_len = 0;
    r->raw[r->raw_count].value = r->buf_len;
    r->raw[r->raw_count].value_len = 0;
    r->raw_count++;
    r->in_value = 0;
  }
  size_t from = r->buf_len;
  if (buf_add(r, at, len))
    return -1;
  for (size_t i = from; i < r->buf_len; i++)
    if (r->buf[i] >= 'A' && r->buf[i] <= 'Z')
      r->buf[i] = (char)(r->buf[i] - 'A' + 'a');
  r->raw[r->raw_count - 1].name_len += len;
  return 0;
}

static int on_value(http_parser *p, const char *at, size_t len) {
  struct gc_http_resp *r = p->data;
  if (!r->raw_count)
    return fail(r, EPROTO, "bad response");
  if (!r->in_value) {
    r->in_value = 1;
    r->raw[r->raw_count - 1].value = r->buf_len;
  }
  if (buf_add(r, at, len))
    return -1;
  r->raw[r->raw_count - 1].value_len += len;
  return 0;
}

static int on_headers_complete(http_parser *p) {
  struct gc_http_resp *r = p->data;
  /* Content-Length known up front: refuse before reading it. */
  if (p->content_length != ULLONG_MAX && p->content_length > r->max_body &&
      !r->head)
    return fail(r, EMSGSIZE, "body too large");
  return r->head ? 1 : 0; /* 1: no body follows (HEAD) */
}

static int on_body(http_parser *p, const char *at, size_t len) {
  struct gc_http_resp *r = p->data;
  if (r->body_len + len > r->max_body)
    return fail(r, EMSGSIZE, "body too large");
  if (grow((void **)&r->body, &r->body_cap, r->body_len + len + 1, 1))
    return fail(r, ENOMEM, "out of memory");
  memcpy(r->body + r->body_len, at, len);
  r->body_len += len;
  return 0;
}

static int on_message_begin(http_parser *p) {
  struct gc_http_resp *r = p->data;
  /* After an interim 1xx answer: the real one starts afresh. */
  r->buf_len = r->raw_count = 0;
  r->in_value = 0;
  r->body_len = 0;
  return 0;
}

static int on_message_complete(http_parser *p) {
  struct gc_http_resp *r = p->data;
  if (p->status_code >= 100 && p->status_code < 200 && p->status_code != 101)
    return 0; /* interim: the response follows */
  r->complete = 1;
  r->keep_alive = http_should_keep_alive(p);
  http_parser_pause(p, 1); /* what follows is not ours */
  return 0;
}

static const http_parser_settings settings = {
    .on_message_begin = on_message_begin,
    .on_header_field = on_field,
    .on_header_value = on_value,
    .on_headers_complete = on_headers_complete,
    .on_body = on_body,
    .on_message_complete = on_message_complete,
};

void gc_http_resp_init(struct gc_http_resp *r, size_t max_body, int head) {
  gc_http_resp_free(r);
  http_parser_init(&r->parser, HTTP_RESPONSE);
  r->parser.data = r;
  r->max_body = max_body;
  r->head = head;
}

void gc_http_resp_free(struct gc_http_resp *r) {
  gc_free(r->buf);
  gc_free(r->raw);
  gc_free(r->body);
  gc_free(r->headers);
  gc_free(r->merged);
  memset(r, 0, sizeof *r);
}

int gc_http_resp_feed(struct gc_http_resp *r, const char *data, size_t len,
                      size_t *used) {
  *used = 0;
  if (r->complete)
    return 0;
  size_t n = http_parser_execute(&r->parser, &settings, data, len);
  *used = n;
  r->seen += n;
  enum http_errno e = HTTP_PARSER_ERRNO(&r->parser);
  if (r->err)
    return r->err;
  if (e != HPE_OK && e != HPE_PAUSED) {
    r->err_text = "bad response";
    return r->err = EPROTO;
  }
  if (len == 0 && !r->complete) { /* EOF before the end of the message */
    r->err_text = "connection closed before the response was complete";
    return r->err = EPROTO;
  }
  return 0;
}

int gc_http_resp_finish(struct gc_http_resp *r) {
  size_t n = r->raw_count;
  gc_free(r->headers);
  gc_free(r->merged);
  r->headers = NULL;
  r->merged = NULL;
  r->header_count = 0;
  /* Enough for every name and value, a NUL each, and ", " per repeat. */
  r->merged = gc_malloc(r->buf_len + 4 * n + 1);
  r->headers = gc_calloc(n ? n : 1, sizeof *r->headers);
  if (!r->merged || !r->headers)
    return ENOMEM;
  /* Each distinct name once, at its first place: its values are laid out
   * together, so the repeats of a name are gathered in one pass each. */
  char *out = r->merged;
  unsigned char *taken = gc_calloc(n ? n : 1, 1);
  if (!taken)
    return ENOMEM;
  for (size_t i = 0; i < n; i++) {
    if (taken[i])
      continue;
    const char *name = r->buf + r->raw[i].name;
    size_t nl = r->raw[i].name_len;
    struct gc_http_header *h = &r->headers[r->header_count++];
    memcpy(out, name, nl);
    out[nl] = '\0';
    h->name = out;
    out += nl + 1;
    h->value = out;
    for (size_t j = i; j < n; j++) {
      if (j != i && (taken[j] || r->raw[j].name_len != nl ||
                     memcmp(r->buf + r->raw[j].name, name, nl) != 0))
        continue;
      if (j != i) {
        memcpy(out, ", ", 2);
        out += 2;
      }
      taken[j] = 1;
      memcpy(out, r->buf + r->raw[j].value, r->raw[j].value_len);
      out += r->raw[j].value_len;
    }
    *out++ = '\0';
  }
  gc_free(taken);
  if (!r->body && !(r->body = gc_malloc(1)))
    return ENOMEM;
  r->body[r->body_len] = '\0';
  return 0;
}

const char *gc_http_resp_header(const struct gc_http_resp *r, const char *name,
                                char *out, size_t size) {
  size_t nl = strlen(name);
  for (size_t i = 0; i < r->raw_count; i++)
    if (r->raw[i].name_len == nl && memcmp(r->buf + r->raw[i].name, name, nl) == 0) {
      size_t vl = r->raw[i].value_len;
      if (vl >= size)
        return NULL;
      memcpy(out, r->buf + r->raw[i].value, vl);
      out[vl] = '\0';
      return out;
    }
  return NULL;
}
