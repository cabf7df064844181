/*
 * mheap.c - the page heap (see mheap.h for the invariants).
 */
#include "mheap.h"

#include "metalloc.h"
#include "os.h"
#include "track.h"
#include "../gc/debug.h"
#include "../gc/options.h"
#include "../gc/sweep.h"

#include <string.h>

SPANGC_STATE mheap spangc_heap = {.lock = SPANGC_LOCK_INIT};

/* Committed ranges of the heap, in the order they were reserved, for
 * walking every span.
 * A node is added when a reservation starts; its end grows with commits.
 * Guarded by mheap.lock for writers; the walkers run with the world
 * stopped or under the lock. */
typedef struct heap_range {
    struct heap_range *next;
    uintptr_t base, end;
} heap_range;

static SPANGC_STATE heap_range *ranges, *last_range;

/* Growth granularity: commit at least this much at a time. Committing does
 * not touch the pages, so a larger step only costs address space. */
#define GROW_MIN ((size_t)1 << 20)

/* Where the first arena is asked for [Go: 0x00c0 << 32]. Left to itself
 * the kernel (or Valgrind, which places mappings low) may put the heap at
 * an address that is also a common non-pointer value: under Valgrind the
 * first object landed on 0x8000000, which is DF_1_PIE, present in every
 * PIE program's dynamic section, so it could never be freed. Words that
 * look like 0xc0XXXXXXXX are rare. A hint the kernel cannot honour (a
 * sanitizer's shadow is there) just falls back to its own choice;
 * ThreadSanitizer only accepts application memory in its own ranges, so
 * it keeps the kernel's. */
#if defined(SPANGC_TSAN)
#define HEAP_HINT ((uintptr_t)0)
#else
#define HEAP_HINT ((uintptr_t)0xc0 << 32)
#endif

void spangc_mheap_init(void)
{
    uint64_t machine = spangc_os_memory_total();
    size_t space = (size_t)1 << (ADDRESS_BITS - 1);
    spangc_heap.max_request = machine < space ? (size_t)machine : space;
    spangc_heap.rng = 2463534242u;
    spangc_heap.sweepgen = 2; /* so that sg - 2 never wraps */
}

/* ---- span structures --------------------------------------------------- */

static mspan *span_struct_alloc(void)
{
    mheap *h = &spangc_heap;
    mspan *s = h->span_pool;
    if (s) {
        h->span_pool = s->next;
    } else {
        /* Carved from a batch one at a time, so that a small heap touches
         * only the structures it uses; the pool never gives them back. */
        if (h->span_batch_cur == h->span_batch_end) {
            enum { BATCH = 64 };
            mspan *batch = spangc_meta_alloc(BATCH * sizeof(mspan));
            if (!batch)
                return NULL;
            h->span_batch_cur = batch;
            h->span_batch_end = batch + BATCH;
        }
        s = h->span_batch_cur++;
        lock_init(&s->speciallock);
    }
    s->next = NULL;
    s->tleft = s->tright = NULL;
    return s;
}

static void span_struct_free(mspan *s)
{
    ao_store_rel(&s->state, SPAN_DEAD);
    s->next = spangc_heap.span_pool;
    spangc_heap.span_pool = s;
}

/* ---- the free-span treap ----------------------------------------------- */

/* Free spans in address order; each node also keeps tmax, the most pages
 * of any span in its subtree, so the lowest-addressed span that fits is
 * found in one descent [Go: the page allocator's radix summaries serve
 * the same address-ordered first fit]. Every function that changes a
 * node's children recomputes its tmax on the way back up. */
static size_t tmax_of(const mspan *t)
{
    return t ? t->tmax : 0;
}

static void treap_update(mspan *t)
{
    size_t m = t->npages, l = tmax_of(t->tleft), r = tmax_of(t->tright);
    if (l > m)
        m = l;
    t->tmax = r > m ? r : m;
}

/* Split t into l (bases < base) and r (bases >= base). */
static void treap_split(mspan *t, uintptr_t base, mspan **l, mspan **r)
{
    if (!t) {
        *l = *r = NULL;
        return;
    }
    if (t->base < base) {
        treap_split(t->tright, base, &t->tright, r);
        *l = t;
    } else {
        treap_split(t->tleft, base, l, &t->tleft);
        *r = t;
    }
    treap_update(t);
}

/* Merge a and b, every base in a below every base in b. */
static mspan *treap_merge(mspan *a, mspan *b)
{
    if (!a)
        return b;
    if (!b)
        return a;
    if (a->tprio > b->tprio) {
        a->tright = treap_merge(a->tright, b);
        treap_update(a);
        return a;
    }
    b->tleft = treap_merge(a, b->tleft);
    treap_update(b);
    return b;
}

static void treap_insert(mspan *s)
{
    mspan *l, *r;
    uint32_t x = spangc_heap.rng;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    spangc_heap.rng = x;
    s->tprio = x;
    s->tleft = s->tright = NULL;
    s->tmax = s->npages;
    treap_split(spangc_heap.free_root, s->base, &l, &r);
    spangc_heap.free_root = treap_merge(treap_merge(l, s), r);
}

static void treap_remove(mspan *s)
{
    mspan *l, *m, *r;
    treap_split(spangc_heap.free_root, s->base, &l, &r);
    treap_split(r, s->base + 1, &m, &r);
    if (m != s || s->tleft || s->tright)
        spangc_throw("free span %p (%zu pages) missing from the free set", (void *)s->base,
                     s->npages);
    spangc_heap.free_root = treap_merge(l, r);
}

/* The lowest-addressed free span of at least npages pages. */
static mspan *treap_first_fit(size_t npages)
{
    mspan *t = spangc_heap.free_root;
    if (tmax_of(t) < npages)
        return NULL;
    for (;;) {
        if (tmax_of(t->tleft) >= npages)
            t = t->tleft;
        else if (t->npages >= npages)
            return t;
        else
            t = t->tright; /* tmax says a fit is there */
    }
}

/* ---- released pages ---------------------------------------------------- */

/* Which pages are returned to the OS is kept per page, in the arenas'
 * bitmaps, so that heap.released stays exact when a released span merges
 * with a dirty neighbour or is carved up [Go: the scavenged bitmap]. A
 * span's released flag only says "every page is released". */
enum released_op { PAGES_COUNT, PAGES_SET, PAGES_CLEAR };

/* For the pages [base, base + npages * PAGE_SIZE): count the released
 * ones, or mark them all released (returns how many were not) or all not
 * released (returns how many were). mheap.lock. */
static size_t released_pages(uintptr_t base, size_t npages, enum released_op op)
{
    size_t counted = 0;
    while (npages) {
        heap_arena *ha = arena_of(base);
        size_t first = (base & (ARENA_SIZE - 1)) >> PAGE_SHIFT;
        size_t n = PAGES_PER_ARENA - first < npages ? PAGES_PER_ARENA - first : npages;
        for (size_t i = first; i < first + n;) {
            size_t bit = i & 63, cnt = 64 - bit < first + n - i ? 64 - bit : first + n - i;
            uint64_t mask = (cnt == 64 ? ~(uint64_t)0 : ((uint64_t)1 << cnt) - 1) << bit;
            uint64_t *w = &ha->released[i >> 6];
            if (op == PAGES_SET) {
                counted += (size_t)__builtin_popcountll(~*w & mask);
                *w |= mask;
            } else if (*w & mask) {
                /* Written only when a bit changes: most carves find none
                 * set, and a write would make the bitmap's page resident. */
                counted += (size_t)__builtin_popcountll(*w & mask);
                if (op == PAGES_CLEAR)
                    *w &= ~mask;
            }
            i += cnt;
        }
        base += n << PAGE_SHIFT;
        npages -= n;
    }
    return counted;
}

/* ---- freeing and coalescing -------------------------------------------- */

static void mark_free_ends(mspan *s)
{
    spangc_arena_set_pages(s->base, 1, s);
    if (s->npages > 1)
        spangc_arena_set_pages(s->base + (s->npages - 1) * PAGE_SIZE, 1, s);
}

/* Absorb the free neighbour n into s (n is removed from the treap). */
static void absorb(mspan *s, mspan *n)
{
    treap_remove(n);
    bool dirty = (s->released ? 0 : s->needzero) | (n->released ? 0 : n->needzero);
    /* The page bits keep counting the released part exactly. */
    s->released = s->released && n->released;
    s->needzero = dirty;
    /* The age of most of the pages. Taking the newer age would let every
     * span freed next to a big idle block make all of it young again: a
     * heap that shrank, in a program that keeps allocating and freeing at
     * its low end, would never give the idle pages back. */
    if (n->npages > s->npages)
        s->free_since = n->free_since;
    if (n->base < s->base)
        span_bound_store(&s->base, n->base);
    s->npages += n->npages;
    span_struct_free(n);
}

static mspan *free_neighbour(uintptr_t addr, bool before, uintptr_t edge)
{
    mspan *n = spangc_span_of(addr);
    if (!n || ao_load(&n->state) != SPAN_FREE)
        return NULL;
    if (before ? n->base + n->npages * PAGE_SIZE != edge : n->base != edge)
        return NULL;
    return n;
}

/* Put s (state FREE, not in the treap) into the free set, coalescing. */
static void free_locked(mspan *s)
{
    mspan *n = free_neighbour(s->base - PAGE_SIZE, true, s->base);
    if (n)
        absorb(s, n);
    uintptr_t end = s->base + s->npages * PAGE_SIZE;
    n = free_neighbour(end, false, end);
    if (n)
        absorb(s, n);
    mark_free_ends(s);
    treap_insert(s);
}

/* The word of a retired big_bits block that links it to the next one. */
#define RETIRED_NEXT (SPAN_BIG_BITS_BYTES / sizeof(uint64_t) - 1)

void spangc_mheap_free(mspan *s)
{
    if (spangc_track_slots)
        spangc_debug_span_freed(s);
    lock_acquire(&spangc_heap.lock);
    if (ao_load(&s->state) != SPAN_IN_USE)
        spangc_throw("freeing span %p in state %u", (void *)s->base,
                     (unsigned)ao_load(&s->state));
    ao_store_rel(&s->state, SPAN_FREE);
    ao_sub(&spangc_heap.pages_inuse, s->npages);
    ao_sub(&spangc_heap.nspans_inuse, 1);
    ao_add(&spangc_heap.free_pages, s->npages);
    s->needzero = 1;
    s->released = false;
    s->free_since = spangc_nanotime();
    const struct gc_type **full = span_full_types(s);
    if (full && full != &s->large_type)
        spangc_meta_free(full, s->nelems * sizeof *full);
    ao_store(&s->types, 0);
    spangc_meta_free(s->type_idx, s->nelems);
    s->type_idx = NULL;
    if (s->big_bits) {
        s->big_bits[RETIRED_NEXT] = (uintptr_t)spangc_heap.retired_bits;
        spangc_heap.retired_bits = s->big_bits;
        s->big_bits = NULL;
    }
    free_locked(s);
    lock_release(&spangc_heap.lock);
}

void spangc_mheap_free_retired_bits(void)
{
    lock_acquire(&spangc_heap.lock);
    uint64_t *b = spangc_heap.retired_bits;
    spangc_heap.retired_bits = NULL;
    lock_release(&spangc_heap.lock);
    while (b) {
        uint64_t *next = (uint64_t *)(uintptr_t)b[RETIRED_NEXT];
        spangc_meta_free(b, SPAN_BIG_BITS_BYTES);
        b = next;
    }
}

/* ---- growth ------------------------------------------------------------ */

/* The first page of a reservation that does not continue the heap is
 * never used. Copies of a reservation's base address are everywhere a
 * conservative scan looks: gc_init's and the first growth's dead frames,
 * and (when the kernel places the heap) the end address of the mapping
 * just below it, such as a thread stack's top. An object at that address
 * would be kept alive by any of them, which is how the first object of a
 * program used to survive collections it should not have. */
#define GUARD_SIZE PAGE_SIZE

static bool grow_locked(size_t npages)
{
    size_t need = npages * PAGE_SIZE;
    mheap *h = &spangc_heap;
    if (h->end - h->cur < need) {
        size_t want = need + GUARD_SIZE;
        size_t len = want < ARENA_SIZE ? ARENA_SIZE : round_up(want, ARENA_SIZE);
        /* The range record is allocated first: address space reserved
         * without one could never be used nor given back. */
        heap_range *r = spangc_meta_alloc(sizeof *r);
        if (!r)
            return false;
        uintptr_t base = spangc_arena_reserve(len, h->end ? h->end : HEAP_HINT);
        if (!base) {
            spangc_meta_free(r, sizeof *r);
            return false;
        }
        if (base == h->end && last_range) {
            spangc_meta_free(r, sizeof *r); /* contiguous: the last range grows */
        } else {
            /* Not contiguous: the rest of the old reservation is left as
             * unused address space. */
            r->base = r->end = base + GUARD_SIZE;
            if (last_range)
                last_range->next = r;
            else
                ranges = r;
            last_range = r;
            h->cur = base + GUARD_SIZE;
        }
        h->end = base + len;
    }
    size_t commit = need < GROW_MIN ? GROW_MIN : need;
    if (commit > h->end - h->cur)
        commit = h->end - h->cur;
    if (!spangc_os_commit((void *)h->cur, commit))
        return false;
    mspan *s = span_struct_alloc();
    if (!s)
        return false;
    span_bound_store(&s->base, h->cur);
    s->npages = commit / PAGE_SIZE;
    s->needzero = 0;
    s->released = false;
    s->free_since = spangc_nanotime();
    ao_store_rel(&s->state, SPAN_FREE);
    h->cur += commit;
    last_range->end = h->cur;
    ao_add(&h->sys, commit);
    ao_add(&h->free_pages, s->npages);
    free_locked(s);
    return true;
}

/* ---- allocation -------------------------------------------------------- */

/* Take npages from the front of free span s; returns the IN_USE-to-be
 * span (state not yet IN_USE). */
static mspan *carve_locked(mspan *s, size_t npages)
{
    treap_remove(s);
    if (s->npages > npages) {
        mspan *rest = span_struct_alloc();
        if (!rest) {
            treap_insert(s);
            return NULL;
        }
        span_bound_store(&rest->base, s->base + npages * PAGE_SIZE);
        rest->npages = s->npages - npages;
        rest->needzero = s->needzero;
        rest->released = s->released;
        rest->free_since = s->free_since;
        ao_store_rel(&rest->state, SPAN_FREE);
        mark_free_ends(rest);
        treap_insert(rest);
        s->npages = npages;
    }
    /* Released pages fault back in as zeros when touched. */
    size_t back = released_pages(s->base, npages, PAGES_CLEAR);
    if (back)
        ao_sub(&spangc_heap.released, back * PAGE_SIZE);
    if (s->released)
        s->needzero = 0;
    s->released = false;
    /* Not FREE any more (a neighbour being freed must not absorb it),
     * not IN_USE yet (lookups must not trust its layout). */
    ao_store_rel(&s->state, SPAN_INIT);
    ao_sub(&spangc_heap.free_pages, npages);
    ao_add(&spangc_heap.pages_inuse, npages);
    ao_add(&spangc_heap.nspans_inuse, 1);
    spangc_arena_set_pages(s->base, npages, s);
    return s;
}

static size_t release_idle(mspan *t, uint64_t cutoff, size_t *left);

/* How far the memory spangc maps, plus extra bytes about to be mapped,
 * is over 95% of the soft memory limit (0 if under, or no limit). The
 * margin leaves room to grow before the next release [Go: the scavenger's
 * memory-limit goal]. */
static size_t over_limit(uint64_t extra)
{
    uint64_t limit = spangc_memory_limit();
    if (!limit)
        return 0;
    uint64_t target = limit - limit / 20;
    uint64_t mapped = spangc_mapped_bytes() + extra;
    return mapped > target ? (size_t)(mapped - target) : 0;
}

/* Before growing, give free pages back to the OS, on the allocating
 * thread (the background worker may lag behind a thread that allocates
 * fast). The free spans are all too small for this request, or the heap
 * would not be growing, and the heap is about to grow past them: release
 * as many bytes of them as it grows, so that its resident memory stays
 * where it was [Go 1.12: scavenging on heap growth]. A string doubled in
 * a loop leaves each smaller copy free behind it; without this its peak
 * held all of them, a third more than malloc, which unmaps big blocks as
 * soon as they are freed. Over the soft memory limit, release enough to
 * get under it. */
static void release_before_growth_locked(size_t npages)
{
    size_t grow = npages * PAGE_SIZE;
    size_t left = over_limit(grow);
    if (left < grow)
        left = grow;
    release_idle(spangc_heap.free_root, spangc_nanotime(), &left);
}

mspan *spangc_mheap_alloc(size_t npages, unsigned spanclass)
{
    mheap *h = &spangc_heap;
    /* Taken before mheap.lock, so that failing to get it leaves nothing
     * to undo. */
    size_t big_bytes = span_big_bits_bytes(span_class_nelems(spanclass, npages));
    uint64_t *big_bits = NULL;
    if (big_bytes && !(big_bits = spangc_meta_alloc(big_bytes)))
        return NULL;
    lock_acquire(&h->lock);
    mspan *s = treap_first_fit(npages);
    /* Sweeping may free whole spans; try that before growing, until as
     * many pages as wanted are freed [Go: mheap.reclaim]. Those need not
     * be contiguous, so past the soft memory limit go on sweeping until
     * a span fits or nothing is left to sweep: growing there would keep
     * the garbage of unswept spans and map more. */
    while (!s && spangc_sweep_unfinished()) {
        lock_release(&h->lock);
        spangc_sweep_reclaim(npages);
        lock_acquire(&h->lock);
        s = treap_first_fit(npages);
        if (!over_limit(npages * PAGE_SIZE))
            break;
    }
    if (!s) {
        release_before_growth_locked(npages);
        if (grow_locked(npages))
            s = treap_first_fit(npages);
    }
    if (s)
        s = carve_locked(s, npages);
    lock_release(&h->lock);
    if (!s) {
        spangc_meta_free(big_bits, big_bytes);
        return NULL;
    }
    /* Freed pages were closed to memory checkers; these are in use again
     * (free slots of small spans are closed again only once freed). */
    if (spangc_track_slots)
        track_alloc((void *)s->base, npages * PAGE_SIZE);
    spangc_span_init(s, spanclass, big_bits);
    ao_store(&s->sweepgen, ao_load(&h->sweepgen));
    ao_store_rel(&s->state, SPAN_IN_USE); /* publishes the layout */
    return s;
}

/* ---- scavenging -------------------------------------------------------- */

/* Release every idle free span in t (in key order) until *left bytes are
 * done; *left == SIZE_MAX means no budget. A span the kernel refuses to
 * release (locked memory: mlockall) keeps its contents, so it is left
 * dirty, and the pass ends (*left = 0): the next span would fail too. */
static size_t release_idle(mspan *t, uint64_t cutoff, size_t *left)
{
    size_t done = 0;
    while (t && *left) {
        done += release_idle(t->tleft, cutoff, left);
        if (*left && !t->released && t->free_since <= cutoff) {
            if (!spangc_os_release((void *)t->base, t->npages * PAGE_SIZE)) {
                *left = 0;
                break;
            }
            /* Pages released before and merged into t since are released
             * again, which costs nothing, but counted once. */
            size_t bytes = released_pages(t->base, t->npages, PAGES_SET) * PAGE_SIZE;
            t->released = true;
            t->needzero = 0;
            ao_add(&spangc_heap.released, bytes);
            done += bytes;
            *left = *left > bytes ? *left - bytes : 0;
        }
        t = t->tright;
    }
    return done;
}

size_t spangc_mheap_scavenge(uint64_t min_idle_ns, size_t want)
{
    uint64_t now = spangc_nanotime();
    uint64_t cutoff = now > min_idle_ns ? now - min_idle_ns : 0;
    size_t left = want ? want : SIZE_MAX;
    lock_acquire(&spangc_heap.lock);
    size_t done = release_idle(spangc_heap.free_root, cutoff, &left);
    lock_release(&spangc_heap.lock);
    return done;
}

void spangc_mheap_scavenge_to_limit(void)
{
    if (!over_limit(0))
        return; /* no limit, or under it: the usual case needs no lock */
    spangc_thread *t = runtime_enter_self(); /* for mheap.lock (runtime/lock.h) */
    lock_acquire(&spangc_heap.lock);
    size_t left = over_limit(0);
    if (left)
        release_idle(spangc_heap.free_root, spangc_nanotime(), &left);
    lock_release(&spangc_heap.lock);
    runtime_leave_self(t);
}

/* ---- walking and checking ---------------------------------------------- */

void spangc_mheap_walk(void (*fn)(mspan *s, void *arg), void *arg)
{
    for (heap_range *r = ranges; r; r = r->next) {
        uintptr_t p = r->base;
        while (p < r->end) {
            mspan *s = spangc_span_of(p);
            if (!s || s->base != p || ao_load(&s->state) == SPAN_DEAD || s->npages == 0)
                spangc_throw("heap page %p belongs to no span", (void *)p);
            fn(s, arg);
            p += s->npages * PAGE_SIZE;
        }
    }
}

void spangc_mheap_for_each_span(void (*fn)(mspan *s, void *arg), void *arg)
{
    for (heap_range *r = ranges; r; r = r->next) {
        uintptr_t p = r->base;
        while (p < r->end) {
            mspan *s = spangc_span_of(p);
            if (s && s->base == p && ao_load(&s->state) != SPAN_DEAD) {
                if (ao_load(&s->state) == SPAN_IN_USE)
                    fn(s, arg);
                p += s->npages * PAGE_SIZE;
            } else {
                p += PAGE_SIZE;
            }
        }
    }
}

typedef struct verify_state {
    mspan *prev;
    size_t free_spans, free_pages, inuse_pages, released_pages;
} verify_state;

static void verify_span(mspan *s, void *arg)
{
    verify_state *v = arg;
    uintptr_t state = ao_load(&s->state);
    if (state == SPAN_FREE) {
        if (v->prev && ao_load(&v->prev->state) == SPAN_FREE &&
            v->prev->base + v->prev->npages * PAGE_SIZE == s->base)
            spangc_throw("adjacent free spans %p and %p were not coalesced",
                         (void *)v->prev->base, (void *)s->base);
        if (spangc_span_of(s->base + (s->npages - 1) * PAGE_SIZE) != s)
            spangc_throw("free span %p: last page not mapped to it", (void *)s->base);
        size_t released = released_pages(s->base, s->npages, PAGES_COUNT);
        if (s->released && released != s->npages)
            spangc_throw("free span %p is marked released but %zu of its %zu pages are not",
                         (void *)s->base, s->npages - released, s->npages);
        v->free_spans++;
        v->free_pages += s->npages;
        v->released_pages += released;
    } else {
        for (size_t i = 0; i < s->npages; i++)
            if (spangc_span_of(s->base + i * PAGE_SIZE) != s)
                spangc_throw("span %p: page %zu not mapped to it", (void *)s->base, i);
        if (released_pages(s->base, s->npages, PAGES_COUNT))
            spangc_throw("span %p is in use but has pages marked released", (void *)s->base);
        v->inuse_pages += s->npages;
    }
    v->prev = s;
}

static size_t treap_check(const mspan *t, const mspan *lo, const mspan *hi)
{
    if (!t)
        return 0;
    if (ao_load(&t->state) != SPAN_FREE)
        spangc_throw("span %p in the free set is not free", (void *)t->base);
    if ((lo && t->base <= lo->base) || (hi && t->base >= hi->base))
        spangc_throw("free set out of order at span %p", (void *)t->base);
    size_t most = t->npages;
    if (tmax_of(t->tleft) > most)
        most = tmax_of(t->tleft);
    if (tmax_of(t->tright) > most)
        most = tmax_of(t->tright);
    if (t->tmax != most)
        spangc_throw("free set: span %p records %zu pages as its subtree's most, not %zu",
                     (void *)t->base, t->tmax, most);
    if ((t->tleft && t->tleft->tprio > t->tprio) || (t->tright && t->tright->tprio > t->tprio))
        spangc_throw("free set heap order broken at span %p", (void *)t->base);
    return 1 + treap_check(t->tleft, lo, t) + treap_check(t->tright, t, hi);
}

void spangc_mheap_verify(void)
{
    verify_state v = {0};
    lock_acquire(&spangc_heap.lock);
    spangc_mheap_walk(verify_span, &v);
    size_t in_treap = treap_check(spangc_heap.free_root, NULL, NULL);
    if (in_treap != v.free_spans)
        spangc_throw("free set holds %zu spans, heap walk found %zu", in_treap, v.free_spans);
    if (v.free_pages != ao_load(&spangc_heap.free_pages) ||
        v.inuse_pages != ao_load(&spangc_heap.pages_inuse))
        spangc_throw("page counts: walk %zu free + %zu in use, counters %zu + %zu", v.free_pages,
                     v.inuse_pages, (size_t)ao_load(&spangc_heap.free_pages),
                     (size_t)ao_load(&spangc_heap.pages_inuse));
    if (v.released_pages * PAGE_SIZE != ao_load(&spangc_heap.released))
        spangc_throw("released pages: %zu in the page bits, %zu bytes counted", v.released_pages,
                     (size_t)ao_load(&spangc_heap.released));
    lock_release(&spangc_heap.lock);
}

void spangc_mheap_lock_all(void)
{
    lock_acquire(&spangc_heap.lock);
}

void spangc_mheap_unlock_all(void)
{
    lock_release(&spangc_heap.lock);
}
