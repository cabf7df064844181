/*
 * test_oom.c - running out of OS memory (runtime/os.h's failure
 * injection): allocation returns NULL with errno ENOMEM only after one
 * forced collection and one call of gc_options.oom_fn, objects already
 * allocated are untouched, the heap still verifies, and allocation works
 * again once memory comes back. Also requests too big for any heap, and
 * the metadata allocator failing under the public calls that need it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <spangc.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "metalloc.h"
#include "os.h"
#include "testutil.h"
#include "thread.h"

/* What the out-of-memory hook saw. num_gc_at_call proves the forced
 * collection came first. */
static struct {
    int calls;
    size_t size;
    uint64_t num_gc_at_call;
    bool release; /* end the injected failure, as if memory was freed */
} oom;

static void on_oom(size_t size)
{
    gc_stats st;
    gc_get_stats(&st);
    oom.calls++;
    oom.size = size;
    oom.num_gc_at_call = st.num_gc;
    if (oom.release)
        spangc_os_inject_failure(0, false);
}

static int setup(void **state)
{
    (void)state;
    /* The environment counts: ctest runs this again with
     * GC_DEBUG=verify,poison. */
    gc_options o = {.oom_fn = on_oom};
    return gc_init(&o);
}

static void reset_oom(void)
{
    memset(&oom, 0, sizeof oom);
}

static uint64_t num_gc(void)
{
    gc_stats st;
    gc_get_stats(&st);
    return st.num_gc;
}

/* A large object size no free span can hold: the request must reach the
 * OS. */
static size_t needs_new_memory(void)
{
    gc_stats st;
    gc_get_stats(&st);
    return (size_t)st.heap_sys + ((size_t)1 << 20) + 1;
}

/* A request no heap could hold fails at once: no collection, no hook,
 * and no overflow in the page arithmetic on the way. */
static void test_impossible_sizes(void **state)
{
    (void)state;
    const gc_type *t = GC_TYPE(struct { void *p; long x; }, 0);
    assert_non_null(t);
    size_t sizes[] = {SIZE_MAX, SIZE_MAX / 2, SIZE_MAX - 15, (size_t)1 << 48,
                      ((size_t)1 << 47) + 1};
    reset_oom();
    uint64_t before = num_gc();
    void *keep = gc_alloc(64);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        errno = 0;
        assert_null(gc_alloc(sizes[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gc_alloc_atomic(sizes[i]));
        assert_int_equal(errno, ENOMEM);
        errno = 0;
        assert_null(gc_alloc_typed(sizes[i], t));
        assert_int_equal(errno, ENOMEM);
        /* An element count times the element size, as a caller would
         * write it, wrapped or not. */
        errno = 0;
        assert_null(gc_realloc(keep, sizes[i]));
        assert_int_equal(errno, ENOMEM);
    }
    /* An element count times the element size, as a caller writes it. */
    errno = 0;
    assert_null(gc_alloc_typed((SIZE_MAX / 16) * 16, t));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(oom.calls, 0);
    assert_int_equal(num_gc(), before);
    assert_int_equal(gc_size(keep), 64);
    collect();
}

/* More than RAM and swap together fails at once too, and takes no address
 * space or metadata with it: it once reserved the range, wrote a span
 * pointer for each of its pages (a gigabyte per terabyte asked for), and a
 * request for 64 TiB ended in the OOM killer. */
static void test_bigger_than_the_machine(void **state)
{
    (void)state;
    uint64_t machine = spangc_os_memory_total();
    assert_true(machine > 0 && machine < ((uint64_t)1 << 46));
    size_t sizes[] = {(size_t)machine + 1, (size_t)machine + 8192, (size_t)1 << 40,
                      (size_t)1 << 46};
    reset_oom();
    collect();
    gc_stats st0, st1;
    gc_get_stats(&st0);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (sizes[i] <= machine)
            continue;
        errno = 0;
        assert_null(gc_alloc_atomic(sizes[i]));
        assert_int_equal(errno, ENOMEM);
    }
    gc_get_stats(&st1);
    assert_int_equal(oom.calls, 0);
    assert_int_equal(st1.num_gc, st0.num_gc);
    assert_int_equal(st1.heap_sys, st0.heap_sys);
    assert_int_equal(st1.metadata_sys, st0.metadata_sys);
    /* Something the machine can hold is still given. */
    assert_non_null(gc_alloc_atomic(1 << 20));
}

/* A large object with the OS refusing everything: NULL and ENOMEM, after
 * one forced collection and one hook call with the requested size. */
static void test_large_object_oom(void **state)
{
    (void)state;
    gc_disable(); /* only the forced collection may run */
    unsigned char *kept = gc_alloc(40000);
    memset(kept, 0x5a, 40000);
    reset_oom();
    uint64_t before = num_gc();
    size_t large = needs_new_memory();
    spangc_os_inject_failure(1, true);
    errno = 0;
    void *p = gc_alloc(large);
    int e = errno;
    spangc_os_inject_failure(0, false);
    assert_null(p);
    assert_int_equal(e, ENOMEM);
    assert_int_equal(oom.calls, 1);
    assert_int_equal(oom.size, large);
    assert_true(oom.num_gc_at_call == before + 1);
    assert_int_equal(num_gc(), before + 1);
    for (size_t i = 0; i < 40000; i++)
        assert_int_equal(kept[i], 0x5a);
    collect();

    /* Memory is back: the same request succeeds and is usable. */
    unsigned char *big = gc_alloc(large);
    assert_non_null(big);
    assert_int_equal(big[0], 0);
    assert_int_equal(big[large - 1], 0);
    big[0] = big[large - 1] = 1;
    assert_int_equal(oom.calls, 1);
    gc_enable();
    collect();
}

/* gc_alloc_atomic, gc_alloc_typed and gc_realloc fail the same way; a
 * failed gc_realloc leaves the old object as it was. */
static void test_other_allocators_oom(void **state)
{
    (void)state;
    const gc_type *t = GC_TYPE(struct { void *p; long x; }, 0);
    assert_non_null(t);
    gc_disable();
    char *old = gc_alloc(100);
    memcpy(old, "still here", 11);
    size_t large = needs_new_memory();
    spangc_os_inject_failure(1, true);
    for (int i = 0; i < 3; i++) {
        reset_oom();
        uint64_t before = num_gc();
        errno = 0;
        void *p = i == 0   ? gc_alloc_atomic(large)
                  : i == 1 ? gc_alloc_typed(large, t)
                           : gc_realloc(old, large);
        assert_null(p);
        assert_int_equal(errno, ENOMEM);
        assert_int_equal(oom.calls, 1);
        assert_int_equal(oom.size, large);
        assert_int_equal(num_gc(), before + 1);
    }
    spangc_os_inject_failure(0, false);
    assert_string_equal(old, "still here");
    assert_int_equal(gc_size(old), 112);
    char *grown = gc_realloc(old, large);
    assert_non_null(grown);
    assert_string_equal(grown, "still here");
    gc_enable();
    collect();
}

/* Small objects: fill the heap with live 4 KiB objects while the OS
 * refuses to grow it, until an allocation fails; then every object still
 * holds what was written into it, the heap verifies, and allocation works
 * again once the OS does. The objects are in a static array, a root. */
enum { MAX_SMALL = 1 << 16, SMALL = 4096 };
static unsigned char *small[MAX_SMALL];

static void test_small_objects_oom(void **state)
{
    (void)state;
    gc_disable();
    reset_oom();
    spangc_os_inject_failure(1, true);
    uint64_t before = num_gc();
    size_t n = 0;
    int e = 0;
    while (n < MAX_SMALL) {
        errno = 0;
        unsigned char *p = gc_alloc(SMALL);
        if (!p) {
            e = errno;
            break;
        }
        memset(p, (int)(n % 251) + 1, SMALL);
        small[n++] = p;
    }
    spangc_os_inject_failure(0, false);
    assert_true(n < MAX_SMALL); /* it did run out */
    assert_int_equal(e, ENOMEM);
    assert_int_equal(oom.calls, 1);
    assert_int_equal(oom.size, SMALL);
    /* A collection came before the hook. Not necessarily only one: the
     * first failure's collection frees the earlier tests' garbage, and
     * the loop runs on until a second one frees nothing. */
    assert_true(oom.num_gc_at_call > before);
    for (size_t i = 0; i < n; i++) {
        assert_int_equal(small[i][0], i % 251 + 1);
        assert_int_equal(small[i][SMALL - 1], i % 251 + 1);
    }
    collect();
    for (int i = 0; i < 1000; i++)
        assert_non_null(gc_alloc(SMALL));
    memset(small, 0, sizeof small);
    gc_enable();
    collect();
}

/* The hook may release memory: the allocation is retried after it and
 * succeeds, and NULL is not returned. */
static void test_hook_releases_memory(void **state)
{
    (void)state;
    gc_disable();
    reset_oom();
    oom.release = true;
    spangc_os_inject_failure(1, true);
    void *p = gc_alloc_atomic(needs_new_memory());
    spangc_os_inject_failure(0, false);
    assert_non_null(p);
    assert_int_equal(oom.calls, 1);
    reset_oom();
    gc_enable();
    collect();
}

/* A single failing request is absorbed by the retry after the forced
 * collection: the hook is not called. */
static void test_one_failure_is_retried(void **state)
{
    (void)state;
    gc_disable();
    reset_oom();
    uint64_t before = num_gc();
    size_t large = needs_new_memory();
    spangc_os_inject_failure(1, false);
    void *p = gc_alloc(large);
    spangc_os_inject_failure(0, false);
    assert_non_null(p);
    assert_int_equal(oom.calls, 0);
    assert_int_equal(num_gc(), before + 1);
    gc_enable();
    collect();
}

/* The metadata allocator (runtime/metalloc.c) failing: the public calls
 * that need metadata return their documented ENOMEM, and work again
 * afterwards. The metadata free lists and the current chunk are used up
 * first, so that every metadata request reaches the OS. */
typedef struct held {
    struct held *next;
    size_t size;
} held;

static held *exhaust_metadata(void)
{
    held *list = NULL;
    for (size_t size = 32768; size >= 16; size /= 2) {
        held *h;
        while ((h = spangc_meta_alloc(size)) != NULL) {
            h->next = list;
            h->size = size;
            list = h;
        }
    }
    return list;
}

static void give_back(held *list)
{
    while (list) {
        held *next = list->next;
        spangc_meta_free(list, list->size);
        list = next;
    }
}

static void dummy_finalizer(void *obj, void *arg)
{
    (void)obj;
    (void)arg;
}

static void test_metadata_oom(void **state)
{
    (void)state;
    enum { BIG = 32768 }; /* a 128 KiB layout: more than the region of
                             types commits ahead (runtime/metalloc.c) */
    static size_t offsets[BIG];
    for (size_t i = 0; i < BIG; i++)
        offsets[i] = i * sizeof(void *);
    char *obj = gc_alloc(64);
    void *keep_weak = gc_alloc_atomic(16); /* a cached span for the handle */
    (void)keep_weak;
    static char range[64];

    gc_disable();
    spangc_os_inject_failure(1, true);
    held *list = exhaust_metadata();
    errno = 0;
    /* A layout the committed part of the region of types cannot hold
     * needs the OS (a small one may still fit). */
    assert_null(gc_type_new(BIG * sizeof(void *), offsets, BIG));
    assert_int_equal(errno, ENOMEM);
    assert_int_equal(gc_set_finalizer(obj, dummy_finalizer, NULL), -ENOMEM);
    errno = 0;
    assert_null(gc_weak_new(obj));
    assert_int_equal(errno, ENOMEM);
    /* The first added range needs a table. */
    assert_int_equal(gc_add_roots(range, sizeof range), -ENOMEM);
    spangc_os_inject_failure(0, false);
    give_back(list);
    gc_enable();

    assert_non_null(gc_type_new(BIG * sizeof(void *), offsets, BIG));
    assert_int_equal(gc_set_finalizer(obj, dummy_finalizer, NULL), 0);
    assert_int_equal(gc_set_finalizer(obj, NULL, NULL), 0);
    assert_non_null(gc_weak_new(obj));
    assert_int_equal(gc_add_roots(range, sizeof range), 0);
    assert_int_equal(gc_remove_roots(range), 0);
    collect();
}

/* Objects with finalizers dying when there is no memory left: their
 * finalizers are queued all the same, and run. Queueing once took a block
 * of metadata per 126 finalizers, and the sweeper died ("out of metadata
 * memory queueing a finalizer") when it could not get one. */
enum { DYING = 1000 };
static uintptr_t dying[DYING]; /* hidden: not roots */
static int finalized;

static void count_finalizer(void *obj, void *arg)
{
    assert_int_equal(*(int *)obj, 7);
    assert_ptr_equal(arg, &finalized);
    finalized++;
}

/* On a thread that exits: no copy of an address stays in a live frame. */
static void make_dying(void *arg)
{
    (void)arg;
    for (int i = 0; i < DYING; i++) {
        int *p = gc_alloc(48);
        assert_non_null(p);
        *p = 7;
        assert_int_equal(gc_set_finalizer(p, count_finalizer, &finalized), 0);
        dying[i] = HIDE(p);
    }
}

static void test_finalizers_queue_without_memory(void **state)
{
    (void)state;
    collect();
    gc_run_finalizers();
    run_on_a_registered_thread(make_dying, NULL);
    spangc_os_inject_failure(1, true);
    held *list = exhaust_metadata();
    assert_null(spangc_meta_alloc(16));
    finalized = 0;
    scrub_stack();
    gc_collect(); /* sweeps every span: all DYING are queued */
    size_t ran = gc_run_finalizers();
    spangc_os_inject_failure(0, false);
    give_back(list);
    /* All of them, but an object a stale word elsewhere still holds
     * (testutil.h, fate_of): the next cycle frees those that ran. */
    collect();
    size_t kept = 0;
    for (int i = 0; i < DYING; i++) {
        if (alive(dying[i])) {
            assert_int_equal(fate_of(dying[i], HERE), HELD_BY_STACK);
            kept++;
        }
    }
    assert_true(kept <= 2);
    assert_int_equal(ran + kept, DYING);
    assert_int_equal(finalized, ran);
}

/* A thread registering when its record fits but the list of its TLS
 * blocks does not: it gets ENOMEM, not a registration whose thread-local
 * variables would go unscanned (it once got 0, with no block listed), and
 * registers fine once memory is back. */
static void *register_and_leave(void *arg)
{
    int *err = arg;
    *err = gc_register_thread();
    if (*err == 0)
        gc_unregister_thread();
    return NULL;
}

static int register_a_thread(void)
{
    int err = 1;
    run_on_a_thread(register_and_leave, &err);
    return err;
}

static void test_thread_tls_list_without_memory(void **state)
{
    (void)state;
    size_t record = 16; /* the metadata class of a thread's record */
    while (record < sizeof(spangc_thread))
        record *= 2;
    assert_true(8 * sizeof(tls_block) <= record / 2); /* another class */
    void *for_the_record = spangc_meta_alloc(record);
    assert_non_null(for_the_record);
    spangc_os_inject_failure(1, true);
    held *list = exhaust_metadata();
    spangc_meta_free(for_the_record, record);
    int err = register_a_thread();
    spangc_os_inject_failure(0, false);
    give_back(list);
    assert_int_equal(err, -ENOMEM);
    assert_int_equal(register_a_thread(), 0);
}

/* Types are never freed, and their region has a size: when it is full,
 * gc_type_new fails with ENOMEM, and the types made before still work.
 * In a child, since the region stays full for good. */
static void test_types_run_out(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        enum { WORDS = 4096 }; /* 16 KiB a type: the region fills fast */
        static size_t offsets[WORDS];
        for (size_t i = 0; i < WORDS; i++)
            offsets[i] = i * sizeof(void *);
        const gc_type *early = gc_type_new(2 * sizeof(void *), offsets, 2);
        int made = 0;
        for (;;) {
            errno = 0;
            if (!gc_type_new(WORDS * sizeof(void *), offsets, WORDS))
                break;
            made++;
        }
        if (errno != ENOMEM || made < 100)
            _exit(2);
        void **p = gc_alloc_typed(64, early);
        if (!p || gc_size(p) < 64)
            _exit(3);
        errno = 0;
        if (gc_alloc_typed(64, (const gc_type *)0x1000) || errno != EINVAL)
            _exit(4);
        _exit(0);
    }
    assert_child_succeeded(pid);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_impossible_sizes),
        cmocka_unit_test(test_bigger_than_the_machine),
        cmocka_unit_test(test_large_object_oom),
        cmocka_unit_test(test_other_allocators_oom),
        cmocka_unit_test(test_small_objects_oom),
        cmocka_unit_test(test_hook_releases_memory),
        cmocka_unit_test(test_one_failure_is_retried),
        cmocka_unit_test(test_metadata_oom),
        cmocka_unit_test(test_finalizers_queue_without_memory),
        cmocka_unit_test(test_thread_tls_list_without_memory),
        cmocka_unit_test(test_types_run_out),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
