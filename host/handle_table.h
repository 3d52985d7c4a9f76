/* handle_table.h - generation-tagged handles (skynet's reserve_id).
 *
 * A handle is (generation << 32) | (tag << 24) | (slot + 1): the tag names
 * the table's owner (the worker loop of a connection or timer), so a handle
 * says where to go before anything is looked up. The slot keeps its
 * generation, bumped on release, so a stale handle never resolves to the
 * object that later reuses the slot. 0 is never a valid handle.
 *
 * One thread owns a table (add, get, remove). Any thread may ask whether a
 * handle is alive (gc_handle_table_alive): slots live in pages that never
 * move, and each slot publishes its live generation atomically. */
#ifndef GC_HANDLE_TABLE_H
#define GC_HANDLE_TABLE_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct gc_handle_slot {
  void *ptr;          /* NULL when free */
  uint32_t gen;       /* generation of the current or next occupant */
  uint32_t next_free; /* index + 1 of the next free slot, 0 = none */
  _Atomic uint32_t live; /* 'gen' while occupied, 0 when free */
};

#define GC_HANDLE_SLOTS_MAX ((1u << 24) - 1)
#define GC_HANDLE_PAGE 1024u /* slots per page */
#define GC_HANDLE_PAGES ((GC_HANDLE_SLOTS_MAX + 1) / GC_HANDLE_PAGE)

struct gc_handle_table {
  /* Allocated with the first page, freed with the table. */
  struct gc_handle_slot *_Atomic *pages;
  uint32_t cap; /* slots in the pages so far */
  uint32_t used;
  uint32_t free_head; /* index + 1 of the first free slot, 0 = none */
  uint8_t tag;        /* written into every handle */
};

/* The tag of a handle (its table's owner). */
static inline unsigned gc_handle_tag(intptr_t handle) {
  return (unsigned)(((uint64_t)handle >> 24) & 0xffu);
}

void gc_handle_table_init(struct gc_handle_table *t);
/* An empty table whose handles carry 'tag'. */
void gc_handle_table_init_tagged(struct gc_handle_table *t, uint8_t tag);
void gc_handle_table_free(struct gc_handle_table *t);
/* Stores 'ptr' (not NULL) and writes its handle. 0 or ENOMEM. */
int gc_handle_table_add(struct gc_handle_table *t, void *ptr, intptr_t *handle)
    __attribute__((warn_unused_result));
/* The object of 'handle', or NULL if the handle is unknown or stale. */
void *gc_handle_table_get(const struct gc_handle_table *t, intptr_t handle);
/* Releases the handle: 0, or EINVAL if unknown or stale. */
int gc_handle_table_remove(struct gc_handle_table *t, intptr_t handle);
/* The object in slot 'i' < t->cap, or NULL (the owner's walk). */
void *gc_handle_table_at(const struct gc_handle_table *t, uint32_t i);
/* From any thread: 1 while 'handle' names an object of the table (which
 * may go away right after), 0 for an unknown or stale one. The table must
 * outlive the call. */
int gc_handle_table_alive(const struct gc_handle_table *t, intptr_t handle);

#endif
