/*
 * sweep.h - sweeping: what the allocator layers call (see sweep.c).
 */
#ifndef SPANGC_SWEEP_H
#define SPANGC_SWEEP_H

#include "../runtime/mspan.h"
#include "../runtime/thread.h"

/* Counts threads inside a sweep of one span; sweep termination waits for
 * it to reach zero. Every CAS sg-2 -> sg-1 happens between begin and end. */
typedef struct sweep_state {
    ao_word active;      /* sweepers in progress                        */
    ao_word unswept;     /* spans left to sweep this cycle              */
    ao_word cursor;      /* span class where sweep_one looks first      */
    ao_word world_stopped; /* the collector holds the world stopped     */
} sweep_state;

extern SPANGC_STATE sweep_state spangc_sweep;

/* A program thread sweeps in a runtime section: it takes mcentral and
 * mheap locks (runtime/lock.h). */
static inline void spangc_sweep_begin(void)
{
    (void)runtime_enter_self();
    ao_add(&spangc_sweep.active, 1);
}

static inline void spangc_sweep_end(void)
{
    ao_sub(&spangc_sweep.active, 1);
    runtime_leave_self(spangc_self);
}

/* True while spans of the last cycle may still need sweeping. */
bool spangc_sweep_unfinished(void);

/* Sweep s, whose sweepgen the caller moved from sg-2 to sg-1 (between
 * spangc_sweep_begin and _end). With preserve the caller keeps the span
 * (it was popped for allocation); otherwise the span is filed back in its
 * mcentral or, if empty, returned to mheap. Returns true if it was
 * returned to mheap. */
bool spangc_span_sweep(mspan *s, bool preserve);

/* Sweep one unswept span of any class; the number of pages it returned to
 * mheap, or -1 when nothing is left to sweep. */
long spangc_sweep_one(void);

/* Sweep until npages pages went back to mheap or nothing is left. */
void spangc_sweep_reclaim(size_t npages);

/* Make sure s is swept for the current cycle: sweep it here if it needs
 * it, or wait for the thread sweeping it. The caller must be in a runtime
 * section (so that no new cycle starts meanwhile). */
void spangc_ensure_swept(mspan *s);

/* The live object containing p: its span and slot, after making sure the
 * span is swept (so that a dead object is never reported). false for an
 * address in no span or in a free slot. The caller is in a runtime
 * section. */
bool spangc_find_object(uintptr_t p, mspan **sp, uint32_t *idxp);

/* The same, for p the base of the object only (not an interior pointer). */
bool spangc_find_base(uintptr_t p, mspan **sp, uint32_t *idxp);

/* Sweep everything left (sweep termination) and wait for other sweepers. */
void spangc_sweep_finish(void);

#endif
