/*
 * binarytrees - the Computer Language Benchmarks Game binary-trees
 * workload (default depth 21), on one thread or split across several.
 *
 * Why: almost nothing but allocation of 16-byte two-pointer nodes, with a
 * 64 MiB long-lived tree that every collection has to mark again. A
 * non-generational collector spends much of its time here re-marking that
 * tree, so this measures the mark rate and the pacer as much as the
 * allocator; with -t 2 it also measures how allocation and collection
 * scale across threads.
 *
 * The workload (n = 21, min = 4): build and check a stretch tree of depth
 * n+1; build a long-lived tree of depth n; for depth d = 4, 6, ..., n,
 * build and check 2^(n - d + 4) trees of depth d; check the long-lived
 * tree. A tree's check is its node count. The standard lines are printed:
 *
 *   stretch tree of depth 22	 check: 8388607
 *   2097152	 trees of depth 4	 check: 65011712
 *   ...
 *   long lived tree of depth 21	 check: 4194303
 *
 * and every check value is compared with its closed form, 2^(d+1) - 1
 * nodes per tree.
 *
 * -t T splits the iterations of each depth across T threads, each
 * registered with the collector (gc_register_thread; for bdwgc
 * GC_allow_register_threads + GC_register_my_thread). With -t 1 no thread
 * is created and bdwgc stays in its single-threaded mode (one marker).
 *
 * Usage: binarytrees-<contender> [-d depth] [-t threads]
 */
#include "shim.h"
#include "tree.h"

#include <unistd.h>

static long check(const node *n)
{
    if (!n->left)
        return 1;
    return 1 + check(n->left) + check(n->right);
}

static long expected(int depth) { return (1L << (depth + 1)) - 1; }

struct work {
    pthread_t tid;
    int depth;
    long iterations;
    long sum;
};

static long run_iterations(int depth, long iterations)
{
    long sum = 0;
    for (long i = 0; i < iterations; i++)
        sum += check(bottom_up(depth));
    return sum;
}

static void *worker(void *arg)
{
    struct work *w = arg;
    bench_thread_begin();
    w->sum = run_iterations(w->depth, w->iterations);
    bench_thread_end();
    return NULL;
}

int main(int argc, char **argv)
{
    int n = 21, threads = 1, opt;
    while ((opt = getopt(argc, argv, "d:t:")) != -1) {
        switch (opt) {
        case 'd': n = atoi(optarg); break;
        case 't': threads = atoi(optarg); break;
        default:
            fprintf(stderr, "usage: %s [-d depth] [-t threads]\n", argv[0]);
            return 1;
        }
    }
    if (threads < 1 || threads > 64 || n < 6 || n > 30) {
        fprintf(stderr, "bad depth or thread count\n");
        return 1;
    }
    bench_init();
    if (threads > 1)
        bench_threads_init();
    uint64_t t0 = bench_now_ns();

    const int min_depth = 4;
    int max_depth = n < min_depth + 2 ? min_depth + 2 : n;

    long c = check(bottom_up(max_depth + 1));
    printf("stretch tree of depth %d\t check: %ld\n", max_depth + 1, c);
    if (c != expected(max_depth + 1))
        bench_fail("stretch tree check %ld", c);

    node *long_lived = bottom_up(max_depth);

    for (int d = min_depth; d <= max_depth; d += 2) {
        long iterations = 1L << (max_depth - d + min_depth);
        long sum = 0;
        if (threads == 1) {
            sum = run_iterations(d, iterations);
        } else {
            struct work w[64];
            for (int k = 0; k < threads; k++) {
                w[k].depth = d;
                w[k].iterations = iterations / threads + (k < iterations % threads);
                if (pthread_create(&w[k].tid, NULL, worker, &w[k]))
                    bench_fail("pthread_create");
            }
            for (int k = 0; k < threads; k++) {
                pthread_join(w[k].tid, NULL);
                sum += w[k].sum;
            }
        }
        printf("%ld\t trees of depth %d\t check: %ld\n", iterations, d, sum);
        if (sum != iterations * expected(d))
            bench_fail("depth %d check %ld, expected %ld", d, sum, iterations * expected(d));
    }

    c = check(long_lived);
    printf("long lived tree of depth %d\t check: %ld\n", max_depth, c);
    if (c != expected(max_depth))
        bench_fail("long-lived tree check %ld", c);

    uint64_t ms = (bench_now_ns() - t0) / 1000000;
    bench_result("binarytrees", "depth=%d threads=%d time_ms=%llu check=ok", n, threads,
                 (unsigned long long)ms);
    return 0;
}
