/*
 * gc.c - initialization and the collection cycle [Go: mgc.go].
 *
 * spangc is a non-moving mark-sweep collector. Marking stops the world;
 * sweeping runs afterwards, lazily and concurrently with the program. A
 * cycle, run by whichever thread asks for it while holding world_lock:
 *
 *  1. Sweep termination. Sweep whatever the last cycle left unswept, and
 *     wait for sweeps in progress (gc/sweep.c). From here until step 5 no
 *     span is unswept, so every span's alloc state is exact.
 *  2. Stop the world (runtime/thread.c): every other registered thread
 *     is stopped by a signal outside any runtime section; the background
 *     sweeper is held off by sweep_state.world_stopped.
 *  3. Flush every thread's mcache back to mcentral, counting what was
 *     allocated from it.
 *  4. Mark (gc/mark.c) from the roots (gc/roots.c): data segments,
 *     stacks, registers, TLS, added ranges, specials.
 *  5. Mark termination: mheap.sweepgen += 2, which turns every span into
 *     "needs sweeping" and every swept mcentral list into an unswept one;
 *     the pacer sets next_gc from the bytes marked. Start the world.
 *  6. Sweep: the background sweeper thread, allocating threads (lazily, per
 *     span class) and the page heap (before it grows) sweep spans; each
 *     span is swept once, by the winner of the sweepgen CAS.
 * gc_collect also finishes step 6 before it returns, so statistics are
 * exact afterwards; automatic cycles leave it to the sweepers.
 *
 * Pacing [Go: GOGC]. A cycle starts when heap_live (bytes marked by the
 * last cycle plus everything handed out since) reaches
 *     next_gc = max(4 MiB, marked * (1 + gc_percent / 100)),
 * lowered, when a soft memory limit is set, so that the memory spangc maps
 * stays under 95 % of it, counting dead small objects as room (sweeping
 * frees their slots) and dead large ones as not (compute_next_gc says
 * why) (but never below marked + 1/8, so that a limit the live
 * heap exceeds cannot make every allocation collect). A large object
 * counts before it is allocated: the allocation that would cross the goal
 * collects first, so that the object can reuse the garbage, and the next
 * goal counts the object as marked [clox counts a request the same way].
 *
 * The early trigger [bdwgc: collect or expand]. A cycle also starts
 * three quarters of the way to the goal,
 *     early_gc = max(min_heap, marked + (next_gc - marked) * 3 / 4),
 * if the heap's committed memory is less than next_gc, so that reaching
 * the goal would take pages from the OS. Growing the heap raises the
 * resident set for good (until the scavenger gives pages back), while a
 * cycle costs only time, and the garbage of a phase that just ended (a
 * large temporary structure whose size set the goal) is found before the
 * heap grows around it. A heap that already has the memory for its goal
 * never collects early. An early cycle that finds no less live data than
 * the cycle before (a steady state, or a growing heap) disarms the trigger
 * for one cycle, so that the heap grows to its goal: otherwise collecting
 * early would keep the heap from ever having the memory for its goal,
 * and a steady state would collect at 1.75x its live data for good (a
 * third more cycles in allocbench's window test). A growing heap thus
 * alternates early and normal cycles. (Halfway, 1.5x, saved little more
 * in GCBench and cost binarytrees 4-8 % of its time.)
 *
 * The background worker (spangc's own thread, never stopped by signals and
 * holding no program pointers) sweeps after each cycle and then returns
 * free pages that stayed idle for scavenge_delay to the OS. Its mutex
 * bg.lock is a leaf: nothing else is taken while holding it.
 */
#include "gc.h"

#include "debug.h"
#include "finalizer.h"
#include "mark.h"
#include "options.h"
#include "profile.h"
#include "roots.h"
#include "sweep.h"
#include "verify.h"
#include "../runtime/mcentral.h"
#include "../runtime/metalloc.h"
#include "../runtime/mheap.h"
#include "../runtime/thread.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>

SPANGC_STATE gc_state spangc_gc = {.world_lock = SPANGC_SLOCK_INIT};
SPANGC_STATE void (*spangc_test_after_mark)(void);
SPANGC_STATE mstats spangc_mstats;

/* Mark in parallel only if the last cycle marked at least this much. */
#define PARALLEL_MARK_MIN ((uint64_t)4 << 20)

/* The background worker. lock guards cycles_seen and the wake-ups;
 * started (0, STARTING, 1) is atomic: whoever moves it from 0 starts the
 * worker. */
static SPANGC_STATE struct {
    pthread_mutex_t lock;
    pthread_cond_t wake;
    ao_word started;
    uint64_t cycles_seen; /* cycles the worker has started sweeping */
} bg = {.lock = PTHREAD_MUTEX_INITIALIZER, .wake = PTHREAD_COND_INITIALIZER};
#define BG_STARTING 2

/* Cycles that have stopped the world, for merging concurrent gc_collect
 * calls: a request made before a cycle stops the world is served by that
 * cycle, since marking starts only then. Written under world_lock, read
 * atomically. init_time: written by gc_init. */
static SPANGC_STATE ao_word cycles_stopped;
static SPANGC_STATE uint64_t init_time;

#define STR2(x) #x
#define STR(x) STR2(x)

const char *gc_version(void)
{
    return STR(SPANGC_VERSION_MAJOR) "." STR(SPANGC_VERSION_MINOR) "." STR(SPANGC_VERSION_PATCH);
}

/* ---- pacing ------------------------------------------------------------- */

/* The goal for `marked` bytes live, with `in_spans` bytes counted in
 * heap_live (small objects allocated, live or not, and the free slots of
 * cached spans; not the large objects allocated since the last mark) when
 * it is set. */
static uint64_t compute_next_gc(uint64_t marked, uint64_t in_spans)
{
    int percent = spangc_gc_percent();
    uint64_t limit = spangc_memory_limit();
    if (percent < 0 && !limit)
        return UINT64_MAX;
    uint64_t goal = UINT64_MAX;
    if (percent >= 0) {
        goal = marked + marked / 100 * (uint64_t)percent;
        if (goal < spangc_cfg.min_heap)
            goal = spangc_cfg.min_heap;
    }
    if (limit) {
        /* Memory that is mapped but that objects cannot use: metadata,
         * and the parts of in-use spans heap_live does not count (free
         * slots left by earlier sweeps, span tails). Not the small
         * objects allocated since the last cycle: at mark termination the
         * dead ones among them are still in their spans, about to be
         * swept, and their slots serve the next objects of their class.
         * Counting them made the goal swing, cycle after cycle, between a
         * heap that had allocated much (a goal near the floor) and one
         * that had not, and halved the room the limit leaves. A dead large
         * object is counted, as before: its pages go back to the page
         * heap, where they serve only requests that fit in the hole, and
         * with objects of megabytes under a limit of tens the heap grew
         * past the limit (tests/test_pacer.c). */
        uint64_t free_ready = (uint64_t)ao_load(&spangc_heap.free_pages) * PAGE_SIZE;
        uint64_t released = ao_load(&spangc_heap.released);
        free_ready = free_ready > released ? free_ready - released : 0;
        uint64_t mapped = spangc_mapped_bytes();
        uint64_t usable = free_ready + (in_spans > marked ? in_spans : marked);
        uint64_t overhead = mapped > usable ? mapped - usable : 0;
        /* Aim 5 % under the limit [Go: memoryLimitHeapGoalHeadroom]: the
         * heap passes its goal by the spans cached when it is reached and
         * by what is allocated before sweeping catches up. */
        uint64_t aim = limit - limit / 20;
        uint64_t limit_goal = aim > overhead ? aim - overhead : 0;
        uint64_t floor = marked + marked / 8;
        if (floor < marked + (256u << 10))
            floor = marked + (256u << 10);
        if (limit_goal < floor)
            limit_goal = floor;
        if (limit_goal < goal)
            goal = limit_goal;
    }
    return goal;
}

/* Whether the next cycle may start early (0 or 1): written at mark
 * termination (world_lock), read by set_goal, which gc_set_percent and
 * gc_set_memory_limit also call without world_lock: hence atomic. */
static SPANGC_STATE ao_word early_armed = 1;

/* heap_live without the large objects allocated since the last mark. */
static uint64_t heap_live_small(void)
{
    uint64_t live = ao_load(&spangc_mstats.heap_live);
    uint64_t large = ao_load(&spangc_mstats.large_since_mark);
    return live > large ? live - large : 0;
}

/* Set both triggers for a heap with `marked` bytes live (compute_next_gc
 * says what in_spans is). */
static void set_goal(uint64_t marked, uint64_t in_spans)
{
    uint64_t goal = compute_next_gc(marked, in_spans);
    uint64_t early = goal;
    if (ao_load(&early_armed) && goal != UINT64_MAX && goal > marked) {
        early = marked + (goal - marked) / 4 * 3;
        if (early < spangc_cfg.min_heap)
            early = goal < spangc_cfg.min_heap ? goal : spangc_cfg.min_heap;
    }
    ao_store(&spangc_gc.early_gc, early);
    ao_store(&spangc_gc.next_gc, goal);
}

bool spangc_gc_due_early(void)
{
    return spangc_heap_committed() < ao_load(&spangc_gc.next_gc);
}

/* ---- the background worker ---------------------------------------------- */

/* Return the free pages idle for scavenge_delay, and note when. The delay
 * is read here, not before a wait or a sweep: a program (a test) that
 * lengthens it expects no page of the old delay to go back after that. */
static void bg_scavenge(uint64_t *last)
{
    spangc_mheap_scavenge(ao_load(&spangc_cfg.scavenge_delay_ns), 0);
    *last = spangc_nanotime();
}

static void *bg_worker(void *arg)
{
    (void)arg;
    /* Process-directed signals are for the program's threads. */
    sigset_t all;
    sigfillset(&all);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    uint64_t last_scavenge = spangc_nanotime();
    pthread_mutex_lock(&bg.lock);
    for (;;) {
        uint64_t cycles = ao_load(&spangc_gc.num_gc);
        if (bg.cycles_seen != cycles) {
            bg.cycles_seen = cycles;
            pthread_mutex_unlock(&bg.lock);
            long n;
            unsigned swept = 0;
            while ((n = spangc_sweep_one()) >= 0)
                if (++swept % 64 == 0)
                    sched_yield();
            if (!spangc_sweep_unfinished())
                spangc_profile_flush(true);
            spangc_mheap_scavenge_to_limit();
            /* A program that collects more often than every delay / 2
             * never lets the idle wait below run out: scavenge here. */
            if (spangc_nanotime() - last_scavenge >= ao_load(&spangc_cfg.scavenge_delay_ns) / 2)
                bg_scavenge(&last_scavenge);
            pthread_mutex_lock(&bg.lock);
            continue;
        }
        /* Idle: wake when a cycle ends, or when free pages may have been
         * idle long enough to give back. A sweep left unfinished (another
         * thread still sweeps a span it claimed) may yet free pages that no
         * cycle will announce. */
        uint64_t delay = ao_load(&spangc_cfg.scavenge_delay_ns);
        bool idle_pages = ao_load(&spangc_heap.free_pages) * PAGE_SIZE >
                          ao_load(&spangc_heap.released);
        if (idle_pages || spangc_sweep_unfinished()) {
            struct timespec ts;
            clock_gettime(CLOCK_REALTIME, &ts);
            uint64_t wait = delay / 2 + 1000000;
            ts.tv_sec += (time_t)(wait / 1000000000u);
            ts.tv_nsec += (long)(wait % 1000000000u);
            if (ts.tv_nsec >= 1000000000) {
                ts.tv_sec++;
                ts.tv_nsec -= 1000000000;
            }
            pthread_cond_timedwait(&bg.wake, &bg.lock, &ts);
            if (bg.cycles_seen == ao_load(&spangc_gc.num_gc)) {
                pthread_mutex_unlock(&bg.lock);
                bg_scavenge(&last_scavenge);
                pthread_mutex_lock(&bg.lock);
            }
        } else {
            pthread_cond_wait(&bg.wake, &bg.lock);
        }
    }
    return NULL;
}

/* Start the worker, once (again in a fork child). Outside any runtime
 * section and lock: pthread_create takes the dynamic linker's lock, which
 * a thread stopped inside dlopen holds, and a thread that waits for it in
 * a runtime section would never acknowledge the stop. */
static void bg_start(void)
{
    if (ao_load_acq(&bg.started) || !ao_cas(&bg.started, 0, BG_STARTING))
        return;
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    bool ok = pthread_create(&th, &attr, bg_worker, NULL) == 0;
    pthread_attr_destroy(&attr);
    ao_store_rel(&bg.started, ok ? 1 : 0); /* on failure, retry next cycle */
}

static void bg_wake(void)
{
    if (!spangc_cfg.background_sweep)
        return;
    bg_start();
    /* A runtime section: a thread stopped while holding bg.lock would
     * stall the worker for the whole stop. */
    spangc_thread *t = runtime_enter_self();
    pthread_mutex_lock(&bg.lock);
    pthread_cond_signal(&bg.wake);
    pthread_mutex_unlock(&bg.lock);
    runtime_leave_self(t);
}

/* ---- the cycle ---------------------------------------------------------- */

static void trace_cycle(uint64_t n, uint64_t pause, uint64_t before, uint64_t marked,
                        uint64_t goal, size_t left_unswept, size_t nthreads)
{
    double mib = 1.0 / (1 << 20);
    double at = (double)(spangc_nanotime() - init_time) / 1e9;
    fprintf(stderr,
            "gc %llu @%.3fs: pause %.3f ms, heap %.1f -> %.1f MiB live, goal %.1f MiB, "
            "%zu threads, %zu spans left to sweep at start\n",
            (unsigned long long)n, at, (double)pause / 1e6, (double)before * mib,
            (double)marked * mib, goal == UINT64_MAX ? 0.0 : (double)goal * mib, nthreads,
            left_unswept);
}

/* Stop every registered thread and hold the background sweeper off
 * (gc/sweep.c explains the handshake). The caller holds world_lock. */
static void stop_world_and_sweeper(bool for_fork)
{
    spangc_stop_world(for_fork);
    /* A read-modify-write, so that it is ordered before the reads of
     * active below (the sweeper does the mirror image: add to active,
     * then read world_stopped). */
    ao_add(&spangc_sweep.world_stopped, 1);
    while (ao_load_acq(&spangc_sweep.active) != 0)
        sched_yield();
}

static void start_world_and_sweeper(void)
{
    ao_sub(&spangc_sweep.world_stopped, 1);
    spangc_start_world();
}

/* Stop the world with the installed listing of the roots current (gc/roots.c,
 * "Listing"). Each try lists the roots first, with no spangc lock held,
 * and installs the listing under world_lock. If a library was opened or
 * closed since, restart the world and return false: the caller lets
 * world_lock go and tries again. After a few tries, list from inside the stop
 * (spangc_roots_list_stopped), so that a program that loads libraries
 * without pause cannot hold the collection off; that listing only fails
 * for a library whose headers are not where a shared object's are, and
 * then the tries go on. The caller holds world_lock. */
#define LISTING_TRIES 4

static bool stop_world_listed(int tries)
{
    if (spangc_test_before_stop)
        spangc_test_before_stop();
    stop_world_and_sweeper(false);
    if (!spangc_roots_changed() || (tries >= LISTING_TRIES && spangc_roots_list_stopped()))
        return true;
    start_world_and_sweeper();
    return false;
}

/* Waking mark workers costs more than marking a small heap alone. */
static bool mark_in_parallel(void)
{
    return ao_load(&spangc_gc.heap_marked) >= PARALLEL_MARK_MIN;
}

/* Mark with the world stopped; returns the bytes marked. */
static uint64_t mark_phase(bool parallel)
{
    spangc_mark_begin(parallel);
    spangc_roots_mark();
    uint64_t marked = spangc_mark_finish();
    if (spangc_mark_overflowed())
        ao_add(&spangc_gc.mark_overflows, 1);
    return marked;
}

/* Steps 1-5 of the header comment. The caller holds world_lock. extra:
 * the bytes of a large object about to be allocated, which the next goal
 * counts as live. tries: of stop_world_listed. False if the listing of
 * the roots was out of date: nothing was collected. */
static bool run_cycle(bool forced, uint64_t extra, int tries)
{
    size_t left_unswept = ao_load(&spangc_sweep.unswept);
    spangc_sweep_finish();
    bool started_early =
        !forced && ao_load(&spangc_mstats.heap_live) + extra < ao_load(&spangc_gc.next_gc);
    bool parallel = mark_in_parallel();
    if (parallel)
        spangc_mark_start_workers();

    uint64_t t0 = spangc_nanotime();
    if (!stop_world_listed(tries))
        return false;
    /* Only a stop that goes on to mark counts: collect_now compares it
     * with num_gc. */
    ao_add(&cycles_stopped, 1);
    spangc_threads_flush_caches();
    spangc_mheap_free_retired_bits();
    /* After the flush, which adds what each thread counted on its own
     * (runtime/mcache.h). */
    uint64_t before = ao_load(&spangc_mstats.heap_alloc);
    size_t nthreads = spangc_threads_count_stopped();
    if (spangc_cfg.verify)
        spangc_verify_heap_stopped();

    uint64_t marked = mark_phase(parallel);
    if (spangc_test_after_mark)
        spangc_test_after_mark();
    if (spangc_cfg.verify)
        spangc_debug_checkmark();

    /* Mark termination. */
    uint64_t prev_marked = ao_load(&spangc_gc.heap_marked);
    ao_store(&early_armed, !started_early || marked < prev_marked - prev_marked / 8);
    ao_store(&spangc_gc.heap_marked, marked);
    uint64_t in_spans = heap_live_small(); /* before both are reset */
    ao_store(&spangc_mstats.heap_live, marked);
    ao_store(&spangc_mstats.large_since_mark, 0);
    ao_store(&spangc_gc.goal_basis, marked + extra);
    set_goal(marked + extra, in_spans + extra);
    ao_store(&spangc_sweep.unswept, ao_load(&spangc_heap.nspans_inuse));
    ao_store(&spangc_sweep.cursor, 0);
    ao_store_rel(&spangc_heap.sweepgen, ao_load(&spangc_heap.sweepgen) + 2);
    spangc_profile_next_cycle();
    start_world_and_sweeper();
    uint64_t pause = spangc_nanotime() - t0;
    spangc_profile_flush(false);

    ao_add(&spangc_gc.pause_total_ns, pause);
    ao_store(&spangc_gc.last_pause_ns, pause);
    if (pause > ao_load(&spangc_gc.max_pause_ns))
        ao_store(&spangc_gc.max_pause_ns, pause);
    if (forced)
        ao_add(&spangc_gc.num_forced_gc, 1);
    uint64_t n = ao_add(&spangc_gc.num_gc, 1) + 1;
    if (spangc_cfg.trace)
        trace_cycle(n, pause, before, marked, ao_load(&spangc_gc.next_gc), left_unswept, nthreads);
    return true;
}

/* Zero the dead stack below the caller [bdwgc: GC_clear_stack]. Called
 * on the way in to a collection, so that the frames of the collection,
 * which are laid over it and scanned in part (the entry function's, see
 * SPANGC_SAVE_CONTEXT), hold no stale address left there by a call that
 * has returned; and on the way out of spangc's deep paths (gc_init, a
 * collection), whose frames held heap addresses: the program's later
 * frames reuse that stack, and a slot they never write would keep alive
 * whatever object then lives at the stale address. The first objects
 * allocated sit near the first arena's base, addresses gc_init handles
 * many times. Not instrumented by AddressSanitizer, which would put the
 * array below a redzone and leave the top 272 bytes of the frame, where
 * the collection's entry frame then lies, uncleared (a stale pointer
 * there kept a Lox object alive under ASan).
 *
 * Up to 16 KiB, but never closer than DEAD_STACK_SPARE to the end of the
 * thread's stack, which may be as small as PTHREAD_STACK_MIN (16 KiB): a
 * signal frame and its handler need room below the array, since a stop
 * may arrive while it is cleared. Only a registered thread's stack is
 * scanned, and only its bounds are known: on any other thread, or on a
 * stack of the program's own (a coroutine's, threads.md), nothing is
 * cleared. */
#define DEAD_STACK_WORDS 2048
#define DEAD_STACK_SPARE (8 * 1024)
static NOINLINE __attribute__((no_sanitize("address"))) void clear_dead_stack(void)
{
    spangc_thread *t = spangc_self;
    uintptr_t here = (uintptr_t)__builtin_frame_address(0);
    if (!t || here >= t->stack_hi || here < t->stack_lo + DEAD_STACK_SPARE)
        return;
    size_t n = (here - t->stack_lo - DEAD_STACK_SPARE) / sizeof(uintptr_t);
    volatile uintptr_t dead[n < DEAD_STACK_WORDS ? n : DEAD_STACK_WORDS];
    for (size_t i = 0; i < sizeof dead / sizeof dead[0]; i++)
        dead[i] = 0;
}

/* world_lock, and the mark that lets its holder take inner locks outside
 * a runtime section (spangc_lock_check_section): with world_lock held, no
 * one else can stop the world. */
static void world_lock_acquire(void)
{
    slock_acquire(&spangc_gc.world_lock);
    if (spangc_self)
        spangc_self->holds_world = true;
}

static void world_lock_release(void)
{
    if (spangc_self)
        spangc_self->holds_world = false;
    slock_release(&spangc_gc.world_lock);
}

/* List the roots, with no spangc lock held (gc/roots.c, "Listing"), then
 * take world_lock and install the listing. */
static void world_lock_acquire_listed(void)
{
    spangc_listing *fresh = spangc_roots_list();
    world_lock_acquire();
    if (fresh)
        spangc_roots_install(fresh);
}

static NOINLINE void collect_now(enum collect_kind kind, uint64_t extra)
{
    /* A cycle that stops the world after this point satisfies the request:
     * if two threads ask at once, the second finds the first's cycle done. */
    uint64_t want = ao_load(&cycles_stopped) + 1;
    uint64_t seen = ao_load(&spangc_gc.num_gc);
    spangc_thread *self = spangc_self;
    for (int tries = 1;; tries++) {
        world_lock_acquire_listed();
        if (self)
            SPANGC_SAVE_CONTEXT(self);
        bool done = true;
        if (kind == COLLECT_AUTO) {
            /* Another thread may have collected while we waited. */
            if (ao_load(&spangc_gc.num_gc) == seen && spangc_gc_due(extra))
                done = run_cycle(false, extra, tries);
        } else if (ao_load(&spangc_gc.num_gc) < want) {
            done = run_cycle(kind == COLLECT_FULL, 0, tries);
        }
        world_lock_release();
        if (done)
            break;
    }
    bg_wake();
    spangc_finalizer_thread_start();
    if (kind == COLLECT_FULL) {
        spangc_sweep_finish();
        spangc_profile_flush(true);
        spangc_mheap_scavenge_to_limit();
    }
    SPANGC_KEEP_FRAME();
}

static void collect(enum collect_kind kind, uint64_t extra)
{
    if (ao_load(&spangc_gc.initialized) != 2)
        return;
    clear_dead_stack();
    collect_now(kind, extra);
    clear_dead_stack();
}

void spangc_collect(enum collect_kind kind)
{
    collect(kind, 0);
}

void spangc_collect_auto(uint64_t extra)
{
    collect(COLLECT_AUTO, extra);
}

static NOINLINE void with_world_stopped(void (*fn)(void *arg), void *arg)
{
    spangc_thread *self = spangc_self;
    /* fn may walk the roots (spangc_debug_explain): the listing must be
     * current, as for a cycle. */
    for (int tries = 1;; tries++) {
        world_lock_acquire_listed();
        if (self)
            SPANGC_SAVE_CONTEXT(self);
        spangc_sweep_finish();
        if (stop_world_listed(tries))
            break;
        world_lock_release();
    }
    spangc_threads_flush_caches();
    fn(arg);
    start_world_and_sweeper();
    world_lock_release();
    SPANGC_KEEP_FRAME();
}

void spangc_with_world_stopped(void (*fn)(void *arg), void *arg)
{
    clear_dead_stack();
    with_world_stopped(fn, arg);
}

void gc_collect(void)
{
    spangc_collect(COLLECT_FULL);
}

void gc_disable(void)
{
    ao_add(&spangc_gc.disabled, 1);
}

void gc_enable(void)
{
    for (;;) {
        uintptr_t d = ao_load(&spangc_gc.disabled);
        if (d == 0 || ao_cas(&spangc_gc.disabled, d, d - 1))
            return;
    }
}

/* The goal after an option changed, for the heap marked by the last
 * cycle. Under a memory limit it depends on how much of the heap is in
 * use, and while the last cycle's sweep is unfinished the dead objects of
 * unswept spans count as used: heap_live no longer counts them, and no
 * free slot or free page holds them yet. The goal fell to its floor, or
 * not, with the background sweeper's progress (a limit lowered right
 * after a collection). So the sweep is finished first, as the next cycle
 * would; that takes at most one sweep of the heap, and the setters are
 * rare. */
static void reset_goal(void)
{
    if (spangc_memory_limit())
        spangc_sweep_finish();
    set_goal(ao_load(&spangc_gc.goal_basis), heap_live_small());
}

/* Before gc_init the setters do nothing: gc_init sets every option, so
 * a value stored earlier would be lost without a word. */
static bool initialized(void)
{
    return ao_load(&spangc_gc.initialized) == 2;
}

int gc_set_percent(int percent)
{
    if (!initialized())
        return 0;
    int old = spangc_gc_percent();
    ao_store(&spangc_cfg.gc_percent, (uintptr_t)(intptr_t)(percent < 0 ? -1 : percent));
    reset_goal();
    return old;
}

uint64_t gc_set_memory_limit(uint64_t bytes)
{
    if (!initialized())
        return 0;
    uint64_t old = ao_load(&spangc_cfg.memory_limit);
    ao_store(&spangc_cfg.memory_limit, bytes);
    reset_goal();
    return old;
}

int gc_register_thread(void)
{
    if (!ao_load(&spangc_gc.initialized))
        return -EPERM;
    return spangc_thread_register();
}

int gc_unregister_thread(void)
{
    return spangc_thread_unregister();
}

/* ---- fork ----------------------------------------------------------------
 * prepare: no cycle may be running, no thread may be inside spangc, and no
 * spangc lock may be held by a thread that will not exist in the child. So
 * take world_lock, stop the world for fork (which waits for runtime
 * sections to end, and holds threads outside spangc at their next one
 * rather than where they are: runtime/thread.c, "fork"), hold off the
 * background worker's sweeping, and take the locks that
 * someone outside a runtime section may still hold: roots_lock and
 * meta_lock (unregistered threads call gc_add_roots and gc_type_new) and
 * mheap.lock (the worker's scavenger). mcentral locks are taken only in
 * runtime sections or while sweeping, so none is held now; the child
 * simply re-initializes them. The worker itself does not exist in the
 * child: its lock and condition are re-initialized there and it is
 * restarted on demand. */

static void atfork_prepare(void)
{
    spangc_threads_dl_fork_block();
    world_lock_acquire();
    stop_world_and_sweeper(true);
    spangc_roots_lock();
    spangc_mheap_lock_all();
    spangc_profile_lock();
    spangc_finq_lock();
    spangc_meta_lock_all();
}

static void atfork_parent(void)
{
    spangc_meta_unlock_all();
    spangc_finq_unlock();
    spangc_profile_unlock();
    spangc_mheap_unlock_all();
    spangc_roots_unlock();
    start_world_and_sweeper();
    world_lock_release();
    spangc_threads_dl_fork_unblock();
}

static void atfork_child(void)
{
    /* The locks taken in atfork_prepare are held by this thread, the only
     * one in the child: release them (re-initializing a held mutex is
     * undefined, and ThreadSanitizer then reports the next lock of it as a
     * double lock). */
    spangc_meta_unlock_all();
    spangc_finq_unlock();
    spangc_profile_unlock();
    spangc_mheap_unlock_all();
    spangc_roots_unlock();
    spangc_mcentral_reinit_child();
    spangc_finq_reinit_child();
    spangc_mark_reinit_child();
    pthread_mutex_init(&bg.lock, NULL);
    pthread_cond_init(&bg.wake, NULL);
    ao_store(&bg.started, 0); /* threads do not survive fork; restarted lazily */
    spangc_threads_after_fork_child();
    ao_store(&spangc_sweep.world_stopped, 0);
    ao_store(&spangc_sweep.active, 0);
    if (spangc_self)
        spangc_self->holds_world = false;
    slock_init(&spangc_gc.world_lock);
}

/* ---- initialization ------------------------------------------------------ */

static NOINLINE int init(const gc_options *opts)
{
    if (!ao_cas(&spangc_gc.initialized, 0, 1))
        return -EEXIST;
    int err = spangc_options_load(opts);
    if (!err) {
        init_time = spangc_nanotime();
        spangc_mheap_init();
        err = spangc_roots_init();
    }
    if (!err) {
        spangc_mcentral_init();
        set_goal(0, 0);
        spangc_debug_init();
        err = spangc_threads_init(spangc_cfg.suspend_signal);
    }
    if (!err && pthread_atfork(atfork_prepare, atfork_parent, atfork_child) != 0)
        err = -ENOMEM;
    if (err) {
        ao_store(&spangc_gc.initialized, 0);
        return err;
    }
    ao_store(&spangc_gc.initialized, 2);
    spangc_finalizer_thread_start();
    return 0;
}

int gc_init(const gc_options *opts)
{
    spangc_cancel_hold(); /* it reads files: no cancellation point */
    int err = init(opts);
    clear_dead_stack();
    spangc_cancel_restore();
    return err;
}
