/*
 * mcentral.h - the spans of one span class, shared by all threads.
 *
 * An mcentral holds the IN_USE spans of its class that no mcache holds,
 * in four lists: partial (some slot free) and full (none free), each split
 * into swept and unswept. Which index of each pair is "swept" depends on
 * the parity of mheap.sweepgen / 2: when mark termination adds 2 to
 * sweepgen, every swept list becomes an unswept list without moving a
 * span [Go: mcentral.partial/full spanSets]. Finding a span to sweep, or a
 * swept span with free slots, is therefore a list pop.
 *
 * A span is on at most one list (span.list says which, or NULL). Lists
 * are guarded by the mcentral's lock; sweeping itself happens outside it.
 * Spans popped from an unswept list are claimed with the sweepgen CAS; a
 * span whose CAS fails is being swept in place by someone else, who files
 * it when done, so the popper simply drops it.
 *
 * Large objects (class 0) live on the full lists of classes 0 (scan) and
 * 1 (noscan) so that the sweeper finds them the same way.
 */
#ifndef SPANGC_MCENTRAL_H
#define SPANGC_MCENTRAL_H

#include "mspan.h"

typedef struct mcentral {
    spangc_lock lock;
    span_list partial[2];
    span_list full[2];
} __attribute__((aligned(64))) mcentral;

extern SPANGC_STATE mcentral spangc_central[NUM_SPAN_CLASSES];

static inline unsigned swept_index(uintptr_t sweepgen)
{
    return (sweepgen >> 1) & 1;
}

void spangc_mcentral_init(void);

/* A swept span of spanclass with at least one free slot, for an mcache:
 * from the swept partial list, else by sweeping unswept spans (at most a
 * small budget of them), else fresh from mheap. NULL when out of memory.
 * Takes back old first (the mcache's previous span of the class, or
 * NULL) under the same lock acquisition. Moves heap_live by the new
 * span's free bytes less old's. The caller has counted old's objects
 * (spangc_span_take_alloc_count). */
mspan *spangc_mcentral_cache_span(unsigned spanclass, mspan *old);

/* Take back a span from an mcache whose objects the caller has counted. */
void spangc_mcentral_uncache_span(mspan *s);

/* File a just-swept span (not preserved) on its swept list, or free it to
 * mheap if it holds nothing. Returns true if it was freed. */
bool spangc_mcentral_file_swept(mspan *s);

/* A new large-object span: file it where the sweeper will find it. */
void spangc_mcentral_add_large(mspan *s);

/* Pop an unswept span of spanclass (partial first), or NULL. */
mspan *spangc_mcentral_pop_unswept(unsigned spanclass);

/* Calls fn on every span on any list of any class (world stopped). */
void spangc_mcentral_for_each(void (*fn)(mspan *s, void *arg), void *arg);

/* The objects allocated from s since the last call (or since it was
 * cached), for the caller to count in the statistics (mcache.h). */
uint32_t spangc_span_take_alloc_count(mspan *s);

/* fork support: in the child, re-initialize the locks (none can be held
 * at fork: gc/gc.c). */
void spangc_mcentral_reinit_child(void);

#endif
