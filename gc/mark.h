/*
 * mark.h - marking: the grey stack and the scanners (see mark.c).
 */
#ifndef SPANGC_MARK_H
#define SPANGC_MARK_H

#include "../runtime/mspan.h"

/* Start the mark workers a parallel mark will use (gc_options.markers),
 * if they are not running yet. Before the world is stopped, never while:
 * pthread_create takes the dynamic linker's and malloc's locks, which a
 * stopped thread may hold. */
void spangc_mark_start_workers(void);

/* Prepare for a mark (world stopped). With parallel, the started mark
 * workers join; they take work as the collecting thread shares it. */
void spangc_mark_begin(bool parallel);

/* Scan [lo, hi) conservatively: every aligned word that points into an
 * allocated object marks it. */
void spangc_mark_range(uintptr_t lo, uintptr_t hi);

/* Mark the object containing p, if any (one conservative word). */
void spangc_mark_word(uintptr_t p);

/* Scan the object at base obj (marked or not) without marking it: its
 * referents are marked. Used for finalizable objects. */
void spangc_mark_scan_object(uintptr_t obj);

/* Empty the collecting thread's grey stack (between roots). */
void spangc_mark_drain(void);

/* Mark everything left, with every marker; wait for the workers; recover
 * from grey-stack overflow. Returns the bytes marked since begin. */
uint64_t spangc_mark_finish(void);

/* True if the grey stack overflowed since spangc_mark_begin. */
bool spangc_mark_overflowed(void);

/* Marking into a second bitmap (verify mode, gc/debug.c): while a bitmap
 * array is installed, marks go there instead of mark_bits. */
typedef uint64_t *(*spangc_mark_bits_fn)(mspan *s);
void spangc_mark_set_bitmap(spangc_mark_bits_fn fn);

/* Tests only: the bytes marker i (0: the collecting thread) marked in
 * the last mark; 0 for a marker that mark did not have. */
uint64_t spangc_mark_bytes_of(unsigned i);

/* fork support: the workers do not exist in the child. */
void spangc_mark_reinit_child(void);

/* Tests only: a void (*)(void), called by a mark worker when it wakes for
 * a mark, before it joins it. A word, read atomically: the test clears it
 * while a worker may be reading it. */
extern SPANGC_STATE ao_word spangc_test_before_join;

#endif
