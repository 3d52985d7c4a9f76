/* text.h - a growing string for answers built piece by piece (/metrics).
 * An allocation that fails sets 'oom' and later appends do nothing: the
 * caller checks once at the end. */
#ifndef GC_TEXT_H
#define GC_TEXT_H

#include <stddef.h>

struct gc_text {
  char *p; /* NUL-terminated while len > 0; owned */
  size_t len, cap;
  int oom;
};

void gc_text_append(struct gc_text *t, const char *s, size_t n);
void gc_text_printf(struct gc_text *t, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void gc_text_free(struct gc_text *t);

#endif
