/* uring.h - a loop's batched send: one io_uring_enter a turn carries the
 * output of every connection that has some, instead of a write() each.
 *
 * The sends are non-blocking (MSG_DONTWAIT): each one completes inside the
 * submission with what the socket took, as uv_try_write would, so no
 * buffer is held past gc__uring_run and a connection's leftover goes to
 * its usual background write. Nothing calls an adapter between
 * gc__uring_send and the completions, which are handed out only once every
 * send of the batch has completed. */
#ifndef GC_URING_H
#define GC_URING_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

struct gc_loop;
struct gc_conn;
struct gc_uring;

/* The loop's ring, made at the first call: NULL when the config turned it
 * off ("io_uring": false) or the kernel refused it (logged once). */
struct gc_uring *gc__uring_get(struct gc_loop *loop);
void gc__uring_free(struct gc_loop *loop);

/* The most a caller gathers into one reserved buffer. */
#define GC_URING_GATHER_MAX 16384u

/* Room for a send of 'len' bytes gathered by the caller: NULL when the
 * batch is full (gc__uring_run, then ask again) or 'len' is too large. */
uint8_t *gc__uring_reserve(struct gc_uring *u, size_t len);
/* The batch has room for one more send (of a buffer that is not
 * reserved). */
int gc__uring_has_room(const struct gc_uring *u);
/* The batch should run before more is added: a full batch takes no
 * send, and the arena may lack room for a gathered one. */
int gc__uring_full(const struct gc_uring *u);
/* Adds the send of 'len' bytes at 'data' to c's socket 'fd'. 'data' stays
 * as it is until gc__uring_run. Needs gc__uring_has_room. */
void gc__uring_send(struct gc_uring *u, struct gc_conn *c, int fd,
                    const void *data, size_t len);
/* The same for a vector of 'n' buffers (copied: only the buffers must
 * stay): 0, or ENOSPC when the batch is full. */
int gc__uring_sendv(struct gc_uring *u, struct gc_conn *c, int fd,
                    const uv_buf_t *iov, size_t n);
/* Submits the batch and, once every send completed, hands each result to
 * gc__conn_sent. */
void gc__uring_run(struct gc_loop *loop);

/* conn_output.c: a batched send of c's output ended: 'w' bytes written, or
 * a negative libuv error. */
void gc__conn_sent(struct gc_conn *c, int w);
/* conn_output.c: offers c's output to the batch; 1: taken (gc__conn_sent
 * follows), 0: flush it with gc__conn_flush. Calls no adapter. */
int gc__conn_flush_offer(struct gc_conn *c, struct gc_uring *u);

#endif
