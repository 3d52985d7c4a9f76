/* libFuzzer target: the frame input path of a real connection. An
 * embedded host (host/embed.h) runs the native echo adapter; one in-memory
 * client completes the upgrade, then the input is fed as its bytes, in
 * chunks whose sizes come from the input, and the client vanishes. The
 * connection table, queues, wslay, limits and close paths all run. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "embed.h"
#include "log.h"

#ifndef GC_BUILD_DIR
#define GC_BUILD_DIR "."
#endif

static struct gc_host *host;
static int gone;

static void on_data(void *ud, const uint8_t *d, size_t n) { (void)ud, (void)d, (void)n; }
static void on_close(void *ud) { (void)ud; gone = 1; }
static const struct gc_mem_ops ops = {on_data, on_close, NULL};

static void host_start(void) {
  char cfg[1024], err[512];
  snprintf(cfg, sizeof cfg,
           "{\"adapters\":[{\"type\":\"native\",\"dir\":\"%s\",\"name\":\"echo\","
           "\"apps\":[{\"name\":\"echo\"}]}],"
           "\"vhosts\":[{\"ip\":\"127.0.0.1\",\"port\":7681,\"app\":\"echo\"}],"
           "\"conn_critical\":{\"max_msg_size\":65536,\"msg_per_second\":1000},"
           "\"logging\":{\"level\":\"ERR\"}}",
           getenv("GC_BUILD_DIR") ? getenv("GC_BUILD_DIR") : GC_BUILD_DIR);
  gc_log_set_stderr(0);
  if (gc_host_create(cfg, "fuzz", NULL, &host, err, sizeof err) != 0) {
    fprintf(stderr, "fuzz_frames: %s\n", err);
    abort();
  }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  static const char req[] =
      "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
      "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
  if (!host)
    host_start();
  gone = 0;
  struct gc_conn *c = gc_host_connect(host, 0, "127.0.0.1", 1, &ops, NULL);
  if (!c)
    abort();
  gc_host_input(host, c, req, sizeof req - 1);
  size_t off = 0;
  while (off < size && !gone) {
    size_t chunk = 1 + data[off] % 64;
    off++;
    if (chunk > size - off)
      chunk = size - off;
    gc_host_input(host, c, data + off, chunk);
    off += chunk;
  }
  if (!gone)
    gc_host_eof(host, c);
  gc_host_advance(host, 100000); /* close deadlines and timers run out */
  return 0;
}
