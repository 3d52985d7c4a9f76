/* Tests host/send_queue.c: frames, iovecs, partial writes, reports. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "send_queue.h"

struct done_log {
  intptr_t cookies[16];
  size_t lens[16];
  int n;
};

static void on_done(void *ctx, const struct gc_msg *m) {
  struct done_log *d = ctx;
  d->cookies[d->n] = m->cookie;
  d->lens[d->n] = m->len;
  d->n++;
}

/* Concatenates what the iovecs point at. */
static size_t gather(const struct gc_send_queue *q, uint8_t *out, size_t max_iov) {
  uv_buf_t iov[64];
  size_t total;
  size_t n = gc_send_queue_iov(q, iov, max_iov, &total);
  size_t off = 0;
  for (size_t i = 0; i < n; i++) {
    memcpy(out + off, iov[i].base, iov[i].len);
    off += iov[i].len;
  }
  assert_int_equal(off, total);
  return off;
}

static void test_frame_headers(void **state) {
  (void)state;
  static uint8_t buf[70000], out[70100];
  memset(buf, 'x', sizeof buf);
  struct { size_t len; size_t hdr; uint8_t b1; } cases[] = {
      {0, 2, 0}, {125, 2, 125}, {126, 4, 126}, {65535, 4, 126}, {65536, 10, 127}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    struct gc_send_queue q;
    gc_send_queue_init(&q);
    assert_int_equal(gc_send_queue_push_frame(&q, buf, cases[i].len, 7), 0);
    assert_int_equal(q.bytes, cases[i].len + cases[i].hdr);
    size_t n = gather(&q, out, 64);
    assert_int_equal(n, cases[i].len + cases[i].hdr);
    assert_int_equal(out[0], 0x82); /* FIN + binary, never masked */
    assert_int_equal(out[1], cases[i].b1);
    if (cases[i].hdr == 4)
      assert_int_equal((out[2] << 8) | out[3], cases[i].len);
    if (cases[i].hdr == 10)
      assert_int_equal(((size_t)out[7] << 16) | ((size_t)out[8] << 8) | out[9],
                       cases[i].len);
    assert_int_equal(gc_ws_header_size(cases[i].len), cases[i].hdr);
    gc_send_queue_clear(&q, NULL, NULL);
  }
}

static void test_partial_writes_report_in_order(void **state) {
  (void)state;
  struct gc_send_queue q;
  gc_send_queue_init(&q);
  struct done_log d = {0};
  assert_int_equal(gc_send_queue_push_raw(&q, "HTTP", 4), 0);
  assert_int_equal(gc_send_queue_push_frame(&q, "hello", 5, 11), 0);
  assert_int_equal(gc_send_queue_push_frame(&q, "world!", 6, 22), 0);
  assert_int_equal(q.count, 3);
  assert_int_equal(q.bytes, 4 + 7 + 8);
  /* 4 raw bytes + 3 bytes of the first frame (2 header + "h"): no report. */
  gc_send_queue_consume(&q, 7, on_done, &d);
  assert_int_equal(d.n, 0);
  uint8_t out[64];
  size_t n = gather(&q, out, 64);
  assert_int_equal(n, 4 + 8);
  assert_memory_equal(out, "ello", 4);
  /* The rest of the first frame and one byte of the second. */
  gc_send_queue_consume(&q, 5, on_done, &d);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.cookies[0], 11);
  assert_int_equal(d.lens[0], 5);
  gc_send_queue_consume(&q, 7, on_done, &d);
  assert_int_equal(d.n, 2);
  assert_int_equal(d.cookies[1], 22);
  assert_null(q.head);
  assert_int_equal(q.bytes, 0);
  assert_int_equal(q.count, 0);
}

static void test_iov_limit(void **state) {
  (void)state;
  struct gc_send_queue q;
  gc_send_queue_init(&q);
  for (int i = 0; i < 10; i++)
    assert_int_equal(gc_send_queue_push_frame(&q, "abc", 3, i), 0);
  uv_buf_t iov[4];
  size_t total;
  assert_int_equal(gc_send_queue_iov(&q, iov, 4, &total), 4);
  /* A header and the payload that follows it are one iovec: four frames
   * of 2 + 3 bytes, each whole in its own. */
  assert_int_equal(total, 20);
  for (int i = 0; i < 4; i++) {
    assert_int_equal(iov[i].len, 5);
    assert_memory_equal(iov[i].base, "\x82\x03" "abc", 5);
  }
  gc_send_queue_clear(&q, NULL, NULL);
}

static void test_clear_reports_everything(void **state) {
  (void)state;
  struct gc_send_queue q;
  gc_send_queue_init(&q);
  struct done_log d = {0};
  assert_int_equal(gc_send_queue_push_frame(&q, "a", 1, 1), 0);
  assert_int_equal(gc_send_queue_push_raw(&q, "ctl", 3), 0);
  assert_int_equal(gc_send_queue_push_frame(&q, "bb", 2, 2), 0);
  gc_send_queue_clear(&q, on_done, &d);
  assert_int_equal(d.n, 2); /* host bytes are never reported */
  assert_int_equal(d.cookies[0], 1);
  assert_int_equal(d.cookies[1], 2);
  assert_null(q.head);
  assert_int_equal(q.bytes, 0);
}

/* A broadcast: one payload, many queues, freed with the last of them. */
static void test_shared_payload(void **state) {
  (void)state;
  struct gc_send_queue a, b;
  gc_send_queue_init(&a);
  gc_send_queue_init(&b);
  struct gc_shared *sh = gc_shared_new("room news", 9);
  assert_non_null(sh);
  sh->refs = 1; /* the broadcaster's own */
  assert_int_equal(gc_send_queue_push_shared(&a, sh, 5), 0);
  assert_int_equal(gc_send_queue_push_shared(&b, sh, 5), 0);
  assert_int_equal(sh->refs, 3);
  gc_shared_release(sh);
  assert_int_equal(sh->refs, 2);
  /* Same bytes, same memory: serialized once. */
  assert_ptr_equal(a.head->data, b.head->data);
  uint8_t out[32];
  assert_int_equal(gather(&a, out, 64), 11);
  assert_memory_equal(out + 2, "room news", 9);
  struct done_log d = {0};
  gc_send_queue_consume(&a, 11, on_done, &d);
  assert_int_equal(d.n, 1);
  assert_int_equal(d.lens[0], 9);
  assert_int_equal(sh->refs, 1);
  gc_send_queue_clear(&b, NULL, NULL); /* frees the payload (ASan checks) */
  /* A payload nobody took is freed by its release. */
  gc_shared_release(gc_shared_new("x", 1));
}

/* Text frames (API 1.2): opcode 0x1, same lengths; a shared payload is
 * text for one queue and binary for another. */
static void test_text_frames(void **state) {
  (void)state;
  static uint8_t buf[300], out[400];
  memset(buf, 'y', sizeof buf);
  struct gc_send_queue q, r;
  gc_send_queue_init(&q);
  gc_send_queue_init(&r);
  assert_int_equal(gc_send_queue_push_frame_as(&q, buf, 300, 1, 1), 0);
  assert_int_equal(gather(&q, out, 64), 304);
  assert_int_equal(out[0], 0x81); /* FIN + text */
  assert_int_equal(out[1], 126);
  assert_int_equal((out[2] << 8) | out[3], 300);
  gc_send_queue_clear(&q, NULL, NULL);
  assert_int_equal(gc_send_queue_push_frame_as(&q, "b", 1, 1, 0), 0);
  assert_int_equal(gather(&q, out, 64), 3);
  assert_int_equal(out[0], 0x82);
  gc_send_queue_clear(&q, NULL, NULL);
  struct gc_shared *sh = gc_shared_new("{}", 2);
  assert_non_null(sh);
  struct gc_msg *t = gc_send_queue_msg_shared(NULL, sh, 0);
  struct gc_msg *b = gc_send_queue_msg_shared(NULL, sh, 0);
  assert_non_null(t);
  assert_non_null(b);
  gc_send_queue_msg_text(t);
  gc_send_queue_append(&q, t);
  gc_send_queue_append(&r, b);
  assert_int_equal(gather(&q, out, 64), 4);
  assert_int_equal(out[0], 0x81);
  assert_int_equal(gather(&r, out, 64), 4);
  assert_int_equal(out[0], 0x82);
  gc_send_queue_clear(&q, NULL, NULL);
  gc_send_queue_clear(&r, NULL, NULL); /* the last reference frees it */
}

/* The loop's message pool: a freed block of a class serves the next
 * message of that class (the same block, no malloc); a payload over the
 * largest class is its own allocation; spares a whole trim period did not
 * use are freed, those it used are kept. */
static void test_message_pool(void **state) {
  (void)state;
  struct gc_msg_pool pool = {0};
  struct gc_send_queue q;
  gc_send_queue_init(&q);
  q.pool = &pool;
  static uint8_t big[4000];
  assert_int_equal(gc_send_queue_push_frame(&q, "small", 5, 1), 0);
  assert_int_equal(gc_send_queue_push_frame(&q, big, 1024, 2), 0);
  assert_int_equal(gc_send_queue_push_frame(&q, big, sizeof big, 3), 0);
  assert_int_equal(gc_send_queue_push_frame(&q, big, 100, 4), 0);
  struct gc_shared *sh = gc_shared_new("shared", 6);
  assert_non_null(sh);
  assert_int_equal(gc_send_queue_push_shared(&q, sh, 5), 0);
  const struct gc_msg *small = q.head, *kib = q.head->next;
  const struct gc_msg *mid = kib->next->next;
  assert_int_equal(small->pool_class, 1); /* 5 B: the bare entry's class */
  assert_int_equal(kib->pool_class, 3);
  assert_int_equal(kib->next->pool_class, 0);
  assert_int_equal(mid->pool_class, 2);
  assert_int_equal(q.tail->pool_class, 1); /* a broadcast's entry */
  gc_send_queue_clear(&q, NULL, NULL);
  assert_int_equal(pool.count[0], 2);
  assert_int_equal(pool.count[1], 1);
  assert_int_equal(pool.count[2], 1);
  /* They became spares during this period: they stay. */
  gc_msg_pool_trim(&pool);
  assert_int_equal(pool.count[0], 2);
  assert_int_equal(pool.count[2], 1);
  const struct gc_msg *spare = pool.spare[0];
  assert_int_equal(gc_send_queue_push_frame(&q, "again", 5, 4), 0);
  assert_ptr_equal(q.head, spare); /* the spare, reused */
  assert_int_equal(pool.count[0], 1);
  gc_send_queue_clear(&q, NULL, NULL);
  /* The small class's spares were taken down to one in this period: one
   * goes; the 1 KiB and 100 B classes' were spare all along: they go. */
  gc_msg_pool_trim(&pool);
  assert_int_equal(pool.count[0], 1);
  assert_int_equal(pool.count[1], 0);
  assert_int_equal(pool.count[2], 0);
  /* A period in which nobody took it: freed too. */
  gc_msg_pool_trim(&pool);
  assert_int_equal(pool.count[0], 0);
  assert_null(pool.spare[0]);
  gc_msg_pool_drain(&pool);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_frame_headers),
      cmocka_unit_test(test_text_frames),
      cmocka_unit_test(test_partial_writes_report_in_order),
      cmocka_unit_test(test_iov_limit),
      cmocka_unit_test(test_clear_reports_everything),
      cmocka_unit_test(test_shared_payload),
      cmocka_unit_test(test_message_pool),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
