/*
 * weak.h - weak handles (see weak.c).
 */
#ifndef SPANGC_WEAK_H
#define SPANGC_WEAK_H

#include "../include/spangc.h"

#include <stdbool.h>
#include <stddef.h>

/* The target died: make w answer NULL from now on (sweep). */
void spangc_weak_clear(gc_weak *w);

/* Whether the readable object of size bytes at p is a weak handle: big
 * enough for one, with the magic for its own address. */
bool spangc_weak_is_handle(const void *p, size_t size);

/* Copy the first n bytes of the object at w, a handle, to dst (gc_realloc's
 * copy, which is no handle): its target address as it is now, loaded
 * atomically, since a sweeper may be clearing it. */
void spangc_weak_copy(void *dst, const gc_weak *w, size_t n);

#endif
