/* testing.h - what the files of gc.testing share: its host and client
 * records (gc_testing.c drives them from Lua, client.c speaks WebSocket
 * for the clients). */
#ifndef GC_TESTING_H
#define GC_TESTING_H

#include <stddef.h>
#include <stdint.h>
#include <wslay/wslay.h>

#include "embed.h"

struct tmsg {
  struct tmsg *next;
  size_t len;
  int text; /* a text frame (else binary) */
  char data[];
};

struct tbuf {
  uint8_t *p;
  size_t len, cap;
};

struct thost;

struct tclient {
  struct thost *host;
  struct tclient *next; /* in the host's list while the connection lives */
  struct gc_conn *conn; /* NULL once the host closed it */
  int opened;           /* 101 received */
  int finished;         /* close_reason decided */
  int gone;             /* the host closed the connection */
  int got_close;        /* a close frame arrived */
  int paused;           /* takes no bytes from the host (client:pause) */
  int ignore_close;     /* never answers a close frame (client:ignore_close) */
  int close_code;
  char close_text[126]; /* the reason of the close frame, NUL-terminated */
  int http_status;
  char *body;           /* of a refused upgrade, without its newline */
  const char *close_reason;
  struct tbuf in, out;
  wslay_event_context_ptr ws;
  struct tmsg *head, *tail;
};

struct thost {
  struct gc_host *h;
  struct tclient *clients;
  int raise_errors;
  char *errors; /* GCL_ERR lines since the last check, each ending in RS */
  size_t errors_len;
  int quiet;
  /* Every line logged (host:logs), "X: text" without the timestamp, and
   * its level; the last LOGS_KEPT of them. */
  char **logs;
  int *log_levels;
  size_t nlogs, logs_cap;
  /* T.host{ http = f } (http.c): f in the registry, called on a thread of
   * its own; NULL without one. 'in_http' while it runs. */
  struct lua_State *http_L;
  int http_ref, http_thread_ref;
  int in_http;
};

#define CLIENT_MT "gc.testing.client"

struct lua_State;

/* gc_testing.c */
/* The host a spec drives now (where its log lines and errors go). */
void gc_thost_enter(struct thost *t);
/* capture.c: the host being driven right now (its log lines and errors). */
extern struct thost *gc_thost_log_target;
/* capture.c: our dlopen reference to the Lua adapter (its error sink). */
extern void *gc_thost_sink_dl;
/* Runs the host and its clients until nothing moves; raises the script
 * errors logged meanwhile (unless the host was made not to). */
void gc_thost_settle(struct lua_State *L, struct thost *t);
/* capture.c: between two logged errors (they span lines). */
#define ERR_SEP '\x1e'
/* The Lua adapter's error sink, for the adapter at 'path'. */
void gc_thost_error_sink_install(const char *path);
/* The host log's hook: every line kept for host:logs(). */
void gc_thost_log_hook(int level, const char *line, void *ud);
void gc_thost_logs_free(struct thost *t);
/* Raises the errors gathered so far (after 'prefix'), and forgets them. */
void gc_thost_push_errors(struct lua_State *L, struct thost *t,
                          const char *prefix);
/* The client leaves the host's list (its connection is over). */
void gc_thost_unlink(struct thost *t, struct tclient *c);

/* setup.c */
/* The Lua adapter T.host loads. */
const char *gc_testing_adapter_path(void);
/* The Lua value at 'idx' as JSON (tables nested at most to a depth);
 * NULL for what JSON cannot hold. */
struct json_t;
struct json_t *gc_testing_to_json(struct lua_State *L, int idx, int depth);

/* http.c: T.host's 'http' (httpRequest answered by the spec). check
 * raises on a bad 'http' in the spec table at 'spec'; setup stands it in
 * for the network (before the host starts); free undoes it. */
int gc_thost_http_check(struct lua_State *L, int spec);
void gc_thost_http_setup(struct lua_State *L, struct thost *t, int spec);
void gc_thost_http_free(struct thost *t);

/* client_lua.c: the client's metatable and methods. */
void gc_tclient_lua_open(struct lua_State *L);

/* client.c */
int gc_tbuf_add(struct tbuf *b, const void *data, size_t len);
void gc_tbuf_take(struct tbuf *b, size_t n);
/* The host's side of every client (gc_host_connect). */
extern const struct gc_mem_ops gc_tclient_mem_ops;
/* Parses what the server wrote; 1 if the client has bytes to send. */
int gc_tclient_process(struct tclient *c);
/* Hands what the client's wslay wrote to the host (which runs it). */
void gc_tclient_flush(struct tclient *c);

#endif
