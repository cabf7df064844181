/*
 * test_finalizer.c - finalizers: exactly once, never for reachable
 * objects, resurrection, dependency order, queue order, a call that
 * returns while more are queued, cycles, a finalizer that allocates and
 * collects, removal, bad arguments, and the finalizer thread.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>

#include "atomic.h"
#include "options.h"
#include "finalizer.h"
#include "gc.h"
#include "sweep.h"
#include "testutil.h"

static int setup(void **state)
{
    (void)state;
    /* The environment counts: ctest runs these tests again with
     * GC_DEBUG=verify,poison. */
    return gc_init(NULL);
}

/* volatile: stores to a root must not be optimized away. */
static void *volatile global_root;

/* ---- exactly once, over many objects --------------------------------------- */

enum { MANY = 100000 };
static unsigned char calls[MANY];
static ao_word total_calls;

static void count_call(void *obj, void *arg)
{
    size_t i = (size_t)(uintptr_t)arg;
    /* The object is intact when its finalizer runs. */
    if (*(size_t *)obj != i)
        calls[i] = 100;
    calls[i]++;
    ao_add(&total_calls, 1);
}

/* Each object has a root word of its own (rooted_set): held in one heap
 * array, all of them stayed reachable whenever a stale stack word pointed
 * anywhere into that array's 800 KB (1-2 % of the ASan runs with
 * GC_DEBUG=verify,poison), where now such a word holds one object. */
static rooted_set many;

static __attribute__((noinline)) void make_finalizable(size_t n)
{
    assert_true(rooted_init(&many, n));
    for (size_t i = 0; i < n; i++) {
        size_t *obj = gc_alloc(32);
        *obj = i;
        assert_int_equal(gc_set_finalizer(obj, count_call, (void *)(uintptr_t)i), 0);
        rooted_set_obj(&many, i, obj);
    }
}

static void test_exactly_once(void **state)
{
    (void)state;
    make_finalizable(MANY);
    collect();
    assert_int_equal(gc_run_finalizers(), 0); /* all reachable */
    rooted_drop(&many);
    collect();
    size_t ran = gc_run_finalizers();
    /* More cycles free the objects and run nothing again; one a stale
     * stack word held may run now. */
    collect();
    collect();
    ran += gc_run_finalizers();
    size_t once = 0;
    for (size_t i = 0; i < MANY; i++) {
        assert_true(calls[i] <= 1);
        once += calls[i];
        if (calls[i] == 0) /* not run: still allocated, and held by the stack alone */
            assert_int_equal(fate_of(many.hidden[i], HERE), HELD_BY_STACK);
    }
    assert_int_equal(once, ran);
    assert_int_equal(ao_load(&total_calls), ran);
    assert_true(ran >= MANY - 4);
    assert_int_equal(gc_run_finalizers(), 0); /* one load when empty */
    rooted_destroy(&many);
}

/* ---- never for reachable objects --------------------------------------- */

static ao_word reachable_calls;

static void must_not_run(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    ao_add(&reachable_calls, 1);
}

static void test_not_for_reachable(void **state)
{
    (void)state;
    void **keep = gc_alloc(100 * sizeof(void *));
    global_root = keep;
    for (int i = 0; i < 100; i++) {
        keep[i] = gc_alloc(48);
        gc_set_finalizer(keep[i], must_not_run, NULL);
    }
    for (int round = 0; round < 20; round++) {
        for (int i = 0; i < 20000; i++)
            (void)!gc_alloc(64);
        collect();
        gc_run_finalizers();
    }
    assert_int_equal(ao_load(&reachable_calls), 0);
    for (int i = 0; i < 100; i++)
        assert_int_equal(gc_set_finalizer(keep[i], NULL, NULL), 0);
    global_root = NULL;
}

/* ---- resurrection ----------------------------------------------------- */

static void *resurrected;
static int resurrect_calls;

static void resurrect(void *obj, void *arg)
{
    (void)arg;
    resurrect_calls++;
    resurrected = obj; /* alive again */
}

struct pair {
    char *name;
    long value;
};

static __attribute__((noinline)) uintptr_t make_resurrectable(void)
{
    struct pair *p = gc_alloc(sizeof *p);
    p->name = gc_alloc_atomic(16);
    strcpy(p->name, "phoenix");
    p->value = 42;
    gc_set_finalizer(p, resurrect, NULL);
    return HIDE(p);
}

/* What the resurrected object points to survived with it. A helper, so
 * that no register or slot of the test's own frame keeps the object: a
 * compiler drops a "p = NULL" that nothing reads. */
static __attribute__((noinline)) void check_resurrected(void)
{
    struct pair *p = resurrected;
    /* Still allocated, not only unchanged: a freed slot keeps its bytes
     * until it is reused or poisoned. */
    assert_ptr_equal(gc_base(p->name), p->name);
    assert_string_equal(p->name, "phoenix");
    assert_int_equal(p->value, 42);
}

static void test_resurrection(void **state)
{
    (void)state;
    uintptr_t h = make_resurrectable();
    collect();
    assert_int_equal(gc_run_finalizers(), 1);
    assert_ptr_equal(resurrected, SHOW(h));
    check_resurrected();
    collect();
    assert_true(alive(h));
    /* Unreachable again: freed, and the finalizer does not run twice. */
    resurrected = NULL;
    collect();
    collect();
    assert_int_equal(gc_run_finalizers(), 0);
    assert_dead(h);
    assert_int_equal(resurrect_calls, 1);
}

/* ---- dependency order and cycles ------------------------------------------ */

static int order[4], norder;

static void record_order(void *obj, void *arg)
{
    (void)obj;
    order[norder++] = (int)(intptr_t)arg;
}

static __attribute__((noinline)) void make_chain(void)
{
    void **a = gc_alloc(2 * sizeof(void *));
    void **b = gc_alloc(2 * sizeof(void *));
    a[0] = b; /* A -> B */
    gc_set_finalizer(a, record_order, (void *)1);
    gc_set_finalizer(b, record_order, (void *)2);
}

static void test_dependency_order(void **state)
{
    (void)state;
    norder = 0;
    make_chain();
    collect();
    assert_int_equal(gc_run_finalizers(), 1);
    assert_int_equal(order[0], 1); /* A first: B is still referenced */
    collect();
    assert_int_equal(gc_run_finalizers(), 1);
    assert_int_equal(order[1], 2);
}

static int cycle_calls;

static void cycle_finalizer(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    cycle_calls++;
}

static __attribute__((noinline)) uintptr_t make_cycle(void)
{
    void **a = gc_alloc(2 * sizeof(void *));
    void **b = gc_alloc(2 * sizeof(void *));
    a[0] = b;
    b[0] = a;
    gc_set_finalizer(a, cycle_finalizer, NULL);
    gc_set_finalizer(b, cycle_finalizer, NULL);
    return HIDE(a);
}

/* A finalizer's arg is kept alive by the finalizer, as long as the
 * finalizer is set and then while it waits in the queue, though nothing
 * else refers to it: it is still there, unfreed, when the finalizer gets
 * it. */
static void *volatile arg_owner;
static uintptr_t arg_seen; /* hidden */

static void check_arg(void *obj, void *arg)
{
    (void)obj;
    arg_seen = HIDE(arg);
}

/* On a thread that exits, so that no stale copy of arg's address stays
 * in a live frame; neither object is the first of its span, whose address
 * earlier tests' objects left in words that stay scanned. */
static void make_owner_with_arg(void *out)
{
    (void)!gc_alloc(32);
    void *obj = gc_alloc(32);
    (void)!gc_alloc(64);
    void *arg = gc_alloc(64);
    memset(arg, 0x5a, 64);
    assert_int_equal(gc_set_finalizer(obj, check_arg, arg), 0);
    arg_owner = obj;
    *(uintptr_t *)out = HIDE(arg);
}

static void test_arg_kept_alive(void **state)
{
    (void)state;
    uintptr_t arg = 0;
    run_on_a_registered_thread(make_owner_with_arg, &arg);
    for (int i = 0; i < 3; i++) {
        collect();
        assert_true(alive(arg));
        assert_int_equal(((unsigned char *)SHOW(arg))[63], 0x5a);
    }
    arg_owner = NULL;
    collect(); /* the finalizer is queued: the queue keeps arg alive */
    for (int i = 0; i < 2; i++) {
        collect();
        assert_true(alive(arg));
        assert_int_equal(((unsigned char *)SHOW(arg))[63], 0x5a);
    }
    gc_run_finalizers();
    assert_int_equal(arg_seen, arg);
    arg_seen = 0;
}

/* A cycle through finalizable objects is never collected (documented in
 * spangc.h, as in Go): each keeps the other alive. */
static void test_cycle_is_not_collected(void **state)
{
    (void)state;
    uintptr_t h = make_cycle();
    for (int i = 0; i < 3; i++) {
        collect();
        gc_run_finalizers();
    }
    assert_int_equal(cycle_calls, 0);
    assert_true(alive(h));
}

/* ---- queue order, and what one gc_run_finalizers call runs ---------------- */

static __attribute__((noinline)) void make_recorded(intptr_t tag)
{
    gc_set_finalizer(gc_alloc(32), record_order, (void *)tag);
}

/* Finalizers run in the order they were queued: one that became ready in
 * an earlier cycle runs before one of a later cycle. */
static void test_queue_is_first_in_first_out(void **state)
{
    (void)state;
    norder = 0;
    make_recorded(1);
    collect();
    make_recorded(2);
    collect();
    assert_int_equal(gc_run_finalizers(), 2);
    assert_int_equal(order[0], 1);
    assert_int_equal(order[1], 2);
}

enum { QUEUED_DURING = 64 };
static int later_calls;

static void count_later(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    later_calls++;
}

static __attribute__((noinline)) void make_dead_finalizable(int n)
{
    for (int i = 0; i < n; i++)
        gc_set_finalizer(gc_alloc(32), count_later, NULL);
}

/* Queues more finalizers while it runs, as another thread's cycle would. */
static void queue_more(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    make_dead_finalizable(QUEUED_DURING);
    gc_collect();
}

static __attribute__((noinline)) void make_queue_more(void)
{
    gc_set_finalizer(gc_alloc(32), queue_more, NULL);
}

/* A call runs only what was queued when it began, so it returns even while
 * finalizers keep coming; the rest wait for the next call. */
static void test_run_returns_while_more_are_queued(void **state)
{
    (void)state;
    later_calls = 0;
    make_queue_more();
    collect();
    assert_int_equal(gc_run_finalizers(), 1);
    assert_int_equal(later_calls, 0);
    size_t ran = gc_run_finalizers(); /* queued during the first call */
    assert_true(ran > 0 && ran <= QUEUED_DURING);
    assert_int_equal(later_calls, (int)ran);
}

/* ---- a finalizer that allocates and collects ----------------------------- */

static int busy_calls;

static void busy_finalizer(void *obj, void *arg)
{
    (void)arg;
    busy_calls++;
    void **fresh = gc_alloc(64);
    fresh[0] = obj; /* keeps obj alive for a while */
    gc_collect();
    void *again = gc_alloc(32);
    if (busy_calls < 3)
        gc_set_finalizer(again, busy_finalizer, NULL); /* a finalizer sets one */
    assert_ptr_equal(gc_base(fresh[0]), obj);
}

static void test_finalizer_allocates_and_collects(void **state)
{
    (void)state;
    (void)!gc_set_finalizer(gc_alloc(32), busy_finalizer, NULL);
    for (int i = 0; i < 6 && busy_calls < 3; i++) {
        collect();
        gc_run_finalizers();
    }
    assert_int_equal(busy_calls, 3);
}

/* ---- removal and bad arguments ------------------------------------------- */

static int removed_calls;

static void removed_finalizer(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    removed_calls++;
}

static __attribute__((noinline)) void make_and_remove(void)
{
    void *obj = gc_alloc(40);
    assert_int_equal(gc_set_finalizer(obj, removed_finalizer, NULL), 0);
    assert_int_equal(gc_set_finalizer(obj, removed_finalizer, NULL), -EEXIST);
    assert_int_equal(gc_set_finalizer(obj, NULL, NULL), 0);
    assert_int_equal(gc_set_finalizer(obj, NULL, NULL), -ENOENT);
}

static void test_removal(void **state)
{
    (void)state;
    make_and_remove();
    collect();
    assert_int_equal(gc_run_finalizers(), 0);
    assert_int_equal(removed_calls, 0);
}

static int static_object;

static void test_bad_arguments(void **state)
{
    (void)state;
    int local;
    void *m = malloc(32);
    char *obj = gc_alloc(64);
    char *big = gc_alloc(100000);
    assert_int_equal(gc_set_finalizer(NULL, removed_finalizer, NULL), -EINVAL);
    assert_int_equal(gc_set_finalizer(obj + 8, removed_finalizer, NULL), -EINVAL);
    assert_int_equal(gc_set_finalizer(big + 4096, removed_finalizer, NULL), -EINVAL);
    assert_int_equal(gc_set_finalizer(&local, removed_finalizer, NULL), -EINVAL);
    assert_int_equal(gc_set_finalizer(&static_object, removed_finalizer, NULL), -EINVAL);
    assert_int_equal(gc_set_finalizer(m, removed_finalizer, NULL), -EINVAL);
    assert_int_equal(gc_set_finalizer(m, NULL, NULL), -EINVAL);
    /* A large object can have one. */
    assert_int_equal(gc_set_finalizer(big, removed_finalizer, NULL), 0);
    assert_int_equal(gc_set_finalizer(big, NULL, NULL), 0);
    free(m);
}

/* ---- the finalizer thread -------------------------------------------------- */

static ao_word thread_calls;
static pthread_t finalizer_tid;

static void on_thread(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    finalizer_tid = pthread_self();
    (void)!gc_alloc(16); /* it is a registered thread */
    ao_add(&thread_calls, 1);
}

enum { FOR_THREAD = 1000 };
static uintptr_t for_thread[FOR_THREAD]; /* HIDE()d: not roots */

static __attribute__((noinline)) void make_for_thread(void)
{
    for (int i = 0; i < FOR_THREAD; i++) {
        void *obj = gc_alloc(24);
        for_thread[i] = HIDE(obj);
        gc_set_finalizer(obj, on_thread, NULL);
    }
}

/* The threads of this process, from /proc. */
static int count_tasks(void)
{
    DIR *d = opendir("/proc/self/task");
    assert_non_null(d);
    int n = 0;
    for (struct dirent *e; (e = readdir(d));)
        n += e->d_name[0] != '.';
    closedir(d);
    return n;
}

/* A second thread finishing a cycle while the first is creating the
 * finalizer thread (as a forked child's threads do) must not create
 * another. */
static void start_again(void)
{
    spangc_test_in_finalizer_start = NULL;
    spangc_finalizer_thread_start();
}

static void test_finalizer_thread(void **state)
{
    (void)state;
    collect(); /* the background sweeper is up: only ours can add a task */
    int tasks = count_tasks();
    spangc_cfg.finalizer_thread = true;
    spangc_test_in_finalizer_start = start_again;
    spangc_finalizer_thread_start();
    assert_null(spangc_test_in_finalizer_start);
    assert_int_equal(count_tasks(), tasks + 1);
    make_for_thread();
    collect();
    for (int i = 0; i < 5000 && ao_load_acq(&thread_calls) < FOR_THREAD; i++) { /* 10 s at most */
        struct timespec ts = {0, 2 * 1000000};
        nanosleep(&ts, NULL);
    }
    /* Acquire: finalizer_tid was written before the last increment. */
    size_t ran = ao_load_acq(&thread_calls);
    assert_true(ran > 0);
    assert_false(pthread_equal(finalizer_tid, pthread_self()));
    if (ran < FOR_THREAD) {
        /* The only excuse for a finalizer that did not run: its object
         * is still reachable from a stale word on a thread's stack. The
         * finalizer thread's registers count: stopped by the signal,
         * they are saved in its stack, and under valgrind (in a chroot,
         * not on the development machine) an idle finalizer thread kept
         * the address of a span's first object in a vector register. */
        collect(); /* frees the objects whose finalizers ran */
        size_t held = 0;
        for (int i = 0; i < FOR_THREAD; i++) {
            if (alive(for_thread[i])) {
                assert_int_equal(fate_of(for_thread[i], HERE), HELD_BY_STACK);
                held++;
            }
        }
        assert_int_equal(ran + held, FOR_THREAD);
        assert_true(held <= 2);
    }
}

/* Finalizers that a sweep queues after the world has restarted (lazy or
 * background sweeping) wake the finalizer thread at once: it is not left
 * waiting for the next stop of the world, which in an idle program never
 * comes. The cycle here leaves all sweeping to later, and the sweep comes
 * 100 ms later, when the finalizer thread waits again. */
static void test_finalizer_thread_woken_by_a_later_sweep(void **state)
{
    (void)state;
    spangc_cfg.finalizer_thread = true;
    spangc_finalizer_thread_start(); /* if test_finalizer_thread did not */
    uintptr_t before = ao_load_acq(&thread_calls);
    make_for_thread();
    scrub_stack();
    spangc_cfg.background_sweep = false;
    spangc_collect(COLLECT_STRESS); /* marks, and sweeps nothing */
    struct timespec pause = {0, 100 * 1000000};
    nanosleep(&pause, NULL);
    spangc_sweep_finish(); /* queues the finalizers, the world running */
    spangc_cfg.background_sweep = true;
    for (int i = 0; i < 5000 && ao_load_acq(&thread_calls) - before < FOR_THREAD - 2; i++) {
        struct timespec ts = {0, 2 * 1000000}; /* 10 s at most */
        nanosleep(&ts, NULL);
    }
    assert_true(ao_load_acq(&thread_calls) - before >= FOR_THREAD - 2);
}

/* A child forked while the finalizer thread runs has no such thread (only
 * the forking thread survives fork): its first cycle starts one of its
 * own, which runs the child's finalizers with no gc_run_finalizers call. */
static void test_finalizer_thread_after_fork(void **state)
{
    (void)state;
#ifdef SPANGC_TSAN
    skip(); /* ThreadSanitizer's fork children (docs/threads.md) */
#endif
    spangc_cfg.finalizer_thread = true;
    spangc_finalizer_thread_start(); /* if test_finalizer_thread did not */
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        ao_store(&thread_calls, 0);
        make_for_thread();
        gc_collect();
        for (int i = 0; i < 5000 && ao_load_acq(&thread_calls) == 0; i++) { /* 10 s */
            struct timespec ts = {0, 2 * 1000000};
            nanosleep(&ts, NULL);
        }
        _exit(ao_load_acq(&thread_calls) > 0 && !pthread_equal(finalizer_tid, pthread_self()) ? 0
                                                                                              : 1);
    }
    assert_child_succeeded(pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exactly_once),
        cmocka_unit_test(test_not_for_reachable),
        cmocka_unit_test(test_resurrection),
        cmocka_unit_test(test_dependency_order),
        cmocka_unit_test(test_queue_is_first_in_first_out),
        cmocka_unit_test(test_run_returns_while_more_are_queued),
        cmocka_unit_test(test_cycle_is_not_collected),
        cmocka_unit_test(test_arg_kept_alive),
        cmocka_unit_test(test_finalizer_allocates_and_collects),
        cmocka_unit_test(test_removal),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_finalizer_thread),
        cmocka_unit_test(test_finalizer_thread_woken_by_a_later_sweep),
        cmocka_unit_test(test_finalizer_thread_after_fork),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
