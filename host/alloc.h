/* alloc.h - the host's allocator, replaceable so tests can fail the Nth
 * allocation (the role of uv_replace_allocator / lua_Alloc). */
#ifndef GC_ALLOC_H
#define GC_ALLOC_H

#include <stddef.h>

void *gc_malloc(size_t size);
void *gc_calloc(size_t count, size_t size);
void *gc_realloc(void *ptr, size_t size);
void gc_free(void *ptr);
char *gc_strdup(const char *s);

/* Replaces the allocator; NULL functions restore libc's. Not thread-safe:
 * call before any loop runs. */
void gc_alloc_set(void *(*realloc_fn)(void *, size_t), void (*free_fn)(void *));

#endif
