/*
 * type.c - building precise layouts (gc_type_new).
 */
#include "type.h"

#include "../runtime/metalloc.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int cmp_u32(const void *a, const void *b)
{
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

const gc_type *gc_type_new(size_t size, const size_t *pointer_offsets, size_t count)
{
    /* With pointers, size must keep every element's words aligned: the
     * layout repeats every size bytes, and a packed 12-byte struct would
     * put element 1's pointer at byte 12. */
    if (size == 0 || (count && !pointer_offsets) || count > size / sizeof(void *) ||
        (count && size % sizeof(void *))) {
        errno = EINVAL;
        return NULL;
    }
    for (size_t i = 0; i < count; i++) {
        size_t off = pointer_offsets[i];
        /* Not off + 8 > size, which wraps for an offset near SIZE_MAX;
         * words[] holds 32-bit word indices. */
        if (off % sizeof(void *) || off > size - sizeof(void *) ||
            off / sizeof(void *) > UINT32_MAX) {
            errno = EINVAL;
            return NULL;
        }
    }
    gc_type *t = spangc_meta_alloc_type(sizeof *t + count * sizeof(uint32_t));
    if (!t) {
        errno = ENOMEM;
        return NULL;
    }
    t->size = size;
    t->nwords = size / sizeof(void *);
    for (size_t i = 0; i < count; i++)
        t->words[i] = (uint32_t)(pointer_offsets[i] / sizeof(void *));
    qsort(t->words, count, sizeof t->words[0], cmp_u32);
    /* Drop duplicates: listing a word twice means the same as once. */
    size_t n = 0;
    for (size_t i = 0; i < count; i++)
        if (n == 0 || t->words[n - 1] != t->words[i])
            t->words[n++] = t->words[i];
    t->nptr = (uint32_t)n;
    t->magic = GC_TYPE_MAGIC;
    return t;
}
