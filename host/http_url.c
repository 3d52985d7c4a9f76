/* http_url.c - the URLs of httpRequest (parsing, resolving a redirect's
 * Location) and the bytes of a request. See http_client.h. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "alloc.h"
#include "http_client.h"

void gc_http_url_free(struct gc_http_url *u) {
  gc_free(u->host);
  gc_free(u->target);
  memset(u, 0, sizeof *u);
}

static char *dup_n(const char *p, size_t n) {
  char *s = gc_malloc(n + 1);
  if (s) {
    memcpy(s, p, n);
    s[n] = '\0';
  }
  return s;
}

/* No byte a request line or a Host header could not carry. */
static int url_bytes_ok(const char *p, size_t n) {
  for (size_t i = 0; i < n; i++) {
    unsigned char ch = (unsigned char)p[i];
    if (ch <= 0x20 || ch == 0x7f)
      return 0;
  }
  return 1;
}

int gc_http_url_parse(const char *url, size_t len, struct gc_http_url *u) {
  memset(u, 0, sizeof *u);
  if (!url || len == 0 || len > 8192)
    return EINVAL;
  int https = len >= 8 && strncasecmp(url, "https://", 8) == 0;
  if (!https && (len < 7 || strncasecmp(url, "http://", 7) != 0))
    return EINVAL;
  if (!url_bytes_ok(url, len))
    return EINVAL;
  struct http_parser_url pu;
  http_parser_url_init(&pu);
  if (http_parser_parse_url(url, len, 0, &pu) != 0 ||
      !(pu.field_set & (1 << UF_HOST)) || (pu.field_set & (1 << UF_USERINFO)) ||
      pu.field_data[UF_HOST].len == 0)
    return EINVAL;
  u->https = https;
  u->port = (pu.field_set & (1 << UF_PORT)) ? pu.port : https ? 443 : 80;
  if (u->port <= 0)
    return EINVAL;
  const char *host = url + pu.field_data[UF_HOST].off;
  size_t hlen = pu.field_data[UF_HOST].len;
  size_t plen = (pu.field_set & (1 << UF_PATH)) ? pu.field_data[UF_PATH].len : 0;
  size_t qlen = (pu.field_set & (1 << UF_QUERY)) ? pu.field_data[UF_QUERY].len : 0;
  if (!(u->host = dup_n(host, hlen)) ||
      !(u->target = gc_malloc((plen ? plen : 1) + (qlen ? qlen + 1 : 0) + 1))) {
    gc_http_url_free(u);
    return ENOMEM;
  }
  for (char *p = u->host; *p; p++)
    if (*p >= 'A' && *p <= 'Z')
      *p = (char)(*p - 'A' + 'a');
  char *t = u->target;
  if (plen) {
    memcpy(t, url + pu.field_data[UF_PATH].off, plen);
    t += plen;
  } else {
    *t++ = '/';
  }
  if (qlen) {
    *t++ = '?';
    memcpy(t, url + pu.field_data[UF_QUERY].off, qlen);
    t += qlen;
  }
  *t = '\0';
  /* The fragment stays on this side (RFC 9110 4.2.4). */
  unsigned char addr[16];
  u->ip = uv_inet_pton(AF_INET, u->host, addr) == 0 ||
          uv_inet_pton(AF_INET6, u->host, addr) == 0;
  return 0;
}

int gc_http_url_resolve(const struct gc_http_url *base, const char *loc,
                        struct gc_http_url *out) {
  size_t n = strlen(loc);
  if (strncasecmp(loc, "http://", 7) == 0 || strncasecmp(loc, "https://", 8) == 0)
    return gc_http_url_parse(loc, n, out);
  char buf[8192 + 300];
  const int v6 = strchr(base->host, ':') != NULL;
  /* A relative location keeps the base's scheme. */
  const char *scheme = base->https ? "https" : "http";
  int k;
  if (loc[0] == '/' && loc[1] == '/') /* scheme-relative */
    k = snprintf(buf, sizeof buf, "%s:%s", scheme, loc);
  else if (loc[0] == '/')
    k = snprintf(buf, sizeof buf, "%s://%s%s%s:%d%s", scheme, v6 ? "[" : "",
                 base->host, v6 ? "]" : "", base->port, loc);
  else { /* relative to the base's directory (dot segments kept as sent) */
    size_t dir = strcspn(base->target, "?");
    while (dir > 0 && base->target[dir - 1] != '/')
      dir--;
    k = snprintf(buf, sizeof buf, "%s://%s%s%s:%d%.*s%s", scheme, v6 ? "[" : "",
                 base->host, v6 ? "]" : "", base->port, (int)dir, base->target,
                 loc);
  }
  if (k < 0 || (size_t)k >= sizeof buf)
    return EINVAL;
  return gc_http_url_parse(buf, (size_t)k, out);
}

static int is_tchar(unsigned char ch) {
  return (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
         (ch >= 'A' && ch <= 'Z') || (ch && strchr("!#$%&'*+-.^_`|~", ch));
}

int gc_http_method_check(const char *m) {
  size_t n = strlen(m);
  if (n == 0 || n > 32)
    return EINVAL;
  for (size_t i = 0; i < n; i++)
    if (!is_tchar((unsigned char)m[i]))
      return EINVAL;
  return 0;
}

/* Headers gcs writes itself (framing and the connection's life). */
static int is_own(const char *name) {
  return strcasecmp(name, "content-length") == 0 ||
         strcasecmp(name, "transfer-encoding") == 0 ||
         strcasecmp(name, "connection") == 0;
}

int gc_http_headers_serialise(const struct gc_http_header *h, size_t n,
                              char **out, size_t *len, int *has_host) {
  *out = NULL;
  *len = 0;
  *has_host = 0;
  if (n && !h)
    return EINVAL;
  size_t total = 0;
  for (size_t i = 0; i < n; i++) {
    if (!h[i].name || !h[i].value || gc_http_method_check(h[i].name) != 0)
      return EINVAL;
    for (const char *v = h[i].value; *v; v++)
      if (*v == '\r' || *v == '\n')
        return EINVAL;
    if (is_own(h[i].name))
      continue;
    total += strlen(h[i].name) + strlen(h[i].value) + 4;
    if (total > GC_HTTP_MAX_HEADERS_BYTES)
      return EINVAL;
  }
  char *buf = gc_malloc(total + 1);
  if (!buf)
    return ENOMEM;
  char *p = buf;
  for (size_t i = 0; i < n; i++) {
    if (is_own(h[i].name))
      continue;
    if (strcasecmp(h[i].name, "host") == 0)
      *has_host = 1;
    p += sprintf(p, "%s: %s\r\n", h[i].name, h[i].value);
  }
  *p = '\0';
  *out = buf;
  *len = total;
  return 0;
}

int gc_http_request_build(const char *method, const struct gc_http_url *u,
                          const char *hdrs, size_t hdrs_len, int has_host,
                          const void *body, size_t body_len, char **out,
                          size_t *len) {
  char host[300] = "";
  if (!has_host) {
    const int v6 = strchr(u->host, ':') != NULL;
    if (u->port == (u->https ? 443 : 80))
      snprintf(host, sizeof host, "Host: %s%s%s\r\n", v6 ? "[" : "", u->host,
               v6 ? "]" : "");
    else
      snprintf(host, sizeof host, "Host: %s%s%s:%d\r\n", v6 ? "[" : "", u->host,
               v6 ? "]" : "", u->port);
  }
  /* A body's length always; none for a method that has no body. */
  char clen[48] = "";
  if (body_len || strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0 ||
      strcmp(method, "PATCH") == 0)
    snprintf(clen, sizeof clen, "Content-Length: %zu\r\n", body_len);
  size_t head = strlen(method) + strlen(u->target) + strlen(host) + strlen(clen) +
                hdrs_len + 16;
  char *buf = gc_malloc(head + body_len + 1);
  if (!buf)
    return ENOMEM;
  int k = snprintf(buf, head, "%s %s HTTP/1.1\r\n%s%s%s\r\n", method, u->target,
                   host, hdrs ? hdrs : "", clen);
  if (k < 0 || (size_t)k >= head) {
    gc_free(buf);
    return ENOMEM;
  }
  if (body_len)
    memcpy(buf + k, body, body_len);
  *out = buf;
  *len = (size_t)k + body_len;
  return 0;
}
