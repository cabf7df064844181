/*
 * test_metalloc.c - the metadata allocator: blocks rounded to a power of
 * two, reused zeroed from a free list per size, carved from 256 KiB
 * chunks whose leftover end is kept, and blocks over 32 KiB mapped on
 * their own; metadata_sys counts every byte taken from the OS and gives
 * back what is unmapped.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <spangc.h>
#include <string.h>

#include "metalloc.h"

#define CHUNK         ((size_t)256 * 1024) /* META_CHUNK in runtime/metalloc.c */
#define LARGEST_CLASS ((size_t)32 * 1024)

static int setup(void **state)
{
    (void)state;
    return gc_init(NULL);
}

static bool all_zero(const void *p, size_t n)
{
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++)
        if (b[i])
            return false;
    return true;
}

/* A freed block is the next one of its size handed out (the free list is
 * last in, first out), cleared, whatever size in its class is asked. */
static void test_freed_block_comes_back_zeroed(void **state)
{
    (void)state;
    void *p = spangc_meta_alloc(100); /* the 128-byte class */
    assert_non_null(p);
    memset(p, 0xee, 128);
    spangc_meta_free(p, 100);
    void *q = spangc_meta_alloc(120);
    assert_ptr_equal(q, p);
    assert_true(all_zero(q, 128));
    spangc_meta_free(q, 120);
}

/* Blocks of different classes do not overlap, and a size is served by
 * the smallest class that holds it. */
static void test_classes_do_not_overlap(void **state)
{
    (void)state;
    enum { N = 12 };
    unsigned char *b[N];
    size_t sizes[N];
    for (int i = 0; i < N; i++) {
        sizes[i] = (size_t)16 << i; /* 16 B to 32 KiB */
        b[i] = spangc_meta_alloc(sizes[i]);
        assert_non_null(b[i]);
        memset(b[i], i + 1, sizes[i]);
    }
    for (int i = 0; i < N; i++) {
        for (size_t k = 0; k < sizes[i]; k++)
            assert_int_equal(b[i][k], i + 1);
        spangc_meta_free(b[i], sizes[i]);
    }
}

/* Over 32 KiB, a block is its own mapping: counted in metadata_sys when
 * mapped and taken off when unmapped. */
static void test_large_block_counted_both_ways(void **state)
{
    (void)state;
    uint64_t before = spangc_meta_sys();
    size_t size = 100 * 1000;
    unsigned char *p = spangc_meta_alloc(size);
    assert_non_null(p);
    assert_true(all_zero(p, size));
    assert_int_equal(spangc_meta_sys(), before + 102400); /* whole 4 KiB pages */
    gc_stats st;
    gc_get_stats(&st);
    assert_int_equal(st.metadata_sys, before + 102400);
    memset(p, 1, size);
    spangc_meta_free(p, size);
    assert_int_equal(spangc_meta_sys(), before);
}

/* Types live in a region of their own, committed 64 KiB at a time:
 * what it commits counts in metadata_sys too. */
static void test_type_region_counted(void **state)
{
    (void)state;
    uint64_t before = spangc_meta_sys();
    size_t taken = 0;
    /* 200 KiB of type records: at least two more commits. */
    while (taken < 200 * 1024) {
        assert_non_null(spangc_meta_alloc_type(4096));
        taken += 4096;
    }
    assert_true(spangc_meta_sys() >= before + 128 * 1024);
    gc_stats st;
    gc_get_stats(&st);
    assert_int_equal(st.metadata_sys, spangc_meta_sys());
}

/* When a block does not fit in what is left of the chunk, a new chunk is
 * taken, and the old one's leftover goes to the free lists of the classes
 * it holds, not lost: the next block of its size is that leftover. */
static void test_chunk_leftover_is_kept(void **state)
{
    (void)state;
    /* 32 KiB blocks until one starts a new chunk (metadata_sys grows). */
    enum { MAX = 64 };
    void *held[MAX];
    int n = 0;
    char *chunk = NULL;
    while (!chunk) {
        assert_true(n < MAX);
        uint64_t sys = spangc_meta_sys();
        held[n] = spangc_meta_alloc(LARGEST_CLASS);
        assert_non_null(held[n]);
        if (spangc_meta_sys() == sys + CHUNK)
            chunk = held[n];
        n++;
    }
    /* 32 KiB of the new chunk used: take 16 KiB more, then 32 KiB blocks
     * up to 240 KiB, which leaves 16 KiB. The 16 KiB blocks on the free
     * list come first: the previous chunk's leftover may have been one. */
    void *listed[MAX];
    int nlisted = 0;
    char *mid;
    while ((mid = spangc_meta_alloc(LARGEST_CLASS / 2)) != chunk + LARGEST_CLASS) {
        assert_true(nlisted < MAX && mid && (mid < chunk || mid >= chunk + CHUNK));
        listed[nlisted++] = mid;
    }
    for (int i = 0; i < 6; i++) {
        assert_true(n < MAX);
        held[n] = spangc_meta_alloc(LARGEST_CLASS);
        assert_ptr_equal(held[n], chunk + 48 * 1024 + (size_t)i * LARGEST_CLASS);
        n++;
    }
    uint64_t sys = spangc_meta_sys();
    void *next = spangc_meta_alloc(LARGEST_CLASS); /* a chunk of its own */
    assert_int_equal(spangc_meta_sys(), sys + CHUNK);
    char *leftover = spangc_meta_alloc(LARGEST_CLASS / 2);
    assert_ptr_equal(leftover, chunk + 240 * 1024);
    assert_int_equal(spangc_meta_sys(), sys + CHUNK);
    spangc_meta_free(leftover, LARGEST_CLASS / 2);
    spangc_meta_free(next, LARGEST_CLASS);
    spangc_meta_free(mid, LARGEST_CLASS / 2);
    while (n > 0)
        spangc_meta_free(held[--n], LARGEST_CLASS);
    while (nlisted > 0)
        spangc_meta_free(listed[--nlisted], LARGEST_CLASS / 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First: it needs the 16 KiB class's free list empty. */
        cmocka_unit_test(test_chunk_leftover_is_kept),
        cmocka_unit_test(test_type_region_counted),
        cmocka_unit_test(test_freed_block_comes_back_zeroed),
        cmocka_unit_test(test_classes_do_not_overlap),
        cmocka_unit_test(test_large_block_counted_both_ways),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
