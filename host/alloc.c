/* alloc.c - see alloc.h. */
#include "alloc.h"

#include <stdlib.h>
#include <string.h>

static void *(*alloc_realloc)(void *, size_t) = realloc;
static void (*alloc_free)(void *) = free;

void gc_alloc_set(void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *)) {
  alloc_realloc = realloc_fn ? realloc_fn : realloc;
  alloc_free = free_fn ? free_fn : free;
}

void *gc_malloc(size_t size) { return alloc_realloc(NULL, size ? size : 1); }

void *gc_calloc(size_t count, size_t size) {
  if (size && count > (size_t)-1 / size)
    return NULL;
  void *p = gc_malloc(count * size);
  if (p)
    memset(p, 0, count * size);
  return p;
}

void *gc_realloc(void *ptr, size_t size) {
  return alloc_realloc(ptr, size ? size : 1);
}

void gc_free(void *ptr) {
  if (ptr)
    alloc_free(ptr);
}

char *gc_strdup(const char *s) {
  size_t n = strlen(s) + 1;
  char *p = gc_malloc(n);
  if (p)
    memcpy(p, s, n);
  return p;
}
