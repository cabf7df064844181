/*
 * metalloc.h - memory for spangc's own bookkeeping.
 *
 * Span structures, arena index pages, typed-object tables, mark-stack
 * chunks, root tables, specials and profile buckets all come from here and
 * never from the collected heap: collecting never needs to allocate from
 * the heap it is collecting, and a buffer overflow in an object cannot
 * reach the metadata, which lives in separate mappings.
 *
 * Blocks are rounded to a power of two (16 B to 32 KiB) and carved from
 * 256 KiB chunks; larger blocks are mapped directly. Freed blocks go on a
 * free list per size and are reused. Memory is returned zeroed.
 */
#ifndef SPANGC_METALLOC_H
#define SPANGC_METALLOC_H

#include "atomic.h"
#include "base.h"

#include <stddef.h>
#include <stdint.h>

void *spangc_meta_alloc(size_t size);
void spangc_meta_free(void *p, size_t size);

/* Zeroed memory for a gc_type record, from the region of types, or NULL.
 * Never freed. */
void *spangc_meta_alloc_type(size_t size);

/* The region of types handed out so far: [lo, hi), 0 before the first. */
typedef struct spangc_type_space {
    ao_word lo, hi;
} spangc_type_space;
extern SPANGC_STATE spangc_type_space spangc_types;

/* Bytes of metadata obtained from the OS. */
uint64_t spangc_meta_sys(void);

/* fork support: take and release meta_lock (runtime/thread.c). */
void spangc_meta_lock_all(void);
void spangc_meta_unlock_all(void);

#endif
