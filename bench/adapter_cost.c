/* adapter_cost.c - an adapter's own cost per echoed message, without
 * sockets: the adapter library is dlopened as gcs does, one application is
 * loaded, N connections are opened, and messages are handed over as the
 * host's read and write paths do: for one connection after the other, a
 * window of W messages to on_message (one read), then on_message_sent for
 * each message it queued (one write). The host side is a stub:
 * connectionAddMessage copies the payload into a scratch buffer and
 * remembers the message for its report.
 *
 * --evict KB touches KB of other memory before each read, as the kernel's
 * network path does between two reads of a real server: the adapter then
 * pays for its working set coming back into the caches, which the end-to-
 * end figures include and a hot loop hides.
 *
 * The end-to-end echo rows are about three quarters kernel and host, and
 * this machine's noise is larger than most changes to the Lua path; this
 * measures that path alone, so two builds run in alternation tell a
 * change from the noise. Payloads are the load generator's: N bytes at 251
 * offsets of one printable pattern.
 *
 * usage: adapter_cost LIBRARY TYPE FILE [--size 32] [--conns 100]
 *                     [--window 16] [--evict 0] [--seconds 2]
 *   LIBRARY  libgc_lua.so or a native adapter (libecho.so)
 *   TYPE     "lua" or the native application type ("echo")
 *   FILE     the script, or "" for a native adapter
 * prints one JSON line: messages, seconds, ns_per_msg. */
#include <dlfcn.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <game-carrier/server.h>

#include "payload.h"

#define MAX_CONNS 10000
#define MAX_PENDING 4096

static struct {
  size_t sends, bytes;
  size_t npending; /* sends not yet reported */
  GCT_INTPTR cookie[MAX_PENDING];
  size_t len[MAX_PENDING];
  char scratch[65536];
} host;

static GCT_INT stub_get_opt(GCT_CSTR name, GCT_INT type, GCT_PTR value) {
  (void)name, (void)type, (void)value;
  return ENOENT;
}

static GCT_INT stub_add_message(GCT_INTPTR handle, GCT_PTR data, GCT_SIZE len,
                                GCT_INTPTR cookie) {
  (void)handle;
  if (len > sizeof host.scratch || host.npending == MAX_PENDING)
    return ENOBUFS;
  memcpy(host.scratch, data, len);
  host.sends++;
  host.bytes += len;
  host.cookie[host.npending] = cookie;
  host.len[host.npending++] = len;
  return 0;
}

static GCT_INT stub_close(GCT_INTPTR handle, GCT_INT reason) {
  (void)handle, (void)reason;
  return 0;
}

static GCT_INT stub_set_timer(GCT_INTPTR handle, GCT_INT ms) {
  (void)handle, (void)ms;
  return 0;
}

static void stub_log(GCT_INT level, GCT_CPTR msg) {
  if (level & (GCL_ERR | GCL_WARN))
    fprintf(stderr, "adapter_cost: %s\n", (const char *)msg);
}

static struct core_api api = {
    .getOpt = stub_get_opt,
    .connectionAddMessage = stub_add_message,
    .connectionClose = stub_close,
    .connectionSetTimer = stub_set_timer,
    .logMessage = stub_log,
};

static void *resolve(void *dl, const char *name) {
  void *p = dlsym(dl, name);
  if (p == NULL) {
    fprintf(stderr, "adapter_cost: %s: no %s\n", dlerror(), name);
    exit(1);
  }
  return p;
}

static double now_s(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: adapter_cost LIBRARY TYPE FILE [--size N] "
                    "[--conns N] [--window N] [--evict KB] [--seconds S]\n");
    return 2;
  }
  size_t size = 32;
  int conns = 100, window = 16;
  size_t evict = 0;
  double seconds = 2;
  for (int i = 4; i + 1 < argc; i += 2) {
    if (strcmp(argv[i], "--size") == 0)
      size = strtoul(argv[i + 1], NULL, 10);
    else if (strcmp(argv[i], "--conns") == 0)
      conns = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--window") == 0)
      window = atoi(argv[i + 1]);
    else if (strcmp(argv[i], "--evict") == 0)
      evict = strtoul(argv[i + 1], NULL, 10) << 10;
    else if (strcmp(argv[i], "--seconds") == 0)
      seconds = atof(argv[i + 1]);
    else {
      fprintf(stderr, "adapter_cost: unknown option %s\n", argv[i]);
      return 2;
    }
  }
  if (conns < 1 || conns > MAX_CONNS || size < 1 ||
      size > sizeof host.scratch || window < 1 || window > MAX_PENDING ||
      evict > ((size_t)1 << 30) || seconds <= 0) {
    fprintf(stderr, "adapter_cost: bad --size, --conns, --window, --evict "
                    "or --seconds\n");
    return 2;
  }

  void *dl = dlopen(argv[1], RTLD_NOW | RTLD_LOCAL);
  if (dl == NULL) {
    fprintf(stderr, "adapter_cost: %s\n", dlerror());
    return 1;
  }
  gc_adapter_initialize_fn init = resolve(dl, "adapter_initialize");
  gc_adapter_finalize_fn fini = dlsym(dl, "adapter_finalize");
  gc_application_initialize_fn app_init = dlsym(dl, "application_initialize");
  gc_on_connect_fn connect_fn = resolve(dl, "on_connect");
  gc_on_disconnect_fn disconnect_fn = resolve(dl, "on_disconnect");
  gc_on_message_fn message_fn = resolve(dl, "on_message");
  gc_on_message_sent_fn sent_fn = dlsym(dl, "on_message_sent");
  if (init(0, &api, "") != 0 ||
      (app_init && app_init(0, "bench", argv[2], argv[3]) != 0)) {
    fprintf(stderr, "adapter_cost: the adapter refused to start\n");
    return 1;
  }

  /* The load generator's payloads. */
  uint8_t *pat = payload_pattern(size);
  GCT_INTPTR *user = calloc((size_t)conns, sizeof *user);
  volatile unsigned char *junk = evict ? calloc(evict, 1) : NULL;
  if (pat == NULL || user == NULL || (evict && junk == NULL)) {
    fprintf(stderr, "adapter_cost: out of memory\n");
    return 1;
  }
  for (int i = 0; i < conns; i++) {
    user[i] = connect_fn(0, (GCT_INTPTR)(i + 1), GC_PROTOCOL_WS, "127.0.0.1",
                         40000 + i, "127.0.0.1", 7681, "/");
    if (user[i] == GC_DROP_CONNECTION || user[i] == 0) {
      fprintf(stderr, "adapter_cost: connection %d refused\n", i);
      return 1;
    }
  }

  /* Rounds of one read and one write per connection, until the time is
   * up; message k of connection i is the load generator's. */
  size_t msgs = 0;
  uint64_t *k = calloc((size_t)conns, sizeof *k);
  if (k == NULL) {
    fprintf(stderr, "adapter_cost: out of memory\n");
    return 1;
  }
  double t0 = now_s(), t1 = t0;
  while (t1 - t0 < seconds) {
    for (int i = 0; i < conns; i++) {
      for (size_t b = 0; b < evict; b += 64)
        junk[b]++;
      for (int w = 0; w < window; w++, k[i]++)
        message_fn(user[i], pat + payload_offset(k[i], i), size);
      for (size_t m = 0; m < host.npending && sent_fn; m++)
        sent_fn(user[i], host.cookie[m], host.len[m], 0);
      host.npending = 0;
    }
    msgs += (size_t)conns * (size_t)window;
    t1 = now_s();
  }
  if (host.sends != msgs || host.bytes != msgs * size) {
    fprintf(stderr, "adapter_cost: %zu messages, %zu echoes\n", msgs,
            host.sends);
    return 1;
  }
  for (int i = 0; i < conns; i++)
    disconnect_fn(user[i]);
  if (fini)
    fini(0);
  printf("{\"library\":\"%s\",\"size\":%zu,\"conns\":%d,\"window\":%d,"
         "\"evict_kb\":%zu,\"messages\":%zu,\"seconds\":%.3f,"
         "\"ns_per_msg\":%.1f}\n",
         argv[1], size, conns, window, evict >> 10, msgs, t1 - t0,
         (t1 - t0) * 1e9 / (double)msgs);
  free((void *)junk);
  free(k);
  free(user);
  free(pat);
  dlclose(dl);
  return 0;
}
