/*
 * mspan.c - span layout and the slot-finding slow path (see mspan.h).
 */
#include "mspan.h"

#include <string.h>

SPANGC_STATE mspan spangc_empty_span;

void spangc_span_init(mspan *s, unsigned spanclass, uint64_t *big_bits)
{
    unsigned sizeclass = spanclass >> 1;
    s->spanclass = (uint8_t)spanclass;
    s->nelems = span_class_nelems(spanclass, s->npages);
    if (sizeclass == 0) {
        s->elemsize = s->npages * PAGE_SIZE;
        s->divmul = 0;
    } else {
        s->elemsize = class_to_size[sizeclass];
        s->divmul = class_to_divmul[sizeclass];
    }
    if ((span_big_bits_bytes(s->nelems) != 0) != (big_bits != NULL))
        spangc_throw("span %p of %u slots set up with%s a bitmap block", (void *)s->base,
                     s->nelems, big_bits ? "" : "out");
    span_bound_store(&s->limit, s->base + (uintptr_t)s->nelems * s->elemsize);
    span_set_freeindex(s, 0);
    s->alloc_count = 0;
    s->alloc_count_base = 0;
    s->big_bits = big_bits;
    if (big_bits) {
        uint32_t words = (s->nelems + 63) / 64;
        s->alloc_bits = big_bits;
        s->mark_bits = big_bits + words;
        s->par_bits = (uint64_t(*)[2])(big_bits + 2 * words);
    } else {
        memset(s->bits, 0, sizeof s->bits);
        memset(s->inline_par, 0, sizeof s->inline_par);
        s->alloc_bits = s->bits[0];
        s->mark_bits = s->bits[1];
        s->par_bits = s->inline_par;
    }
    s->alloc_cache = ~(uint64_t)0;
    ao_store(&s->types, 0);
    s->large_type = NULL;
    s->type_idx = NULL;
    s->npalette = 0;
    s->last_idx = 0;
    s->last_type = NULL;
    s->specials = NULL;
    s->list = NULL;
    s->next = s->prev = NULL;
}

void spangc_span_refill_cache(mspan *s)
{
    uint32_t fi = s->freeindex;
    if (fi >= s->nelems) {
        s->alloc_cache = 0;
        return;
    }
    uint64_t word = ~s->alloc_bits[fi >> 6];
    s->alloc_cache = word >> (fi & 63);
}

uint32_t spangc_span_next_free(mspan *s)
{
    uint32_t fi = s->freeindex;
    if (unlikely(fi > s->nelems || s->nelems > MAX_OBJECTS_PER_SPAN))
        spangc_throw("corrupted span %p: free index %u of %u slots", (void *)s->base, fi,
                     s->nelems);
    if (fi >= s->nelems)
        return s->nelems;
    uint64_t cache = s->alloc_cache;
    while (cache == 0) {
        fi = (fi + 64) & ~(uint32_t)63;
        if (fi >= s->nelems) {
            span_set_freeindex(s, s->nelems);
            s->alloc_cache = 0;
            return s->nelems;
        }
        cache = ~s->alloc_bits[fi >> 6];
    }
    unsigned bit = (unsigned)__builtin_ctzll(cache);
    uint32_t idx = fi + bit;
    if (idx >= s->nelems) {
        span_set_freeindex(s, s->nelems);
        s->alloc_cache = 0;
        return s->nelems;
    }
    span_set_freeindex(s, idx + 1);
    s->alloc_cache = (cache >> bit) >> 1;
    if ((s->freeindex & 63) == 0)
        spangc_span_refill_cache(s);
    s->alloc_count++;
    return idx;
}

uint32_t spangc_bitmap_count(const uint64_t *bits, uint32_t n)
{
    uint32_t count = 0, i = 0;
    for (; i + 64 <= n; i += 64)
        count += (uint32_t)__builtin_popcountll(bits[i >> 6]);
    if (i < n)
        count += (uint32_t)__builtin_popcountll(bits[i >> 6] & (((uint64_t)1 << (n - i)) - 1));
    return count;
}
