/*
 * mark.c - marking, with the world stopped [Go: mgcmark.go].
 *
 * A word is a pointer candidate if it lies inside the heap's arenas, its
 * page belongs to an IN_USE span, it is in [base, limit) of that span, and
 * the slot it falls in is allocated (idx < freeindex or its alloc bit is
 * set). Interior pointers count: the slot index is (word - base) * div_mul
 * >> 32, a multiply instead of a divide. Everything else - integers,
 * pointers to free slots, to stacks, to malloc'd memory - is rejected by
 * these cheap tests, in that order.
 *
 * Marking sets the slot's bit in the span's mark_bits (never in the
 * object). A newly marked object of a noscan span is done at once; one of a
 * scan span goes on the grey stack. Popping an object scans it:
 * conservatively (every word) if it was allocated with gc_alloc, or only
 * the words its gc_type lists if it was allocated with gc_alloc_typed.
 *
 * The grey stack never uses the C stack: it is a list of chunks from the
 * metadata allocator. When a chunk cannot be had (out of memory, or the
 * mark_stack_limit option), the object stays marked but is not pushed,
 * and "overflowed" is set. After the stack drains, every marked object of
 * every scan span is scanned again, which finds whatever the dropped
 * objects pointed to; this repeats until a pass ends without overflow
 * [bdwgc's mark-stack overflow recovery]. One chunk is kept for good, so
 * each pass makes progress and marking always completes.
 *
 * Invariant required on entry: every span is swept and no mcache holds a
 * span (gc.c flushes them), so freeindex and alloc_bits are exact.
 */
#include "mark.h"

#include "options.h"
#include "type.h"
#include "../runtime/metalloc.h"
#include "../runtime/mheap.h"

#define CHUNK_ENTRIES 2046

/* A grey object and its span, so that scanning it needs no lookup. */
typedef struct grey {
    uintptr_t obj;
    mspan *span;
} grey;

typedef struct mark_chunk {
    struct mark_chunk *prev;
    size_t n;
    grey e[CHUNK_ENTRIES];
} mark_chunk;

/* How many popped objects wait, already prefetched, before they are
 * scanned. The stack is LIFO, so an object prefetched when pushed would
 * be scanned at once; this FIFO window gives each prefetch time to land
 * [the prefetch buffer of OCaml's and Julia's markers]. */
#define PREFETCH_WINDOW 32

/* The grey stack and mark counters; used only by the collector, which
 * holds world_lock. */
static SPANGC_STATE struct {
    mark_chunk *top;   /* never NULL after the first mark */
    mark_chunk *spare; /* one empty chunk kept to avoid churn */
    size_t chunks;     /* chunks in the stack, including top */
    size_t max_chunks;
    bool overflowed;
    bool overflowed_this_cycle;
    uint64_t bytes;
    uintptr_t lo, hi;  /* heap bounds for the cheap first test */
    mspan *last;       /* the span of the last marked object */
    spangc_mark_bits_fn bits_fn;
} mk;

#if defined(__clang__) || defined(__GNUC__)
/* Conservative scanning reads memory the sanitizers consider off limits
 * (stack redzones, other threads' frames); that is its job. */
#define NO_SANITIZE __attribute__((no_sanitize("address", "thread")))
#else
#define NO_SANITIZE
#endif

void spangc_mark_begin(void)
{
    if (!mk.top) {
        mk.top = spangc_meta_alloc(sizeof(mark_chunk));
        if (!mk.top)
            spangc_throw("cannot allocate the first mark stack chunk");
        mk.chunks = 1;
    }
    mk.top->n = 0;
    mk.overflowed = false;
    mk.overflowed_this_cycle = false;
    mk.bytes = 0;
    mk.lo = ao_load(&spangc_arenas.lo);
    mk.hi = ao_load(&spangc_arenas.hi);
    mk.last = &spangc_empty_span; /* base == limit: matches nothing */
    size_t limit = spangc_cfg.mark_stack_limit;
    mk.max_chunks = limit ? (limit / sizeof(mark_chunk) > 1 ? limit / sizeof(mark_chunk) : 1)
                          : SIZE_MAX;
}

uint64_t spangc_mark_bytes(void)
{
    return mk.bytes;
}

bool spangc_mark_overflowed(void)
{
    return mk.overflowed_this_cycle;
}

void spangc_mark_set_bitmap(spangc_mark_bits_fn fn)
{
    mk.bits_fn = fn;
}

static NOINLINE void push_slow(uintptr_t obj, mspan *s)
{
    mark_chunk *c = NULL;
    if (mk.chunks < mk.max_chunks) {
        c = mk.spare;
        if (c)
            mk.spare = NULL;
        else
            c = spangc_meta_alloc(sizeof(mark_chunk));
    }
    if (!c) {
        mk.overflowed = true;
        return;
    }
    c->prev = mk.top;
    c->n = 0;
    mk.top = c;
    mk.chunks++;
    c->e[c->n++] = (grey){obj, s};
}

static inline void push(uintptr_t obj, mspan *s)
{
    mark_chunk *c = mk.top;
    if (likely(c->n < CHUNK_ENTRIES))
        c->e[c->n++] = (grey){obj, s};
    else
        push_slow(obj, s);
}

static inline bool pop(grey *g)
{
    mark_chunk *c = mk.top;
    if (likely(c->n > 0)) {
        *g = c->e[--c->n];
        return true;
    }
    if (!c->prev)
        return false;
    mk.top = c->prev;
    mk.chunks--;
    if (mk.spare)
        spangc_meta_free(c, sizeof *c);
    else
        mk.spare = c;
    *g = mk.top->e[--mk.top->n];
    return true;
}

/* Mark the object containing p if p is a heap pointer [Go: greyobject].
 * Words tend to point near the previous one (into the same span), so the
 * last span found is tried before the arena index. */
static inline __attribute__((always_inline)) void mark_candidate(uintptr_t p)
{
    mspan *s = mk.last;
    if (p - s->base >= s->limit - s->base) {
        if (p - mk.lo >= mk.hi - mk.lo)
            return;
        s = spangc_span_of(p);
        if (!s || ao_load(&s->state) != SPAN_IN_USE || p < s->base || p >= s->limit)
            return;
        mk.last = s;
    }
    uint32_t idx = span_obj_index(s, p); /* 0 for large spans (div_mul 0) */
    if (!span_slot_allocated(s, idx))
        return;
    uint64_t *bits = unlikely(mk.bits_fn != NULL) ? mk.bits_fn(s) : s->mark_bits;
    uint64_t *word = &bits[idx >> 6], bit = (uint64_t)1 << (idx & 63);
    if (*word & bit)
        return;
    *word |= bit;
    mk.bytes += s->elemsize;
    if (!span_is_noscan(s))
        push(s->base + (uintptr_t)idx * s->elemsize, s);
}

void spangc_mark_word(uintptr_t p)
{
    mark_candidate(p);
}

NO_SANITIZE void spangc_mark_range(uintptr_t lo, uintptr_t hi)
{
    lo = round_up(lo, sizeof(uintptr_t));
    for (uintptr_t a = lo; a + sizeof(uintptr_t) <= hi; a += sizeof(uintptr_t))
        mark_candidate(*(const uintptr_t *)a);
}

static NO_SANITIZE void scan_typed(uintptr_t obj, size_t size, const gc_type *t)
{
    for (size_t elem = 0; elem < size; elem += t->size) {
        const uintptr_t *w = (const uintptr_t *)(obj + elem);
        size_t words_left = (size - elem) / sizeof(uintptr_t);
        for (uint32_t i = 0; i < t->nptr && t->words[i] < words_left; i++)
            mark_candidate(w[t->words[i]]);
    }
}

/* Scan an object of a scan span: by its layout if typed, else every word. */
static inline void scan(uintptr_t obj, mspan *s)
{
    const gc_type *t = s->types ? s->types[span_obj_index(s, obj)] : NULL;
    if (t)
        scan_typed(obj, s->elemsize, t);
    else
        spangc_mark_range(obj, obj + s->elemsize);
}

void spangc_mark_scan_object(uintptr_t obj)
{
    mspan *s = spangc_span_of(obj);
    if (!span_is_noscan(s))
        scan(obj, s);
}

/* Scan grey objects until the stack is empty, through the prefetch
 * window. */
static void drain_stack(void)
{
    grey window[PREFETCH_WINDOW];
    unsigned head = 0, count = 0;
    for (;;) {
        grey g;
        while (count < PREFETCH_WINDOW && pop(&g)) {
            __builtin_prefetch((const void *)g.obj);
            window[(head + count) % PREFETCH_WINDOW] = g;
            count++;
        }
        if (count == 0)
            return;
        g = window[head];
        head = (head + 1) % PREFETCH_WINDOW;
        count--;
        scan(g.obj, g.span);
    }
}

/* Overflow recovery: scan every marked object of a scan span again. */
static void rescan_span(mspan *s, void *arg)
{
    (void)arg;
    if (span_is_noscan(s))
        return;
    uint64_t *bits = mk.bits_fn ? mk.bits_fn(s) : s->mark_bits;
    for (uint32_t w = 0; w * 64 < s->nelems; w++) {
        for (uint64_t m = bits[w]; m; m &= m - 1) {
            uint32_t idx = w * 64 + (uint32_t)__builtin_ctzll(m);
            scan(s->base + (uintptr_t)idx * s->elemsize, s);
            drain_stack();
        }
    }
}

void spangc_mark_drain(void)
{
    drain_stack();
    while (mk.overflowed) {
        mk.overflowed = false;
        mk.overflowed_this_cycle = true;
        spangc_mheap_for_each_span(rescan_span, NULL);
    }
}
