/*
 * test_malloc.c - the allocation API: sizes, alignment, zeroing, the fast
 * path across span refills, realloc, typed layouts, statistics and errors.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <spangc.h>
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <string.h>

#include "gc.h"
#include "mheap.h"
#include "options.h"
#include "mspan.h"
#include "thread.h"

static int all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return 0;
    return 1;
}

/* Before gc_init every call fails cleanly; gc_init works once. */
static void test_before_and_at_init(void **state)
{
    (void)state;
    errno = 0;
    assert_null(gc_alloc(16));
    assert_int_equal(errno, EPERM);
    assert_null(gc_alloc_atomic(16));
    assert_int_equal(gc_register_thread(), -EPERM);
    assert_null(gc_base((void *)&errno));
    assert_int_equal(gc_size(NULL), 0);

    gc_options bad = {.suspend_signal = 9}; /* SIGKILL */
    assert_int_equal(gc_init(&bad), -EINVAL);
    assert_int_equal(gc_init(NULL), 0);
    assert_int_equal(gc_init(NULL), -EEXIST);
    assert_int_equal(gc_register_thread(), -EEXIST);
}

/* Every size from 0 to past the large threshold: zeroed, 16-aligned,
 * usable size at least the request, and writable up to it. */
static void test_sizes_alignment_zero(void **state)
{
    (void)state;
    for (size_t size = 0; size < 70000; size += size < 512 ? 1 : 97) {
        char *p = size & 1 ? gc_alloc_atomic(size) : gc_alloc(size);
        assert_non_null(p);
        assert_int_equal((uintptr_t)p % 16, 0);
        assert_true(gc_size(p) >= size);
        assert_true(all_zero(p, gc_size(p)));
        memset(p, 0xab, size);
    }
}

/* The fast path hands out distinct slots in address order within a span
 * and moves on to new spans when one is full. */
static void test_fast_path_refills(void **state)
{
    (void)state;
    enum { N = 20000 };
    static char *objs[N];
    mspan *first = NULL;
    int spans = 0;
    for (int i = 0; i < N; i++) {
        objs[i] = gc_alloc(48);
        assert_non_null(objs[i]);
        mspan *s = spangc_span_of_heap((uintptr_t)objs[i]);
        if (s != first) {
            first = s;
            spans++;
        } else {
            assert_true(objs[i] > objs[i - 1]);
            assert_int_equal(objs[i] - objs[i - 1], 48);
        }
        memset(objs[i], i & 0xff, 48);
    }
    assert_true(spans >= N * 48 / (int)PAGE_SIZE);
    for (int i = 0; i < N; i++) {
        assert_ptr_equal(gc_base(objs[i] + 47), objs[i]);
        assert_int_equal((unsigned char)objs[i][47], i & 0xff);
    }
}

/* Pages that held objects and come back from mheap are cleared before
 * they are handed out again. */
static void test_reused_pages_are_zeroed(void **state)
{
    (void)state;
    spangc_thread *t = spangc_self;
    /* No sweep may free other pages meanwhile, which the allocations below
     * could take instead of the dirty ones. */
    gc_collect();
    gc_disable();
    /* Take a dirty span straight from mheap and give it back. */
    runtime_enter(t); /* as spangc itself does around mheap (lock.h) */
    mspan *dirty = spangc_mheap_alloc(8, 1);
    uintptr_t base = dirty->base;
    memset((void *)base, 0xee, 8 * PAGE_SIZE);
    spangc_mheap_free(dirty);
    runtime_leave(t);
    /* Drop our cached spans so the next allocations take fresh ones. */
    runtime_enter(t);
    spangc_mcache_release_all(&t->cache);
    runtime_leave(t);
    int reused = 0;
    for (int i = 0; i < 4096; i++) {
        char *p = gc_alloc(64);
        assert_true(all_zero(p, 64));
        if ((uintptr_t)p >= base && (uintptr_t)p < base + 8 * PAGE_SIZE)
            reused = 1;
    }
    assert_true(reused);
    char *big = gc_alloc(8 * PAGE_SIZE);
    assert_true(all_zero(big, gc_size(big)));
    gc_enable();
}

static void test_realloc_api(void **state)
{
    (void)state;
    char *p = gc_realloc(NULL, 10);
    assert_non_null(p);
    memcpy(p, "0123456789", 10);
    /* Growing copies and zeroes the rest. */
    char *q = gc_realloc(p, 5000);
    assert_non_null(q);
    assert_memory_equal(q, "0123456789", 10);
    assert_true(all_zero(q + 10, gc_size(q) - 10));
    /* Shrinking to half or more keeps the object and clears the tail. */
    memset(q, 'x', 5000);
    size_t half = gc_size(q) / 2;
    assert_ptr_equal(gc_realloc(q, half), q);
    assert_true(all_zero(q + half, gc_size(q) - half));
    /* ... or when a new object would be no smaller (same size class). */
    char *tiny = gc_alloc(16);
    memset(tiny, 'x', 16);
    assert_ptr_equal(gc_realloc(tiny, 4), tiny);
    assert_true(all_zero(tiny + 4, 12));
    assert_ptr_equal(gc_realloc(tiny, 0), tiny);
    assert_true(all_zero(tiny, 16));
    /* Just under half: a copy. */
    char *big = gc_alloc(8192);
    assert_ptr_not_equal(gc_realloc(big, gc_size(big) / 2 - 16), big);
    /* Shrinking further copies into a smaller object. */
    char *small = gc_realloc(q, 100);
    assert_ptr_not_equal(small, q);
    assert_true(gc_size(small) < half);
    for (int i = 0; i < 100; i++)
        assert_int_equal(small[i], 'x');
    /* The kind survives: atomic stays atomic (noscan span), growing and
     * shrinking by copy. */
    char *a = gc_alloc_atomic(32);
    char *b = gc_realloc(a, 40000);
    assert_true(span_is_noscan(spangc_span_of_heap((uintptr_t)b)));
    assert_true(span_is_noscan(spangc_span_of_heap((uintptr_t)gc_realloc(b, 16))));
    char *c = gc_realloc(gc_alloc(32), 100);
    assert_false(span_is_noscan(spangc_span_of_heap((uintptr_t)c)));
    /* Interior or foreign pointers are refused. */
    errno = 0;
    assert_null(gc_realloc(q + 1, 10));
    assert_int_equal(errno, EINVAL);
    int local;
    errno = 0;
    assert_null(gc_realloc(&local, 10));
    assert_int_equal(errno, EINVAL);
}

struct pair {
    void *left;
    long number;
    void *right;
};

static void test_typed(void **state)
{
    (void)state;
    const gc_type *t = GC_TYPE(struct pair, offsetof(struct pair, left),
                               offsetof(struct pair, right));
    assert_non_null(t);
    struct pair *p = gc_alloc_typed(sizeof *p, t);
    assert_non_null(p);
    mspan *s = spangc_span_of_heap((uintptr_t)p);
    assert_non_null(s->type_idx);
    assert_ptr_equal(span_type_of(s, span_obj_index(s, (uintptr_t)p)), t);
    /* An array of pairs, and a large one. */
    struct pair *arr = gc_alloc_typed(100 * sizeof *arr, t);
    assert_non_null(arr);
    struct pair *big = gc_alloc_typed(5000 * sizeof *big, t);
    s = spangc_span_of_heap((uintptr_t)big);
    assert_ptr_equal(span_type_of(s, 0), t);
    /* realloc keeps the layout. */
    struct pair *grown = gc_realloc(arr, 200 * sizeof *arr);
    s = spangc_span_of_heap((uintptr_t)grown);
    assert_ptr_equal(span_type_of(s, span_obj_index(s, (uintptr_t)grown)), t);
    /* ... shrinking by copy too. */
    struct pair *cut = gc_realloc(big, 2 * sizeof *big);
    assert_ptr_not_equal(cut, big);
    s = spangc_span_of_heap((uintptr_t)cut);
    assert_ptr_equal(span_type_of(s, span_obj_index(s, (uintptr_t)cut)), t);
    /* A plain allocation in a span with a type table has no type. */
    void *plain = gc_alloc(sizeof(struct pair));
    s = spangc_span_of_heap((uintptr_t)plain);
    assert_null(span_type_of(s, span_obj_index(s, (uintptr_t)plain)));
    /* No pointer words: allocated pointer-free. */
    const gc_type *flat = gc_type_new(64, NULL, 0);
    assert_non_null(flat);
    assert_true(span_is_noscan(spangc_span_of_heap((uintptr_t)gc_alloc_typed(64, flat))));
}

/* A span tells up to SPAN_PALETTE layouts apart with one byte per slot;
 * the next one switches it to a pointer per slot, and every object keeps
 * its layout through the switch, conservative ones included. */
static void test_type_palette_overflow(void **state)
{
    (void)state;
    enum { NTYPES = SPAN_PALETTE + 3, PER_TYPE = 3, SIZE = 240 };
    const gc_type *types[NTYPES];
    for (int k = 0; k < NTYPES; k++) {
        size_t offsets[] = {(size_t)k * sizeof(void *)};
        types[k] = gc_type_new(SIZE, offsets, 1);
        assert_non_null(types[k]);
    }
    /* No other test uses this size class, so the first object starts a
     * fresh span, which holds all 31 objects. */
    gc_disable();
    void *objs[NTYPES * PER_TYPE + 1];
    const gc_type *want[NTYPES * PER_TYPE + 1];
    mspan *first = NULL;
    int n = 0, in_first = 0;
    for (int r = 0; r < PER_TYPE; r++) {
        for (int k = 0; k < NTYPES; k++, n++) {
            objs[n] = gc_alloc_typed(SIZE, types[k]);
            want[n] = types[k];
            mspan *s = spangc_span_of_heap((uintptr_t)objs[n]);
            if (!first)
                first = s;
            in_first += s == first;
            if (s == first && k < SPAN_PALETTE && r == 0)
                assert_null(span_full_types(s)); /* still bytes */
        }
    }
    objs[n] = gc_alloc(SIZE);
    want[n++] = NULL;
    assert_int_equal(in_first, n - 1);
    assert_ptr_equal(spangc_span_of_heap((uintptr_t)objs[n - 1]), first);
    assert_non_null(span_full_types(first));
    for (int i = 0; i < n; i++) {
        mspan *s = spangc_span_of_heap((uintptr_t)objs[i]);
        assert_ptr_equal(span_type_of(s, span_obj_index(s, (uintptr_t)objs[i])), want[i]);
        memset(objs[i], 0, SIZE);
    }
    gc_enable();
}

/* Spans of a small class with one slot (8 KiB objects) are swept like the
 * others: a typed object that dies leaves no layout behind. The allocation
 * that sweeps such a span lazily takes it at once, and a conservative
 * object put there must be scanned whole, not with the dead object's
 * layout (the fuzzer found an 8000-byte gc_realloc copy whose pointers
 * were not followed). */
enum { ONE_SLOT_SIZE = 8000, ONE_SLOT_N = 8 };
#define HIDDEN ((uintptr_t)0x5a5a5a5a5a5a5a5au)

static NOINLINE void make_dead_typed(const gc_type *t, uintptr_t *hidden)
{
    for (int i = 0; i < ONE_SLOT_N; i++)
        hidden[i] = (uintptr_t)gc_alloc_typed(ONE_SLOT_SIZE, t) ^ HIDDEN;
}

static NOINLINE void clear_below(void)
{
    volatile char pad[4096];
    memset((char *)pad, 0, sizeof pad);
}

static void test_one_slot_span_forgets_layout(void **state)
{
    (void)state;
    size_t off[] = {16};
    const gc_type *t = gc_type_new(ONE_SLOT_SIZE, off, 1);
    assert_non_null(t);
    bool bg = spangc_cfg.background_sweep;
    spangc_cfg.background_sweep = false; /* leave the spans to lazy sweeping */
    uintptr_t hidden[ONE_SLOT_N];
    make_dead_typed(t, hidden);
    mspan *s0 = spangc_span_of_heap(hidden[0] ^ HIDDEN);
    assert_int_equal(s0->nelems, 1);
    assert_int_not_equal(span_sizeclass(s0), 0); /* a small class, not a large span */
    clear_below();
    spangc_collect(COLLECT_STRESS);
    int reused = 0;
    for (int i = 0; i < ONE_SLOT_N; i++) {
        void *q = gc_alloc(ONE_SLOT_SIZE);
        mspan *s = spangc_span_of_heap((uintptr_t)q);
        for (int k = 0; k < ONE_SLOT_N; k++)
            reused += (uintptr_t)q == (hidden[k] ^ HIDDEN);
        assert_null(span_type_of(s, 0));
    }
    spangc_cfg.background_sweep = bg;
    assert_true(reused > 0); /* some dead typed object's span was taken again */
}

static void test_type_errors(void **state)
{
    (void)state;
    size_t misaligned[] = {4};
    size_t outside[] = {16};
    errno = 0;
    assert_null(gc_type_new(0, NULL, 0));
    assert_int_equal(errno, EINVAL);
    assert_null(gc_type_new(16, misaligned, 1));
    assert_null(gc_type_new(16, outside, 1));
    assert_null(gc_type_new(16, NULL, 1));
    /* A packed 12-byte struct with a pointer at 0: element 1's would sit
     * at byte 12, misaligned. Without pointers any size will do. */
    size_t first[] = {0};
    errno = 0;
    assert_null(gc_type_new(12, first, 1));
    assert_int_equal(errno, EINVAL);
    assert_non_null(gc_type_new(12, NULL, 0));
    errno = 0;
    assert_null(gc_alloc_typed(16, NULL));
    assert_int_equal(errno, EINVAL);
    long not_a_type[8] = {0};
    assert_null(gc_alloc_typed(16, (const gc_type *)not_a_type));
}

static void test_huge_sizes(void **state)
{
    (void)state;
    size_t sizes[] = {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX - 4095, (size_t)1 << 62};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        assert_null(gc_alloc(sizes[i]));
        assert_int_equal(errno, ENOMEM);
        assert_null(gc_alloc_atomic(sizes[i]));
    }
    /* And the heap still works. */
    assert_non_null(gc_alloc(100));
}

/* mallocs, total_alloc and heap_alloc count exactly what was allocated. */
static void test_stats_count(void **state)
{
    (void)state;
    gc_stats a, b;
    /* Nothing may free meanwhile: the earlier tests' garbage is swept
     * (gc_collect finishes the sweep) and no cycle starts. */
    gc_collect();
    gc_disable();
    gc_get_stats(&a);
    for (int i = 0; i < 1000; i++)
        assert_non_null(gc_alloc(100)); /* 112-byte class */
    assert_non_null(gc_alloc_atomic(100000));
    gc_get_stats(&b);
    gc_enable();
    assert_int_equal(b.mallocs - a.mallocs, 1001);
    assert_int_equal(b.total_alloc - a.total_alloc, 1000 * 112 + 13 * PAGE_SIZE);
    assert_int_equal(b.heap_alloc - a.heap_alloc, 1000 * 112 + 13 * PAGE_SIZE);
    assert_true(b.heap_sys >= b.heap_inuse);
    assert_true(b.heap_inuse >= b.heap_alloc);
    assert_true(b.metadata_sys > 0);
    gc_get_stats(NULL); /* ignored */
}

static void *unregistered_thread(void *arg)
{
    (void)arg;
    errno = 0;
    void *p = gc_alloc(16);
    int e = errno;
    int unreg = gc_unregister_thread();
    return (void *)(intptr_t)(p == NULL && e == EPERM && unreg == -EINVAL);
}

static void *registered_thread(void *arg)
{
    (void)arg;
    if (gc_register_thread() != 0)
        return NULL;
    char *p = gc_alloc(100);
    int ok = p && all_zero(p, 100) && gc_base(p + 50) == p;
    ok = ok && gc_register_thread() == -EEXIST;
    ok = ok && gc_unregister_thread() == 0 && gc_unregister_thread() == -EINVAL;
    return (void *)(intptr_t)ok;
}

static void test_threads_must_register(void **state)
{
    (void)state;
    pthread_t th;
    void *ok;
    pthread_create(&th, NULL, unregistered_thread, NULL);
    pthread_join(th, &ok);
    assert_true(ok);
    pthread_create(&th, NULL, registered_thread, NULL);
    pthread_join(th, &ok);
    assert_true(ok);
}

/* gc_realloc reads the layout of an object (span_type_of) from any
 * thread, also while the thread that caches the object's span makes the
 * span's first typed allocation and so creates its table of layouts.
 * Under ThreadSanitizer, a table published with a plain store races with
 * that read: the realloc on the other thread has no order with the
 * store, whichever comes first. */
enum { FIRST_TYPED_SIZE = 1152 }; /* a class no other test here types */

static sem_t reallocating;

static void *realloc_in_place(void *arg)
{
    void **obj = arg;
    assert_int_equal(gc_register_thread(), 0);
    for (int i = 0; i < 2000; i++) {
        if (gc_realloc(*obj, FIRST_TYPED_SIZE) != *obj)
            *obj = NULL;
        if (i == 0) /* the reads that follow have no order with the store */
            sem_post(&reallocating);
    }
    assert_int_equal(gc_unregister_thread(), 0);
    return NULL;
}

static void test_realloc_while_the_span_gets_its_layouts(void **state)
{
    (void)state;
    size_t off[1] = {0};
    const gc_type *t = gc_type_new(FIRST_TYPED_SIZE, off, 1);
    assert_non_null(t);
    void *volatile obj = gc_alloc(FIRST_TYPED_SIZE);
    mspan *s = spangc_span_of_heap((uintptr_t)obj);
    assert_null(s->type_idx);
    pthread_t th;
    sem_init(&reallocating, 0, 0);
    assert_int_equal(pthread_create(&th, NULL, realloc_in_place, (void *)&obj), 0);
    while (sem_wait(&reallocating) != 0)
        ;
    void *typed = gc_alloc_typed(FIRST_TYPED_SIZE, t);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_ptr_equal(spangc_span_of_heap((uintptr_t)typed), s);
    assert_non_null(s->type_idx);
    assert_non_null(obj); /* every realloc kept it in place */
    sem_destroy(&reallocating);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_before_and_at_init),
        cmocka_unit_test(test_sizes_alignment_zero),
        cmocka_unit_test(test_fast_path_refills),
        cmocka_unit_test(test_reused_pages_are_zeroed),
        cmocka_unit_test(test_realloc_api),
        cmocka_unit_test(test_typed),
        cmocka_unit_test(test_type_palette_overflow),
        cmocka_unit_test(test_one_slot_span_forgets_layout),
        cmocka_unit_test(test_type_errors),
        cmocka_unit_test(test_huge_sizes),
        cmocka_unit_test(test_stats_count),
        cmocka_unit_test(test_threads_must_register),
        cmocka_unit_test(test_realloc_while_the_span_gets_its_layouts),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
