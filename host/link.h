/* link.h - outgoing WebSocket connections ("links"): s2sCreate and friends.
 *
 * A link lives on the worker loop of the thread that created it; every
 * client_events callback runs there. States: RESOLVING -> CONNECTING ->
 * UPGRADING -> OPEN -> CLOSING -> DEAD. Everything that ends a
 * link funnels into gc__link_teardown, which closes the transport; the final
 * event (on_client_connection_error before on_client_connect was told,
 * else on_client_disconnect) comes from the close callback, exactly once,
 * and the handle (slot + generation in loop->links, tagged with the loop)
 * is released after it.
 *
 * Bytes move through a link transport (TCP, TLS over TCP for wss, or
 * gc.testing's in-memory peer): it connects, writes, and hands what
 * arrives to gc__link_input. Client frames are built (masked) here: wslay's event API
 * has no per-message completion, which on_client_message_sent needs; wslay
 * (a client context) parses the server's frames and makes control frames. */
#ifndef GC_LINK_H
#define GC_LINK_H

#include <game-carrier/common.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <wslay/wslay.h>

struct gc_loop;
struct gc_conn;
struct gc_link;

/* Bound of a link's output queue (bytes): past it the peer is not reading
 * and the link is dropped. */
#define GC_LINK_QUEUE_MAX (64u << 20)
/* Bound of the whole attempt (resolve, connect, upgrade). */
#define GC_LINK_CONNECT_MS 10000
/* Bound of the upgrade answer's headers. */
#define GC_LINK_MAX_HEADER 8192
/* Buffers per transport write. */
#define GC_LINK_IOV 16

struct gc_link_transport {
  const char *name;
  /* Starts resolving and connecting l->host:l->port: 0 (it ends with
   * gc__link_connected or gc__link_fail), or an errno. */
  int (*connect)(struct gc_link *l);
  /* Writes 'n' buffers in the background (they stay valid until it ends
   * with gc__link_write_done): 0 or a negative libuv error. */
  int (*write)(struct gc_link *l, const uv_buf_t *iov, size_t n);
  /* Closes; gc__link_closed follows from a later loop turn. */
  void (*close)(struct gc_link *l);
  /* Optional, for a transport over the TCP one (TLS): the socket is
   * connected and read (NULL: gc__link_connected), and what a read gave
   * (libuv's 'n': bytes, UV_EOF or an error; NULL: gc__link_input). */
  void (*opened)(struct gc_link *l);
  void (*read)(struct gc_link *l, ssize_t n, const uint8_t *data);
};

extern const struct gc_link_transport gc_link_tcp;
extern const struct gc_link_transport gc_link_tls;
extern const struct gc_link_transport gc_link_mem;

enum gc_link_state {
  GC_LINK_RESOLVING,
  GC_LINK_CONNECTING,
  GC_LINK_UPGRADING, /* request sent, reading the 101 */
  GC_LINK_OPEN,
  GC_LINK_CLOSING, /* close frame queued or received: no more sends */
  GC_LINK_DEAD      /* transport closing */
};

struct gc_link_msg {
  struct gc_link_msg *next;
  intptr_t cookie;
  size_t len;   /* payload bytes (what on_client_message_sent reports) */
  size_t size;  /* bytes of 'bytes' */
  int internal; /* host bytes: the upgrade request, control frames */
  int status;   /* reported when it never went out: 0 means ECANCELED */
  uint8_t bytes[];
};

struct gc_link {
  struct gc_loop *loop;
  const struct gc_link_transport *tp;
  union {
    uv_handle_t handle;
    uv_tcp_t tcp;
    uv_idle_t idle; /* the in-memory transport's deferred steps */
  } io;
  uv_getaddrinfo_t gai;
  uv_connect_t creq;
  uv_write_t wreq;
  intptr_t handle;
  intptr_t user;
  int adapter;
  struct client_events ev;
  enum gc_link_state state;
  unsigned io_ready : 1;    /* io handle initialised: closing it is owed */
  unsigned resolving : 1;   /* uv_getaddrinfo in flight */
  unsigned connected : 1;   /* on_client_connect was called */
  unsigned writing : 1;     /* a transport write in flight */
  unsigned in_recv : 1;     /* inside wslay_event_recv */
  unsigned torn : 1;        /* gc__link_teardown ran */
  char *host;
  int port;
  char *target; /* "/app[?query]" */
  char reason[128]; /* why the attempt failed or the link ended */
  char key[25];     /* Sec-WebSocket-Key */
  uint8_t *hbuf;    /* the upgrade answer so far */
  size_t hlen;
  wslay_event_context_ptr ws;
  const uint8_t *in; /* bytes being fed to wslay */
  size_t in_len;
  struct gc_link_msg *head, *tail;
  size_t queued; /* bytes in the queue */
  size_t head_off;
  size_t inflight; /* bytes of the write in progress */
  uv_buf_t iov[GC_LINK_IOV];
  intptr_t timer_id;    /* s2sSetTimer */
  intptr_t deadline_id; /* connect, or close drain bound */
  uint64_t rng;
  /* The in-memory transport. */
  struct gc_conn *peer;
  uint8_t *mem_in;
  size_t mem_in_len;
  const uv_buf_t *mem_iov; /* the write waiting for the idle turn */
  size_t mem_iov_n;
  unsigned peer_gone : 1, mem_eof : 1, mem_refused : 1;
  /* The TLS transport's state (link_tls.c; owned, NULL on the others). */
  struct gc_link_tls *tls;
};

/* link.c */
/* Starts a link on 'loop' (the caller's): 0, or EINVAL (bad arguments),
 * ENOTSUP (wss on a server without a client SSL_CTX), ENOMEM, ESHUTDOWN
 * (the loop is stopping). */
int gc__link_create(struct gc_loop *loop, int adapter, intptr_t user, int proto,
                    const char *host, int port, const char *app,
                    const struct client_events *ev);
/* On the link's loop: s2sDestroy (NORMAL), s2sAddMessage, s2sSetTimer. */
int gc__link_destroy(struct gc_loop *loop, intptr_t h);
int gc__link_send(struct gc_loop *loop, intptr_t h, const void *data,
                  size_t len, intptr_t cookie);
int gc__link_set_timer(struct gc_loop *loop, intptr_t h, int ms);
/* The shutdown: every link of the loop closes ('reason' NORMAL or DROP). */
void gc__links_close_all(struct gc_loop *loop, int reason);
void gc__links_init(struct gc_loop *loop);
/* After the loop's handles closed: frees what is left (nothing normally). */
void gc__links_free(struct gc_loop *loop);
/* Ends the link now (idempotent); 'why' is kept for the final event. */
void gc__link_fail(struct gc_link *l, const char *why);
void gc__link_teardown(struct gc_link *l);
/* Transport events. */
void gc__link_connected(struct gc_link *l);
void gc__link_input(struct gc_link *l, const uint8_t *data, size_t len);
void gc__link_eof(struct gc_link *l);
void gc__link_write_done(struct gc_link *l, int status);
void gc__link_closed(struct gc_link *l);
/* Writes what is queued, unless a write is in flight. */
void gc__link_flush(struct gc_link *l);

/* link_api.c: the core_api members (server.h), from any thread. */
int gc__s2s_create(int adapter, intptr_t user, int proto, const char *host,
                   int port, const char *app, struct client_events *ev);
int gc__s2s_destroy(intptr_t h);
void gc__s2s_add_message(intptr_t h, const void *data, size_t len,
                         intptr_t cookie);
int gc__s2s_set_timer(intptr_t h, int ms);
struct gc_mail;
/* GC_MAIL_LINK on the link's loop. */
void gc__link_mail(struct gc_loop *loop, struct gc_mail *m);

/* link_tcp.c: the socket, for the TLS transport on top of it. */
int gc__link_tcp_connect(struct gc_link *l);
void gc__link_tcp_close(struct gc_link *l);

/* link_tls.c: frees l->tls (link_free). */
void gc__link_tls_free(struct gc_link *l);

/* link_ws.c: the WebSocket client side. */
/* Queues the upgrade request (makes the key). 0 or ENOMEM. */
int gc__link_ws_request(struct gc_link *l);
/* The upgrade answer: 0 and '*used' once complete and valid (the link is
 * OPEN), EAGAIN for more bytes, else EPROTO with l->reason set. */
int gc__link_ws_answer(struct gc_link *l, const uint8_t *data, size_t len,
                       size_t *used);
/* Frames from the server, once OPEN: 0 or an error (the link must end). */
int gc__link_ws_recv(struct gc_link *l, const uint8_t *data, size_t len);
/* Queues one masked binary frame (app message). 0 or ENOMEM. */
int gc__link_ws_frame(struct gc_link *l, const void *data, size_t len,
                      intptr_t cookie);
/* Queues our close frame (1000). */
void gc__link_ws_close(struct gc_link *l);
/* Whether wslay saw the peer's close frame; whether ours went out too. */
int gc__link_ws_close_received(const struct gc_link *l);
int gc__link_ws_close_done(const struct gc_link *l);
void gc__link_ws_free(struct gc_link *l);
/* Queues host bytes. 0 or ENOMEM. */
int gc__link_queue_raw(struct gc_link *l, const void *data, size_t len);
/* Empties the queue, reporting each app message (status or ECANCELED). */
void gc__link_queue_clear(struct gc_link *l);

#endif
