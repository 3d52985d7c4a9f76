/* uring_recv.h - a loop's open connections read through io_uring.
 *
 * Each open plain-TCP connection has one multishot receive on the loop's
 * receive ring; the kernel reads what arrives into buffers it takes from a
 * ring of provided buffers, consumed incrementally, and the loop handles
 * every connection's input of a turn from one pass over the completions:
 * no read() per connection. A connection that brings more than its share
 * of a turn goes back to libuv's reads (transport_tcp.c), which bound it;
 * one whose libuv read leaves its socket empty comes back.
 *
 * A connection's receive is in one of three states: none, armed, or
 * cancelled and waiting for its last completion. Completions find their
 * connection by handle, so one that outlives it is dropped. */
#ifndef GC_URING_RECV_H
#define GC_URING_RECV_H

struct gc_conn;
struct gc_loop;

enum { GC_RX_NONE, GC_RX_ARMED, GC_RX_CANCELLED };

/* The loop reads open connections through its ring: made at the first
 * call; 0 when the config turned io_uring off, the kernel refused it, or
 * it lacks incrementally consumed buffers (Linux 6.12). */
int gc__urecv_usable(struct gc_loop *loop);
/* c's socket (libuv no longer reading it) gets its receive: 0, or an
 * errno (c then reads with libuv). */
int gc__urecv_arm(struct gc_conn *c);
/* c stops reading: its receive is cancelled. What it had read by then
 * still comes to an open connection (gc__conn_input); one that is ending
 * drops it. */
void gc__urecv_stop(struct gc_conn *c);
/* The arms and cancels asked since the last submission go to the kernel. */
void gc__urecv_submit(struct gc_loop *loop);
void gc__urecv_free(struct gc_loop *loop);

#endif
