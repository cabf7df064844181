/*
 * test_pacer.c - when collections happen and what they report: statistics
 * after gc_collect, gc_disable/gc_enable, the GC_PERCENT goal, the soft
 * memory limit, and returning idle pages to the OS.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>
#include <sys/wait.h>

#include "gc.h"
#include "mheap.h"
#include "thread.h"
#include "options.h"
#include "sweep.h"
#include "testutil.h"
#include "track.h"

/* volatile: stores to a root must not be optimized away. */
static void *volatile global_root;

/* The scavenger's delay while the pacer tests run (all but the
 * scavenger's own): long enough that it never gives back pages a test
 * counts as committed. On a loaded machine (a CI run beside other work)
 * test_no_early_cycle_with_memory_at_hand outlasted the default 1 s, and
 * the free pages it relied on went back to the OS. */
#define NO_SCAVENGING (3600 * 1000000000ull)

static int setup(void **state)
{
    (void)state;
    /* The environment counts: ctest runs these tests again with
     * GC_DEBUG=verify,poison. */
    int err = gc_init(NULL);
    ao_store(&spangc_cfg.scavenge_delay_ns, NO_SCAVENGING);
    return err;
}

/* ---- statistics ---------------------------------------------------------- */

/* A hundred 1 KiB objects, each with its own root (testutil.h). */
static rooted_set hundred;

static __attribute__((noinline)) void make_hundred(void)
{
    for (size_t i = 0; i < 100; i++)
        rooted_set_obj(&hundred, i, gc_alloc_atomic(1000)); /* 1024-byte class */
}

/* After gc_collect the statistics agree with the spans (collect() runs
 * spangc_verify_heap, which checks heap_alloc and the object count), and
 * the pause figures are filled in. */
static void test_stats_after_collect(void **state)
{
    (void)state;
    assert_true(rooted_init(&hundred, 100));
    collect();
    gc_stats a;
    gc_get_stats(&a);
    make_hundred();
    collect();
    gc_stats b;
    gc_get_stats(&b);
    assert_true(b.heap_alloc >= 100 * 1024);
    assert_int_equal(b.heap_objects, b.mallocs - b.frees);
    assert_int_equal(b.num_gc, a.num_gc + 1);
    assert_int_equal(b.num_forced_gc, a.num_forced_gc + 1);
    assert_true(b.last_pause_ns > 0 && b.max_pause_ns >= b.last_pause_ns);
    assert_true(b.pause_total_ns >= a.pause_total_ns + b.last_pause_ns);
    assert_true(b.heap_live >= 100 * 1024 && b.heap_live <= b.heap_alloc);
    assert_true(b.next_gc >= ((uint64_t)4 << 20));
    assert_true(b.heap_inuse >= b.heap_alloc && b.heap_sys >= b.heap_inuse);
    /* Dropped: every object not held by a stale stack word is counted
     * free. */
    rooted_drop(&hundred);
    collect();
    size_t kept = rooted_kept(&hundred, HERE);
    assert_true(kept <= 2);
    gc_stats c;
    gc_get_stats(&c);
    assert_true(c.frees - b.frees >= 100 - kept);
    assert_true(b.heap_alloc - c.heap_alloc >= (100 - kept) * 1024);
    rooted_destroy(&hundred);
}

/* A list of n 16-byte nodes, held by global_root: slow to mark. */
static __attribute__((noinline)) void make_list(size_t n)
{
    void **head = NULL;
    for (size_t i = 0; i < n; i++) {
        void **node = gc_alloc(2 * sizeof(void *));
        node[0] = head;
        head = node;
    }
    global_root = head;
}

/* max_pause_ns is the longest pause so far, not the last one: the pause
 * that marked a long list stays the maximum after shorter ones. */
static void test_max_pause_is_the_longest(void **state)
{
    (void)state;
    make_list(500000);
    collect();
    gc_stats big, after;
    gc_get_stats(&big);
    global_root = NULL;
    collect();
    collect();
    gc_get_stats(&after);
    print_message("list marked in %.3f ms, then %.3f ms\n", big.last_pause_ns / 1e6,
                  after.last_pause_ns / 1e6);
    assert_true(after.max_pause_ns >= big.last_pause_ns);
    assert_true(after.max_pause_ns > after.last_pause_ns);
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

/* The goal is live * (1 + gc_percent/100), never under 4 MiB; off means
 * no automatic cycle at all. */
static __attribute__((noinline)) void make_live(size_t bytes)
{
    size_t n = bytes / 4096;
    void **v = gc_alloc(n * sizeof(void *));
    for (size_t i = 0; i < n; i++)
        memset(v[i] = gc_alloc_atomic(4000), 1, 4000); /* 4096-byte class, resident */
    global_root = v;
}

/* With little live data the goal is min_heap (gc_options.min_heap,
 * GC_MIN_HEAP), and automatic cycles come about once per min_heap of
 * allocation. */
static void test_min_heap_is_the_smallest_goal(void **state)
{
    (void)state;
    collect();
    gc_stats a, b;
    gc_get_stats(&a);
    assert_true(a.heap_live < (1 << 20));
    assert_int_equal(a.next_gc, 4 << 20);
    uint64_t saved = spangc_cfg.min_heap;
    spangc_cfg.min_heap = 1 << 20;
    collect();
    gc_get_stats(&a);
    assert_int_equal(a.next_gc, 1 << 20);
    for (int i = 0; i < 8 * 1024; i++)
        (void)!gc_alloc_atomic(1000); /* 8 MiB of garbage */
    gc_get_stats(&b);
    assert_in_range(b.num_gc - a.num_gc, 6, 9);
    spangc_cfg.min_heap = saved;
    collect();
    gc_get_stats(&a);
    assert_int_equal(a.next_gc, 4 << 20);
}

static void test_goal_follows_gc_percent(void **state)
{
    (void)state;
    make_live(32 << 20);
    /* The setters return the previous value. */
    assert_int_equal(gc_set_percent(50), 100);
    assert_int_equal(gc_set_percent(-7), 50);
    assert_int_equal(gc_set_percent(100), -1);
    assert_int_equal(gc_set_memory_limit(1 << 30), 0);
    assert_int_equal(gc_set_memory_limit(0), 1 << 30);
    int percents[] = {100, 50, 300};
    for (size_t k = 0; k < 3; k++) {
        gc_set_percent(percents[k]);
        collect();
        gc_stats st;
        gc_get_stats(&st);
        double want = (double)st.heap_live * (1 + percents[k] / 100.0);
        assert_true(st.next_gc > want * 0.99 && st.next_gc < want * 1.01);
    }
    gc_set_percent(-1);
    collect();
    gc_stats a, b;
    gc_get_stats(&a);
    assert_int_equal(a.next_gc, 0);
    for (int i = 0; i < 100000; i++)
        (void)!gc_alloc_atomic(1000); /* 100 MB of garbage */
    gc_get_stats(&b);
    assert_int_equal(b.num_gc, a.num_gc);
    gc_set_percent(100);
    global_root = NULL;
    collect();
    gc_get_stats(&a);
    assert_int_equal(a.next_gc, 4 << 20); /* the minimum heap */
}

/* Automatic cycles keep the heap near the goal. */
static void test_heap_stays_near_goal(void **state)
{
    (void)state;
    make_live(16 << 20);
    collect();
    gc_stats st;
    gc_get_stats(&st);
    uint64_t goal = st.next_gc, peak = 0, cycles = st.num_gc;
    for (int i = 0; i < 400000; i++) {
        (void)!gc_alloc(200 + i % 300);
        if (i % 1000 == 0) {
            gc_get_stats(&st);
            if (st.heap_alloc > peak)
                peak = st.heap_alloc;
        }
    }
    gc_get_stats(&st);
    assert_true(st.num_gc > cycles + 2);
    /* The goal, plus what mcaches hold and lazy sweeping has not freed. */
    assert_true(peak < goal + goal / 4);
    global_root = NULL;
}

static uint64_t committed(const gc_stats *st)
{
    return st->heap_sys - st->heap_released;
}

/* bytes live and (after giving every free page back) no committed memory
 * beyond them, so that reaching the goal would take pages from the OS;
 * *a: the statistics then. */
static void live_without_spare_memory(size_t bytes, gc_stats *a)
{
    global_root = NULL;
    collect();
    spangc_section_enter();
    spangc_mheap_scavenge(0, 0);
    spangc_section_leave();
    make_live(bytes);
    collect();
    gc_get_stats(a);
    assert_true(committed(a) < a->next_gc);
}

/* The early trigger (gc.c, Pacing): three quarters of the way to the
 * goal, a heap that would have to take pages from the OS to reach the
 * goal collects first. A 16 MiB structure sets a 32 MiB goal and then dies:
 * the heap must find that out before it grows to 32 MiB. */
static void test_early_cycle_before_growing(void **state)
{
    (void)state;
    gc_stats a, st;
    live_without_spare_memory(16 << 20, &a);
    global_root = NULL;
    uint64_t most = 0; /* committed memory */
    for (int i = 0; i < 15 * 1024; i++) { /* 15 MiB: 16 + 15 < 32 */
        (void)!gc_alloc_atomic(1000);
        if (i % 256 == 0) {
            gc_get_stats(&st);
            if (committed(&st) > most)
                most = committed(&st);
        }
    }
    gc_get_stats(&st);
    assert_true(st.num_gc > a.num_gc);
    assert_true(most < a.next_gc - (2 << 20)); /* the trigger is at 28 */
}

/* Where the two triggers stand after a cycle with 8 MiB live: the goal at
 * twice the live heap (GC_PERCENT 100), the early trigger three quarters of
 * the way there; under a soft memory limit, a goal 5 % under the limit,
 * minus what is mapped but cannot hold objects. */
static void test_trigger_positions(void **state)
{
    (void)state;
    make_live(8 << 20);
    collect();
    uint64_t live = ao_load(&spangc_gc.goal_basis); /* the bytes the mark counted */
    uint64_t goal = ao_load(&spangc_gc.next_gc), early = ao_load(&spangc_gc.early_gc);
    assert_int_equal(goal, live + live / 100 * 100);
    assert_true(early < goal);
    assert_true(early - live >= (goal - live) / 10 * 7);
    uint64_t limit = 256 << 20;
    gc_set_percent(10000);
    gc_set_memory_limit(limit);
    collect();
    goal = ao_load(&spangc_gc.next_gc);
    gc_set_memory_limit(0);
    gc_set_percent(100);
    assert_true(goal <= limit - limit / 20);
    assert_true(goal > limit / 2);
    global_root = NULL;
}

/* An early cycle that finds as much live data as the last one disarms the
 * trigger for one cycle: a steady state then grows the heap to its goal
 * once, instead of collecting early for good. */
static void test_steady_state_grows_to_goal(void **state)
{
    (void)state;
    gc_stats a, st;
    live_without_spare_memory(8 << 20, &a);
    for (int i = 0; i < 48 * 1024; i++) /* 48 MiB of garbage */
        (void)!gc_alloc_atomic(1000);
    gc_get_stats(&st);
    assert_true(st.num_gc >= a.num_gc + 4);
    assert_true(committed(&st) + (1 << 20) >= st.next_gc);
    global_root = NULL;
}

/* ... and a heap that already has the memory for its goal collects only
 * at the goal: 8 MiB live, goal 16 MiB, 7 MiB of garbage, no cycle, where
 * the early trigger, had it been armed, would have run one at 14 MiB. */
static void test_no_early_cycle_with_memory_at_hand(void **state)
{
    (void)state;
    make_live(24 << 20);
    global_root = NULL;
    collect(); /* 24 MiB committed and free */
    make_live(8 << 20);
    collect();
    gc_stats a, b;
    gc_get_stats(&a);
    assert_true(committed(&a) >= a.next_gc);
    for (int i = 0; i < 7 * 1024; i++)
        (void)!gc_alloc_atomic(1000);
    gc_get_stats(&b);
    assert_int_equal(b.num_gc, a.num_gc);
    global_root = NULL;
}

/* A soft limit lowers the goal: with gc_percent so high that it alone
 * would let the heap grow to 800 MiB, a 64 MiB limit keeps it near 64. */
static void test_memory_limit(void **state)
{
    (void)state;
    /* The bound also needs the background worker to sweep about as fast
     * as this loop allocates (growth over the limit releases free pages
     * itself, but unswept garbage is not free yet). Valgrind runs one
     * thread at a time, 50 times slower, and the worker falls behind. */
    if (TRACK_VG_RUNNING())
        skip();
    gc_set_percent(10000);
    gc_set_memory_limit(64 << 20);
    make_live(8 << 20);
    collect();
    gc_stats st;
    gc_get_stats(&st);
    assert_true(st.next_gc < (64 << 20));
    assert_true(st.next_gc >= st.heap_live + st.heap_live / 8);
    for (int i = 0; i < 300000; i++)
        (void)!gc_alloc_atomic(1000 + i % 2000);
    /* Pages the last sweep freed go back once the worker has run; on a
     * loaded machine that can take a while. Idle-page scavenging, which
     * could pass for the limit, is off (NO_SCAVENGING). */
    gc_get_stats(&st);
    for (int i = 0; i < 500 && st.heap_sys - st.heap_released >= (80 << 20); i++) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        gc_get_stats(&st);
    }
    assert_true(st.heap_sys - st.heap_released < (80 << 20));
    /* A limit below the live heap still lets the program run: cycles do
     * not start on every allocation. */
    gc_set_memory_limit(1 << 20);
    collect();
    gc_stats a, b;
    gc_get_stats(&a);
    for (int i = 0; i < 1000; i++)
        (void)!gc_alloc(100);
    gc_get_stats(&b);
    assert_true(b.num_gc - a.num_gc <= 1);
    gc_set_memory_limit(0);
    gc_set_percent(100);
    global_root = NULL;
    collect();
}

/* Under a limit, the garbage a cycle finds is room, not overhead: with
 * 8 MiB live and 64 MiB of limit, every automatic cycle sets a goal near
 * the limit. The dead small objects a cycle finds were counted as memory
 * the heap could not use, so a cycle after much allocation set a goal near
 * the floor, the next one (after little) a high one, and so on: goals of
 * about 20 and 55 MiB in turn, and twice the cycles. */
static void test_memory_limit_goal_leaves_garbage_out(void **state)
{
    (void)state;
    gc_set_percent(-1);
    gc_set_memory_limit(64 << 20);
    make_live(8 << 20);
    collect();
    gc_stats st;
    gc_get_stats(&st);
    uint64_t cycles = st.num_gc, lowest = UINT64_MAX;
    for (int i = 0; i < 300000; i++) {
        (void)!gc_alloc_atomic(1000);
        if (i % 256 == 0) {
            gc_get_stats(&st);
            if (st.num_gc != cycles && st.next_gc < lowest)
                lowest = st.next_gc;
        }
    }
    gc_get_stats(&st);
    print_message("%llu automatic cycles, lowest goal %.1f MiB\n",
                  (unsigned long long)(st.num_gc - cycles), lowest / 1048576.0);
    assert_true(st.num_gc - cycles >= 3);
    assert_true(lowest > (40u << 20));
    gc_set_memory_limit(0);
    gc_set_percent(100);
    global_root = NULL;
    collect();
}

/* A limit set while the last cycle's sweep is unfinished gets the goal a
 * finished sweep gives. The dead objects of unswept spans counted as used,
 * so the goal was the floor or not depending on how far the background
 * sweeper had got: embedding.md's limit.c printed 22 or 37 MiB. (After
 * gc_collect the sweep is finished: it takes an automatic cycle.) */
static void test_memory_limit_set_mid_sweep(void **state)
{
    (void)state;
    gc_set_percent(-1);
    make_live(8 << 20);
    int mid_sweep = 0;
    for (int round = 0; round < 5; round++) {
        gc_set_memory_limit(64 << 20);
        garbage_until_cycles(1);
        mid_sweep += spangc_sweep_unfinished();
        gc_set_memory_limit(40 << 20);
        gc_stats set, swept;
        gc_get_stats(&set);
        spangc_sweep_finish();
        gc_set_memory_limit(40 << 20);
        gc_get_stats(&swept);
        assert_int_equal(set.next_gc, swept.next_gc);
        assert_true(swept.next_gc > (16u << 20)); /* the floor is 9 MiB */
    }
    print_message("%d of 5 limits were set mid-sweep\n", mid_sweep);
    /* Under Valgrind the threads take turns, and the sweeper may finish
     * first every time. */
    if (!TRACK_VG_RUNNING())
        assert_true(mid_sweep > 0);
    gc_set_memory_limit(0);
    gc_set_percent(100);
    global_root = NULL;
    collect();
}

/* Past the soft limit, an allocation that finds no free span to fit it
 * sweeps on until one does, rather than grow while unswept spans still
 * hold garbage (reclaiming a request's worth of scattered pages is not
 * enough). Large objects of up to 6 MiB, a few kept, and small ones
 * between them; in a child process, whose heap has no background worker
 * yet to sweep behind the allocations' back. Where the large objects land
 * moves one run's peak by a large object or so (62-76 MiB over seeds and
 * builds), so the test takes the mean of six runs of 300 allocations with
 * different seeds: 66.6-68.0 MiB (72.2 under AddressSanitizer, 67.4 under
 * ThreadSanitizer), against 76.0-76.6 when the allocation stops sweeping
 * once a request's worth of pages is reclaimed. One run of 1500
 * allocations, the test before, cost as much and told them apart less
 * well. */
void *volatile kept_large[4];

static double limit_run_peak_mib(uint64_t seed)
{
    spangc_cfg.background_sweep = false;
    gc_set_percent(-1); /* only the limit starts cycles */
    gc_set_memory_limit(64 << 20);
    collect();
    uint64_t peak = 0;
    for (int i = 0; i < 300; i++) {
        seed = seed * 6364136223846793005u + 1442695040888963407u;
        size_t size = (size_t)(seed >> 33) % (6 << 20) + 40000;
        char *p = i % 3 ? gc_alloc_atomic(size) : gc_alloc(size);
        if (!p)
            _exit(2);
        p[0] = 1;
        if (i % 16 == 0)
            kept_large[i / 16 % 4] = p;
        for (int k = 0; i % 5 == 0 && k < 200; k++)
            (void)!gc_alloc(k * 10);
        gc_stats st;
        gc_get_stats(&st);
        if (st.heap_sys - st.heap_released > peak)
            peak = st.heap_sys - st.heap_released;
    }
    return peak / 1048576.0;
}

static void test_memory_limit_sweeps_before_growing(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    double sum = 0;
    for (uint64_t seed = 1; seed <= 6; seed++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            double peak = limit_run_peak_mib(seed);
            _exit(write(fds[1], &peak, sizeof peak) == sizeof peak ? 0 : 3);
        }
        int status;
        double peak = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_int_equal(read(fds[0], &peak, sizeof peak), sizeof peak);
        fprintf(stderr, "seed %d: peak mapped %.1f MiB with a 64 MiB limit\n", (int)seed, peak);
        sum += peak;
    }
    close(fds[0]);
    close(fds[1]);
    fprintf(stderr, "mean peak %.1f MiB\n", sum / 6);
    assert_true(sum / 6 < 74.5);
}

static long rss_kib(void)
{
    long pages = 0, resident = 0;
    FILE *f = fopen("/proc/self/statm", "r");
    if (f) {
        if (fscanf(f, "%ld %ld", &pages, &resident) != 2)
            resident = 0;
        fclose(f);
    }
    return resident * (sysconf(_SC_PAGESIZE) / 1024);
}

/* Poll the statistics every 20 ms, for at most seconds, until heap_released
 * reaches want; *st is the last reading. */
static void wait_for_released(gc_stats *st, uint64_t want, int seconds)
{
    gc_get_stats(st);
    for (int i = 0; i < seconds * 50 && st->heap_released < want; i++) {
        struct timespec ts = {0, 20 * 1000000};
        nanosleep(&ts, NULL);
        gc_get_stats(st);
    }
}

/* Free pages idle for scavenge_delay go back to the OS (the process's RSS
 * shrinks), and come back when the heap needs them. */
static void test_scavenger_releases_idle_pages(void **state)
{
    (void)state;
    /* Wall-clock deadlines for the background worker: not under Valgrind,
     * which runs one thread at a time, far slower. */
    if (TRACK_VG_RUNNING())
        skip();
    make_live(48 << 20);
    collect();
    long rss_full = rss_kib();
    global_root = NULL;
    collect(); /* 48 MiB of free pages now */
    /* Counted while nothing can be released yet: with the short delay set
     * first, a slow collect() (verify mode under ThreadSanitizer) let the
     * worker release them all before this count. */
    gc_stats st;
    gc_get_stats(&st);
    uint64_t before = st.heap_released;
    ao_store(&spangc_cfg.scavenge_delay_ns, 20 * 1000000u);
    gc_collect(); /* wakes the worker, which may wait an hour */
    wait_for_released(&st, before + (32 << 20), 10);
    ao_store(&spangc_cfg.scavenge_delay_ns, NO_SCAVENGING);
    assert_true(st.heap_released >= before + (32 << 20));
    assert_true(st.heap_released <= st.heap_sys);
#ifndef SPANGC_TSAN
    /* (ThreadSanitizer's shadow of the released pages stays resident, and
     * poison mode writes every freed page.) */
    if (!spangc_cfg.poison)
        assert_true(rss_kib() < rss_full - 32 * 1024);
#else
    (void)rss_full;
#endif
    /* Allocation takes released pages back first. */
    uint64_t released = st.heap_released;
    make_live(40 << 20);
    gc_get_stats(&st);
    assert_true(st.heap_released < released - (32 << 20));
    global_root = NULL;
}

/* Pages that the last collection before the program goes idle freed go
 * back once they have been idle for the delay, with no collection after:
 * the worker's own timer does it, not the scavenge that follows a cycle,
 * which here finds them too young (freed by that very cycle). */
static void test_scavenger_releases_pages_after_the_last_cycle(void **state)
{
    (void)state;
    if (TRACK_VG_RUNNING())
        skip(); /* wall-clock deadlines, as above */
    make_live(48 << 20);
    collect();
    gc_stats st;
    gc_get_stats(&st);
    uint64_t before = st.heap_released;
    ao_store(&spangc_cfg.scavenge_delay_ns, 200 * 1000000u);
    global_root = NULL;
    gc_collect(); /* frees the 48 MiB: idle from now on */
    wait_for_released(&st, before + (32 << 20), 3);
    ao_store(&spangc_cfg.scavenge_delay_ns, NO_SCAVENGING);
    assert_true(st.heap_released >= before + (32 << 20));
}

/* A forked child has no background worker (threads do not survive fork)
 * and starts one of its own: its free pages go back to the OS too. */
static int child_releases_free_pages(void)
{
    ao_store(&spangc_cfg.scavenge_delay_ns, 20 * 1000000u);
    make_live(48 << 20);
    gc_collect();
    gc_stats st;
    gc_get_stats(&st);
    uint64_t before = st.heap_released;
    global_root = NULL;
    gc_collect();
    wait_for_released(&st, before + (32 << 20), 3);
    return st.heap_released >= before + (32 << 20) ? 0 : 1;
}

static void test_forked_child_scavenges(void **state)
{
    (void)state;
    if (TRACK_VG_RUNNING())
        skip(); /* wall-clock deadlines, as above */
    collect(); /* the parent's worker is up */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0)
        _exit(child_releases_free_pages());
    assert_child_succeeded(pid);
}

/* A limit lowered below what the heap maps: the next gc_collect gives
 * free pages back until the heap and metadata map under 95% of it, at
 * once, not after the idle-page delay (NO_SCAVENGING here). */
static void test_limit_releases_free_pages_at_collect(void **state)
{
    (void)state;
    make_live(48 << 20);
    collect();
    global_root = NULL;
    collect(); /* 48 MiB of free pages, none released */
    uint64_t mapped = spangc_mapped_bytes();
    assert_true(mapped > (48 << 20));
    uint64_t limit = 24 << 20;
    gc_set_memory_limit(limit);
    gc_collect();
    uint64_t now = spangc_mapped_bytes();
    gc_set_memory_limit(0);
    assert_true(now <= limit - limit / 20);
}

/* A program that collects more often than every scavenge_delay / 2 still
 * gets its idle pages back: the worker scavenges after sweeping a cycle,
 * not only when its idle wait runs out (which every cycle cuts short). */
static void test_scavenger_runs_while_collecting(void **state)
{
    (void)state;
    if (TRACK_VG_RUNNING())
        skip(); /* wall-clock deadlines, as above */
    make_live(32 << 20);
    collect();
    global_root = NULL;
    collect(); /* 32 MiB of free pages now, at the top of the heap */
    gc_stats st;
    gc_get_stats(&st);
    uint64_t before = st.heap_released;
    ao_store(&spangc_cfg.scavenge_delay_ns, 100 * 1000000u);
    /* A cycle every 10 ms, for at most 10 s. */
    for (int i = 0; i < 1000 && st.heap_released < before + (24 << 20); i++) {
        struct timespec ts = {0, 10 * 1000000};
        nanosleep(&ts, NULL);
        gc_collect();
        gc_get_stats(&st);
    }
    ao_store(&spangc_cfg.scavenge_delay_ns, NO_SCAVENGING);
    assert_true(st.heap_released >= before + (24 << 20));
}

/* Large objects, kept by a second root. */
static void *volatile big_root;

static __attribute__((noinline)) void drop_two_large(size_t each)
{
    memset(gc_alloc_atomic(each), 1, each);
    memset(gc_alloc_atomic(each), 1, each);
}

/* A large object counts toward the goal before it exists: the allocation
 * that would take the heap past the goal collects first (so the object can
 * reuse the garbage), and the new goal counts the object as live, so the
 * next small allocation does not collect again. */
static void test_large_object_counts_before_allocation(void **state)
{
    (void)state;
    make_live(8 << 20);
    collect();
    /* Within 4 MiB of the goal (an early cycle on the way moves it). */
    while (ao_load(&spangc_mstats.heap_live) + (4 << 20) < ao_load(&spangc_gc.next_gc))
        (void)!gc_alloc_atomic(1000);
    gc_stats a, b, c;
    gc_get_stats(&a);
    big_root = gc_alloc_atomic(8 << 20);
    gc_get_stats(&b);
    assert_int_equal(b.num_gc, a.num_gc + 1);
    assert_true(b.next_gc >= 2 * ((uint64_t)16 << 20)); /* (8 live + 8 new) * 2 */
    /* Setting the pacer again keeps the new object in the goal's basis. */
    int percent = gc_set_percent(100);
    assert_int_equal(gc_set_percent(percent), 100);
    gc_set_memory_limit(gc_set_memory_limit(0));
    gc_get_stats(&c);
    assert_int_equal(c.next_gc, b.next_gc);
    for (int i = 0; i < 100; i++)
        (void)!gc_alloc(64);
    gc_get_stats(&c);
    assert_int_equal(c.num_gc, b.num_gc);
    big_root = NULL;
    global_root = NULL;
    collect();
}

/* Growing because no free span fits releases as many bytes of free pages
 * as the heap grows: a string doubled in a loop leaves each smaller copy
 * free behind it, and its peak resident memory used to hold all of them. */
static void test_growth_releases_free_pages(void **state)
{
    (void)state;
    if (TRACK_VG_RUNNING())
        skip(); /* resident memory under Valgrind is Valgrind's */
    drop_two_large(4 << 20);
    collect(); /* 8 MiB of free, resident pages */
    long rss_before = rss_kib();
    gc_stats a, b;
    gc_get_stats(&a);
    /* Bigger than the whole heap: no free span can fit it. Never touched,
     * so it adds no resident memory of its own. */
    size_t want = (size_t)a.heap_sys + (1 << 20);
    big_root = gc_alloc_atomic(want);
    assert_non_null(big_root);
    gc_get_stats(&b);
    assert_true(b.heap_sys >= a.heap_sys + want);
#if !defined(SPANGC_TSAN) && !defined(__SANITIZE_ADDRESS__)
    /* (ThreadSanitizer's shadow of released pages stays resident, and
     * AddressSanitizer writes the new object's shadow, an eighth of its
     * size: 16 MiB, the earlier tests having grown the heap to 130 MiB.) */
    if (!spangc_cfg.poison)
        assert_true(rss_kib() < rss_before - 6 * 1024);
#else
    (void)rss_before;
#endif
    big_root = NULL;
    collect();
}

/* GC_TRACE: one line per cycle on stderr. Its "heap before" counts what
 * this thread allocated since the last cycle, which its cache counts on
 * its own until the cycle flushes it (runtime/mcache.h): 2 MiB of
 * garbage shows between "before" and "live". */
static void test_trace_line(void **state)
{
    (void)state;
    FILE *tmp = tmpfile();
    int saved = dup(2);
    gc_collect();
    int percent = gc_set_percent(-1);
    /* 8 MiB live: a goal well above min_heap, where the early trigger (3/4
     * of the way there) is apart from it. */
    global_root = gc_alloc_atomic(8 << 20);
    for (int i = 0; i < 32768; i++)
        (void)!gc_alloc(64);
    dup2(fileno(tmp), 2);
    spangc_cfg.trace = true;
    gc_collect();
    gc_set_percent(percent);
    gc_collect();
    gc_stats st; /* the second line's cycle */
    gc_get_stats(&st);
    spangc_cfg.trace = false;
    global_root = NULL;
    fflush(stderr);
    dup2(saved, 2);
    close(saved);
    rewind(tmp);
    char line[512];
    int lines = 0;
    while (fgets(line, sizeof line, tmp)) {
        unsigned long long n;
        double at, pause, before, live, goal;
        int got = sscanf(line, "gc %llu @%lfs: pause %lf ms, heap %lf -> %lf MiB live, goal %lf MiB",
                         &n, &at, &pause, &before, &live, &goal);
        assert_int_equal(got, 6);
        assert_non_null(strstr(line, "spans left to sweep"));
        if (lines == 0)
            assert_true(before - live >= 1.9);
        if (lines == 1) { /* the figures of the cycle gc_get_stats reports */
            double mib = 1 << 20;
            assert_int_equal(n, st.num_gc);
            assert_true(fabs(live - (double)st.heap_live / mib) <= 0.05);
            assert_true(fabs(goal - (double)st.next_gc / mib) <= 0.05);
        }
        lines++;
    }
    fclose(tmp);
    assert_int_equal(lines, 2);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        /* First, so that its child starts from a small heap. */
        cmocka_unit_test(test_memory_limit_sweeps_before_growing),
        cmocka_unit_test(test_stats_after_collect),
        cmocka_unit_test(test_max_pause_is_the_longest),
        cmocka_unit_test(test_disable_enable),
        cmocka_unit_test(test_min_heap_is_the_smallest_goal),
        cmocka_unit_test(test_goal_follows_gc_percent),
        cmocka_unit_test(test_heap_stays_near_goal),
        cmocka_unit_test(test_early_cycle_before_growing),
        cmocka_unit_test(test_steady_state_grows_to_goal),
        cmocka_unit_test(test_no_early_cycle_with_memory_at_hand),
        cmocka_unit_test(test_memory_limit),
        cmocka_unit_test(test_memory_limit_goal_leaves_garbage_out),
        cmocka_unit_test(test_memory_limit_set_mid_sweep),
        cmocka_unit_test(test_trigger_positions),
        cmocka_unit_test(test_limit_releases_free_pages_at_collect),
        cmocka_unit_test(test_scavenger_releases_idle_pages),
        cmocka_unit_test(test_scavenger_releases_pages_after_the_last_cycle),
        cmocka_unit_test(test_forked_child_scavenges),
        cmocka_unit_test(test_large_object_counts_before_allocation),
        cmocka_unit_test(test_growth_releases_free_pages),
        cmocka_unit_test(test_trace_line),
        /* Last: it leaves a large free block at the top of the heap, into
         * which test_growth_releases_free_pages's allocation would grow,
         * reusing the resident pages that test expects to be released. */
        cmocka_unit_test(test_scavenger_runs_while_collecting),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
