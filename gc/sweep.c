/*
 * sweep.c - sweeping spans, lazily and concurrently [Go: mgcsweep.go].
 *
 * After mark termination every IN_USE span is unswept (sweepgen sg-2).
 * Each is swept exactly once in the cycle, by whoever wins the CAS
 * sg-2 -> sg-1 on its sweepgen:
 *
 *  - the background sweeper thread (gc/gc.c), span after span;
 *  - an allocating thread in mcentral_cache_span, which sweeps spans of
 *    the class it needs before it takes one (lazy sweeping);
 *  - mheap, which reclaims pages by sweeping before it grows the heap;
 *  - spangc_ensure_swept, for API calls that need one span's true state
 *    (gc_base, gc_size, specials, weak handles).
 *
 * Sweeping a span never takes a lock while it reads or writes the span:
 * the CAS made the sweeper its only owner. It handles the span's specials
 * first (gc/specials.c), then counts the live objects (the mark bits),
 * makes the mark bits the new alloc bits, and clears the old alloc bits
 * for the next mark. A span in which something lives is then published by
 * storing sg, and only after that filed on a swept list. A span in which
 * nothing lives is freed to mheap without it: its state, FREE, is what
 * tells a waiter the sweep is over (spangc_ensure_swept).
 *
 * So a span that reads as in use and swept (sg) stays in use until the
 * next cycle, which cannot start while the reader is inside a runtime
 * section. An API call that looks an address up (spangc_find_object,
 * gc_weak_get) sweeps the span, looks it up again, and then reads its
 * layout and alloc bits without a lock, and without racing with a sweeper
 * freeing the span and an allocation setting it up again.
 *
 * Sweep termination. A new cycle first sweeps whatever is left
 * (spangc_sweep_finish), and waits until no sweep is in progress
 * (sweep_state.active). The background sweeper is not stopped by signals,
 * so while the world is stopped it is held off by world_stopped: it
 * checks the flag after announcing itself in active, and the collector
 * sets the flag before waiting for active to drain.
 */
#include "sweep.h"

#include "debug.h"
#include "gc.h"
#include "specials.h"
#include "../runtime/mcentral.h"
#include "../runtime/mheap.h"
#include "../runtime/mstats.h"

#include <sched.h>
#include <string.h>

SPANGC_STATE sweep_state spangc_sweep;

bool spangc_sweep_unfinished(void)
{
    return ao_load(&spangc_sweep.unswept) != 0;
}

static void free_slots_accounting(mspan *s, uint32_t nfreed)
{
    ao_add(&spangc_mstats.frees, nfreed);
    ao_sub(&spangc_mstats.heap_alloc, (uintptr_t)nfreed * s->elemsize);
}

/* Fold s's marks into one bitmap (mspan.h). An object that two markers
 * both marked had its bytes counted by each: take them back off the
 * cycle's marked bytes and off heap_live, which mark termination set from
 * them. After gc_collect, which sweeps everything, heap_live is exact. */
static void fold_marks(mspan *s)
{
    uint32_t twice = span_fold_marks(s);
    if (twice) {
        uint64_t bytes = (uint64_t)twice * s->elemsize;
        ao_sub(&spangc_gc.heap_marked, bytes);
        ao_sub(&spangc_mstats.heap_live, bytes);
    }
}

/* Free slots keep no layout (mspan.h), so that a conservative allocation
 * need not write one. */
static void clear_freed_types(mspan *s)
{
    const struct gc_type **full = span_full_types(s);
    for (uint32_t w = 0; w * 64 < s->nelems; w++) {
        for (uint64_t freed = span_freed_word(s, w); freed; freed &= freed - 1) {
            uint32_t i = w * 64 + (uint32_t)__builtin_ctzll(freed);
            if (full)
                full[i] = NULL;
            else
                s->type_idx[i] = 0;
        }
    }
}

bool spangc_span_sweep(mspan *s, bool preserve)
{
    uintptr_t sg = ao_load(&spangc_heap.sweepgen);
    if (ao_load(&s->state) != SPAN_IN_USE || ao_load(&s->sweepgen) != sg - 1)
        spangc_throw("sweeping span %p not owned by this sweeper (state %u, sweepgen %lu, "
                     "heap %lu)",
                     (void *)s->base, (unsigned)ao_load(&s->state),
                     (unsigned long)ao_load(&s->sweepgen), (unsigned long)sg);
    ao_sub(&spangc_sweep.unswept, 1);
    fold_marks(s);

    if (s->specials)
        spangc_specials_sweep(s);

    uint32_t nalloc = spangc_bitmap_count(s->mark_bits, s->nelems);
    if (nalloc > s->alloc_count)
        spangc_throw("span %p (size %zu) has %u marked objects but only %u allocated",
                     (void *)s->base, s->elemsize, nalloc, s->alloc_count);
    uint32_t nfreed = s->alloc_count - nalloc;
    if (nfreed) {
        s->needzero = 1;
        free_slots_accounting(s, nfreed);
        /* Every span, one-slot ones included: a lazy sweep hands the span
         * straight to the allocating thread, whose conservative objects
         * write no layout. (For a large span, types is &large_type.) */
        if (ao_load(&s->types) || s->type_idx)
            clear_freed_types(s);
        if (spangc_track_slots)
            spangc_debug_freed(s);
    }

    uint64_t *old = s->alloc_bits;
    s->alloc_bits = s->mark_bits;
    s->mark_bits = old;
    memset(old, 0, sizeof(uint64_t) * ((s->nelems + 63) / 64));
    s->alloc_count = nalloc;
    s->alloc_count_base = nalloc;
    span_set_freeindex(s, 0);
    spangc_span_refill_cache(s);

    if (ao_load(&s->sweepgen) != sg - 1)
        spangc_throw("span %p changed owner while being swept", (void *)s->base);
    /* Not for a span about to be freed (see the top of the file). */
    if (nalloc != 0 || preserve)
        ao_store_rel(&s->sweepgen, sg);

    if (preserve)
        return false;
    return spangc_mcentral_file_swept(s);
}

static bool claim(mspan *s, uintptr_t sg)
{
    return ao_load(&s->sweepgen) == sg - 2 && ao_cas(&s->sweepgen, sg - 2, sg - 1);
}

long spangc_sweep_one(void)
{
    spangc_sweep_begin();
    if (ao_load(&spangc_sweep.world_stopped) || !spangc_sweep_unfinished()) {
        spangc_sweep_end();
        return -1;
    }
    uintptr_t sg = ao_load(&spangc_heap.sweepgen);
    unsigned start = (unsigned)ao_load(&spangc_sweep.cursor);
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++) {
        unsigned sc = (start + i) % NUM_SPAN_CLASSES;
        mspan *s;
        while ((s = spangc_mcentral_pop_unswept(sc)) != NULL) {
            /* A lost CAS means someone sweeps it in place and files it. */
            if (!claim(s, sg))
                continue;
            if (sc != start)
                ao_store(&spangc_sweep.cursor, sc);
            size_t npages = s->npages;
            bool freed = spangc_span_sweep(s, false);
            spangc_sweep_end();
            return freed ? (long)npages : 0;
        }
    }
    spangc_sweep_end();
    return -1;
}

void spangc_sweep_reclaim(size_t npages)
{
    size_t got = 0;
    long n;
    while (got < npages && (n = spangc_sweep_one()) >= 0)
        got += (size_t)n;
}

void spangc_ensure_swept(mspan *s)
{
    uintptr_t sg = ao_load(&spangc_heap.sweepgen);
    if (ao_load_acq(&s->sweepgen) == sg)
        return;
    spangc_sweep_begin();
    if (claim(s, sg)) {
        spangc_span_sweep(s, false);
        spangc_sweep_end();
        return;
    }
    spangc_sweep_end();
    /* Someone else owns it: wait until they publish it. A span freed and
     * reused meanwhile also ends at sg. Acquire on state too: a sweeper
     * that freed the span published what it cleared (a weak handle's
     * target, say) before the state, and the caller reads that next. */
    while (ao_load_acq(&s->sweepgen) != sg && ao_load_acq(&s->state) == SPAN_IN_USE)
        sched_yield();
}

bool spangc_find_object(uintptr_t p, mspan **sp, uint32_t *idxp)
{
    mspan *s = spangc_span_of_heap(p);
    if (!s)
        return false;
    spangc_ensure_swept(s);
    /* Sweeping may have freed the span: look again. */
    s = spangc_span_of_heap(p);
    if (!s)
        return false;
    uint32_t idx = s->nelems == 1 ? 0 : span_obj_index(s, p);
    if (!span_slot_allocated(s, idx))
        return false;
    *sp = s;
    *idxp = idx;
    return true;
}

bool spangc_find_base(uintptr_t p, mspan **sp, uint32_t *idxp)
{
    return spangc_find_object(p, sp, idxp) &&
           p == (*sp)->base + (uintptr_t)*idxp * (*sp)->elemsize;
}

void spangc_sweep_finish(void)
{
    while (spangc_sweep_one() >= 0)
        ;
    while (ao_load_acq(&spangc_sweep.active) != 0)
        sched_yield();
}
