/* loadgen_stats.c - what the load generator measures and reports: the
 * counters, the latency histogram, CPU and RSS readings from /proc, the
 * measurement window and the JSON line. */
#include <dirent.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "loadgen.h"

struct stats st;

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

void h_record(uint64_t ns) {
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

/* ---- /proc --------------------------------------------------------------- */

long proc_rss_kb(int pid) {
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

/* ---- the measurement window and its report ------------------------------- */

void measure_begin(void) {
  measuring = 1;
  st.t_meas_start = uv_hrtime();
  st.cpu_cli_start = self_cpu_s();
  st.cpu_all_start = machine_busy_ticks();
  if (opt.pid) {
    st.cpu_srv_start = proc_cpu_ticks(opt.pid);
    threads_begin(opt.pid);
  }
}

void measure_end(void) {
  measuring = 0;
  st.t_meas_end = uv_hrtime();
  st.cpu_cli_end = self_cpu_s();
  st.cpu_all_end = machine_busy_ticks();
  if (opt.pid) {
    st.cpu_srv_end = proc_cpu_ticks(opt.pid);
    threads_end(opt.pid);
  }
}

void print_json(void) {
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
