/* utf8.h - UTF-8 validation of text messages (RFC 6455 8.1 requires it and
 * wslay 1.1 does not do it). */
#ifndef GC_UTF8_H
#define GC_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* 1 when 'len' bytes are well-formed UTF-8 (no overlongs, no surrogates,
 * nothing above U+10FFFF), else 0. */
int gc_utf8_valid(const uint8_t *s, size_t len);

#endif
