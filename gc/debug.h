/*
 * debug.h - the debug modes: verify, poison, and the memory checkers
 * (see debug.c).
 */
#ifndef SPANGC_DEBUG_H
#define SPANGC_DEBUG_H

#include "../runtime/mspan.h"

/* True when sweeping must visit each freed slot (poison mode, an
 * AddressSanitizer build, or a run under Valgrind). Set by gc_init. */
extern SPANGC_STATE bool spangc_track_slots;

void spangc_debug_init(void);

/* Sweep: s's freed slots are the allocated, unmarked ones; called before
 * the mark bits become the alloc bits. */
void spangc_debug_freed(mspan *s);

/* Allocation (slow path): slot idx of s is about to be handed out. */
void spangc_debug_alloc(mspan *s, uint32_t idx);

/* Poison mode: large span s, just taken from mheap, still holds only what
 * freeing left there (its pages may have held any freed objects). */
void spangc_debug_alloc_large(mspan *s);

/* A span is going back to mheap. */
void spangc_debug_span_freed(mspan *s);

/* Verify mode, world stopped, right after the mark: mark everything again
 * into separate bitmaps and die if any object found reachable was not
 * marked the first time [Go: gccheckmark]. */
void spangc_debug_checkmark(void);

#endif
