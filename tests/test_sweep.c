/*
 * test_sweep.c - sweeping: freed memory is reused and comes back zeroed,
 * a program allocating gigabytes with a few megabytes live stays small,
 * and the heap stays consistent while collections, the background sweeper
 * and allocation all sweep.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sys/resource.h>

#include "atomic.h"
#include "sweep.h"
#include "testutil.h"

/* volatile: stores to a root must not be optimized away. */
static void *volatile global_root;

static int setup(void **state)
{
    (void)state;
    /* The environment counts: ctest runs these tests again with
     * GC_DEBUG=verify,poison. */
    return gc_init(NULL);
}

/* ---- reuse ---------------------------------------------------------------- */

static __attribute__((noinline)) void fill_garbage(uintptr_t *addrs, int n, size_t size)
{
    for (int i = 0; i < n; i++) {
        char *p = gc_alloc(size);
        memset(p, 0xff, size);
        addrs[i] = HIDE(p);
    }
}

/* For each size: freed slots are reused and come back zeroed. 16 and 32
 * bytes are cleared inline by the fast path (two vector stores), 48 and
 * 96 by memset. */
static void test_freed_memory_is_reused_zeroed(void **state)
{
    (void)state;
    enum { N = 5000 };
    static uintptr_t old[N];
    static const size_t sizes[] = {16, 32, 48, 96};
    for (size_t z = 0; z < sizeof sizes / sizeof sizes[0]; z++) {
        size_t size = sizes[z];
        fill_garbage(old, N, size);
        collect();
        int freed = 0;
        for (int i = 0; i < N; i++)
            freed += !alive(old[i]);
        assert_true(freed >= N - 10);
        int reused = 0;
        for (int i = 0; i < N; i++) {
            unsigned char *p = gc_alloc(size);
            for (size_t k = 0; k < size; k++)
                assert_int_equal(p[k], 0);
            for (int j = 0; j < N && !reused; j++)
                reused = HIDE(p) == old[j];
        }
        assert_true(reused);
    }
}

/* ---- bounded memory ------------------------------------------------------ */

static long peak_rss_kib(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

/* 4 GiB of allocation with about 4 MiB live at any time stays within a
 * small, fixed footprint. */
static void test_bounded_memory(void **state)
{
    (void)state;
    enum { RING = 4096 };
    void **ring = gc_alloc(RING * sizeof(void *));
    global_root = ring;
    uint64_t total = 0, i = 0;
    gc_stats before;
    gc_get_stats(&before);
    while (total < ((uint64_t)4 << 30)) {
        size_t size = 16 + (i * 2654435761u) % 2000;
        if (i % 997 == 0)
            size = 40000 + i % 100000; /* a large object now and then */
        char *p = i & 1 ? gc_alloc(size) : gc_alloc_atomic(size);
        p[0] = 1;
        ring[i % RING] = p;
        total += size;
        i++;
    }
    gc_stats after;
    gc_get_stats(&after);
    print_message("allocated %llu MiB in %llu objects, %llu collections, heap_sys %llu MiB, "
                  "peak RSS %ld MiB\n",
                  (unsigned long long)(total >> 20), (unsigned long long)i,
                  (unsigned long long)(after.num_gc - before.num_gc),
                  (unsigned long long)(after.heap_sys >> 20), peak_rss_kib() >> 10);
    assert_true(after.num_gc - before.num_gc > 100);
    assert_true(after.heap_sys < ((uint64_t)96 << 20));
    assert_true(peak_rss_kib() < 160 * 1024);
    global_root = NULL;
}

/* ---- sweeping ---------------------------------------------------------- */

/* Collections back to back while the heap churns: after each full
 * collection every span and counter is consistent (collect() verifies
 * the heap), and every object the 8000-byte array holds is still there,
 * with the stamp it was given (its own address, hidden). */
static void test_forced_collections_loop(void **state)
{
    (void)state;
    enum { KEEP = 1000 };
    void **keep = gc_alloc(KEEP * sizeof(void *));
    global_root = keep;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 2000; i++) {
            uintptr_t *p = gc_alloc(16 + (size_t)(i * 37 % 3000));
            if (i % 7 == 0) {
                p[0] = HIDE(p);
                keep[(round * 2000 + i) % KEEP] = p;
            }
        }
        collect();
        for (int k = 0; k < KEEP; k++) {
            if (keep[k]) {
                assert_ptr_equal(gc_base(keep[k]), keep[k]);
                assert_true(*(uintptr_t *)keep[k] == HIDE(keep[k]));
            }
        }
    }
    global_root = NULL;
}

/* gc_collect sweeps every span before it returns, whichever size class
 * holds the last unswept ones. The sweepers take the classes in turn,
 * starting from a cursor; here each size, scanned and atomic, is the only
 * class with garbage in its own collection, so a sweeper that passed over
 * any one class would leave its spans unswept and their objects counted
 * as allocated. */
static __attribute__((noinline)) void make_garbage_of(size_t size, size_t n, bool atomic)
{
    for (size_t i = 0; i < n; i++)
        memset(atomic ? gc_alloc_atomic(size) : gc_alloc(size), 0x22, size);
}

static void test_collect_sweeps_every_class(void **state)
{
    (void)state;
    static const size_t sizes[] = {16, 48, 112, 512, 1024, 4096, 12288, 32768};
    for (size_t k = 0; k < 2 * sizeof sizes / sizeof sizes[0]; k++) {
        size_t size = sizes[k / 2];
        size_t n = ((size_t)4 << 20) / size; /* 4 MiB: many spans */
        collect();
        gc_stats before, after;
        gc_get_stats(&before);
        make_garbage_of(size, n, k & 1);
        scrub_stack();
        gc_collect();
        gc_get_stats(&after);
        assert_false(spangc_sweep_unfinished());
        /* All but what stale words may hold was freed. */
        assert_true(after.frees - before.frees >= n - 16);
        assert_true(after.heap_alloc <= before.heap_alloc + 16 * size);
    }
}

/* Automatic cycles leave sweeping to the background and to allocation;
 * the heap must stay consistent while both sweep. */
static void test_allocation_during_background_sweep(void **state)
{
    (void)state;
    void **keep = gc_alloc(4096 * sizeof(void *));
    global_root = keep;
    gc_stats a, b;
    gc_get_stats(&a);
    for (long i = 0; i < 3000000; i++) {
        void *p = gc_alloc(16 + (size_t)(i % 50) * 16);
        if (i % 13 == 0)
            keep[i % 4096] = p;
    }
    gc_get_stats(&b);
    assert_true(b.num_gc > a.num_gc + 10);
    collect();
    for (int i = 0; i < 4096; i++)
        assert_ptr_equal(gc_base(keep[i]), keep[i]);
    global_root = NULL;
}

/* ---- without the background sweeper ------------------------------------ */

/* test_sweep --no-background-sweep: only allocation sweeps. An allocation
 * that needs a span of its class sweeps the class's unswept spans first
 * (lazy sweeping), so a heap whose spans all keep a few live objects is
 * reused, not grown: here one 64-byte object in 50 survives, 20,000 at
 * a time. Without lazy sweeping, only the reclaim that precedes heap
 * growth swept, and heap_sys reached 52 MiB in place of 4. */
static void test_allocation_sweeps_its_class(void **state)
{
    (void)state;
    enum { RING = 20000, EVERY = 50 };
    void **ring = gc_alloc(RING * sizeof(void *));
    global_root = ring;
    uint64_t peak = 0;
    for (uint64_t i = 0; i < 4000000; i++) {
        void *p = gc_alloc(64);
        if (i % EVERY == 0)
            ring[(i / EVERY) % RING] = p;
        if (i % 65536 == 0) {
            gc_stats st;
            gc_get_stats(&st);
            if (st.heap_sys > peak)
                peak = st.heap_sys;
        }
    }
    gc_stats st;
    gc_get_stats(&st);
    print_message("%llu cycles, peak heap_sys %llu KiB\n", (unsigned long long)st.num_gc,
                  (unsigned long long)(peak >> 10));
    assert_true(st.num_gc >= 20);
    assert_true(peak <= ((uint64_t)8 << 20));
    global_root = NULL;
}

/* ---- lookups racing with a span's reuse ---------------------------------- */

/* gc_base and gc_size on addresses of objects that die, from a thread
 * that does not allocate them, while a sweeper frees their spans and a
 * third thread sets the pages up again for other sizes. The lookup sweeps
 * the span, looks it up again and reads its layout without a lock; that
 * is race-free only because a sweeper that frees a span never marks it
 * swept first (sweep.c): under ThreadSanitizer the layout reads raced
 * with the reused span's set-up (span_init, mheap's coalescing). */
enum { PROBED = 4096 };
static ao_word probed[PROBED]; /* hidden addresses, some interior */
static ao_word probing_done, bad_lookups;

static void *reuse_pages(void *arg)
{
    (void)arg;
    assert_int_equal(gc_register_thread(), 0);
    for (unsigned i = 0; !ao_load(&probing_done); i++) {
        char *p = gc_alloc(100 + (i * 977) % 9000);
        p[0] = 1;
    }
    assert_int_equal(gc_unregister_thread(), 0);
    return NULL;
}

static void *probe(void *arg)
{
    (void)arg;
    assert_int_equal(gc_register_thread(), 0);
    for (unsigned i = 0; !ao_load(&probing_done); i++) {
        uintptr_t h = ao_load_acq(&probed[(i * 31) % PROBED]);
        if (!h)
            continue;
        char *p = SHOW(h);
        char *base = gc_base(p); /* held here, so it stays alive */
        if (base && (p < base || p >= base + gc_size(base)))
            ao_add(&bad_lookups, 1);
    }
    assert_int_equal(gc_unregister_thread(), 0);
    return NULL;
}

static void test_lookups_race_with_span_reuse(void **state)
{
    (void)state;
    pthread_t reuser, prober[2];
    assert_int_equal(pthread_create(&reuser, NULL, reuse_pages, NULL), 0);
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&prober[k], NULL, probe, NULL), 0);
    for (unsigned i = 0; i < 80000; i++) {
        char *p = gc_alloc(32 + (i % 4) * 16);
        ao_store_rel(&probed[i % PROBED], HIDE(p + (i % 3) * 8));
        if (i % 1024 == 1023)
            gc_collect();
    }
    ao_store(&probing_done, 1);
    assert_int_equal(pthread_join(reuser, NULL), 0);
    for (int k = 0; k < 2; k++)
        assert_int_equal(pthread_join(prober[k], NULL), 0);
    assert_int_equal(ao_load(&bad_lookups), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest lazy[] = {
        cmocka_unit_test(test_allocation_sweeps_its_class),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_freed_memory_is_reused_zeroed),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_forced_collections_loop),
        cmocka_unit_test(test_collect_sweeps_every_class),
        cmocka_unit_test(test_allocation_during_background_sweep),
        cmocka_unit_test(test_lookups_race_with_span_reuse),
    };
    return RUN_TESTS_OR_LAZY(argc, argv, tests, setup, lazy);
}
