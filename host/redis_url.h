/* redis_url.h - the "redis.url" of the config:
 *
 *   redis://[[USER]:PASSWORD@]HOST[:PORT][/DB]
 *
 * HOST is a name (letters, digits, '-', '.'), a numeric IPv4 address or an
 * IPv6 address in brackets ("[::1]"); PORT 1..65535 (default 6379); DB a
 * database number 0..2147483647 (default 0). USER and PASSWORD may use %XX
 * escapes. Nothing else: no "rediss://" (TLS), no query, no fragment.
 * Parsed twice: by the config's validation (its message placed at the
 * value's line:col) and by the Redis link (host/redis.c). */
#ifndef GC_REDIS_URL_H
#define GC_REDIS_URL_H

#include <stddef.h>

#define GC_REDIS_DEFAULT_PORT 6379
#define GC_REDIS_HOST_MAX 255
#define GC_REDIS_CRED_MAX 255

struct gc_redis_url {
  char host[GC_REDIS_HOST_MAX + 1]; /* without brackets: "::1" */
  int port;
  int db;
  char user[GC_REDIS_CRED_MAX + 1];     /* "" when absent (AUTH PASSWORD) */
  char password[GC_REDIS_CRED_MAX + 1]; /* "" when absent */
  int has_password; /* a ':' after the user (an empty password counts) */
  int ipv6;         /* the host was bracketed */
};

/* Parses 'url' into '*out': 0, or EINVAL with one phrase saying what is
 * wrong in 'why' (e.g. "bad port \"99999\" (1..65535)"). */
int gc_redis_url_parse(const char *url, struct gc_redis_url *out, char *why,
                       size_t whylen);

#endif
