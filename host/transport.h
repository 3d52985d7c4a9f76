/* transport.h - how a connection's bytes come and go.
 *
 * The connection code (conn*.c) moves bytes only through its connection's
 * transport: TCP (transport_tcp.c) in gcs, the in-memory peer of
 * gc.testing (transport_mem.c) under busted, TLS (transport_tls.c) for
 * wss. Input
 * arrives through gc__conn_input; a write the transport could not finish
 * at once ends with gc__conn_write_done. */
#ifndef GC_TRANSPORT_H
#define GC_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct gc_conn;
struct gc_adopt;

struct gc_transport {
  const char *name;
  /* Input flows (0), or a libuv error: the caller tears down. */
  int (*read_start)(struct gc_conn *c);
  void (*read_stop)(struct gc_conn *c);
  /* Writes what the peer takes now from 'iov': the bytes taken (0: none
   * now), or a negative libuv error. */
  int (*try_write)(struct gc_conn *c, const uv_buf_t *iov, size_t n);
  /* Starts a background write of 'iov' ('total' bytes): 0 (it ends with
   * gc__conn_write_done), or a negative libuv error. */
  int (*write)(struct gc_conn *c, const uv_buf_t *iov, size_t n, size_t total);
  /* The local address the client reached. */
  void (*local_addr)(struct gc_conn *c, char *ip, size_t iplen, int *port);
  /* The connection is gone (after on_disconnect, if any): the peer hears
   * it. NULL: nothing to tell. */
  void (*closed)(struct gc_conn *c);
  /* Moves the peer into 'a' for another loop (the connection here then
   * ends unseen): 0 or an errno. */
  int (*hand_over)(struct gc_conn *c, struct gc_adopt *a);
  /* Takes the peer 'a' carries into the new connection 'c': 0 or an errno
   * (then 'a' still holds it and is freed by the caller). */
  int (*adopt)(struct gc_conn *c, struct gc_adopt *a);
  /* Writes go through try_write again and again while the peer takes
   * everything (an in-memory peer): no background write is needed. */
  unsigned drain_inline : 1;
  /* What the socket read (transport_tcp.c's reader): NULL, gc__conn_input;
   * TLS decrypts first. */
  void (*input)(struct gc_conn *c, const uint8_t *data, size_t len);
  /* gc__conn_teardown is about to close the socket: a last word (TLS's
   * close_notify). NULL: none. */
  void (*ending)(struct gc_conn *c);
};

extern const struct gc_transport gc_transport_tcp;
extern const struct gc_transport gc_transport_mem;
extern const struct gc_transport gc_transport_tls;

/* transport_tcp.c's socket side, which TLS shares. */
int gc__tcp_read_start(struct gc_conn *c);
/* Reading again after a ring receive ended (uring_recv.c): through the
 * ring or libuv, as c may; tears c down when neither starts. */
void gc__tcp_read_resume(struct gc_conn *c);
void gc__tcp_read_stop(struct gc_conn *c);
void gc__tcp_local_addr(struct gc_conn *c, char *ip, size_t iplen, int *port);
int gc__tcp_hand_over(struct gc_conn *c, struct gc_adopt *a);
int gc__tcp_adopt(struct gc_conn *c, struct gc_adopt *a);

/* conn.c: a background write ended ('written' bytes of the queue left;
 * status < 0: it failed). */
void gc__conn_write_done(struct gc_conn *c, int status, size_t written);

#endif
