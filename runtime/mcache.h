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
} mcache;

void spangc_mcache_init(mcache *c);

/* Give back the span cached for spanclass and cache a span with a free
 * slot instead; NULL when out of memory (the slot then holds the empty
 * span). */
mspan *spangc_mcache_refill(mcache *c, unsigned spanclass);

/* Give back every cached span (collector with the world stopped, or the
 * owner on thread exit). */
void spangc_mcache_release_all(mcache *c);

/* Count the objects allocated from cached spans in the statistics. */
void spangc_mcache_count_allocs(mcache *c);

#endif
