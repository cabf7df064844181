/*
 * test_debug.c - the debug modes catch what they promise: poison catches
 * a write after free, verify catches an object the mark missed and a span
 * whose counts are wrong, the slow path refuses a corrupted span, stress
 * collects every N allocations, spangc_debug_explain names what keeps an
 * object alive, and (in an AddressSanitizer build) a read of a freed object
 * is reported by ASan. Each bug is staged in a forked child, which must die
 * with the expected message.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <unistd.h>

#include "debug.h"
#include "gc.h"
#include "mark.h"
#include "mcentral.h"
#include "options.h"
#include "testutil.h"
#include "thread.h"

static int setup(void **state)
{
    (void)state;
    gc_options o = {.debug = GC_DEBUG_VERIFY | GC_DEBUG_POISON};
    return gc_init(&o);
}

/* Run fn in a child; it must die (not exit) and print expect on stderr. */
static void expect_death(void (*fn)(void), const char *expect)
{
    int fds[2];
    char buf[8192];
    /* Cleared before the fork: the child's fn runs below this frame, and
     * stale addresses of earlier tests' objects in buf would keep alive
     * the object fn expects freed (first fit puts it at the same place). */
    memset(buf, 0, sizeof buf);
    assert_int_equal(pipe(fds), 0);
    fflush(NULL);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        dup2(fds[1], 2);
        close(fds[0]);
        alarm(120); /* a child that hangs instead of dying fails, not hangs the test */
        fn();
        _exit(0); /* surviving is a failure */
    }
    close(fds[1]);
    size_t n = 0;
    ssize_t got;
    while (n < sizeof buf - 1 && (got = read(fds[0], buf + n, sizeof buf - 1 - n)) > 0)
        n += (size_t)got;
    buf[n] = 0;
    close(fds[0]);
    int status;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!strstr(buf, expect))
        print_message("child's stderr:\n%s\n", buf);
    assert_false(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    assert_non_null(strstr(buf, expect));
}

static void *volatile global_root;

/* ---- poison -------------------------------------------------------------- */

static void write_after_free(void)
{
    uintptr_t h = make(200);
    collect(); /* freed and poisoned */
    char *stale = (char *)SHOW(h);
    stale[100] = 'x';
    /* Allocate that class until the slot comes back. */
    for (int i = 0; i < 100000; i++)
        (void)!gc_alloc(200);
}

/* The same for a large object, whose pages come back as another large
 * object (first fit: at the same place). */
static void write_after_free_large(void)
{
    uintptr_t h = make(100000);
    collect();
    char *stale = (char *)SHOW(h);
    stale[50000] = 'x';
    for (int i = 0; i < 100; i++)
        (void)!gc_alloc(100000);
}

static void test_poison_catches_write_after_free(void **state)
{
    (void)state;
#if defined(SPANGC_ASAN)
    /* AddressSanitizer sees the write itself, before poison mode can. */
    expect_death(write_after_free, "AddressSanitizer: use-after-poison");
    expect_death(write_after_free_large, "AddressSanitizer: use-after-poison");
#else
    /* The byte written, not only "write after free": unpoisoned memory
     * reports the object's stale first byte. */
    expect_death(write_after_free, ", byte 100 of a freed ");
    expect_death(write_after_free_large, ", byte 50000 of ");
#endif
}

/* ---- verify: a missed mark ---------------------------------------------- */

static uintptr_t victim;

static void unmark_victim(void)
{
    mspan *s = spangc_span_of_heap(victim);
    uint32_t idx = span_obj_index(s, victim);
    s->mark_bits[idx >> 6] &= ~((uint64_t)1 << (idx & 63));
}

static void missed_mark(void)
{
    global_root = gc_alloc(64);
    victim = (uintptr_t)gc_alloc(32);
    ((void **)global_root)[0] = (void *)victim;
    spangc_test_after_mark = unmark_victim;
    gc_collect();
}

static void test_verify_catches_missed_mark(void **state)
{
    (void)state;
    expect_death(missed_mark, "spangc: fatal: verify: object");
}

/* ---- verify: inconsistent counts ------------------------------------------ */

/* A span to corrupt: one 64-byte object's, taken off the thread cache so
 * that the span sits on its class's partial list. */
static mspan *span_off_the_cache(void)
{
    global_root = gc_alloc(64);
    mspan *s = spangc_span_of_heap((uintptr_t)global_root);
    spangc_thread *t = spangc_self;
    runtime_enter(t);
    spangc_mcache_release_all(&t->cache);
    runtime_leave(t);
    return s;
}

static void corrupt_counts(void)
{
    mspan *s = span_off_the_cache();
    s->alloc_count += 3;
    gc_collect();
}

static void test_verify_catches_bad_counts(void **state)
{
    (void)state;
    /* The span's own check, not the heap-wide totals that also fail. */
    expect_death(corrupt_counts, "objects, bitmap has");
}

/* Each of verify's other checks of a span, on a span corrupted its way. */
static void corrupt_alloc_cache(void)
{
    mspan *s = span_off_the_cache();
    s->alloc_cache ^= 1;
    gc_collect();
}

static void corrupt_list(void)
{
    mspan *s = span_off_the_cache();
    s->list = &spangc_central[s->spanclass].full[0]; /* not full */
    gc_collect();
}

static void corrupt_sweepgen(void)
{
    mspan *s = span_off_the_cache();
    ao_store(&s->sweepgen, ao_load(&s->sweepgen) - 2);
    gc_collect();
}

static void corrupt_mark_bits(void)
{
    mspan *s = span_off_the_cache();
    s->mark_bits[0] |= 1;
    gc_collect();
}

static void test_verify_checks_each_span(void **state)
{
    (void)state;
    expect_death(corrupt_alloc_cache, "alloc cache disagrees with its bitmap");
    expect_death(corrupt_list, "objects on a full list");
    expect_death(corrupt_sweepgen, "has sweepgen");
    expect_death(corrupt_mark_bits, "marked outside a mark");
}

/* ---- a corrupted span ------------------------------------------------------ */

static void corrupt_span(void)
{
    void *p = gc_alloc(48);
    mspan *s = spangc_span_of_heap((uintptr_t)p);
    s->freeindex = s->nelems + 7; /* as an overflow of metadata would */
    for (int i = 0; i < 1000; i++)
        (void)!gc_alloc(48);
}

static void test_corrupted_span_is_fatal(void **state)
{
    (void)state;
    expect_death(corrupt_span, "spangc: fatal: corrupted span");
}

/* ---- stress -------------------------------------------------------------- */

static void test_stress_collects_every_n(void **state)
{
    (void)state;
    unsigned saved = spangc_cfg.stress;
    spangc_cfg.stress = 10;
    gc_stats a, b;
    gc_get_stats(&a);
    for (int i = 0; i < 1000; i++)
        (void)!gc_alloc(16);
    gc_get_stats(&b);
    spangc_cfg.stress = saved;
    assert_in_range(b.num_gc - a.num_gc, 99, 101);
    /* Forced cycles are gc_collect's; stress cycles are not. */
    assert_int_equal(b.num_forced_gc, a.num_forced_gc);
}

/* ---- why an object is alive: spangc_debug_explain and fate_of ------------- */

static void *volatile data_root;

static __attribute__((noinline)) enum fate fate_while_on_stack(uintptr_t h)
{
    volatile uintptr_t slot = (uintptr_t)SHOW(h);
    collect();
    enum fate f = fate_of(h, HERE);
    slot = 0;
    (void)slot;
    return f;
}

/* Explain into a file: the counts, and whether the text names what. */
static spangc_referrers explain(uintptr_t h, const char *what)
{
    FILE *f = tmpfile();
    assert_non_null(f);
    spangc_referrers n;
    assert_true(spangc_debug_explain(f, SHOW(h), &n));
    rewind(f);
    char text[4096];
    size_t len = fread(text, 1, sizeof text - 1, f);
    text[len] = 0;
    fclose(f);
    assert_non_null(strstr(text, what));
    return n;
}

static void test_explain_names_the_referrer(void **state)
{
    (void)state;
    unsetenv("SPANGC_RETENTION_LOG"); /* these retentions are on purpose */
    uintptr_t h = make(64);
    /* A word of a live frame: what a stale stack slot looks like. */
    assert_int_equal(fate_while_on_stack(h), HELD_BY_STACK);
    /* An interior pointer in a data segment: a real root. */
    store((volatile uintptr_t *)&data_root, h, 8);
    collect();
    assert_int_equal(fate_of(h, HERE), WRONGLY_ALIVE);
    assert_int_equal(explain(h, "data segment").data, 1);
    /* Held by a heap object, itself held by the data segment. */
    data_root = gc_alloc(4 * sizeof(void *));
    store(&((volatile uintptr_t *)data_root)[2], h, 0);
    collect();
    spangc_referrers n = explain(h, "heap object");
    assert_int_equal(n.heap, 1);
    assert_int_equal(n.data, 0);
    assert_int_equal(fate_of(h, HERE), WRONGLY_ALIVE);
    /* Dropped. */
    data_root = NULL;
    collect();
    assert_dead(h);
}

/* Explaining lists the data segments afresh: a library loaded since the
 * last collection is seen, and one closed since is not read (its segment
 * is unmapped). */
static void test_explain_sees_libraries_loaded_since(void **state)
{
    (void)state;
    unsetenv("SPANGC_RETENTION_LOG");
    collect();
    void *lib = dlopen(TEST_ROOTS_LIB, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(lib);
    void **slot = dlsym(lib, "roots_lib_slot");
    assert_non_null(slot);
    uintptr_t h = make(64);
    store((volatile uintptr_t *)slot, h, 0);
    assert_int_equal(explain(h, "data segment").data, 1);
    *slot = NULL;
    collect(); /* the library's segment is in this cycle's list */
    assert_int_equal(dlclose(lib), 0);
    spangc_referrers n;
    FILE *f = tmpfile();
    assert_non_null(f);
    assert_false(spangc_debug_explain(f, SHOW(h), &n) && n.data > 0);
    fclose(f);
}

/* ---- AddressSanitizer sees freed objects ----------------------------------- */

#if defined(SPANGC_ASAN)
static void read_after_free(void)
{
    uintptr_t h = make(64);
    collect();
    volatile char *stale = (char *)SHOW(h);
    (void)stale[10]; /* a read of a freed object */
}

static void test_asan_reports_use_after_free(void **state)
{
    (void)state;
    expect_death(read_after_free, "AddressSanitizer: use-after-poison");
}
#endif

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_poison_catches_write_after_free),
        cmocka_unit_test(test_verify_catches_missed_mark),
        cmocka_unit_test(test_verify_catches_bad_counts),
        cmocka_unit_test(test_verify_checks_each_span),
        cmocka_unit_test(test_corrupted_span_is_fatal),
        cmocka_unit_test(test_stress_collects_every_n),
        cmocka_unit_test(test_explain_names_the_referrer),
#if defined(SPANGC_ASAN)
        cmocka_unit_test(test_asan_reports_use_after_free),
#endif
        /* Last: after a dlclose, AddressSanitizer's report of a later
         * error (in the ASan test above, in its forked child) was seen to
         * fault walking the globals of the closed library, and the child
         * then hung at exit on the lock it held. */
        cmocka_unit_test(test_explain_sees_libraries_loaded_since),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
