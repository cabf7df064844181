/*
 * test_mark.c - marking: long chains without recursion, mark-stack
 * overflow recovery, typed arrays and large objects.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gc.h"
#include "options.h"
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

/* Objects reachable only through a chain of others all survive. */
static void test_long_chain(void **state)
{
    (void)state;
    void **head = NULL;
    for (int i = 0; i < 100000; i++) {
        void **n = gc_alloc(2 * sizeof(void *));
        n[0] = head;
        head = n;
    }
    global_root = head;
    head = NULL;
    collect();
    int count = 0;
    for (void **n = global_root; n; n = n[0])
        count++;
    assert_int_equal(count, 100000);
    global_root = NULL;
}

/* ---- mark-stack overflow ---------------------------------------------- */

static void test_mark_stack_overflow(void **state)
{
    (void)state;
    enum { WIDE = 30000 };
    /* One object pointing at 30000 objects, each pointing at another:
     * far more grey objects than one mark-stack chunk holds. */
    void **wide = gc_alloc(WIDE * sizeof(void *));
    for (int i = 0; i < WIDE; i++) {
        void **child = gc_alloc(2 * sizeof(void *));
        child[0] = gc_alloc_atomic(8);
        wide[i] = child;
    }
    global_root = wide;
    wide = NULL;
    spangc_cfg.mark_stack_limit = 1; /* a single chunk */
    gc_stats a, b;
    gc_get_stats(&a);
    collect();
    gc_get_stats(&b);
    spangc_cfg.mark_stack_limit = 0;
    assert_true(b.mark_stack_overflows > a.mark_stack_overflows);
    void **w = global_root;
    for (int i = 0; i < WIDE; i++) {
        void **child = w[i];
        assert_ptr_equal(gc_base(child), child);
        assert_ptr_equal(gc_base(child[0]), child[0]);
    }
    global_root = NULL;
}

struct rec {
    long id;
    struct rec *next;
    char name[16];
};

/* A big typed array scanned by layout: every element's pointer word is
 * found, wherever the array sits (small span or its own large span). */
static void test_typed_arrays(void **state)
{
    (void)state;
    const gc_type *t = GC_TYPE(struct rec, offsetof(struct rec, next));
    size_t counts[] = {1, 7, 100, 2000, 20000};
    for (size_t k = 0; k < sizeof counts / sizeof counts[0]; k++) {
        size_t n = counts[k];
        struct rec *arr = gc_alloc_typed(n * sizeof *arr, t);
        for (size_t i = 0; i < n; i++) {
            arr[i].id = (long)i;
            arr[i].next = gc_alloc_typed(sizeof(struct rec), t);
            arr[i].next->id = -(long)i;
        }
        global_root = arr;
        arr = NULL;
        collect();
        arr = global_root;
        for (size_t i = 0; i < n; i++) {
            assert_ptr_equal(gc_base(arr[i].next), arr[i].next);
            assert_int_equal(arr[i].next->id, -(long)i);
        }
    }
    global_root = NULL;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_chain),
        cmocka_unit_test(test_mark_stack_overflow),
        cmocka_unit_test(test_typed_arrays),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
