/*
 * mark.c - marking, with the world stopped [Go: mgcmark.go].
 *
 * A word is a pointer candidate if it lies inside the heap's arenas, its
 * page belongs to an IN_USE span, it is in [base, limit) of that span, and
 * the slot it falls in is allocated (idx < freeindex or its alloc bit is
 * set). Interior pointers count: the slot index is (word - base) * div_mul
 * >> 32, a multiply instead of a divide. Everything else - integers,
 * pointers to free slots, to stacks, to malloc'd memory - is rejected by
 * these cheap tests, in that order. Words tend to point near the previous
 * one, so the span of the last object marked is tried first.
 *
 * Marking sets the slot's bit in the span's mark_bits (never in the
 * object). A newly marked object of a noscan span is done at once; one of a
 * scan span goes on a grey stack with its span. Popped objects wait in a
 * small FIFO window, prefetched, before they are scanned: conservatively
 * (every word) if allocated with gc_alloc, or only the words its gc_type
 * lists if allocated with gc_alloc_typed.
 *
 * Parallel marking. Besides the collecting thread, up to MAX_MARKERS - 1
 * mark workers (spangc's own threads, never stopped, holding no program
 * pointers) mark while the world is stopped. Each marker has its own grey
 * stack. A marker that runs out of work takes a chunk of grey objects from
 * a shared pool; a busy marker that sees idle markers gives half of its
 * top chunk to the pool. Marking ends when every marker that has joined
 * the mark is idle and the pool is empty (mk.state); a worker that has not
 * woken up by then is not waited for, and finds the mark closed when it
 * does. Markers set mark bits without locked instructions, each
 * in words of its own (mspan.h, "Marks of a parallel mark"). The
 * collecting thread scans all the roots, sharing as it goes; the workers
 * start on what it shares. Workers are started before the world is
 * stopped (spangc_mark_start_workers). gc.c asks for parallel marking only
 * after a cycle that marked PARALLEL_MARK_MIN bytes: on a small heap,
 * waking the workers costs more than the marking they would take over.
 *
 * The grey stacks never use the C stack: they are lists of chunks from the
 * metadata allocator. When a chunk cannot be had (out of memory, or the
 * mark_stack_limit option), the object stays marked but is not pushed,
 * and "overflowed" is set. After all markers are done, every marked object
 * of every scan span is scanned again by the collecting thread, which
 * finds whatever the dropped objects pointed to; this repeats until a pass
 * ends without overflow [bdwgc's mark-stack overflow recovery]. One chunk
 * per marker is kept for good, so each pass makes progress and marking
 * always completes.
 *
 * Invariant required on entry: every span is swept and no mcache holds a
 * span (gc.c flushes them), so freeindex and alloc_bits are exact.
 *
 * Locking: everything here belongs to the collector, which holds
 * world_lock, and to the workers it has started for this mark; pool_lock
 * (a leaf) guards the shared pool.
 */
#include "mark.h"

#include "options.h"
#include "type.h"
#include "../runtime/cpus.h"
#include "../runtime/lock.h"
#include "../runtime/metalloc.h"
#include "../runtime/mheap.h"

#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <unistd.h>

#if defined(__x86_64__) && defined(__LP64__) && (defined(__GNUC__) || defined(__clang__))
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_WIDE_SCAN 1 /* mark_range_avx2, if the CPU has AVX2 */
#endif

#define CHUNK_ENTRIES 2046
#define MAX_MARKERS 8

/* How many popped objects wait, already prefetched, before they are
 * scanned. A stack is LIFO, so an object prefetched when pushed would be
 * scanned at once; this FIFO window gives each prefetch time to land [the
 * prefetch buffer of OCaml's and Julia's markers]. */
#define PREFETCH_WINDOW 32

/* How many objects a marker scans between looks at whether another marker
 * is idle and could take some of its work. */
#define SHARE_PERIOD 32

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

typedef struct marker {
    mark_chunk *top;   /* never NULL once the marker has marked */
    mark_chunk *spare; /* one empty chunk kept to avoid churn */
    size_t chunks;     /* chunks in the stack, including top */
    bool overflowed;
    bool parallel;     /* other markers are running: set bits atomically */
    uint64_t seen_gen; /* a worker's last go_gen (worker_main) */
    uint64_t bytes;
    mspan *last;       /* the span of the last marked object */
} __attribute__((aligned(64))) marker;

/* The markers and the shared pool (see the header comment). */
static SPANGC_STATE struct {
    marker m[MAX_MARKERS];
    unsigned nmarkers;   /* markers of the current mark, including the collector */
    size_t max_chunks;   /* per marker */
    bool overflowed_this_cycle;
    uintptr_t lo, hi;    /* heap bounds for the cheap first test */
    bool wide;           /* roots are scanned with mark_range_avx2 */
    bool cpu_checked;    /* wide is known */
    spangc_mark_bits_fn bits_fn;

    spangc_lock pool_lock;
    mark_chunk *pool;    /* chunks of grey objects any marker may take */
    ao_word state;       /* ST_* below: who marks, who idles, the pool */

    /* Workers: started lazily; wait on go_gen, report through running. */
    pthread_mutex_t wake_mu;
    pthread_cond_t wake;
    uint64_t go_gen;
    ao_word running;
    unsigned nworkers;
} mk = {.pool_lock = SPANGC_LOCK_INIT,
        .wake_mu = PTHREAD_MUTEX_INITIALIZER,
        .wake = PTHREAD_COND_INITIALIZER};

#if defined(__clang__) || defined(__GNUC__)
/* Conservative scanning reads memory the sanitizers consider off limits
 * (stack redzones, other threads' frames); that is its job. */
#define NO_SANITIZE __attribute__((no_sanitize("address", "thread")))
#else
#define NO_SANITIZE
#endif

/* mk.state, one word so that one load sees a consistent picture: the
 * markers that joined this mark (the collector from the start, a worker
 * when it wakes), how many of them are idle (no grey object of their
 * own), the chunks in the pool, and whether the mark is closed to
 * latecomers. A marker leaves idle only by taking a chunk, in the same
 * update that takes it; so "every joined marker idle and the pool empty"
 * means no grey object is left anywhere, and it stays so. Marking is
 * then done, without waiting for a worker that has not run yet: on a busy
 * machine the collector used to wait for every worker to be scheduled,
 * and a 2-marker GCBench paused 4.6 times as long in all as a 1-marker
 * one beside two busy processes. */
#define ST_IDLE   ((uintptr_t)1)
#define ST_JOINED ((uintptr_t)1 << 16)
#define ST_POOL   ((uintptr_t)1 << 32)
#define ST_CLOSED ((uintptr_t)1 << 63)

static unsigned st_idle(uintptr_t w)
{
    return (unsigned)(w & 0xffff);
}

static unsigned st_joined(uintptr_t w)
{
    return (unsigned)((w >> 16) & 0xffff);
}

static uintptr_t st_pool(uintptr_t w)
{
    return (w >> 32) & 0x7fffffff;
}

static bool st_done(uintptr_t w)
{
    return st_idle(w) == st_joined(w) && st_pool(w) == 0;
}

/* The collecting thread's marker; roots, specials and finalizers are all
 * marked through it. */
static marker *const collector = &mk.m[0];

/* ---- grey stacks ------------------------------------------------------------ */

static mark_chunk *chunk_new(marker *m)
{
    mark_chunk *c = m->spare;
    if (c) {
        m->spare = NULL;
        return c;
    }
    return spangc_meta_alloc(sizeof(mark_chunk));
}

static void chunk_retire(marker *m, mark_chunk *c)
{
    if (m->spare)
        spangc_meta_free(c, sizeof *c);
    else
        m->spare = c;
}

static NOINLINE void push_slow(marker *m, uintptr_t obj, mspan *s)
{
    mark_chunk *c = m->chunks < mk.max_chunks ? chunk_new(m) : NULL;
    if (!c) {
        m->overflowed = true;
        return;
    }
    c->prev = m->top;
    c->n = 0;
    m->top = c;
    m->chunks++;
    c->e[c->n++] = (grey){obj, s};
}

static inline void push(marker *m, uintptr_t obj, mspan *s)
{
    mark_chunk *c = m->top;
    if (likely(c->n < CHUNK_ENTRIES))
        c->e[c->n++] = (grey){obj, s};
    else
        push_slow(m, obj, s);
}

static inline bool pop(marker *m, grey *g)
{
    mark_chunk *c = m->top;
    if (likely(c->n > 0)) {
        *g = c->e[--c->n];
        return true;
    }
    if (!c->prev)
        return false;
    m->top = c->prev;
    m->chunks--;
    chunk_retire(m, c);
    *g = m->top->e[--m->top->n];
    return true;
}

/* ---- marking a word --------------------------------------------------------- */

/* Mark slot idx of s; false if it was marked already. With one marker,
 * plain stores into mark_bits; in a parallel mark, each marker writes its
 * own words and none needs a locked instruction but the third and later
 * (see "Marks of a parallel mark" in mspan.h). */
static inline __attribute__((always_inline)) bool set_mark(marker *m, mspan *s, uint32_t idx)
{
    uint32_t w = idx >> 6;
    uint64_t bit = (uint64_t)1 << (idx & 63);
    if (unlikely(mk.bits_fn != NULL)) { /* verify's second mark: one marker */
        uint64_t *word = &mk.bits_fn(s)[w];
        if (*word & bit)
            return false;
        *word |= bit;
        return true;
    }
    if (likely(!m->parallel)) {
        if (s->mark_bits[w] & bit)
            return false;
        s->mark_bits[w] |= bit;
        return true;
    }
    ao_word *collector_word = (ao_word *)&s->mark_bits[w];
    ao_word *first_worker = (ao_word *)&s->par_bits[w][0];
    ao_word *other_workers = (ao_word *)&s->par_bits[w][1];
    if ((ao_load(collector_word) | ao_load(first_worker) | ao_load(other_workers)) & bit)
        return false;
    if (m == collector || m == &mk.m[1]) {
        ao_word *mine = m == collector ? collector_word : first_worker;
        ao_store(mine, ao_load(mine) | bit); /* no other marker writes it */
        return true;
    }
    for (;;) {
        ao_word old = ao_load(other_workers);
        if (old & bit)
            return false;
        if (ao_cas(other_workers, old, old | bit))
            return true;
    }
}

/* Mark the object containing p if p is a heap pointer [Go: greyobject]. */
static inline __attribute__((always_inline)) void mark_candidate(marker *m, uintptr_t p)
{
    mspan *s = m->last;
    if (p - s->base >= s->limit - s->base) {
        if (p - mk.lo >= mk.hi - mk.lo)
            return;
        s = spangc_span_of(p);
        if (!s || ao_load(&s->state) != SPAN_IN_USE || p < s->base || p >= s->limit)
            return;
        m->last = s;
    }
    uint32_t idx = span_obj_index(s, p); /* 0 for large spans (div_mul 0) */
    if (!span_slot_allocated(s, idx))
        return;
    if (!set_mark(m, s, idx))
        return;
    m->bytes += s->elemsize;
    if (!span_is_noscan(s))
        push(m, s->base + (uintptr_t)idx * s->elemsize, s);
}

/* Most words of a stack or a data segment, and many of an object, are not
 * heap addresses at all: four at a time are checked against the heap's
 * bounds with one branch, and only a group with a candidate goes word by
 * word. */
static NO_SANITIZE void mark_range(marker *m, uintptr_t lo, uintptr_t hi)
{
    const uintptr_t *a = (const uintptr_t *)round_up(lo, sizeof(uintptr_t));
    const uintptr_t *end = (const uintptr_t *)(hi & ~(uintptr_t)(sizeof(uintptr_t) - 1));
    uintptr_t heap = mk.lo, size = mk.hi - mk.lo;
    for (; end - a >= 4; a += 4) {
        uintptr_t w0 = a[0], w1 = a[1], w2 = a[2], w3 = a[3];
        bool any = (w0 - heap < size) | (w1 - heap < size) | (w2 - heap < size) |
                   (w3 - heap < size);
        if (!any)
            continue;
        mark_candidate(m, w0);
        mark_candidate(m, w1);
        mark_candidate(m, w2);
        mark_candidate(m, w3);
    }
    for (; a < end; a++)
        mark_candidate(m, *a);
}

#ifdef HAVE_WIDE_SCAN
/* mark_range for roots, eight words per step with AVX2. Roots are long
 * and sparse: of a stopped thread's 8 KiB of stack (the signal frame with
 * its saved vector registers, the frames of a blocking call) or of a
 * library's data segment, few words are heap addresses. With 16 stopped
 * threads (tests/bench/stw.c) the mark took 19.6 us a stop with the
 * scalar loop, 14-16 with this one; objects, short and dense, keep the
 * scalar loop. The bounds test is the same unsigned one, w - heap < size,
 * done as a signed compare (AVX2 has no unsigned one) by flipping the top
 * bit of both sides: (w - heap) ^ 2^63 is w + (2^63 - heap), and
 * size ^ 2^63 is size + 2^63 (size < 2^63). Only the words that pass go
 * on to mark_candidate. */
__attribute__((target("avx2"))) static NO_SANITIZE void mark_range_avx2(marker *m, uintptr_t lo,
                                                                         uintptr_t hi)
{
    const uintptr_t *a = (const uintptr_t *)round_up(lo, sizeof(uintptr_t));
    const uintptr_t *end = (const uintptr_t *)(hi & ~(uintptr_t)(sizeof(uintptr_t) - 1));
    const uintptr_t sign = (uintptr_t)1 << 63;
    const __m256i bias = _mm256_set1_epi64x((long long)(sign - mk.lo));
    const __m256i limit = _mm256_set1_epi64x((long long)((mk.hi - mk.lo) + sign));
    for (; end - a >= 8; a += 8) {
        __m256i x0 = _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)a), bias);
        __m256i x1 = _mm256_add_epi64(_mm256_loadu_si256((const __m256i *)(a + 4)), bias);
        unsigned in = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(limit, x0))) |
                      (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpgt_epi64(limit, x1)))
                          << 4;
        for (; in; in &= in - 1)
            mark_candidate(m, a[__builtin_ctz(in)]);
    }
    mark_range(m, (uintptr_t)a, (uintptr_t)end);
}
#endif

static NO_SANITIZE void scan_typed(marker *m, uintptr_t obj, size_t size, const gc_type *t)
{
    for (size_t elem = 0; elem < size; elem += t->size) {
        const uintptr_t *w = (const uintptr_t *)(obj + elem);
        size_t words_left = (size - elem) / sizeof(uintptr_t);
        for (uint32_t i = 0; i < t->nptr && t->words[i] < words_left; i++)
            mark_candidate(m, w[t->words[i]]);
    }
}

/* Scan an object of a scan span: by its layout if typed, else every word. */
static inline void scan(marker *m, uintptr_t obj, mspan *s)
{
    const gc_type *t = span_type_of(s, span_obj_index(s, obj));
    if (t)
        scan_typed(m, obj, s->elemsize, t);
    else
        mark_range(m, obj, obj + s->elemsize);
}

/* ---- sharing ------------------------------------------------------------------ */

/* Give half of m's top chunk to the pool, if another marker is idle. */
static void maybe_share(marker *m)
{
    mark_chunk *c = m->top;
    if (st_idle(ao_load(&mk.state)) == 0 || c->n < 2)
        return;
    mark_chunk *gift = spangc_meta_alloc(sizeof(mark_chunk));
    if (!gift)
        return;
    size_t half = c->n / 2;
    /* The oldest entries: the widest, least local part of the work. */
    for (size_t i = 0; i < half; i++)
        gift->e[i] = c->e[i];
    for (size_t i = half; i < c->n; i++)
        c->e[i - half] = c->e[i];
    c->n -= half;
    gift->n = half;
    lock_acquire(&mk.pool_lock);
    gift->prev = mk.pool;
    mk.pool = gift;
    lock_release(&mk.pool_lock);
    /* Counted once it is there to take. */
    ao_add(&mk.state, ST_POOL);
}

/* Take a chunk from the pool as m's work, leaving idle if m was; false if
 * the pool is empty. A chunk is claimed in mk.state first, so the pool
 * holds at least one when the lock is taken. */
static bool take(marker *m, bool was_idle)
{
    uintptr_t w;
    do {
        w = ao_load_acq(&mk.state);
        if (st_pool(w) == 0)
            return false;
    } while (!ao_cas(&mk.state, w, w - ST_POOL - (was_idle ? ST_IDLE : 0)));
    lock_acquire(&mk.pool_lock);
    mark_chunk *c = mk.pool;
    mk.pool = c->prev;
    lock_release(&mk.pool_lock);
    /* m's stack is empty: its chunk goes, the gift becomes the stack. */
    chunk_retire(m, m->top);
    c->prev = NULL;
    m->top = c;
    m->chunks = 1;
    return true;
}

/* ---- draining ------------------------------------------------------------------ */

/* Scan grey objects until m's stack is empty, through the prefetch window,
 * sharing work when other markers are idle. */
static void drain_local(marker *m)
{
    grey window[PREFETCH_WINDOW];
    unsigned head = 0, count = 0, scanned = 0;
    for (;;) {
        grey g;
        while (count < PREFETCH_WINDOW && pop(m, &g)) {
            __builtin_prefetch((const void *)g.obj);
            window[(head + count) % PREFETCH_WINDOW] = g;
            count++;
        }
        if (count == 0)
            return;
        g = window[head];
        head = (head + 1) % PREFETCH_WINDOW;
        count--;
        scan(m, g.obj, g.span);
        if (m->parallel && ++scanned % SHARE_PERIOD == 0)
            maybe_share(m);
    }
}

/* Work until marking is done (st_done). m starts idle if it is a worker
 * that has just joined. */
static void work_until_done(marker *m, bool idle)
{
    for (;;) {
        if (!idle) {
            drain_local(m);
            if (take(m, false))
                continue;
            /* Release: what m recorded (bytes, overflowed) is seen by the
             * collector once it sees marking done. */
            ao_add(&mk.state, ST_IDLE);
        }
        idle = false;
        for (;;) {
            uintptr_t w = ao_load_acq(&mk.state);
            if (st_done(w))
                return;
            if (st_pool(w) > 0 && take(m, true))
                break;
            sched_yield();
        }
    }
}

SPANGC_STATE ao_word spangc_test_before_join;

/* A worker woken for a mark joins it, idle, unless the collector has
 * already closed it. */
static bool join_mark(void)
{
    uintptr_t hook = ao_load_acq(&spangc_test_before_join);
    if (unlikely(hook != 0))
        ((void (*)(void))hook)();
    uintptr_t w;
    do {
        w = ao_load_acq(&mk.state);
        if (w & ST_CLOSED)
            return false;
    } while (!ao_cas(&mk.state, w, w + ST_JOINED + ST_IDLE));
    return true;
}

static void marker_reset(marker *m, bool parallel)
{
    if (!m->top) {
        m->top = spangc_meta_alloc(sizeof(mark_chunk));
        if (!m->top)
            spangc_throw("cannot allocate a mark stack chunk");
        m->chunks = 1;
    }
    m->top->n = 0;
    m->overflowed = false;
    m->parallel = parallel;
    m->bytes = 0;
    m->last = &spangc_empty_span; /* base == limit: matches nothing */
}

/* ---- workers ---------------------------------------------------------------------- */

static void *worker_main(void *arg)
{
    marker *m = arg;
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    for (;;) {
        /* seen_gen starts at the generation current when the worker was
         * made, so a new worker waits for the next mark. */
        pthread_mutex_lock(&mk.wake_mu);
        while (mk.go_gen == m->seen_gen)
            pthread_cond_wait(&mk.wake, &mk.wake_mu);
        m->seen_gen = mk.go_gen;
        bool join = (unsigned)(m - mk.m) < mk.nmarkers;
        pthread_mutex_unlock(&mk.wake_mu);
        if (join) {
            if (join_mark())
                work_until_done(m, true);
            ao_sub(&mk.running, 1);
        }
    }
    return NULL;
}

/* How many markers to use: GC_MARKERS or the option, else one per CPU the
 * process may use (runtime/cpus.c). */
static unsigned wanted_markers(void)
{
    unsigned n = spangc_cfg.markers;
    if (n == 0)
        n = spangc_cpus_usable();
    return n > MAX_MARKERS ? MAX_MARKERS : n;
}

static void start_workers(unsigned n)
{
    while (mk.nworkers + 1 < n) {
        marker *m = &mk.m[mk.nworkers + 1];
        /* A first parallel mark may come when memory is short (a collection
         * forced by a failed allocation): mark with fewer workers then,
         * rather than die in marker_reset. */
        if (!m->top && !(m->top = spangc_meta_alloc(sizeof(mark_chunk))))
            break;
        m->chunks = 1;
        pthread_t th;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        marker_reset(m, true);
        pthread_mutex_lock(&mk.wake_mu);
        m->seen_gen = mk.go_gen;
        pthread_mutex_unlock(&mk.wake_mu);
        int err = pthread_create(&th, &attr, worker_main, m);
        pthread_attr_destroy(&attr);
        if (err)
            break;
        mk.nworkers++;
    }
}

/* ---- the mark ------------------------------------------------------------------------ */

/* Workers of the last mark may not have left it yet (spangc_mark_finish
 * does not wait for them); they must be out before its state is reset. */
static void wait_for_last_mark(void)
{
    while (ao_load_acq(&mk.running) != 0)
        sched_yield();
}

void spangc_mark_start_workers(void)
{
    /* Here, before the world stops, rather than in the pause. */
    wait_for_last_mark();
    unsigned n = wanted_markers();
    if (n > 1)
        start_workers(n);
}

/* Whether the CPU has AVX2 and the kernel saves the AVX registers
 * (XCR0 bits 1 and 2). Read once, with cpuid, at the first mark:
 * __builtin_cpu_supports would link libgcc's CPU model code (4.5 KiB) into
 * every program. */
static bool cpu_has_avx2(void)
{
#ifdef HAVE_WIDE_SCAN
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !(c & bit_OSXSAVE) || !(c & bit_AVX))
        return false;
    unsigned xcr0_lo, xcr0_hi;
    __asm__("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    if ((xcr0_lo & 6) != 6 || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return false;
    return (b & bit_AVX2) != 0;
#else
    return false;
#endif
}

void spangc_mark_begin(bool parallel)
{
    wait_for_last_mark();
    unsigned n = parallel && !mk.bits_fn ? wanted_markers() : 1;
    if (n > mk.nworkers + 1)
        n = mk.nworkers + 1;
    size_t limit = spangc_cfg.mark_stack_limit;
    mk.max_chunks = limit ? (limit / sizeof(mark_chunk) > 1 ? limit / sizeof(mark_chunk) : 1)
                          : SIZE_MAX;
    mk.overflowed_this_cycle = false;
    mk.lo = ao_load(&spangc_arenas.lo);
    mk.hi = ao_load(&spangc_arenas.hi);
    if (!mk.cpu_checked) {
        mk.wide = cpu_has_avx2();
        mk.cpu_checked = true;
    }
    ao_store(&mk.state, ST_JOINED); /* the collector, busy */
    for (unsigned i = 0; i < n; i++)
        marker_reset(&mk.m[i], n > 1);
    /* nmarkers under wake_mu, with go_gen: a worker woken for an earlier
     * mark that was not among its markers (so not counted in running)
     * may take the lock only now, and must see this mark's count with
     * this mark's generation. With the count of this mark and the
     * generation of the last, it joined with the old wake-up, then again
     * with the new one, and took running below zero. */
    pthread_mutex_lock(&mk.wake_mu);
    mk.nmarkers = n;
    if (n > 1) {
        ao_store(&mk.running, n - 1);
        mk.go_gen++;
        pthread_cond_broadcast(&mk.wake);
    }
    pthread_mutex_unlock(&mk.wake_mu);
}

/* Before overflow recovery after a parallel mark: the workers' marks
 * into mark_bits, in every span, so that the recovery, which sets and
 * tests mark_bits alone, sees every object marked. Folding span by span
 * as the rescan went marked again, and counted again, an object a worker
 * had marked in a span the rescan had not reached. */
static void fold_span(mspan *s, void *arg)
{
    (void)arg;
    collector->bytes -= (uint64_t)span_fold_marks(s) * s->elemsize;
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
            scan(collector, s->base + (uintptr_t)idx * s->elemsize, s);
            drain_local(collector);
        }
    }
}

uint64_t spangc_mark_finish(void)
{
    work_until_done(collector, false);
    /* Done stays done (a worker joining now joins idle): close the mark to
     * workers that have not joined, and go on without waiting for them,
     * or for joined ones to leave; spangc_mark_begin waits for those. */
    ao_or(&mk.state, ST_CLOSED);
    bool overflowed = false;
    for (unsigned i = 0; i < mk.nmarkers; i++) {
        overflowed |= mk.m[i].overflowed;
        mk.m[i].parallel = false;
    }
    /* Recovery runs on the collecting thread alone. */
    if (overflowed && mk.nmarkers > 1)
        spangc_mheap_for_each_span(fold_span, NULL);
    while (overflowed) {
        mk.overflowed_this_cycle = true;
        collector->overflowed = false;
        spangc_mheap_for_each_span(rescan_span, NULL);
        overflowed = collector->overflowed;
    }
    uint64_t bytes = 0;
    for (unsigned i = 0; i < mk.nmarkers; i++)
        bytes += mk.m[i].bytes;
    return bytes;
}

uint64_t spangc_mark_bytes_of(unsigned i)
{
    return i < mk.nmarkers ? mk.m[i].bytes : 0;
}

/* ---- what roots.c, specials.c and finalizer.c call ------------------------------------- */

void spangc_mark_range(uintptr_t lo, uintptr_t hi)
{
#ifdef HAVE_WIDE_SCAN
    /* Not in verify's check mark (bits_fn set): the scalar loop there, so
     * that a word the wide scan missed shows up as a difference. */
    if (mk.wide && !mk.bits_fn) {
        mark_range_avx2(collector, lo, hi);
        return;
    }
#endif
    mark_range(collector, lo, hi);
}

void spangc_mark_word(uintptr_t p)
{
    mark_candidate(collector, p);
}

void spangc_mark_scan_object(uintptr_t obj)
{
    mspan *s = spangc_span_of(obj);
    if (!span_is_noscan(s))
        scan(collector, obj, s);
}

void spangc_mark_drain(void)
{
    drain_local(collector);
}

bool spangc_mark_overflowed(void)
{
    return mk.overflowed_this_cycle;
}

void spangc_mark_set_bitmap(spangc_mark_bits_fn fn)
{
    mk.bits_fn = fn;
}

void spangc_mark_reinit_child(void)
{
    /* The workers did not survive the fork, even those still on their way
     * out of the last mark; their markers are idle. */
    mk.nworkers = 0;
    ao_store(&mk.running, 0);
    lock_init(&mk.pool_lock);
    pthread_mutex_init(&mk.wake_mu, NULL);
    pthread_cond_init(&mk.wake, NULL);
}
