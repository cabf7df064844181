/*
 * test_weak.c - weak handles: cleared when the target dies, never while
 * it lives, cleared before the target's finalizer runs, one handle per
 * object, handles are collectable, bad arguments, and reads racing with
 * the background sweeper.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>

#include "atomic.h"
#include "gc.h"
#include "mheap.h"
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
static gc_weak *volatile weak_root;

static __attribute__((noinline)) uintptr_t make_with_handle(size_t size)
{
    char *obj = gc_alloc(size);
    memset(obj, 0x42, size);
    weak_root = gc_weak_new(obj);
    return HIDE(obj);
}

static __attribute__((noinline)) bool weak_is(uintptr_t h)
{
    return gc_weak_get(weak_root) == SHOW(h);
}

static void test_cleared_when_target_dies(void **state)
{
    (void)state;
    uintptr_t h = make_with_handle(64);
    assert_non_null(weak_root);
    assert_true(weak_is(h));
    store((volatile uintptr_t *)&global_root, h, 0);
    for (int i = 0; i < 5; i++) {
        collect();
        assert_true(weak_is(h)); /* never cleared while it lives */
    }
    global_root = NULL;
    collect();
    enum fate f = fate_of(h, HERE);
    assert_int_not_equal(f, WRONGLY_ALIVE);
    if (f == HELD_BY_STACK) {
        /* A stale stack word keeps it (testutil.h): the handle agrees. */
        assert_true(weak_is(h));
        return;
    }
    assert_null(gc_weak_get(weak_root));
    /* Once cleared, always cleared. */
    collect();
    assert_null(gc_weak_get(weak_root));
}

/* Called right after a mark, with the world stopped: the background
 * sweeper, and every other sweep of "the next unswept span", stay off
 * until the test lets go (sweep_state.world_stopped, gc/sweep.c). */
static void hold_sweepers(void)
{
    ao_add(&spangc_sweep.world_stopped, 1);
    spangc_test_after_mark = NULL;
}

/* A large target, and one that dies in an automatic cycle (lazy sweep):
 * the read sweeps the target's span before answering. With the
 * background sweeper left on, it often cleared the handle first, and a
 * read that did not sweep passed half the time. */
static void test_cleared_by_lazy_sweep(void **state)
{
    (void)state;
    uintptr_t h = make_with_handle(50000);
    scrub_stack(); /* no stale copy of the target below us */
    gc_stats a, b;
    gc_get_stats(&a);
    spangc_test_after_mark = hold_sweepers;
    do {
        for (int i = 0; i < 1000; i++)
            (void)!gc_alloc(100);
        gc_get_stats(&b);
    } while (b.num_gc == a.num_gc);
    mspan *s = spangc_span_of((uintptr_t)SHOW(h));
    bool unswept = ao_load(&s->sweepgen) != ao_load(&spangc_heap.sweepgen);
    void *got = gc_weak_get(weak_root);
    ao_sub(&spangc_sweep.world_stopped, 1);
    assert_true(unswept);
    assert_null(got);
}

static bool finalizer_saw_null;
static int finalizer_calls;

static void check_handle_in_finalizer(void *obj, void *arg)
{
    (void)obj;
    finalizer_calls++;
    finalizer_saw_null = gc_weak_get((gc_weak *)arg) == NULL;
}

static __attribute__((noinline)) void make_finalizable_with_handle(void)
{
    char *obj = gc_alloc(32);
    gc_weak *w = gc_weak_new(obj);
    weak_root = w;
    gc_set_finalizer(obj, check_handle_in_finalizer, w);
}

static void test_cleared_before_finalizer(void **state)
{
    (void)state;
    make_finalizable_with_handle();
    collect();
    assert_null(gc_weak_get(weak_root)); /* cleared although resurrected */
    assert_int_equal(gc_run_finalizers(), 1);
    assert_int_equal(finalizer_calls, 1);
    assert_true(finalizer_saw_null);
}

/* One handle per object, however often asked; many objects, many
 * handles, each right. */
static void test_many_handles(void **state)
{
    (void)state;
    enum { N = 2000 };
    void **objs = gc_alloc(N * sizeof(void *));
    gc_weak **handles = gc_alloc(N * sizeof(gc_weak *));
    global_root = objs;
    void *volatile keep_handles = handles;
    for (int i = 0; i < N; i++) {
        objs[i] = gc_alloc(16 + (size_t)(i % 7) * 40);
        handles[i] = gc_weak_new(objs[i]);
        assert_ptr_equal(gc_weak_new(objs[i]), handles[i]);
        assert_ptr_equal(gc_weak_get(handles[i]), objs[i]);
    }
    /* Drop every other object. */
    for (int i = 0; i < N; i += 2)
        objs[i] = NULL;
    collect();
    for (int i = 0; i < N; i++) {
        if (i % 2)
            assert_ptr_equal(gc_weak_get(handles[i]), objs[i]);
        else
            assert_null(gc_weak_get(handles[i]));
    }
    global_root = NULL;
    (void)keep_handles;
}

/* A handle is an ordinary object: once its target is dead and nobody
 * holds it, it is collected too. */
static __attribute__((noinline)) uintptr_t make_dropped_handle(void)
{
    void *obj = gc_alloc(24);
    return HIDE(gc_weak_new(obj));
}

static void test_handle_is_collectable(void **state)
{
    (void)state;
    uintptr_t hw = make_dropped_handle();
    collect(); /* the target dies, the record goes */
    collect(); /* now nothing holds the handle */
    assert_dead(hw);
}

/* A handle that the program dropped, of a target still alive: the
 * target's record keeps the handle (a heap object) alive, so the handle
 * gc_weak_new gives again is the same one, still pointing at the target,
 * however many 16-byte objects were allocated since (a freed handle's
 * memory would have been reused). */
static void *volatile live_target;

static __attribute__((noinline)) uintptr_t make_target_drop_handle(void)
{
    live_target = gc_alloc(64);
    return HIDE(gc_weak_new(live_target));
}

static void test_handle_kept_by_its_target(void **state)
{
    (void)state;
    uintptr_t h = make_target_drop_handle();
    collect();
    collect();
    for (int i = 0; i < 100000; i++)
        memset(gc_alloc_atomic(16), 0xff, 16);
    assert_true(alive(h));
    gc_weak *w = gc_weak_new(live_target);
    assert_ptr_equal(w, SHOW(h));
    assert_ptr_equal(gc_weak_get(w), live_target);
    live_target = NULL;
}

static int static_word;

static void test_bad_arguments(void **state)
{
    (void)state;
    int local;
    void *m = malloc(16);
    char *obj = gc_alloc(64);
    errno = 0;
    assert_null(gc_weak_new(NULL));
    assert_int_equal(errno, EINVAL);
    assert_null(gc_weak_new(obj + 8));
    assert_null(gc_weak_new(&local));
    assert_null(gc_weak_new(&static_word));
    assert_null(gc_weak_new(m));
    assert_null(gc_weak_get(NULL));
    assert_null(gc_weak_get((gc_weak *)obj)); /* not a handle */
    assert_null(gc_weak_get((gc_weak *)&static_word));
    free(m);
}

/* A copy of a handle's bytes is not a handle: nothing would ever clear
 * it, and after its target died it would return whatever lives there. */
static void test_copy_is_not_a_handle(void **state)
{
    (void)state;
    char *target = gc_alloc(32);
    gc_weak *w = gc_weak_new(target);
    assert_non_null(w);
    gc_weak *moved = gc_realloc(w, 64); /* a new object: the old stays */
    assert_non_null(moved);
    assert_ptr_not_equal(moved, w);
    gc_weak *copy = gc_alloc_atomic(16);
    memcpy(copy, w, 16);
    errno = 0;
    assert_null(gc_weak_get(moved));
    assert_int_equal(errno, EINVAL);
    errno = 0;
    assert_null(gc_weak_get(copy));
    assert_int_equal(errno, EINVAL);
    assert_ptr_equal(gc_weak_get(w), target);
    /* Shrunk, or kept its size, a handle is copied too: cut in place, it
     * lost its magic, and the target's one handle answered EINVAL. */
    for (size_t size = 0; size <= 16; size += 4) {
        gc_weak *cut = gc_realloc(w, size);
        assert_non_null(cut);
        assert_ptr_not_equal(cut, w);
        assert_ptr_equal(gc_weak_get(w), target);
        assert_ptr_equal(gc_weak_new(target), w);
    }
}

/* ---- reads racing with the background sweeper --------------------------- */

enum { SLOTS = 512 };

typedef struct stamped {
    uint64_t stamp; /* SLOT_MAGIC ^ index while alive */
    uint64_t pad[3];
} stamped;

#define SLOT_MAGIC 0x5ca1ab1e00000000ull

static gc_weak *race_handles[SLOTS];
static ao_word race_stop, race_bad, race_reads;

static void *reader(void *arg)
{
    (void)arg;
    gc_register_thread();
    while (!ao_load(&race_stop)) {
        for (int i = 0; i < SLOTS; i++) {
            /* Acquire: pairs with the release that published the handle. */
            gc_weak *w = (gc_weak *)ao_load_acq((ao_word *)&race_handles[i]);
            if (!w)
                continue;
            stamped *s = gc_weak_get(w);
            /* Either gone, or a live object with its stamp intact. */
            if (s && s->stamp != (SLOT_MAGIC ^ (uint64_t)i))
                ao_add(&race_bad, 1);
            ao_add(&race_reads, 1);
        }
    }
    gc_unregister_thread();
    return NULL;
}

static void test_reads_race_with_sweeper(void **state)
{
    (void)state;
    /* Handles stay reachable from a GC object, targets come and go. */
    gc_weak **holder = gc_alloc(SLOTS * sizeof(gc_weak *));
    stamped **targets = gc_alloc(SLOTS * sizeof(stamped *));
    void *volatile keep1 = holder, *volatile keep2 = targets;
    pthread_t th;
    pthread_create(&th, NULL, reader, NULL);
    for (long round = 0; round < 400; round++) {
        for (int i = 0; i < SLOTS; i++) {
            if ((i + round) % 3 == 0) {
                stamped *s = gc_alloc(sizeof *s);
                s->stamp = SLOT_MAGIC ^ (uint64_t)i;
                holder[i] = gc_weak_new(s);
                targets[i] = (round % 2) ? s : NULL; /* half die at once */
                ao_store_rel((ao_word *)&race_handles[i], (uintptr_t)holder[i]);
            }
        }
        for (int k = 0; k < 2000; k++)
            (void)!gc_alloc(48); /* garbage: automatic cycles, lazy sweeping */
    }
    /* On a loaded machine the reader may not have run yet. */
    while (ao_load(&race_reads) == 0)
        sched_yield();
    ao_store(&race_stop, 1);
    pthread_join(th, NULL);
    print_message("%lu weak reads raced with sweeping\n", (unsigned long)ao_load(&race_reads));
    assert_int_equal(ao_load(&race_bad), 0);
    assert_true(ao_load(&race_reads) > 0);
    (void)keep1;
    (void)keep2;
}

/* gc_realloc copies a live handle while a sweeper may be clearing it: the
 * target dies in an automatic cycle, and the background sweeper clears
 * its handle while this thread copies the handle. The copy reads the
 * target address atomically (spangc_weak_copy); a memcpy of it raced with
 * the sweeper's store under ThreadSanitizer. */
enum { COPIED = 2048 };
static gc_weak *copied_handles[COPIED];

static void test_copy_races_with_clearing(void **state)
{
    (void)state;
    size_t copies = 0;
    for (int round = 0; round < 8; round++) {
        for (int i = 0; i < COPIED; i++)
            copied_handles[i] = gc_weak_new(gc_alloc(64)); /* the targets die */
        garbage_until_cycles(1);
        for (int i = 0; i < COPIED; i++) {
            gc_weak *copy = gc_realloc(copied_handles[i], 64);
            assert_non_null(copy);
            assert_ptr_not_equal(copy, copied_handles[i]);
            copies++;
        }
    }
    assert_int_equal(copies, 8 * COPIED);
}

/* Handles the program let die, read while the background sweeper frees
 * them: NULL, and no read of a slot a memory checker has closed.
 * gc_weak_get sweeps the handle's span before it reads the slot, and
 * reads only an allocated one; it used to check the slot's poison and
 * then read it, and the sweeper could free and poison it in between
 * (AddressSanitizer: use-after-poison). */
enum { DROPPED = 4096 };
static uintptr_t dropped_handles[DROPPED]; /* hidden: no root */

static __attribute__((noinline)) void make_dropped_handles(void)
{
    for (int i = 0; i < DROPPED; i++)
        dropped_handles[i] = HIDE(gc_weak_new(gc_alloc(24)));
}

static void test_dropped_handles_read_while_swept(void **state)
{
    (void)state;
    for (int round = 0; round < 6; round++) {
        make_dropped_handles();
        /* The first cycle clears the handles (their targets' records keep
         * them), the second frees them: the sweeper is freeing them now. */
        garbage_until_cycles(2);
        /* A stale stack word may hold a target, which holds its handle:
         * then the handle still answers, with a live object. */
        int answered = 0;
        for (int rep = 0; rep < 4; rep++)
            for (int i = 0; i < DROPPED; i++) {
                void *target = gc_weak_get(SHOW(dropped_handles[i]));
                if (target) {
                    assert_ptr_equal(gc_base(target), target);
                    answered += rep == 0;
                }
            }
        assert_true(answered <= 4);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_cleared_when_target_dies),
        cmocka_unit_test(test_cleared_by_lazy_sweep),
        cmocka_unit_test(test_cleared_before_finalizer),
        cmocka_unit_test(test_many_handles),
        cmocka_unit_test(test_handle_is_collectable),
        cmocka_unit_test(test_handle_kept_by_its_target),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_copy_is_not_a_handle),
        cmocka_unit_test(test_reads_race_with_sweeper),
        cmocka_unit_test(test_copy_races_with_clearing),
        cmocka_unit_test(test_dropped_handles_read_while_swept),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
