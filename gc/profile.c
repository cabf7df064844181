/*
 * profile.c - sampled heap profiling [Go: mprof.go, MemProfileRate].
 *
 * Sampling. Each thread counts down the bytes it allocates, slots rather
 * than requests, since a sample stands for objects of its slot's size
 * (mcache next_sample; the allocation fast path's single compare against
 * fast_budget covers it). When an allocation crosses the count, it is
 * sampled and a new distance is drawn from an exponential distribution
 * whose mean is the profile rate, so that samples form a Poisson process
 * over allocated bytes and each sample stands for rate bytes on average.
 * A sample records the call stack (at most MAX_STACK return addresses,
 * starting at the caller of the allocation function) in a bucket keyed by
 * (stack, object size, rate), and attaches a PROFILE special to the
 * object, so that sweeping it counts the free in the same bucket. The
 * rate is the one the sample was drawn at: a profile's counts are raw
 * samples, which pprof scales by the rate its header names, so the header
 * must name the rate of the samples, not whatever rate is set when it is
 * written (profiling a phase, then setting the rate to 0, wrote
 * "heap_v2/0", and pprof took its own default: 28 times too much). Samples
 * at several rates are scaled here, each by its own, under "heap_v2/1".
 *
 * Publication lags like Go's, so a profile never shows as live an object
 * the next cycle frees. A cycle counter C advances at every mark
 * termination. Allocations count in future[(C+2) % 3], frees found by
 * sweeping in future[(C+1) % 3]. After the world restarts, future[C % 3]
 * is added into active; when sweeping completes, future[(C+1) % 3] too.
 * What active shows is therefore the allocations up to some mark and the
 * frees that mark's sweep found: in-use = allocs - frees as of one mark.
 *
 * prof_lock guards the hash table, the bucket list and every bucket's
 * records. It is a leaf, taken only inside runtime sections, by sweepers
 * and by the collector (runtime/lock.h).
 */
#include "profile.h"

#include "gc.h"

#include "specials.h"
#include "options.h"
#include "../runtime/lock.h"
#include "../runtime/metalloc.h"
#include "../runtime/mspan.h"
#include "../runtime/thread.h"

#include <errno.h>
#include <execinfo.h>
#include <stdio.h>
#include <string.h>

#define MAX_STACK 32
#define SKIP_SEARCH 8 /* frames of spangc itself above the caller */
#define HASH_CHAINS 16384

typedef struct mem_counts {
    uint64_t allocs, frees, alloc_bytes, free_bytes;
} mem_counts;

typedef struct prof_bucket {
    struct prof_bucket *next;    /* hash chain */
    struct prof_bucket *allnext; /* every bucket */
    uint64_t hash;
    size_t size;
    uint64_t rate; /* the profile rate its samples were taken at */
    mem_counts active;
    mem_counts future[3];
    size_t nstk;
    uintptr_t stk[];
} prof_bucket;

/* Guarded by lock (see above); rate and gen are atomic words read by
 * allocating threads. */
static SPANGC_STATE struct {
    spangc_lock lock;
    prof_bucket **table;
    prof_bucket *all;
    uint64_t cycle;
    ao_word gen; /* bumped by every gc_set_profile_rate */
} prof = {.lock = SPANGC_LOCK_INIT};

void gc_set_profile_rate(size_t bytes)
{
    /* gc_init sets the default rate: an earlier value would be lost. */
    if (ao_load(&spangc_gc.initialized) != 2)
        return;
    ao_store(&spangc_cfg.profile_rate, bytes);
    ao_add(&prof.gen, 1);
}

bool spangc_profile_rate_changed(const mcache *c)
{
    return c->profile_gen != ao_load(&prof.gen);
}

static uint64_t xorshift(uint64_t *state)
{
    uint64_t x = *state;
    if (x == 0)
        x = 0x9e3779b97f4a7c15ull ^ (uintptr_t)state;
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    *state = x;
    return x;
}

/* ln(x) for a normal x > 0, to about 1e-9 relative error, without libm:
 * linking libm would map half a megabyte of it into every program for
 * this one call [Go: fastlog2 in fastlog2.go, for the same purpose]. With
 * x = m * 2^e and m in [sqrt(1/2), sqrt(2)), ln(m) = 2 atanh(s) for
 * s = (m - 1) / (m + 1), |s| < 0.172, and the odd series of atanh
 * converges fast. */
static double natural_log(double x)
{
    uint64_t bits;
    memcpy(&bits, &x, sizeof bits);
    int e = (int)((bits >> 52) & 0x7ff) - 1023;
    bits = (bits & ((1ull << 52) - 1)) | (1023ull << 52); /* m in [1, 2) */
    double m;
    memcpy(&m, &bits, sizeof m);
    if (m > 1.4142135623730951) {
        m /= 2;
        e++;
    }
    double s = (m - 1) / (m + 1), s2 = s * s;
    double series = s * (2 + s2 * (2.0 / 3 + s2 * (2.0 / 5 + s2 * (2.0 / 7 + s2 * (2.0 / 9 +
                                                                          s2 * (2.0 / 11))))));
    return series + e * 0.6931471805599453;
}

uint64_t spangc_profile_next_sample(mcache *c)
{
    c->profile_gen = ao_load(&prof.gen);
    uint64_t rate = ao_load(&spangc_cfg.profile_rate);
    c->sample_rate = rate;
    if (rate == 0)
        return UINT64_MAX;
    if (rate == 1)
        return 0;
    /* -ln(U) * rate, U uniform in (0, 1]: exponentially distributed. */
    double u = (double)((xorshift(&c->rng) >> 11) + 1) / 9007199254740992.0;
    double x = -natural_log(u) * (double)rate;
    return x >= 1e18 ? UINT64_MAX : (uint64_t)x;
}

static prof_bucket *bucket_for(const uintptr_t *stk, size_t nstk, size_t size, uint64_t rate)
{
    uint64_t h = 0;
    for (size_t i = 0; i < nstk; i++) {
        h += stk[i];
        h += h << 10;
        h ^= h >> 6;
    }
    h += size;
    h += h << 10;
    h ^= h >> 6;
    h += rate;
    h += h << 10;
    h ^= h >> 6;
    h += h << 3;
    h ^= h >> 11;
    if (!prof.table) {
        prof.table = spangc_meta_alloc(HASH_CHAINS * sizeof(prof_bucket *));
        if (!prof.table)
            return NULL;
    }
    size_t chain = h % HASH_CHAINS;
    for (prof_bucket *b = prof.table[chain]; b; b = b->next)
        if (b->hash == h && b->size == size && b->rate == rate && b->nstk == nstk &&
            memcmp(b->stk, stk, nstk * sizeof *stk) == 0)
            return b;
    prof_bucket *b = spangc_meta_alloc(sizeof *b + nstk * sizeof *stk);
    if (!b)
        return NULL;
    b->hash = h;
    b->size = size;
    b->rate = rate;
    b->nstk = nstk;
    memcpy(b->stk, stk, nstk * sizeof *stk);
    b->next = prof.table[chain];
    prof.table[chain] = b;
    b->allnext = prof.all;
    prof.all = b;
    return b;
}

void spangc_profile_sample(uintptr_t obj, size_t elemsize, void *caller, uint64_t rate)
{
    /* The process's first backtrace() loads the unwinder (libgcc_s) with
     * dlopen. Here no spangc lock is held and the thread is not in a
     * runtime section, and a program that never samples never maps it. */
    void *pcs[MAX_STACK + SKIP_SEARCH];
    int n = backtrace(pcs, MAX_STACK + SKIP_SEARCH);
    /* Start at the caller of the allocation function. */
    int first = 0;
    while (first < n && first < SKIP_SEARCH && pcs[first] != caller)
        first++;
    uintptr_t stk[MAX_STACK];
    size_t nstk = 0;
    if (first == n || first == SKIP_SEARCH) {
        stk[nstk++] = (uintptr_t)caller;
        first = n;
    }
    for (int i = first; i < n && nstk < MAX_STACK; i++)
        stk[nstk++] = (uintptr_t)pcs[i];

    special_profile *rec = spangc_meta_alloc(sizeof *rec);
    if (!rec)
        return; /* profiling is best effort: never fail an allocation */
    spangc_thread *t = spangc_self;
    runtime_enter(t);
    lock_acquire(&prof.lock);
    prof_bucket *b = bucket_for(stk, nstk, elemsize, rate ? rate : 1);
    if (b) {
        mem_counts *m = &b->future[(prof.cycle + 2) % 3];
        m->allocs++;
        m->alloc_bytes += elemsize;
    }
    lock_release(&prof.lock);
    mspan *s = spangc_span_of_heap(obj);
    if (b && s) {
        rec->bucket = b;
        spangc_special_add(s, obj, &rec->s, SPECIAL_PROFILE, false);
        rec = NULL;
    }
    runtime_leave(t);
    if (rec)
        spangc_meta_free(rec, sizeof *rec);
}

void spangc_profile_free(prof_bucket *b, size_t size)
{
    lock_acquire(&prof.lock);
    mem_counts *m = &b->future[(prof.cycle + 1) % 3];
    m->frees++;
    m->free_bytes += size;
    lock_release(&prof.lock);
}

void spangc_profile_next_cycle(void)
{
    lock_acquire(&prof.lock);
    prof.cycle++;
    lock_release(&prof.lock);
}

static void add_counts(mem_counts *to, mem_counts *from)
{
    to->allocs += from->allocs;
    to->frees += from->frees;
    to->alloc_bytes += from->alloc_bytes;
    to->free_bytes += from->free_bytes;
    memset(from, 0, sizeof *from);
}

void spangc_profile_flush(bool sweep_done)
{
    spangc_thread *t = runtime_enter_self();
    lock_acquire(&prof.lock);
    for (prof_bucket *b = prof.all; b; b = b->allnext) {
        add_counts(&b->active, &b->future[prof.cycle % 3]);
        if (sweep_done)
            add_counts(&b->active, &b->future[(prof.cycle + 1) % 3]);
    }
    lock_release(&prof.lock);
    runtime_leave_self(t);
}

/* exp(-x) for x >= 0, without libm (see natural_log): x = k ln 2 + r with
 * r in [0, ln 2), e^-r by its series, halved k times. */
static double exp_minus(double x)
{
    if (x > 700)
        return 0;
    int k = (int)(x / 0.6931471805599453);
    double r = x - k * 0.6931471805599453, term = 1, sum = 1;
    for (int i = 1; i < 18; i++) {
        term *= -r / i;
        sum += term;
    }
    while (k-- > 0)
        sum /= 2;
    return sum;
}

/* Scale raw sample counts to estimates, as pprof does for heap_v2: an
 * object of s bytes is sampled with probability 1 - e^(-s/rate). */
static uint64_t scaled(uint64_t n, double p)
{
    return (uint64_t)((double)n / p + 0.5);
}

static void scale_counts(mem_counts *m, uint64_t rate)
{
    double size = m->allocs ? (double)m->alloc_bytes / (double)m->allocs : 0;
    double p = rate <= 1 || size == 0 ? 1 : 1 - exp_minus(size / (double)rate);
    uint64_t allocs = scaled(m->allocs, p), alloc_bytes = scaled(m->alloc_bytes, p);
    m->frees = allocs - scaled(m->allocs - m->frees, p);
    m->free_bytes = alloc_bytes - scaled(m->alloc_bytes - m->free_bytes, p);
    m->allocs = allocs;
    m->alloc_bytes = alloc_bytes;
}

/* One bucket's published counts, copied out under the lock. */
typedef struct bucket_view {
    mem_counts m;
    const prof_bucket *b; /* buckets are never freed; stk is immutable */
} bucket_view;

static int write_heap_profile(FILE *out);

/* Not a cancellation point, though it writes: a cancel there would leave
 * the copied counts and the maps stream behind (runtime/lock.h). */
int gc_write_heap_profile(FILE *out)
{
    if (!out)
        return -EINVAL;
    spangc_cancel_hold();
    int err = write_heap_profile(out);
    spangc_cancel_restore();
    return err;
}

static int write_heap_profile(FILE *out)
{
    /* Copy the counts inside a runtime section, write them outside: a
     * thread stopped while holding prof_lock would deadlock a sweeper. */
    spangc_thread *t = spangc_self;
    bucket_view *views = NULL;
    size_t n = 0, cap = 0;
    mem_counts total = {0};
    for (;;) {
        if (t)
            runtime_enter(t);
        lock_acquire(&prof.lock);
        size_t count = 0;
        for (prof_bucket *b = prof.all; b; b = b->allnext)
            count++;
        if (count <= cap) {
            /* Before the first collection nothing is published: show
             * everything recorded so far, so that profiling works with
             * collection off. */
            bool any = false;
            for (prof_bucket *b = prof.all; b && !any; b = b->allnext)
                any = b->active.allocs != 0;
            for (prof_bucket *b = prof.all; b; b = b->allnext) {
                if (!any)
                    for (int i = 0; i < 3; i++)
                        add_counts(&b->active, &b->future[i]);
                if (b->active.allocs == 0)
                    continue;
                views[n].m = b->active;
                views[n].b = b;
                n++;
            }
        }
        lock_release(&prof.lock);
        if (t)
            runtime_leave(t);
        if (count <= cap)
            break;
        spangc_meta_free(views, cap * sizeof *views);
        cap = count + 64;
        views = spangc_meta_alloc(cap * sizeof *views);
        if (!views)
            return -ENOMEM;
    }

    /* The rate the samples were taken at; with several, estimates. */
    uint64_t rate = 0;
    bool mixed = false;
    for (size_t i = 0; i < n; i++) {
        if (rate == 0)
            rate = views[i].b->rate;
        mixed |= views[i].b->rate != rate;
    }
    if (rate == 0)
        rate = ao_load(&spangc_cfg.profile_rate); /* no samples */
    for (size_t i = 0; i < n; i++) {
        mem_counts *m = &views[i].m;
        if (mixed)
            scale_counts(m, views[i].b->rate);
        total.allocs += m->allocs;
        total.frees += m->frees;
        total.alloc_bytes += m->alloc_bytes;
        total.free_bytes += m->free_bytes;
    }
    int err = fprintf(out, "heap profile: %llu: %llu [%llu: %llu] @ heap_v2/%llu\n",
                      (unsigned long long)(total.allocs - total.frees),
                      (unsigned long long)(total.alloc_bytes - total.free_bytes),
                      (unsigned long long)total.allocs, (unsigned long long)total.alloc_bytes,
                      (unsigned long long)(mixed ? 1 : rate)) < 0;
    for (size_t i = 0; i < n && !err; i++) {
        mem_counts *m = &views[i].m;
        err |= fprintf(out, "%llu: %llu [%llu: %llu] @", (unsigned long long)(m->allocs - m->frees),
                       (unsigned long long)(m->alloc_bytes - m->free_bytes),
                       (unsigned long long)m->allocs, (unsigned long long)m->alloc_bytes) < 0;
        for (size_t k = 0; k < views[i].b->nstk; k++)
            err |= fprintf(out, " 0x%llx", (unsigned long long)views[i].b->stk[k]) < 0;
        err |= fputc('\n', out) == EOF;
    }
    spangc_meta_free(views, cap * sizeof *views);
    /* The memory map, so that addresses in PIE binaries and shared
     * libraries can be symbolized. */
    err |= fputs("\nMAPPED_LIBRARIES:\n", out) == EOF;
    FILE *maps = fopen("/proc/self/maps", "r");
    if (maps) {
        char buf[4096];
        size_t got;
        while ((got = fread(buf, 1, sizeof buf, maps)) > 0)
            err |= fwrite(buf, 1, got, out) != got;
        fclose(maps);
    } else {
        err = 1;
    }
    err |= fflush(out) != 0;
    return err ? -EIO : 0;
}

void spangc_profile_lock(void)
{
    lock_acquire(&prof.lock);
}

void spangc_profile_unlock(void)
{
    lock_release(&prof.lock);
}
