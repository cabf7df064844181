/*
 * test_thread.c - registered threads under collection: parallel
 * allocation with collections forced from several threads, thread churn,
 * threads blocked in system calls, what other threads' stacks and TLS
 * keep alive, the smallest stacks, cancellation, concurrent collection
 * requests, and fork.
 *
 * The suspend signal is a real-time one here (gc_options), to show that
 * the choice works.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <ucontext.h>
#include <unistd.h>

#include "gc.h"
#include "options.h"
#include "testutil.h"
#include "thread.h"
#include "track.h"

static int setup(void **state)
{
    (void)state;
    /* The environment counts: ctest runs these tests again with
     * GC_DEBUG=verify,poison. */
    gc_options o = {.suspend_signal = SIGRTMIN + 3};
    return gc_init(&o);
}

/* ---- a barrier ---------------------------------------------------------
 * Built on atomics and a sleeping poll rather than pthread_barrier_t or a
 * mutex: under ThreadSanitizer a thread waiting in pthread_barrier_wait, or
 * in pthread_mutex_lock for a mutex whose holder spangc has stopped, never
 * runs the handler of spangc's stop signal, so a collection would wait for
 * it forever (tests/tsan.supp); the storm test hung that way once in a few
 * dozen runs. nanosleep is a call in which it runs handlers. */

typedef struct barrier {
    uintptr_t count;
    ao_word waiting, generation;
} barrier_t;

static barrier_t barrier;

static void barrier_init(barrier_t *b, int count)
{
    b->count = (uintptr_t)count;
    ao_store(&b->waiting, 0);
    ao_store(&b->generation, 0);
}

static void barrier_wait(barrier_t *b)
{
    uintptr_t gen = ao_load_acq(&b->generation);
    if (ao_add(&b->waiting, 1) + 1 == b->count) {
        ao_store(&b->waiting, 0); /* before the release: no one is past it yet */
        ao_add(&b->generation, 1);
        return;
    }
    while (ao_load_acq(&b->generation) == gen) {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
}

/* ---- where the stop signals go first -------------------------------------- */

/* The collector signals first the threads that last stopped on a CPU
 * other than its own (thread.c, signal_all). A thread pinned to each of
 * two CPUs, the collecting thread pinned beside the first; the local one
 * registers last, so that it comes first in the registry, and list order
 * would signal it first. */
enum { MAX_NOTED = 64 };
static pid_t noted[MAX_NOTED];
static ao_uint nnoted;

static void note_signal(pid_t tid)
{
    unsigned k = ao_uint_add(&nnoted, 1);
    if (k < MAX_NOTED)
        noted[k] = tid;
}

typedef struct pinned {
    int cpu;
    ao_word tid; /* set once registered */
} pinned;

static ao_word pinned_done;

static void pin_self(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof set, &set), 0);
}

/* Waits until *w is at least n, with nanosleep, a call the stop signal
 * interrupts (and one in which ThreadSanitizer delivers it). */
static void sleep_until_reaches(ao_word *w, uintptr_t n)
{
    while (ao_load_acq(w) < n) {
        struct timespec ts = {0, 50000};
        nanosleep(&ts, NULL);
    }
}

static void sleep_until_set(ao_word *flag)
{
    sleep_until_reaches(flag, 1);
}

static void *pinned_thread(void *arg)
{
    pinned *p = arg;
    pin_self(p->cpu);
    assert_int_equal(gc_register_thread(), 0);
    ao_store_rel(&p->tid, (uintptr_t)syscall(SYS_gettid));
    sleep_until_set(&pinned_done);
    assert_int_equal(gc_unregister_thread(), 0);
    return NULL;
}

static int noted_at(pid_t tid)
{
    unsigned n = ao_uint_load_acq(&nnoted);
    for (unsigned k = 0; k < n && k < MAX_NOTED; k++)
        if (noted[k] == tid)
            return (int)k;
    return -1;
}

static void test_other_cpus_signalled_first(void **state)
{
    (void)state;
    cpu_set_t saved;
    assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof saved, &saved), 0);
    int cpus[2], n = 0;
    for (int c = 0; c < CPU_SETSIZE && n < 2; c++)
        if (CPU_ISSET(c, &saved))
            cpus[n++] = c;
    if (n < 2 || sched_getcpu() < 0)
        skip(); /* one CPU: every thread is local; or no CPU numbers */
    pin_self(cpus[0]);
    pinned remote = {.cpu = cpus[1]}, local = {.cpu = cpus[0]};
    pthread_t tr, tl;
    ao_store(&pinned_done, 0);
    assert_int_equal(pthread_create(&tr, NULL, pinned_thread, &remote), 0);
    sleep_until_set(&remote.tid);
    assert_int_equal(pthread_create(&tl, NULL, pinned_thread, &local), 0);
    sleep_until_set(&local.tid);

    collect(); /* each thread notes where it stopped */
    ao_uint_store(&nnoted, 0);
    spangc_test_on_signal = note_signal;
    collect();
    spangc_test_on_signal = NULL;
    int at_remote = noted_at((pid_t)ao_load(&remote.tid)), at_local = noted_at((pid_t)ao_load(&local.tid));

    /* Undone before the checks, so that a failure leaves no pinned or
     * registered thread to the tests after it. */
    ao_store_rel(&pinned_done, 1);
    pthread_join(tr, NULL);
    pthread_join(tl, NULL);
    assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof saved, &saved), 0);
    assert_true(at_remote >= 0 && at_local >= 0);
    assert_true(at_remote < at_local);
}

/* ---- trees --------------------------------------------------------------- */

typedef struct node {
    struct node *left, *right;
    long value;
} node;

static node *make_tree(int depth, long value)
{
    node *n = gc_alloc(sizeof *n);
    n->value = value;
    if (depth > 0) {
        n->left = make_tree(depth - 1, 2 * value);
        n->right = make_tree(depth - 1, 2 * value + 1);
    }
    return n;
}

static long check_tree(const node *n)
{
    if (!n)
        return 0;
    return n->value + check_tree(n->left) + check_tree(n->right);
}

static long tree_sum(int depth, long value)
{
    if (depth < 0)
        return 0;
    return value + tree_sum(depth - 1, 2 * value) + tree_sum(depth - 1, 2 * value + 1);
}

/* ---- many threads allocating, collections forced from several ------------ */

enum { WORKERS = 6, ROUNDS = 300 };

static void *worker(void *arg)
{
    long id = (long)(intptr_t)arg;
    if (gc_register_thread() != 0)
        return (void *)0;
    node *keep = make_tree(10, id);
    long ok = 1;
    for (int round = 0; round < ROUNDS; round++) {
        node *t = make_tree(6, round);
        if (check_tree(t) != tree_sum(6, round))
            ok = 0;
        if (round % 50 == 0)
            keep = make_tree(10, id + round); /* drop the old long-lived tree */
        if (id < 2 && round % 40 == 0)
            gc_collect(); /* two threads force collections */
    }
    if (check_tree(keep) != tree_sum(10, id + (ROUNDS - 1) / 50 * 50))
        ok = 0;
    gc_unregister_thread();
    return (void *)ok;
}

static void test_parallel_allocation_and_collection(void **state)
{
    (void)state;
    pthread_t th[WORKERS];
    gc_stats a, b;
    gc_get_stats(&a);
    for (long i = 0; i < WORKERS; i++)
        pthread_create(&th[i], NULL, worker, (void *)(intptr_t)i);
    node *mine = make_tree(12, 7);
    for (int i = 0; i < 20; i++) {
        gc_collect();
        assert_int_equal(check_tree(mine), tree_sum(12, 7));
    }
    for (int i = 0; i < WORKERS; i++) {
        void *ok;
        pthread_join(th[i], &ok);
        assert_true(ok);
    }
    collect();
    gc_get_stats(&b);
    assert_true(b.num_gc > a.num_gc + 20);
    assert_int_equal(check_tree(mine), tree_sum(12, 7));
}

/* ---- thread churn ---------------------------------------------------------- */

static void *short_lived(void *arg)
{
    long mode = (long)(intptr_t)arg;
    if (gc_register_thread() != 0)
        return (void *)0;
    node *t = make_tree(8, mode);
    long ok = check_tree(t) == tree_sum(8, mode);
    if (mode % 3 == 0)
        gc_collect();
    /* Every other thread exits registered: the key destructor must
     * unregister it and give its cached spans back. */
    if (mode % 2 == 0)
        gc_unregister_thread();
    return (void *)ok;
}

static void test_thread_churn(void **state)
{
    (void)state;
    node *mine = make_tree(10, 3);
    for (long wave = 0; wave < 40; wave++) {
        pthread_t th[8];
        for (long i = 0; i < 8; i++)
            pthread_create(&th[i], NULL, short_lived, (void *)(intptr_t)(wave * 8 + i));
        gc_collect();
        for (int i = 0; i < 8; i++) {
            void *ok;
            pthread_join(th[i], &ok);
            assert_true(ok);
        }
    }
    collect();
    assert_int_equal(check_tree(mine), tree_sum(10, 3));
    /* Only this thread is left registered. */
    assert_int_equal(spangc_thread_count(), 1);
}

/* ---- blocked threads -------------------------------------------------------- */

static int pipe_fds[2];

static void *blocked_reader(void *arg)
{
    (void)arg;
    if (gc_register_thread() != 0)
        return NULL;
    node *held = make_tree(6, 42); /* only this thread's stack holds it */
    char buf[8];
#ifdef SPANGC_TSAN
    /* ThreadSanitizer delivers a signal to a thread blocked in read() only
     * when read() returns, so a stop would wait for the data this test
     * sends after collecting (tests/tsan.supp explains). Poll instead. */
    ssize_t n;
    while ((n = read(pipe_fds[0], buf, sizeof buf)) < 0 && errno == EAGAIN) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
#else
    /* SA_RESTART: read() must not fail with EINTR when stopped. */
    ssize_t n = read(pipe_fds[0], buf, sizeof buf);
#endif
    long ok = n == 5 && check_tree(held) == tree_sum(6, 42);
    gc_unregister_thread();
    return (void *)ok;
}

static void *sleeper(void *arg)
{
    (void)arg;
    if (gc_register_thread() != 0)
        return NULL;
    node *held = make_tree(6, 9);
    /* nanosleep is never restarted by Linux; a program sleeping across
     * collections resumes with the time left (docs/threads.md). */
    struct timespec left = {0, 300 * 1000000};
    int interrupted = 0;
    while (nanosleep(&left, &left) != 0 && errno == EINTR)
        interrupted++;
    long ok = check_tree(held) == tree_sum(6, 9);
    gc_unregister_thread();
    return (void *)ok;
}

static void test_blocked_threads(void **state)
{
    (void)state;
    assert_int_equal(pipe(pipe_fds), 0);
#ifdef SPANGC_TSAN
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
#endif
    pthread_t reader, sleeping;
    pthread_create(&reader, NULL, blocked_reader, NULL);
    pthread_create(&sleeping, NULL, sleeper, NULL);
    for (int i = 0; i < 30; i++) {
        for (int k = 0; k < 2000; k++)
            (void)!gc_alloc(64); /* garbage */
        collect();
        struct timespec ts = {0, 5 * 1000000};
        nanosleep(&ts, NULL);
    }
    assert_int_equal(write(pipe_fds[1], "hello", 5), 5);
    void *ok;
    pthread_join(reader, &ok);
    assert_true(ok);
    pthread_join(sleeping, &ok);
    assert_true(ok);
    close(pipe_fds[0]);
    close(pipe_fds[1]);
}

/* ---- other threads' stacks, registers and TLS ------------------------------ */

/* The program's own __thread variable: in a thread other than main, its
 * static TLS block lies in the thread's stack mapping, so the stack scan
 * finds it (the TLS scanning proper, dlopen'ed libraries' blocks, is
 * test_roots' job). */
static __thread uintptr_t tls_slot;
static volatile uintptr_t hidden_stack, hidden_tls;

static void *holder(void *arg)
{
    (void)arg;
    gc_register_thread();
    volatile uintptr_t on_stack;
    hidden_stack = make(128);
    store(&on_stack, hidden_stack, 0);
    hidden_tls = make(256);
    store(&tls_slot, hidden_tls, 0);
    barrier_wait(&barrier); /* objects made */
    barrier_wait(&barrier); /* main collected and checked */
    on_stack = 0;
    tls_slot = 0;
    barrier_wait(&barrier); /* dropped */
    barrier_wait(&barrier); /* main checked again */
    gc_unregister_thread();
    return NULL;
}

static void test_other_thread_roots(void **state)
{
    (void)state;
    pthread_t th;
    barrier_init(&barrier, 2);
    pthread_create(&th, NULL, holder, NULL);
    barrier_wait(&barrier);
    collect();
    assert_true(alive(hidden_stack));
    assert_true(alive(hidden_tls));
    barrier_wait(&barrier);
    barrier_wait(&barrier);
    /* That they die once dropped is test_roots' job: here the holder is
     * parked in a system call, and the kernel saves its scratch registers,
     * which may still hold the old addresses, where they are scanned. */
    barrier_wait(&barrier);
    pthread_join(th, NULL);
}

/* ---- the main thread's stack bounds ------------------------------------------ */

/* The main thread's stack is found without pthread_getattr_np (which
 * reads /proc/self/maps): the top is where glibc says the stack began,
 * inside the mapping pthread_getattr_np reports and above every frame;
 * the bottom leaves room for the whole RLIMIT_STACK. A thread's stack
 * comes from pthread_getattr_np, exactly. */
static void *thread_bounds(void *arg)
{
    uintptr_t *b = arg;
    gc_register_thread();
    b[0] = spangc_self->stack_lo;
    b[1] = spangc_self->stack_hi;
    b[2] = (uintptr_t)__builtin_frame_address(0);
    pthread_attr_t attr;
    void *addr;
    size_t size;
    pthread_getattr_np(pthread_self(), &attr);
    pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    b[3] = (uintptr_t)addr;
    b[4] = (uintptr_t)addr + size;
    gc_unregister_thread();
    return NULL;
}

static void test_stack_bounds(void **state)
{
    (void)state;
    extern void *__libc_stack_end;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    assert_int_equal(pthread_getattr_np(pthread_self(), &attr), 0);
    assert_int_equal(pthread_attr_getstack(&attr, &addr, &size), 0);
    pthread_attr_destroy(&attr);
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    assert_int_equal(spangc_self->stack_hi, (uintptr_t)__libc_stack_end);
    assert_true(spangc_self->stack_hi <= (uintptr_t)addr + size);
    assert_true(spangc_self->stack_hi > sp);
    assert_true(spangc_self->stack_lo < sp);
    struct rlimit rl;
    assert_int_equal(getrlimit(RLIMIT_STACK, &rl), 0);
    if (rl.rlim_cur != RLIM_INFINITY)
        assert_int_equal(spangc_self->stack_hi - spangc_self->stack_lo, rl.rlim_cur);

    uintptr_t b[5];
    pthread_t th;
    pthread_create(&th, NULL, thread_bounds, b);
    pthread_join(th, NULL);
    assert_int_equal(b[0], b[3]);
    assert_int_equal(b[1], b[4]);
    assert_true(b[0] < b[2] && b[2] < b[1]);
}

/* ---- the smallest stack ------------------------------------------------------ */

/* A registered thread on a PTHREAD_STACK_MIN stack collects, by hand and
 * from allocation, and keeps its objects: the collector clears the dead
 * stack below it only as far as the stack goes (it cleared a fixed 16 KiB,
 * past the end of this one). */
static void *on_small_stack(void *arg)
{
    (void)arg;
    gc_register_thread();
    node *t = make_tree(6, 5);
    gc_collect();
    for (int i = 0; i < 200000; i++) /* 12.8 MB: automatic cycles */
        (void)!gc_alloc(64);
    intptr_t ok = check_tree(t) == tree_sum(6, 5);
    gc_unregister_thread();
    return (void *)ok;
}

static void test_collect_on_smallest_stack(void **state)
{
    (void)state;
    gc_stats a, b;
    gc_get_stats(&a);
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    /* The sanitizers' frames are larger, and so are the signal frames
     * Valgrind builds: give them the room they add. */
    size_t size = PTHREAD_STACK_MIN;
#if defined(__SANITIZE_ADDRESS__) || defined(__SANITIZE_THREAD__)
    size *= 8;
#endif
    if (TRACK_VG_RUNNING())
        size *= 8;
    assert_int_equal(pthread_attr_setstacksize(&attr, size), 0);
    pthread_t th;
    void *ok;
    assert_int_equal(pthread_create(&th, &attr, on_small_stack, NULL), 0);
    pthread_attr_destroy(&attr);
    pthread_join(th, &ok);
    assert_true(ok == (void *)1);
    gc_get_stats(&b);
    assert_true(b.num_gc - a.num_gc >= 2);
}

/* ---- cancellation ------------------------------------------------------------ */

/* A thread cancelled (deferred, the default) while it waits for another
 * thread's cycle, or while it registers, dies without holding spangc's
 * locks: spangc's calls are no cancellation points, so the cancel takes
 * effect at the thread's own. It used to take effect inside the wait for
 * world_lock or threads_lock, and the next cycle hung for ever. */
static ao_word cancel_cycles[2];

static void *collect_until_cancelled(void *arg)
{
    ao_word *cycles = arg;
    gc_register_thread();
    for (;;) {
        gc_collect();
        ao_add(cycles, 1);
        pthread_testcancel();
    }
    return NULL;
}

static void *register_until_cancelled(void *arg)
{
    (void)arg;
    for (;;) {
        gc_register_thread();
        pthread_testcancel();
        (void)!make_tree(3, 1);
        gc_unregister_thread();
        pthread_testcancel();
    }
    return NULL;
}

static void test_cancel_inside_spangc(void **state)
{
    (void)state;
    for (int round = 0; round < 10; round++) {
        pthread_t victim, other, reg;
        ao_store(&cancel_cycles[0], 0);
        ao_store(&cancel_cycles[1], 0);
        pthread_create(&victim, NULL, collect_until_cancelled, (void *)&cancel_cycles[0]);
        pthread_create(&other, NULL, collect_until_cancelled, (void *)&cancel_cycles[1]);
        pthread_create(&reg, NULL, register_until_cancelled, NULL);
        sleep_until_reaches(&cancel_cycles[0], 5);
        sleep_until_reaches(&cancel_cycles[1], 5);
        pthread_cancel(victim);
        pthread_cancel(reg);
        pthread_join(victim, NULL);
        pthread_join(reg, NULL);
        /* The survivor goes on collecting, and so does this thread. */
        uintptr_t seen = ao_load_acq(&cancel_cycles[1]);
        sleep_until_reaches(&cancel_cycles[1], seen + 3);
        collect();
        pthread_cancel(other);
        pthread_join(other, NULL);
    }
}

/* ---- running on another stack ----------------------------------------------- */

/* The main thread running a coroutine on a stack of its own: the
 * registered stack is scanned whole, as far as it is mapped (its lowest
 * pages, within RLIMIT_STACK of its top, never are), so a collection there
 * neither faults nor loses what main's frames hold. */
#define CORO_STACK (256 * 1024)
/* The two contexts live in run_coroutine's frame: getcontext and
 * swapcontext save the registers, one of which may hold the object, and a
 * static copy (in a scanned data segment) kept it alive with main's stack
 * not scanned at all. */
static ucontext_t *main_ctx, *coro_ctx;
static uintptr_t coro_result; /* hidden: the object, if main's frame kept it */

static void on_coroutine(void)
{
    collect();
    swapcontext(coro_ctx, main_ctx);
}

static __attribute__((noinline)) void run_coroutine(void *stack, uintptr_t held)
{
    ucontext_t main_here, coro_here;
    main_ctx = &main_here;
    coro_ctx = &coro_here;
    volatile uintptr_t on_main_stack = (uintptr_t)SHOW(held); /* the only reference */
    held = 0;
    getcontext(coro_ctx);
    coro_ctx->uc_stack.ss_sp = stack;
    coro_ctx->uc_stack.ss_size = CORO_STACK;
    coro_ctx->uc_link = main_ctx;
    makecontext(coro_ctx, on_coroutine, 0);
    swapcontext(main_ctx, coro_ctx);
    coro_result = HIDE(on_main_stack);
    main_ctx = coro_ctx = NULL;
}

/* The object is made on a thread that has exited, and not first in its
 * span: an address a span starts at is often left in some stale word,
 * which would keep the object whatever main's frames hold. */
static void make_coroutine_object(void *out)
{
    for (int i = 0; i < 3; i++)
        *(uintptr_t *)out = make(64);
}

static void test_collect_on_coroutine_stack(void **state)
{
    (void)state;
    void *stack = malloc(CORO_STACK);
    assert_non_null(stack);
    uintptr_t held;
    run_on_a_registered_thread(make_coroutine_object, &held);
    run_coroutine(stack, held);
    assert_true(alive(coro_result));
    free(stack);
}

/* ---- a stop signal that never arrives ------------------------------------------ */

/* A registered thread takes the first stop signal out of its queue with
 * sigtimedwait (as a program's signal-handling thread that waits for
 * "every" signal would) and so never runs the handler for it. The
 * collector signals it again after 10 ms; without that, gc_collect would
 * wait for ever. */
static ao_word swallow_state; /* 1 ready, 2 swallowed one, 3 done and ok */

static void *swallower(void *arg)
{
    (void)arg;
    gc_register_thread();
    node *held = make_tree(6, 7);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGRTMIN + 3);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    ao_store(&swallow_state, 1);
    struct timespec ts = {10, 0};
    if (sigtimedwait(&set, NULL, &ts) == SIGRTMIN + 3)
        ao_store(&swallow_state, 2);
    pthread_sigmask(SIG_UNBLOCK, &set, NULL);
    while (ao_load(&swallow_state) == 2)
        sched_yield();
    ao_store(&swallow_state, check_tree(held) == tree_sum(6, 7) ? 3 : 4);
    gc_unregister_thread();
    return NULL;
}

static void test_lost_stop_signal(void **state)
{
    (void)state;
    pthread_t th;
    ao_store(&swallow_state, 0);
    pthread_create(&th, NULL, swallower, NULL);
    while (ao_load(&swallow_state) != 1)
        sched_yield();
    uint64_t t0 = spangc_nanotime();
    gc_collect();
    uint64_t took = spangc_nanotime() - t0;
    assert_int_equal(ao_load(&swallow_state), 2); /* it swallowed one and then stopped */
    assert_true(took >= 10 * 1000 * 1000);        /* ...on the repeat */
    ao_store(&swallow_state, 5);
    pthread_join(th, NULL);
    assert_int_equal(ao_load(&swallow_state), 3);
}

/* ---- objects handed to another thread ---------------------------------------- */

enum { CHECKS = 5000 };

static ao_word handed;        /* the last object made, published with release */
static ao_word consumer_done; /* set once the consumer has checked CHECKS */

static void *producer(void *arg)
{
    (void)arg;
    gc_register_thread();
    void *volatile keep[64];
    for (unsigned i = 0; !ao_load_acq(&consumer_done); i++) {
        void *p = gc_alloc(48);
        keep[i % 64] = p;
        ao_store_rel(&handed, (uintptr_t)p);
    }
    (void)keep;
    gc_unregister_thread();
    return NULL;
}

/* A consumer asks gc_base and gc_size about objects another thread has
 * just allocated, while that thread keeps allocating from the same span:
 * the answers are right, and (under ThreadSanitizer) the reads of the
 * span's allocation state do not race with the allocator's writes. The
 * consumer's own copy of each address keeps the object alive. */
static void test_objects_from_another_thread(void **state)
{
    (void)state;
    pthread_t th;
    ao_store(&handed, 0);
    ao_store(&consumer_done, 0);
    pthread_create(&th, NULL, producer, NULL);
    for (unsigned checked = 0; checked < CHECKS;) {
        void *p = (void *)ao_load_acq(&handed);
        if (!p)
            continue;
        assert_ptr_equal(gc_base((char *)p + 17), p);
        assert_true(gc_size(p) >= 48);
        checked++;
    }
    ao_store_rel(&consumer_done, 1);
    pthread_join(th, NULL);
}

/* ---- a stop deferred inside a large allocation ------------------------------ */

/* go: the allocating thread asks for the collection; resumed: it is back
 * from its allocation; needed_rescue: it was not, until a second cycle. */
static ao_word collector_go, resumed, needed_rescue;

static void *deferred_collector(void *arg)
{
    (void)arg;
    gc_register_thread();
    while (!ao_load_acq(&collector_go))
        sched_yield();
    gc_collect(); /* sweeps what the cycle found dead before returning */
    /* Give the allocating thread ten seconds to come back on its own
     * (plenty even on a loaded machine: it takes microseconds). */
    for (int i = 0; i < 10000 && !ao_load_acq(&resumed); i++) {
        struct timespec ts = {0, 1000000};
        nanosleep(&ts, NULL);
    }
    if (!ao_load_acq(&resumed)) {
        ao_store(&needed_rescue, 1);
        gc_collect(); /* its restart releases a wrongly parked thread */
    }
    gc_unregister_thread();
    return NULL;
}

/* The collector above, started for an allocation that will defer a stop
 * through hook. */
static void start_deferred_collector(pthread_t *th, void (*hook)(void))
{
    ao_store(&collector_go, 0);
    ao_store(&resumed, 0);
    ao_store(&needed_rescue, 0);
    pthread_create(th, NULL, deferred_collector, NULL);
    spangc_test_in_large_alloc = hook;
}

/* Called inside the allocation's runtime section: start the other
 * thread's collection and wait until its stop has been deferred here. */
static void defer_a_stop(void)
{
    spangc_test_in_large_alloc = NULL;
    ao_store_rel(&collector_go, 1);
    /* A sleep, not sched_yield: ThreadSanitizer delivers a signal to a
     * thread inside a blocking call it intercepts, and the collector
     * repeats its signal every 10 ms. */
    while (!((volatile spangc_thread *)spangc_self)->stop_pending) {
        struct timespec ts = {0, 100000};
        nanosleep(&ts, NULL);
    }
}

/* A thread that defers a stop while allocating a large object stops when
 * the allocation leaves its runtime section, before the caller has the
 * pointer: the collection must still find the object. It did not (only
 * the span's record was live there), and the object was freed before
 * gc_alloc returned it: 1 large allocation in about 200,000 with another
 * thread collecting in a loop. */
static void test_stop_deferred_in_large_allocation(void **state)
{
    (void)state;
    enum { SIZE = 100000 };
    pthread_t th;
    gc_stats a, b;
    gc_get_stats(&a);
    start_deferred_collector(&th, defer_a_stop);
    char *p = gc_alloc_atomic(SIZE);
    ao_store_rel(&resumed, 1);
    pthread_join(th, NULL);
    gc_get_stats(&b);
    assert_true(b.num_gc > a.num_gc);
    assert_non_null(p);
    assert_true(gc_size(p) >= SIZE);
    char *q = gc_alloc_atomic(SIZE);
    assert_ptr_not_equal(q, p);
    p[SIZE - 1] = 1;
    assert_ptr_equal(gc_base(p + SIZE - 1), p);
}

/* A thread stopping itself on the deferred path (runtime_leave) can be hit
 * by the collector's repeated stop signal between its test of the epoch
 * and its claim: the handler stops it for that epoch, and the world
 * restarts. The interrupted stop must then give up. It used to park a
 * second time, with the world running, until some later collection. */
static spangc_thread *resignal_target;

static void resignal_self(void)
{
    if (spangc_self != resignal_target)
        return;
    spangc_test_in_stop_claim = NULL;
    raise(spangc_cfg.suspend_signal); /* handled here and now: a nested stop */
}

static void defer_a_stop_then_resignal(void)
{
    defer_a_stop();
    resignal_target = spangc_self;
    spangc_test_in_stop_claim = resignal_self;
}

static void test_nested_stop_on_deferred_path(void **state)
{
    (void)state;
    pthread_t th;
    start_deferred_collector(&th, defer_a_stop_then_resignal);
    char *p = gc_alloc_atomic(100000);
    ao_store_rel(&resumed, 1);
    pthread_join(th, NULL);
    assert_non_null(p);
    assert_false(ao_load(&needed_rescue));
    assert_null(spangc_test_in_stop_claim);
}

/* ---- concurrent collection requests ---------------------------------------- */

enum { CALLERS = 4 };

/* Bit i: caller i has been seen waiting for the world lock. A thread
 * waiting for it offers to stop every 2 ms (runtime/lock.h), which passes
 * through the stop-claim hook. */
static ao_word callers_waiting;
static __thread int caller_index = -1;

static void note_waiting_caller(void)
{
    if (caller_index >= 0)
        ao_or(&callers_waiting, (uintptr_t)1 << caller_index);
}

static void *caller(void *arg)
{
    caller_index = (int)(intptr_t)arg;
    gc_register_thread();
    gc_collect();
    gc_unregister_thread();
    return NULL;
}

/* Requests made while a collection cannot start yet (another thread holds
 * the world lock) are all served by one cycle, and nobody deadlocks. */
static void test_simultaneous_collect_runs_once(void **state)
{
    (void)state;
    for (int wave = 0; wave < 20; wave++) {
        pthread_t th[CALLERS];
        gc_stats a, b;
        gc_get_stats(&a);
        slock_acquire(&spangc_gc.world_lock);
        ao_store(&callers_waiting, 0);
        spangc_test_in_stop_claim = note_waiting_caller;
        for (int i = 0; i < CALLERS; i++)
            pthread_create(&th[i], NULL, caller, (void *)(intptr_t)i);
        /* Wait until every caller waits for the lock, and so has made its
         * request: a fixed sleep (it was 20 ms) can be too short on a
         * loaded machine, and a late caller rightly gets a cycle of its
         * own. */
        while (ao_load_acq(&callers_waiting) != (1u << CALLERS) - 1) {
            struct timespec ts = {0, 1000000};
            nanosleep(&ts, NULL);
        }
        slock_release(&spangc_gc.world_lock);
        for (int i = 0; i < CALLERS; i++)
            pthread_join(th[i], NULL);
        /* Cleared once no caller can be reading it. */
        spangc_test_in_stop_claim = NULL;
        gc_get_stats(&b);
        assert_int_equal(b.num_gc - a.num_gc, 1);
    }
}

/* Callers released at once by a barrier, over and over: nobody deadlocks,
 * every call gets a cycle that stopped the world after it asked, and calls
 * that overlap may share one. */
static void *wave_caller(void *arg)
{
    (void)arg;
    gc_register_thread();
    for (int i = 0; i < 50; i++) {
        barrier_wait(&barrier);
        gc_collect();
    }
    gc_unregister_thread();
    return NULL;
}

static void test_concurrent_collect_storm(void **state)
{
    (void)state;
    pthread_t th[CALLERS];
    barrier_init(&barrier, CALLERS);
    gc_stats a, b;
    gc_get_stats(&a);
    for (int i = 0; i < CALLERS; i++)
        pthread_create(&th[i], NULL, wave_caller, NULL);
    for (int i = 0; i < CALLERS; i++)
        pthread_join(th[i], NULL);
    gc_get_stats(&b);
    print_message("50 waves of %d gc_collect calls: %llu cycles\n", CALLERS,
                  (unsigned long long)(b.num_gc - a.num_gc));
    assert_true(b.num_gc - a.num_gc >= 50);
    assert_true(b.num_gc - a.num_gc <= 50 * CALLERS);
}

/* ---- fork -------------------------------------------------------------------- */

static ao_word spinning = 1;

static void *busy_allocator(void *arg)
{
    (void)arg;
    gc_register_thread();
    while (ao_load(&spinning))
        (void)!make_tree(4, 1);
    gc_unregister_thread();
    return NULL;
}

#ifndef __SANITIZE_THREAD__
/* A thread of the forked child: the child's stops must reach it (the
 * signal goes to the child's process id, not the parent's). Not under
 * ThreadSanitizer, which in such a child mistakes a new thread for one of
 * the parent's ("dup thread with used id"). */
static ao_word child_ready, child_done;

static void *child_thread(void *arg)
{
    (void)arg;
    gc_register_thread();
    node *t = make_tree(8, 3);
    ao_store(&child_ready, 1);
    while (!ao_load(&child_done))
        (void)!make_tree(3, 1);
    ao_store(&child_ready, check_tree(t) == tree_sum(8, 3) ? 2 : 3);
    gc_unregister_thread();
    return NULL;
}
#endif

static void test_fork_from_threaded_program(void **state)
{
    (void)state;
    pthread_t th[3];
    for (int i = 0; i < 3; i++)
        pthread_create(&th[i], NULL, busy_allocator, NULL);
    node *mine = make_tree(10, 5);
    for (int k = 0; k < 5; k++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            /* The child: one thread, a consistent heap; allocate a lot and
             * collect, and check what the parent had. */
            int ok = check_tree(mine) == tree_sum(10, 5);
            for (int i = 0; i < 200 && ok; i++) {
                node *t = make_tree(8, i);
                ok = check_tree(t) == tree_sum(8, i);
                if (i % 50 == 0)
                    gc_collect();
            }
            gc_collect();
            spangc_verify_heap();
            ok = ok && check_tree(mine) == tree_sum(10, 5) && spangc_thread_count() == 1;
#ifndef __SANITIZE_THREAD__
            pthread_t ct;
            ok = ok && pthread_create(&ct, NULL, child_thread, NULL) == 0;
            while (ok && !ao_load(&child_ready))
                sched_yield();
            for (int i = 0; i < 5 && ok; i++)
                gc_collect();
            ok = ok && spangc_thread_count() == 2;
            ao_store(&child_done, 1);
            pthread_join(ct, NULL);
            ok = ok && ao_load(&child_ready) == 2;
#endif
            _exit(ok ? 0 : 1);
        }
        assert_child_succeeded(pid);
    }
    ao_store(&spinning, 0);
    for (int i = 0; i < 3; i++)
        pthread_join(th[i], NULL);
    collect();
    assert_int_equal(check_tree(mine), tree_sum(10, 5));
}

/* fork() while other registered threads call malloc and allocate from
 * spangc. The stop for fork used to park them where the signal found
 * them, inside malloc with an arena lock held, and glibc's fork, which
 * takes every arena lock after the prepare handlers, waited for ever: the
 * first fork of such a program hung. Now a thread outside spangc runs on
 * and waits at its next allocation until the fork is over. */
enum { MALLOC_FORKS = 50 };

static ao_word churning;

static void *malloc_churner(void *arg)
{
    gc_register_thread();
    unsigned r = (unsigned)(uintptr_t)arg;
    while (ao_load(&churning)) {
        /* Mostly in malloc, past its thread cache (under an arena lock).
         * Through a volatile pointer, or the compiler removes the pair. */
        for (int i = 0; i < 64; i++) {
            r = r * 1103515245u + 12345u;
            char *volatile m = malloc(4096 + (r >> 16) % 4096);
            m[0] = 1;
            free(m);
        }
        node *n = gc_alloc(sizeof *n);
        n->value = r;
    }
    gc_unregister_thread();
    return NULL;
}

static void test_fork_while_threads_malloc(void **state)
{
    (void)state;
    alarm(300); /* a hang fails here rather than at ctest's timeout */
    ao_store(&churning, 1);
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&th[i], NULL, malloc_churner, (void *)(uintptr_t)(i + 1));
    for (int k = 0; k < MALLOC_FORKS; k++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            node *t = make_tree(6, k);
            gc_collect();
            void *m = malloc(10000);
            _exit(check_tree(t) == tree_sum(6, k) && m && spangc_thread_count() == 1 ? 0 : 1);
        }
        assert_child_succeeded(pid);
    }
    ao_store(&churning, 0);
    for (int i = 0; i < 2; i++)
        pthread_join(th[i], NULL);
    alarm(0);
    collect();
}

/* A stray suspend signal reaching the collecting thread, here while the
 * world is stopped, is ignored: the collector used to park itself for a
 * restart only it could make, and hang for good. */
static void signal_collector(void)
{
    pthread_kill(pthread_self(), spangc_cfg.suspend_signal);
}

static void test_stray_signal_to_collector(void **state)
{
    (void)state;
    gc_stats before, after;
    gc_get_stats(&before);
    spangc_test_after_mark = signal_collector;
    gc_collect();
    spangc_test_after_mark = NULL;
    gc_get_stats(&after);
    assert_true(after.num_gc > before.num_gc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parallel_allocation_and_collection),
        cmocka_unit_test(test_thread_churn),
        cmocka_unit_test(test_blocked_threads),
        cmocka_unit_test(test_other_thread_roots),
        cmocka_unit_test(test_stack_bounds),
        cmocka_unit_test(test_collect_on_smallest_stack),
        cmocka_unit_test(test_cancel_inside_spangc),
        cmocka_unit_test(test_collect_on_coroutine_stack),
        cmocka_unit_test(test_lost_stop_signal),
        cmocka_unit_test(test_other_cpus_signalled_first),
        cmocka_unit_test(test_objects_from_another_thread),
        cmocka_unit_test(test_stop_deferred_in_large_allocation),
        cmocka_unit_test(test_nested_stop_on_deferred_path),
        cmocka_unit_test(test_simultaneous_collect_runs_once),
        cmocka_unit_test(test_concurrent_collect_storm),
        cmocka_unit_test(test_fork_from_threaded_program),
        cmocka_unit_test(test_fork_while_threads_malloc),
        cmocka_unit_test(test_stray_signal_to_collector),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
