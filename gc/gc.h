/*
 * gc.h - the collection cycle's shared state (see gc.c).
 */
#ifndef SPANGC_GC_H
#define SPANGC_GC_H

#include "../runtime/lock.h"
#include "../runtime/mstats.h"

typedef struct gc_state {
    spangc_slock world_lock; /* serializes cycles (runtime/lock.h)        */
    ao_word initialized;
    ao_word num_gc;         /* completed cycles                           */
    ao_word num_forced_gc;
    ao_word disabled;       /* gc_disable depth                           */
    ao_word next_gc;        /* heap_live that triggers the next cycle     */
    ao_word early_gc;       /* ... or this, if the heap would have to grow */
    ao_word heap_marked;    /* bytes marked by the last cycle             */
    ao_word goal_basis;     /* ... plus the large object that started it: */
                            /*   what the goal is computed from           */
    ao_word pause_total_ns, last_pause_ns, max_pause_ns;
    ao_word mark_overflows; /* cycles whose mark stack overflowed         */
} gc_state;

/* world_lock is a lock; the rest are atomic words written by the
 * collector (holding world_lock) and read anywhere. The sweepers also
 * take bytes off heap_marked: those of objects two markers both counted
 * (gc/sweep.c). */
extern SPANGC_STATE gc_state spangc_gc;

bool spangc_gc_due_early(void);

/* True when the heap, with extra bytes about to be allocated, has grown to
 * the pacer's goal, or to the early trigger while reaching the goal would
 * take memory the heap does not have (see Pacing in gc.c). */
static inline bool spangc_gc_due(uint64_t extra)
{
    if (ao_load(&spangc_gc.disabled) != 0)
        return false;
    uint64_t live = ao_load(&spangc_mstats.heap_live) + extra;
    return live >= ao_load(&spangc_gc.next_gc) ||
           (live >= ao_load(&spangc_gc.early_gc) && spangc_gc_due_early());
}

enum collect_kind {
    COLLECT_AUTO,   /* the heap reached next_gc: collect unless another
                       thread just did, and leave sweeping to the sweepers */
    COLLECT_STRESS, /* debug stress mode: always collect, sweep lazily   */
    COLLECT_FULL,   /* gc_collect: collect, then finish sweeping         */
};

/* Tests only: called with the world stopped right after each mark, to
 * stage a collector bug that verify mode must catch (tests/test_debug.c).
 * Set before any other thread exists. */
extern SPANGC_STATE void (*spangc_test_after_mark)(void);

/* Tests only: called by a large allocation inside its runtime section,
 * with the object set up but not yet returned (tests/test_thread.c). */
extern SPANGC_STATE void (*spangc_test_in_large_alloc)(void);

/* Run fn with world_lock held, sweeping finished, the world stopped and
 * every mcache flushed (verification, tests). Same calling rules as
 * spangc_collect. */
void spangc_with_world_stopped(void (*fn)(void *arg), void *arg);

/* Run a cycle. Must be called outside a runtime section, with no spangc
 * lock held. */
void spangc_collect(enum collect_kind kind);

/* COLLECT_AUTO for an allocation of extra bytes that heap_live does not
 * count yet (a large object): runs the cycle if spangc_gc_due(extra) still
 * holds once this thread may collect. */
void spangc_collect_auto(uint64_t extra);

#endif
