/* libFuzzer target: the upgrade request parser, fed in two pieces split at
 * the first byte of the input (so partial reads are covered too). */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "http_upgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1)
    return 0;
  size_t split = data[0] % (size);
  data++;
  size--;
  if (split > size)
    split = size;
  struct gc_http_req r;
  gc_http_req_init(&r);
  size_t used = 0, used2 = 0;
  int st = gc_http_req_feed(&r, (const char *)data, split, &used);
  if (!st && !r.headers_done)
    st = gc_http_req_feed(&r, (const char *)data + split, size - split, &used2);
  if (!st && r.headers_done) {
    const char *why;
    if (gc_http_req_check(&r, &why) == 0) {
      char accept[29];
      (void)gc_ws_accept_key(r.key, accept);
    }
  }
  return 0;
}
