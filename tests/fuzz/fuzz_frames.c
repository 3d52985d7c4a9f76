/* libFuzzer target: the frame input path of a real connection. An
 * embedded host (host/embed.h) runs the native echo adapter; one in-memory
 * client completes the upgrade, then the input is fed as its bytes, in
 * chunks whose sizes come from the input, and the client vanishes. The
 * connection table, queues, wslay, limits and close paths all run.
 *
 * Input: [n] then 1 + n % 64 bytes for the client, again and again.
 * The config: RED max_msg_size 65536 (a fragmented message is charged
 * GC_WS_FRAGMENT_COST per fragment), msg_per_second 1000 (control frames
 * count). gc_fuzz_outcome() tells replay.c what the server did with the
 * input, checked against corpus/frames.expect: the code of the first close
 * frame it sent, "drop" (it closed without one before the input ended) or
 * "open" (still open when the input ended and the client vanished). */
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
static uint8_t *out; /* what the server wrote for the current input */
static size_t out_len, out_cap;
static int out_lost;

static void on_data(void *ud, const uint8_t *d, size_t n) {
  (void)ud;
  if (out_len + n > out_cap) {
    size_t cap = out_cap ? out_cap : 4096;
    while (cap < out_len + n)
      cap *= 2;
    uint8_t *p = realloc(out, cap);
    if (!p) {
      out_lost = 1;
      return;
    }
    out = p;
    out_cap = cap;
  }
  memcpy(out + out_len, d, n);
  out_len += n;
}
static void on_close(void *ud) { (void)ud; gone = 1; }

/* The first close frame's code in what the server wrote after its 101
 * (1005 when it has none), or -1. */
static int first_close_code(void) {
  size_t i = 0;
  for (; i + 3 < out_len; i++)
    if (!memcmp(out + i, "\r\n\r\n", 4))
      break;
  if (i + 3 >= out_len)
    return -1;
  i += 4;
  while (i + 2 <= out_len) {
    int op = out[i] & 0x0f;
    uint64_t len = out[i + 1] & 0x7f;
    size_t off = i + 2;
    if (len == 126) {
      if (off + 2 > out_len)
        return -1;
      len = (uint64_t)out[off] << 8 | out[off + 1];
      off += 2;
    } else if (len == 127) {
      if (off + 8 > out_len)
        return -1;
      len = 0;
      for (int k = 0; k < 8; k++)
        len = len << 8 | out[off + k];
      off += 8;
    }
    if (op == 8)
      return len >= 2 && off + 2 <= out_len ? (out[off] << 8 | out[off + 1]) : 1005;
    if (len > out_len - off)
      return -1;
    i = off + (size_t)len;
  }
  return -1;
}

static char outcome[16];
const char *gc_fuzz_outcome(void);
const char *gc_fuzz_outcome(void) { return outcome; }
static const struct gc_mem_ops ops = {on_data, on_close, NULL, NULL};

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
  out_len = 0;
  out_lost = 0;
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
  int open_at_end = !gone;
  if (!gone)
    gc_host_eof(host, c);
  int code = first_close_code();
  if (out_lost)
    snprintf(outcome, sizeof outcome, "?");
  else if (code >= 0)
    snprintf(outcome, sizeof outcome, "%d", code);
  else
    snprintf(outcome, sizeof outcome, "%s", open_at_end ? "open" : "drop");
  gc_host_advance(host, 100000); /* close deadlines and timers run out */
  return 0;
}
