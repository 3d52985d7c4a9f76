/* internal.h - host types shared by host/ files; nothing here is public.
 *
 * The supervisor ('struct gc_server') owns the config, the adapters and
 * the applications' lifecycle; the worker loops ('struct gc_loop', one
 * per thread) own connections, timers and listeners. A loop's state is
 * touched by its own thread only: other threads reach it through its
 * mailbox (mailbox.c). What loops share is read-only after start-up (the
 * config, the adapters, the applications) or atomic (counters, the
 * connection total, shared payloads). */
#ifndef GC_INTERNAL_H
#define GC_INTERNAL_H

#include <game-carrier/server.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <uv.h>
#include <wslay/wslay.h>

#include "config.h"
#include "counters.h"
#include "embed.h"
#include "handle_table.h"
#include "http_upgrade.h"
#include "log.h"
#include "conn_limits.h"
#include "send_queue.h"
#include "text.h"
#include "timers.h"
#include "ws_pool.h"

#define GC_WUR __attribute__((warn_unused_result))

struct gc_adapter {
  int id;
  char *path;
  void *dl;
  const struct gc_adapter_conf *conf;
  int initialized;
  gc_adapter_initialize_fn adapter_initialize;
  gc_adapter_finalize_fn adapter_finalize;
  gc_adapter_reload_fn adapter_reload;
  gc_application_initialize_fn application_initialize;
  gc_application_event_fn application_start, application_stop,
      application_shutdown;
  gc_on_connect_fn on_connect;
  gc_on_disconnect_fn on_disconnect;
  gc_on_message_fn on_message;
  gc_on_message_sent_fn on_message_sent;
  gc_on_timer_fn on_timer;
  gc_on_issue_fn on_issue;
  gc_on_channel_message_fn on_channel_message; /* API 1.3, optional */
};

struct gc_app {
  int id;
  const struct gc_app_conf *conf;
  struct gc_adapter *adapter;
  int initialized, started;
  struct gc_limits limits; /* defaults of its connections */
  /* The worker of every connection (a Lua app without a route: one
   * state), or -1: where accepted (native) or by route key. */
  int home;
};

struct gc_loop;

struct gc_server {
  struct gc_config *cfg; /* owned */
  struct gc_loop **loops; /* the workers, indexed by id (not owned) */
  size_t loop_count;
  int threaded; /* every loop on a thread of its own (gcs); 0: gc.testing */
  _Atomic int64_t open_total; /* accepted connections, every loop */
  _Atomic int64_t conn_total; /* connections alive, handshakes included */
  _Atomic int stopping;       /* the shutdown began */
  _Atomic int draining;       /* SIGTERM with drain_s: /health says 503 */
  _Atomic int forced;         /* it dropped connections (GC_EXIT_FORCED) */
  size_t loops_drained;       /* loop 0's: loops that reported drained */
  /* logging.conn_lines_per_second is one bound for the whole server. */
  pthread_mutex_t conn_log_lock;
  int conn_log_ready;
  struct gc_log_limit conn_log;
  _Atomic unsigned drop_mark; /* signals received at the second stop */
  _Atomic int drops_pending;  /* loops yet to run that stop's drop */
  struct gc_adapter *adapters;
  size_t adapter_count;
  struct gc_app *apps; /* indexed by app id */
  size_t app_count;
  _Atomic int phase; /* enum gc_phase; read by every thread */
  char *lua_adapter_path;
  struct gc_counters counters;
  int counters_ready;
  /* The config's "redis" (redis.c), loop 0's; NULL without one, and under
   * gc.testing. Set before the workers start, freed after they ended. */
  struct gc_redis *redis;
  /* wss (tls.h): the SSL_CTX of each key prefix; NULL without wss. */
  struct gc_tls *tls;
  /* https of httpRequest (http_tls.c): the one client SSL_CTX, made at
   * start-up or by the first https request, freed with the loops. */
  struct ssl_ctx_st *http_tls;
  /* wss links (link_tls.c): the client context made at start from the
   * config's "s2s" (tls_client.c); NULL under gc.testing. */
  struct ssl_ctx_st *s2s_ctx;
  _Atomic int s2s_store_pending; /* the system's store not loaded yet */
  int links_refused; /* gc.testing: in-memory links fail (refuse_links) */
};

enum gc_phase {
  GC_PHASE_LOAD,       /* adapter_initialize */
  GC_PHASE_APP_INIT,   /* application_initialize: counters may be created */
  GC_PHASE_RUNNING,
  GC_PHASE_STOPPING,
  GC_PHASE_SHUTDOWN
};

struct gc_listener {
  uv_tcp_t tcp;
  struct gc_loop *loop;
  struct gc_app **apps; /* served on this address; >1 = chosen by path */
  size_t app_count;
  char ip[64];
  int port;      /* bound (the kernel's choice for a vhost port 0) */
  int conf_port; /* as configured */
  int protocol;  /* GC_PROTOCOL_WS, or GC_PROTOCOL_WSS (on_connect's pid) */
  struct gc_tls_keys *tls; /* wss on real sockets: its keys (tls.h) */
};

enum gc_conn_state {
  GC_CONN_HANDSHAKE, /* reading the HTTP upgrade; no adapter event yet */
  GC_CONN_OPEN,
  GC_CONN_DRAINING,  /* NORMAL close: delivering the queue, not reading */
  GC_CONN_CLOSING,   /* close frame exchange; the app can no longer send */
  GC_CONN_DEAD       /* uv_close issued; on_disconnect comes in close_cb */
};

struct gc_conn {
  uv_tcp_t tcp; /* never opened for gc.testing's in-memory clients */
  struct gc_loop *loop;
  struct gc_listener *listener;
  struct gc_app *app;
  intptr_t handle; /* 0 until the upgrade is accepted */
  intptr_t user;   /* what on_connect returned */
  enum gc_conn_state state;
  unsigned accepted : 1;        /* on_connect accepted: on_disconnect owed */
  unsigned write_in_flight : 1;
  unsigned close_after_flush : 1; /* HTTP error answers */
  unsigned peer_eof : 1;
  unsigned reading : 1;
  unsigned close_logged : 1;      /* ws_fail logged why the input failed */
  unsigned close_log_pending : 1; /* wslay refused input: log its close code */
  unsigned counted : 1; /* in server->open_total (max_connections) */
  unsigned in_connect : 1; /* inside its on_connect: connectionRefuse works */
  unsigned close_by : 2;   /* who began its end, for /metrics (metrics.h) */
  uint16_t close_code;   /* of its NORMAL close (connectionCloseEx); 0: 1000 */
  uint16_t refuse_status; /* connectionRefuse's HTTP status, or 0: 403 */
  uint16_t closed_code;   /* the close code of that end (metrics.h) */
  char *close_text;  /* that close frame's reason (owned), or NULL */
  char *refuse_text; /* connectionRefuse's body line (owned), or NULL */
  struct gc_http_req *req; /* during the handshake only */
  struct gc_ws *ws; /* borrowed from loop->ws_pool while needed, else NULL */
  struct gc_send_queue q;
  size_t in_flight; /* bytes of the uv_write in progress */
  uv_write_t *wreq;   /* a background write's request (transport_tcp.c), else NULL */
  intptr_t timer_id;    /* connectionSetTimer */
  intptr_t deadline_id; /* bound of a close in progress */
  const uint8_t *in;    /* bytes being fed to wslay */
  size_t in_len;
  struct gc_conn *dirty_prev, *dirty_next;
  unsigned dirty : 2; /* 0 no, 1 on loop->dirty, 2 in a flush batch */
  char rip[46];
  int rport;
  /* Statistics (conn_limits.h): a one-second window of inbound traffic. */
  struct gc_limits *limits; /* own copy after connectionSetLimit, else NULL */
  int64_t win_start;
  uint64_t win_msgs, win_bytes;
  uint8_t issued;      /* stats reported by on_issue in this episode */
  uint8_t pings_sent;  /* keep-alive pings without any input since */
  int64_t last_input;
  /* Bounds on what a peer makes us hold (conn.c's sweep and budget). */
  uint64_t in_held;   /* wslay's memory for the message in progress */
  int64_t in_since;   /* input mid-frame or mid-message since, or 0 */
  /* conn_fast.c: a frame for the fast lane cut by the end of a read, its
   * bytes so far in a block of its whole size (counted in loop->buffered). */
  uint8_t *stash;      /* its header as sent, its payload unmasked */
  uint32_t stash_len, stash_size;
  uint8_t stash_hdr;   /* the header's size */
  int64_t out_since;  /* output queue non-empty since, or 0 */
  unsigned read_paused : 1; /* read its share this turn: on loop->resume */
  struct gc_conn *resume_next;
  uint32_t read_max;   /* bytes of the next read (0: 64 KiB): the per-turn share */
  uint32_t read_frames; /* frames handled in the current read */
  /* uring_recv.h: its receive in the loop's ring (GC_RX_*); brought more
   * than a pass's share, so reads with libuv until its socket is empty. */
  unsigned rx : 2;
  unsigned rx_bulk : 1;
  unsigned rx_calm : 4; /* reads with libuv in a row that emptied its socket */
  uint32_t rx_pass, rx_bytes; /* bytes it brought in pass rx_pass */
  const struct gc_transport *tp; /* how its bytes move (transport.h) */
  /* The in-memory transport's peer (gc.testing), else NULL. */
  const struct gc_mem_ops *mem;
  void *mem_ud;
  uint8_t *mem_pending; /* input that arrived while not reading */
  size_t mem_pending_len;
  struct gc_tls_conn *tls; /* the TLS transport's state, else NULL */
};

struct gc_mail;
struct gc_transport;
struct gc_admin;
#define GC_LAG_BUCKETS 10
#define GC_REFUSED_STATUSES 200

/* Work for a loop from other threads: a FIFO under a mutex (producers hold
 * it for a pointer append; the owner takes the whole list at once) and an
 * async handle that wakes the loop. */
struct gc_mailbox {
  /* Padded off the loop's other fields (which its owner reads on every
   * event) to their own cache lines: other threads write the lock and the
   * list. Padding, not _Alignas: loops come from malloc. */
  char pad_before[64];
  pthread_mutex_t lock;
  struct gc_mail *head, *tail;
  uv_async_t async;
  int async_ready;
  int closed; /* the loop ended: posts fail with ESHUTDOWN */
  char pad_after[64];
};

struct gc_loop {
  uv_loop_t uv;
  int uv_ready; /* uv_loop_init done, uv_loop_close not yet */
  struct gc_server *server;
  int id; /* the worker's index in server->loops */
  struct gc_mailbox mbox;
  int mbox_ready;
  uv_thread_t thread;
  int thread_started;
  _Atomic int running; /* its thread is inside uv_run (WorkerEnter) */
  int drained; /* stopping with no connection left: reported to loop 0 */
  struct gc_counter_shard ctr; /* this loop's share of the built-in counters */
  struct gc_app_shard *app_ctr; /* the same per app ([app_count]), and more */
  /* /metrics (metrics.c): written by this loop, read by loop 0. */
  struct {
    _Atomic uint64_t bucket[GC_LAG_BUCKETS];
    _Atomic uint64_t count, sum_ms;
  } lag;
  int64_t lag_due; /* when the housekeeping tick is due */
  _Atomic uint64_t refused[GC_REFUSED_STATUSES]; /* HTTP 400..599 answered */
  _Atomic uint64_t sends[2]; /* output sends to sockets: [0] write(), [1] io_uring */
  struct gc_admin *admin; /* loop 0's admin listener, else NULL */
  uv_timer_t drain_timer; /* loop 0's, SIGTERM with drain_s */
  struct gc_handle_table conns; /* accepted connections by handle */
  struct gc_handle_table links; /* outgoing links (link.h) by handle */
  size_t link_count;            /* links alive: the shutdown waits for them */
  size_t conn_count;            /* every gc_conn alive, handshakes included */
  size_t open_count;            /* accepted ones */
  struct gc_timers timers;
  uv_timer_t timer; /* fires the earliest of 'timers' */
  uv_prepare_t prepare;
  uv_check_t check;
  uv_signal_t sigint, sigterm, sighup, sigusr1; /* loop 0's */
  struct gc_watch *watch; /* gcs --watch (loop 0's), else NULL */
  struct gc_conn *dirty; /* connections with output or a pending step */
  struct gc_conn *resume; /* connections that read their share this turn */
  int64_t buffered;       /* output queued + partial input, every connection */
  _Atomic int64_t published; /* 'buffered' as other loops may read it */
  uint64_t buffer_budget; /* max_buffered_bytes resolved; 0 = no limit */
  int buffer_budget_set;
  char *rbuf;            /* one read buffer for every connection */
  uint8_t *ubuf;         /* conn_fast.c: a message unmasked, GC_FAST_MSG_MAX */
  struct gc_msg_pool msg_pool; /* its connections' spare message blocks */
  int in_fast;           /* conn_fast.c runs a handler: its ubuf is in use */
  struct gc_ws_pool ws_pool; /* spare wslay contexts */
  struct gc_uring *uring; /* the batched send (uring.c), made at first use */
  int uring_off;          /* none: turned off, refused, or not made yet */
  struct gc_urecv *urecv; /* open connections' reads (uring_recv.c), or NULL */
  int urecv_off;          /* none: not made yet, or not possible */
  _Atomic uint64_t reads[2]; /* socket reads with data: [0] read(), [1] io_uring */
  struct gc_listener **listeners;
  size_t listener_count;
  int stopping;
  int finished;
  struct gc_redis_cmd *redis_cmd; /* redisCommand's connection (redis_cmd.c) */
  int exit_code;
  int virtual_clock; /* gc.testing: time moves only by gc_host_advance */
  int64_t vnow;
  intptr_t housekeeping_id;
  unsigned housekeeping_ticks;
  int trim_pending; /* connections went away: give freed memory back */
  int64_t ka_timeout_ms, ka_interval_ms;
  int ka_retries;
  uint64_t fd_limit; /* soft RLIMIT_NOFILE at listen; 0 = none known */
  int fd_base;       /* descriptors in use at listen, roughly */
  uint32_t conn_log_per_second;   /* logging.conn_lines_per_second */
  /* httpRequest's state (http_client.c), made by the first request;
   * another thread's httpCancel reads the pointer. */
  struct gc_http_loop *_Atomic http;
};

/* Bumps built-in counter 'id' of a connection's loop and of its app on
 * that loop (the app's figures for /metrics), by the loop's thread. */
#define gc__stat(c, which, d)                                                  \
  do {                                                                         \
    gc_counters_bump(&(c)->loop->ctr, (which), (d));                           \
    if ((c)->app && (c)->loop->app_ctr)                                        \
      gc_counters_bump(&(c)->loop->app_ctr[(c)->app->id].c, (which), (d));     \
  } while (0)

/* The loop of the calling thread: the core_api entry points have no
 * context argument. NULL on a thread that is no worker's. */
extern _Thread_local struct gc_loop *gc__loop_current;
/* The supervisor of gcs, for threads that are no worker's (an adapter's
 * own): set once before the workers start. gc.testing leaves it NULL. */
extern struct gc_server *_Atomic gc__server_process;

/* gcs's exit statuses besides 0 (clean), 1 (start-up error), 2 (usage). */
#define GC_EXIT_FORCED 3 /* the shutdown dropped connections */
#define GC_EXIT_STUCK 4  /* a second signal the loop did not take: _exit */

#define GC_WORKERS_MAX 64

/* supervisor.c: the worker loops of a server (see its comment). */
/* Creates 'n' loops (ids 0..n-1); 'threaded': gc_server_run runs each on
 * a thread of its own, else the caller pumps them all (gc.testing). The
 * calling thread then acts as loop 0. On failure gc_server_loops_close
 * undoes what was made. */
int gc_server_loops_create(struct gc_server *s, size_t n, int threaded) GC_WUR;
/* gc_loop_listen on every loop. */
int gc_server_listen(struct gc_server *s, int bind_sockets, char *err,
                     size_t errlen) GC_WUR;
/* Sets each app's 'home' worker and each loop's per-app counters (in
 * gc_server_load, once the apps exist). 0 or ENOMEM. */
int gc__server_place_apps(struct gc_server *s) GC_WUR;
/* The worker a connection of 'app' to 'target' belongs on, or -1: stay
 * where it was accepted. */
int gc__app_worker(const struct gc_server *s, const struct gc_app *app,
                   const char *target);
/* Runs loop 0 on this thread (with the signals) and the others on threads
 * of their own, until the shutdown is over; joins them. The exit status
 * (0 or GC_EXIT_FORCED). */
int gc_server_run(struct gc_server *s);
/* The shutdown (a signal, gc.testing): application_stop, then every loop
 * closes its connections NORMAL. A second call drops them. Loop 0's
 * thread only. */
void gc_server_stop(struct gc_server *s);
/* Loop 0, GC_MAIL_DRAINED: one more loop has no connection left. */
void gc__server_loop_drained(struct gc_server *s);
int gc_server_finished(const struct gc_server *s);
/* After the loops ended: runs what is left in their mailboxes; posts fail
 * from then on. Before application_shutdown. */
void gc_server_loops_quiesce(struct gc_server *s);
/* Closes and frees every loop: 0 or the first uv_loop_close error. */
int gc_server_loops_close(struct gc_server *s);
/* WorkerEnter (server.h). */
int gc__worker_enter(struct gc_server *s, int worker);

/* loop.c */
/* On failure nothing is left to undo; gc_loop_close is then harmless. */
int gc_loop_init(struct gc_loop *loop, struct gc_server *server, int id) GC_WUR;
/* Creates the listeners of the config's vhosts; 'bind_sockets' 0 makes
 * them virtual (gc.testing connects in memory). */
int gc_loop_listen(struct gc_loop *loop, int bind_sockets, char *err,
                   size_t errlen) GC_WUR;
/* admin.c: the admin listener on loop 0 (config "admin"; nothing when
 * absent). 0, or an errno with a line in 'err'. gc__admin_stop closes it
 * and its connections (gc_loop_close). */
int gc__admin_start(struct gc_loop *loop, char *err, size_t errlen) GC_WUR;
void gc__admin_stop(struct gc_loop *loop);
/* metrics.c */
void gc__metrics_render(struct gc_server *s, struct gc_text *t);
void gc__loop_lag_observe(struct gc_loop *loop, int64_t lag_ms);

/* redis.c: channelPublish between hosts through the config's "redis": one
 * publishing and one subscribing hiredis connection on loop 0. */
struct gc_redis;
/* Starts connecting (loop 0, gcs only, after the adapters are loaded):
 * 0 (Redis may still be down: it retries), ENOMEM with a line in 'err'.
 * Nothing without a "redis" in the config. */
int gc__redis_start(struct gc_loop *loop, char *err, size_t errlen) GC_WUR;
/* Disconnects for good, on loop 0's thread (idempotent): no adapter is
 * called after. The struct stays for late callers until gc__redis_free,
 * after the loop's handles closed. */
void gc__redis_stop(struct gc_server *s);
void gc__redis_free(struct gc_server *s);
/* channelPublish (server.h): from any thread. */
int gc__redis_publish(struct gc_server *s, int app_id, const char *channel,
                      const void *data, size_t len);
/* GC_MAIL_REDIS_PUB on loop 0. */
struct gc_mail;
void gc__redis_publish_mail(struct gc_loop *loop, struct gc_mail *m);
/* redisCommand (API 1.4, redis_cmd.c): one command connection per worker
 * loop, made at its first command. */
int gc__redis_command(struct gc_server *s, int argc, const char *const *argv,
                      const size_t *argvlen, GCRedisCallback cb,
                      intptr_t user);
/* Closes the loop's command connection, if any (before its handles are
 * walked): the commands in flight are answered ECANCELED. */
void gc__redis_cmd_stop(struct gc_loop *loop);

/* watch.c: gcs --watch on loop 0 (after the apps are loaded). 0 or an
 * errno; gc__watch_stop closes what was opened, either way. */
struct gc_watch;
int gc__watch_start(struct gc_loop *loop);
void gc__watch_stop(struct gc_loop *loop);

/* listen.c: the listeners of the config's vhosts on this loop (what
 * gc_loop_listen does besides the signals and the housekeeping timer). */
int gc__loop_listeners_open(struct gc_loop *loop, int bind_sockets, char *err,
                            size_t errlen) GC_WUR;
/* Serves until GC_MAIL_EXIT (threaded), or until nothing is left to do. */
int gc_loop_run(struct gc_loop *loop);
/* gc_loop_run for loop 0, which handles SIGINT/SIGTERM: the first stops
 * gracefully, the second drops the stragglers, and a second one the loop
 * does not take in time _exits. */
int gc_loop_run_signals(struct gc_loop *loop);
/* GC_MAIL_STOP and GC_MAIL_EXIT. */
void gc__loop_stop_local(struct gc_loop *loop);
void gc__loop_exit(struct gc_loop *loop);
/* A connection is dropped at its close deadline: during the shutdown that
 * is a forced one (exit status GC_EXIT_FORCED). Returns the level to log
 * it at: GCL_NOTICE during the shutdown, else GCL_INFO. */
int gc__loop_forced_drop(struct gc_loop *loop);
/* Closes what gc_loop_init opened; returns uv_loop_close's result. */
int gc_loop_close(struct gc_loop *loop);
int64_t gc_loop_now(const struct gc_loop *loop);
void gc__loop_mark_dirty(struct gc_loop *loop, struct gc_conn *c);
void gc__loop_unmark_dirty(struct gc_loop *loop, struct gc_conn *c);
/* Writes every connection dirty now (once per loop phase). */
void gc__loop_flush(struct gc_loop *loop);
void gc__loop_conn_gone(struct gc_loop *loop);
/* Asks the loop's rate limit for one line about connections (or accepting
 * them) at 'level': 1 to write it, 0 when masked or over the limit (then
 * counted, and reported once a second). */
int gc__loop_conn_log_take(struct gc_loop *loop, int level);
/* Reports the lines the limit dropped in the second that ended, if any. */
void gc__loop_conn_log_roll(struct gc_loop *loop);

/* signal_guard.c: a handler in front of libuv's for SIGINT/SIGTERM and a
 * watcher thread, so that a second signal ends a loop stuck in native code
 * (gcs only; gc.testing's embedding keeps its own dispositions). */
/* After uv_signal_start, which installs libuv's handlers. 0 or an errno;
 * on failure nothing changed (gcs runs without the guard). */
int gc__signal_guard_start(void);
/* Gives libuv its handlers back (before its uv_signal handles close). */
void gc__signal_guard_stop(void);
/* Signals received so far; the loops took those up to 'received' (a
 * second signal counts as taken once every loop ran its drop). */
unsigned gc__signal_guard_received(void);
void gc__signal_guard_take(unsigned received);

/* conn.c: a connection's life, its frames, writing; conn_socket.c:
 * accepting and reading */
void gc__conn_accept(struct gc_listener *l);
/* Takes a client off the listener's backlog and closes it unserved (else
 * libuv reports it again at once and accept spins). */
void gc__conn_refuse_pending(struct gc_listener *l);
/* A new connection in HANDSHAKE state on the TCP transport, its tcp handle
 * initialised (not opened); NULL when out of memory. */
struct gc_conn *gc__conn_new(struct gc_listener *l);
/* transport_mem.c: gc.testing's clients. */
struct gc_conn *gc__conn_accept_mem(struct gc_listener *l, const char *rip,
                                    int rport, const struct gc_mem_ops *ops,
                                    void *ud);
void gc__conn_mem_input(struct gc_conn *c, const uint8_t *data, size_t len);
void gc__conn_mem_eof(struct gc_conn *c);
/* The peer takes bytes again: what waited is written. */
void gc__conn_mem_resume(struct gc_conn *c);
/* Writes what is queued: once per loop turn for every dirty connection,
 * and again when a write completes. */
void gc__conn_flush(struct gc_conn *c);
/* Lets the connections that read their share last turn read again. */
void gc__conn_resume_reads(struct gc_loop *loop);
/* One line about 'c', "connection IP:PORT: ...", through the loop's rate
 * limit (formatted only when it passes). */
void gc__conn_log(struct gc_conn *c, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Ends the connection now. Idempotent; on_disconnect follows from the
 * close callback. */
void gc__conn_teardown(struct gc_conn *c);
void gc__conn_stop_timers(struct gc_conn *c);
/* Bounds a close in progress by close_drain_ms. */
void gc__conn_arm_deadline(struct gc_conn *c);
/* Bounds what the peer makes us wait for (the handshake, a close): 'ms' 0
 * is no bound. */
void gc__conn_arm_deadline_ms(struct gc_conn *c, uint64_t ms);
/* The close callback of every connection: on_disconnect, then freed. */
void gc__conn_on_close(uv_handle_t *h);
void gc__conn_read_start(struct gc_conn *c);
void gc__conn_read_stop(struct gc_conn *c);
/* Borrows a wslay context unless the connection holds one: 0 or ENOMEM. */
int gc__conn_ws_bind(struct gc_conn *c);
/* Gives the bound context the connection's RED max_msg_size. */
void gc__conn_ws_max_msg(struct gc_conn *c);
/* Bytes that arrived from the peer, in any state. */
void gc__conn_input(struct gc_conn *c, const uint8_t *data, size_t len);
/* Gives the wslay context back when the connection is between frames with
 * nothing for wslay to send. */
void gc__conn_ws_park(struct gc_conn *c);
/* conn_output.c: what comes next once the queue is empty (write, close
 * frame, teardown, or wait for the peer's close). */
void gc__conn_step(struct gc_conn *c);
/* A complete data message for the adapter (text already checked). */
void gc__conn_deliver(struct gc_conn *c, const uint8_t *msg, size_t len);
/* conn_fast.c: the largest payload the fast lane takes (the size of the
 * loop's scratch buffer, and of the read buffer). */
#define GC_FAST_MSG_MAX 65536
/* Takes the complete, unfragmented, masked data frames at the start of
 * 'data' (an OPEN connection between frames), and stashes such a frame cut
 * by the end of 'data'; returns the bytes taken. */
size_t gc__conn_fast_input(struct gc_conn *c, const uint8_t *data, size_t len);
/* Adds what the next bytes bring to the stashed frame; returns the bytes
 * taken. Once the frame is whole, hands it over in '*frame' ('*size' bytes,
 * the caller frees it with gc_free) and the connection holds no stash. */
size_t gc__conn_stash_fill(struct gc_conn *c, const uint8_t *data, size_t len,
                           uint8_t **frame, size_t *size);
/* A whole stashed frame, of a header of 'hdr' bytes: delivered in place
 * (1), or masked again as it came for wslay (0) when the lane may no longer
 * take it (the connection not OPEN, the text not UTF-8, a lower limit). */
int gc__conn_stash_take(struct gc_conn *c, uint8_t *frame, size_t size,
                        size_t hdr);
/* Frees a stash (conn_free). */
void gc__conn_stash_drop(struct gc_conn *c);
/* The size of the complete frame at 'p' (header and payload), or 0 when
 * 'n' bytes do not hold all of it. */
size_t gc__ws_frame_size(const uint8_t *p, size_t n);
/* Uncounts a message of a refused connection (gc_send_queue_clear). */
void gc__conn_uncount_queued(void *ctx, const struct gc_msg *m);

/* conn_handshake.c */
/* Answers an HTTP error with a one-line body, then closes. */
void gc__conn_http_reject(struct gc_conn *c, int status, const char *body);
/* The upgrade request is complete; 'rest' is what followed it. */
void gc__conn_handshake_done(struct gc_conn *c, const uint8_t *rest,
                             size_t rest_len);

/* conn_bounds.c */
/* The connection's threshold of 'stat' at 'level' (0 = none). Inline: the
 * receive and send paths ask several per message. */
static inline uint64_t gc__conn_limit(const struct gc_conn *c, int level,
                                      int stat) {
  const struct gc_limits *l = c->limits ? c->limits : &c->app->limits;
  return l->v[level][stat];
}
/* Counts one inbound message; 1 when it must not be delivered. */
int gc__conn_count_input(struct gc_conn *c, size_t len);
/* YELLOW output queue, asked from the flush. */
void gc__conn_queue_check(struct gc_conn *c);
/* Room for one more message of 'len' bytes: 0, EMSGSIZE (nothing
 * changed) or ENOBUFS (the client was dropped). */
int gc__conn_queue_room(struct gc_conn *c, size_t len);
/* A message of 'len' bytes was queued. */
void gc__conn_queued(struct gc_conn *c, size_t len);
/* Drops the largest holders while the server-wide budget is exceeded,
 * with 'more' bytes about to be queued. */
void gc__conn_budget_enforce(struct gc_loop *loop, int64_t more);
/* Once a second: keep-alive pings and drops, input and output that stall
 * past their time bounds, the server-wide buffer budget. */
void gc__conn_sweep(struct gc_loop *loop);
int gc_conn_set_limit(struct gc_loop *loop, intptr_t h, int level, int stat,
                      int64_t value);

/* conn_socket.c: GC_MAIL_ADOPT, a connection handed over (takes 'a'). */
struct gc_adopt;
void gc__conn_adopt(struct gc_loop *loop, struct gc_adopt *a);
/* Hands a connection whose upgrade request was read here to 'worker':
 * 'rest' is what followed the request. The connection here ends unseen. */
void gc__conn_hand_over(struct gc_conn *c, int worker, const uint8_t *rest,
                        size_t rest_len);

/* conn_api.c */
/* The connection behind a handle, or NULL for a stale one. */
struct gc_conn *gc__conn_get(struct gc_loop *loop, intptr_t h);
/* 'flags' is a GC_MESSAGE_* of server.h: DEFAULT is the app's type. */
int gc_conn_send(struct gc_loop *loop, intptr_t h, const void *data, size_t len,
                 intptr_t cookie, int flags);
int gc_conn_close(struct gc_loop *loop, intptr_t h, int reason);
/* connectionCloseEx: 'code' 0 is 1000, 'text' NULL is none. */
int gc_conn_close_ex(struct gc_loop *loop, intptr_t h, int reason, int code,
                     const char *text);
/* connectionRefuse, on the connection's own loop. */
int gc_conn_refuse(struct gc_loop *loop, intptr_t h, int status,
                   const char *text);
/* The checks of those calls that need no connection, so a call handed to
 * another loop is refused before it leaves: 0 or EINVAL (EILSEQ for a
 * text message that is not UTF-8). */
int gc__msg_flags_check(int flags);
int gc__msg_text_check(int flags, const void *data, size_t len);
int gc__close_args_check(int reason, int code, const char *text);
/* Whether some application sends text by default ("message_type"). */
int gc__server_any_text(const struct gc_server *s);
int gc_conn_broadcast(struct gc_loop *loop, const intptr_t *handles, size_t count,
                      const void *data, size_t len, intptr_t cookie, int flags,
                      size_t *queued);
int gc_conn_set_timer(struct gc_loop *loop, intptr_t h, int ms);
void gc__conn_close_all(struct gc_loop *loop, int reason);
/* Queues the shared payload 'sh' to the connections of this loop among
 * 'handles' (the caller keeps its reference). */
int gc__conn_broadcast_shared(struct gc_loop *loop, const intptr_t *handles,
                              size_t count, struct gc_shared *sh,
                              intptr_t cookie, int flags, size_t *queued);

/* adapter_loader.c */
int gc_server_load(struct gc_server *s, char *err, size_t errlen) GC_WUR;
void gc_server_start_apps(struct gc_server *s);
void gc_server_stop_apps(struct gc_server *s);
void gc_server_shutdown_apps(struct gc_server *s);
void gc_server_unload(struct gc_server *s);
/* SIGHUP, gcs --watch: adapter_reload of each loaded library that has
 * one (loop 0's thread). The number of libraries asked. */
int gc_server_reload(struct gc_server *s);
struct gc_app *gc_server_app_by_name(struct gc_server *s, const char *name);

/* core_api.c */
void gc__core_api_fill(struct core_api *api);
/* timerStop on the timer's own loop: 0 or EINVAL. */
int gc__app_timer_stop(struct gc_loop *loop, intptr_t id);

#endif
