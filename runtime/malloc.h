/*
 * malloc.h - allocation entry points for spangc's own use (see malloc.c).
 */
#ifndef SPANGC_MALLOC_H
#define SPANGC_MALLOC_H

#include <stddef.h>

struct gc_type;

/* gc_alloc (noscan 0), gc_alloc_atomic (noscan 1) or, with type, a typed
 * allocation, made on the program's behalf: a heap-profile sample starts
 * its stack at caller, the program's call into spangc, rather than inside
 * spangc (gc_realloc's copy, gc_weak_new's handle). */
void *spangc_alloc_for(size_t size, int noscan, const struct gc_type *type, void *caller);

#endif
