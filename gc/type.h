/*
 * type.h - precise object layouts (gc_type, see spangc.h).
 *
 * A gc_type lists the word indices of one element that may hold pointers.
 * An object allocated with it is an array of such elements filling the
 * object; marking visits words[] of each element in turn. Types are built
 * once and live forever, in metadata memory.
 */
#ifndef SPANGC_TYPE_H
#define SPANGC_TYPE_H

#include "../include/spangc.h"
#include "../runtime/metalloc.h"

#include <stdint.h>

#define GC_TYPE_MAGIC 0x7370616e67747970ull /* "spangtyp" */

struct gc_type {
    uint64_t magic;
    size_t size;      /* bytes per element */
    size_t nwords;    /* size / sizeof(void *), rounded down */
    uint32_t nptr;    /* entries in words[] */
    uint32_t words[]; /* ascending word indices of pointer words */
};

/* Checked by address first (runtime/metalloc.c keeps types in a region of
 * their own), so that a pointer that is not a type is never read
 * through: NULL, a wild or a misaligned one gives false, not a fault. */
static inline int spangc_type_valid(const gc_type *t)
{
    /* lo is published after hi (metalloc.c): with lo read, hi is at least
     * lo. Read as 0 (no type yet), a hi made since must not count. */
    uintptr_t lo = ao_load_acq(&spangc_types.lo);
    uintptr_t off = (uintptr_t)t - lo;
    return lo != 0 && off < ao_load_acq(&spangc_types.hi) - lo && off % 16 == 0 &&
           t->magic == GC_TYPE_MAGIC;
}

#endif
