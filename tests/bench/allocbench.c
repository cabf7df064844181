/*
 * allocbench - the cost of one small allocation, collection included.
 *
 * Why: an interpreter allocates mostly small short-lived objects, so the
 * allocation path plus the amortized cost of reclaiming them is the number
 * an embedder feels first. The reliability-perf goals ask spangc for
 * gc_alloc no slower than glibc calloc+free and within 1.3x of mimalloc.
 *
 * Modes (-m):
 *   window  N allocations of 16..128 bytes (sizes from a fixed xorshift
 *           sequence); the last W objects stay live in a ring, and each new
 *           object overwrites the oldest. Collectors reclaim the evicted
 *           ones; malloc contenders free them explicitly (calloc + free,
 *           mi_zalloc + mi_free). Objects are scanned (gc_alloc, GC_MALLOC).
 *   atomic  the same with pointer-free objects (gc_alloc_atomic,
 *           GC_MALLOC_ATOMIC, malloc, mi_malloc).
 *   fast    the pure allocation fast path: collection disabled, batches of
 *           W allocations are timed, and between batches (not timed) the
 *           batch is freed or dropped and collected. Memory is therefore
 *           warm (no page faults) but must be zeroed again, for every
 *           contender alike. The first batch warms up and is not timed.
 *
 * Self-check: every object carries its sequence number in its first and
 * last word; it is checked for one evicted object in 64 and for every
 * survivor at the end, so a collector that frees or overlaps live objects
 * fails the run.
 *
 * Usage: allocbench-<contender> [-m window|atomic|fast] [-n N] [-w W]
 */
#include "shim.h"

#include <unistd.h>

#define NSIZES 65536 /* a power of two */
static uint8_t sizes[NSIZES];

static void make_sizes(void)
{
    uint64_t x = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < NSIZES; i++) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        sizes[i] = (uint8_t)(16 + x % 113); /* 16..128 */
    }
}

#define TAG 0x5a5a000000000000u

/* Fill the first and last word of an object of size sz with seq. */
static inline void stamp(uint64_t *p, unsigned sz, uint64_t seq)
{
    p[0] = seq;
    p[sz / 8 - 1] = seq ^ TAG;
}

static inline void check(const uint64_t *p, unsigned sz, uint64_t seq)
{
    if (__builtin_expect(p[0] != seq || p[sz / 8 - 1] != (seq ^ TAG), 0))
        bench_fail("object %llu (size %u) holds %llu / %llx", (unsigned long long)seq, sz,
                   (unsigned long long)p[0], (unsigned long long)p[sz / 8 - 1]);
}

/* window and atomic modes: returns the elapsed nanoseconds. */
static uint64_t run_window(uint64_t n, uint64_t w, int atomic)
{
    uint64_t **ring = bench_alloc(w * sizeof *ring);
    uint64_t t0 = bench_now_ns();
    uint64_t j = 0;
    for (uint64_t i = 0; i < n; i++) {
        uint64_t *old = ring[j];
        if (old) {
            /* Checking every evicted object would add a cache miss that
             * only the collectors pay (free touches the object anyway). */
            if ((i & 63) == 0)
                check(old, sizes[(i - w) & (NSIZES - 1)], i - w);
            bench_free(old);
        }
        unsigned sz = sizes[i & (NSIZES - 1)];
        uint64_t *p = atomic ? bench_alloc_atomic(sz) : bench_alloc(sz);
        stamp(p, sz, i);
        ring[j] = p;
        if (++j == w)
            j = 0;
    }
    uint64_t dt = bench_now_ns() - t0;
    /* The survivors: the last min(n, w) objects. */
    for (uint64_t i = n > w ? n - w : 0; i < n; i++)
        check(ring[i % w], sizes[i & (NSIZES - 1)], i);
    return dt;
}

/* fast mode: returns the timed nanoseconds (all batches but the first). */
static uint64_t run_fast(uint64_t n, uint64_t w)
{
    uint64_t **ring = bench_alloc(w * sizeof *ring);
    uint64_t timed = 0;
    uint64_t batches = n / w;
    bench_disable();
    for (uint64_t b = 0; b <= batches; b++) {
        uint64_t t0 = bench_now_ns();
        for (uint64_t k = 0; k < w; k++) {
            unsigned sz = sizes[k & (NSIZES - 1)];
            uint64_t *p = bench_alloc(sz);
            stamp(p, sz, k);
            ring[k] = p;
        }
        if (b > 0)
            timed += bench_now_ns() - t0;
        /* Not timed: check, then give the batch back. */
        for (uint64_t k = 0; k < w; k++) {
            check(ring[k], sizes[k & (NSIZES - 1)], k);
            bench_free(ring[k]);
            ring[k] = NULL;
        }
        if (BENCH_IS_GC) {
            bench_enable();
            bench_collect();
            bench_disable();
        }
    }
    bench_enable();
    return timed;
}

int main(int argc, char **argv)
{
    uint64_t n = 20000000, w = 100000;
    const char *mode = "window";
    int opt;
    while ((opt = getopt(argc, argv, "m:n:w:")) != -1) {
        switch (opt) {
        case 'm': mode = optarg; break;
        case 'n': n = bench_parse_count(optarg); break;
        case 'w': w = bench_parse_count(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-m window|atomic|fast] [-n N] [-w W]\n", argv[0]);
            return 1;
        }
    }
    bench_init();
    make_sizes();

    uint64_t ns, count;
    if (!strcmp(mode, "window") || !strcmp(mode, "atomic")) {
        ns = run_window(n, w, mode[0] == 'a');
        count = n;
    } else if (!strcmp(mode, "fast")) {
        if (n < 2 * w)
            n = 2 * w;
        ns = run_fast(n, w);
        count = n / w * w;
    } else {
        fprintf(stderr, "unknown mode %s\n", mode);
        return 1;
    }
    printf("allocbench %s %s: %llu allocations, window %llu: %.2f ns/alloc\n", BENCH_CONTENDER,
           mode, (unsigned long long)count, (unsigned long long)w, (double)ns / count);
    bench_result("allocbench", "mode=%s n=%llu w=%llu ns_per_alloc=%.2f check=ok", mode,
                 (unsigned long long)count, (unsigned long long)w, (double)ns / count);
    return 0;
}
