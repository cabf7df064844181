/*
 * test_api_misuse.c - every function of spangc.h given bad arguments: NULL,
 * addresses that are not heap objects (stack, static, malloc'd), interior
 * pointers, freed objects, calls from an unregistered thread, and calls
 * before gc_init. Each row of the tables states the documented result;
 * none may crash.
 *
 * The rows run through one engine that records results instead of
 * asserting, so the same tables can run on another thread and in a forked
 * child (before gc_init), where cmocka's assertions cannot be used; the
 * test then asserts that no row failed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <spangc.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "atomic.h"
#include "gc.h"
#include "options.h"
#include "testutil.h"

/* ---- the addresses a row can pass ------------------------------------- */

enum kind {
    K_NONE,          /* the row passes no address */
    K_NULL,
    K_STACK,         /* a local array of the thread running the rows */
    K_STATIC,
    K_MALLOC,
    K_LIVE,          /* the base of a live heap object (not a handle) */
    K_INTERIOR,      /* 8 bytes into that object */
    K_FREED,         /* a heap object a collection freed */
    K_HANDLE,        /* a live weak handle */
    K_HANDLE_INTERIOR,
    K_FREED_HANDLE,  /* a weak handle a collection freed */
    K_COUNT
};

static const char *const kind_name[K_COUNT] = {
    "", "NULL", "stack", "static", "malloc'd", "live object", "interior", "freed",
    "handle", "handle interior", "freed handle",
};

static void *addr[K_COUNT];
static long static_buf[16];
static void *volatile live_root;
static void *volatile neighbour_root;
static gc_weak *volatile handle_root;
static uintptr_t freed_h, freed_handle_h; /* hidden: no root */
static const gc_type *good_type;

/* ---- rows ---------------------------------------------------------------- */

enum want { W_EQ, W_NONNULL, W_ANY };

typedef struct row {
    const char *call;
    intptr_t (*fn)(void *p);
    enum kind kind;
    enum want want;
    intptr_t value;  /* for W_EQ */
    int err;         /* errno after the call; 0: not checked */
} row;

typedef struct result {
    intptr_t ret;
    int err;
} result;

static void fin(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
}

static intptr_t c_realloc(void *p) { return (intptr_t)gc_realloc(p, 32); }
static intptr_t c_size(void *p) { return (intptr_t)gc_size(p); }
static intptr_t c_base(void *p) { return (intptr_t)gc_base(p); }
static intptr_t c_set_fin(void *p) { return gc_set_finalizer(p, fin, NULL); }
static intptr_t c_clear_fin(void *p) { return gc_set_finalizer(p, NULL, NULL); }
static intptr_t c_weak_new(void *p) { return (intptr_t)gc_weak_new(p); }
static intptr_t c_weak_get(void *p) { return (intptr_t)gc_weak_get(p); }
static intptr_t c_remove_roots(void *p) { return gc_remove_roots(p); }
static intptr_t c_typed_with(void *p) { return (intptr_t)gc_alloc_typed(16, p); }
static intptr_t c_heap_profile(void *p) { return gc_write_heap_profile(p); }
static intptr_t c_get_stats(void *p) { gc_get_stats(p); return 0; }

/* Add, and if that worked remove again, so rows stay independent. */
static intptr_t c_add_roots(void *p)
{
    int r = gc_add_roots(p, 64);
    if (r == 0 && gc_remove_roots(p) != 0)
        return 1000;
    return r;
}

static intptr_t c_alloc(void *p) { (void)p; return (intptr_t)gc_alloc(16); }
static intptr_t c_alloc_atomic(void *p) { (void)p; return (intptr_t)gc_alloc_atomic(16); }
static intptr_t c_alloc_typed(void *p) { (void)p; return (intptr_t)gc_alloc_typed(16, good_type); }
static intptr_t c_realloc_null(void *p) { (void)p; return (intptr_t)gc_realloc(NULL, 16); }
static intptr_t c_type_new(void *p)
{
    (void)p;
    static const size_t off[] = {8};
    return (intptr_t)gc_type_new(16, off, 1);
}
static intptr_t c_init(void *p) { (void)p; return gc_init(NULL); }
static intptr_t c_register(void *p) { (void)p; return gc_register_thread(); }
static intptr_t c_unregister(void *p) { (void)p; return gc_unregister_thread(); }
static intptr_t c_run_fin(void *p) { (void)p; return (intptr_t)gc_run_finalizers(); }
static intptr_t c_version(void *p) { (void)p; return (intptr_t)gc_version(); }
static intptr_t c_disable_enable(void *p) { (void)p; gc_disable(); gc_enable(); return 0; }

static uint64_t num_gc(void)
{
    gc_stats st;
    gc_get_stats(&st);
    return st.num_gc;
}

/* 1 if gc_collect completed a cycle. */
static intptr_t c_collect_counts(void *p)
{
    (void)p;
    uint64_t before = num_gc();
    gc_collect();
    return num_gc() > before;
}

/* The heap profile to a stream that takes it. */
static intptr_t c_profile_devnull(void *p)
{
    (void)p;
    FILE *f = fopen("/dev/null", "w");
    if (!f)
        return 1000;
    int r = gc_write_heap_profile(f);
    fclose(f);
    return r;
}

#define ROW(call, fn, kind, want, value, err) {call, fn, kind, want, (intptr_t)(value), err}
#define EQ(call, fn, kind, value, err) ROW(call, fn, kind, W_EQ, value, err)

static void run_rows(const row *rows, size_t n, result *out)
{
    char stack_buf[64] = {0};
    addr[K_STACK] = stack_buf;
    for (size_t i = 0; i < n; i++) {
        errno = 0;
        out[i].ret = rows[i].fn(addr[rows[i].kind]);
        out[i].err = errno;
    }
    addr[K_STACK] = NULL;
}

/* The number of rows whose result is not the documented one; each is
 * printed. */
static int check_rows(const char *where, const row *rows, size_t n, const result *res)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) {
        const row *r = &rows[i];
        bool ok = r->want == W_ANY || (r->want == W_NONNULL ? res[i].ret != 0
                                                            : res[i].ret == r->value);
        if (r->err && res[i].err != r->err)
            ok = false;
        if (!ok) {
            fprintf(stderr, "%s: %s(%s) returned %ld errno %d; documented %ld errno %d\n", where,
                    r->call, kind_name[r->kind], (long)res[i].ret, res[i].err,
                    r->want == W_NONNULL ? 1L : (long)r->value, r->err);
            bad++;
        }
    }
    return bad;
}

static int run_and_check(const char *where, const row *rows, size_t n)
{
    result *res = calloc(n, sizeof *res);
    run_rows(rows, n, res);
    int bad = check_rows(where, rows, n, res);
    free(res);
    return bad;
}

#define RUN(where, rows) run_and_check(where, rows, sizeof rows / sizeof rows[0])

/* ---- before gc_init (a forked child) ------------------------------------- */

static const row before_init_rows[] = {
    ROW("gc_version", c_version, K_NONE, W_NONNULL, 0, 0),
    ROW("gc_type_new", c_type_new, K_NONE, W_NONNULL, 0, 0),
    EQ("gc_alloc", c_alloc, K_NONE, 0, EPERM),
    EQ("gc_alloc_atomic", c_alloc_atomic, K_NONE, 0, EPERM),
    EQ("gc_alloc_typed", c_alloc_typed, K_NONE, 0, EPERM),
    EQ("gc_realloc(NULL)", c_realloc_null, K_NONE, 0, EPERM),
    EQ("gc_realloc", c_realloc, K_STATIC, 0, EPERM),
    EQ("gc_size", c_size, K_STATIC, 0, 0),
    EQ("gc_base", c_base, K_STATIC, 0, 0),
    EQ("gc_collect (cycles)", c_collect_counts, K_NONE, 0, 0),
    EQ("gc_disable+gc_enable", c_disable_enable, K_NONE, 0, 0),
    EQ("gc_add_roots", c_add_roots, K_STATIC, -EPERM, 0),
    EQ("gc_remove_roots", c_remove_roots, K_STATIC, -ENOENT, 0),
    EQ("gc_register_thread", c_register, K_NONE, -EPERM, 0),
    EQ("gc_unregister_thread", c_unregister, K_NONE, -EINVAL, 0),
    EQ("gc_set_finalizer", c_set_fin, K_STATIC, -EPERM, 0),
    EQ("gc_run_finalizers", c_run_fin, K_NONE, 0, 0),
    EQ("gc_weak_new", c_weak_new, K_STATIC, 0, EPERM),
    EQ("gc_weak_get", c_weak_get, K_STATIC, 0, EPERM),
    EQ("gc_write_heap_profile", c_profile_devnull, K_NONE, 0, 0),
    EQ("gc_write_heap_profile", c_heap_profile, K_NULL, -EINVAL, 0),
    EQ("gc_get_stats", c_get_stats, K_NULL, 0, 0),
};

/* Runs in the child; returns the number of failures. */
static int before_init_child(void)
{
    addr[K_STATIC] = static_buf;
    good_type = gc_type_new(16, (const size_t[]){0}, 1);
    int bad = RUN("before gc_init", before_init_rows);
    /* Setters before gc_init change nothing and answer 0. */
    if (gc_set_percent(50) != 0 || gc_set_memory_limit(1 << 20) != 0) {
        fprintf(stderr, "before gc_init: a setter did not return 0\n");
        bad++;
    }
    gc_set_profile_rate(1);
    /* A gc_init refused for its options changes nothing either. The
     * signal was refused only by sigaction, once the heap was set up, and
     * gc_get_stats then showed the heap's goal and metadata. */
    gc_options bad_signal = {.suspend_signal = 32}, bad_flag = {.flags = 0x100};
    if (gc_init(&bad_signal) != -EINVAL || gc_init(&bad_flag) != -EINVAL) {
        fprintf(stderr, "before gc_init: gc_init took bad options\n");
        bad++;
    }
    gc_stats st, zero;
    memset(&st, 0xff, sizeof st);
    memset(&zero, 0, sizeof zero);
    gc_get_stats(&st);
    if (memcmp(&st, &zero, sizeof st) != 0) {
        fprintf(stderr, "before gc_init: statistics are not zero\n");
        bad++;
    }
    /* None of it got in the way of gc_init, or stuck. */
    if (gc_init(NULL) != 0 || !gc_alloc(16) || gc_set_percent(100) != 100 ||
        gc_set_memory_limit(0) != 0 || ao_load(&spangc_cfg.profile_rate) != 512 * 1024) {
        fprintf(stderr, "before gc_init: gc_init or the defaults after it went wrong\n");
        bad++;
    }
    return bad;
}

static int before_init_status = -1;

static void test_before_init(void **state)
{
    (void)state;
    /* main forked the child before gc_init ran in this process. */
    assert_true(WIFEXITED(before_init_status));
    assert_int_equal(WEXITSTATUS(before_init_status), 0);
}

/* ---- bad addresses, on a registered thread ------------------------------- */

static __attribute__((noinline)) void make_freed(void)
{
    /* 200 bytes: a size class none of the rows allocates, so the freed
     * slot is not handed out again while the rows run; and a live
     * neighbour in its span, so its pages are not given to another span
     * either. The handles' span holds handle_root. */
    neighbour_root = gc_alloc(200);
    freed_h = HIDE(gc_alloc(200));
    freed_handle_h = HIDE(gc_weak_new(gc_alloc(200)));
}

static int setup(void **state)
{
    (void)state;
    /* The environment counts: ctest runs this again with
     * GC_DEBUG=verify,poison. */
    if (gc_init(NULL) != 0)
        return -1;
    good_type = gc_type_new(16, (const size_t[]){0}, 1);
    live_root = gc_alloc(64);
    handle_root = gc_weak_new(live_root);
    make_freed();
    collect();
    collect(); /* the first frees the handle's target, the second the handle */
    if (alive(freed_h) || alive(freed_handle_h))
        return -1;
    addr[K_STATIC] = static_buf;
    addr[K_MALLOC] = calloc(1, 64);
    addr[K_LIVE] = live_root;
    addr[K_INTERIOR] = (char *)live_root + 8;
    addr[K_FREED] = SHOW(freed_h);
    addr[K_HANDLE] = handle_root;
    addr[K_HANDLE_INTERIOR] = (char *)handle_root + 8;
    addr[K_FREED_HANDLE] = SHOW(freed_handle_h);
    return addr[K_MALLOC] && good_type && handle_root ? 0 : -1;
}

#define NOT_AN_OBJECT(call, fn, value, err)                                     \
    EQ(call, fn, K_NULL, value, err), EQ(call, fn, K_STACK, value, err),        \
        EQ(call, fn, K_STATIC, value, err), EQ(call, fn, K_MALLOC, value, err), \
        EQ(call, fn, K_INTERIOR, value, err), EQ(call, fn, K_FREED, value, err)

static const row address_rows[] = {
    /* gc_realloc: NULL is gc_alloc; anything but a live base is EINVAL. */
    ROW("gc_realloc", c_realloc, K_NULL, W_NONNULL, 0, 0),
    EQ("gc_realloc", c_realloc, K_STACK, 0, EINVAL),
    EQ("gc_realloc", c_realloc, K_STATIC, 0, EINVAL),
    EQ("gc_realloc", c_realloc, K_MALLOC, 0, EINVAL),
    EQ("gc_realloc", c_realloc, K_INTERIOR, 0, EINVAL),
    EQ("gc_realloc", c_realloc, K_FREED, 0, EINVAL),
    EQ("gc_realloc", c_realloc, K_HANDLE_INTERIOR, 0, EINVAL),
    NOT_AN_OBJECT("gc_size", c_size, 0, 0),
    EQ("gc_size", c_size, K_LIVE, 64, 0),
    /* gc_base welcomes interior pointers, nothing else that is not an
     * object. */
    EQ("gc_base", c_base, K_NULL, 0, 0),
    EQ("gc_base", c_base, K_STACK, 0, 0),
    EQ("gc_base", c_base, K_STATIC, 0, 0),
    EQ("gc_base", c_base, K_MALLOC, 0, 0),
    EQ("gc_base", c_base, K_FREED, 0, 0),
    EQ("gc_base", c_base, K_FREED_HANDLE, 0, 0),
    NOT_AN_OBJECT("gc_set_finalizer", c_set_fin, -EINVAL, 0),
    EQ("gc_set_finalizer", c_set_fin, K_FREED_HANDLE, -EINVAL, 0),
    NOT_AN_OBJECT("gc_set_finalizer(fn NULL)", c_clear_fin, -EINVAL, 0),
    EQ("gc_set_finalizer(fn NULL)", c_clear_fin, K_LIVE, -ENOENT, 0),
    NOT_AN_OBJECT("gc_weak_new", c_weak_new, 0, EINVAL),
    EQ("gc_weak_new", c_weak_new, K_FREED_HANDLE, 0, EINVAL),
    EQ("gc_weak_get", c_weak_get, K_NULL, 0, 0),
    EQ("gc_weak_get", c_weak_get, K_STACK, 0, EINVAL),
    EQ("gc_weak_get", c_weak_get, K_STATIC, 0, EINVAL),
    EQ("gc_weak_get", c_weak_get, K_MALLOC, 0, EINVAL),
    EQ("gc_weak_get", c_weak_get, K_LIVE, 0, EINVAL),
    EQ("gc_weak_get", c_weak_get, K_INTERIOR, 0, EINVAL),
    EQ("gc_weak_get", c_weak_get, K_HANDLE_INTERIOR, 0, EINVAL),
    EQ("gc_weak_get", c_weak_get, K_FREED_HANDLE, 0, EINVAL),
    /* Memory outside the heap may be added; memory inside may not. */
    EQ("gc_add_roots", c_add_roots, K_NULL, -EINVAL, 0),
    EQ("gc_add_roots", c_add_roots, K_STACK, 0, 0),
    EQ("gc_add_roots", c_add_roots, K_STATIC, 0, 0),
    EQ("gc_add_roots", c_add_roots, K_MALLOC, 0, 0),
    EQ("gc_add_roots", c_add_roots, K_LIVE, -EINVAL, 0),
    EQ("gc_add_roots", c_add_roots, K_INTERIOR, -EINVAL, 0),
    EQ("gc_add_roots", c_add_roots, K_FREED, -EINVAL, 0),
    NOT_AN_OBJECT("gc_remove_roots", c_remove_roots, -ENOENT, 0),
    /* Only gc_type_new makes a type; none of these reads past 16 bytes. */
    EQ("gc_alloc_typed", c_typed_with, K_NULL, 0, EINVAL),
    EQ("gc_alloc_typed", c_typed_with, K_STACK, 0, EINVAL),
    EQ("gc_alloc_typed", c_typed_with, K_STATIC, 0, EINVAL),
    EQ("gc_alloc_typed", c_typed_with, K_MALLOC, 0, EINVAL),
    EQ("gc_alloc_typed", c_typed_with, K_LIVE, 0, EINVAL),
    EQ("gc_alloc_typed", c_typed_with, K_INTERIOR, 0, EINVAL),
    EQ("gc_write_heap_profile", c_heap_profile, K_NULL, -EINVAL, 0),
    EQ("gc_get_stats", c_get_stats, K_NULL, 0, 0),
};

static void test_bad_addresses(void **state)
{
    (void)state;
    assert_int_equal(RUN("registered thread", address_rows), 0);
    /* The interior pointer's base, and the live objects unharmed. */
    assert_ptr_equal(gc_base(addr[K_INTERIOR]), live_root);
    assert_ptr_equal(gc_weak_get(handle_root), live_root);
    assert_int_equal(gc_size(live_root), 64);
    collect();
}

/* ---- arguments other than addresses -------------------------------------- */

static void test_type_new_arguments(void **state)
{
    (void)state;
    static const struct {
        size_t size;
        size_t off[2];
        size_t count;
        bool null_offsets;
    } bad[] = {
        {0, {0}, 0, false},                       /* size 0 */
        {16, {0}, 1, true},                       /* NULL offsets, count 1 */
        {16, {4}, 1, false},                      /* misaligned */
        {16, {16}, 1, false},                     /* at the end */
        {16, {SIZE_MAX - 7}, 1, false},           /* offset + 8 wraps to 0 */
        {8, {0, 0}, 2, false},                    /* more offsets than words */
        {(size_t)1 << 40, {(size_t)1 << 39}, 1, false}, /* word index > 32 bits */
        {12, {0}, 1, false}, /* packed: element 1's pointer would be at byte 12 */
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        errno = 0;
        const gc_type *t =
            gc_type_new(bad[i].size, bad[i].null_offsets ? NULL : bad[i].off, bad[i].count);
        if (t)
            print_error("row %zu: gc_type_new accepted a bad layout\n", i);
        assert_null(t);
        assert_int_equal(errno, EINVAL);
    }
    /* Duplicates are allowed. */
    assert_non_null(gc_type_new(16, (const size_t[]){8, 8}, 2));
}

static void test_other_arguments(void **state)
{
    (void)state;
    /* Lifecycle. */
    assert_int_equal(gc_init(NULL), -EEXIST);
    gc_options bad = {.suspend_signal = 9};
    assert_int_equal(gc_init(&bad), -EEXIST);
    assert_int_equal(gc_register_thread(), -EEXIST);
    char version[32];
    snprintf(version, sizeof version, "%d.%d.%d", SPANGC_VERSION_MAJOR, SPANGC_VERSION_MINOR,
             SPANGC_VERSION_PATCH);
    assert_string_equal(gc_version(), version);

    /* Size 0: a unique object. */
    void *a = gc_alloc(0), *b = gc_alloc(0);
    assert_non_null(a);
    assert_non_null(b);
    assert_ptr_not_equal(a, b);

    /* Roots: length 0, a range wrapping around, one covering the whole
     * heap (refused without walking it page by page), twice the same. */
    assert_int_equal(gc_add_roots(static_buf, 0), -EINVAL);
    assert_int_equal(gc_add_roots((void *)(UINTPTR_MAX - 15), 64), -EINVAL);
    assert_int_equal(gc_add_roots((void *)4096, (size_t)1 << 47), -EINVAL);
    /* A range with an unmapped page would fault at the next collection. */
    long page = sysconf(_SC_PAGESIZE);
    char *hole = mmap(NULL, (size_t)page * 3, PROT_READ | PROT_WRITE,
                      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(hole != MAP_FAILED);
    assert_int_equal(munmap(hole + page, (size_t)page), 0);
    assert_int_equal(gc_add_roots(hole, (size_t)page * 3), -EFAULT);
    assert_int_equal(gc_add_roots(hole, (size_t)page), 0);
    assert_int_equal(gc_remove_roots(hole), 0);
    munmap(hole, (size_t)page);
    munmap(hole + 2 * page, (size_t)page);
    /* So would a page mapped without read permission (mincore, the first
     * check, took it for a good one). The last page only: a range is
     * checked to its end. */
    char *guarded = mmap(NULL, (size_t)page * 2, PROT_READ | PROT_WRITE,
                         MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(guarded != MAP_FAILED);
    assert_int_equal(mprotect(guarded + page, (size_t)page, PROT_NONE), 0);
    assert_int_equal(gc_add_roots(guarded, (size_t)page + 8), -EFAULT);
    assert_int_equal(gc_add_roots(guarded + 8, (size_t)page - 8), 0);
    assert_int_equal(gc_remove_roots(guarded + 8), 0);
    munmap(guarded, (size_t)page * 2);
    assert_int_equal(gc_add_roots(static_buf, sizeof static_buf), 0);
    assert_int_equal(gc_add_roots(static_buf, sizeof static_buf), -EEXIST);
    assert_int_equal(gc_remove_roots(static_buf), 0);
    assert_int_equal(gc_remove_roots(static_buf), -ENOENT);

    /* A type pointer that no gc_type_new made is refused without being
     * read through: made-up addresses crashed, and a pointer into a type
     * must not pass for one. */
    char *gone = mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(gone != MAP_FAILED);
    munmap(gone, (size_t)page);
    const void *not_types[] = {(void *)1, (void *)0x1000, (void *)0xdeadbeef0,
                               (void *)UINTPTR_MAX, gone, (const char *)good_type + 1,
                               (const char *)good_type + 16};
    for (size_t i = 0; i < sizeof not_types / sizeof not_types[0]; i++) {
        errno = 0;
        assert_null(gc_alloc_typed(16, not_types[i]));
        assert_int_equal(errno, EINVAL);
    }

    /* Finalizers: twice is EEXIST, removing none ENOENT. */
    void *obj = gc_alloc(32);
    assert_int_equal(gc_set_finalizer(obj, fin, NULL), 0);
    assert_int_equal(gc_set_finalizer(obj, fin, NULL), -EEXIST);
    assert_int_equal(gc_set_finalizer(obj, NULL, NULL), 0);
    assert_int_equal(gc_set_finalizer(obj, NULL, NULL), -ENOENT);

    /* Collection switches: an unmatched gc_enable is ignored, so one
     * gc_disable still disables. */
    gc_enable();
    gc_enable();
    gc_disable();
    assert_int_equal(ao_load(&spangc_gc.disabled), 1);
    gc_enable();
    assert_int_equal(ao_load(&spangc_gc.disabled), 0);
    assert_int_equal(gc_set_percent(INT_MIN), 100);
    assert_int_equal(gc_set_percent(100), -1);
    assert_int_equal(gc_set_memory_limit(UINT64_MAX), 0);
    assert_true(gc_set_memory_limit(0) == UINT64_MAX);
    gc_set_profile_rate(SIZE_MAX);
    assert_non_null(gc_alloc(100));
    gc_set_profile_rate(512 * 1024);

    /* The heap profile: a stream that cannot be written. */
    FILE *full = fopen("/dev/full", "w");
    if (full) {
        assert_int_equal(gc_write_heap_profile(full), -EIO);
        fclose(full);
    }
    gc_stats st;
    gc_get_stats(NULL);
    gc_get_stats(&st);
    assert_true(st.mallocs > 0);
    collect();
}

/* ---- from an unregistered thread ------------------------------------------ */

static int fin_ran;

static void counting_fin(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
    fin_ran++;
}

static __attribute__((noinline)) void queue_a_finalizer(void)
{
    void *o = gc_alloc(48);
    gc_set_finalizer(o, counting_fin, NULL);
}

static const row unregistered_rows[] = {
    EQ("gc_init", c_init, K_NONE, -EEXIST, 0),
    EQ("gc_alloc", c_alloc, K_NONE, 0, EPERM),
    EQ("gc_alloc_atomic", c_alloc_atomic, K_NONE, 0, EPERM),
    EQ("gc_alloc_typed", c_alloc_typed, K_NONE, 0, EPERM),
    EQ("gc_realloc(NULL)", c_realloc_null, K_NONE, 0, EPERM),
    EQ("gc_realloc", c_realloc, K_LIVE, 0, EPERM),
    EQ("gc_size", c_size, K_LIVE, 0, 0),
    EQ("gc_base", c_base, K_INTERIOR, 0, 0),
    EQ("gc_set_finalizer", c_set_fin, K_LIVE, -EPERM, 0),
    EQ("gc_run_finalizers", c_run_fin, K_NONE, 0, 0),
    EQ("gc_weak_new", c_weak_new, K_LIVE, 0, EPERM),
    EQ("gc_weak_get", c_weak_get, K_HANDLE, 0, EPERM),
    EQ("gc_unregister_thread", c_unregister, K_NONE, -EINVAL, 0),
    /* What any thread may do. */
    ROW("gc_type_new", c_type_new, K_NONE, W_NONNULL, 0, 0),
    EQ("gc_add_roots", c_add_roots, K_STATIC, 0, 0),
    EQ("gc_add_roots", c_add_roots, K_STACK, 0, 0),
    EQ("gc_remove_roots", c_remove_roots, K_STATIC, -ENOENT, 0),
    EQ("gc_collect (cycles)", c_collect_counts, K_NONE, 1, 0),
    EQ("gc_write_heap_profile", c_profile_devnull, K_NONE, 0, 0),
    EQ("gc_get_stats", c_get_stats, K_NULL, 0, 0),
    ROW("gc_version", c_version, K_NONE, W_NONNULL, 0, 0),
    /* And then it registers. */
    EQ("gc_register_thread", c_register, K_NONE, 0, 0),
    EQ("gc_register_thread", c_register, K_NONE, -EEXIST, 0),
    ROW("gc_alloc", c_alloc, K_NONE, W_NONNULL, 0, 0),
    EQ("gc_unregister_thread", c_unregister, K_NONE, 0, 0),
    EQ("gc_unregister_thread", c_unregister, K_NONE, -EINVAL, 0),
};

static void *unregistered_thread(void *arg)
{
    (void)arg;
    return (void *)(intptr_t)RUN("unregistered thread", unregistered_rows);
}

static void test_unregistered_thread(void **state)
{
    (void)state;
    queue_a_finalizer();
    collect(); /* finds it unreachable and queues its finalizer */
    pthread_t th;
    void *bad;
    assert_int_equal(pthread_create(&th, NULL, unregistered_thread, NULL), 0);
    pthread_join(th, &bad);
    assert_int_equal((intptr_t)bad, 0);
    /* The thread ran nothing; the finalizer is still queued for us. */
    assert_int_equal(fin_ran, 0);
    assert_int_equal(gc_run_finalizers(), 1);
    assert_int_equal(fin_ran, 1);
    collect();
}

int main(void)
{
    /* Before gc_init: a child process, forked while this one is still
     * uninitialized and single-threaded. */
    fflush(NULL);
    pid_t pid = fork();
    if (pid == 0)
        _exit(before_init_child() ? 1 : 0);
    if (pid > 0)
        waitpid(pid, &before_init_status, 0);

    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_before_init),
        cmocka_unit_test(test_bad_addresses),
        cmocka_unit_test(test_type_new_arguments),
        cmocka_unit_test(test_other_arguments),
        cmocka_unit_test(test_unregistered_thread),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
