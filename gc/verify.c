/*
 * verify.c - heap consistency checks.
 *
 * For every IN_USE span: its page entries point at it (mheap), its
 * sweepgen is current, alloc_count equals the number of allocated slots,
 * no mark bit is set outside a mark, a span on a partial list has a free
 * slot and one on a full list has none, and the alloc cache agrees with
 * the bitmap at freeindex. Then the totals: the bytes in allocated slots
 * equal mstats.heap_alloc, and the span and page counters match.
 */
#include "verify.h"

#include "gc.h"
#include "roots.h"
#include "sweep.h"
#include "../runtime/mcentral.h"
#include "../runtime/mheap.h"
#include "../runtime/mstats.h"
#include "../runtime/thread.h"

#include <stdio.h>

typedef struct totals {
    uint64_t bytes, objects, spans;
    uintptr_t sg;
} totals;

static void check_span(mspan *s, void *arg)
{
    totals *t = arg;
    if (ao_load(&s->sweepgen) != t->sg)
        spangc_throw("verify: span %p has sweepgen %lu, heap %lu", (void *)s->base,
                     (unsigned long)ao_load(&s->sweepgen), (unsigned long)t->sg);
    uint32_t allocated = 0;
    span_fold_marks(s); /* the workers' words too (mspan.h) */
    for (uint32_t i = 0; i < s->nelems; i++) {
        if (span_slot_allocated(s, i))
            allocated++;
        if (bitmap_get(s->mark_bits, i))
            spangc_throw("verify: span %p slot %u marked outside a mark", (void *)s->base, i);
    }
    if (allocated != s->alloc_count)
        spangc_throw("verify: span %p (size %zu) counts %u objects, bitmap has %u",
                     (void *)s->base, s->elemsize, s->alloc_count, allocated);
    if (s->freeindex < s->nelems) {
        uint32_t fi = s->freeindex;
        uint64_t expect = ~s->alloc_bits[fi >> 6] >> (fi & 63);
        if (s->alloc_cache != expect)
            spangc_throw("verify: span %p alloc cache disagrees with its bitmap",
                         (void *)s->base);
    }
    mcentral *c = &spangc_central[s->spanclass];
    if (s->list) {
        bool full = s->list == &c->full[0] || s->list == &c->full[1];
        bool partial = s->list == &c->partial[0] || s->list == &c->partial[1];
        if (!full && !partial)
            spangc_throw("verify: span %p is on another class's list", (void *)s->base);
        if (full != (s->alloc_count == s->nelems))
            spangc_throw("verify: span %p with %u of %u objects on a %s list", (void *)s->base,
                         s->alloc_count, s->nelems, full ? "full" : "partial");
    }
    t->bytes += (uint64_t)s->alloc_count * s->elemsize;
    t->objects += s->alloc_count;
    t->spans++;
}

void spangc_verify_heap_stopped(void)
{
    spangc_mheap_verify();
    totals t = {.sg = ao_load(&spangc_heap.sweepgen)};
    spangc_mheap_for_each_span(check_span, &t);
    if (t.spans != ao_load(&spangc_heap.nspans_inuse))
        spangc_throw("verify: %lu spans in use, counter says %lu", (unsigned long)t.spans,
                     (unsigned long)ao_load(&spangc_heap.nspans_inuse));
    uint64_t heap_alloc = ao_load(&spangc_mstats.heap_alloc);
    uint64_t objects = ao_load(&spangc_mstats.mallocs) - ao_load(&spangc_mstats.frees);
    if (t.bytes != heap_alloc || t.objects != objects)
        spangc_throw("verify: spans hold %lu objects (%lu bytes), statistics say %lu (%lu)",
                     (unsigned long)t.objects, (unsigned long)t.bytes, (unsigned long)objects,
                     (unsigned long)heap_alloc);
}

static void verify_cb(void *arg)
{
    (void)arg;
    spangc_verify_heap_stopped();
}

void spangc_verify_heap(void)
{
    spangc_with_world_stopped(verify_cb, NULL);
}

/* ---- why is an object alive? -------------------------------------------- */

typedef struct referrer_walk {
    FILE *out;
    uintptr_t lo, hi; /* the object whose referrers are wanted */
    int depth, found;
} referrer_walk;

static spangc_referrers explain_object(FILE *out, uintptr_t obj, size_t size, int depth);

/* Allocated objects of s with a word pointing into w's object (other
 * than the object itself), each explained in turn, a few levels up. */
static void find_heap_referrers(mspan *s, void *arg)
{
    referrer_walk *w = arg;
    if (span_is_noscan(s))
        return;
    for (uint32_t i = 0; i < s->nelems && w->found < 8; i++) {
        uintptr_t base = s->base + (uintptr_t)i * s->elemsize;
        if (!span_slot_allocated(s, i) || (base <= w->lo && w->lo < base + s->elemsize))
            continue;
        uintptr_t a = spangc_find_word_into(base, base + s->elemsize, w->lo, w->hi);
        if (!a)
            continue;
        w->found++;
        fprintf(w->out, "spangc:%*s%p is referenced from heap object %p (size %zu) at %p\n",
                1 + 2 * w->depth, "", (void *)w->lo, (void *)base, s->elemsize, (void *)a);
        if (w->depth < 4)
            (void)explain_object(w->out, base, s->elemsize, w->depth + 1);
    }
}

static spangc_referrers explain_object(FILE *out, uintptr_t obj, size_t size, int depth)
{
    spangc_referrers n = spangc_roots_explain(out, obj, size);
    referrer_walk w = {.out = out, .lo = obj, .hi = obj + size, .depth = depth};
    spangc_mheap_for_each_span(find_heap_referrers, &w);
    n.heap = w.found;
    return n;
}

typedef struct explain_request {
    FILE *out;
    const void *obj;
    spangc_referrers n;
    bool found;
} explain_request;

static void explain_cb(void *arg)
{
    explain_request *r = arg;
    mspan *s;
    uint32_t idx;
    r->found = spangc_find_object((uintptr_t)r->obj, &s, &idx);
    if (r->found)
        r->n = explain_object(r->out, s->base + (uintptr_t)idx * s->elemsize, s->elemsize, 0);
}

bool spangc_debug_explain(FILE *out, const void *obj, spangc_referrers *n)
{
    explain_request r = {.out = out, .obj = obj};
    spangc_with_world_stopped(explain_cb, &r);
    if (n)
        *n = r.n;
    return r.found;
}
