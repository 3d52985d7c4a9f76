/* loadgen.h - what the files of the load generator share (bench/loadgen*.c;
 * its usage is at the top of loadgen.c): the options, the connections, the
 * counters and the functions one file calls in another. One loop, one
 * thread: plain globals, each defined once, in the file named beside it. */
#ifndef GC_BENCH_LOADGEN_H
#define GC_BENCH_LOADGEN_H

#include <openssl/ssl.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

/* ---- options (loadgen.c) ------------------------------------------------- */

enum mode { M_ECHO, M_HANDSHAKE, M_IDLE, M_BROADCAST };

struct options {
  enum mode mode;
  int raw;
  const char *host;
  int port;
  const char *path;
  const char *label;
  int conns, window, size, receivers, concurrency;
  double duration, warmup, hold, setup_timeout;
  uint64_t messages;
  int text;
  int pid;
  int flood_conns, flood_size, flood_window;
  int rooms;
  int tls;
  int rx_libuv; /* no io_uring: every socket read and written with libuv */
};

extern struct options opt;

/* ---- connections --------------------------------------------------------- */

enum cstate { C_FREE, C_CONNECTING, C_HANDSHAKE, C_OPEN, C_CLOSING };

struct obuf {
  uint8_t *p;
  size_t len, cap;
};

struct conn {
  uv_tcp_t tcp;
  uv_connect_t creq;
  uv_write_t wreq;
  int id;
  enum cstate state;
  int is_sender; /* broadcast */
  int wbusy;     /* a uv_write is in flight on out[!cur] */
  int cur;       /* the buffer appends go to */
  struct obuf out[2];
  uint8_t *in; /* unconsumed input (partial frame or header) */
  size_t in_len, in_cap;
  uint64_t sent, recvd; /* messages */
  size_t raw_off;       /* raw: bytes of the current message received */
  /* ws echo: a data frame whose payload arrives over several reads is
   * compared piece by piece where it lies, not gathered in 'in' first */
  size_t ws_off, ws_rest; /* its bytes compared, and still to come */
  uint64_t t_start;     /* connect started (handshake latency) */
  char key[32];         /* Sec-WebSocket-Key */
  uint64_t *ts;         /* send time of message k at ts[k % window] */
  /* flood */
  int flood;            /* a flooder: writes without waiting, discards input */
  uv_write_t fwreq;     /* its write of copies of flood_buf */
  int fbusy;            /* fwreq in flight, of fcopies copies */
  int fcopies;
  uint8_t fhdr[14];     /* a frame header being read */
  int fhdr_len;
  uint64_t fskip;       /* payload bytes of the current frame still to skip */
  int read_paused;      /* a full read: reading again next loop turn */
  int rx;               /* a multishot recv is armed (2: to arm again) */
  int ring;             /* echo: writes go through the ring (IORING_OP_SEND) */
  int tx;               /* a ring send of out[!cur] is in flight */
  int dirty;            /* in tx_dirty: a send to start after this pass */
  int fd;               /* the socket, for the ring */
  size_t woff;          /* bytes of out[!cur] the ring sent so far */
  struct conn *resume_next;
  /* --tls */
  SSL *ssl;
  BIO *rb, *wb;         /* ciphertext in (from the socket) and out */
  struct obuf pre;      /* the upgrade request, until the handshake ends */
};

/* ---- state (loadgen.c) --------------------------------------------------- */

extern uv_loop_t *loop;
extern struct conn *conns;
extern int nconns;       /* slots */
extern int next_to_open; /* echo/idle/broadcast: next slot to connect */
extern int pending;      /* connects + handshakes under way */
extern int opened;       /* connections that reached OPEN */
extern int idle_ready;   /* idle: connections whose echo came back */
extern int stopping;     /* no new messages; closing down */
extern int measuring;    /* inside the measurement window */
extern uint64_t now_ns;  /* uv_hrtime() of the current callback */
extern uint8_t *pat;     /* the payload pattern (payload.h) */
extern uint64_t b_done;  /* broadcast: messages every receiver has */
extern int started;      /* traffic started */

/* ---- counters (loadgen_stats.c) ------------------------------------------ */

struct stats {
  uint64_t msgs, bytes; /* counted in the window */
  uint64_t total_msgs;  /* since the start */
  uint64_t total_sent;
  uint64_t errors, conn_errors, closed, mismatches;
  uint64_t handshakes;
  uint64_t t_meas_start, t_meas_end, t_start;
  long cpu_srv_start, cpu_srv_end;
  /* per thread of the server: tid and ticks at the start of the window */
  int nthr;
  int thr_tid[64];
  long thr_start[64], thr_end[64];
  double cpu_cli_start, cpu_cli_end;
  long long cpu_all_start, cpu_all_end; /* every CPU's busy ticks, /proc/stat */
  long rss_before_kb, rss_after_kb;
  char first_error[160];
};

extern struct stats st;

void h_record(uint64_t ns);
long proc_rss_kb(int pid);
void measure_begin(void);
void measure_end(void);
void print_json(void);

/* ---- modes (loadgen.c) --------------------------------------------------- */

void error_at(struct conn *c, const char *fmt, ...);
uint32_t xorshift(void);
void send_message(struct conn *c);
void echo_done(struct conn *c);
void on_ws_message(struct conn *c, const uint8_t *p, size_t len);
void start_traffic(void);
void finish(void);

/* ---- connections (loadgen_conn.c) ---------------------------------------- */

void conn_start(struct conn *c);
void conn_close(struct conn *c, int reset);
void flush(struct conn *c);
void input(struct conn *c, const uint8_t *data, size_t len);
void open_more(void);
int setup_total(void);
void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

/* ---- the wire (loadgen_wire.c) ------------------------------------------- */

uint8_t *ob_reserve(struct obuf *b, size_t n);
void ob_append(struct obuf *b, const void *data, size_t n);
void append_frame(struct conn *c, int opcode, const uint8_t *data, size_t len);
long parse_upgrade(struct conn *c, const uint8_t *p, size_t len);
long parse_frames(struct conn *c, const uint8_t *p, size_t len);
long parse_raw(struct conn *c, const uint8_t *p, size_t len);

/* ---- --tls (loadgen_tls.c) ----------------------------------------------- */

extern uint8_t pbuf[1 << 18]; /* plaintext of one read */

int tls_init(void);
void tls_conn_init(struct conn *c);
int tls_seal(struct conn *c, struct obuf *b);
int tls_read(struct conn *c, size_t *len);

/* ---- flood (loadgen_flood.c) --------------------------------------------- */

struct flood_stats {
  uint64_t out_bytes, out_msgs, in_bytes, in_msgs; /* in the window */
  uint64_t closed;
};

extern struct flood_stats fl;
extern uv_prepare_t t_resume; /* restarts the flooders' paused reads */

int flood_build(void);
void flood_write(struct conn *c);
long flood_discard(struct conn *c, const uint8_t *p, size_t len);
void flood_pause(struct conn *c);
void on_resume(uv_prepare_t *h);

/* ---- io_uring (loadgen_ring.c) ------------------------------------------- */

extern int rx_ready;     /* the ring is up */
extern uv_poll_t rx_poll;
extern int tx_defer;     /* inside a pass of on_rx: sends start at its end */

int rx_init(void);
void rx_arm(struct conn *c);
void rx_cancel(struct conn *c);
void tx_mark(struct conn *c);
void ring_submit(void);

#endif
