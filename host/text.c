/* text.c - see text.h. */
#include "text.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "alloc.h"

static int text_reserve(struct gc_text *t, size_t more) {
  if (t->oom)
    return -1;
  if (t->len + more + 1 <= t->cap)
    return 0;
  size_t cap = t->cap ? t->cap : 256;
  while (cap < t->len + more + 1)
    cap *= 2;
  char *p = gc_realloc(t->p, cap);
  if (!p) {
    t->oom = 1;
    return -1;
  }
  t->p = p;
  t->cap = cap;
  return 0;
}

void gc_text_append(struct gc_text *t, const char *s, size_t n) {
  if (text_reserve(t, n) != 0)
    return;
  memcpy(t->p + t->len, s, n);
  t->len += n;
  t->p[t->len] = '\0';
}

void gc_text_printf(struct gc_text *t, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char small[256];
  int n = vsnprintf(small, sizeof small, fmt, ap);
  va_end(ap);
  if (n < 0) {
    t->oom = 1;
    return;
  }
  if ((size_t)n < sizeof small) {
    gc_text_append(t, small, (size_t)n);
    return;
  }
  if (text_reserve(t, (size_t)n) != 0)
    return;
  va_start(ap, fmt);
  vsnprintf(t->p + t->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  t->len += (size_t)n;
}

void gc_text_free(struct gc_text *t) {
  gc_free(t->p);
  memset(t, 0, sizeof *t);
}
