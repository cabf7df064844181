/*
 * mcache.c - per-thread span caches (see mcache.h).
 */
#include "mcache.h"

#include "mcentral.h"
#include "mstats.h"

void spangc_mcache_init(mcache *c)
{
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++)
        c->alloc[i] = &spangc_empty_span;
    /* The first allocation takes the slow path (every alloc[] slot is the
     * empty span), which draws the first profile sample distance. */
    c->next_sample = UINT64_MAX;
    c->fast_budget = UINT64_MAX;
    c->stress_count = 0;
    c->local_mallocs = 0;
    c->local_bytes = 0;
    c->profile_gen = (uintptr_t)-1;
    c->rng = (uintptr_t)c * 0x9e3779b97f4a7c15ull;
}

/* Count s's new objects in c's own counters. */
static void count_span(mcache *c, mspan *s)
{
    uint32_t n = spangc_span_take_alloc_count(s);
    c->local_mallocs += n;
    c->local_bytes += (uint64_t)n * s->elemsize;
}

/* Move c's counts into the shared statistics. */
static void flush_counts(mcache *c)
{
    if (c->local_mallocs == 0)
        return;
    ao_add(&spangc_mstats.mallocs, c->local_mallocs);
    ao_add(&spangc_mstats.total_alloc, c->local_bytes);
    ao_add(&spangc_mstats.heap_alloc, c->local_bytes);
    c->local_mallocs = 0;
    c->local_bytes = 0;
}

mspan *spangc_mcache_refill(mcache *c, unsigned spanclass)
{
    mspan *old = c->alloc[spanclass];
    c->alloc[spanclass] = &spangc_empty_span;
    if (old == &spangc_empty_span)
        old = NULL;
    else
        count_span(c, old);
    mspan *s = spangc_mcentral_cache_span(spanclass, old);
    if (s)
        c->alloc[spanclass] = s;
    return s;
}

void spangc_mcache_release_all(mcache *c)
{
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++) {
        mspan *s = c->alloc[i];
        if (s != &spangc_empty_span) {
            c->alloc[i] = &spangc_empty_span;
            count_span(c, s);
            spangc_mcentral_uncache_span(s);
        }
    }
    flush_counts(c);
}

void spangc_mcache_count_allocs(mcache *c)
{
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++)
        if (c->alloc[i] != &spangc_empty_span)
            count_span(c, c->alloc[i]);
    flush_counts(c);
}
