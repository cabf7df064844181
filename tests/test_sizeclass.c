/*
 * test_sizeclass.c - the generated size-class table keeps its promises.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "base.h"
#include "sizeclass.h"

/* Every request size maps to the smallest class that fits it. */
static void test_smallest_fitting_class(void **state)
{
    (void)state;
    for (size_t size = 0; size <= MAX_SMALL_SIZE; size++) {
        unsigned c = size_to_class(size);
        assert_true(c >= 1 && c < NUM_SIZE_CLASSES);
        assert_true(class_to_size[c] >= size);
        if (c > 1)
            assert_true(class_to_size[c - 1] < size);
    }
}

/* Sizes grow, are 16-byte multiples, and the table ends at 32 KiB. */
static void test_table_shape(void **state)
{
    (void)state;
    assert_int_equal(class_to_size[0], 0);
    assert_int_equal(class_to_size[1], 16);
    assert_int_equal(class_to_size[NUM_SIZE_CLASSES - 1], MAX_SMALL_SIZE);
    assert_in_range(NUM_SIZE_CLASSES, 60, 72);
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
        assert_int_equal(class_to_size[c] % MIN_ALIGN, 0);
        if (c > 1)
            assert_true(class_to_size[c] > class_to_size[c - 1]);
        assert_true(class_to_npages[c] >= 1);
        size_t span = class_to_npages[c] * PAGE_SIZE;
        assert_true(span / class_to_size[c] <= MAX_OBJECTS_PER_SPAN);
    }
}

/* Tail waste (span bytes after the last whole object) is at most 1/8. */
static void test_tail_waste(void **state)
{
    (void)state;
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
        size_t span = class_to_npages[c] * PAGE_SIZE;
        assert_true(8 * (span % class_to_size[c]) <= span);
    }
}

/* Rounding waste is at most 1/8 of the object above 256 bytes and under
 * 16 bytes below (the alignment granule). */
static void test_rounding_waste(void **state)
{
    (void)state;
    for (unsigned c = 2; c < NUM_SIZE_CLASSES; c++) {
        size_t worst_request = class_to_size[c - 1] + 1;
        size_t waste = class_to_size[c] - worst_request;
        if (class_to_size[c] <= 256)
            assert_true(waste < MIN_ALIGN);
        else
            assert_true(8 * waste <= class_to_size[c]);
    }
}

/* The multiply-and-shift object index equals the division for every
 * offset inside a span of every class. */
static void test_divmul_exact(void **state)
{
    (void)state;
    for (unsigned c = 1; c < NUM_SIZE_CLASSES; c++) {
        uint64_t size = class_to_size[c], m = class_to_divmul[c];
        uint64_t span = class_to_npages[c] * PAGE_SIZE;
        for (uint64_t off = 0; off < span; off++)
            assert_int_equal((off * m) >> 32, off / size);
    }
}

static void test_spanclass(void **state)
{
    (void)state;
    assert_int_equal(make_spanclass(5, 0), 10);
    assert_int_equal(make_spanclass(5, 1), 11);
    assert_int_equal(NUM_SPAN_CLASSES, 2 * NUM_SIZE_CLASSES);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_smallest_fitting_class), cmocka_unit_test(test_table_shape),
        cmocka_unit_test(test_tail_waste),             cmocka_unit_test(test_rounding_waste),
        cmocka_unit_test(test_divmul_exact),           cmocka_unit_test(test_spanclass),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
