/* http_upgrade.c - see http_upgrade.h. */
#include "http_upgrade.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static const char WS_GUID[] = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/* True when the comma-separated token list 'list' holds 'token'. */
static int has_token(const char *list, const char *token) {
  size_t tl = strlen(token);
  const char *p = list;
  while (*p) {
    while (*p == ' ' || *p == '\t' || *p == ',')
      p++;
    const char *start = p;
    while (*p && *p != ',')
      p++;
    const char *end = p;
    while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
      end--;
    if ((size_t)(end - start) == tl && strncasecmp(start, token, tl) == 0)
      return 1;
  }
  return 0;
}

static int key_valid(const char *k) {
  /* 16 random bytes in base64: 22 characters and "==". */
  if (strlen(k) != 24 || k[22] != '=' || k[23] != '=')
    return 0;
  for (int i = 0; i < 22; i++)
    if (!isalnum((unsigned char)k[i]) && k[i] != '+' && k[i] != '/')
      return 0;
  return 1;
}

static void header_end(struct gc_http_req *r) {
  if (!r->in_value)
    return;
  r->value[r->value_len] = '\0';
  const char *f = r->field, *v = r->value;
  while (*v == ' ' || *v == '\t')
    v++;
  if (strcmp(f, "host") == 0)
    r->has_host = 1;
  else if (strcmp(f, "upgrade") == 0)
    r->upgrade_ws = has_token(v, "websocket");
  else if (strcmp(f, "connection") == 0)
    r->connection_upgrade = has_token(v, "upgrade");
  else if (strcmp(f, "sec-websocket-version") == 0) {
    r->has_version = 1;
    r->version_13 = strcmp(v, "13") == 0;
  } else if (strcmp(f, "sec-websocket-key") == 0) {
    size_t n = strlen(v);
    if (n >= sizeof r->key)
      n = sizeof r->key - 1; /* too long to be valid anyway */
    memcpy(r->key, v, n);
    r->key[n] = '\0';
    while (n && (r->key[n - 1] == ' ' || r->key[n - 1] == '\t'))
      r->key[--n] = '\0';
    r->key_ok = key_valid(r->key);
  }
  r->in_value = 0;
  r->field_len = 0;
  r->value_len = 0;
}

static int on_url(http_parser *p, const char *at, size_t len) {
  struct gc_http_req *r = p->data;
  if (r->target_len + len > GC_HTTP_MAX_TARGET) {
    r->target_too_long = 1;
    return 0;
  }
  memcpy(r->target + r->target_len, at, len);
  r->target_len += len;
  r->target[r->target_len] = '\0';
  return 0;
}

static int on_header_field(http_parser *p, const char *at, size_t len) {
  struct gc_http_req *r = p->data;
  header_end(r);
  for (size_t i = 0; i < len && r->field_len < sizeof r->field - 1; i++)
    r->field[r->field_len++] = (char)tolower((unsigned char)at[i]);
  r->field[r->field_len] = '\0';
  return 0;
}

static int on_header_value(http_parser *p, const char *at, size_t len) {
  struct gc_http_req *r = p->data;
  r->in_value = 1;
  size_t room = sizeof r->value - 1 - r->value_len;
  if (len > room)
    len = room;
  memcpy(r->value + r->value_len, at, len);
  r->value_len += len;
  return 0;
}

static int on_headers_complete(http_parser *p) {
  struct gc_http_req *r = p->data;
  header_end(r);
  r->headers_done = 1;
  /* For an upgrade, http-parser stops at the end of the headers by itself
   * and reports where the WebSocket bytes start; anything else is refused,
   * so what it parses after does not matter. (Pausing here would leave the
   * final LF unconsumed.) */
  return 0;
}

static const http_parser_settings settings = {
    .on_url = on_url,
    .on_header_field = on_header_field,
    .on_header_value = on_header_value,
    .on_headers_complete = on_headers_complete,
};

void gc_http_req_init(struct gc_http_req *r) {
  memset(r, 0, sizeof *r);
  http_parser_init(&r->parser, HTTP_REQUEST);
  r->parser.data = r;
}

int gc_http_req_feed(struct gc_http_req *r, const char *data, size_t len,
                     size_t *consumed) {
  *consumed = 0;
  if (r->headers_done)
    return 0;
  size_t n = http_parser_execute(&r->parser, &settings, data, len);
  enum http_errno err = HTTP_PARSER_ERRNO(&r->parser);
  r->seen += n;
  *consumed = n;
  if (r->headers_done) {
    if (r->seen > GC_HTTP_MAX_HEADER)
      return 431;
    return 0;
  }
  if (err != HPE_OK)
    return 400;
  if (r->seen > GC_HTTP_MAX_HEADER)
    return 431;
  return 0;
}

int gc_http_req_check(const struct gc_http_req *r, const char **why) {
  const http_parser *p = &r->parser;
  if (p->method != HTTP_GET)
    return *why = "method must be GET", 400;
  if (p->http_major < 1 || (p->http_major == 1 && p->http_minor < 1))
    return *why = "HTTP/1.1 required", 400;
  if (r->target_too_long)
    return *why = "request target too long", 400;
  if (r->target_len == 0 || r->target[0] != '/')
    return *why = "bad request target", 400;
  if (!r->has_host)
    return *why = "missing Host header", 400;
  if (!r->upgrade_ws)
    return *why = "not a WebSocket upgrade (Upgrade: websocket expected)", 400;
  if (!r->connection_upgrade)
    return *why = "Connection: Upgrade expected", 400;
  if (!r->has_version || !r->version_13)
    return *why = "Sec-WebSocket-Version: 13 expected", 400;
  if (!r->key_ok)
    return *why = "missing or malformed Sec-WebSocket-Key", 400;
  *why = NULL;
  return 0;
}

int gc_ws_accept_key(const char *key, char out[29]) {
  char buf[128];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  int n = snprintf(buf, sizeof buf, "%s%s", key, WS_GUID);
  if (n < 0 || (size_t)n >= sizeof buf)
    return EINVAL;
  if (!EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL) || mdlen != 20)
    return EIO;
  if (EVP_EncodeBlock((unsigned char *)out, md, 20) != 28)
    return EIO;
  return 0;
}

static const char *status_text(int status) {
  switch (status) {
  case 400: return "Bad Request";
  case 401: return "Unauthorized";
  case 402: return "Payment Required";
  case 403: return "Forbidden";
  case 404: return "Not Found";
  case 409: return "Conflict";
  case 410: return "Gone";
  case 423: return "Locked";
  case 429: return "Too Many Requests";
  case 431: return "Request Header Fields Too Large";
  case 500: return "Internal Server Error";
  case 501: return "Not Implemented";
  case 502: return "Bad Gateway";
  case 503: return "Service Unavailable";
  case 504: return "Gateway Timeout";
  default: return "Error";
  }
}

int gc_http_response(char *buf, size_t size, int status, const char *body) {
  int n = snprintf(buf, size,
                   "HTTP/1.1 %d %s\r\nContent-Type: text/plain; charset=utf-8\r\n"
                   "Content-Length: %zu\r\nConnection: close\r\n\r\n%s\n",
                   status, status_text(status), strlen(body) + 1, body);
  return n < 0 || (size_t)n >= size ? -1 : n;
}
