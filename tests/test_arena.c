/*
 * test_arena.c - the arena index finds the span of any heap address and
 * rejects every other address, freed spans' included.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <spangc.h>
#include <stdlib.h>

#include "arena.h"
#include "mheap.h"
#include "mspan.h"
#include "testutil.h"
#include "thread.h"

static int static_word;

static int setup(void **state)
{
    (void)state;
    return gc_init(NULL);
}

static void check_object(char *p, size_t request)
{
    mspan *s = spangc_span_of_heap((uintptr_t)p);
    assert_non_null(s);
    size_t size = gc_size(p);
    assert_true(size >= request);
    /* First, interior and last byte: same span, same base. */
    assert_ptr_equal(spangc_span_of_heap((uintptr_t)p + size / 2), s);
    assert_ptr_equal(spangc_span_of_heap((uintptr_t)p + size - 1), s);
    assert_ptr_equal(gc_base(p), p);
    assert_ptr_equal(gc_base(p + size / 2), p);
    assert_ptr_equal(gc_base(p + size - 1), p);
    /* Interior pointers have no size: gc_size wants the base. */
    if (size > 1)
        assert_int_equal(gc_size(p + 1), 0);
    /* One past the end is not this object. */
    assert_ptr_not_equal(gc_base(p + size), p);
}

static void test_small_objects(void **state)
{
    (void)state;
    for (size_t size = 1; size <= 32768; size = size * 3 / 2 + 1)
        check_object(gc_alloc(size), size);
}

static void test_large_objects(void **state)
{
    (void)state;
    size_t sizes[] = {32769, 100000, 1 << 20, (size_t)70 << 20};
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        char *p = gc_alloc_atomic(sizes[i]);
        check_object(p, sizes[i]);
        mspan *s = spangc_span_of_heap((uintptr_t)p);
        assert_int_equal(s->nelems, 1);
        assert_int_equal(s->npages, (sizes[i] + PAGE_SIZE - 1) / PAGE_SIZE);
    }
}

static void test_foreign_addresses(void **state)
{
    (void)state;
    int local = 0;
    void *m = malloc(64);
    uintptr_t foreign[] = {0,
                           1,
                           (uintptr_t)&local,
                           (uintptr_t)&static_word,
                           (uintptr_t)m,
                           (uintptr_t)&test_foreign_addresses,
                           (uintptr_t)1 << 47,
                           ~(uintptr_t)0,
                           ~(uintptr_t)0 - 4095};
    for (size_t i = 0; i < sizeof foreign / sizeof foreign[0]; i++) {
        assert_null(spangc_span_of_heap(foreign[i]));
        assert_null(gc_base((void *)foreign[i]));
        assert_int_equal(gc_size((void *)foreign[i]), 0);
    }
    free(m);
}

/* Free slots of a span are not objects, though they are in the heap. */
static void test_free_slot_is_not_an_object(void **state)
{
    (void)state;
    char *p = gc_alloc(4000); /* 4096-byte class, 2 per page */
    mspan *s = spangc_span_of_heap((uintptr_t)p);
    assert_non_null(s);
    /* Slots at and after freeindex whose alloc bit is clear are free. */
    for (uint32_t i = s->freeindex; i < s->nelems; i++) {
        if (!span_slot_allocated(s, i)) {
            char *slot = (char *)(s->base + i * s->elemsize);
            assert_null(gc_base(slot));
            assert_int_equal(gc_size(slot), 0);
        }
    }
}

/* The pages of a freed span are still in the arena, and the index may
 * still name the span, but no object is there. */
static void test_freed_span_holds_no_object(void **state)
{
    (void)state;
    uintptr_t h = make(200000); /* a large object: its own span */
    collect();
    collect();
    char *p = SHOW(h);
    assert_null(spangc_span_of_heap((uintptr_t)p));
    assert_null(gc_base(p));
    assert_null(gc_base(p + 100000));
    assert_int_equal(gc_size(p), 0);
}

/* A reservation below every earlier one (the kernel's own choice, taken
 * when the heap's hint is refused, goes downwards from the top) lowers the
 * bound that every lookup checks first: addresses there count as heap. */
static void test_lower_reservation_extends_the_range(void **state)
{
    (void)state;
    uintptr_t lo = ao_load(&spangc_arenas.lo);
    spangc_thread *t = spangc_self;
    runtime_enter(t);
    lock_acquire(&spangc_heap.lock);
    uintptr_t below = spangc_arena_reserve(ARENA_SIZE, lo - 4 * ARENA_SIZE);
    lock_release(&spangc_heap.lock);
    runtime_leave(t);
    assert_true(below != 0);
    if (below >= lo)
        skip(); /* the kernel put it elsewhere */
    assert_int_equal(ao_load(&spangc_arenas.lo), below);
    assert_true(spangc_in_heap_range(below));
    assert_true(spangc_in_heap_range(below + ARENA_SIZE - 1));
    assert_non_null(arena_of(below)); /* its pages can be looked up */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_objects),
        cmocka_unit_test(test_large_objects),
        cmocka_unit_test(test_foreign_addresses),
        cmocka_unit_test(test_free_slot_is_not_an_object),
        cmocka_unit_test(test_freed_span_holds_no_object),
        cmocka_unit_test(test_lower_reservation_extends_the_range),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
