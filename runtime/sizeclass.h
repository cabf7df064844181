/*
 * sizeclass.h - from a request size to its size class and span class.
 *
 * The table itself (class_to_size, class_to_npages, class_to_divmul and
 * the two lookup arrays) is generated at build time by mksizeclasses.c,
 * whose header comment states the rule. A span class is a size class plus
 * one bit: 1 for noscan spans (atomic objects, never scanned), 0 for scan
 * spans. Class 0 means "large object, own span".
 */
#ifndef SPANGC_SIZECLASS_H
#define SPANGC_SIZECLASS_H

#include <stddef.h>
#include <stdint.h>

#include "sizeclasses.h"

#define NUM_SPAN_CLASSES (NUM_SIZE_CLASSES * 2)

/* Size class for 0 <= size <= MAX_SMALL_SIZE: two table loads at most, no
 * loop, no division. */
static inline unsigned size_to_class(size_t size)
{
    if (size <= 1024)
        return size_to_class16[(size + 15) >> 4];
    return size_to_class128[(size - 1024 + 127) >> 7];
}

static inline unsigned make_spanclass(unsigned sizeclass, int noscan)
{
    return (sizeclass << 1) | (unsigned)(noscan != 0);
}

#endif
