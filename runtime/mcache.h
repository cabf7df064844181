/*
 * mcache.h - a thread's private allocation cache.
 *
 * Each registered thread has one mcache holding, per span class, the span
 * it currently allocates from (or the empty span). Only the owning thread
 * touches it, except that the collector flushes it while the thread is
 * stopped; so the fast path needs no lock and no atomic instruction.
 *
 * fast_budget is how many more bytes the fast path may hand out before the
 * slow path must run: it counts down to the next heap-profile sample, and
 * is 0 when a debug mode (stress, poison, verify) wants to see every
 * allocation. One compare on the fast path covers both.
 *
 * local_mallocs and local_bytes count the objects of spans this cache has
 * given back (or counted, for gc_get_stats) that the shared statistics do
 * not have yet. A refill adds to them rather than to mstats: the shared
 * counters' line, written by every thread's refills and by the sweepers,
 * cost a cache miss per atomic add once two threads allocated. They are
 * moved into mstats whenever the whole cache is given back, which every
 * collection does with the world stopped, and by gc_get_stats for the
 * calling thread; so a cycle's statistics, and verify's check against
 * them, see every object allocated before it.
 */
#ifndef SPANGC_MCACHE_H
#define SPANGC_MCACHE_H

#include "mspan.h"

typedef struct mcache {
    mspan *alloc[NUM_SPAN_CLASSES];
    uint64_t fast_budget;
    uint64_t next_sample;   /* bytes until the next profile sample        */
    uint64_t stress_count;  /* allocations since the last stress collection */
    uint64_t rng;           /* per-thread PRNG for profile sampling       */
    uintptr_t profile_gen;  /* profile-rate generation next_sample is for */
    uint64_t sample_rate;   /* the profile rate next_sample was drawn at  */
    uint64_t local_mallocs; /* objects not yet in mstats (see above)      */
    uint64_t local_bytes;   /* and their bytes                            */
} mcache;

void spangc_mcache_init(mcache *c);

/* Give back the span cached for spanclass and cache a span with a free
 * slot instead; NULL when out of memory (the slot then holds the empty
 * span). */
mspan *spangc_mcache_refill(mcache *c, unsigned spanclass);

/* Give back every cached span and move the cache's counts into mstats
 * (collector with the world stopped, or the owner on thread exit). */
void spangc_mcache_release_all(mcache *c);

/* Count the objects allocated from cached spans, and every count the
 * cache holds, in the statistics. */
void spangc_mcache_count_allocs(mcache *c);

#endif
