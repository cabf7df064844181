/*
 * mcentral.c - per-class span lists and lazy sweeping (see mcentral.h).
 */
#include "mcentral.h"

#include "mheap.h"
#include "mstats.h"
#include "../gc/sweep.h"

SPANGC_STATE mcentral spangc_central[NUM_SPAN_CLASSES];

/* How many unswept spans cache_span may sweep looking for a free slot
 * before it grows the heap instead [Go: spanBudget]. Bounds the pause of
 * one allocation; a span left behind costs at most ~1% extra heap. */
#define SWEEP_BUDGET 100

void spangc_mcentral_init(void)
{
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++)
        lock_init(&spangc_central[i].lock);
}

static void list_push(span_list *l, mspan *s)
{
    s->prev = NULL;
    s->next = l->first;
    if (l->first)
        l->first->prev = s;
    l->first = s;
    l->count++;
    s->list = l;
}

static void list_remove(mspan *s)
{
    span_list *l = s->list;
    if (s->prev)
        s->prev->next = s->next;
    else
        l->first = s->next;
    if (s->next)
        s->next->prev = s->prev;
    l->count--;
    s->next = s->prev = NULL;
    s->list = NULL;
}

static mspan *list_pop(span_list *l)
{
    mspan *s = l->first;
    if (s)
        list_remove(s);
    return s;
}

static uintptr_t heap_sweepgen(void)
{
    return ao_load_acq(&spangc_heap.sweepgen);
}

/* Claim an unswept span [Go: the sg-2 -> sg-1 CAS]. */
static bool claim(mspan *s, uintptr_t sg)
{
    return ao_load(&s->sweepgen) == sg - 2 && ao_cas(&s->sweepgen, sg - 2, sg - 1);
}

/* The bytes of s's free slots: what heap_live counts for a cached span
 * beyond its allocated objects. */
static uintptr_t span_free_bytes(const mspan *s)
{
    return (uintptr_t)(s->nelems - s->alloc_count) * s->elemsize;
}

static void check_cached_span(mspan *s, uintptr_t sg, const char *what)
{
    if (ao_load(&s->sweepgen) != sg)
        spangc_throw("%s span %p with sweepgen %lu (heap %lu)", what, (void *)s->base,
                     (unsigned long)ao_load(&s->sweepgen), (unsigned long)sg);
}

/* File a span an mcache gives back; the caller holds c->lock. */
static void file_uncached(mcentral *c, mspan *s, unsigned sw)
{
    list_push(s->alloc_count == s->nelems ? &c->full[sw] : &c->partial[sw], s);
}

mspan *spangc_mcentral_cache_span(unsigned spanclass, mspan *old)
{
    mcentral *c = &spangc_central[spanclass];
    uintptr_t sg = heap_sweepgen();
    unsigned sw = swept_index(sg);
    /* heap_live changes by one atomic add per refill: it is read by every
     * thread's pacing check, so each write pulls its line from them. */
    uintptr_t live_delta = 0;
    mspan *s;

    if (old) {
        check_cached_span(old, sg, "uncaching");
        live_delta -= span_free_bytes(old);
    }
    lock_acquire(&c->lock);
    if (old)
        file_uncached(c, old, sw);
    s = list_pop(&c->partial[sw]);
    if (s) {
        lock_release(&c->lock);
        goto have;
    }
    spangc_sweep_begin();
    for (int budget = SWEEP_BUDGET; budget > 0; budget--) {
        s = list_pop(&c->partial[1 - sw]);
        if (!s)
            break;
        if (claim(s, sg)) {
            lock_release(&c->lock);
            spangc_span_sweep(s, true);
            spangc_sweep_end();
            goto have;
        }
    }
    for (int budget = SWEEP_BUDGET; budget > 0; budget--) {
        s = list_pop(&c->full[1 - sw]);
        if (!s)
            break;
        if (!claim(s, sg))
            continue;
        lock_release(&c->lock);
        spangc_span_sweep(s, true);
        if (s->alloc_count < s->nelems) {
            spangc_sweep_end();
            goto have;
        }
        lock_acquire(&c->lock);
        list_push(&c->full[sw], s);
    }
    lock_release(&c->lock);
    spangc_sweep_end();

    s = spangc_mheap_alloc(class_to_npages[spanclass >> 1], spanclass);
    if (!s) {
        ao_add(&spangc_mstats.heap_live, live_delta);
        return NULL;
    }
have:
    if (s->spanclass != spanclass || ao_load(&s->state) != SPAN_IN_USE)
        spangc_throw("corrupted span %p on the lists of span class %u (class %u, state %u)",
                     (void *)s->base, spanclass, s->spanclass, (unsigned)ao_load(&s->state));
    check_cached_span(s, sg, "caching unswept");
    ao_add(&spangc_mstats.heap_live, live_delta + span_free_bytes(s));
    s->alloc_count_base = s->alloc_count;
    return s;
}

uint32_t spangc_span_take_alloc_count(mspan *s)
{
    uint32_t n = s->alloc_count - s->alloc_count_base;
    s->alloc_count_base = s->alloc_count;
    return n;
}

void spangc_mcentral_uncache_span(mspan *s)
{
    uintptr_t sg = heap_sweepgen();
    check_cached_span(s, sg, "uncaching");
    ao_sub(&spangc_mstats.heap_live, span_free_bytes(s));
    mcentral *c = &spangc_central[s->spanclass];
    lock_acquire(&c->lock);
    file_uncached(c, s, swept_index(sg));
    lock_release(&c->lock);
}

bool spangc_mcentral_file_swept(mspan *s)
{
    mcentral *c = &spangc_central[s->spanclass];
    unsigned sw = swept_index(heap_sweepgen());
    lock_acquire(&c->lock);
    if (s->list)
        list_remove(s);
    if (s->alloc_count == 0) {
        lock_release(&c->lock);
        spangc_mheap_free(s);
        return true;
    }
    list_push(s->alloc_count == s->nelems ? &c->full[sw] : &c->partial[sw], s);
    lock_release(&c->lock);
    return false;
}

void spangc_mcentral_add_large(mspan *s)
{
    mcentral *c = &spangc_central[s->spanclass];
    lock_acquire(&c->lock);
    list_push(&c->full[swept_index(heap_sweepgen())], s);
    lock_release(&c->lock);
}

mspan *spangc_mcentral_pop_unswept(unsigned spanclass)
{
    mcentral *c = &spangc_central[spanclass];
    unsigned us = 1 - swept_index(heap_sweepgen());
    lock_acquire(&c->lock);
    mspan *s = list_pop(&c->partial[us]);
    if (!s)
        s = list_pop(&c->full[us]);
    lock_release(&c->lock);
    return s;
}

void spangc_mcentral_for_each(void (*fn)(mspan *s, void *arg), void *arg)
{
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++) {
        mcentral *c = &spangc_central[i];
        for (int k = 0; k < 2; k++) {
            for (mspan *s = c->partial[k].first; s; s = s->next)
                fn(s, arg);
            for (mspan *s = c->full[k].first; s; s = s->next)
                fn(s, arg);
        }
    }
}

void spangc_mcentral_reinit_child(void)
{
    spangc_mcentral_init();
}
