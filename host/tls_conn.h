/* tls_conn.h - the TLS transport's per-connection state, shared by
 * transport_tls.c (handshake, reading, the end, hand-over) and tls_write.c
 * (its BIO and the corked, batched encryption). Private to those two. */
#ifndef GC_TLS_CONN_H
#define GC_TLS_CONN_H

#include <stddef.h>
#include <stdint.h>
#include <openssl/ssl.h>
#include <uv.h>

struct gc_conn;

/* Plaintext encrypted per flush at most: bounds the ciphertext a
 * connection holds while the kernel does not take it. */
#define GC_TLS_BATCH (256u << 10)
/* The largest TLS record's plaintext. */
#define GC_TLS_RECORD 16384

struct gc_tls_buf {
  uint8_t *p;
  size_t len, off, cap;
};

struct gc_tls_conn {
  SSL *ssl;
  struct gc_conn *c;
  const uint8_t *in; /* ciphertext being read, not owned */
  size_t in_len;
  uint8_t *pending; /* ciphertext a hand-over carried (owned) */
  size_t pending_len;
  struct gc_tls_buf stage; /* ciphertext not yet written (owned) */
  uint8_t *fly; /* the buffer of the uv_write in flight (owned) */
  uv_write_t wreq;
  size_t enc_ahead; /* bytes of the queue's head encrypted in stage/fly */
  unsigned flying : 1;       /* 'wreq' in progress */
  unsigned conn_waiting : 1; /* the connection's write ends with it */
  unsigned wait_hs : 1;      /* a write waits for the handshake */
  unsigned got_notify : 1;   /* the peer's close_notify came */
  unsigned tcp_reading : 1;  /* the socket is read (see tls_read_stop) */
};

/* tls_write.c */
/* The BIO through which OpenSSL reads 'in' and writes 'stage' (made once);
 * NULL when out of memory. */
BIO_METHOD *gc__tls_bio_method(void);
/* Writes what 'stage' holds as far as the kernel takes it now, then frees
 * it once empty: 0 or a negative libuv error. */
int gc__tls_stage_push(struct gc_conn *c, struct gc_tls_conn *t);
/* OpenSSL's own output (handshake, alerts, close_notify): written now, the
 * rest in the background unless a write is in flight already. */
void gc__tls_flush(struct gc_conn *c, struct gc_tls_conn *t);
/* The transport's try_write and write (transport.h). */
int gc__tls_try_write(struct gc_conn *c, const uv_buf_t *iov, size_t n);
int gc__tls_write(struct gc_conn *c, const uv_buf_t *iov, size_t n, size_t total);

#endif
