/*
 * pauses - stop-the-world pause against live heap size.
 *
 * Why: spangc marks with the world stopped, so its pause grows with the
 * live pointer-bearing heap; this is the number that decides which heap
 * sizes an embedder can live with. The reliability-perf goal is about
 * 600 ms per GB of live heap with one marker, and <= 0.8x bdwgc.
 *
 * The live heap: -l MiB of 16-byte nodes of two pointers each (every word
 * a pointer, the densest possible), as a forest of bottom-up binary trees
 * of depth 16 (2 MiB each) whose roots sit in one scanned array. Trees
 * built bottom-up lie mostly in allocation order, so marking walks memory
 * nearly sequentially: the friendly case for a non-moving marker.
 *
 * After building (automatic collections happen meanwhile; their count and
 * worst pause are reported as build_*), -c forced collections (default 5)
 * are timed, each one's pause taken from gc_get_stats last_pause_ns
 * (spangc) or from stop to restart (bdwgc, see shim.h).
 *
 * Self-check: every tree is walked and counted after the collections.
 *
 * Usage: pauses-<contender> [-l live_MiB] [-c collections]
 */
#include "shim.h"
#include "tree.h"

#include <unistd.h>

enum { TREE_DEPTH = 16 };

static long count(const node *n)
{
    if (!n->left && !n->right)
        return 1;
    if (!n->left || !n->right)
        bench_fail("a node with one child");
    return 1 + count(n->left) + count(n->right);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
    long live_mib = 64;
    int ncoll = 5, opt;
    while ((opt = getopt(argc, argv, "l:c:")) != -1) {
        switch (opt) {
        case 'l': live_mib = atol(optarg); break;
        case 'c': ncoll = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-l live_MiB] [-c collections]\n", argv[0]);
            return 1;
        }
    }
    if (live_mib < 2 || ncoll < 1 || ncoll > 1000)
        bench_fail("bad arguments");
    bench_init();

    const long tree_nodes = (1L << (TREE_DEPTH + 1)) - 1;
    const long ntrees = live_mib * 1048576 / (tree_nodes * (long)sizeof(node));
    uint64_t t0 = bench_now_ns();
    node **roots = bench_alloc(ntrees * sizeof *roots);
    for (long i = 0; i < ntrees; i++)
        roots[i] = bottom_up(TREE_DEPTH);
    uint64_t build_ns = bench_now_ns() - t0;
    bench_stats st;
    bench_get_stats(&st);
    uint64_t build_gcs = st.num_gc, build_max = st.max_pause_ns;

    uint64_t *pause = calloc(ncoll, sizeof *pause);
    int collected = 1;
    for (int k = 0; k < ncoll; k++) {
        uint64_t before = st.num_gc;
        bench_collect();
        bench_get_stats(&st);
        pause[k] = st.last_pause_ns;
        if (st.num_gc != before + 1)
            collected = 0;
    }

    for (long i = 0; i < ntrees; i++)
        if (count(roots[i]) != tree_nodes)
            bench_fail("tree %ld of %ld is damaged", i, ntrees);

    double live_real = ntrees * tree_nodes * (double)sizeof(node) / 1048576;
    qsort(pause, ncoll, sizeof *pause, cmp_u64);
    double med = collected ? pause[(ncoll - 1) / 2] / 1e6 : 0.0 / 0.0;
    double max = collected ? pause[ncoll - 1] / 1e6 : 0.0 / 0.0;
    printf("pauses %s: %ld MiB live (%ld trees), built in %.2f s; forced pause median %.1f ms, "
           "max %.1f ms (%.0f ms/GiB)\n",
           BENCH_CONTENDER, live_mib, ntrees, build_ns / 1e9, med, max,
           max / (live_real / 1024));
    bench_result("pauses",
                 "live_mib=%ld live_real_mib=%.1f build_s=%.2f build_gcs=%llu "
                 "build_max_pause_ms=%.1f forced=%d pause_med_ms=%.2f pause_max_ms=%.2f check=ok",
                 live_mib, live_real, build_ns / 1e9, (unsigned long long)build_gcs,
                 build_max / 1e6, ncoll, med, max);
    return 0;
}
