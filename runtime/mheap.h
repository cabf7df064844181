/*
 * mheap.h - the page heap: spans of whole pages, carved from arenas.
 *
 * mheap owns every page of the heap. A page is in exactly one span; a span
 * is FREE (in the free-span treap) or IN_USE (holding objects). Requests
 * take the first fit in address order: the lowest-addressed free span that
 * is large enough [Go: the page allocator]. The heap thus stays packed at
 * its low end, which is the part that stays resident, while free pages
 * gather at high addresses, where they go idle and the scavenger returns
 * them (best fit, which this replaced, spread a small heap's pages over
 * every free span of about the right size and so kept more of it
 * resident). The front of the chosen span is used and the rest stays
 * free. A span that becomes free coalesces with
 * free neighbours on both sides, so two adjacent free spans never exist.
 * When nothing fits, the heap first reclaims pages by sweeping (if the
 * last collection's sweep is unfinished) and then grows: it commits more
 * of the current arena reservation, or reserves a new one (preferably
 * right after the last, so spans can coalesce across arenas).
 *
 * Span structures come from a pool of their own and are never reused for
 * other metadata, so a stale arena-index entry always points at some span
 * structure (see arena.h).
 *
 * Zeroing. Memory fresh from the OS and released memory read as zero; a
 * span's needzero says whether its free pages or slots may hold old data,
 * and allocation clears memory only then. Coalescing combines needzero
 * with OR (released parts count as clean).
 *
 * Locking: mheap.lock guards the treap, the span pool, the retired bitmap
 * blocks, the growth state, and the base/npages/state of every span.
 * Statistics are atomic words.
 */
#ifndef SPANGC_MHEAP_H
#define SPANGC_MHEAP_H

#include "metalloc.h"
#include "mspan.h"

typedef struct mheap {
    spangc_lock lock;
    mspan *free_root;   /* treap of FREE spans, keyed by base */
    mspan *span_pool;   /* DEAD span structures, linked through next */
    mspan *span_batch_cur, *span_batch_end; /* never used yet */
    /* big_bits blocks (mspan.h) of spans freed since the last stop of the
     * world, chained through their last word (a parallel-mark word). A
     * reader such as gc_base may have found the span in use just before
     * it was freed and still read its alloc bits, which must stay the
     * zeros sweeping left; every such reader is inside a runtime section,
     * so none is left once the world has stopped. */
    uint64_t *retired_bits;
    uint32_t rng;       /* treap priorities */
    uintptr_t cur, end; /* uncommitted rest of the current reservation */

    /* The largest allocation that could ever be met: RAM plus swap, and
     * never above half the address space. Set by spangc_mheap_init, then
     * only read (no lock). */
    size_t max_request;

    /* The sweep generation (mspan.h); written only with the world stopped,
     * read atomically by sweepers. */
    ao_word sweepgen;

    /* Statistics (atomic): bytes unless named pages or spans. */
    ao_word pages_inuse;   /* pages in IN_USE spans */
    ao_word nspans_inuse;  /* IN_USE spans */
    ao_word sys;           /* committed heap memory */
    ao_word released;      /* committed but returned to the OS */
    ao_word free_pages;    /* pages in FREE spans */
} mheap;

extern SPANGC_STATE mheap spangc_heap;

void spangc_mheap_init(void);

/* Heap memory committed and not returned to the OS: an upper bound on the
 * heap's resident pages (the early trigger, gc/gc.c). */
static inline uint64_t spangc_heap_committed(void)
{
    return ao_load(&spangc_heap.sys) - ao_load(&spangc_heap.released);
}

/* ... plus metadata: the memory a soft memory limit counts. */
static inline uint64_t spangc_mapped_bytes(void)
{
    return spangc_heap_committed() + spangc_meta_sys();
}

/* A new IN_USE span of npages pages laid out for spanclass, swept for the
 * current cycle, or NULL when the OS refuses memory. Its slots are not
 * cleared (needzero tells whether they must be). */
mspan *spangc_mheap_alloc(size_t npages, unsigned spanclass);

/* Return an IN_USE span's pages to the free set. */
void spangc_mheap_free(mspan *s);

/* Free the bitmap blocks of the spans freed before this stop of the world
 * (mheap.retired_bits). The world is stopped, or no other thread runs. */
void spangc_mheap_free_retired_bits(void);

/* Return to the OS the pages of free spans that have been free for at
 * least min_idle_ns, until at least want bytes were released (want 0:
 * every idle span). Returns bytes released. */
size_t spangc_mheap_scavenge(uint64_t min_idle_ns, size_t want);

/* Over a soft memory limit, give free pages back at once, down to 95% of
 * the limit, instead of waiting for them to go idle. */
void spangc_mheap_scavenge_to_limit(void);

/* Calls fn on every IN_USE span. The world must be stopped, or the caller
 * must otherwise know the set of spans cannot change. */
void spangc_mheap_for_each_span(void (*fn)(mspan *s, void *arg), void *arg);

/* Calls fn on every span, FREE or IN_USE, range by range in address
 * order within each reservation; the caller
 * holds mheap.lock or has stopped the world. */
void spangc_mheap_walk(void (*fn)(mspan *s, void *arg), void *arg);

/* Check the page heap's invariants (coalescing, the free set, page
 * entries, counters); dies with "spangc: fatal:" on a violation. */
void spangc_mheap_verify(void);

/* fork support (runtime/thread.c). */
void spangc_mheap_lock_all(void);
void spangc_mheap_unlock_all(void);

#endif
