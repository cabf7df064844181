/*
 * mstats.h - the heap's running counters.
 *
 * All are atomic words updated with ao_add/ao_sub from any thread. Objects
 * allocated from an mcache are counted in it, and reach these counters when
 * the whole cache is given back (every collection, thread exit) or when
 * gc_get_stats folds the calling thread's cache in (mcache.h); so neither
 * the fast path nor a refill touches them.
 *
 * heap_live has a cache line to itself: every thread reads it at each
 * refill (the pacer's check), and the others are written per swept span.
 */
#ifndef SPANGC_MSTATS_H
#define SPANGC_MSTATS_H

#include "atomic.h"
#include "base.h"

typedef struct mstats {
    ao_word heap_alloc;  /* bytes in allocated objects (counted ones)  */
    ao_word total_alloc; /* cumulative bytes allocated                  */
    ao_word mallocs;     /* cumulative objects allocated                */
    ao_word frees;       /* cumulative objects freed                    */
    /* Of heap_live, the large objects allocated since the last cycle's
     * mark: the pacer's limit goal does not count them as reusable
     * (gc/gc.c, compute_next_gc). */
    ao_word large_since_mark;
    /* The pacer's view [Go: heapLive]: bytes marked by the last cycle
     * plus everything handed to mcaches since (whole spans' free slots
     * count from the moment the span is cached) plus large objects. */
    ao_word heap_live __attribute__((aligned(64)));
} __attribute__((aligned(64))) mstats;

/* Atomic counters; no lock. */
extern SPANGC_STATE mstats spangc_mstats;

#endif
