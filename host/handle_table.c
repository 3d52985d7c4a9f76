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
  for (uint32_t p = 0; t->pages && p < t->cap / GC_HANDLE_PAGE; p++)
    gc_free(atomic_load_explicit(&t->pages[p], memory_order_relaxed));
  gc_free((void *)t->pages);
  memset(t, 0, sizeof *t);
  t->tag = tag;
}

static struct gc_handle_slot *slot_at(const struct gc_handle_table *t,
                                      uint32_t idx) {
  struct gc_handle_slot *page =
      atomic_load_explicit(&t->pages[idx / GC_HANDLE_PAGE], memory_order_acquire);
  return &page[idx % GC_HANDLE_PAGE];
}

/* One more page: its slots join the free list in index order. */
static int table_grow(struct gc_handle_table *t) {
  if (t->cap + GC_HANDLE_PAGE > GC_HANDLE_SLOTS_MAX)
    return ENOMEM;
  if (!t->pages) {
    struct gc_handle_slot *_Atomic *dir = gc_calloc(GC_HANDLE_PAGES, sizeof *t->pages);
    if (!dir)
      return ENOMEM;
    __atomic_store_n(&t->pages, dir, __ATOMIC_RELEASE);
  }
  struct gc_handle_slot *page = gc_calloc(GC_HANDLE_PAGE, sizeof *page);
  if (!page)
    return ENOMEM;
  for (uint32_t i = 0; i < GC_HANDLE_PAGE; i++) {
    page[i].gen = 1;
    page[i].next_free = i + 1 < GC_HANDLE_PAGE ? t->cap + i + 2 : t->free_head;
  }
  t->free_head = t->cap + 1;
  atomic_store_explicit(&t->pages[t->cap / GC_HANDLE_PAGE], page,
                        memory_order_release);
  t->cap += GC_HANDLE_PAGE;
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
  struct gc_handle_slot *s = slot_at(t, idx);
  t->free_head = s->next_free;
  s->ptr = ptr;
  s->next_free = 0;
  atomic_store_explicit(&s->live, s->gen, memory_order_release);
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
  struct gc_handle_slot *s = slot_at(t, (uint32_t)idx - 1);
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
  atomic_store_explicit(&s->live, 0, memory_order_release);
  /* Skip 0 so a zeroed handle never matches a slot. */
  if (++s->gen == 0)
    s->gen = 1;
  s->next_free = t->free_head;
  t->free_head = (uint32_t)((uint64_t)handle & GC_HANDLE_SLOTS_MAX);
  t->used--;
  return 0;
}

void *gc_handle_table_at(const struct gc_handle_table *t, uint32_t i) {
  return i < t->cap ? slot_at(t, i)->ptr : NULL;
}

int gc_handle_table_alive(const struct gc_handle_table *t, intptr_t handle) {
  uint64_t h = (uint64_t)handle;
  uint64_t idx = h & GC_HANDLE_SLOTS_MAX;
  uint32_t gen = (uint32_t)(h >> 32);
  if (idx == 0 || gen == 0 || gc_handle_tag(handle) != t->tag)
    return 0;
  struct gc_handle_slot *_Atomic *dir = __atomic_load_n(&t->pages, __ATOMIC_ACQUIRE);
  if (!dir)
    return 0;
  struct gc_handle_slot *page =
      atomic_load_explicit(&dir[(idx - 1) / GC_HANDLE_PAGE], memory_order_acquire);
  if (!page)
    return 0;
  return atomic_load_explicit(&page[(idx - 1) % GC_HANDLE_PAGE].live,
                              memory_order_acquire) == gen;
}
