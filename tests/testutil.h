/*
 * testutil.h - helpers for tests that watch objects live and die.
 *
 * An object's fate is observed through a hidden pointer (XORed with MASK,
 * so the test does not keep the object alive by holding it) and gc_base,
 * which answers NULL for a freed slot. Objects are made and stored by
 * noinline helpers so that no copy of their address stays in the test's
 * own frame, and collect() clears the dead stack below it first.
 */
#ifndef SPANGC_TESTUTIL_H
#define SPANGC_TESTUTIL_H

#include <pthread.h>
#include <spangc.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>

#include "verify.h"

#define MASK ((uintptr_t)0xa5a5a5a5a5a5a5a5u)
#define HIDE(p) ((uintptr_t)(p) ^ MASK)
#define SHOW(h) ((void *)((h) ^ MASK))

static __attribute__((noinline, unused)) uintptr_t make(size_t size)
{
    char *p = gc_alloc(size);
    memset(p, 0x11, size);
    return HIDE(p);
}

static __attribute__((noinline, unused)) bool alive(uintptr_t h)
{
    return gc_base(SHOW(h)) == SHOW(h);
}

/* *where = the object h, plus offset; the raw address never passes
 * through the caller's frame. */
static __attribute__((noinline, unused)) void store(volatile uintptr_t *where, uintptr_t h, size_t offset)
{
    *where = (uintptr_t)SHOW(h) + offset;
}

/* fn(arg) on a thread of its own, waited for: the copies of addresses it
 * leaves in its frames and registers go with the thread. Its stack is
 * unmapped after: glibc would give a stack it made to the next thread
 * created (the finalizer thread, say), old words and all. */
static __attribute__((unused)) void run_on_a_thread(void *(*fn)(void *), void *arg)
{
    size_t size = (size_t)1 << 20;
    void *stack =
        mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK, -1, 0);
    assert_true(stack != MAP_FAILED);
    pthread_attr_t attr;
    assert_int_equal(pthread_attr_init(&attr), 0);
    assert_int_equal(pthread_attr_setstack(&attr, stack, size), 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, &attr, fn, arg), 0);
    assert_int_equal(pthread_join(th, NULL), 0);
    pthread_attr_destroy(&attr);
    munmap(stack, size);
}

typedef struct registered_call {
    void (*fn)(void *);
    void *arg;
} registered_call;

static __attribute__((unused)) void *call_registered(void *p)
{
    registered_call *c = p;
    assert_int_equal(gc_register_thread(), 0);
    c->fn(c->arg);
    assert_int_equal(gc_unregister_thread(), 0);
    return NULL;
}

/* The same on a registered thread, which may allocate: objects made there
 * are referred to by nothing but what fn stores. */
static __attribute__((unused)) void run_on_a_registered_thread(void (*fn)(void *), void *arg)
{
    registered_call c = {fn, arg};
    run_on_a_thread(call_registered, &c);
}

/* Clear stale words below the stack pointer left by earlier calls, so a
 * dead frame's copy cannot be picked up by a later, deeper frame. Not
 * instrumented: AddressSanitizer would put redzones around buf that this
 * loop must clear too. */
static __attribute__((noinline, unused, no_sanitize("address"))) void scrub_stack(void)
{
    volatile uintptr_t buf[2048];
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++)
        buf[i] = 0;
}

/* The fate of a dropped object after collect(). A conservative collector
 * frees it unless a root word still holds its address; in a test that
 * cleared its own references, that can only be a stale copy in a stack
 * slot that a live frame (the test's, cmocka's) never overwrote, which
 * the test can neither see nor clear. So "dead" is checked as: freed, or
 * held only by thread-stack words that spangc_debug_explain shows. Held
 * by a data segment, an added range or another heap object, or by
 * nothing at all, is a collector bug. A retention is printed on stderr
 * and appended to the file SPANGC_RETENTION_LOG names (tests/run-all
 * prints it at the end), so that even a passing run reports it. */
enum fate { FREED, HELD_BY_STACK, WRONGLY_ALIVE };

static __attribute__((noinline, unused)) enum fate fate_of(uintptr_t h, const char *where)
{
    if (!alive(h))
        return FREED;
    /* One explanation (one stop of the world), written to both places. */
    char *text = NULL;
    size_t len = 0;
    FILE *buf = open_memstream(&text, &len);
    if (!buf)
        return WRONGLY_ALIVE;
    fprintf(buf, "%s: dropped object %p is still allocated\n", where, SHOW(h));
    spangc_referrers n;
    bool found = spangc_debug_explain(buf, SHOW(h), &n);
    fclose(buf);
    fputs(text, stderr);
    const char *log = getenv("SPANGC_RETENTION_LOG");
    FILE *f = log ? fopen(log, "a") : NULL;
    if (f) {
        fputs(text, f);
        fclose(f);
    }
    free(text);
    if (!found)
        return FREED; /* freed by the explain's own sweep: cannot happen after collect() */
    return n.threads > 0 && !n.data && !n.added && !n.heap ? HELD_BY_STACK : WRONGLY_ALIVE;
}

#define TESTUTIL_STR2(x) #x
#define TESTUTIL_STR(x) TESTUTIL_STR2(x)
#define HERE __FILE__ ":" TESTUTIL_STR(__LINE__)

/* In a cmocka test: the object h, dropped, is dead (fate_of). */
#define assert_dead(h) assert_true(fate_of((h), HERE) != WRONGLY_ALIVE)

/* Objects that each have their own root word, in malloc'd memory added as
 * a root range: dropping them all at once, a stale stack word can keep
 * only the one it points at, where a shared gc array would keep them all. */
typedef struct rooted_set {
    uintptr_t *roots;  /* the root range: object addresses */
    uintptr_t *hidden; /* not scanned: HIDE()d addresses */
    size_t n;
} rooted_set;

static __attribute__((unused)) bool rooted_init(rooted_set *s, size_t n)
{
    s->n = n;
    s->roots = calloc(n, sizeof *s->roots);
    s->hidden = calloc(n, sizeof *s->hidden);
    return s->roots && s->hidden && gc_add_roots(s->roots, n * sizeof *s->roots) == 0;
}

static __attribute__((noinline, unused)) void rooted_set_obj(rooted_set *s, size_t i, void *obj)
{
    s->roots[i] = (uintptr_t)obj;
    s->hidden[i] = HIDE(obj);
}

/* After the roots were cleared and a collection: how many objects are
 * still allocated, each held by a stack word (fate_of); SIZE_MAX if one
 * is wrongly alive. */
static __attribute__((noinline, unused)) size_t rooted_kept(const rooted_set *s, const char *where)
{
    size_t kept = 0;
    for (size_t i = 0; i < s->n; i++) {
        enum fate f = fate_of(s->hidden[i], where);
        if (f == WRONGLY_ALIVE)
            return SIZE_MAX;
        kept += f == HELD_BY_STACK;
    }
    return kept;
}

static __attribute__((unused)) void rooted_drop(rooted_set *s)
{
    memset(s->roots, 0, s->n * sizeof *s->roots);
}

static __attribute__((unused)) void rooted_destroy(rooted_set *s)
{
    (void)gc_remove_roots(s->roots);
    free(s->roots);
    free(s->hidden);
}

/* The group setup of a file's tests run as `test_x --no-background-sweep`
 * (tests/CMakeLists.txt, spangc_no_background_sweep_variant): a heap
 * that only allocation sweeps. */
static __attribute__((unused)) int init_without_background_sweep(void **state)
{
    (void)state;
    gc_options o = {.flags = GC_OPT_NO_BACKGROUND_SWEEP};
    return gc_init(&o);
}

/* main's result for a file with both kinds of tests: run as
 * `test_x --no-background-sweep`, the array lazy, set up by
 * init_without_background_sweep; else the array tests, set up by setup. */
#define RUN_TESTS_OR_LAZY(argc, argv, tests, setup, lazy)                                          \
    ((argc) > 1 && strcmp((argv)[1], "--no-background-sweep") == 0                                 \
         ? cmocka_run_group_tests(lazy, init_without_background_sweep, NULL)                       \
         : cmocka_run_group_tests(tests, setup, NULL))

/* 1000-byte objects that nothing holds, until n more automatic cycles
 * have run. */
static __attribute__((noinline, unused)) void garbage_until_cycles(uint64_t n)
{
    gc_stats st;
    gc_get_stats(&st);
    uint64_t want = st.num_gc + n;
    while (st.num_gc < want) {
        for (int i = 0; i < 64; i++)
            (void)!gc_alloc_atomic(1000);
        gc_get_stats(&st);
    }
}

/* The forked child pid exited, with status 0. */
static __attribute__((unused)) void assert_child_succeeded(pid_t pid)
{
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status));
    assert_int_equal(WEXITSTATUS(status), 0);
}

static __attribute__((unused)) void collect(void)
{
    scrub_stack();
    gc_collect();
    spangc_verify_heap();
}

#endif
