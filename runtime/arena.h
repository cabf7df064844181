/*
 * arena.h - the arena index: from any address to its span in O(1).
 *
 * The heap is made of 64 MiB arenas, each aligned to 64 MiB. For every
 * arena the heap has reserved, a heap_arena record (metadata, never in the
 * heap) holds one span pointer per 8 KiB page. The index over the 48-bit
 * address space has two levels: arena number = address >> 26 (22 bits),
 * split into 10 bits for the first level (a static table of 1024 entries)
 * and 12 bits for the second (tables of 4096 entries, made on demand).
 *
 * Invariants
 *  - An index entry goes from NULL to non-NULL once and is never cleared,
 *    so readers need no lock: a word that is not in a reserved arena gets
 *    NULL after at most two loads.
 *  - For an in-use span every page entry points at the span. For a free
 *    span the first and last page entries point at it (enough to coalesce
 *    with neighbours); other entries may be stale. Entries of pages that
 *    were never part of a span are NULL.
 *  - Because entries can be stale and span structures are reused, a
 *    lookup of an untrusted address (a conservative word, an argument to
 *    gc_base) is only valid after checking the span's state is IN_USE and
 *    that the address lies in [base, limit): see spangc_span_of_heap in
 *    mspan.h.
 * Entries are written under mheap.lock with atomic stores and read with
 * atomic loads from any thread.
 */
#ifndef SPANGC_ARENA_H
#define SPANGC_ARENA_H

#include "atomic.h"
#include "base.h"

#define ARENA_L1_BITS 10
#define ARENA_L2_BITS (ADDRESS_BITS - ARENA_SHIFT - ARENA_L1_BITS)

struct mspan;

typedef struct heap_arena {
    ao_word spans[PAGES_PER_ARENA]; /* struct mspan * per page */
    /* Pages returned to the OS and not reused since, one bit per page
     * (mheap.lock; see mheap.c). */
    uint64_t released[PAGES_PER_ARENA / 64];
} heap_arena;

typedef struct arena_index {
    ao_word l1[1u << ARENA_L1_BITS]; /* ao_word *: L2 tables of heap_arena * */
    ao_word lo, hi; /* bounds of all reserved arenas: a cheap first filter */
} arena_index;

/* Written under mheap.lock; read lock-free (see above). */
extern SPANGC_STATE arena_index spangc_arenas;

static inline heap_arena *arena_of(uintptr_t p)
{
    uintptr_t ai = p >> ARENA_SHIFT;
    if (unlikely(ai >> (ARENA_L1_BITS + ARENA_L2_BITS)))
        return NULL;
    ao_word *l2 = (ao_word *)ao_load(&spangc_arenas.l1[ai >> ARENA_L2_BITS]);
    if (!l2)
        return NULL;
    return (heap_arena *)ao_load(&l2[ai & ((1u << ARENA_L2_BITS) - 1)]);
}

/* The span recorded for the page holding p, or NULL. Not validated. */
static inline struct mspan *spangc_span_of(uintptr_t p)
{
    heap_arena *ha = arena_of(p);
    if (!ha)
        return NULL;
    return (struct mspan *)ao_load(&ha->spans[(p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1)]);
}

/* True if p lies inside some reserved arena (no span check). */
static inline bool spangc_in_heap_range(uintptr_t p)
{
    return p >= ao_load(&spangc_arenas.lo) && p < ao_load(&spangc_arenas.hi);
}

/* Reserve address space for at least size bytes as whole arenas, add them
 * to the index, and return the base (NULL if out of address space or
 * metadata). The caller holds mheap.lock. */
uintptr_t spangc_arena_reserve(size_t size, uintptr_t hint);

/* Point the page entries of [base, base + npages pages) at s. The caller
 * holds mheap.lock; the pages lie in reserved arenas. */
void spangc_arena_set_pages(uintptr_t base, size_t npages, struct mspan *s);

#endif
