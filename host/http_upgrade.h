/* http_upgrade.h - the WebSocket opening handshake (RFC 6455 section 4.2).
 *
 * http-parser reads the request; we keep only what the upgrade needs (the
 * request target and five headers), so a connection in the handshake owns
 * one small struct, freed once the upgrade is answered. */
#ifndef GC_HTTP_UPGRADE_H
#define GC_HTTP_UPGRADE_H

#include <http_parser.h>
#include <stddef.h>

#define GC_HTTP_MAX_HEADER 8192 /* request line + headers */
#define GC_HTTP_MAX_TARGET 2048

struct gc_http_req {
  http_parser parser;
  size_t seen;                 /* bytes fed so far */
  char target[GC_HTTP_MAX_TARGET + 1];
  size_t target_len;
  char field[32];              /* current header name (truncated, lower-cased) */
  size_t field_len;
  char value[256];             /* current header value (truncated) */
  size_t value_len;
  int in_value;
  char key[64];
  int target_too_long;
  int has_host, upgrade_ws, connection_upgrade, version_13, has_version, key_ok;
  int headers_done;
};

void gc_http_req_init(struct gc_http_req *r);
/* Feeds bytes. Returns 0 when more bytes are needed or the headers are
 * complete ('r->headers_done'; '*consumed' then tells where the WebSocket
 * bytes start), or the HTTP status to answer: 400, or 431 when the headers
 * exceed GC_HTTP_MAX_HEADER. */
int gc_http_req_feed(struct gc_http_req *r, const char *data, size_t len,
                     size_t *consumed);
/* After the headers: 0 when the request is a valid WebSocket upgrade, else
 * 400 and a short reason in '*why'. */
int gc_http_req_check(const struct gc_http_req *r, const char **why);
/* Sec-WebSocket-Accept for 'key': 28 characters and a NUL. 0 or EIO. */
int gc_ws_accept_key(const char *key, char out[29]);
/* Writes a complete HTTP response with a one-line text body. */
int gc_http_response(char *buf, size_t size, int status, const char *body);

#endif
