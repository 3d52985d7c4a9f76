/* loadgen.c - the load generator of `make bench`.
 *
 * One libuv loop, one thread. It speaks WebSocket as a real client does
 * (HTTP upgrade with a checked Sec-WebSocket-Accept, every frame masked with
 * a fresh key) or raw TCP (a byte echo: messages of exactly --size bytes).
 * Every echoed payload is compared byte for byte with what was sent.
 *
 * Modes (--mode):
 *   echo       N connections (--conns), each keeping W messages (--window) of
 *              S bytes (--size) in flight, for T seconds (--duration) after
 *              a warm-up (--warmup), or until M messages (--messages) came
 *              back. Reports messages/s, MB/s (payload, one direction) and
 *              latency p50/p99/p99.9 from a log-linear histogram.
 *   handshake  C connections at a time (--concurrency): connect, upgrade,
 *              check the 101, reset; counts completed handshakes/s.
 *   idle       opens K connections (--conns), each sends one message and
 *              checks its echo, then all are held; with --pid, reports the
 *              server's VmRSS growth per connection.
 *   broadcast  R receivers (--receivers) and one sender join a chat room
 *              (?room=bench&name=...); the sender keeps W messages in flight
 *              (a message is done when every receiver has it); counts
 *              deliveries/s. Join notices ("* ...") are skipped.
 * Flood (echo mode, --flood-conns F --flood-size S [--flood-window W]): F
 * more connections send S-byte masked binary messages (raw: S-byte chunks)
 * as fast as the socket takes them, never waiting for a particular echo,
 * and read and discard what comes back (frames are counted, not checked).
 * Only the --conns connections are measured (messages/s, latency); the
 * flooders' rates are reported beside (flood_*). A flooder keeps up to W
 * messages unechoed (default: 3,000, or 2 MiB of payload if less, at least
 * one): far more than a server reads from one socket in a loop turn, so its
 * socket stays full, but under what gcs lets a client hold in its output
 * queue before dropping it as one that does not read (output_queue_size,
 * 4,096 messages; 4 MiB + a message): a flooder that sent without any
 * bound would be dropped as soon as this process fell a few milliseconds
 * behind in reading. It writes copies of one prebuilt buffer of frames
 * (~16 KiB; the masking keys repeat from one copy to the next), one write
 * in flight, and reads at most 128 KiB per loop turn, so that its own
 * traffic does not hold this loop from the measured connections.
 * --proto raw replaces WebSocket by a raw TCP byte echo (echo, idle,
 * handshake = TCP connects). With --pid the server's CPU use during the
 * measurement is reported too (from /proc/PID/stat): in all (server_cpu_pct,
 * server_cpu_s, and server_cpu_s_per_mmsg, CPU seconds per million
 * messages counted) and per thread (server_threads_cpu_pct, from
 * /proc/PID/task/TID/stat: how a server spread its work over its loops).
 * Always: machine_cpu_pct (every CPU's busy time, /proc/stat) and
 * others_cpu_pct, what of it neither this process nor the server used
 * (other processes, the kernel's threads): how noisy the sample was.
 * --rooms R (echo, idle): connection i asks for PATH?room=(i mod R), so that
 * a server that places connections by a query parameter (gcs's "route":
 * "query.room") spreads them over R keys.
 *
 * Sockets: echo mode (ws and raw; not --tls, not the flooders) hands each
 * connection, once open, to one io_uring: a multishot recv into provided
 * buffers reads it, and its replies leave as one IORING_OP_SEND per
 * connection, all those of a pass over the completions started by one
 * io_uring_enter: no read() or write() per connection and batch (a system
 * call costs about a microsecond on this VM, and with one each per
 * connection the client, not the server, was the bound of the small-echo
 * rows). Broadcast receivers read through the same ring. Everything else
 * (connects, handshakes, TLS, the flooders, the broadcast sender, idle and
 * handshake modes) reads and writes with libuv. --rx-libuv: no io_uring at
 * all, every socket with libuv (the old path, for comparison); so too when
 * the kernel refuses io_uring. The JSON says which ("rx").
 *
 * --tls (echo, idle, handshake): wss, OpenSSL through memory BIOs; the
 * server's certificate is not verified (a benchmark), every connection a
 * full handshake (no resumption), ALPN http/1.1. handshake mode then counts
 * TCP connect + TLS handshake + upgrade.
 *
 * Output: one JSON line on stdout. Exit status 0 when it measured (errors
 * are in the JSON), 1 on bad usage or when nothing could be measured. */
#include <dirent.h>
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <liburing.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "payload.h"

/* ---- options ------------------------------------------------------------- */

enum mode { M_ECHO, M_HANDSHAKE, M_IDLE, M_BROADCAST };

static struct {
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
} opt = {.mode = M_ECHO,
         .host = "127.0.0.1",
         .port = 7681,
         .path = "/",
         .label = "",
         .conns = 1,
         .window = 1,
         .size = 32,
         .receivers = 1000,
         .concurrency = 64,
         .duration = 5.0,
         .warmup = 1.0,
         .setup_timeout = 60.0,
         .flood_size = 32};

/* ---- latency histogram (HdrHistogram-style, fixed memory) ---------------- */

/* Values in ns. Below 128 one bucket per value; above, 64 linear sub-buckets
 * per power of two: relative error below 1/64, 2688 counters in all. */
#define H_SUB_BITS 7
#define H_SUB (1u << H_SUB_BITS)
#define H_HALF (H_SUB / 2)
#define H_EXP 40
#define H_N (H_SUB + H_EXP * H_HALF)

static uint64_t hist[H_N];
static uint64_t hist_count;

static unsigned h_index(uint64_t v) {
  if (v < H_SUB)
    return (unsigned)v;
  unsigned msb = 63u - (unsigned)__builtin_clzll(v);
  unsigned shift = msb - (H_SUB_BITS - 1);
  if (shift > H_EXP)
    return H_N - 1;
  return H_SUB + (shift - 1) * H_HALF + (unsigned)((v >> shift) - H_HALF);
}

static uint64_t h_value(unsigned idx) { /* middle of the bucket */
  if (idx < H_SUB)
    return idx;
  unsigned shift = (idx - H_SUB) / H_HALF + 1;
  uint64_t sub = (idx - H_SUB) % H_HALF + H_HALF;
  return (sub << shift) + ((1ull << shift) >> 1);
}

static void h_record(uint64_t ns) {
  hist[h_index(ns)]++;
  hist_count++;
}

static double h_percentile_us(double p) {
  if (!hist_count)
    return 0;
  uint64_t want = (uint64_t)(p / 100.0 * (double)hist_count + 0.5);
  if (want < 1)
    want = 1;
  uint64_t acc = 0;
  for (unsigned i = 0; i < H_N; i++) {
    acc += hist[i];
    if (acc >= want)
      return (double)h_value(i) / 1000.0;
  }
  return (double)h_value(H_N - 1) / 1000.0;
}

/* ---- state --------------------------------------------------------------- */

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

static SSL_CTX *tls_ctx;
static uint8_t pbuf[1 << 18]; /* --tls: plaintext of one read */

static uv_loop_t *loop;
static struct conn *conns;
static int nconns;      /* slots */
static int next_to_open; /* echo/idle/broadcast: next slot to connect */
static int pending;     /* connects + handshakes under way */
static int opened;      /* connections that reached OPEN */
static int idle_ready;  /* idle: connections whose echo came back */
static int stopping;    /* no new messages; closing down */
static int measuring;   /* inside the measurement window */
static uint64_t now_ns; /* uv_hrtime() of the current callback */
static uint8_t rbuf[1 << 18];
static uint8_t *pat; /* the payload pattern (payload.h) */
static uint32_t rng = 2463534242u;

static struct {
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
} st;

/* flood */
static uint8_t *flood_buf; /* prebuilt frames, written again and again */
static size_t flood_len;
static uint64_t flood_frames; /* messages in flood_buf */
static uv_prepare_t t_resume;  /* restarts the flooders' paused reads */
static struct conn *resume_head;
static struct {
  uint64_t out_bytes, out_msgs, in_bytes, in_msgs; /* in the window */
  uint64_t closed;
} fl;

/* broadcast */
static uint64_t b_sent, b_done;
static uint32_t *b_cnt;   /* deliveries of message k at b_cnt[k % window] */
static uint64_t *b_ts;    /* send time of message k */
static const char *b_prefix = "s: ";
static uint32_t b_need; /* receivers open when the traffic started */
static int started;     /* traffic started */

static uv_timer_t t_phase, t_guard;

static void finish(void);
static void conn_start(struct conn *c);
static void conn_close(struct conn *c, int reset);
static void flush(struct conn *c);
static void open_more(void);
static void setup_check(void);

static void error_at(struct conn *c, const char *fmt, ...) {
  st.errors++;
  if (!st.first_error[0]) {
    va_list ap;
    va_start(ap, fmt);
    int n = snprintf(st.first_error, sizeof st.first_error, "conn %d: ",
                     c ? c->id : -1);
    vsnprintf(st.first_error + n, sizeof st.first_error - (size_t)n, fmt, ap);
    va_end(ap);
  }
}

static uint32_t xorshift(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

/* ---- /proc --------------------------------------------------------------- */

static long proc_rss_kb(int pid) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", pid);
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  long kb = -1;
  while (fgets(line, sizeof line, f))
    if (strncmp(line, "VmRSS:", 6) == 0) {
      kb = strtol(line + 6, NULL, 10);
      break;
    }
  fclose(f);
  return kb;
}

static long stat_cpu_ticks(const char *path) {
  char buf[1024];
  FILE *f = fopen(path, "r");
  if (!f)
    return -1;
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *p = strrchr(buf, ')'); /* comm may hold spaces */
  if (!p)
    return -1;
  p += 2;
  /* fields from 3 (state) on: utime is 14, stime 15 */
  long utime = 0, stime = 0;
  for (int field = 3; field <= 15 && *p; field++) {
    if (field == 14)
      utime = strtol(p, NULL, 10);
    if (field == 15)
      stime = strtol(p, NULL, 10);
    p = strchr(p, ' ');
    if (!p)
      break;
    p++;
  }
  return utime + stime;
}

static long proc_cpu_ticks(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/stat", pid);
  return stat_cpu_ticks(path);
}

static long task_cpu_ticks(int pid, int tid) {
  char path[96];
  snprintf(path, sizeof path, "/proc/%d/task/%d/stat", pid, tid);
  return stat_cpu_ticks(path);
}

/* The server's threads at the start of the window (at most 64). */
static void threads_begin(int pid) {
  char path[64];
  snprintf(path, sizeof path, "/proc/%d/task", pid);
  DIR *d = opendir(path);
  st.nthr = 0;
  if (!d)
    return;
  struct dirent *e;
  while ((e = readdir(d)) && st.nthr < 64) {
    int tid = atoi(e->d_name);
    if (tid <= 0)
      continue;
    st.thr_tid[st.nthr] = tid;
    st.thr_start[st.nthr] = task_cpu_ticks(pid, tid);
    st.nthr++;
  }
  closedir(d);
  /* by tid: the main thread first, then the loops in the order started */
  for (int i = 1; i < st.nthr; i++)
    for (int j = i; j > 0 && st.thr_tid[j - 1] > st.thr_tid[j]; j--) {
      int t = st.thr_tid[j];
      st.thr_tid[j] = st.thr_tid[j - 1];
      st.thr_tid[j - 1] = t;
      long v = st.thr_start[j];
      st.thr_start[j] = st.thr_start[j - 1];
      st.thr_start[j - 1] = v;
    }
}

static void threads_end(int pid) {
  for (int i = 0; i < st.nthr; i++)
    st.thr_end[i] = task_cpu_ticks(pid, st.thr_tid[i]);
}

/* Busy ticks of the whole machine (all CPUs) from /proc/stat: what the
 * server and this process did not use of it is the others' (noise). */
static long long machine_busy_ticks(void) {
  FILE *f = fopen("/proc/stat", "r");
  if (!f)
    return -1;
  long long v[8] = {0};
  int n = fscanf(f, "cpu %lld %lld %lld %lld %lld %lld %lld %lld", &v[0], &v[1],
                 &v[2], &v[3], &v[4], &v[5], &v[6], &v[7]);
  fclose(f);
  if (n < 8)
    return -1;
  /* user nice system idle iowait irq softirq steal: all but idle, iowait */
  return v[0] + v[1] + v[2] + v[5] + v[6] + v[7];
}

static double self_cpu_s(void) {
  struct rusage ru;
  getrusage(RUSAGE_SELF, &ru);
  return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* ---- output buffers ------------------------------------------------------ */

static uint8_t *ob_reserve(struct obuf *b, size_t n) {
  if (b->len + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->len + n)
      cap *= 2;
    uint8_t *p = realloc(b->p, cap);
    if (!p) {
      fprintf(stderr, "loadgen: out of memory\n");
      exit(1);
    }
    b->p = p;
    b->cap = cap;
  }
  return b->p + b->len;
}

static void ob_append(struct obuf *b, const void *data, size_t n) {
  memcpy(ob_reserve(b, n), data, n);
  b->len += n;
}

/* Appends one masked client frame. */
static void append_frame(struct conn *c, int opcode, const uint8_t *data,
                         size_t len) {
  struct obuf *b = &c->out[c->cur];
  uint8_t *p = ob_reserve(b, len + 14);
  size_t h = 0;
  p[h++] = (uint8_t)(0x80 | opcode);
  if (len < 126) {
    p[h++] = (uint8_t)(0x80 | len);
  } else if (len < 65536) {
    p[h++] = 0x80 | 126;
    p[h++] = (uint8_t)(len >> 8);
    p[h++] = (uint8_t)len;
  } else {
    p[h++] = 0x80 | 127;
    for (int i = 7; i >= 0; i--)
      p[h++] = (uint8_t)((uint64_t)len >> (8 * i));
  }
  uint32_t key = xorshift();
  uint8_t mk[4];
  memcpy(mk, &key, 4);
  memcpy(p + h, mk, 4);
  h += 4;
  uint8_t *dst = p + h;
  uint64_t k8;
  uint8_t m8[8] = {mk[0], mk[1], mk[2], mk[3], mk[0], mk[1], mk[2], mk[3]};
  memcpy(&k8, m8, 8);
  size_t i = 0;
  for (; i + 8 <= len; i += 8) {
    uint64_t v;
    memcpy(&v, data + i, 8);
    v ^= k8;
    memcpy(dst + i, &v, 8);
  }
  for (; i < len; i++)
    dst[i] = data[i] ^ mk[i & 3];
  b->len += h + len;
}

/* ---- sending ------------------------------------------------------------- */

static void send_message(struct conn *c) {
  const uint8_t *data = pat + payload_offset(c->sent, c->id);
  if (opt.raw)
    ob_append(&c->out[c->cur], data, (size_t)opt.size);
  else
    append_frame(c, opt.text ? 1 : 2, data, (size_t)opt.size);
  c->ts[c->sent % (uint64_t)opt.window] = now_ns;
  c->sent++;
  st.total_sent++;
}

static int may_send(void) {
  if (stopping)
    return 0;
  if (opt.messages && st.total_sent >= opt.messages)
    return 0;
  return 1;
}

static void on_write(uv_write_t *req, int status) {
  struct conn *c = req->data;
  c->wbusy = 0;
  c->out[!c->cur].len = 0;
  if (status < 0) {
    if (status != UV_ECANCELED && !stopping) {
      st.conn_errors++;
      error_at(c, "write: %s", uv_strerror(status));
    }
    return;
  }
  if (c->state == C_OPEN || c->state == C_HANDSHAKE)
    flush(c);
}

/* --tls: the plaintext of 'b' encrypted in place (once the handshake is
 * over), with whatever OpenSSL has to send. */
static int tls_seal(struct conn *c, struct obuf *b) {
  if (b->len && SSL_is_init_finished(c->ssl)) {
    if (SSL_write(c->ssl, b->p, (int)b->len) != (int)b->len)
      return -1;
    b->len = 0;
  }
  int n = BIO_pending(c->wb);
  if (n > 0) {
    if (BIO_read(c->wb, ob_reserve(b, (size_t)n), n) != n)
      return -1;
    b->len += (size_t)n;
  }
  return 0;
}

static void tx_mark(struct conn *c);
static void ring_submit(void);
static int tx_defer; /* inside a pass of on_rx: sends start at its end */

static void flush(struct conn *c) {
  struct obuf *b = &c->out[c->cur];
  if (c->ring) { /* one IORING_OP_SEND at a time, started after the pass */
    if (c->state == C_OPEN && !c->tx && (c->wbusy || b->len)) {
      tx_mark(c);
      if (!tx_defer)
        ring_submit();
    }
    return;
  }
  if (c->wbusy || c->state == C_CLOSING || c->state == C_FREE)
    return;
  if (c->ssl && tls_seal(c, b) != 0) {
    st.conn_errors++;
    error_at(c, "TLS write failed");
    conn_close(c, 1);
    return;
  }
  if (!b->len)
    return;
  uv_buf_t buf = uv_buf_init((char *)b->p, (unsigned)b->len);
  int n = uv_try_write((uv_stream_t *)&c->tcp, &buf, 1);
  if (n == UV_EAGAIN)
    n = 0;
  if (n < 0) {
    st.conn_errors++;
    error_at(c, "write: %s", uv_strerror(n));
    conn_close(c, 1);
    return;
  }
  if ((size_t)n == b->len) {
    b->len = 0;
    return;
  }
  buf = uv_buf_init((char *)b->p + n, (unsigned)(b->len - (size_t)n));
  c->wreq.data = c;
  if (uv_write(&c->wreq, (uv_stream_t *)&c->tcp, &buf, 1, on_write) != 0) {
    st.conn_errors++;
    error_at(c, "uv_write failed");
    conn_close(c, 1);
    return;
  }
  c->wbusy = 1;
  c->cur = !c->cur;
}

/* ---- completed messages -------------------------------------------------- */

static void count_message(struct conn *c, size_t len, uint64_t sent_at) {
  st.total_msgs++;
  if (measuring) {
    st.msgs++;
    st.bytes += len;
    h_record(now_ns - sent_at);
  }
  (void)c;
}

static void broadcast_fill(void);

/* An echo came back complete and correct. */
static void echo_done(struct conn *c) {
  uint64_t sent_at = c->ts[c->recvd % (uint64_t)opt.window];
  c->recvd++;
  if (opt.mode == M_IDLE) {
    idle_ready++;
    return;
  }
  count_message(c, (size_t)opt.size, sent_at);
  if (opt.messages && st.total_msgs >= opt.messages) {
    finish();
    return;
  }
  if (may_send() && c->sent - c->recvd < (uint64_t)opt.window)
    send_message(c);
}

static void on_ws_message(struct conn *c, const uint8_t *p, size_t len) {
  if (opt.mode == M_BROADCAST) {
    if (len >= 2 && p[0] == '*' && p[1] == ' ')
      return; /* join / leave notices */
    size_t pl = strlen(b_prefix);
    const uint8_t *exp = pat + payload_offset(c->recvd, 0);
    if (len != pl + (size_t)opt.size || memcmp(p, b_prefix, pl) != 0 ||
        memcmp(p + pl, exp, (size_t)opt.size) != 0) {
      st.mismatches++;
      error_at(c, "broadcast message %" PRIu64 " differs (%zu bytes)",
               c->recvd, len);
      conn_close(c, 1);
      return;
    }
    uint64_t k = c->recvd++;
    if (c->is_sender)
      return;
    if (k >= b_sent) {
      error_at(c, "broadcast message %" PRIu64 " never sent", k);
      return;
    }
    count_message(c, len, b_ts[k % (uint64_t)opt.window]);
    b_cnt[k % (uint64_t)opt.window]++;
    int moved = 0;
    while (b_done < b_sent &&
           b_cnt[b_done % (uint64_t)opt.window] >= b_need) {
      b_cnt[b_done % (uint64_t)opt.window] = 0;
      b_done++;
      moved = 1;
    }
    if (moved)
      broadcast_fill();
    return;
  }
  if (c->recvd >= c->sent) {
    st.mismatches++;
    error_at(c, "unexpected message (%zu bytes)", len);
    conn_close(c, 1);
    return;
  }
  const uint8_t *exp = pat + payload_offset(c->recvd, c->id);
  if (len != (size_t)opt.size || memcmp(p, exp, len) != 0) {
    st.mismatches++;
    error_at(c, "echo %" PRIu64 " differs (%zu bytes, want %d)", c->recvd, len,
             opt.size);
    conn_close(c, 1);
    return;
  }
  echo_done(c);
}

/* ---- input --------------------------------------------------------------- */

static void on_open(struct conn *c);

static const char *find_header(const char *h, size_t hlen, const char *name) {
  size_t nl = strlen(name);
  const char *end = h + hlen;
  for (const char *p = h; p < end;) {
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    if (!eol)
      break;
    if ((size_t)(eol - p) > nl + 1 && strncasecmp(p, name, nl) == 0 &&
        p[nl] == ':')
      return p + nl + 1;
    p = eol + 1;
  }
  return NULL;
}

static void ws_accept_for(const char *key, char out[32]) {
  char buf[64 + 40];
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned mdlen = 0;
  int n = snprintf(buf, sizeof buf, "%s258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
                   key);
  EVP_Digest(buf, (size_t)n, md, &mdlen, EVP_sha1(), NULL);
  EVP_EncodeBlock((unsigned char *)out, md, (int)mdlen);
}

/* Parses the 101 response: returns bytes used, 0 if incomplete, -1 bad. */
static long parse_upgrade(struct conn *c, const uint8_t *p, size_t len) {
  const uint8_t *end = NULL;
  for (size_t i = 3; i < len; i++)
    if (p[i] == '\n' && p[i - 1] == '\r' && p[i - 2] == '\n' &&
        p[i - 3] == '\r') {
      end = p + i + 1;
      break;
    }
  if (!end)
    return len > 8192 ? -1 : 0;
  size_t hlen = (size_t)(end - p);
  if (hlen < 12 || memcmp(p, "HTTP/1.1 101", 12) != 0) {
    error_at(c, "upgrade refused: %.40s", (const char *)p);
    return -1;
  }
  const char *v = find_header((const char *)p, hlen, "Sec-WebSocket-Accept");
  char want[32];
  ws_accept_for(c->key, want);
  if (!v) {
    error_at(c, "no Sec-WebSocket-Accept");
    return -1;
  }
  while (*v == ' ' || *v == '\t')
    v++;
  if (strncmp(v, want, strlen(want)) != 0) {
    error_at(c, "bad Sec-WebSocket-Accept");
    return -1;
  }
  return (long)hlen;
}

/* Parses frames; returns bytes consumed or -1 after closing c. */
static long parse_frames(struct conn *c, const uint8_t *p, size_t len) {
  size_t off = 0;
  while (len - off >= 2 && c->state == C_OPEN) {
    const uint8_t *f = p + off;
    size_t avail = len - off;
    int fin = f[0] & 0x80, op = f[0] & 0x0f;
    if (f[1] & 0x80) {
      error_at(c, "masked frame from server");
      conn_close(c, 1);
      return -1;
    }
    uint64_t plen = f[1] & 0x7f;
    size_t h = 2;
    if (plen == 126) {
      if (avail < 4)
        break;
      plen = ((uint64_t)f[2] << 8) | f[3];
      h = 4;
    } else if (plen == 127) {
      if (avail < 10)
        break;
      plen = 0;
      for (int i = 0; i < 8; i++)
        plen = (plen << 8) | f[2 + i];
      h = 10;
    }
    if (plen > (1u << 24)) {
      error_at(c, "frame of %" PRIu64 " bytes", plen);
      conn_close(c, 1);
      return -1;
    }
    if (avail < h + plen)
      break;
    const uint8_t *pl = f + h;
    off += h + (size_t)plen;
    if (!fin || op == 0) {
      error_at(c, "fragmented message");
      conn_close(c, 1);
      return -1;
    }
    switch (op) {
    case 1:
    case 2:
      on_ws_message(c, pl, (size_t)plen);
      break;
    case 8:
      if (!stopping) {
        st.closed++;
        error_at(c, "closed by the server (code %d)",
                 plen >= 2 ? (pl[0] << 8 | pl[1]) : 0);
      }
      conn_close(c, 1);
      return -1;
    case 9:
      append_frame(c, 10, pl, (size_t)plen);
      break;
    case 10:
      break;
    default:
      error_at(c, "opcode %d", op);
      conn_close(c, 1);
      return -1;
    }
  }
  return c->state == C_OPEN ? (long)off : -1;
}

/* Raw byte echo: compares the stream with what was sent. */
static long parse_raw(struct conn *c, const uint8_t *p, size_t len) {
  size_t off = 0;
  while (off < len && c->state == C_OPEN) {
    if (c->recvd >= c->sent) {
      st.mismatches++;
      error_at(c, "unexpected bytes");
      conn_close(c, 1);
      return -1;
    }
    size_t want = (size_t)opt.size - c->raw_off;
    size_t n = len - off < want ? len - off : want;
    const uint8_t *exp = pat + payload_offset(c->recvd, c->id) + c->raw_off;
    if (memcmp(p + off, exp, n) != 0) {
      st.mismatches++;
      error_at(c, "raw echo %" PRIu64 " differs", c->recvd);
      conn_close(c, 1);
      return -1;
    }
    off += n;
    c->raw_off += n;
    if (c->raw_off == (size_t)opt.size) {
      c->raw_off = 0;
      echo_done(c);
    }
  }
  return c->state == C_OPEN ? (long)off : -1;
}

/* ---- flood --------------------------------------------------------------- */

/* Builds flood_buf: as many S-byte messages as fit in 16 KiB (at least
 * one), each masked with its own key (keys repeat from copy to copy). */
static int flood_build(void) {
  size_t frame = (size_t)opt.flood_size + (opt.raw ? 0 : 14);
  size_t n = ((size_t)16 << 10) / frame;
  if (n < 1)
    n = 1;
  if (n > (size_t)opt.flood_window)
    n = (size_t)opt.flood_window;
  struct conn tmp;
  memset(&tmp, 0, sizeof tmp);
  uint8_t *fpat = payload_pattern((size_t)opt.flood_size);
  if (!fpat)
    return -1;
  for (size_t k = 0; k < n; k++) {
    const uint8_t *data = fpat + payload_offset(k, 0);
    if (opt.raw)
      ob_append(&tmp.out[0], data, (size_t)opt.flood_size);
    else
      append_frame(&tmp, 2, data, (size_t)opt.flood_size);
  }
  free(fpat);
  flood_buf = tmp.out[0].p;
  flood_len = tmp.out[0].len;
  flood_frames = n;
  return 0;
}

static void flood_write(struct conn *c);

static void on_flood_write(uv_write_t *req, int status) {
  struct conn *c = req->data;
  c->fbusy = 0;
  if (status < 0) {
    if (status != UV_ECANCELED && !stopping) {
      st.conn_errors++;
      error_at(c, "flood write: %s", uv_strerror(status));
    }
    return;
  }
  if (measuring) {
    fl.out_bytes += flood_len * (uint64_t)c->fcopies;
    fl.out_msgs += flood_frames * (uint64_t)c->fcopies;
  }
  flood_write(c);
}

/* One write in flight per flooder, of as many copies of flood_buf (up to
 * 64) as the window has room for: libuv writes it as the socket takes it,
 * the next starts when it is done or when echoes made room. */
static void flood_write(struct conn *c) {
  if (stopping || c->state != C_OPEN || c->fbusy)
    return;
  uint64_t unechoed = c->sent - c->recvd;
  if (unechoed >= (uint64_t)opt.flood_window)
    return;
  uint64_t k = ((uint64_t)opt.flood_window - unechoed) / flood_frames;
  if (k < 1)
    return;
  if (k > 64)
    k = 64;
  uv_buf_t bufs[64];
  for (uint64_t i = 0; i < k; i++)
    bufs[i] = uv_buf_init((char *)flood_buf, (unsigned)flood_len);
  c->fwreq.data = c;
  if (uv_write(&c->fwreq, (uv_stream_t *)&c->tcp, bufs, (unsigned)k,
               on_flood_write) != 0) {
    st.conn_errors++;
    error_at(c, "flood: uv_write failed");
    conn_close(c, 1);
    return;
  }
  c->fbusy = 1;
  c->fcopies = (int)k;
  c->sent += k * flood_frames;
}

/* What a flooder gets back: skipped, frames counted; a close ends it. */
static long flood_discard(struct conn *c, const uint8_t *p, size_t len) {
  if (measuring)
    fl.in_bytes += len;
  if (opt.raw) {
    if (measuring)
      fl.in_msgs += len; /* bytes; divided by the size when printed */
    c->raw_off += len;
    c->recvd += c->raw_off / (size_t)opt.flood_size;
    c->raw_off %= (size_t)opt.flood_size;
    flood_write(c);
    return (long)len;
  }
  size_t off = 0;
  while (off < len) {
    if (c->fskip) {
      uint64_t n = len - off < c->fskip ? len - off : c->fskip;
      off += (size_t)n;
      c->fskip -= n;
      continue;
    }
    c->fhdr[c->fhdr_len++] = p[off++];
    if (c->fhdr_len < 2)
      continue;
    int l7 = c->fhdr[1] & 0x7f;
    int need = 2 + (l7 == 126 ? 2 : l7 == 127 ? 8 : 0);
    if (c->fhdr[1] & 0x80) {
      error_at(c, "masked frame from server (flooder)");
      conn_close(c, 1);
      return -1;
    }
    if (c->fhdr_len < need)
      continue;
    uint64_t plen = (uint64_t)l7;
    if (l7 >= 126) {
      plen = 0;
      for (int i = 2; i < need; i++)
        plen = (plen << 8) | c->fhdr[i];
    }
    int op = c->fhdr[0] & 0x0f;
    c->fhdr_len = 0;
    c->fskip = plen;
    if (op == 8) {
      if (!stopping) {
        st.closed++;
        fl.closed++;
        error_at(c, "flooder closed by the server");
      }
      conn_close(c, 1);
      return -1;
    }
    if ((op == 1 || op == 2 || op == 0) && (c->fhdr[0] & 0x80)) {
      c->recvd++;
      if (measuring)
        fl.in_msgs++;
    }
  }
  flood_write(c);
  return (long)len;
}

/* A flooder that filled its read buffer reads again next loop turn. */
static void on_resume(uv_prepare_t *h);

static void flood_pause(struct conn *c) {
  if (c->read_paused || stopping)
    return;
  uv_read_stop((uv_stream_t *)&c->tcp);
  c->read_paused = 1;
  c->resume_next = resume_head;
  resume_head = c;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf);
static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf);

static void on_resume(uv_prepare_t *h) {
  (void)h;
  struct conn *c = resume_head;
  resume_head = NULL;
  while (c) {
    struct conn *next = c->resume_next;
    c->resume_next = NULL;
    c->read_paused = 0;
    if (c->state == C_OPEN && !stopping &&
        uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0)
      conn_close(c, 1);
    c = next;
  }
}

static long consume(struct conn *c, const uint8_t *p, size_t len) {
  size_t off = 0;
  if (c->state == C_HANDSHAKE) {
    long n = parse_upgrade(c, p, len);
    if (n < 0) {
      st.conn_errors++;
      conn_close(c, 1);
      return -1;
    }
    if (n == 0)
      return 0;
    off = (size_t)n;
    on_open(c);
    if (c->state != C_OPEN)
      return -1;
  }
  if (c->state != C_OPEN)
    return -1;
  long n = c->flood  ? flood_discard(c, p + off, len - off)
           : opt.raw ? parse_raw(c, p + off, len - off)
                     : parse_frames(c, p + off, len - off);
  if (n < 0)
    return -1;
  return (long)off + n;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  (void)suggested;
  struct conn *c = h->data;
  /* A flooder: 128 KiB per read, one read per loop turn (flood_pause). */
  *buf = uv_buf_init((char *)rbuf, c->flood ? 131072u : (unsigned)sizeof rbuf);
}

static void keep_input(struct conn *c, const uint8_t *p, size_t n) {
  if (c->in_len + n > c->in_cap) {
    size_t cap = c->in_cap ? c->in_cap : 1024;
    while (cap < c->in_len + n)
      cap *= 2;
    c->in = realloc(c->in, cap);
    if (!c->in) {
      fprintf(stderr, "loadgen: out of memory\n");
      exit(1);
    }
    c->in_cap = cap;
  }
  memmove(c->in + c->in_len, p, n);
  c->in_len += n;
}

/* --tls: the handshake, then the plaintext of what came into pbuf
 * ('*len' bytes). 0 or -1. */
static int tls_read(struct conn *c, size_t *len) {
  *len = 0;
  if (!SSL_is_init_finished(c->ssl)) {
    int r = SSL_do_handshake(c->ssl);
    if (r != 1)
      return SSL_get_error(c->ssl, r) == SSL_ERROR_WANT_READ ? 0 : -1;
    /* Over: the upgrade request goes out. */
    ob_append(&c->out[c->cur], c->pre.p, c->pre.len);
    c->pre.len = 0;
  }
  while (*len < sizeof pbuf) {
    int n = SSL_read(c->ssl, pbuf + *len, (int)(sizeof pbuf - *len));
    if (n > 0) {
      *len += (size_t)n;
      continue;
    }
    int e = SSL_get_error(c->ssl, n);
    return e == SSL_ERROR_WANT_READ ? 0 : -1;
  }
  return 0;
}

/* Bytes read for c: frames parsed, a partial one kept, replies flushed. */
static void input(struct conn *c, const uint8_t *data, size_t len) {
  if (c->in_len) {
    keep_input(c, data, len);
    data = c->in;
    len = c->in_len;
  }
  long used = consume(c, data, len);
  if (used < 0 || c->state != C_OPEN)
    return; /* closed (or handshake mode done) */
  if (data == c->in) {
    if (used) /* not the whole of a partial frame again */
      memmove(c->in, c->in + used, len - (size_t)used);
    c->in_len = len - (size_t)used;
  } else if ((size_t)used < len) {
    keep_input(c, data + used, len - (size_t)used);
  }
  flush(c);
}

/* ---- reading and writing through io_uring ----------------------------------
 * A thousand receivers each read one small message per broadcast: with a
 * read() each, the load generator spent more CPU per delivery than the
 * servers it measured (a system call costs about a microsecond on this VM),
 * and the row measured the client. Each receiver gets one multishot recv
 * into a ring of provided buffers instead: no system call per delivery.
 * Echo mode (plain ws or raw, not the flooders) does the same for both
 * directions: a multishot recv per connection, and its replies leave as one
 * IORING_OP_SEND per connection with output (the whole of out[cur]), all
 * of a pass started by one io_uring_submit after its CQE loop, together
 * with the receives armed again. A send owns out[!cur] until its CQE (the
 * same double buffer as a uv_write); what is sent meanwhile goes to out[cur]
 * and leaves once it completes. Tags: the connection's index for its recv,
 * RX_SEND | index for its send, RX_CANCEL for a cancel. */
#define RX_CANCEL UINT64_MAX
#define RX_SEND (1ull << 63)
static struct io_uring rx_ring;
static int rx_ready;
static uv_poll_t rx_poll;
static struct io_uring_buf_ring *rx_br;
static uint8_t *rx_mem;
static unsigned rx_nbuf, rx_bufsz;
static int *tx_dirty; /* connections with a send to start after this pass */
static int tx_ndirty;

static void on_rx(uv_poll_t *h, int status, int events);

/* Broadcast: 16,384 buffers of 1 KiB (a delivery is a few dozen bytes).
 * Echo: a buffer holds a connection's window (1 KiB to 64 KiB: 32 B x16 in
 * one 1 KiB buffer, 1 KiB x16 in one of 32 KiB), two per connection (at
 * least 1,024), 64 MiB at most: as few buffers as will do, for they are
 * taken in turn and one that comes round again is cold. A receive that
 * finds none ends (ENOBUFS) and is armed again after the pass. */
static int rx_init(void) {
  rx_nbuf = 16384;
  rx_bufsz = 1024;
  if (opt.mode == M_ECHO) {
    size_t batch = (size_t)opt.window * ((size_t)opt.size + (opt.raw ? 0 : 14));
    rx_bufsz = 1024;
    while (rx_bufsz < batch && rx_bufsz < 65536)
      rx_bufsz *= 2;
    rx_nbuf = 1024;
    while (rx_nbuf < 2u * (unsigned)opt.conns && rx_nbuf < 32768)
      rx_nbuf *= 2;
    while ((size_t)rx_nbuf * rx_bufsz > ((size_t)64 << 20) && rx_nbuf > 256)
      rx_nbuf /= 2;
  }
  struct io_uring_params p;
  memset(&p, 0, sizeof p);
  p.flags = IORING_SETUP_CQSIZE;
  /* Echo: the kernel's work for the ring (a receive when data came, the
   * rest of a send when there is room) waits for this process's next
   * system call instead of interrupting it: it reads what arrived since,
   * not each segment as it lands, and answers whole windows. Run at once,
   * echoes came back one or two at a time and the replies went out as
   * small, and the server spent more per message (1 KiB x100: ~10 % fewer
   * messages/s at 99 % server CPU). Not DEFER_TASKRUN: a uv_poll on the
   * ring's fd does not wake for deferred work; this does (the task work
   * interrupts the epoll_wait, runs, and posts its completions). */
  if (opt.mode == M_ECHO)
    p.flags |= IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG;
  p.cq_entries = 65536; /* a pass: a recv and a send per connection, and more */
  if (io_uring_queue_init_params(4096, &rx_ring, &p) < 0) {
    /* a kernel older than 5.19 has no COOP_TASKRUN */
    p.flags &= ~(unsigned)(IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG);
    if (io_uring_queue_init_params(4096, &rx_ring, &p) < 0)
      return -1;
  }
  void *m = NULL;
  if (posix_memalign(&m, 4096, rx_nbuf * sizeof(struct io_uring_buf)) != 0 ||
      !(rx_mem = malloc((size_t)rx_nbuf * rx_bufsz)) ||
      !(tx_dirty = malloc((size_t)nconns * sizeof *tx_dirty)))
    return -1;
  rx_br = m;
  io_uring_buf_ring_init(rx_br);
  struct io_uring_buf_reg reg;
  memset(&reg, 0, sizeof reg);
  reg.ring_addr = (uintptr_t)rx_br;
  reg.ring_entries = rx_nbuf;
  reg.bgid = 1;
  if (io_uring_register_buf_ring(&rx_ring, &reg, 0) < 0)
    return -1;
  for (unsigned i = 0; i < rx_nbuf; i++)
    io_uring_buf_ring_add(rx_br, rx_mem + (size_t)i * rx_bufsz, rx_bufsz,
                          (unsigned short)i, io_uring_buf_ring_mask(rx_nbuf),
                          (int)i);
  io_uring_buf_ring_advance(rx_br, (int)rx_nbuf);
  if (uv_poll_init(loop, &rx_poll, rx_ring.ring_fd) != 0 ||
      uv_poll_start(&rx_poll, UV_READABLE, on_rx) != 0)
    return -1;
  rx_ready = 1;
  return 0;
}

static struct io_uring_sqe *rx_sqe(void) {
  struct io_uring_sqe *sqe = io_uring_get_sqe(&rx_ring);
  if (!sqe) {
    io_uring_submit(&rx_ring);
    sqe = io_uring_get_sqe(&rx_ring);
  }
  return sqe;
}

/* Hands c's socket to the ring (libuv stops reading it). Submitted at once,
 * or inside a pass of on_rx with the rest at its end. */
static void rx_arm(struct conn *c) {
  uv_os_fd_t fd;
  struct io_uring_sqe *sqe = rx_sqe();
  if (!sqe || uv_fileno((uv_handle_t *)&c->tcp, &fd) != 0) {
    error_at(c, "io_uring: cannot arm a receive");
    conn_close(c, 1);
    return;
  }
  c->fd = fd;
  uv_read_stop((uv_stream_t *)&c->tcp);
  io_uring_prep_recv_multishot(sqe, fd, NULL, 0, 0);
  sqe->flags |= IOSQE_BUFFER_SELECT;
  sqe->buf_group = 1;
  io_uring_sqe_set_data64(sqe, (uint64_t)c->id);
  c->rx = 1;
  if (!tx_defer)
    io_uring_submit(&rx_ring);
}

static void rx_cancel_op(uint64_t user_data) {
  struct io_uring_sqe *sqe = rx_sqe();
  if (!sqe)
    return;
  io_uring_prep_cancel64(sqe, user_data, 0);
  io_uring_sqe_set_data64(sqe, RX_CANCEL);
}

/* Before its socket closes: a pending receive or send holds the socket
 * open. A completion that comes later finds c no longer open (a slot is
 * reused only in handshake mode, which does not use the ring), and the
 * buffers it may still touch live as long as the process. */
static void rx_cancel(struct conn *c) {
  if (c->rx)
    rx_cancel_op((uint64_t)c->id);
  if (c->tx)
    rx_cancel_op(RX_SEND | (uint64_t)c->id);
  io_uring_submit(&rx_ring);
  c->rx = 0;
}

static void tx_mark(struct conn *c) {
  if (!c->dirty) {
    c->dirty = 1;
    tx_dirty[tx_ndirty++] = c->id;
  }
}

/* One send of c: the rest of out[!cur] if one is under way (a partial
 * send), else the whole of out[cur], which becomes out[!cur]. */
static void tx_start(struct conn *c) {
  if (c->tx || c->state != C_OPEN)
    return;
  if (!c->wbusy) {
    if (!c->out[c->cur].len)
      return;
    c->wbusy = 1;
    c->cur = !c->cur;
    c->woff = 0;
  }
  struct obuf *b = &c->out[!c->cur];
  struct io_uring_sqe *sqe = rx_sqe();
  if (!sqe) {
    st.conn_errors++;
    error_at(c, "io_uring: cannot queue a send");
    conn_close(c, 1);
    return;
  }
  io_uring_prep_send(sqe, c->fd, b->p + c->woff, b->len - c->woff,
                     MSG_NOSIGNAL | MSG_WAITALL);
  io_uring_sqe_set_data64(sqe, RX_SEND | (uint64_t)c->id);
  c->tx = 1;
}

/* The sends of the marked connections and whatever else is queued (armed
 * receives, cancels): one io_uring_enter. */
static void ring_submit(void) {
  for (int i = 0; i < tx_ndirty; i++) {
    struct conn *c = &conns[tx_dirty[i]];
    c->dirty = 0;
    if (c->ring)
      tx_start(c);
  }
  tx_ndirty = 0;
  if (io_uring_sq_ready(&rx_ring))
    io_uring_submit(&rx_ring);
}

/* A send completed: the rest of a partial one, or the next buffer. */
static void tx_done(struct conn *c, int res) {
  if (!c->tx)
    return;
  c->tx = 0;
  if (c->state != C_OPEN)
    return; /* closed meanwhile: ignored */
  if (res < 0) {
    if (res == -EAGAIN || res == -EINTR) {
      tx_mark(c);
      return;
    }
    if (!stopping) {
      st.conn_errors++;
      error_at(c, "send: %s", strerror(-res));
    }
    conn_close(c, 1);
    return;
  }
  struct obuf *b = &c->out[!c->cur];
  c->woff += (size_t)res;
  if (c->woff < b->len) {
    tx_mark(c);
    return;
  }
  b->len = 0;
  c->woff = 0;
  c->wbusy = 0;
  if (c->out[c->cur].len)
    tx_mark(c);
}

static void on_rx(uv_poll_t *h, int status, int events) {
  (void)h;
  (void)status;
  (void)events;
  unsigned n;
  int passes = 0;
  tx_defer = 1;
  do {
    now_ns = uv_hrtime();
    /* A receive whose multishot ended is armed again after the loop, once
     * the buffers are back: armed inside it, a receive finding none ends
     * at once, again and again. */
    static int *rearm;
    int nrearm = 0;
    if (!rearm && !(rearm = malloc((size_t)nconns * sizeof *rearm))) {
      fprintf(stderr, "loadgen: out of memory\n");
      exit(1);
    }
    /* The completions there now, not those that come in meanwhile (they
     * do, from task work run at any system call): a pass that took them
     * too could go on as long as the echoes flow, its sends held back. */
    struct io_uring_cqe *cqe;
    unsigned head = *rx_ring.cq.khead;
    unsigned ready = io_uring_cq_ready(&rx_ring);
    for (n = 0; n < ready; n++) {
      cqe = &rx_ring.cq.cqes[(head + n) & *rx_ring.cq.kring_mask];
      if (cqe->user_data == RX_CANCEL)
        continue;
      if (cqe->user_data & RX_SEND) {
        tx_done(&conns[cqe->user_data & ~RX_SEND], cqe->res);
        continue;
      }
      struct conn *c = &conns[cqe->user_data];
      if (cqe->flags & IORING_CQE_F_BUFFER) {
        unsigned bid = cqe->flags >> IORING_CQE_BUFFER_SHIFT;
        uint8_t *b = rx_mem + (size_t)bid * rx_bufsz;
        if (c->rx && c->state == C_OPEN && cqe->res > 0)
          input(c, b, (size_t)cqe->res); /* a partial frame is copied */
        io_uring_buf_ring_add(rx_br, b, rx_bufsz, (unsigned short)bid,
                              io_uring_buf_ring_mask(rx_nbuf), 0);
        io_uring_buf_ring_advance(rx_br, 1);
      }
      if (!c->rx || c->state != C_OPEN || (cqe->flags & IORING_CQE_F_MORE))
        continue;
      if (cqe->res > 0 || cqe->res == -ENOBUFS) {
        c->rx = 2; /* armed again below */
        rearm[nrearm++] = c->id;
        continue;
      }
      c->rx = 0;
      if (!stopping) {
        st.closed++;
        st.conn_errors++;
        error_at(c, "read: %s", cqe->res ? strerror(-cqe->res) : "end of file");
      }
      conn_close(c, 1);
    }
    io_uring_cq_advance(&rx_ring, n);
    for (int i = 0; i < nrearm; i++) {
      struct conn *c = &conns[rearm[i]];
      if (c->rx == 2 && c->state == C_OPEN)
        rx_arm(c);
    }
    /* The replies of the pass and the receives armed again: one submit. */
    ring_submit();
    /* Completions the CQ had no room for wait in the kernel until a
     * peek asks for them. */
    if (IO_URING_READ_ONCE(*rx_ring.sq.kflags) & IORING_SQ_CQ_OVERFLOW)
      (void)io_uring_peek_cqe(&rx_ring, &cqe);
    /* Not forever: under load completions never stop coming, and the
     * timers (the end of the warm-up, of the run) are libuv's. */
  } while (n && ++passes < 4);
  tx_defer = 0;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  struct conn *c = s->data;
  if (nread == 0)
    return;
  now_ns = uv_hrtime();
  if (nread < 0) {
    if (!stopping) {
      st.closed++;
      st.conn_errors++;
      error_at(c, "read: %s", uv_strerror((int)nread));
    }
    conn_close(c, 1);
    return;
  }
  const uint8_t *data = rbuf;
  size_t len = (size_t)nread;
  if (c->ssl) {
    if (BIO_write(c->rb, rbuf, (int)nread) != (int)nread || tls_read(c, &len) != 0) {
      st.conn_errors++;
      error_at(c, "TLS: %s", ERR_reason_error_string(ERR_peek_last_error()));
      ERR_clear_error();
      conn_close(c, 1);
      return;
    }
    data = pbuf;
    if (!len) {
      flush(c); /* the handshake's next flight */
      return;
    }
  }
  if (c->flood && c->state == C_OPEN) {
    long used = flood_discard(c, rbuf, len);
    if (used >= 0 && c->state == C_OPEN && (size_t)nread == buf->len)
      flood_pause(c);
    return;
  }
  input(c, data, len);
}

/* ---- connections --------------------------------------------------------- */

static void on_closed(uv_handle_t *h) {
  struct conn *c = h->data;
  c->state = C_FREE;
  c->in_len = 0;
  if (c->ssl) {
    SSL_free(c->ssl); /* and its BIOs */
    c->ssl = NULL;
    c->pre.len = 0;
  }
  c->out[0].len = c->out[1].len = 0;
  c->wbusy = 0;
  c->cur = 0;
  c->ring = 0;
  c->woff = 0;
  if (opt.mode == M_HANDSHAKE && !stopping)
    conn_start(c);
}

static void conn_close(struct conn *c, int reset) {
  if (c->state == C_FREE || c->state == C_CLOSING)
    return;
  int was_open = c->state == C_OPEN;
  int was_pending = c->state == C_CONNECTING || c->state == C_HANDSHAKE;
  if (was_pending)
    pending--;
  c->state = C_CLOSING;
  if (c->rx || c->tx)
    rx_cancel(c);
  if (was_open && opt.mode != M_HANDSHAKE)
    opened--;
  if (!reset || uv_tcp_close_reset(&c->tcp, on_closed) != 0)
    uv_close((uv_handle_t *)&c->tcp, on_closed);
  if (was_pending && !started && opt.mode != M_HANDSHAKE) {
    open_more();
    setup_check();
  }
}


static void on_connect(uv_connect_t *req, int status) {
  struct conn *c = req->data;
  now_ns = uv_hrtime();
  if (status < 0) {
    if (status != UV_ECANCELED && !stopping) {
      st.conn_errors++;
      error_at(c, "connect: %s", uv_strerror(status));
    }
    if (c->state == C_CONNECTING) {
      pending--;
      c->state = C_CLOSING;
      uv_close((uv_handle_t *)&c->tcp, on_closed);
    }
    if (opt.mode != M_HANDSHAKE) {
      open_more();
      setup_check();
    }
    return;
  }
  if (c->state != C_CONNECTING)
    return;
  c->state = C_HANDSHAKE;
  if (uv_read_start((uv_stream_t *)&c->tcp, on_alloc, on_read) != 0) {
    st.conn_errors++;
    conn_close(c, 1);
    return;
  }
  if (opt.raw) {
    on_open(c);
    if (c->state == C_OPEN)
      flush(c);
    return;
  }
  uint8_t nonce[16];
  for (int i = 0; i < 16; i += 4) {
    uint32_t r = xorshift();
    memcpy(nonce + i, &r, 4);
  }
  EVP_EncodeBlock((unsigned char *)c->key, nonce, 16);
  char path[256];
  if (opt.mode == M_BROADCAST)
    snprintf(path, sizeof path, c->is_sender ? "%s?room=bench&name=s"
                                             : "%s?room=bench&name=r%d",
             opt.path, c->id);
  else if (opt.rooms)
    snprintf(path, sizeof path, "%s%croom=%d", opt.path,
             strchr(opt.path, '?') ? '&' : '?', c->id % opt.rooms);
  else
    snprintf(path, sizeof path, "%s", opt.path);
  char req_txt[512];
  int n = snprintf(req_txt, sizeof req_txt,
                   "GET %s HTTP/1.1\r\nHost: %s:%d\r\nUpgrade: websocket\r\n"
                   "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                   "Sec-WebSocket-Version: 13\r\n\r\n",
                   path, opt.host, opt.port, c->key);
  if (c->ssl) {
    ob_append(&c->pre, req_txt, (size_t)n);
    ERR_clear_error();
    (void)SSL_do_handshake(c->ssl); /* the ClientHello */
  } else {
    ob_append(&c->out[c->cur], req_txt, (size_t)n);
  }
  flush(c);
}

static void conn_start(struct conn *c) {
  struct sockaddr_in addr;
  uv_ip4_addr(opt.host, opt.port, &addr);
  uv_tcp_init(loop, &c->tcp);
  c->tcp.data = c;
  c->creq.data = c;
  c->state = C_CONNECTING;
  c->sent = c->recvd = 0;
  c->raw_off = 0;
  c->t_start = uv_hrtime();
  if (opt.tls) {
    c->ssl = SSL_new(tls_ctx);
    c->rb = BIO_new(BIO_s_mem());
    c->wb = BIO_new(BIO_s_mem());
    if (!c->ssl || !c->rb || !c->wb) {
      fprintf(stderr, "loadgen: out of memory\n");
      exit(1);
    }
    BIO_set_mem_eof_return(c->rb, -1);
    SSL_set_bio(c->ssl, c->rb, c->wb);
    SSL_set_connect_state(c->ssl);
    (void)SSL_set_tlsext_host_name(c->ssl, "localhost");
  }
  pending++;
  uv_tcp_nodelay(&c->tcp, 1);
  int rc = uv_tcp_connect(&c->creq, &c->tcp, (const struct sockaddr *)&addr,
                          on_connect);
  if (rc != 0) {
    st.conn_errors++;
    error_at(c, "connect: %s", uv_strerror(rc));
    pending--;
    c->state = C_CLOSING;
    uv_close((uv_handle_t *)&c->tcp, on_closed);
  }
}

static int setup_total(void) {
  return opt.mode == M_BROADCAST ? opt.receivers + 1
                                 : opt.conns + opt.flood_conns;
}

/* Connects the next slots, at most --concurrency at a time. The broadcast
 * sender (the last slot) only once every receiver is in. */
static void open_more(void) {
  int total = setup_total();
  while (!stopping && pending < opt.concurrency && next_to_open < total) {
    struct conn *c = &conns[next_to_open];
    if (c->is_sender && pending > 0)
      break; /* every receiver in first */
    next_to_open++;
    conn_start(c);
  }
}

static void start_traffic(void);

static void on_open(struct conn *c) {
  c->state = C_OPEN;
  pending--;
  if (opt.mode == M_HANDSHAKE) {
    if (measuring) {
      st.handshakes++;
      h_record(now_ns - c->t_start);
    }
    conn_close(c, 1);
    return;
  }
  opened++;
  if (rx_ready && opt.mode == M_BROADCAST && !c->is_sender && !c->ssl)
    rx_arm(c);
  if (rx_ready && opt.mode == M_ECHO && !c->ssl && !c->flood) {
    /* both directions through the ring; a uv_write of the upgrade request
     * still in flight (never seen) would keep the writes with libuv */
    c->ring = !c->wbusy;
    rx_arm(c);
  }
  if (opt.mode == M_IDLE)
    send_message(c); /* one echo, then idle */
  open_more();
  setup_check();
}

/* Once every connection was tried: the traffic starts with those open. */
static void setup_check(void) {
  if (started || stopping || opt.mode == M_IDLE || opt.mode == M_HANDSHAKE)
    return;
  if (next_to_open < setup_total() || pending > 0)
    return;
  if (opened == 0 ||
      (opt.mode == M_BROADCAST && conns[opt.receivers].state != C_OPEN)) {
    error_at(NULL, "no connection could be opened");
    finish();
    return;
  }
  start_traffic();
}

/* ---- phases -------------------------------------------------------------- */

static void measure_begin(void) {
  measuring = 1;
  st.t_meas_start = uv_hrtime();
  st.cpu_cli_start = self_cpu_s();
  st.cpu_all_start = machine_busy_ticks();
  if (opt.pid) {
    st.cpu_srv_start = proc_cpu_ticks(opt.pid);
    threads_begin(opt.pid);
  }
}

static void measure_end(void) {
  measuring = 0;
  st.t_meas_end = uv_hrtime();
  st.cpu_cli_end = self_cpu_s();
  st.cpu_all_end = machine_busy_ticks();
  if (opt.pid) {
    st.cpu_srv_end = proc_cpu_ticks(opt.pid);
    threads_end(opt.pid);
  }
}

static void on_phase(uv_timer_t *t);

static void broadcast_fill(void) {
  struct conn *s = &conns[opt.receivers];
  if (s->state != C_OPEN)
    return;
  int any = 0;
  while (may_send() && b_sent - b_done < (uint64_t)opt.window) {
    const uint8_t *data = pat + payload_offset(b_sent, 0);
    append_frame(s, 1, data, (size_t)opt.size);
    b_ts[b_sent % (uint64_t)opt.window] = now_ns;
    b_sent++;
    st.total_sent++;
    any = 1;
  }
  if (any)
    flush(s);
}

static void start_traffic(void) {
  started = 1;
  now_ns = uv_hrtime();
  if (opt.mode == M_BROADCAST)
    b_need = (uint32_t)(opened - 1);
  st.t_start = now_ns;
  uv_timer_stop(&t_guard);
  if (opt.mode == M_BROADCAST) {
    broadcast_fill();
  } else {
    tx_defer = rx_ready; /* the ring's sends: one submit for all */
    for (int i = 0; i < nconns; i++) {
      struct conn *c = &conns[i];
      if (c->state != C_OPEN)
        continue;
      if (c->flood) {
        flood_write(c);
        continue;
      }
      for (int w = 0; w < opt.window && may_send(); w++)
        send_message(c);
      flush(c);
    }
    tx_defer = 0;
    if (rx_ready)
      ring_submit();
  }
  if (opt.messages) {
    measure_begin();
  } else {
    uv_timer_start(&t_phase, on_phase, (uint64_t)(opt.warmup * 1000), 0);
  }
}

static int phase; /* 0 warm-up, 1 measuring, 2 done */

static void on_phase(uv_timer_t *t) {
  (void)t;
  if (phase == 0) {
    phase = 1;
    measure_begin();
    uv_timer_start(&t_phase, on_phase, (uint64_t)(opt.duration * 1000), 0);
  } else {
    finish();
  }
}

static void on_idle_poll(uv_timer_t *t);

static int idle_stage; /* 0 opening, 1 settling, 2 holding */

static void on_idle_poll(uv_timer_t *t) {
  (void)t;
  if (idle_stage == 0) {
    if (idle_ready + (int)st.conn_errors >= opt.conns ||
        (next_to_open >= opt.conns && pending == 0 && opened == idle_ready)) {
      idle_stage = 1;
      uv_timer_stop(&t_guard);
      uv_timer_start(&t_phase, on_idle_poll, 1000, 0); /* settle */
    }
    return;
  }
  if (idle_stage == 1) {
    if (opt.pid)
      st.rss_after_kb = proc_rss_kb(opt.pid);
    idle_stage = 2;
    uv_timer_stop(&t_phase);
    if (opt.hold > 0)
      uv_timer_start(&t_phase, on_idle_poll, (uint64_t)(opt.hold * 1000), 0);
    else
      finish();
    return;
  }
  finish();
}

static void on_guard(uv_timer_t *t) {
  (void)t;
  error_at(NULL, "setup timed out: %d of %d connections open", opened,
           setup_total());
  st.conn_errors++;
  finish();
}

static void print_json(void) {
  double secs = 0;
  if (st.t_meas_end > st.t_meas_start)
    secs = (double)(st.t_meas_end - st.t_meas_start) / 1e9;
  static const char *modes[] = {"echo", "handshake", "idle", "broadcast"};
  printf("{\"label\":\"%s\",\"mode\":\"%s\",\"proto\":\"%s\",\"conns\":%d,"
         "\"window\":%d,\"size\":%d",
         opt.label, modes[opt.mode], opt.raw ? "raw" : opt.tls ? "wss" : "ws", opt.conns,
         opt.window, opt.size);
  if (opt.mode == M_BROADCAST)
    printf(",\"receivers\":%d", opt.receivers);
  if (opt.mode == M_BROADCAST || opt.mode == M_ECHO)
    printf(",\"rx\":\"%s\"", rx_ready ? "io_uring" : "libuv");
  printf(",\"seconds\":%.3f", secs);
  if (opt.mode == M_ECHO || opt.mode == M_BROADCAST) {
    double rate = secs > 0 ? (double)st.msgs / secs : 0;
    printf(",\"messages\":%" PRIu64 ",\"msgs_per_s\":%.0f,\"mb_per_s\":%.2f",
           st.msgs, rate, secs > 0 ? (double)st.bytes / secs / 1e6 : 0);
    if (opt.mode == M_BROADCAST)
      printf(",\"deliveries_per_s\":%.0f,\"broadcasts\":%" PRIu64, rate,
             b_done);
  }
  if (opt.mode == M_HANDSHAKE)
    printf(",\"handshakes\":%" PRIu64 ",\"handshakes_per_s\":%.0f",
           st.handshakes, secs > 0 ? (double)st.handshakes / secs : 0);
  if (opt.mode != M_IDLE)
    printf(",\"lat_p50_us\":%.1f,\"lat_p99_us\":%.1f,\"lat_p999_us\":%.1f,"
           "\"lat_max_us\":%.1f",
           h_percentile_us(50), h_percentile_us(99), h_percentile_us(99.9),
           h_percentile_us(100));
  if (opt.flood_conns) {
    double fmsgs = opt.raw ? (double)fl.in_msgs / opt.flood_size : (double)fl.in_msgs;
    printf(",\"flood_conns\":%d,\"flood_size\":%d,\"flood_window\":%d,"
           "\"flood_msgs_per_s\":%.0f,"
           "\"flood_mb_per_s\":%.2f,\"flood_echo_msgs_per_s\":%.0f,"
           "\"flood_echo_mb_per_s\":%.2f,\"flood_closed\":%" PRIu64,
           opt.flood_conns, opt.flood_size, opt.flood_window,
           secs > 0 ? (double)fl.out_msgs / secs : 0,
           secs > 0 ? (double)fl.out_bytes / secs / 1e6 : 0,
           secs > 0 ? fmsgs / secs : 0,
           secs > 0 ? (double)fl.in_bytes / secs / 1e6 : 0, fl.closed);
  }
  if (opt.mode == M_IDLE) {
    printf(",\"open\":%d,\"rss_before_kb\":%ld,\"rss_after_kb\":%ld", idle_ready,
           st.rss_before_kb, st.rss_after_kb);
    if (idle_ready > 0 && st.rss_after_kb > 0 && st.rss_before_kb > 0)
      printf(",\"rss_per_conn_b\":%.0f",
             (double)(st.rss_after_kb - st.rss_before_kb) * 1024.0 /
                 idle_ready);
  }
  if (secs > 0) {
    printf(",\"client_cpu_pct\":%.0f",
           (st.cpu_cli_end - st.cpu_cli_start) / secs * 100);
    if (opt.pid && st.cpu_srv_start >= 0 && st.cpu_srv_end >= 0) {
      double tck = (double)sysconf(_SC_CLK_TCK);
      double cs = (double)(st.cpu_srv_end - st.cpu_srv_start) / tck;
      printf(",\"server_cpu_pct\":%.0f,\"server_cpu_s\":%.2f", cs / secs * 100,
             cs);
      if (st.msgs)
        printf(",\"server_cpu_s_per_mmsg\":%.3f", cs / ((double)st.msgs / 1e6));
      printf(",\"server_threads_cpu_pct\":[");
      int first = 1;
      for (int i = 0; i < st.nthr; i++) {
        if (st.thr_start[i] < 0 || st.thr_end[i] < 0)
          continue;
        printf("%s%.0f", first ? "" : ",",
               (double)(st.thr_end[i] - st.thr_start[i]) / tck / secs * 100);
        first = 0;
      }
      printf("]");
    }
    printf(",\"client_cpu_s\":%.2f", st.cpu_cli_end - st.cpu_cli_start);
    if (st.cpu_all_start >= 0 && st.cpu_all_end >= 0) {
      /* Everything else that ran meanwhile (other processes, kernel
       * threads), in % of one CPU: the noise of this sample. */
      double all = (double)(st.cpu_all_end - st.cpu_all_start) /
                   (double)sysconf(_SC_CLK_TCK);
      double others = all - (st.cpu_cli_end - st.cpu_cli_start);
      if (opt.pid && st.cpu_srv_start >= 0 && st.cpu_srv_end >= 0)
        others -= (double)(st.cpu_srv_end - st.cpu_srv_start) /
                  (double)sysconf(_SC_CLK_TCK);
      printf(",\"machine_cpu_pct\":%.0f,\"others_cpu_pct\":%.0f", all / secs * 100,
             others > 0 ? others / secs * 100 : 0.0);
    }
  }
  printf(",\"errors\":%" PRIu64 ",\"conn_errors\":%" PRIu64
         ",\"mismatches\":%" PRIu64 ",\"closed_by_server\":%" PRIu64,
         st.errors, st.conn_errors, st.mismatches, st.closed);
  if (st.first_error[0]) {
    printf(",\"first_error\":\"");
    for (const char *p = st.first_error; *p; p++)
      if (*p == '"' || *p == '\\')
        printf("\\%c", *p);
      else if ((unsigned char)*p >= 0x20)
        putchar(*p);
    printf("\"");
  }
  printf("}\n");
  fflush(stdout);
}

static void finish(void) {
  if (stopping)
    return;
  if (measuring)
    measure_end();
  stopping = 1;
  uv_timer_stop(&t_phase);
  uv_timer_stop(&t_guard);
  print_json();
  /* Reset every connection: no TIME_WAIT piles up across runs. */
  for (int i = 0; i < nconns; i++)
    conn_close(&conns[i], 1);
  uv_close((uv_handle_t *)&t_phase, NULL);
  uv_close((uv_handle_t *)&t_guard, NULL);
  if (opt.flood_conns)
    uv_close((uv_handle_t *)&t_resume, NULL);
  if (rx_ready)
    uv_close((uv_handle_t *)&rx_poll, NULL);
}

/* ---- main ---------------------------------------------------------------- */

static void usage(void) {
  fprintf(stderr,
          "usage: loadgen [--mode echo|handshake|idle|broadcast] [--proto "
          "ws|raw]\n"
          "  [--host H] [--port P] [--path /] [--conns N] [--window W] "
          "[--size S]\n"
          "  [--duration T] [--warmup T] [--messages M] [--receivers R]\n"
          "  [--concurrency C] [--hold T] [--text] [--pid SERVER_PID] "
          "[--label L]\n"
          "  [--flood-conns F] [--flood-size S] [--flood-window W]   (echo "
          "mode)\n"
          "  [--rooms R]   (echo, idle: connection i asks for PATH?room=i%%R)\n"
          "  [--tls]       (echo, idle, handshake: wss)\n"
          "  [--rx-libuv]  (no io_uring: broadcast receivers read, and echo\n"
          "                connections read and write, with libuv)\n");
  exit(1);
}

int main(int argc, char **argv) {
  static const struct option lo[] = {
      {"mode", 1, 0, 'm'},     {"proto", 1, 0, 'P'},
      {"host", 1, 0, 'h'},     {"port", 1, 0, 'p'},
      {"path", 1, 0, 'u'},     {"conns", 1, 0, 'c'},
      {"window", 1, 0, 'w'},   {"size", 1, 0, 's'},
      {"duration", 1, 0, 'd'}, {"warmup", 1, 0, 'W'},
      {"messages", 1, 0, 'M'}, {"receivers", 1, 0, 'r'},
      {"concurrency", 1, 0, 'C'}, {"hold", 1, 0, 'H'},
      {"text", 0, 0, 't'},     {"pid", 1, 0, 'i'},
      {"label", 1, 0, 'l'},    {"setup-timeout", 1, 0, 'T'},
      {"flood-conns", 1, 0, 'F'}, {"flood-size", 1, 0, 'S'},
      {"flood-window", 1, 0, 'X'}, {"rooms", 1, 0, 'R'},
      {"tls", 0, 0, 'L'}, {"rx-libuv", 0, 0, 'U'},
      {"help", 0, 0, '?'},     {0, 0, 0, 0}};
  int ch;
  while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    switch (ch) {
    case 'm':
      if (!strcmp(optarg, "echo"))
        opt.mode = M_ECHO;
      else if (!strcmp(optarg, "handshake"))
        opt.mode = M_HANDSHAKE;
      else if (!strcmp(optarg, "idle"))
        opt.mode = M_IDLE;
      else if (!strcmp(optarg, "broadcast"))
        opt.mode = M_BROADCAST;
      else
        usage();
      break;
    case 'P':
      opt.raw = !strcmp(optarg, "raw");
      break;
    case 'h': opt.host = optarg; break;
    case 'p': opt.port = atoi(optarg); break;
    case 'u': opt.path = optarg; break;
    case 'c': opt.conns = atoi(optarg); break;
    case 'w': opt.window = atoi(optarg); break;
    case 's': opt.size = atoi(optarg); break;
    case 'd': opt.duration = atof(optarg); break;
    case 'W': opt.warmup = atof(optarg); break;
    case 'M': opt.messages = strtoull(optarg, NULL, 10); break;
    case 'r': opt.receivers = atoi(optarg); break;
    case 'C': opt.concurrency = atoi(optarg); break;
    case 'H': opt.hold = atof(optarg); break;
    case 't': opt.text = 1; break;
    case 'i': opt.pid = atoi(optarg); break;
    case 'l': opt.label = optarg; break;
    case 'T': opt.setup_timeout = atof(optarg); break;
    case 'F': opt.flood_conns = atoi(optarg); break;
    case 'S': opt.flood_size = atoi(optarg); break;
    case 'X': opt.flood_window = atoi(optarg); break;
    case 'R': opt.rooms = atoi(optarg); break;
    case 'L': opt.tls = 1; break;
    case 'U': opt.rx_libuv = 1; break;
    default: usage();
    }
  }
  if (opt.conns < 1 || opt.window < 1 || opt.size < 1 || opt.size > (1 << 20) ||
      opt.receivers < 1 || opt.concurrency < 1 || opt.duration <= 0 ||
      opt.warmup < 0 || (opt.raw && opt.mode == M_BROADCAST) ||
      opt.flood_conns < 0 || (opt.flood_conns && opt.mode != M_ECHO) ||
      opt.flood_size < 1 || opt.flood_size > (1 << 20) || opt.flood_window < 0 ||
      opt.rooms < 0 || (opt.rooms && opt.mode != M_ECHO && opt.mode != M_IDLE) ||
      (opt.tls && (opt.raw || opt.flood_conns || opt.mode == M_BROADCAST)))
    usage();
  if (opt.tls) {
    static const unsigned char alpn[] = "\x08http/1.1";
    tls_ctx = SSL_CTX_new(TLS_client_method());
    if (!tls_ctx || SSL_CTX_set_alpn_protos(tls_ctx, alpn, sizeof alpn - 1) != 0) {
      fprintf(stderr, "loadgen: cannot make a TLS context\n");
      return 1;
    }
    SSL_CTX_set_verify(tls_ctx, SSL_VERIFY_NONE, NULL);
    SSL_CTX_set_session_cache_mode(tls_ctx, SSL_SESS_CACHE_OFF);
  }
  if (!opt.flood_window) {
    opt.flood_window = (2 << 20) / opt.flood_size;
    if (opt.flood_window > 3000)
      opt.flood_window = 3000;
    if (opt.flood_window < 1)
      opt.flood_window = 1;
  }
  if (opt.mode == M_BROADCAST)
    opt.text = 1;

  /* Enough descriptors for every connection. */
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  rng ^= (uint32_t)getpid() * 2654435761u;
  if (!rng)
    rng = 1;

  pat = payload_pattern((size_t)opt.size);

  nconns = opt.mode == M_BROADCAST  ? opt.receivers + 1
           : opt.mode == M_HANDSHAKE ? opt.concurrency
                                     : opt.conns + opt.flood_conns;
  conns = calloc((size_t)nconns, sizeof *conns);
  uint64_t *ts = calloc((size_t)nconns * (size_t)opt.window, sizeof *ts);
  if (!conns || !ts || !pat) {
    fprintf(stderr, "loadgen: out of memory\n");
    return 1;
  }
  for (int i = 0; i < nconns; i++) {
    conns[i].id = i;
    conns[i].ts = ts + (size_t)i * (size_t)opt.window;
    conns[i].flood = opt.mode == M_ECHO && i >= opt.conns;
  }
  if (opt.flood_conns && flood_build() != 0) {
    fprintf(stderr, "loadgen: out of memory\n");
    return 1;
  }
  if (opt.mode == M_BROADCAST) {
    conns[opt.receivers].is_sender = 1;
    b_cnt = calloc((size_t)opt.window, sizeof *b_cnt);
    b_ts = calloc((size_t)opt.window, sizeof *b_ts);
  }

  loop = uv_default_loop();
  uv_timer_init(loop, &t_phase);
  uv_timer_init(loop, &t_guard);
  if (((opt.mode == M_BROADCAST && !opt.raw) ||
       (opt.mode == M_ECHO && !opt.tls)) &&
      !opt.rx_libuv && rx_init() != 0) {
    fprintf(stderr, "loadgen: io_uring unavailable, sockets read and written "
                    "with libuv\n");
    rx_ready = 0;
  }
  if (opt.flood_conns) {
    uv_prepare_init(loop, &t_resume);
    uv_prepare_start(&t_resume, on_resume);
    uv_unref((uv_handle_t *)&t_resume);
  }

  if (opt.mode == M_HANDSHAKE) {
    measure_begin();
    phase = 1;
    uv_timer_start(&t_phase, on_phase, (uint64_t)(opt.duration * 1000), 0);
    for (int i = 0; i < nconns; i++)
      conn_start(&conns[i]);
  } else {
    if (opt.mode == M_IDLE) {
      if (opt.pid)
        st.rss_before_kb = proc_rss_kb(opt.pid);
      uv_timer_start(&t_phase, on_idle_poll, 50, 50);
    }
    uv_timer_start(&t_guard, on_guard, (uint64_t)(opt.setup_timeout * 1000),
                   0);
    open_more();
  }
  uv_run(loop, UV_RUN_DEFAULT);
  if (!stopping)
    finish();
  return 0;
}
