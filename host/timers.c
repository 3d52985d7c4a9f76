/* timers.c - see timers.h. */
#include "timers.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"

static int timer_less(const struct gc_timer *a, const struct gc_timer *b) {
  return a->due < b->due || (a->due == b->due && a->seq < b->seq);
}

static void heap_set(struct gc_timers *t, size_t i, struct gc_timer *tm) {
  t->heap[i] = tm;
  tm->idx = i;
}

static void heap_up(struct gc_timers *t, size_t i) {
  struct gc_timer *tm = t->heap[i];
  while (i > 0) {
    size_t p = (i - 1) / 2;
    if (!timer_less(tm, t->heap[p]))
      break;
    heap_set(t, i, t->heap[p]);
    i = p;
  }
  heap_set(t, i, tm);
}

static void heap_down(struct gc_timers *t, size_t i) {
  struct gc_timer *tm = t->heap[i];
  for (;;) {
    size_t l = 2 * i + 1, r = l + 1, m = i;
    const struct gc_timer *best = tm;
    if (l < t->count && timer_less(t->heap[l], best)) {
      m = l;
      best = t->heap[l];
    }
    if (r < t->count && timer_less(t->heap[r], best))
      m = r;
    if (m == i)
      break;
    heap_set(t, i, t->heap[m]);
    i = m;
  }
  heap_set(t, i, tm);
}

static void heap_remove(struct gc_timers *t, struct gc_timer *tm) {
  size_t i = tm->idx;
  struct gc_timer *last = t->heap[--t->count];
  if (last != tm) {
    heap_set(t, i, last);
    heap_up(t, i);
    heap_down(t, last->idx);
  }
}

static void heap_push(struct gc_timers *t, struct gc_timer *tm) {
  tm->seq = t->seq++;
  heap_set(t, t->count++, tm);
  heap_up(t, tm->idx);
}

void gc_timers_init(struct gc_timers *t) {
  memset(t, 0, sizeof *t);
  gc_handle_table_init(&t->ids);
}

void gc_timers_free(struct gc_timers *t) {
  for (size_t i = 0; i < t->count; i++)
    gc_free(t->heap[i]);
  gc_free(t->heap);
  gc_handle_table_free(&t->ids);
  memset(t, 0, sizeof *t);
}

int gc_timers_start(struct gc_timers *t, int64_t now, int64_t ms, int64_t repeat,
                    gc_timer_cb cb, void *ctx, intptr_t arg, intptr_t *id) {
  if (!cb || ms < 0 || repeat < 0 || !id)
    return EINVAL;
  if (t->count == t->cap) {
    size_t cap = t->cap ? t->cap * 2 : 16;
    struct gc_timer **h = gc_realloc(t->heap, cap * sizeof *h);
    if (!h)
      return ENOMEM;
    t->heap = h;
    t->cap = cap;
  }
  struct gc_timer *tm = gc_calloc(1, sizeof *tm);
  if (!tm)
    return ENOMEM;
  int rc = gc_handle_table_add(&t->ids, tm, &tm->id);
  if (rc) {
    gc_free(tm);
    return rc;
  }
  /* A timer started by a callback sorts after every timer still due in
   * the run, so the run can stop at the first one it must not fire. */
  if (t->running && now < t->run_now)
    now = t->run_now;
  tm->due = now + ms;
  tm->repeat = repeat;
  tm->cb = cb;
  tm->ctx = ctx;
  tm->arg = arg;
  heap_push(t, tm);
  *id = tm->id;
  return 0;
}

int gc_timers_stop(struct gc_timers *t, intptr_t id) {
  struct gc_timer *tm = gc_handle_table_get(&t->ids, id);
  if (!tm)
    return EINVAL;
  heap_remove(t, tm);
  (void)gc_handle_table_remove(&t->ids, id); /* cannot fail: just resolved */
  gc_free(tm);
  return 0;
}

int64_t gc_timers_next_due(const struct gc_timers *t) {
  return t->count ? t->heap[0]->due : -1;
}

size_t gc_timers_run(struct gc_timers *t, int64_t now) {
  /* Only timers queued before the run fire in it (libuv keeps a ready
   * queue for the same reason): one started or re-queued by a callback
   * gets a seq >= 'limit'. Those are never due before 'now', so the first
   * of them at the top of the heap means no older timer is still due. */
  uint64_t limit = t->seq;
  size_t ran = 0;
  t->running = 1;
  t->run_now = now;
  while (t->count && t->heap[0]->due <= now && t->heap[0]->seq < limit) {
    struct gc_timer *tm = t->heap[0];
    gc_timer_cb cb = tm->cb;
    void *ctx = tm->ctx;
    intptr_t arg = tm->arg;
    heap_remove(t, tm);
    if (tm->repeat > 0) {
      /* Re-queue before the call, so the callback can stop its own timer.
       * In real time a stall costs one late firing, not a burst. */
      tm->due += tm->repeat;
      if (tm->due <= now && !t->exact_steps)
        tm->due = now + tm->repeat;
      heap_push(t, tm);
    } else {
      (void)gc_handle_table_remove(&t->ids, tm->id);
      gc_free(tm);
    }
    cb(ctx, arg);
    ran++;
  }
  t->running = 0;
  return ran;
}
