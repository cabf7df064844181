/*
 * test_mark.c - marking: long chains without recursion, mark-stack
 * overflow recovery, typed arrays and large objects, two markers over
 * multi-page spans, marked bytes that count each object once, a busy
 * marker sharing its work, an overflow within the recovery from one, and
 * layouts with unsorted offsets over an element cut short.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include "gc.h"
#include "mark.h"
#include "options.h"
#include "mspan.h"
#include "testutil.h"
#include "track.h"

/* volatile: stores to a root must not be optimized away. */
static void *volatile global_root;

static int setup(void **state)
{
    (void)state;
    /* The environment counts: ctest runs these tests again with
     * GC_DEBUG=verify,poison. */
    return gc_init(NULL);
}

/* A chain of count objects of size bytes, each pointing at the next, held
 * by global_root only. */
static __attribute__((noinline)) void make_chain(size_t count, size_t size)
{
    void **head = NULL;
    for (size_t i = 0; i < count; i++) {
        void **n = gc_alloc(size);
        n[0] = head;
        head = n;
    }
    global_root = head;
}

static size_t chain_length(void)
{
    size_t n = 0;
    for (void **p = global_root; p; p = *p)
        n++;
    return n;
}

/* Objects reachable only through a chain of others all survive. */
static void test_long_chain(void **state)
{
    (void)state;
    make_chain(100000, 2 * sizeof(void *));
    collect();
    assert_int_equal(chain_length(), 100000);
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

/* The recovery from an overflow overflows again, and recovers again:
 * root -> A[3000] -> B_i, and the last B's -> D[3000] -> E -> F. With a
 * one-chunk stack and one marker the first pass drops most B's; the
 * recovery pass, which walks the heap in address order, scans the last
 * B's and overflows on their D's, dropping E's that lie at addresses it
 * has passed (they were allocated first). With one recovery pass only,
 * those E's were never scanned and 20 of 60 F's sampled were freed while
 * reachable. */
enum { OVER_A = 3000, OVER_D = 3000, OVER_DEEP = 4 };

static __attribute__((noinline)) void **build_double_overflow(void)
{
    void **es = gc_alloc_atomic(OVER_DEEP * OVER_D * sizeof(void *)); /* holds nothing */
    for (int k = 0; k < OVER_DEEP * OVER_D; k++) {
        void **e = gc_alloc(32);
        e[0] = gc_alloc_atomic(48);
        es[k] = e;
    }
    void **root = gc_alloc(OVER_A * sizeof(void *));
    int k = 0;
    for (int i = 0; i < OVER_A; i++) {
        void **b = gc_alloc(16);
        root[i] = b;
        if (i < OVER_A - OVER_DEEP)
            continue;
        void **d = gc_alloc(OVER_D * sizeof(void *));
        b[0] = d;
        for (int j = 0; j < OVER_D; j++)
            d[j] = es[k++];
    }
    return root;
}

static void test_overflow_during_recovery(void **state)
{
    (void)state;
    unsigned saved = spangc_cfg.markers;
    spangc_cfg.markers = 1;
    global_root = build_double_overflow();
    spangc_cfg.mark_stack_limit = 1;
    collect();
    spangc_cfg.mark_stack_limit = 0;
    spangc_cfg.markers = saved;
    void **root = global_root;
    size_t lost = 0;
    for (int i = OVER_A - OVER_DEEP; i < OVER_A; i++) {
        void **d = ((void ***)root)[i][0];
        for (int j = 0; j < OVER_D; j++) {
            void **e = d[j];
            lost += gc_base(e) != e || gc_base(e[0]) != e[0];
        }
    }
    assert_int_equal(lost, 0);
    global_root = NULL;
}

/* rounds gc_collects with two markers and the given mark_stack_limit
 * (0: none), over a heap that holds nothing but global_root's objects,
 * all live: after each, heap_live must be heap_alloc, every object
 * counted once. With at_mark, so must the bytes the mark itself counted
 * (the goal's basis), before the sweeper takes back any counted twice:
 * only two markers meeting one object at the same moment may count it
 * twice there, a few bytes (an overflow recovery that counted again what
 * a worker had marked: tens of KiB). Returns the cycles whose mark stack
 * overflowed. */
static uint64_t collect_counting_once(int rounds, size_t stack_limit, bool at_mark)
{
    unsigned saved = spangc_cfg.markers;
    spangc_cfg.markers = 2;
    collect(); /* marks enough that the next marks are parallel ones */
    gc_stats a, b;
    gc_get_stats(&a);
    b = a;
    for (int round = 0; round < rounds; round++) {
        spangc_cfg.mark_stack_limit = stack_limit;
        gc_collect();
        spangc_cfg.mark_stack_limit = 0;
        gc_get_stats(&b);
        assert_int_equal(b.heap_live, b.heap_alloc);
        if (at_mark) { /* a stale word's second reference may let two meet */
            uint64_t counted = ao_load(&spangc_gc.goal_basis);
            assert_true(counted >= b.heap_alloc && counted - b.heap_alloc <= 1024);
        }
    }
    spangc_cfg.markers = saved;
    return b.mark_stack_overflows - a.mark_stack_overflows;
}

/* Two markers and an overflow: every object counts once in the marked
 * bytes, so after gc_collect heap_live is heap_alloc (nothing but the
 * test's objects, all live). The recovery, which tests the collector's
 * mark words alone, marked again, and counted again, what a worker had
 * marked in a span it had not folded yet: 0.2-0.7 % too many bytes. */
static __attribute__((noinline)) void make_fans(size_t n)
{
    void ***top = gc_alloc(n * sizeof(void **));
    for (size_t i = 0; i < n; i++) {
        void **mid = gc_alloc(4 * sizeof(void *));
        for (int k = 0; k < 4; k++)
            mid[k] = gc_alloc_atomic(16);
        top[i] = mid;
    }
    global_root = top;
}

static void test_parallel_overflow_counts_each_object_once(void **state)
{
    (void)state;
    make_fans(100000); /* 8 MiB */
    assert_true(collect_counting_once(3, 1, true) >= 3);
    global_root = NULL;
}

/* Two markers that meet the same object at the same moment both mark it,
 * in words of their own (mspan.h), and both counted its bytes: with 64
 * objects that 300,000 others point at, heap_live passed heap_alloc after
 * about one gc_collect in 13 (by up to 192 bytes). The sweeper takes such
 * bytes back off. */
static __attribute__((noinline)) void make_shared_targets(size_t n, size_t nshared)
{
    void **shared = gc_alloc(nshared * sizeof(void *));
    for (size_t i = 0; i < nshared; i++)
        shared[i] = gc_alloc(32);
    void ***top = gc_alloc(n * sizeof(void **));
    for (size_t i = 0; i < n; i++) {
        void **o = gc_alloc(2 * sizeof(void *));
        o[0] = shared[i * 7919 % nshared];
        o[1] = shared[i * 104729 % nshared];
        top[i] = o;
    }
    global_root = top;
}

static void test_parallel_mark_counts_shared_objects_once(void **state)
{
    (void)state;
    make_shared_targets(300000, 64); /* 12 MiB */
    (void)collect_counting_once(TRACK_VG_RUNNING() ? 10 : 150, 0, false);
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

/* A layout's offsets may come in any order, and it repeats up to the end
 * of the object, into a last element cut short: a 32-byte layout with
 * pointers at 24 and 0, over 48 bytes, has pointer words at 0, 24 and 32,
 * and no other. Scanning stopped at the first offset past the end, so
 * with the offsets unsorted, or the short element skipped, the object at
 * 32 was freed while reachable. */
static uintptr_t typed_kids[4]; /* hidden: what bytes 0, 24, 32 and 40 point to */

static void make_typed_with_short_element(void *arg)
{
    (void)arg;
    const gc_type *t = gc_type_new(32, (const size_t[]){24, 0}, 2);
    assert_non_null(t);
    void **obj = gc_alloc_typed(48, t);
    assert_non_null(obj);
    (void)!gc_alloc(64); /* the children are not first in their span */
    for (int i = 0; i < 4; i++) {
        void *kid = gc_alloc(64);
        obj[(size_t[]){0, 3, 4, 5}[i]] = kid;
        typed_kids[i] = HIDE(kid);
    }
    global_root = obj;
}

static void test_typed_layout_unsorted_and_cut_short(void **state)
{
    (void)state;
    run_on_a_registered_thread(make_typed_with_short_element, NULL);
    collect();
    assert_true(alive(typed_kids[0]));
    assert_true(alive(typed_kids[1]));
    assert_true(alive(typed_kids[2]));
    assert_dead(typed_kids[3]); /* byte 40: not a pointer word */
    global_root = NULL;
}

/* A worker that is slow to wake (not scheduled: the machine is busy) does
 * not hold the mark up: the collector marks on, closes the mark, and the
 * worker, when it runs, finds it closed. The collector used to wait until
 * every worker had run. */
static ao_word hold_worker, worker_let_go;

/* Until the test lets go, or 10 s (if the collector waits for the worker,
 * the collection ends only then, and the test fails instead of hanging). */
static void hold_before_join(void)
{
    for (int i = 0; i < 10000 && ao_load_acq(&hold_worker); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    ao_store_rel(&worker_let_go, 1);
}

static void test_mark_does_not_wait_for_a_late_worker(void **state)
{
    (void)state;
    /* GC_DEBUG=verify marks a second time in the same pause, and that mark
     * must wait for the first one's workers to be out. */
    if (spangc_cfg.verify)
        skip();
    unsigned saved = spangc_cfg.markers;
    spangc_cfg.markers = 2;
    make_chain((8 << 20) / 64, 64); /* 8 MiB marked: the next mark is a parallel one */
    collect();
    /* That mark's worker may not have run yet (a loaded machine): this
     * waits until it has left, so that only the next mark's meets the
     * hook. */
    spangc_mark_start_workers();
    ao_store(&hold_worker, 1);
    ao_store(&worker_let_go, 0);
    ao_store_rel(&spangc_test_before_join, (uintptr_t)hold_before_join);
    collect();
    /* Done while the worker is still held (or not even awake). */
    bool waited = ao_load_acq(&worker_let_go);
    ao_store_rel(&hold_worker, 0);
    ao_store_rel(&spangc_test_before_join, 0);
    assert_false(waited);
    assert_int_equal(chain_length(), (8 << 20) / 64);
    /* The next mark starts once the held worker has left the last one. */
    collect();
    assert_int_equal(chain_length(), (8 << 20) / 64);
    global_root = NULL;
    spangc_cfg.markers = saved;
}

/* A binary tree of 16-byte nodes, with a garbage node allocated after
 * each live one so that the spans hold both, in every one of the 2048
 * slots of the class's 4-page spans. */
typedef struct tnode {
    struct tnode *left, *right;
} tnode;

static __attribute__((noinline)) tnode *build_with_garbage(int depth, uintptr_t *garbage,
                                                          size_t *ngarbage, size_t cap)
{
    tnode *n = gc_alloc(sizeof *n);
    tnode *g = gc_alloc(sizeof *g);
    if (*ngarbage < cap)
        garbage[(*ngarbage)++] = HIDE(g);
    if (depth > 0) {
        n->left = build_with_garbage(depth - 1, garbage, ngarbage, cap);
        n->right = build_with_garbage(depth - 1, garbage, ngarbage, cap);
    }
    return n;
}

static size_t tree_nodes(const tnode *n)
{
    return n ? 1 + tree_nodes(n->left) + tree_nodes(n->right) : 0;
}

/* Two markers over spans whose bitmaps are out of line (mspan.h): every
 * live node survives, and the garbage between them is freed, collection
 * after collection. A worker's marks written anywhere but the span's own
 * block lose live nodes (the verify run checks each mark too); marks
 * folded into the wrong words keep garbage. */
static void test_parallel_mark_of_multi_page_spans(void **state)
{
    (void)state;
    enum { DEPTH = 18, CAP = 1 << 16 };
    static uintptr_t garbage[CAP];
    size_t ngarbage = 0;
    unsigned saved = spangc_cfg.markers;
    spangc_cfg.markers = 2;
    /* 2^19 nodes, 8 MiB: from the second collection on, marks are
     * parallel. No collection while building, which would free garbage
     * whose slots later nodes then take. */
    int percent = gc_set_percent(-1);
    global_root = build_with_garbage(DEPTH, garbage, &ngarbage, CAP);
    gc_set_percent(percent);
    mspan *s = spangc_span_of_heap((uintptr_t)global_root);
    assert_non_null(s);
    assert_non_null(s->big_bits);
    collect();
    collect();
    size_t kept = 0;
    for (size_t i = 0; i < ngarbage; i++)
        kept += alive(garbage[i]);
    assert_true(kept <= 4);
    for (int round = 0; round < 4; round++) {
        assert_int_equal(tree_nodes(global_root), ((size_t)1 << (DEPTH + 1)) - 1);
        /* Zeroed nodes in every freed slot: a live node wrongly freed
         * loses its subtree, which the next count sees. */
        for (size_t i = 0; i < ((size_t)1 << (DEPTH + 1)); i++)
            (void)!gc_alloc(sizeof(tnode));
        collect();
    }
    assert_int_equal(tree_nodes(global_root), ((size_t)1 << (DEPTH + 1)) - 1);
    global_root = NULL;
    spangc_cfg.markers = saved;
}

/* A busy marker shares its work with an idle one: with two markers, the
 * worker marks a good part of a tree that hangs from one root, which only
 * the collecting thread's sharing can hand it. A worker may wake too late
 * for a mark on a loaded machine (test_mark_does_not_wait_for_a_late_worker),
 * so one mark in 20 suffices. */
static __attribute__((noinline)) tnode *build_tree(int depth)
{
    if (depth < 0)
        return NULL;
    tnode *n = gc_alloc(sizeof *n);
    n->left = build_tree(depth - 1);
    n->right = build_tree(depth - 1);
    return n;
}

static void test_markers_share_work(void **state)
{
    (void)state;
    /* Verify mode marks again, alone, after each mark: the figures would
     * be that mark's. */
    if (spangc_cfg.verify)
        skip();
    unsigned saved = spangc_cfg.markers;
    spangc_cfg.markers = 2;
    global_root = build_tree(18); /* 2^19 nodes, 8 MiB: enough for a parallel mark */
    collect(); /* the next marks are parallel ones */
    uint64_t worker = 0, total = 0;
    for (int round = 0; round < 20 && worker * 10 < total + 1; round++) {
        collect();
        worker = spangc_mark_bytes_of(1);
        total = spangc_mark_bytes_of(0) + worker;
    }
    print_message("the worker marked %llu of %llu bytes\n", (unsigned long long)worker,
                  (unsigned long long)total);
    assert_true(worker * 10 >= total);
    global_root = NULL;
    spangc_cfg.markers = saved;
}

/* A word that points into a span the heap has freed marks nothing. The
 * page index of freed pages still leads to span structures not in use:
 * the freed span's own, or, once coalescing merged it into a neighbour,
 * a dead one back in the structure pool. Each keeps its last layout, a
 * base that coalescing lowered, limit and divmul, and alloc_bits still
 * pointing at the 16-byte span's bitmap block (the only spans that have
 * one, 2048 slots), which the heap retired and the next cycle gives back
 * to the metadata allocator. For an address in the freed range, the slot
 * index worked out from that layout lands in or far past the block, among
 * words of freed or reused metadata, and nonzero ones read as allocated
 * slots. Only the state check (mark.c, mark_candidate) stops the mark
 * there; without it, dead objects, whose memory still holds their old
 * contents, are marked and scanned and keep alive the objects they point
 * at (or the scan follows a garbage layout). The objects live through one
 * collection and die in the next. Many targets, each counted: fate_of
 * would excuse one, since spangc_debug_explain walks only in-use spans
 * and finds just the copies of its argument on the stack. */
enum { FREED_SPANS = 16, FREED_OBJECTS = FREED_SPANS * 2048, FREED_TARGETS = 64 };

static uintptr_t *freed_roots;  /* a root range: the objects, later their stale addresses */
static uintptr_t *freed_hidden; /* not scanned: the objects, HIDE()d */
static uintptr_t *target_roots; /* a root range: the targets */
static uintptr_t target_hidden[FREED_TARGETS];

static void fill_spans_to_free(void *arg)
{
    (void)arg;
    for (size_t k = 0; k < FREED_TARGETS; k++) {
        void *t = gc_alloc(1400); /* a size no other test here uses */
        target_roots[k] = (uintptr_t)t;
        target_hidden[k] = HIDE(t);
    }
    for (size_t i = 0; i < FREED_OBJECTS; i++) {
        void **o = gc_alloc(2 * sizeof(void *));
        o[0] = (void *)target_roots[i % FREED_TARGETS];
        freed_roots[i] = (uintptr_t)o;
        freed_hidden[i] = HIDE(o);
    }
}

static __attribute__((noinline)) void point_into_freed_spans(void)
{
    for (size_t i = 0; i < FREED_OBJECTS; i++)
        freed_roots[i] = (uintptr_t)SHOW(freed_hidden[i]);
}

static size_t count_alive(const uintptr_t *hidden, size_t n)
{
    size_t kept = 0;
    for (size_t i = 0; i < n; i++)
        kept += alive(hidden[i]);
    return kept;
}

static void test_pointer_into_a_freed_span_marks_nothing(void **state)
{
    (void)state;
    /* Poison overwrites the freed objects: nothing would be left to keep
     * the targets alive, broken check or not. */
    if (spangc_cfg.poison)
        skip();
    freed_roots = calloc(FREED_OBJECTS, sizeof *freed_roots);
    freed_hidden = calloc(FREED_OBJECTS, sizeof *freed_hidden);
    target_roots = calloc(FREED_TARGETS, sizeof *target_roots);
    assert_non_null(freed_roots);
    assert_non_null(freed_hidden);
    assert_non_null(target_roots);
    assert_int_equal(gc_add_roots(freed_roots, FREED_OBJECTS * sizeof *freed_roots), 0);
    assert_int_equal(gc_add_roots(target_roots, FREED_TARGETS * sizeof *target_roots), 0);
    /* No collection while filling. */
    int percent = gc_set_percent(-1);
    run_on_a_registered_thread(fill_spans_to_free, NULL);
    gc_set_percent(percent);
    collect(); /* all alive: each span's first sweep */
    assert_int_equal(count_alive(freed_hidden, FREED_OBJECTS), FREED_OBJECTS);
    memset(freed_roots, 0, FREED_OBJECTS * sizeof *freed_roots);
    collect(); /* the objects dead, the targets held: the spans are freed */
    assert_true(count_alive(freed_hidden, FREED_OBJECTS) <= 4);
    assert_int_equal(count_alive(target_hidden, FREED_TARGETS), FREED_TARGETS);
    /* Now only the dead objects' addresses lead to the targets. */
    point_into_freed_spans();
    memset(target_roots, 0, FREED_TARGETS * sizeof *target_roots);
    collect();
    size_t kept = count_alive(target_hidden, FREED_TARGETS);
    print_message("%zu of %d targets kept\n", kept, FREED_TARGETS);
    assert_true(kept <= 4);
    assert_int_equal(gc_remove_roots(freed_roots), 0);
    assert_int_equal(gc_remove_roots(target_roots), 0);
    free(freed_roots);
    free(freed_hidden);
    free(target_roots);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_long_chain),
        cmocka_unit_test(test_mark_stack_overflow),
        cmocka_unit_test(test_overflow_during_recovery),
        cmocka_unit_test(test_parallel_overflow_counts_each_object_once),
        cmocka_unit_test(test_parallel_mark_counts_shared_objects_once),
        cmocka_unit_test(test_typed_arrays),
        cmocka_unit_test(test_typed_layout_unsorted_and_cut_short),
        cmocka_unit_test(test_mark_does_not_wait_for_a_late_worker),
        cmocka_unit_test(test_parallel_mark_of_multi_page_spans),
        cmocka_unit_test(test_markers_share_work),
        cmocka_unit_test(test_pointer_into_a_freed_span_marks_nothing),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
