/* handle_table.c - see handle_table.h. */
#include "handle_table.h"

#include <errno.h>
#include <string.h>

#include "alloc.h"

void gc_handle_table_init(struct gc_handle_table *t) { memset(t, 0, sizeof *t); }

void gc_handle_table_init_tagged(struct gc_handle_table *t, uint8_t tag) {
  memset(t, 0, sizeof *t);
  t->tag = tag;
}

void gc_handle_table_free(struct gc_handle_table *t) {
  uint8_t tag = t->tag;
  gc_free(t->slots);
  memset(t, 0, sizeof *t);
  t->tag = tag;
}

static int table_grow(struct gc_handle_table *t) {
  uint32_t cap = t->cap ? t->cap * 2 : 64;
  if (cap > GC_HANDLE_SLOTS_MAX)
    cap = GC_HANDLE_SLOTS_MAX;
  if (cap <= t->cap)
    return ENOMEM;
  struct gc_handle_slot *s = gc_realloc(t->slots, (size_t)cap * sizeof *s);
  if (!s)
    return ENOMEM;
  /* New slots join the free list in index order. */
  for (uint32_t i = t->cap; i < cap; i++) {
    s[i].ptr = NULL;
    s[i].gen = 1;
    s[i].next_free = i + 1 < cap ? i + 2 : t->free_head;
  }
  t->free_head = t->cap + 1;
  t->slots = s;
  t->cap = cap;
  return 0;
}

int gc_handle_table_add(struct gc_handle_table *t, void *ptr, intptr_t *handle) {
  if (!ptr || !handle)
    return EINVAL;
  if (!t->free_head) {
    int rc = table_grow(t);
    if (rc)
      return rc;
  }
  uint32_t idx = t->free_head - 1;
  struct gc_handle_slot *s = &t->slots[idx];
  t->free_head = s->next_free;
  s->ptr = ptr;
  s->next_free = 0;
  t->used++;
  *handle = (intptr_t)(((uint64_t)s->gen << 32) | ((uint64_t)t->tag << 24) |
                       (uint64_t)(idx + 1));
  return 0;
}

static struct gc_handle_slot *table_slot(const struct gc_handle_table *t,
                                         intptr_t handle) {
  uint64_t h = (uint64_t)handle;
  uint64_t idx = h & GC_HANDLE_SLOTS_MAX;
  uint32_t gen = (uint32_t)(h >> 32);
  if (idx == 0 || idx > t->cap || gc_handle_tag(handle) != t->tag)
    return NULL;
  struct gc_handle_slot *s = &t->slots[idx - 1];
  if (!s->ptr || s->gen != gen)
    return NULL;
  return s;
}

void *gc_handle_table_get(const struct gc_handle_table *t, intptr_t handle) {
  struct gc_handle_slot *s = table_slot(t, handle);
  return s ? s->ptr : NULL;
}

int gc_handle_table_remove(struct gc_handle_table *t, intptr_t handle) {
  struct gc_handle_slot *s = table_slot(t, handle);
  if (!s)
    return EINVAL;
  s->ptr = NULL;
  /* Skip 0 so a zeroed handle never matches a slot. */
  if (++s->gen == 0)
    s->gen = 1;
  s->next_free = t->free_head;
  t->free_head = (uint32_t)(s - t->slots) + 1;
  t->used--;
  return 0;
}
