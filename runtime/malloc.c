/*
 * malloc.c - the allocation API: gc_alloc and friends [Go: malloc.go].
 *
 * Small objects (up to 32 KiB) come from the calling thread's mcache. The
 * fast path, inlined into each public function, is:
 *
 *   size class lookup (table) -> the cached span of the span class ->
 *   count-trailing-zeros on its alloc_cache -> bump freeindex
 *
 * inside a runtime section (runtime/thread.h), with no lock and no atomic
 * read-modify-write. It clears the slot only if the span's needzero says
 * the slot may hold old data. Everything else (a full span, a typed object
 * in a span without a type table, a profile sample, debug modes, large
 * objects, errors) goes to spangc_alloc_slow.
 *
 * Out of memory: the slow path runs one collection and tries again, then
 * calls the embedder's oom_fn and tries once more, then returns NULL.
 */
#include "malloc.h"

#include "mcache.h"
#include "mcentral.h"
#include "metalloc.h"
#include "mheap.h"
#include "mstats.h"
#include "thread.h"
#include "track.h"

#include "../gc/debug.h"
#include "../gc/gc.h"
#include "../gc/options.h"
#include "../gc/profile.h"
#include "../gc/sweep.h"
#include "../gc/type.h"
#include "../gc/weak.h"

#include <errno.h>
#include <string.h>

/* Tests only (gc/gc.h): set by a test before the allocation it targets. */
SPANGC_STATE void (*spangc_test_in_large_alloc)(void);

/* The usable size of an object allocated for size bytes. */
static size_t usable_size(size_t size)
{
    return size > MAX_SMALL_SIZE ? round_up(size, PAGE_SIZE) : class_to_size[size_to_class(size)];
}

/* ---- slow path ---------------------------------------------------------- */

/* The palette is full: give the span one layout pointer per slot. */
static bool span_types_overflow(mspan *s)
{
    const gc_type **full = spangc_meta_alloc(s->nelems * sizeof *full);
    if (!full)
        return false;
    for (uint32_t i = 0; i < s->nelems; i++)
        full[i] = span_type_of(s, i); /* types is not published yet */
    s->last_type = NULL; /* typed allocations now take the slow path */
    ao_store_rel(&s->types, (uintptr_t)full);
    return true;
}

/* Record type as the layout of slot idx (mspan.h); false when out of
 * metadata memory. */
static bool span_set_type(mspan *s, uint32_t idx, const gc_type *type)
{
    const gc_type **full = span_full_types(s);
    if (!full && s->last_type != type) {
        if (!s->type_idx) {
            uint8_t *table = spangc_meta_alloc(s->nelems);
            if (!table)
                return false;
            /* Released after the allocator cleared it: another thread's
             * gc_realloc of an older object of this span reads it
             * (span_type_of) while this thread creates it. */
            ao_store_rel((ao_word *)&s->type_idx, (uintptr_t)table);
        }
        unsigned k = 0;
        while (k < s->npalette && s->palette[k] != type)
            k++;
        if (k == SPAN_PALETTE) {
            if (!span_types_overflow(s))
                return false;
            full = span_full_types(s);
        } else {
            if (k == s->npalette)
                s->palette[s->npalette++] = type;
            s->last_type = type;
            s->last_idx = (uint8_t)(k + 1);
        }
    }
    if (full)
        full[idx] = type;
    else
        s->type_idx[idx] = s->last_idx;
    return true;
}

static void *alloc_large(spangc_thread *t, size_t size, int noscan, const gc_type *type)
{
    size_t npages = (size + PAGE_SIZE - 1) >> PAGE_SHIFT;
    if (npages == 0)
        npages = 1;
    runtime_enter(t);
    mspan *s = spangc_mheap_alloc(npages, make_spanclass(0, noscan));
    if (!s) {
        runtime_leave(t);
        return NULL;
    }
    span_set_freeindex(s, 1);
    s->alloc_count = 1;
    s->alloc_count_base = 1;
    s->alloc_cache = 0;
    if (type && !noscan) {
        s->large_type = type;
        ao_store_rel(&s->types, (uintptr_t)&s->large_type);
    }
    void *p = (void *)s->base;
    size_t clear = s->needzero ? s->elemsize : 0;
    if (spangc_track_slots)
        track_alloc(p, s->elemsize);
    ao_add(&spangc_mstats.mallocs, 1);
    ao_add(&spangc_mstats.total_alloc, s->elemsize);
    ao_add(&spangc_mstats.heap_alloc, s->elemsize);
    ao_add(&spangc_mstats.heap_live, s->elemsize);
    ao_add(&spangc_mstats.large_since_mark, s->elemsize);
    spangc_mcentral_add_large(s);
    if (spangc_test_in_large_alloc)
        spangc_test_in_large_alloc();
    /* A stop requested during the section happens in runtime_leave, and
     * the collection it serves must find the object: p, the address, is
     * live across that call (a register the stop saves, or our frame),
     * where s, which is all that was live here before, points at metadata
     * and kept nothing alive; the object was freed before it was returned.
     * The asm makes p live there whatever the compiler would rather do. */
    runtime_leave(t);
    __asm__ volatile("" : : "r"(p) : "memory");
    /* Checking and clearing a large object can take long; doing it outside
     * the runtime section keeps it out of other threads' stop-the-world
     * wait. p, held here, keeps s in use. */
    if (spangc_cfg.poison)
        spangc_debug_alloc_large(s);
    if (clear)
        memset(p, 0, clear);
    return p;
}

/* *due, when not NULL, asks for the pacer's check before a refill: the
 * allocation then stops there, returning NULL with *due set, if the heap
 * has reached its goal. Between refills heap_live does not move for this
 * thread (a cached span's free slots count from the moment it is cached),
 * so checking at every slow path only read a line other threads write. */
static void *alloc_small(spangc_thread *t, size_t size, int noscan, const gc_type *type,
                         bool *due)
{
    unsigned sc = make_spanclass(size_to_class(size), noscan);
    mcache *c = &t->cache;
    void *p = NULL;
    runtime_enter(t);
    mspan *s = c->alloc[sc];
    uint32_t idx = spangc_span_next_free(s);
    if (idx >= s->nelems) {
        if (due && spangc_gc_due(0)) {
            *due = true;
            goto out;
        }
        s = spangc_mcache_refill(c, sc);
        if (!s)
            goto out;
        idx = spangc_span_next_free(s);
    }
    if (type && !span_set_type(s, idx, type)) {
        /* The slot stays taken until the next sweep frees it. */
        goto out;
    }
    p = (void *)(s->base + (uintptr_t)idx * s->elemsize);
    if (spangc_track_slots)
        spangc_debug_alloc(s, idx);
    if (s->needzero)
        memset(p, 0, s->elemsize);
out:
    runtime_leave(t);
    return p;
}

static void *try_alloc(spangc_thread *t, size_t size, int noscan, const gc_type *type,
                       bool *due)
{
    if (size > MAX_SMALL_SIZE)
        return alloc_large(t, size, noscan, type);
    return alloc_small(t, size, noscan, type, due);
}

void *spangc_alloc_slow(size_t size, int noscan, const gc_type *type, void *caller);

NOINLINE void *spangc_alloc_slow(size_t size, int noscan, const gc_type *type, void *caller)
{
    spangc_thread *t = spangc_self;
    if (unlikely(!t)) {
        errno = EPERM;
        return NULL;
    }
    /* A request bigger than the machine's memory can never be met: refuse
     * it before collecting, calling the hook, or taking address space and
     * arena metadata for it (a page pointer per 8 KiB: gigabytes for a
     * request of terabytes). Also keeps page arithmetic from overflowing. */
    if (unlikely(size > spangc_heap.max_request)) {
        errno = ENOMEM;
        return NULL;
    }
    mcache *c = &t->cache;
    bool debug = spangc_debug_slow_path();
    /* The fast path has been counting down fast_budget, which is the
     * distance to the next profile sample unless a debug mode zeroed it. */
    if (!debug)
        c->next_sample = c->fast_budget;
    if (unlikely(spangc_profile_rate_changed(c)))
        c->next_sample = spangc_profile_next_sample(c);
    /* A large object counts before it is allocated: collecting first lets
     * it reuse the garbage, where counting it after would let the heap
     * overshoot its goal by the whole object (a string doubled in a loop
     * kept one dead copy too many at its peak). A small one is counted
     * with its span's free bytes when the span is cached, so the check
     * waits for a refill (alloc_small). */
    uint64_t usable = usable_size(size);
    bool collected = true, due = false;
    if (unlikely(spangc_cfg.stress) && ++c->stress_count >= spangc_cfg.stress) {
        c->stress_count = 0;
        spangc_collect(COLLECT_STRESS);
    } else if (size > MAX_SMALL_SIZE && spangc_gc_due(usable)) {
        spangc_collect_auto(usable);
    } else {
        collected = false;
    }
    void *p = try_alloc(t, size, noscan, type, collected ? NULL : &due);
    if (due) {
        spangc_collect_auto(0);
        p = try_alloc(t, size, noscan, type, NULL);
    }
    if (unlikely(!p)) {
        spangc_collect(COLLECT_FULL);
        p = try_alloc(t, size, noscan, type, NULL);
        if (!p && spangc_cfg.oom_fn) {
            spangc_cfg.oom_fn(size);
            p = try_alloc(t, size, noscan, type, NULL);
        }
        if (!p) {
            errno = ENOMEM;
            return NULL;
        }
    }
    /* Sampling counts usable bytes, as the fast path does: the size a
     * sample records, which pprof's estimate divides by. Counting the
     * bytes requested made every estimate low by requested / usable (half
     * for 17-byte requests in 32-byte slots) [Go: mallocgc samples by the
     * rounded size too]. */
    if (unlikely(usable >= c->next_sample)) {
        uint64_t rate = c->sample_rate;
        c->next_sample = spangc_profile_next_sample(c);
        spangc_profile_sample((uintptr_t)p, usable, caller, rate);
    } else {
        c->next_sample -= usable;
    }
    c->fast_budget = debug ? 0 : c->next_sample;
    return p;
}

/* ---- fast path ---------------------------------------------------------- */

/* Clear a slot. Slots are multiples of 16 bytes and 16-aligned, so a 16-
 * or 32-byte slot takes two 16-byte stores (the same one twice for 16);
 * a call to memset for a 32-byte node cost more than the rest of the fast
 * path (8 % of GCBench's time, which this cut by 12-15 %). Larger slots
 * keep memset: inline stores up to 64 bytes, or a store loop, made the
 * mixed sizes of allocbench 8 % and 80 % slower (mispredicted branches). */
typedef uint64_t zero16 __attribute__((vector_size(16), may_alias));

static inline __attribute__((always_inline)) void clear_slot(void *p, size_t size)
{
    char *c = p;
    const zero16 z = {0, 0};
    if (size <= 32) {
        *(zero16 *)c = z;
        *(zero16 *)(c + size - 16) = z;
    } else {
        memset(p, 0, size);
    }
}

/* Free slots have no layout (sweeping resets the entries of the slots it
 * frees, mspan.h), so only a typed allocation writes one: the byte of the
 * palette entry it used last, the only one the fast path handles. caller:
 * where the program called spangc, the first frame of a profile sample's
 * stack; NULL for the caller of this function's caller (gc_alloc's), read
 * only on the slow path, so that the fast path does not load it. */
static inline __attribute__((always_inline)) void *alloc_fast(size_t size, int noscan,
                                                             const gc_type *type, void *caller)
{
    spangc_thread *t = spangc_self;
    if (likely(t != NULL) && likely(size <= MAX_SMALL_SIZE)) {
        unsigned sc = make_spanclass(size_to_class(size), noscan);
        runtime_enter(t);
        /* Read the span inside the section: a stop before it could flush
         * this cache. The budget counts slots, which the sampler counts
         * (spangc_alloc_slow); the empty span's 0 passes the compare and
         * then has no free slot. */
        mspan *s = t->cache.alloc[sc];
        uintptr_t p;
        if (likely(!type || s->last_type == type) && likely(s->elemsize < t->cache.fast_budget) &&
            likely((p = span_next_free_fast(s)) != 0)) {
            t->cache.fast_budget -= s->elemsize;
#if defined(SPANGC_ASAN)
            track_alloc((void *)p, s->elemsize);
#endif
            if (s->needzero)
                clear_slot((void *)p, s->elemsize);
            if (type)
                s->type_idx[s->freeindex - 1] = s->last_idx;
            runtime_leave(t);
            return (void *)p;
        }
        runtime_leave(t);
    }
    return spangc_alloc_slow(size, noscan, type, caller ? caller : __builtin_return_address(0));
}

void *gc_alloc(size_t size)
{
    return alloc_fast(size, 0, NULL, NULL);
}

void *gc_alloc_atomic(size_t size)
{
    return alloc_fast(size, 1, NULL, NULL);
}

/* For spangc's own allocations on the program's behalf (gc_realloc's new
 * object, a weak handle), so that a profile blames the program's call
 * rather than spangc's. */
void *spangc_alloc_for(size_t size, int noscan, const gc_type *type, void *caller)
{
    return alloc_fast(size, noscan, type, caller);
}

void *gc_alloc_typed(size_t size, const gc_type *type)
{
    if (unlikely(!spangc_type_valid(type))) {
        errno = EINVAL;
        return NULL;
    }
    if (type->nptr == 0)
        return alloc_fast(size, 1, NULL, NULL);
    return alloc_fast(size, 0, type, NULL);
}

/* ---- object lookup ------------------------------------------------------ */

void *gc_base(const void *ptr)
{
    spangc_thread *t = spangc_self;
    uintptr_t p = (uintptr_t)ptr;
    if (!t || !spangc_in_heap_range(p))
        return NULL;
    void *base = NULL;
    mspan *s;
    uint32_t idx;
    runtime_enter(t);
    if (spangc_find_object(p, &s, &idx))
        base = (void *)(s->base + (uintptr_t)idx * s->elemsize);
    runtime_leave(t);
    return base;
}

size_t gc_size(const void *ptr)
{
    spangc_thread *t = spangc_self;
    uintptr_t p = (uintptr_t)ptr;
    if (!t || !spangc_in_heap_range(p))
        return 0;
    size_t size = 0;
    mspan *s;
    uint32_t idx;
    runtime_enter(t);
    if (spangc_find_base(p, &s, &idx))
        size = s->elemsize;
    runtime_leave(t);
    return size;
}

void *gc_realloc(void *ptr, size_t size)
{
    if (!ptr)
        return gc_alloc(size);
    spangc_thread *t = spangc_self;
    if (!t) {
        errno = EPERM;
        return NULL;
    }
    uintptr_t p = (uintptr_t)ptr;
    mspan *s;
    uint32_t idx;
    bool ok = false;
    size_t old_size = 0;
    int noscan = 0;
    const gc_type *type = NULL;
    runtime_enter(t);
    if (spangc_in_heap_range(p) && spangc_find_base(p, &s, &idx)) {
        ok = true;
        old_size = s->elemsize;
        noscan = span_is_noscan(s);
        type = span_type_of(s, idx);
    }
    runtime_leave(t);
    if (!ok) {
        errno = EINVAL;
        return NULL;
    }
    /* In place while at least half the object stays in use, or a new one
     * would be no smaller. Otherwise a copy: a buffer cut from megabytes
     * to a few bytes must not keep its whole span alive, which is what a
     * realloc user expects. A weak handle is always copied (the copy is
     * no handle): clearing its tail would clear its magic, and the
     * object's one handle, which gc_weak_new keeps returning, would answer
     * EINVAL for the rest of the object's life. */
    bool handle = spangc_weak_is_handle(ptr, old_size);
    if (size <= old_size && (size >= old_size / 2 || usable_size(size) == old_size) && !handle) {
        memset((char *)ptr + size, 0, old_size - size);
        return ptr;
    }
    /* A typed object's span is scanned: a layout without pointers gives
     * an atomic object, with no type recorded. */
    void *q = spangc_alloc_for(size, type ? 0 : noscan, type, __builtin_return_address(0));
    size_t n = size < old_size ? size : old_size;
    if (q && handle)
        spangc_weak_copy(q, ptr, n);
    else if (q)
        memcpy(q, ptr, n);
    return q;
}
