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
#include <getopt.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>
#include <uv.h>

#include "loadgen.h"
#include "payload.h"

/* ---- options ------------------------------------------------------------- */

struct options opt = {.mode = M_ECHO,
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

/* ---- state --------------------------------------------------------------- */

uv_loop_t *loop;
struct conn *conns;
int nconns;
int next_to_open;
int pending;
int opened;
int idle_ready;
int stopping;
int measuring;
uint64_t now_ns;
uint8_t *pat;
static uint32_t rng = 2463534242u;

/* broadcast */
static uint64_t b_sent;
uint64_t b_done;
static uint32_t *b_cnt;   /* deliveries of message k at b_cnt[k % window] */
static uint64_t *b_ts;    /* send time of message k */
static const char *b_prefix = "s: ";
static uint32_t b_need; /* receivers open when the traffic started */
int started;

static uv_timer_t t_phase, t_guard;

void error_at(struct conn *c, const char *fmt, ...) {
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

uint32_t xorshift(void) {
  rng ^= rng << 13;
  rng ^= rng >> 17;
  rng ^= rng << 5;
  return rng;
}

/* ---- sending ------------------------------------------------------------- */

void send_message(struct conn *c) {
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

static void broadcast_fill(void);

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

/* An echo came back complete and correct. */
void echo_done(struct conn *c) {
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

void on_ws_message(struct conn *c, const uint8_t *p, size_t len) {
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

/* ---- phases -------------------------------------------------------------- */

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

void start_traffic(void) {
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

void finish(void) {
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
  if (opt.tls && tls_init() != 0) {
    fprintf(stderr, "loadgen: cannot make a TLS context\n");
    return 1;
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
