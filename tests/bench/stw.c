/*
 * stw - how long it takes to stop and restart the world.
 *
 * Why: spangc stops every registered thread with a signal for each mark.
 * On an almost empty heap the pause is nearly all signalling: send the
 * stop signal to each thread, wait for each to acknowledge, mark a few
 * objects, wake them all. An interpreter with a thread pool pays this on
 * every collection. Goal: median pause under 100 us with 16 threads.
 *
 * T threads (default 16) register, each builds a private list of 64
 * nodes that only its own stack points to, and then idles:
 *   -m blocked  in pthread_cond_wait (the common case: a pool waiting for
 *               work);
 *   -m spin     in a busy loop (the worst case on a 2-core machine: the
 *               stop signal waits until the scheduler runs each thread).
 * The main thread then runs N collections (default 200, after 5 warm-up
 * ones), allocating a little garbage of the same size before each, and
 * records each one's pause (spangc: gc_get_stats last_pause_ns; bdwgc:
 * from stop to restart, see shim.h) and the wall time of the call.
 *
 * Self-check: every thread verifies its list at the end (the garbage the
 * main thread allocates would have reused any wrongly freed node), and
 * every call must have run exactly one collection.
 *
 * Usage: stw-<contender> [-t threads] [-n collections] [-m blocked|spin]
 */
#include "shim.h"

#include <stdatomic.h>
#include <unistd.h>

#define LIST_LEN 64

typedef struct node {
    struct node *next;
    uint64_t value;
} node;

static atomic_int ready, stop;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int spin;

static void *worker(void *arg)
{
    uint64_t id = (uintptr_t)arg;
    bench_thread_begin();
    node *head = NULL;
    for (int i = 0; i < LIST_LEN; i++) {
        node *n = bench_alloc(sizeof *n);
        n->next = head;
        n->value = id << 32 | (uint64_t)i;
        head = n;
    }
    atomic_fetch_add(&ready, 1);
    if (spin) {
        while (!atomic_load_explicit(&stop, memory_order_relaxed))
            __builtin_ia32_pause();
    } else {
        pthread_mutex_lock(&mu);
        while (!atomic_load(&stop))
            pthread_cond_wait(&cv, &mu);
        pthread_mutex_unlock(&mu);
    }
    int i = LIST_LEN;
    for (node *n = head; n; n = n->next)
        if (n->value != (id << 32 | (uint64_t)--i))
            return (void *)1;
    bench_thread_end();
    return i == 0 ? NULL : (void *)1;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* The q-quantile of sorted v[0..n), nearest rank. */
static double quantile(const uint64_t *v, int n, double q)
{
    int k = (int)(q * n + 0.999999) - 1;
    return v[k < 0 ? 0 : k >= n ? n - 1 : k];
}

int main(int argc, char **argv)
{
    int nthreads = 16, ncoll = 200, opt;
    const char *mode = "blocked";
    while ((opt = getopt(argc, argv, "t:n:m:")) != -1) {
        switch (opt) {
        case 't': nthreads = atoi(optarg); break;
        case 'n': ncoll = atoi(optarg); break;
        case 'm': mode = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-t threads] [-n collections] [-m blocked|spin]\n",
                    argv[0]);
            return 1;
        }
    }
    spin = !strcmp(mode, "spin");
    if (nthreads < 0 || nthreads > 1024 || ncoll < 1 || (!spin && strcmp(mode, "blocked")))
        bench_fail("bad arguments");
    bench_init();
    bench_threads_init();

    pthread_t *tids = calloc(nthreads, sizeof *tids);
    for (int i = 0; i < nthreads; i++)
        if (pthread_create(&tids[i], NULL, worker, (void *)(uintptr_t)i))
            bench_fail("pthread_create");
    while (atomic_load(&ready) < nthreads)
        usleep(1000);

    for (int i = 0; i < 5; i++)
        bench_collect();

    uint64_t *pause = calloc(ncoll, sizeof *pause);
    uint64_t *call = calloc(ncoll, sizeof *call);
    bench_stats st;
    bench_get_stats(&st);
    uint64_t gcs = st.num_gc;
    int collected = 1;
    for (int k = 0; k < ncoll; k++) {
        for (int i = 0; i < 256; i++) {
            node *g = bench_alloc(sizeof *g);
            g->value = ~0ull;
        }
        uint64_t t0 = bench_now_ns();
        bench_collect();
        call[k] = bench_now_ns() - t0;
        bench_get_stats(&st);
        pause[k] = st.last_pause_ns;
        if (st.num_gc != gcs + 1)
            collected = 0;
        gcs = st.num_gc;
    }

    atomic_store(&stop, 1);
    pthread_mutex_lock(&mu);
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
    for (int i = 0; i < nthreads; i++) {
        void *bad;
        pthread_join(tids[i], &bad);
        if (bad)
            bench_fail("thread %d found its list damaged", i);
    }

    qsort(pause, ncoll, sizeof *pause, cmp_u64);
    qsort(call, ncoll, sizeof *call, cmp_u64);
    if (!collected) {
        /* Not a failed check: the collector simply did not collect. */
        printf("stw %s: gc_collect did not run one collection per call\n", BENCH_CONTENDER);
        bench_result("stw", "mode=%s threads=%d collections=%d pause_med_us=nan pause_p99_us=nan "
                     "pause_max_us=nan call_med_us=%.1f check=ok",
                     mode, nthreads, ncoll, quantile(call, ncoll, 0.5) / 1e3);
        return 0;
    }
    printf("stw %s %s, %d threads: pause median %.1f us, p99 %.1f us, max %.1f us\n",
           BENCH_CONTENDER, mode, nthreads, quantile(pause, ncoll, 0.5) / 1e3,
           quantile(pause, ncoll, 0.99) / 1e3, pause[ncoll - 1] / 1e3);
    bench_result("stw",
                 "mode=%s threads=%d collections=%d pause_med_us=%.1f pause_p99_us=%.1f "
                 "pause_max_us=%.1f call_med_us=%.1f check=ok",
                 mode, nthreads, ncoll, quantile(pause, ncoll, 0.5) / 1e3,
                 quantile(pause, ncoll, 0.99) / 1e3, pause[ncoll - 1] / 1e3,
                 quantile(call, ncoll, 0.5) / 1e3);
    return 0;
}
