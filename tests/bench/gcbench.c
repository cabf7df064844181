/*
 * gcbench - the Ellis-Kovac-Boehm GCBench, written from its description.
 *
 * Why: the classic throughput test for a non-moving collector, and the one
 * bdwgc publishes numbers for. It mixes a long-lived tree and a big
 * pointer-free array (which every collection must keep) with many
 * short-lived trees built two ways: top-down (Populate: a parent exists
 * before its children, so old objects point to young ones) and bottom-up
 * (MakeTree: children first).
 *
 * The algorithm:
 *   stretch the heap with a tree of depth 18, drop it;
 *   build a long-lived tree of depth 16 top-down, and an array of 500000
 *   doubles with a[i] = 1/i for the first half;
 *   for depth 4, 6, ..., 16: build 2 * TreeSize(18) / TreeSize(depth)
 *   trees of that depth top-down, then as many bottom-up, dropping each;
 *   check that the long-lived data is intact.
 * (TreeSize(d) = 2^(d+1) - 1 nodes; a node is two pointers and two ints.)
 *
 * Self-check, beyond the original's array[1000] test: every node records
 * its depth; the whole long-lived tree is walked at the end (node count
 * and depths), as is the last tree built each way at each depth and the
 * stretch tree, and the whole array is compared.
 *
 * Usage: gcbench-<contender>
 */
#include "shim.h"

enum {
    STRETCH_DEPTH = 18,
    LONG_LIVED_DEPTH = 16,
    ARRAY_SIZE = 500000,
    MIN_DEPTH = 4,
    MAX_DEPTH = 16,
};

typedef struct node {
    struct node *left, *right;
    int i, j;
} node;

static long tree_size(int depth) { return (1L << (depth + 1)) - 1; }
static long num_iters(int depth) { return 2 * tree_size(STRETCH_DEPTH) / tree_size(depth); }

static node *new_node(node *l, node *r, int depth)
{
    node *n = bench_alloc(sizeof *n);
    n->left = l;
    n->right = r;
    n->i = depth;
    return n;
}

/* Top-down: give n (of the given depth) its children, recursively. */
static void populate(int depth, node *n)
{
    if (depth <= 0)
        return;
    depth--;
    n->left = new_node(NULL, NULL, depth);
    n->right = new_node(NULL, NULL, depth);
    populate(depth, n->left);
    populate(depth, n->right);
}

/* Bottom-up. */
static node *make_tree(int depth)
{
    if (depth <= 0)
        return new_node(NULL, NULL, 0);
    node *l = make_tree(depth - 1);
    node *r = make_tree(depth - 1);
    return new_node(l, r, depth);
}

/* Nodes in the tree at n; fails if a depth field or the shape is wrong. */
static long check_tree(const node *n, int depth)
{
    if (!n || n->i != depth)
        bench_fail("tree node at depth %d holds depth %d", depth, n ? n->i : -1);
    if (depth == 0) {
        if (n->left || n->right)
            bench_fail("leaf has children");
        return 1;
    }
    return 1 + check_tree(n->left, depth - 1) + check_tree(n->right, depth - 1);
}

static void expect_tree(const node *n, int depth, const char *what)
{
    long got = check_tree(n, depth);
    if (got != tree_size(depth))
        bench_fail("%s of depth %d has %ld nodes, expected %ld", what, depth, got,
                   tree_size(depth));
}

static void time_construction(int depth)
{
    long iters = num_iters(depth);
    node *t = NULL;

    uint64_t t0 = bench_now_ns();
    for (long i = 0; i < iters; i++) {
        t = new_node(NULL, NULL, depth);
        populate(depth, t);
    }
    expect_tree(t, depth, "top-down tree");
    uint64_t t1 = bench_now_ns();
    for (long i = 0; i < iters; i++)
        t = make_tree(depth);
    expect_tree(t, depth, "bottom-up tree");
    uint64_t t2 = bench_now_ns();
    printf("depth %2d: %6ld trees, top-down %6.1f ms, bottom-up %6.1f ms\n", depth, iters,
           (t1 - t0) / 1e6, (t2 - t1) / 1e6);
}

int main(void)
{
    bench_init();
    uint64_t t0 = bench_now_ns();

    node *stretch = make_tree(STRETCH_DEPTH);
    expect_tree(stretch, STRETCH_DEPTH, "stretch tree");
    stretch = NULL;

    node *long_lived = new_node(NULL, NULL, LONG_LIVED_DEPTH);
    populate(LONG_LIVED_DEPTH, long_lived);

    double *array = bench_alloc_atomic(ARRAY_SIZE * sizeof *array);
    for (int i = 0; i < ARRAY_SIZE / 2; i++)
        array[i] = 1.0 / i;
    for (int i = ARRAY_SIZE / 2; i < ARRAY_SIZE; i++)
        array[i] = -1.0; /* GC_MALLOC_ATOMIC memory is not zeroed */

    for (int d = MIN_DEPTH; d <= MAX_DEPTH; d += 2)
        time_construction(d);

    expect_tree(long_lived, LONG_LIVED_DEPTH, "long-lived tree");
    for (int i = 0; i < ARRAY_SIZE; i++)
        if (array[i] != (i < ARRAY_SIZE / 2 ? 1.0 / i : -1.0))
            bench_fail("array[%d] = %g", i, array[i]);

    uint64_t ms = (bench_now_ns() - t0) / 1000000;
    printf("gcbench %s: %llu ms\n", BENCH_CONTENDER, (unsigned long long)ms);
    bench_result("gcbench", "time_ms=%llu check=ok", (unsigned long long)ms);
    return 0;
}
