/*
 * test_profile.c - heap profiling: at rate 1 the profile counts exactly a
 * known allocation pattern, attributed to the allocating function; frees
 * show up after the next collection, and automatic cycles publish without
 * gc_collect, with the background sweeper and (run with
 * --no-background-sweep) without it; rate 0 records nothing; the default
 * kind of rate samples about size/rate allocations, size being the slot's
 * (so estimates count objects right whatever the request); the file
 * format.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "testutil.h"

static int setup(void **state)
{
    (void)state;
    /* The environment counts: ctest runs these tests again with
     * GC_DEBUG=verify,poison. */
    return gc_init(NULL);
}


typedef struct profile_totals {
    unsigned long long inuse_objs, inuse_bytes, alloc_objs, alloc_bytes;
    unsigned long long header_alloc_objs;
    /* The header's in-use figures, and those of every bucket summed */
    unsigned long long header_inuse_objs, header_inuse_bytes, all_inuse_objs, all_inuse_bytes;
    unsigned long rate;
    bool has_maps;
    char buckets[1024]; /* the lines summed, for a failure's message */
} profile_totals;

/* Each allocating function below has a section of its own, code_FN,
 * whose bounds the linker names __start_code_FN and __stop_code_FN, so
 * that a sample is matched to exactly the function of its first frame.
 * (A window of 4 KiB after the function's address took in the functions
 * placed after it too, which differ from build to build: in one, the
 * widgets' 777 samples at rate 1 counted as the phase's.) */
#define ALLOCATOR(fn)                                                                              \
    extern const char __start_code_##fn[], __stop_code_##fn[];                                     \
    static __attribute__((noinline, section("code_" #fn)))
#define CODE_OF(fn) __start_code_##fn, __stop_code_##fn

/* Parse a heap_v2 profile; sum the buckets whose objects are obj_size
 * bytes and whose first frame lies in [code, code_end). */
static profile_totals read_profile(size_t obj_size, const char *code, const char *code_end)
{
    FILE *f = tmpfile();
    assert_int_equal(gc_write_heap_profile(f), 0);
    rewind(f);
    profile_totals t = {0};
    char line[8192];
    unsigned long long a, b, c, d;
    assert_non_null(fgets(line, sizeof line, f));
    assert_int_equal(sscanf(line, "heap profile: %llu: %llu [%llu: %llu] @ heap_v2/%lu", &a, &b,
                            &c, &d, &t.rate),
                     5);
    t.header_alloc_objs = c;
    t.header_inuse_objs = a;
    t.header_inuse_bytes = b;
    while (fgets(line, sizeof line, f)) {
        if (strncmp(line, "MAPPED_LIBRARIES:", 17) == 0) {
            t.has_maps = fgets(line, sizeof line, f) != NULL && strchr(line, '-') != NULL;
            break;
        }
        if (line[0] == '\n')
            continue;
        int used = 0;
        assert_int_equal(sscanf(line, "%llu: %llu [%llu: %llu] @%n", &a, &b, &c, &d, &used), 4);
        unsigned long long pc = strtoull(line + used, NULL, 16);
        assert_true(pc != 0);
        t.all_inuse_objs += a;
        t.all_inuse_bytes += b;
        /* Rounded: estimates (several rates) round counts and bytes apart. */
        if (c && (d + c / 2) / c == obj_size && pc >= (uintptr_t)code &&
            pc < (uintptr_t)code_end) {
            t.inuse_objs += a;
            t.inuse_bytes += b;
            t.alloc_objs += c;
            t.alloc_bytes += d;
            size_t used_text = strlen(t.buckets);
            snprintf(t.buckets + used_text, sizeof t.buckets - used_text, "%.*s\n",
                     (int)strcspn(line, "@"), line);
        }
    }
    fclose(f);
    return t;
}

enum { WIDGETS = 777 };

/* Each widget has its own root (testutil.h, rooted_set). */
static rooted_set widgets;

ALLOCATOR(allocate_widgets) void allocate_widgets(void)
{
    for (int i = 0; i < WIDGETS; i++)
        rooted_set_obj(&widgets, (size_t)i, gc_alloc(1000)); /* the 1024-byte class */
}

static void test_exact_counts_at_rate_one(void **state)
{
    (void)state;
    assert_true(rooted_init(&widgets, WIDGETS));
    gc_set_profile_rate(1);
    allocate_widgets();
    /* Before any collection, everything recorded is shown. */
    profile_totals t = read_profile(1024, CODE_OF(allocate_widgets));
    assert_int_equal(t.rate, 1);
    assert_true(t.has_maps);
    assert_int_equal(t.alloc_objs, WIDGETS);
    assert_int_equal(t.alloc_bytes, WIDGETS * 1024);
    assert_int_equal(t.inuse_objs, WIDGETS);
    /* After a collection: still all in use. */
    collect();
    t = read_profile(1024, CODE_OF(allocate_widgets));
    assert_int_equal(t.alloc_objs, WIDGETS);
    assert_int_equal(t.inuse_objs, WIDGETS);
    assert_int_equal(t.inuse_bytes, WIDGETS * 1024);
    /* Dropped: the frees appear once a collection has swept; exactly the
     * widgets a stale stack word still holds, if any, count as in use. */
    rooted_drop(&widgets);
    collect();
    size_t kept = rooted_kept(&widgets, HERE);
    assert_true(kept <= 2);
    t = read_profile(1024, CODE_OF(allocate_widgets));
    assert_int_equal(t.alloc_objs, WIDGETS);
    assert_int_equal(t.inuse_objs, kept);
    assert_int_equal(t.inuse_bytes, kept * 1024);
    /* The header sums the buckets: in use is allocated less freed. */
    assert_int_equal(t.header_inuse_objs, t.all_inuse_objs);
    assert_int_equal(t.header_inuse_bytes, t.all_inuse_bytes);
    assert_true(t.header_inuse_objs <= t.header_alloc_objs - (WIDGETS - kept));
    rooted_destroy(&widgets);
}

/* One call stack, two object sizes: a bucket each (pprof takes a line's
 * object size as its bytes over its count), with exact counts at rate 1. */
enum { PER_SIZE = 20 };
static rooted_set two_sizes;

ALLOCATOR(allocate_two_sizes) void allocate_two_sizes(void)
{
    for (size_t i = 0; i < 2 * PER_SIZE; i++) {
        volatile size_t size = i & 1 ? 4096 : 16; /* one call site for both */
        rooted_set_obj(&two_sizes, i, gc_alloc(size));
    }
}

static void test_buckets_per_object_size(void **state)
{
    (void)state;
    assert_true(rooted_init(&two_sizes, 2 * PER_SIZE));
    gc_set_profile_rate(1);
    allocate_two_sizes();
    gc_set_profile_rate(0);
    collect();
    profile_totals small = read_profile(16, CODE_OF(allocate_two_sizes));
    profile_totals big = read_profile(4096, CODE_OF(allocate_two_sizes));
    assert_int_equal(small.alloc_objs, PER_SIZE);
    assert_int_equal(small.inuse_objs, PER_SIZE);
    assert_int_equal(big.alloc_objs, PER_SIZE);
    assert_int_equal(big.inuse_bytes, PER_SIZE * 4096);
    rooted_destroy(&two_sizes);
}

/* ---- publication by automatic cycles ------------------------------------- */

/* With the background sweeper, a cycle's frees are published when it has
 * swept everything, not only at the next cycle or at gc_collect. */
static void test_background_sweep_publishes_frees(void **state)
{
    (void)state;
    assert_true(rooted_init(&widgets, WIDGETS));
    gc_set_profile_rate(1);
    allocate_widgets();
    gc_set_profile_rate(0);
    collect();
    profile_totals t = read_profile(1024, CODE_OF(allocate_widgets));
    unsigned long long held_before = t.inuse_objs - WIDGETS; /* by earlier tests' stale words */
    assert_true(held_before <= 2);
    rooted_drop(&widgets);
    scrub_stack();
    garbage_until_cycles(1); /* not gc_collect, which would publish itself */
    /* The sweeper finishes on its own; nothing allocates meanwhile. */
    for (int i = 0; i < 1000; i++) {
        t = read_profile(1024, CODE_OF(allocate_widgets));
        if (t.inuse_objs <= held_before + 2)
            break;
        usleep(10 * 1000);
    }
    assert_true(t.inuse_objs <= held_before + 2);
    rooted_destroy(&widgets);
}

/* Without the background sweeper (test_profile --no-background-sweep), mark
 * termination is what publishes. A first batch of widgets is published by
 * gc_collect (before anything is, a profile shows everything recorded);
 * once two automatic cycles have run, the second batch, allocated before
 * them, shows too. */
static void test_mark_termination_publishes(void **state)
{
    (void)state;
    assert_true(rooted_init(&widgets, WIDGETS));
    gc_set_profile_rate(1);
    allocate_widgets();
    collect();
    assert_int_equal(read_profile(1024, CODE_OF(allocate_widgets)).alloc_objs, WIDGETS);
    allocate_widgets(); /* the first batch is garbage now */
    gc_set_profile_rate(0);
    garbage_until_cycles(2); /* not gc_collect, which would publish itself */
    profile_totals t = read_profile(1024, CODE_OF(allocate_widgets));
    assert_int_equal(t.alloc_objs, 2 * WIDGETS);
    /* Whether lazy sweeping found the first batch dead yet varies. */
    assert_in_range(t.inuse_objs, WIDGETS, 2 * WIDGETS);
    rooted_destroy(&widgets);
}

/* Two call sites allocating objects of the same size: a bucket each,
 * told apart by the call stack, with exact counts at rate 1. */
enum { PER_SITE = 10 };
static rooted_set sites;

ALLOCATOR(allocate_at_site_a) void allocate_at_site_a(void)
{
    for (size_t i = 0; i < PER_SITE; i++)
        rooted_set_obj(&sites, i, gc_alloc(48));
}

ALLOCATOR(allocate_at_site_b) void allocate_at_site_b(void)
{
    for (size_t i = 0; i < PER_SITE; i++)
        rooted_set_obj(&sites, PER_SITE + i, gc_alloc(48));
}

static void test_buckets_follow_the_call_stack(void **state)
{
    (void)state;
    assert_true(rooted_init(&sites, 2 * PER_SITE));
    gc_set_profile_rate(1);
    allocate_at_site_a();
    allocate_at_site_b();
    collect(); /* a profile shows the allocations up to the last mark */
    profile_totals a = read_profile(48, CODE_OF(allocate_at_site_a));
    profile_totals b = read_profile(48, CODE_OF(allocate_at_site_b));
    assert_int_equal(a.alloc_objs, PER_SITE);
    assert_int_equal(a.alloc_bytes, PER_SITE * 48);
    assert_int_equal(b.alloc_objs, PER_SITE);
    assert_int_equal(b.alloc_bytes, PER_SITE * 48);
    rooted_destroy(&sites);
}

/* An object resurrected for its finalizer is not freed yet: the profile
 * counts it in use until a cycle after its finalizer ran frees it. Made
 * on a thread that exits, so that no stale word holds it, and not first
 * in its span, an address earlier tests' objects left in scanned words. */
static void no_op(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
}

ALLOCATOR(allocate_finalizable) void allocate_finalizable(uintptr_t *out)
{
    void *p = gc_alloc(256);
    assert_int_equal(gc_set_finalizer(p, no_op, NULL), 0);
    *out = HIDE(p);
}

static void allocate_finalizable_second(void *out)
{
    (void)!gc_alloc(256); /* the object is not its span's first */
    allocate_finalizable(out);
}

static void test_resurrected_object_stays_in_use(void **state)
{
    (void)state;
    gc_set_profile_rate(1);
    uintptr_t h = 0;
    run_on_a_registered_thread(allocate_finalizable_second, &h);
    collect(); /* dead: its finalizer is queued, the object kept for it */
    assert_true(alive(h));
    profile_totals t = read_profile(256, CODE_OF(allocate_finalizable));
    assert_int_equal(t.alloc_objs, 1);
    assert_int_equal(t.inuse_objs, 1);
    assert_int_equal(gc_run_finalizers(), 1);
    collect();
    assert_false(alive(h));
    t = read_profile(256, CODE_OF(allocate_finalizable));
    assert_int_equal(t.inuse_objs, 0);
}

ALLOCATOR(allocate_unprofiled) void allocate_unprofiled(void)
{
    for (int i = 0; i < 1000; i++)
        (void)!gc_alloc(3000); /* the 3072-byte class */
}

static void test_rate_zero_records_nothing(void **state)
{
    (void)state;
    gc_set_profile_rate(0);
    allocate_unprofiled();
    collect();
    profile_totals t = read_profile(3072, CODE_OF(allocate_unprofiled));
    assert_int_equal(t.alloc_objs, 0);
    /* The header names the rate of the samples shown (the earlier tests'),
     * not the rate set now. */
    assert_int_equal(t.rate, 1);
}

ALLOCATOR(allocate_sampled) void allocate_sampled(size_t total)
{
    for (size_t done = 0; done < total; done += 64)
        (void)!gc_alloc(64);
}

/* At rate R, about total/R of the allocations are sampled (a Poisson
 * count: the bounds are more than five standard deviations wide). The
 * earlier tests sampled at other rates, so the profile holds estimates,
 * each bucket scaled by its own rate (about 1024.5 for 64-byte objects at
 * 64 KiB), under "heap_v2/1". */
static void test_sampling_rate(void **state)
{
    (void)state;
    gc_set_profile_rate(64 * 1024);
    allocate_sampled((size_t)64 << 20); /* expect 1024 samples */
    collect();
    collect();
    profile_totals t = read_profile(64, CODE_OF(allocate_sampled));
    print_message("%llu objects estimated for 1 Mi allocated, at 64 KiB, from\n%s", t.alloc_objs,
                  t.buckets);
    assert_int_equal(t.rate, 1);
    assert_in_range(t.alloc_objs, 850 * 1024, 1200 * 1024);
    gc_set_profile_rate(512 * 1024);
}

/* Profiling a phase at one rate, then turning sampling off: the profile
 * is still right about the phase. It said "heap_v2/0", which pprof
 * replaces by a default of its own (28 times too much here). With the
 * earlier tests' samples at rate 1 beside these, each bucket is scaled by
 * its own rate under "heap_v2/1". */
enum { PHASE_OBJECTS = 5000 };
static rooted_set phase;

ALLOCATOR(allocate_phase) void allocate_phase(void)
{
    for (int i = 0; i < PHASE_OBJECTS; i++)
        rooted_set_obj(&phase, (size_t)i, gc_alloc(1000)); /* the 1024-byte class */
}

static void test_header_names_the_sampling_rate(void **state)
{
    (void)state;
    assert_true(rooted_init(&phase, PHASE_OBJECTS));
    gc_set_profile_rate(4096);
    allocate_phase();
    gc_set_profile_rate(0);
    collect();
    collect();
    /* Each 1024-byte object is sampled with probability 1 - e^(-1/4):
     * about 1106 samples, estimated back to about 5000 (five standard
     * deviations either way). */
    profile_totals t = read_profile(1024, CODE_OF(allocate_phase));
    print_message("%llu objects estimated for %d allocated, at 4 KiB, from\n%s", t.alloc_objs,
                  PHASE_OBJECTS, t.buckets);
    assert_int_equal(t.rate, 1);
    assert_in_range(t.alloc_objs, PHASE_OBJECTS - 750, PHASE_OBJECTS + 750);
    gc_set_profile_rate(512 * 1024);
    rooted_drop(&phase);
    rooted_destroy(&phase);
}

/* A sample stands for objects of its slot's size, so the sampler counts
 * slots: when it counted the bytes requested, 17-byte objects in 32-byte
 * slots were estimated at 17/32 of their number. */
enum { ODD_OBJECTS = 100000 };

ALLOCATOR(allocate_odd) void allocate_odd(void)
{
    for (int i = 0; i < ODD_OBJECTS; i++)
        (void)!gc_alloc_atomic(17); /* the 32-byte class */
}

static void test_estimates_count_slots(void **state)
{
    (void)state;
    gc_set_profile_rate(4096);
    allocate_odd();
    gc_set_profile_rate(512 * 1024);
    collect();
    /* About 778 samples (1 - e^(-32/4096) of the objects), so the
     * estimate's standard deviation is 3.6 %: the bounds are seven wide,
     * and 17/32 is far below. The earlier tests' samples at
     * rate 1 make the profile one of estimates. */
    profile_totals t = read_profile(32, CODE_OF(allocate_odd));
    print_message("%llu objects estimated for %d allocated, at 4 KiB, from\n%s", t.alloc_objs,
                  ODD_OBJECTS, t.buckets);
    assert_int_equal(t.rate, 1);
    assert_in_range(t.alloc_objs, ODD_OBJECTS * 3 / 4, ODD_OBJECTS * 5 / 4);
}

/* gc_realloc's new object and gc_weak_new's handle are allocated on the
 * program's behalf: a sample names the program's function, not spangc's
 * (both used to start their stacks inside spangc). */
static size_t grown_size;

ALLOCATOR(grow_and_weaken) void grow_and_weaken(void)
{
    for (int i = 0; i < 20; i++) {
        void *p = gc_realloc(gc_alloc(16), 100000);
        grown_size = gc_size(p);
        (void)!gc_weak_new(p);
    }
}

static void test_realloc_and_weak_blame_the_caller(void **state)
{
    (void)state;
    gc_set_profile_rate(1);
    grow_and_weaken();
    gc_set_profile_rate(512 * 1024);
    collect();
    collect();
    assert_int_equal(read_profile(grown_size, CODE_OF(grow_and_weaken)).alloc_objs, 20);
    assert_int_equal(read_profile(16, CODE_OF(grow_and_weaken)).alloc_objs, 40);
}

static void test_bad_stream(void **state)
{
    (void)state;
    assert_int_equal(gc_write_heap_profile(NULL), -EINVAL);
    FILE *ro = fopen("/dev/null", "r");
    assert_int_equal(gc_write_heap_profile(ro), -EIO);
    fclose(ro);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest lazy[] = {
        cmocka_unit_test(test_mark_termination_publishes),
    };
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_counts_at_rate_one),
        cmocka_unit_test(test_background_sweep_publishes_frees),
        cmocka_unit_test(test_buckets_follow_the_call_stack),
        cmocka_unit_test(test_buckets_per_object_size),
        cmocka_unit_test(test_resurrected_object_stays_in_use),
        cmocka_unit_test(test_rate_zero_records_nothing),
        cmocka_unit_test(test_header_names_the_sampling_rate),
        cmocka_unit_test(test_sampling_rate),
        cmocka_unit_test(test_estimates_count_slots),
        cmocka_unit_test(test_realloc_and_weak_blame_the_caller),
        cmocka_unit_test(test_bad_stream),
    };
    return RUN_TESTS_OR_LAZY(argc, argv, tests, setup, lazy);
}
