/* payload.h - the load generator's payloads, shared with adapter_cost so
 * that both hand a server the same bytes: message k of connection id is
 * payload_offset(k, id) bytes into one printable pattern (text frames stay
 * valid UTF-8), the message size long. */
#ifndef GC_BENCH_PAYLOAD_H
#define GC_BENCH_PAYLOAD_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

/* The pattern for messages of 'size' bytes, malloc'd (the caller frees
 * it), or NULL. */
static inline uint8_t *payload_pattern(size_t size) {
  size_t len = size + 256;
  uint8_t *p = malloc(len);
  if (p == NULL)
    return NULL;
  uint32_t s = 12345;
  for (size_t i = 0; i < len; i++) {
    s = s * 1103515245u + 12345u;
    p[i] = (uint8_t)('a' + (s >> 16) % 26);
  }
  return p;
}

/* Where message k of connection 'id' starts in the pattern. */
static inline size_t payload_offset(uint64_t k, int id) {
  return (size_t)((k * 7u + (uint64_t)id * 13u) % 251u);
}

#endif
