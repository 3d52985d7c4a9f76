/* Tests host/utf8.c: what a text message may hold (RFC 3629 as RFC 6455
 * requires): valid 1-4 byte sequences; no overlongs, no surrogates, nothing
 * above U+10FFFF, no truncated or stray sequences. Named cases at every
 * alignment, then an exhaustive comparison with a reference decoder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "utf8.h"

/* Checks 'len' bytes alone (in an allocation of exactly that size: ASan
 * sees a read past the end), after 0..15 ASCII bytes (a fast path over
 * words must not care where a sequence starts), followed by continuation
 * bytes (a validator reading past 'len' would take them) and by ASCII. */
static void expect(int want, const char *what, const uint8_t *s, size_t len) {
  uint8_t buf[64];
  assert_true(len + 32 <= sizeof buf);
  uint8_t *exact = test_malloc(len ? len : 1);
  memcpy(exact, s, len);
  if (gc_utf8_valid(exact, len) != want)
    fail_msg("%s: expected %s", what, want ? "valid" : "invalid");
  test_free(exact);
  for (size_t pre = 0; pre < 16; pre++) {
    memset(buf, 'a', sizeof buf);
    memcpy(buf + pre, s, len);
    memset(buf + pre + len, 0x80, sizeof buf - pre - len);
    if (gc_utf8_valid(buf + pre, len) != want || gc_utf8_valid(buf, pre + len) != want)
      fail_msg("%s: expected %s (prefix %zu)", what, want ? "valid" : "invalid", pre);
    memset(buf + pre + len, 'a', sizeof buf - pre - len);
    if (gc_utf8_valid(buf, pre + len + 16) != want)
      fail_msg("%s: expected %s (prefix %zu, ASCII after)", what, want ? "valid" : "invalid", pre);
  }
}
#define VALID(...) do { const uint8_t s_[] = {__VA_ARGS__}; expect(1, #__VA_ARGS__, s_, sizeof s_); } while (0)
#define INVALID(...) do { const uint8_t s_[] = {__VA_ARGS__}; expect(0, #__VA_ARGS__, s_, sizeof s_); } while (0)

static void test_valid_sequences(void **state) {
  (void)state;
  assert_int_equal(gc_utf8_valid((const uint8_t *)"", 0), 1);
  VALID(0x00);                   /* U+0000 */
  VALID(0x7f);                   /* U+007F, the last 1-byte */
  VALID(0xc2, 0x80);             /* U+0080, the first 2-byte */
  VALID(0xc3, 0xa9);             /* é */
  VALID(0xdf, 0xbf);             /* U+07FF */
  VALID(0xe0, 0xa0, 0x80);       /* U+0800, the first 3-byte */
  VALID(0xe2, 0x82, 0xac);       /* € */
  VALID(0xed, 0x9f, 0xbf);       /* U+D7FF, just below the surrogates */
  VALID(0xee, 0x80, 0x80);       /* U+E000, just above them */
  VALID(0xef, 0xbf, 0xbf);       /* U+FFFF */
  VALID(0xf0, 0x90, 0x80, 0x80); /* U+10000, the first 4-byte */
  VALID(0xf0, 0x9f, 0x98, 0x80); /* 😀 */
  VALID(0xf4, 0x8f, 0xbf, 0xbf); /* U+10FFFF, the last code point */
  VALID('h', 0xc3, 0xa9, 'l', 0xe2, 0x82, 0xac, 0xf0, 0x9f, 0x98, 0x80, 'o');
}

static void test_overlongs(void **state) {
  (void)state;
  INVALID(0xc0, 0x80);             /* U+0000 in 2 bytes */
  INVALID(0xc0, 0xaf);             /* '/' in 2 bytes */
  INVALID(0xc1, 0xbf);             /* U+007F in 2 bytes */
  INVALID(0xe0, 0x80, 0x80);       /* U+0000 in 3 */
  INVALID(0xe0, 0x9f, 0xbf);       /* U+07FF in 3 */
  INVALID(0xf0, 0x80, 0x80, 0x80); /* U+0000 in 4 */
  INVALID(0xf0, 0x8f, 0xbf, 0xbf); /* U+FFFF in 4 */
  INVALID(0xf8, 0x88, 0x80, 0x80, 0x80);       /* 5-byte forms */
  INVALID(0xfc, 0x84, 0x80, 0x80, 0x80, 0x80); /* 6-byte forms */
}

static void test_surrogates(void **state) {
  (void)state;
  INVALID(0xed, 0xa0, 0x80); /* U+D800 */
  INVALID(0xed, 0xad, 0xbf); /* U+DB7F */
  INVALID(0xed, 0xb0, 0x80); /* U+DC00 */
  INVALID(0xed, 0xbf, 0xbf); /* U+DFFF */
  INVALID(0xed, 0xa0, 0xbd, 0xed, 0xb8, 0x80); /* a CESU-8 pair for 😀 */
}

static void test_above_max(void **state) {
  (void)state;
  INVALID(0xf4, 0x90, 0x80, 0x80); /* U+110000 */
  INVALID(0xf4, 0xbf, 0xbf, 0xbf);
  INVALID(0xf5, 0x80, 0x80, 0x80);
  INVALID(0xf7, 0xbf, 0xbf, 0xbf); /* U+1FFFFF */
  INVALID(0xfe);
  INVALID(0xff);
}

static void test_truncated_and_stray(void **state) {
  (void)state;
  INVALID(0xc2);             /* a 2-byte lead alone */
  INVALID(0xe2, 0x82);       /* 3-byte, one short */
  INVALID(0xe2);
  INVALID(0xf0, 0x9f, 0x98); /* 4-byte, one short */
  INVALID(0xf0, 0x9f);
  INVALID(0xf0);
  INVALID(0xc2, 'a');        /* cut by an ASCII byte */
  INVALID(0xe2, 0x82, 'a');
  INVALID(0xf0, 0x9f, 0x98, 'a');
  INVALID(0xe2, 0x28, 0xa1); /* a bad second byte */
  INVALID(0xf0, 0x9f, 0x28, 0x80);
  INVALID(0x80);             /* a continuation without a lead */
  INVALID(0xbf);
  INVALID('a', 0x80, 'b');
  INVALID(0xc3, 0xa9, 0xa9); /* one continuation too many */
  INVALID(0xf0, 0x9f, 0x98, 0x80, 0x80);
}

/* The reference: decode by the letter of RFC 3629, section 4. */
static int ref_valid(const uint8_t *s, size_t len) {
  size_t i = 0;
  while (i < len) {
    uint8_t b = s[i];
    size_t n;
    uint32_t cp, min;
    if (b < 0x80) { i++; continue; }
    if (b >= 0xc0 && b < 0xe0) { n = 2; cp = b & 0x1f; min = 0x80; }
    else if (b >= 0xe0 && b < 0xf0) { n = 3; cp = b & 0x0f; min = 0x800; }
    else if (b >= 0xf0 && b < 0xf8) { n = 4; cp = b & 0x07; min = 0x10000; }
    else return 0;
    if (len - i < n)
      return 0;
    for (size_t k = 1; k < n; k++) {
      if ((s[i + k] & 0xc0) != 0x80)
        return 0;
      cp = (cp << 6) | (s[i + k] & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
      return 0;
    i += n;
  }
  return 1;
}

/* Every string of 1, 2 and 3 bytes, and the 4-byte ones over every lead
 * and second byte with the edges of the continuation range after them. */
static void test_exhaustive_against_reference(void **state) {
  (void)state;
  uint8_t s[4];
  long checked = 0;
  for (uint32_t v = 0; v < (1u << 24); v++) {
    s[0] = (uint8_t)(v >> 16), s[1] = (uint8_t)(v >> 8), s[2] = (uint8_t)v;
    for (size_t len = 1; len <= 3; len++) {
      if (len < 3 && (v & ((1u << (8 * (3 - len))) - 1)))
        continue; /* shorter strings once each */
      int want = ref_valid(s, len);
      if (gc_utf8_valid(s, len) != want)
        fail_msg("%02x %02x %02x (len %zu): expected %d", s[0], s[1], s[2], len, want);
      checked++;
    }
  }
  static const uint8_t edges[] = {0x00, 0x7f, 0x80, 0x8f, 0x90, 0x9f, 0xa0, 0xbf, 0xc0, 0xff};
  for (unsigned a = 0xc0; a <= 0xff; a++)
    for (unsigned b = 0; b <= 0xff; b++)
      for (size_t c = 0; c < sizeof edges; c++)
        for (size_t d = 0; d < sizeof edges; d++) {
          s[0] = (uint8_t)a, s[1] = (uint8_t)b, s[2] = edges[c], s[3] = edges[d];
          int want = ref_valid(s, 4);
          if (gc_utf8_valid(s, 4) != want)
            fail_msg("%02x %02x %02x %02x: expected %d", s[0], s[1], s[2], s[3], want);
          checked++;
        }
  assert_true(checked > (1L << 24));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_sequences),
      cmocka_unit_test(test_overlongs),
      cmocka_unit_test(test_surrogates),
      cmocka_unit_test(test_above_max),
      cmocka_unit_test(test_truncated_and_stray),
      cmocka_unit_test(test_exhaustive_against_reference),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
