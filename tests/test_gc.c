/*
 * test_gc.c - the collector: what keeps an object alive, what does not,
 * reuse of freed memory, bounded memory, and mark-stack overflow.
 *
 * An object's fate is observed through a hidden pointer (XORed, so the
 * test itself does not keep it alive) and gc_base, which answers NULL
 * for a freed slot. Objects are made in noinline helpers so that no copy
 * of their address stays in the test's own frame.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <spangc.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "gc.h"
#include "mheap.h"
#include "options.h"
#include "verify.h"

#define MASK ((uintptr_t)0xa5a5a5a5a5a5a5a5u)
#define HIDE(p) ((uintptr_t)(p) ^ MASK)
#define SHOW(h) ((void *)((h) ^ MASK))

static __attribute__((noinline)) uintptr_t make(size_t size)
{
    char *p = gc_alloc(size);
    memset(p, 0x11, size);
    return HIDE(p);
}

static __attribute__((noinline)) bool alive(uintptr_t h)
{
    return gc_base(SHOW(h)) == SHOW(h);
}

/* *where = the object h, plus offset; the raw address never passes
 * through the caller's frame. */
static __attribute__((noinline)) void store(volatile uintptr_t *where, uintptr_t h, size_t offset)
{
    *where = (uintptr_t)SHOW(h) + offset;
}

/* Clear stale words below the stack pointer left by earlier calls, so a
 * dead frame's copy cannot be picked up by a later, deeper frame. */
static __attribute__((noinline)) void scrub_stack(void)
{
    volatile uintptr_t buf[2048];
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++)
        buf[i] = 0;
}

static void collect(void)
{
    scrub_stack();
    gc_collect();
    spangc_verify_heap();
}

static int setup(void **state)
{
    (void)state;
    gc_options o = {.flags = GC_OPT_IGNORE_ENV};
    return gc_init(&o);
}

/* ---- what keeps objects alive ------------------------------------------ */

static void *global_root;

static void test_global_root(void **state)
{
    (void)state;
    uintptr_t h = make(64);
    store((volatile uintptr_t *)&global_root, h, 0);
    collect();
    assert_true(alive(h));
    global_root = NULL;
    collect();
    assert_false(alive(h));
}

static void test_added_roots(void **state)
{
    (void)state;
    uintptr_t *box = malloc(4 * sizeof *box); /* malloc memory is not scanned */
    uintptr_t h = make(100);
    store(&box[2], h, 0);
    collect();
    assert_false(alive(h));
    h = make(100);
    store(&box[2], h, 0);
    assert_int_equal(gc_add_roots(box, 4 * sizeof *box), 0);
    assert_int_equal(gc_add_roots(box, 8), -EEXIST);
    collect();
    assert_true(alive(h));
    assert_int_equal(gc_remove_roots(box), 0);
    assert_int_equal(gc_remove_roots(box), -ENOENT);
    collect();
    assert_false(alive(h));
    free(box);
    /* Bad arguments. */
    assert_int_equal(gc_add_roots(NULL, 8), -EINVAL);
    int x;
    assert_int_equal(gc_add_roots(&x, 0), -EINVAL);
    assert_int_equal(gc_add_roots((void *)UINTPTR_MAX, 16), -EINVAL);
    void *heap_obj = gc_alloc(64);
    assert_int_equal(gc_add_roots(heap_obj, 64), -EINVAL);
    assert_int_equal(gc_remove_roots(&x), -ENOENT);
}

static void test_stack_slot(void **state)
{
    (void)state;
    volatile uintptr_t slot;
    uintptr_t h = make(48);
    store(&slot, h, 0);
    collect();
    assert_true(alive(h));
    slot = 0;
    collect();
    assert_false(alive(h));
}

#if defined(__x86_64__)
static void test_register(void **state)
{
    (void)state;
    uintptr_t h = make(32);
    /* Callee-saved registers survive the call into gc_collect. */
    register uintptr_t r12 __asm__("r12") = h ^ MASK;
    __asm__ volatile("" : "+r"(r12));
    collect();
    __asm__ volatile("" : "+r"(r12));
    assert_true(alive(h));
    r12 = 0;
    __asm__ volatile("" : "+r"(r12));
}
#endif

static volatile uintptr_t interior_root;

static void test_interior_pointer(void **state)
{
    (void)state;
    uintptr_t h = make(1000);
    store(&interior_root, h, 777);
    uintptr_t hl = make(100000); /* a large object, pointed at near its end */
    store((volatile uintptr_t *)&global_root, hl, 99999);
    collect();
    assert_true(alive(h));
    assert_true(alive(hl));
    interior_root = 0;
    global_root = NULL;
    collect();
    assert_false(alive(h));
    assert_false(alive(hl));
}

static void test_scanned_object_pointer(void **state)
{
    (void)state;
    global_root = gc_alloc(8 * sizeof(void *));
    uintptr_t h = make(200);
    store(&((volatile uintptr_t *)global_root)[5], h, 0);
    collect();
    assert_true(alive(h));
    ((void **)global_root)[5] = NULL;
    collect();
    assert_false(alive(h));
    global_root = NULL;
}

struct typed {
    uintptr_t not_a_pointer;
    void *pointer;
    double number;
};

static void test_precise_fields(void **state)
{
    (void)state;
    const gc_type *t = GC_TYPE(struct typed, offsetof(struct typed, pointer));
    global_root = gc_alloc_typed(sizeof(struct typed), t);
    volatile uintptr_t *obj = global_root;
    uintptr_t kept = make(64), dropped = make(64);
    store(&obj[1], kept, 0);
    store(&obj[0], dropped, 0);
    collect();
    assert_true(alive(kept));
    assert_false(alive(dropped)); /* a non-pointer field keeps nothing */
    /* An array of the type: every element's pointer field counts. */
    global_root = gc_alloc_typed(50 * sizeof(struct typed), t);
    obj = global_root;
    uintptr_t last = make(16);
    store(&obj[49 * 3 + 1], last, 0);
    collect();
    assert_true(alive(last));
    global_root = NULL;
}

static void test_atomic_not_scanned(void **state)
{
    (void)state;
    global_root = gc_alloc_atomic(8 * sizeof(void *));
    uintptr_t h = make(64);
    store(&((volatile uintptr_t *)global_root)[3], h, 0);
    collect();
    assert_true(alive(HIDE(global_root)));
    assert_false(alive(h));
    global_root = NULL;
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

/* ---- reuse ---------------------------------------------------------------- */

static __attribute__((noinline)) void fill_garbage(uintptr_t *addrs, int n, size_t size)
{
    for (int i = 0; i < n; i++) {
        char *p = gc_alloc(size);
        memset(p, 0xff, size);
        addrs[i] = HIDE(p);
    }
}

static void test_freed_memory_is_reused_zeroed(void **state)
{
    (void)state;
    enum { N = 5000 };
    static uintptr_t old[N];
    fill_garbage(old, N, 96);
    collect();
    int freed = 0;
    for (int i = 0; i < N; i++)
        freed += !alive(old[i]);
    assert_true(freed >= N - 10);
    int reused = 0;
    for (int i = 0; i < N; i++) {
        unsigned char *p = gc_alloc(96);
        for (int k = 0; k < 96; k++)
            assert_int_equal(p[k], 0);
        for (int j = 0; j < N && !reused; j++)
            reused = HIDE(p) == old[j];
    }
    assert_true(reused);
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
 * collection every span and counter is consistent. */
static void test_forced_collections_loop(void **state)
{
    (void)state;
    void **keep = gc_alloc(1000 * sizeof(void *));
    global_root = keep;
    for (int round = 0; round < 200; round++) {
        for (int i = 0; i < 2000; i++) {
            void *p = gc_alloc(16 + (size_t)(i * 37 % 3000));
            if (i % 7 == 0)
                keep[(round * 2000 + i) % 1000] = p;
        }
        collect();
    }
    gc_stats st;
    gc_get_stats(&st);
    assert_int_equal(st.heap_alloc, st.heap_alloc); /* verified by collect() */
    global_root = NULL;
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

/* ---- statistics ---------------------------------------------------------- */

/* After gc_collect the statistics agree with the spans (collect() runs
 * spangc_verify_heap, which checks heap_alloc and the object count), and
 * the pause figures are filled in. */
static void test_stats_after_collect(void **state)
{
    (void)state;
    collect();
    gc_stats a;
    gc_get_stats(&a);
    global_root = gc_alloc(100 * sizeof(void *));
    for (int i = 0; i < 100; i++)
        ((void **)global_root)[i] = gc_alloc_atomic(1000); /* 1024-byte class */
    collect();
    gc_stats b;
    gc_get_stats(&b);
    assert_true(b.heap_alloc >= 100 * 1024 + 800);
    assert_int_equal(b.heap_objects, b.mallocs - b.frees);
    assert_int_equal(b.num_gc, a.num_gc + 1);
    assert_true(b.last_pause_ns > 0 && b.max_pause_ns >= b.last_pause_ns);
    assert_true(b.pause_total_ns >= a.pause_total_ns + b.last_pause_ns);
    assert_true(b.heap_live >= 100 * 1024 + 800 && b.heap_live <= b.heap_alloc);
    assert_true(b.next_gc >= ((uint64_t)4 << 20));
    assert_true(b.heap_inuse >= b.heap_alloc && b.heap_sys >= b.heap_inuse);
    global_root = NULL;
    collect();
    gc_stats c;
    gc_get_stats(&c);
    assert_true(c.frees - b.frees >= 101);
    assert_true(b.heap_alloc - c.heap_alloc >= 100 * 1024 + 800);
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

/* gc_disable stops automatic cycles (nesting); gc_collect still works. */
static void test_disable_enable(void **state)
{
    (void)state;
    gc_disable();
    gc_disable();
    gc_enable();
    gc_stats a, b;
    gc_get_stats(&a);
    for (int i = 0; i < 200000; i++)
        (void)!gc_alloc_atomic(200);
    gc_get_stats(&b);
    assert_int_equal(b.num_gc, a.num_gc);
    collect();
    gc_get_stats(&b);
    assert_int_equal(b.num_gc, a.num_gc + 1);
    gc_enable();
    gc_enable(); /* one too many: ignored */
    for (int i = 0; i < 200000; i++)
        (void)!gc_alloc_atomic(200);
    gc_get_stats(&b);
    assert_true(b.num_gc > a.num_gc + 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_root),
        cmocka_unit_test(test_added_roots),
        cmocka_unit_test(test_stack_slot),
#if defined(__x86_64__)
        cmocka_unit_test(test_register),
#endif
        cmocka_unit_test(test_interior_pointer),
        cmocka_unit_test(test_scanned_object_pointer),
        cmocka_unit_test(test_precise_fields),
        cmocka_unit_test(test_atomic_not_scanned),
        cmocka_unit_test(test_long_chain),
        cmocka_unit_test(test_freed_memory_is_reused_zeroed),
        cmocka_unit_test(test_bounded_memory),
        cmocka_unit_test(test_forced_collections_loop),
        cmocka_unit_test(test_allocation_during_background_sweep),
        cmocka_unit_test(test_stats_after_collect),
        cmocka_unit_test(test_mark_stack_overflow),
        cmocka_unit_test(test_disable_enable),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
