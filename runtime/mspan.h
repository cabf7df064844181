/*
 * mspan.h - a span: a run of pages holding objects of one span class.
 *
 * Span states [Go: mSpanState]
 *
 *   DEAD    the structure is unused (on the metadata free list)
 *   FREE    the pages are free, in mheap's free set
 *   INIT    just taken from the free set; its layout is being set up
 *           outside mheap.lock, and lookups must not trust it yet
 *   IN_USE  the pages hold objects; the span belongs to an mcentral list,
 *           an mcache, or (briefly) a sweeper
 *
 * Allocation state. Slots [0, nelems) of elemsize bytes start at base.
 * A slot is allocated if idx < freeindex or its bit in alloc_bits is set:
 * the allocator only moves freeindex forward and never writes alloc_bits.
 * alloc_cache holds the complement of the 64 alloc bits starting at
 * freeindex, shifted so that bit 0 is slot freeindex: the fast path finds a
 * free slot with one count-trailing-zeros. mark_bits are set by marking;
 * sweeping makes them the new alloc_bits and clears the old ones for the
 * next mark. The bitmaps are never in the objects: a span of at most
 * SPAN_INLINE_OBJECTS slots keeps them in its structure (bits,
 * inline_par); one with more, the small classes whose spans are several
 * pages (runtime/mksizeclasses.c), has all of them in big_bits, one
 * metadata block that mheap allocates with the span and gives back at the
 * first stop of the world after the span is freed (mheap.h).
 *
 * Marks of a parallel mark. A locked read-modify-write per newly marked
 * object was the hottest instruction of marking (40 % of mark_range's
 * samples in binarytrees), so each marker writes words no other marker
 * writes: the collecting thread mark_bits, the first worker
 * par_bits[w][0], and the other workers (more than two CPUs) par_bits[w][1],
 * with compare-and-swap among themselves. An object is marked if its bit
 * is set in any of the three; two markers may both find it unmarked and
 * both scan it, which is repeated work, and both count its bytes. Whoever
 * next needs the marks as one bitmap folds them in (span_fold_marks), and
 * takes the bytes counted twice back off: the sweeper (gc/sweep.c) and
 * the overflow recovery (gc/mark.c), which folds every span before it
 * marks on with mark_bits alone. Verify's check reads the three without
 * folding.
 *
 * The sweepgen protocol. mheap.sweepgen (sg) grows by 2 at every mark
 * termination, while the world is stopped. Relative to it:
 *
 *   span.sweepgen == sg - 2   the span needs sweeping
 *   span.sweepgen == sg - 1   the span is being swept, by whoever won the
 *                             compare-and-swap from sg - 2
 *   span.sweepgen == sg       the span is swept and ready to use
 *
 * Only the winner of the CAS sg-2 -> sg-1 sweeps a span, and it publishes
 * the result by storing sg. Go also has the states sg+1 and sg+3 for spans
 * cached in an mcache across the flip; spangc does not need them because
 * every mcache is flushed while the world is stopped, before the flip.
 *
 * Who may change what:
 *  - base, npages, state: mheap.lock.
 *  - spanclass, elemsize, nelems, limit, divmul: set when the span is
 *    carved out, fixed while IN_USE.
 *  - freeindex, alloc_cache, alloc_count, the type tables: the mcache
 *    that caches the span, or the sweeper that owns it, or an mcentral
 *    lock holder when the span is on none of those.
 *  - mark_bits, par_bits: the markers (world stopped), as described
 *    above, and sweep (owner).
 *  - next, prev, list: the lock of the mcentral whose list holds it.
 *  - specials: the sweep owner, or speciallock once the span is swept.
 */
#ifndef SPANGC_MSPAN_H
#define SPANGC_MSPAN_H

#include "atomic.h"
#include "arena.h"
#include "base.h"
#include "lock.h"
#include "sizeclass.h"

enum span_state { SPAN_DEAD = 0, SPAN_FREE = 1, SPAN_IN_USE = 2, SPAN_INIT = 3 };

/* Slots whose bitmaps fit in the span structure: those of every one-page
 * span. 256 bytes of bitmaps in every structure; sizing them for the
 * largest span (MAX_OBJECTS_PER_SPAN) would make that 1 KiB. */
#define SPAN_INLINE_OBJECTS 512
#define SPAN_INLINE_WORDS (SPAN_INLINE_OBJECTS / 64)
#define SPAN_PALETTE 7 /* object layouts a span tells apart by a byte */

struct gc_type;
struct special;
typedef struct mspan mspan;

typedef struct span_list {
    mspan *first;
    size_t count;
} span_list;

struct mspan {
    /* The pages (mheap.lock). */
    uintptr_t base;
    size_t npages;
    ao_word state; /* enum span_state; atomic for lock-free lookups */

    /* Free spans: the free-span treap in address order, with the most
     * pages of any span in the subtree, and the scavenger's bookkeeping
     * (mheap.lock). */
    mspan *tleft, *tright;
    size_t tmax;
    uint32_t tprio;
    bool released;       /* every page returned to the OS */
    uint64_t free_since; /* nanotime when it became free */

    /* In-use spans: mcentral lists (that mcentral's lock). */
    mspan *next, *prev;
    span_list *list;

    /* Object layout (fixed while in use). */
    uint8_t spanclass;
    uint8_t needzero; /* free slots may hold old data */
    size_t elemsize;
    uintptr_t limit; /* base + nelems * elemsize */
    uint32_t nelems;
    uint32_t divmul; /* ceil(2^32 / elemsize) for small spans */

    /* Allocation state (see above). */
    uint32_t freeindex;
    uint32_t alloc_count;
    uint32_t alloc_count_base; /* alloc_count when last counted in stats */
    uint64_t alloc_cache;
    uint64_t *alloc_bits;
    uint64_t *mark_bits;
    uint64_t (*par_bits)[2]; /* [w][0], [w][1]: one cache line */
    uint64_t *big_bits;      /* see above; NULL for an inline span */
    ao_word sweepgen;

    /* Precise layouts of typed objects (see span_type_of). A span that
     * holds typed objects has a palette of up to SPAN_PALETTE layouts and
     * one byte per slot, type_idx: 0 for a conservative object and for
     * every free slot, else 1 + the layout's palette index. A span that
     * meets more layouts than its palette holds switches to types, one
     * pointer per slot (type_idx is then kept, unread, until the span is
     * freed, so that a reader never sees it go away). A large span uses
     * types = &large_type. Both tables are allocated on the first typed
     * allocation that needs them; sweeping clears the entries of the
     * slots it frees. last_type and last_idx remember the palette entry of
     * the last typed allocation, for the fast path. One byte per slot is
     * 1/32 of a 32-byte object; a pointer per slot was 1/4. */
    uint8_t *type_idx;
    const struct gc_type *palette[SPAN_PALETTE];
    uint8_t npalette;
    uint8_t last_idx;
    const struct gc_type *last_type;
    ao_word types; /* const struct gc_type **, see span_full_types */
    const struct gc_type *large_type; /* types[] storage of a large span */

    /* The second mark of GC_DEBUG=verify (gc/debug.c); NULL otherwise. */
    uint64_t *check_bits;

    /* Finalizers, weak handles and profile records, sorted by (offset,
     * kind); see gc/specials.c. */
    spangc_lock speciallock;
    struct special *specials;

    uint64_t bits[2][SPAN_INLINE_WORDS];
    uint64_t inline_par[SPAN_INLINE_WORDS][2];
};

static inline bool span_is_noscan(const mspan *s)
{
    return s->spanclass & 1;
}

static inline unsigned span_sizeclass(const mspan *s)
{
    return s->spanclass >> 1;
}

/* The precise layout of the object in slot idx, or NULL (conservative, or
 * a free slot). Readers other than the owning mcache run with the world
 * stopped, or (gc_realloc) on an object they hold, whose entry was written
 * before they could have it; types is published with a release store. */
static inline const struct gc_type **span_full_types(const mspan *s)
{
    return (const struct gc_type **)ao_load_acq(&s->types);
}

static inline const struct gc_type *span_type_of(const mspan *s, uint32_t idx)
{
    const struct gc_type **full = span_full_types(s);
    if (full)
        return full[idx];
    /* Acquire: the table may be newer than the object (span_set_type). */
    const uint8_t *type_idx = (const uint8_t *)ao_load_acq((const ao_word *)&s->type_idx);
    if (!type_idx)
        return NULL;
    uint8_t k = type_idx[idx];
    return k ? s->palette[k - 1] : NULL;
}

/* The number of slots of a span of spanclass and npages pages. */
static inline uint32_t span_class_nelems(unsigned spanclass, size_t npages)
{
    unsigned sizeclass = spanclass >> 1;
    return sizeclass ? (uint32_t)(npages * PAGE_SIZE / class_to_size[sizeclass]) : 1;
}

/* Every big_bits block has room for the largest span: alloc and mark
 * bits, then the parallel marks, each for MAX_OBJECTS_PER_SPAN slots. One
 * size, so that a retired block (mheap.h) needs no size beside it. */
#define SPAN_BIG_BITS_BYTES (4 * sizeof(uint64_t) * (MAX_OBJECTS_PER_SPAN / 64))

/* The bytes of the big_bits block of a span of nelems slots, or 0 if its
 * bitmaps are inline. */
static inline size_t span_big_bits_bytes(uint32_t nelems)
{
    return nelems <= SPAN_INLINE_OBJECTS ? 0 : SPAN_BIG_BITS_BYTES;
}

/* Index of the slot holding p (base <= p < limit): a multiply and a shift
 * instead of a division (mksizeclasses.c proves it exact). */
static inline uint32_t span_obj_index(const mspan *s, uintptr_t p)
{
    return (uint32_t)(((uint64_t)(p - s->base) * s->divmul) >> 32);
}

static inline bool bitmap_get(const uint64_t *bits, uint32_t i)
{
    return (bits[i >> 6] >> (i & 63)) & 1;
}

static inline void bitmap_set(uint64_t *bits, uint32_t i)
{
    bits[i >> 6] |= (uint64_t)1 << (i & 63);
}

/* Also called from other threads than the span's owner (gc_base of an
 * object another thread just allocated): freeindex is read, and moved by
 * the allocator, with relaxed atomics. It only grows while the span is
 * cached, so a stale value errs towards "free" only for slots handed out
 * after the caller got its pointer. */
static inline bool span_slot_allocated(const mspan *s, uint32_t idx)
{
    return idx < ao_uint_load_relaxed((const ao_uint *)&s->freeindex) ||
           bitmap_get(s->alloc_bits, idx);
}

static inline void span_set_freeindex(mspan *s, uint32_t fi)
{
    ao_uint_store_relaxed((ao_uint *)&s->freeindex, fi);
}

/* A span's base and limit are read without any lock by
 * spangc_span_of_heap, from any thread: gc_weak_get follows a handle to a
 * target whose span a sweeper may free, and an allocation set up again,
 * between the reader's check of the state and its reads of the bounds.
 * So every write of either is an atomic store, and that reader loads them
 * atomically; code that owns the span (its mcentral, mheap.lock, a
 * sweeper, a stopped world) reads them plainly. */
static inline void span_bound_store(uintptr_t *bound, uintptr_t v)
{
    ao_store((ao_word *)bound, v);
}

static inline uintptr_t span_bound_load(const uintptr_t *bound)
{
    return ao_load((const ao_word *)bound);
}

/* The in-use span containing p, with p in [base, limit); else NULL. Safe
 * for any address: the order (state, then bounds) is what makes stale
 * index entries harmless. A span reused meanwhile gives bounds that are
 * its new ones, or its old: either way a span that did hold p, which the
 * caller checks again (a weak handle's target, say, by its handle). */
static inline mspan *spangc_span_of_heap(uintptr_t p)
{
    mspan *s = spangc_span_of(p);
    if (!s || ao_load_acq(&s->state) != SPAN_IN_USE)
        return NULL;
    if (p < span_bound_load(&s->base) || p >= span_bound_load(&s->limit))
        return NULL;
    return s;
}

/* Make mark_bits the whole mark: fold in, and clear, the words the
 * workers of a parallel mark set. The world is stopped, or the caller owns
 * the span (its sweeper). Returns the number of objects marked by more
 * than one marker: each of those counted the object's bytes as marked, so
 * the marked bytes are too high by that many objects. */
static inline uint32_t span_fold_marks(mspan *s)
{
    uint32_t twice = 0;
    for (uint32_t w = 0; w * 64 < s->nelems; w++) {
        uint64_t p0 = s->par_bits[w][0], p1 = s->par_bits[w][1];
        if (p0 | p1) {
            uint64_t own = s->mark_bits[w];
            /* Each mark after an object's first: rare, so mostly zero. */
            uint64_t again0 = own & p0, again1 = (own | p0) & p1;
            if (again0 | again1)
                twice += (uint32_t)(__builtin_popcountll(again0) + __builtin_popcountll(again1));
            s->mark_bits[w] = own | p0 | p1;
            s->par_bits[w][0] = 0;
            s->par_bits[w][1] = 0;
        }
    }
    return twice;
}

/* The slots of word w (64 slots from w * 64) that are allocated in the
 * alloc view but not marked: what sweeping s now frees. */
static inline uint64_t span_freed_word(const mspan *s, uint32_t w)
{
    uint64_t allocated = s->alloc_bits[w];
    uint32_t lo = w * 64;
    if (s->freeindex > lo)
        allocated |= s->freeindex - lo >= 64 ? ~(uint64_t)0
                                             : ((uint64_t)1 << (s->freeindex - lo)) - 1;
    uint64_t freed = allocated & ~s->mark_bits[w];
    if (s->nelems - lo < 64)
        freed &= ((uint64_t)1 << (s->nelems - lo)) - 1;
    return freed;
}

/* The fast path of allocation [Go: nextFreeFast]: the address of a free
 * slot, or 0 when the cache word is exhausted or needs a refill. */
static inline uintptr_t span_next_free_fast(mspan *s)
{
    uint64_t cache = s->alloc_cache;
    if (likely(cache)) {
        unsigned bit = (unsigned)__builtin_ctzll(cache);
        uint32_t idx = s->freeindex + bit;
        if (likely(idx < s->nelems)) {
            uint32_t next = idx + 1;
            if (unlikely((next & 63) == 0 && next != s->nelems))
                return 0;
            s->alloc_cache = (cache >> bit) >> 1;
            span_set_freeindex(s, next);
            s->alloc_count++;
            return s->base + (uintptr_t)idx * s->elemsize;
        }
    }
    return 0;
}

/* Set up the object layout of a span just taken from mheap for spanclass
 * (class 0 is a large object filling the span). big_bits: a zeroed block
 * of span_big_bits_bytes(nelems) bytes, or NULL when that is 0. */
void spangc_span_init(mspan *s, unsigned spanclass, uint64_t *big_bits);

/* The slow path of allocation [Go: nextFreeIndex]: the next free slot at
 * or after freeindex, refilling alloc_cache from alloc_bits; nelems if the
 * span is full. Advances freeindex and alloc_count on success. */
uint32_t spangc_span_next_free(mspan *s);

/* Point alloc_cache at freeindex (a multiple of 64 or not). */
void spangc_span_refill_cache(mspan *s);

/* Number of set bits among the first n of bits. */
uint32_t spangc_bitmap_count(const uint64_t *bits, uint32_t n);

/* The empty span: nelems 0, so the fast path always fails on it. mcache
 * slots with no span point here, which spares the fast path a NULL test.
 * Never written after initialization. */
extern SPANGC_STATE mspan spangc_empty_span;

#endif
