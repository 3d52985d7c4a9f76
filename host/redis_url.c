/* redis_url.c - see redis_url.h. */
#include "redis_url.h"

#include <arpa/inet.h>
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#define FORM "redis://HOST[:PORT][/DB]"

static int bad(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int bad(char *why, size_t whylen, const char *fmt, ...) {
  if (why && whylen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, whylen, fmt, ap);
    va_end(ap);
  }
  return EINVAL;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9')
    return c - '0';
  if (c >= 'a' && c <= 'f')
    return c - 'a' + 10;
  if (c >= 'A' && c <= 'F')
    return c - 'A' + 10;
  return -1;
}

/* Copies [p, end) into 'out' (GC_REDIS_CRED_MAX + 1 bytes) decoding %XX:
 * 0, or -1 for a bad escape, a NUL or a value too long. */
static int decode(const char *p, const char *end, char *out) {
  size_t n = 0;
  while (p < end) {
    int c = (unsigned char)*p++;
    if (c == '%') {
      int hi = p < end ? hexval(p[0]) : -1;
      int lo = p + 1 < end ? hexval(p[1]) : -1;
      if (hi < 0 || lo < 0)
        return -1;
      c = hi * 16 + lo;
      p += 2;
    }
    if (c == 0 || n >= GC_REDIS_CRED_MAX)
      return -1;
    out[n++] = (char)c;
  }
  out[n] = '\0';
  return 0;
}

/* A decimal number of [p, end) in 'lo'..'hi', or -1. */
static long number(const char *p, const char *end, long lo, long hi) {
  if (p == end || end - p > 10)
    return -1;
  long v = 0;
  for (; p < end; p++) {
    if (*p < '0' || *p > '9')
      return -1;
    v = v * 10 + (*p - '0');
  }
  return v >= lo && v <= hi ? v : -1;
}

static int name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_';
}

int gc_redis_url_parse(const char *url, struct gc_redis_url *out, char *why,
                       size_t whylen) {
  memset(out, 0, sizeof *out);
  out->port = GC_REDIS_DEFAULT_PORT;
  if (why && whylen)
    why[0] = '\0';
  if (!url)
    return bad(why, whylen, "expected a URL " FORM);
  if (strncmp(url, "rediss://", 9) == 0)
    return bad(why, whylen,
               "rediss:// (TLS) is not supported: use " FORM
               " (through a TLS tunnel to a remote Redis)");
  if (strncmp(url, "redis://", 8) != 0)
    return bad(why, whylen,
               "expected a URL " FORM ", e.g. \"redis://127.0.0.1:6379/0\"");
  const char *p = url + 8;
  const char *bad_char = strpbrk(p, "?# ");
  if (bad_char)
    return bad(why, whylen, "unexpected '%c' in the URL: expected " FORM,
               *bad_char);
  const char *slash = strchr(p, '/');
  const char *end = slash ? slash : p + strlen(p);

  /* [[USER]:PASSWORD@]: the last '@' ends it (a password may hold one). */
  const char *at = NULL;
  for (const char *q = p; q < end; q++)
    if (*q == '@')
      at = q;
  if (at) {
    const char *colon = memchr(p, ':', (size_t)(at - p));
    if (!colon)
      return bad(why, whylen,
                 "expected USER:PASSWORD@ or :PASSWORD@ before the host");
    if (decode(p, colon, out->user) != 0 ||
        decode(colon + 1, at, out->password) != 0)
      return bad(why, whylen,
                 "bad user or password (at most %d bytes; %%XX escapes)",
                 GC_REDIS_CRED_MAX);
    out->has_password = 1;
    p = at + 1;
  }

  /* HOST: a name or IPv4 address, or [IPv6]. */
  const char *host_end;
  if (*p == '[') {
    const char *close = memchr(p, ']', (size_t)(end - p));
    if (!close)
      return bad(why, whylen, "missing ']' after the IPv6 address");
    size_t n = (size_t)(close - p - 1);
    unsigned char bin[16];
    if (n == 0 || n >= sizeof out->host)
      return bad(why, whylen, "bad IPv6 address");
    memcpy(out->host, p + 1, n);
    out->host[n] = '\0';
    if (inet_pton(AF_INET6, out->host, bin) != 1)
      return bad(why, whylen, "bad IPv6 address \"%s\"", out->host);
    out->ipv6 = 1;
    host_end = close + 1;
    if (host_end < end && *host_end != ':')
      return bad(why, whylen, "expected ':PORT' after the IPv6 address");
  } else {
    host_end = p;
    while (host_end < end && *host_end != ':')
      host_end++;
    size_t n = (size_t)(host_end - p);
    if (n == 0)
      return bad(why, whylen, "missing HOST: expected " FORM);
    if (n > GC_REDIS_HOST_MAX)
      return bad(why, whylen, "HOST longer than %d bytes", GC_REDIS_HOST_MAX);
    for (const char *q = p; q < host_end; q++)
      if (!name_char(*q))
        return bad(why, whylen,
                   "bad HOST \"%.*s\" (a name, an IPv4 address or [IPv6])",
                   (int)(n > 64 ? 64 : n), p);
    memcpy(out->host, p, n);
    out->host[n] = '\0';
  }

  /* :PORT */
  if (host_end < end) {
    long port = number(host_end + 1, end, 1, 65535);
    if (port < 0) {
      int n = (int)(end - host_end - 1);
      return bad(why, whylen, "bad port \"%.*s\" (1..65535)", n > 16 ? 16 : n,
                 host_end + 1);
    }
    out->port = (int)port;
  }

  /* /DB */
  if (slash && slash[1]) {
    const char *db_end = slash + 1 + strlen(slash + 1);
    long db = number(slash + 1, db_end, 0, INT_MAX);
    if (db < 0) {
      int n = (int)(db_end - slash - 1);
      return bad(why, whylen,
                 "bad database \"%.*s\" (a number 0..%d after '/')",
                 n > 16 ? 16 : n, slash + 1, INT_MAX);
    }
    out->db = (int)db;
  }
  return 0;
}
