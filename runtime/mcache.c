/*
 * mcache.c - per-thread span caches (see mcache.h).
 */
#include "mcache.h"

#include "mcentral.h"

void spangc_mcache_init(mcache *c)
{
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++)
        c->alloc[i] = &spangc_empty_span;
    /* The first allocation takes the slow path (every alloc[] slot is the
     * empty span), which draws the first profile sample distance. */
    c->next_sample = UINT64_MAX;
    c->fast_budget = UINT64_MAX;
    c->stress_count = 0;
    c->profile_gen = (uintptr_t)-1;
    c->rng = (uintptr_t)c * 0x9e3779b97f4a7c15ull;
}

mspan *spangc_mcache_refill(mcache *c, unsigned spanclass)
{
    mspan *old = c->alloc[spanclass];
    c->alloc[spanclass] = &spangc_empty_span;
    if (old != &spangc_empty_span)
        spangc_mcentral_uncache_span(old);
    mspan *s = spangc_mcentral_cache_span(spanclass);
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
            spangc_mcentral_uncache_span(s);
        }
    }
}

void spangc_mcache_count_allocs(mcache *c)
{
    for (unsigned i = 0; i < NUM_SPAN_CLASSES; i++)
        if (c->alloc[i] != &spangc_empty_span)
            spangc_span_count_allocs(c->alloc[i]);
}
