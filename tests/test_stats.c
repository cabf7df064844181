/*
 * test_stats.c - gc_get_stats: each figure says what spangc.h says it
 * does, where two of them could be mistaken for each other: heap_inuse
 * (pages in spans that hold objects) against heap_sys (all the heap's
 * pages), and heap_live (marked by the last collection) against
 * heap_alloc (allocated now, garbage included).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <spangc.h>
#include <string.h>

#include "testutil.h"

#define MIB ((uint64_t)1 << 20)

static int setup(void **state)
{
    (void)state;
    /* The environment counts: ctest runs these tests again with
     * GC_DEBUG=verify,poison. */
    return gc_init(NULL);
}

static gc_stats stats(void)
{
    gc_stats st;
    gc_get_stats(&st);
    return st;
}

/* A 10 MiB object's pages are in use while it lives and free once it is
 * collected: heap_inuse falls by its size, and the free pages stay in
 * heap_sys (nothing is given back this soon). */
static void test_heap_inuse_counts_pages_in_use(void **state)
{
    (void)state;
    collect();
    gc_stats before = stats();
    uintptr_t big = make(10 * MIB);
    gc_stats with = stats();
    assert_true(with.heap_inuse >= before.heap_inuse + 10 * MIB);
    assert_true(with.heap_inuse <= with.heap_sys);
    assert_true(alive(big));
    collect(); /* big is dropped: only its hidden handle remains */
    gc_stats after = stats();
    assert_true(after.heap_inuse <= with.heap_inuse - 10 * MIB);
    assert_true(after.heap_sys - after.heap_released >= after.heap_inuse + 10 * MIB);
}

/* heap_live is what the last collection marked: garbage allocated since
 * raises heap_alloc, not heap_live. */
static void *volatile kept;

static void test_heap_live_is_the_last_mark(void **state)
{
    (void)state;
    kept = gc_alloc_atomic(8 * MIB);
    assert_non_null(kept);
    collect();
    gc_stats marked = stats();
    assert_true(marked.heap_live >= 8 * MIB);
    assert_true(marked.heap_live <= marked.heap_alloc);
    gc_disable();
    for (int i = 0; i < 8 * 1024; i++)
        (void)!gc_alloc_atomic(1000); /* 8 MiB of garbage, not collected */
    gc_stats later = stats();
    gc_enable();
    assert_int_equal(later.heap_live, marked.heap_live);
    assert_true(later.heap_alloc >= marked.heap_alloc + 8 * MIB);
    kept = NULL;
    collect();
    assert_true(stats().heap_live < marked.heap_live - 7 * MIB);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_heap_inuse_counts_pages_in_use),
        cmocka_unit_test(test_heap_live_is_the_last_mark),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
