/*
 * test_roots.c - what keeps an object alive (a global, a gc_add_roots
 * range, a stack slot, an address-taken local (in AddressSanitizer's fake
 * frames too), a register, an interior pointer, a pointer from a
 * scanned object, a precise field, a thread-local variable, a shared
 * library's data) and what does not (a pointer in malloc'd memory, inside
 * an atomic object, in a non-pointer field, in a removed root).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <link.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "gc.h"
#include "os.h"
#include "roots.h"
#include "testutil.h"
#include "thread.h"
#include "track.h"

/* From test_roots_lib.so, a shared library this test links. */
extern void *roots_lib_slot;

static int setup(void **state)
{
    (void)state;
    /* The environment counts: ctest runs these tests again with
     * GC_DEBUG=verify,poison. */
    return gc_init(NULL);
}

/* volatile: stores to a root must not be optimized away. */
static void *volatile global_root;

static void test_global_root(void **state)
{
    (void)state;
    uintptr_t h = make(64);
    store((volatile uintptr_t *)&global_root, h, 0);
    collect();
    assert_true(alive(h));
    global_root = NULL;
    collect();
    assert_dead(h);
}

static void test_added_roots(void **state)
{
    (void)state;
    uintptr_t *box = malloc(4 * sizeof *box); /* malloc memory is not scanned */
    uintptr_t h = make(100);
    store(&box[2], h, 0);
    collect();
    assert_dead(h);
    h = make(100);
    store(&box[2], h, 0);
    assert_int_equal(gc_add_roots(box, 4 * sizeof *box), 0);
    assert_int_equal(gc_add_roots(box, 8), -EEXIST);
    collect();
    assert_true(alive(h));
    assert_int_equal(gc_remove_roots(box), 0);
    assert_int_equal(gc_remove_roots(box), -ENOENT);
    collect();
    assert_dead(h);
    free(box);
    /* Bad arguments. */
    assert_int_equal(gc_add_roots(NULL, 8), -EINVAL);
    int x;
    assert_int_equal(gc_add_roots(&x, 0), -EINVAL);
    assert_int_equal(gc_add_roots((void *)UINTPTR_MAX, 16), -EINVAL);
    void *heap_obj = gc_alloc(64);
    assert_int_equal(gc_add_roots(heap_obj, 64), -EINVAL);
    assert_int_equal(gc_remove_roots(&x), -ENOENT);
}

/* A range of any length: its whole words are scanned, the first included
 * when the length is not a multiple of a word. */
static void test_added_root_of_odd_length(void **state)
{
    (void)state;
    uintptr_t *box = calloc(2, sizeof *box);
    assert_non_null(box);
    uintptr_t h = make(100);
    store(&box[0], h, 0);
    assert_int_equal(gc_add_roots(box, 13), 0);
    collect();
    assert_true(alive(h));
    assert_int_equal(gc_remove_roots(box), 0);
    box[0] = 0;
    free(box);
}

/* A 1 MiB object made on a thread that has exited since, so that no stale
 * copy of its address lingers in a live frame, and made second, so that
 * it does not start at the heap's first page, whose address earlier
 * tests' objects left in words that stay scanned: once dropped, nothing
 * at all refers to it. */
static void make_large_second(void *arg)
{
    (void)make(1 << 20);
    *(uintptr_t *)arg = make(1 << 20);
}

static uintptr_t make_unreferenced(void)
{
    uintptr_t h = 0;
    run_on_a_registered_thread(make_large_second, &h);
    return h;
}

/* spangc's own globals (SPANGC_STATE, the section spangc_state) are not
 * roots: what the collector's bookkeeping points at is kept alive by the
 * program or not at all. This test links spangc's objects, so a word of
 * its own marked the same way lies in that section too. */
static SPANGC_STATE volatile uintptr_t state_word;

static void test_state_section_is_not_scanned(void **state)
{
    (void)state;
    uintptr_t h = make_unreferenced();
    store(&state_word, h, 0);
    collect();
    state_word = 0;
    assert_false(alive(h));
}

/* Root ranges are scanned eight words at a time where the CPU allows
 * (gc/mark.c, mark_range_avx2): an object must be found from every
 * position of a range, in each lane of a group and in the tail after the
 * last group, alone among zeros or with a candidate in every word, and
 * with the range starting one word later (which moves every word to
 * another lane). */
static void test_every_word_of_a_range(void **state)
{
    (void)state;
    enum { WORDS = 3 * 8 + 7 }; /* three groups and a tail of seven */
    uintptr_t *box = calloc(WORDS + 1, sizeof *box);
    uintptr_t objs[WORDS];
    assert_non_null(box);
    for (size_t start = 0; start < 2; start++) {
        uintptr_t *range = box + start;
        assert_int_equal(gc_add_roots(range, WORDS * sizeof *range), 0);
        for (size_t i = 0; i < WORDS; i++) { /* alone */
            uintptr_t h = make(48);
            store(&range[i], h, 8); /* an interior pointer, for good measure */
            collect();
            assert_true(alive(h));
            range[i] = 0;
        }
        for (size_t i = 0; i < WORDS; i++) { /* all together */
            objs[i] = make(48);
            store(&range[i], objs[i], 0);
        }
        collect();
        for (size_t i = 0; i < WORDS; i++)
            assert_true(alive(objs[i]));
        memset(box, 0, (WORDS + 1) * sizeof *box);
        assert_int_equal(gc_remove_roots(range), 0);
    }
    free(box);
}

/* Relocated constants, so in the program's PT_GNU_RELRO, which the
 * dynamic linker makes read-only: two of the largest pages Linux uses (64
 * KiB), so that one whole page of it is read-only whatever the layout. */
enum { RELRO_WORDS = 2 * 65536 / sizeof(void *) };
static const void *const relro_words[RELRO_WORDS] = {&relro_words, &relro_words[1],
                                                     &relro_words[2]};

/* The read-only-after-relocation pages of a data segment are not roots
 * (gc/roots.c, relro_range): a pointer written there, after making a page
 * of it writable again, keeps nothing alive; one written into the
 * writable .data right after it does. */
static void *volatile data_root = (void *)&data_root; /* .data, not .bss */

static void test_relro_is_not_scanned(void **state)
{
    (void)state;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t lo = ((uintptr_t)relro_words + page - 1) & ~(page - 1);
    assert_true(lo + page <= (uintptr_t)(relro_words + RELRO_WORDS));
    volatile uintptr_t *slot = (volatile uintptr_t *)lo;
    uintptr_t saved = *slot;
    assert_int_equal(mprotect((void *)lo, page, PROT_READ | PROT_WRITE), 0);
    uintptr_t h = make(64);
    store(slot, h, 0);
    collect();
    assert_dead(h);
    *slot = saved;
    assert_int_equal(mprotect((void *)lo, page, PROT_READ), 0);

    h = make(64);
    store((volatile uintptr_t *)&data_root, h, 0);
    collect();
    assert_true(alive(h));
    data_root = (void *)&data_root;
}

/* Heap pages that hold no object are refused too: the reserved but not
 * yet committed rest of an arena (scanning it would fault), and the
 * middle of a free span (the heap would later place objects there, and
 * as a root they would never die). */
static void test_added_roots_refuse_unused_heap(void **state)
{
    (void)state;
    enum { ARENA = 64u << 20, BIG = 1u << 20 };
    uintptr_t obj = (uintptr_t)gc_alloc(64);
    uintptr_t arena = obj & ~(uintptr_t)(ARENA - 1);
    assert_int_equal(gc_add_roots((void *)(arena + ARENA / 2), 4096), -EINVAL);
    assert_int_equal(gc_add_roots((void *)(arena + ARENA - 4096), 4096), -EINVAL);
    /* A span of 128 pages, freed: only its end pages name it. Freed
     * unless a stale stack word holds it (testutil.h, fate_of). */
    uintptr_t big = make(BIG);
    collect();
    collect();
    if (!alive(big))
        assert_int_equal(gc_add_roots((char *)SHOW(big) + BIG / 2, 4096), -EINVAL);
    /* A range that only starts before the heap is refused as well. */
    assert_int_equal(gc_add_roots((void *)(arena - 4096), 8192), -EINVAL);
    collect();
}

/* a[0, n) = 0 .. n-1 in an order drawn from the generator state *r. */
static void shuffled(unsigned *a, unsigned n, unsigned *r)
{
    for (unsigned i = 0; i < n; i++)
        a[i] = i;
    for (unsigned i = n - 1; i > 0; i--) {
        *r = *r * 1103515245u + 12345u;
        unsigned j = (*r >> 8) % (i + 1), t = a[i];
        a[i] = a[j];
        a[j] = t;
    }
}

/* Many ranges, added and removed in a scrambled order: every answer is
 * right (EEXIST, ENOENT, 0) and the objects of the ranges still added stay
 * alive, whichever ranges were moved around in the registry and its index
 * as others left. */
static void test_many_added_roots(void **state)
{
    (void)state;
    enum { N = 5000, SPREAD = 4 };
    /* The boxes at random places among SPREAD * N: evenly spaced starts
     * hash to distinct slots of the index, and its removals would never
     * have to move a probe run back. */
    uintptr_t(*region)[2] = calloc(SPREAD * N, sizeof *region);
    uintptr_t(**boxes)[2] = malloc(N * sizeof *boxes);
    unsigned *place = malloc(SPREAD * N * sizeof *place);
    uintptr_t *objs = malloc(N * sizeof *objs);
    unsigned *order = malloc(N * sizeof *order);
    assert_true(region && boxes && place && objs && order);
    unsigned r = 12345;
    shuffled(place, SPREAD * N, &r);
    for (unsigned i = 0; i < N; i++)
        boxes[i] = &region[place[i]];
    for (unsigned i = 0; i < N; i++) {
        objs[i] = make(32);
        store(&(*boxes[i])[1], objs[i], 0);
        assert_int_equal(gc_add_roots(boxes[i], sizeof *boxes[i]), 0);
    }
    for (unsigned i = 0; i < N; i += 7)
        assert_int_equal(gc_add_roots(boxes[i], 8), -EEXIST);
    shuffled(order, N, &r);
    for (unsigned k = 0; k < N / 2; k++)
        assert_int_equal(gc_remove_roots(boxes[order[k]]), 0);
    for (unsigned k = 0; k < N / 2; k += 5)
        assert_int_equal(gc_remove_roots(boxes[order[k]]), -ENOENT);
    collect();
    for (unsigned k = N / 2; k < N; k++) {
        assert_true(alive(objs[order[k]]));
        assert_int_equal(gc_add_roots(boxes[order[k]], 8), -EEXIST);
    }
    for (unsigned k = N / 2; k < N; k++)
        assert_int_equal(gc_remove_roots(boxes[order[k]]), 0);
    for (unsigned k = 0; k < N; k += 3)
        assert_int_equal(gc_remove_roots(boxes[k]), -ENOENT);
    free(order);
    free(objs);
    free(place);
    free(boxes);
    free(region);
}

static void test_stack_slot(void **state)
{
    (void)state;
    volatile uintptr_t slot;
    uintptr_t h = make(48);
    store(&slot, h, 0);
    collect();
    assert_true(alive(h));
    slot = 0;
    collect();
    assert_dead(h);
}

/* An object of size bytes made on a registered thread that has exited
 * (its stack unmapped with it), and not at the first address of its span:
 * a stale word in the test's own frames, or in those cmocka left, cannot
 * keep it alive where the test wants to see it freed. */
typedef struct made_away {
    size_t size;
    uintptr_t h;
} made_away;

static void make_not_first(void *arg)
{
    made_away *m = arg;
    uintptr_t h;
    do
        h = make(m->size);
    while (((uintptr_t)SHOW(h) & (PAGE_SIZE - 1)) == 0);
    m->h = h;
}

static uintptr_t make_away(size_t size)
{
    made_away m = {.size = size};
    run_on_a_registered_thread(make_not_first, &m);
    return m.h;
}

/* ---- AddressSanitizer's fake frames ---------------------------------- */

#if defined(__SANITIZE_ADDRESS__)
#define TEST_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TEST_ASAN 1
#endif
#endif
#ifdef TEST_ASAN
#include <sanitizer/asan_interface.h>
#endif

/* Set by --fake-stack, which ctest runs under AddressSanitizer with
 * detect_stack_use_after_return=1: the locals below must then be in fake
 * frames, or the tests would check an ordinary stack slot again. */
static bool expect_fake_frames;

static bool in_a_fake_frame(const volatile void *p)
{
#ifdef TEST_ASAN
    return __asan_addr_is_in_fake_stack(__asan_get_current_fake_stack(), (void *)p, NULL, NULL) !=
           NULL;
#else
    (void)p;
    return false;
#endif
}

/* Its address passed on: AddressSanitizer, checking for use after return,
 * moves the array into a fake frame away from the stack, and the real
 * frame keeps only a pointer to that. */
static __attribute__((noinline)) void
hold_in_an_address_taken_local(uintptr_t h, void (*then)(void), bool *faked, bool *kept)
{
    volatile uintptr_t slots[4] = {0};
    store(&slots[1], h, 0);
    *faked = in_a_fake_frame(slots);
    then();
    *kept = alive(h);
    slots[1] = 0;
}

static void collect_here(void)
{
    collect();
}

static void test_address_taken_local(void **state)
{
    (void)state;
    bool faked, kept;
    uintptr_t h = make_away(48);
    hold_in_an_address_taken_local(h, collect_here, &faked, &kept);
    assert_int_equal(faked, expect_fake_frames);
    assert_true(kept);
}

/* The same on a registered thread stopped while it holds the object, and
 * not first in its span (stale words hold the first slot of a span). */
static struct {
    sem_t held, collected;
    uintptr_t h;
    bool faked, kept;
    spangc_thread *self;
} other;

static void wait_for_the_collection(void)
{
    sem_post(&other.held);
    while (sem_wait(&other.collected) != 0)
        ;
}

static void hold_on_this_thread(void *arg)
{
    (void)arg;
    made_away m = {.size = 48};
    make_not_first(&m);
    other.h = m.h;
    other.self = spangc_self;
    hold_in_an_address_taken_local(other.h, wait_for_the_collection, &other.faked, &other.kept);
}

static void *run_holder(void *arg)
{
    run_on_a_registered_thread(hold_on_this_thread, arg);
    return NULL;
}

static void test_address_taken_local_of_a_stopped_thread(void **state)
{
    (void)state;
    sem_init(&other.held, 0, 0);
    sem_init(&other.collected, 0, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, run_holder, NULL), 0);
    while (sem_wait(&other.held) != 0)
        ;
    collect();
    bool kept = alive(other.h);
    /* It stopped on its own stack, which was scanned from there up (a
     * stack pointer taken from a fake frame would make the scan take in
     * the whole stack, as for a thread on a coroutine's). */
    const spangc_thread *o = other.self;
    bool stopped_on_its_stack = o->stopped_sp >= o->stack_lo && o->stopped_sp < o->stack_hi;
    sem_post(&other.collected);
    assert_int_equal(pthread_join(th, NULL), 0);
    assert_int_equal(other.faked, expect_fake_frames);
    assert_true(stopped_on_its_stack);
    assert_true(kept);
    assert_true(other.kept);
    sem_destroy(&other.held);
    sem_destroy(&other.collected);
}

#if defined(__x86_64__)
/* Callee-saved registers survive the call into gc_collect: each of the
 * five holds the only pointer to an object. The frames between the test
 * and the collector save the registers they use on the stack that is
 * scanned, and the collector spills the others (SPANGC_SAVE_CONTEXT).
 * Built with gcc 12 -O2, collect_now uses all five and saves them in its
 * prologue anyway, so this checks the result, not which of the two
 * saved a register. */
static void test_register(void **state)
{
    (void)state;
    uintptr_t h[5];
    for (int i = 0; i < 5; i++)
        h[i] = make(32);
    register uintptr_t rbx __asm__("rbx") = h[0] ^ MASK;
    register uintptr_t r12 __asm__("r12") = h[1] ^ MASK;
    register uintptr_t r13 __asm__("r13") = h[2] ^ MASK;
    register uintptr_t r14 __asm__("r14") = h[3] ^ MASK;
    register uintptr_t r15 __asm__("r15") = h[4] ^ MASK;
    __asm__ volatile("" : "+r"(rbx), "+r"(r12), "+r"(r13), "+r"(r14), "+r"(r15));
    collect();
    __asm__ volatile("" : "+r"(rbx), "+r"(r12), "+r"(r13), "+r"(r14), "+r"(r15));
    for (int i = 0; i < 5; i++)
        assert_true(alive(h[i]));
    rbx = r12 = r13 = r14 = r15 = 0;
    __asm__ volatile("" : "+r"(rbx), "+r"(r12), "+r"(r13), "+r"(r14), "+r"(r15));
}
#endif

static volatile uintptr_t interior_root;

static void test_interior_pointer(void **state)
{
    (void)state;
    uintptr_t h = make(1000);
    store(&interior_root, h, 777);
    uintptr_t hl = make(100000); /* a large object, pointed at near its end */
    store((volatile uintptr_t *)&global_root, hl, 99999);
    collect();
    assert_true(alive(h));
    assert_true(alive(hl));
    interior_root = 0;
    global_root = NULL;
    collect();
    assert_dead(h);
    assert_dead(hl);
}

static void test_scanned_object_pointer(void **state)
{
    (void)state;
    global_root = gc_alloc(8 * sizeof(void *));
    uintptr_t h = make(200);
    store(&((volatile uintptr_t *)global_root)[5], h, 0);
    collect();
    assert_true(alive(h));
    ((void **)global_root)[5] = NULL;
    collect();
    assert_dead(h);
    global_root = NULL;
}

struct typed {
    uintptr_t not_a_pointer;
    void *pointer;
    double number;
};

static void test_precise_fields(void **state)
{
    (void)state;
    const gc_type *t = GC_TYPE(struct typed, offsetof(struct typed, pointer));
    global_root = gc_alloc_typed(sizeof(struct typed), t);
    volatile uintptr_t *obj = global_root;
    uintptr_t kept = make(64), dropped = make(64);
    store(&obj[1], kept, 0);
    store(&obj[0], dropped, 0);
    collect();
    assert_true(alive(kept));
    assert_dead(dropped); /* a non-pointer field keeps nothing */
    /* An array of the type: every element's pointer field counts. */
    global_root = gc_alloc_typed(50 * sizeof(struct typed), t);
    obj = global_root;
    uintptr_t last = make(16);
    store(&obj[49 * 3 + 1], last, 0);
    collect();
    assert_true(alive(last));
    global_root = NULL;
}

static void test_atomic_not_scanned(void **state)
{
    (void)state;
    global_root = gc_alloc_atomic(8 * sizeof(void *));
    uintptr_t h = make(64);
    store(&((volatile uintptr_t *)global_root)[3], h, 0);
    collect();
    assert_true(alive(HIDE(global_root)));
    assert_dead(h);
    global_root = NULL;
}

static __thread void *tls_root;

static void test_thread_local(void **state)
{
    (void)state;
    uintptr_t h = make(72);
    store((volatile uintptr_t *)&tls_root, h, 0);
    collect();
    assert_true(alive(h));
    tls_root = NULL;
    collect();
    assert_dead(h);
}

static void test_shared_library_data(void **state)
{
    (void)state;
    uintptr_t h = make(88);
    store((volatile uintptr_t *)&roots_lib_slot, h, 0);
    collect();
    assert_true(alive(h));
    roots_lib_slot = NULL;
    collect();
    assert_dead(h);
}

/* A library loaded after gc_init: its data is a root like any other, read
 * through copies; and if another thread closes it during a collection,
 * the collector skips what is gone instead of faulting. The hook closes it
 * between the listing of the segments and their scan. */
static void *plugin;

static void close_plugin(void)
{
    spangc_test_before_unloadable_scan = NULL;
    assert_int_equal(dlclose(plugin), 0);
}

static void test_library_closed_during_collection(void **state)
{
    (void)state;
    plugin = dlopen(TEST_ROOTS_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(plugin);
    void **slot = dlsym(plugin, "plugin_slot");
    assert_non_null(slot);
    uintptr_t h = make(100);
    store((volatile uintptr_t *)slot, h, 0);
    collect();
    collect();
    assert_true(alive(h)); /* the plugin's data was scanned */
    spangc_test_before_unloadable_scan = close_plugin;
    collect(); /* faulted here, in the scan of the closed plugin's data */
    assert_null(spangc_test_before_unloadable_scan);
    collect();
    assert_dead(h);
}

/* Where the collector's copies of the data segment holding addr begin:
 * at the segment's start, or after its PT_GNU_RELRO part (gc/roots.c,
 * relro_range), every COPY_BYTES (16 KiB) from there. */
typedef struct segment_of {
    uintptr_t addr, starts[2];
} segment_of;

static int find_segment(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    segment_of *w = data;
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr;
        if (ph->p_type != PT_LOAD || w->addr < lo || w->addr >= lo + ph->p_memsz)
            continue;
        w->starts[0] = w->starts[1] = lo;
        for (int j = 0; j < info->dlpi_phnum; j++)
            if (info->dlpi_phdr[j].p_type == PT_GNU_RELRO)
                w->starts[1] = (info->dlpi_addr + info->dlpi_phdr[j].p_vaddr +
                                info->dlpi_phdr[j].p_memsz) & ~(page - 1);
        return 1;
    }
    return 0;
}

/* A page gone from the middle of a loaded library's data (unmapped by the
 * program, or by a dlclose under way) ends a copy of it short: the scan
 * goes on after the page (each_copy), and an object held past it stays
 * alive, as does one held before it. */
static void test_library_data_after_a_hole(void **state)
{
    (void)state;
    void *lib = dlopen(TEST_ROOTS_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(lib);
    char *bss = dlsym(lib, "plugin_bss");
    assert_non_null(bss);
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE), copy = 16 * 1024;
    segment_of seg = {.addr = (uintptr_t)bss};
    assert_int_equal(dl_iterate_phdr(find_segment, &seg), 1);
    /* A page well inside the array, and not one where a copy begins: that
     * copy would fail whole, and its 16 KiB be read in place where mincore
     * finds them mapped, else skipped. The copy before it stops at it. */
    uintptr_t at = ((uintptr_t)bss + 64 * 1024) & ~(page - 1);
    while ((at - seg.starts[0]) % copy == 0 || (at - seg.starts[1]) % copy == 0)
        at += page;
    char *hole = (char *)at;
    uintptr_t before = make(120), after = make(120), further = make(120);
    store((volatile uintptr_t *)(hole - 8 * sizeof(uintptr_t)), before, 0);
    store((volatile uintptr_t *)(hole + page), after, 0);
    store((volatile uintptr_t *)(hole + 40 * page), further, 0);
    assert_int_equal(munmap(hole, page), 0);
    collect();
    bool kept_before = alive(before), kept_after = alive(after), kept_further = alive(further);
    /* Mapped back, zeroed, for dlclose. */
    assert_true(mmap(hole, page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED,
                     -1, 0) == hole);
    assert_true(kept_before);
    assert_true(kept_after);
    assert_true(kept_further);
    assert_int_equal(dlclose(lib), 0);
}

/* A library opened between the listing of the segments and the stop of
 * the world (by another thread, in a program; by the hook here) is
 * scanned in that cycle: the collector sees the dynamic linker's list
 * change, restarts the world and lists again. Without that, the object
 * only the new library's data holds was freed. */
static uintptr_t opened_late_obj;

static void open_plugin_late(void)
{
    spangc_test_before_stop = NULL;
    plugin = dlopen(TEST_ROOTS_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    void **slot = plugin ? dlsym(plugin, "plugin_slot") : NULL;
    if (slot)
        store((volatile uintptr_t *)slot, opened_late_obj, 0);
}

static void test_library_opened_during_collection(void **state)
{
    (void)state;
    opened_late_obj = make(112);
    spangc_test_before_stop = open_plugin_late;
    collect();
    assert_null(spangc_test_before_stop);
    assert_non_null(plugin);
    assert_true(alive(opened_late_obj));
    assert_int_equal(dlclose(plugin), 0);
}

/* A program that opens and closes libraries without pause changes the
 * list between every listing and stop; after a few tries the collector
 * lists from inside the stop (spangc_roots_list_stopped). The hook, called
 * before each stop, closes the plugin, opens it, closes it, and opens it
 * again, storing an object only in its data. Before, the collector
 * gave up after four listings and collected with the last one, which
 * missed the plugin: the object was freed. */
static int plugin_toggles, toggles_at_mark;

static void note_toggles_at_mark(void)
{
    spangc_test_after_mark = NULL;
    toggles_at_mark = plugin_toggles;
}

static void toggle_plugin(void)
{
    if (++plugin_toggles > 4)
        return; /* a later stop (a fifth try, if the listing inside the fourth failed) */
    if (plugin_toggles % 2) {
        assert_int_equal(dlclose(plugin), 0);
        return;
    }
    plugin = dlopen(TEST_ROOTS_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(plugin);
    if (plugin_toggles == 4) {
        void **slot = dlsym(plugin, "plugin_slot");
        assert_non_null(slot);
        store((volatile uintptr_t *)slot, opened_late_obj, 0);
    }
}

/* Open the plugin, and collect with toggle_plugin before each stop: the
 * fifth listing is made with the world stopped. */
static void collect_while_the_plugin_toggles(void)
{
    plugin = dlopen(TEST_ROOTS_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(plugin);
    opened_late_obj = make(120);
    plugin_toggles = 0;
    toggles_at_mark = 0;
    spangc_test_after_mark = note_toggles_at_mark;
    spangc_test_before_stop = toggle_plugin;
    collect();
    spangc_test_before_stop = NULL;
    assert_null(spangc_test_after_mark);
    assert_int_equal(toggles_at_mark, 4); /* marked after the fourth stop */
}

static void test_library_kept_opening_during_collection(void **state)
{
    (void)state;
    collect_while_the_plugin_toggles();
    assert_true(alive(opened_late_obj));
    collect();
    assert_true(alive(opened_late_obj));
    assert_int_equal(dlclose(plugin), 0);
}

/* A program thread inside a dl_iterate_phdr callback of its own holds the
 * dynamic linker's lock, and may allocate or collect there. Before, the
 * collector listed the roots with dl_iterate_phdr while it held world_lock
 * (every cycle), and a registering thread held threads_lock around its own
 * dl_iterate_phdr: the callback's thread, collecting, waited for one of
 * those locks while their holder waited for the dynamic linker's. Both
 * hung for ever; alarm() turns a hang into a failure. */
static struct {
    sem_t in_callback;
    void *(*in_callback_start)(void *); /* a thread to start from the callback */
    pthread_t started;
} dl_cb;

static void *register_and_leave(void *arg)
{
    (void)arg;
    if (gc_register_thread() != 0)
        return "register";
    gc_unregister_thread();
    return NULL;
}

static int collecting_callback(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)info;
    (void)size;
    (void)data;
    if (dl_cb.in_callback_start)
        pthread_create(&dl_cb.started, NULL, dl_cb.in_callback_start, NULL);
    sem_post(&dl_cb.in_callback);
    struct timespec ts = {0, 100 * 1000 * 1000}; /* the others reach the lock */
    nanosleep(&ts, NULL);
    for (int i = 0; i < 100; i++)
        global_root = gc_alloc(4096);
    global_root = NULL;
    collect();
    return 1;
}

static void *iterate_and_collect(void *arg)
{
    (void)arg;
    if (gc_register_thread() != 0)
        return "register";
    dl_iterate_phdr(collecting_callback, NULL);
    gc_unregister_thread();
    return NULL;
}

/* main_collects: the main thread collects while the callback runs; it
 * lists the roots first, and so waits for the callback's lock, holding no
 * spangc lock, where the callback's thread, collecting, stops it. Not
 * under ThreadSanitizer, which delivers no signal to a thread waiting for
 * a lock it does not intercept (runtime/lock.h). */
#ifdef __SANITIZE_THREAD__
#define MAIN_COLLECTS false
#else
#define MAIN_COLLECTS true
#endif

static void run_collecting_callback(void *(*in_callback_start)(void *), bool main_collects)
{
    alarm(120);
    sem_init(&dl_cb.in_callback, 0, 0);
    dl_cb.in_callback_start = in_callback_start;
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, iterate_and_collect, NULL), 0);
    sem_wait(&dl_cb.in_callback);
    if (main_collects)
        collect();
    void *err;
    assert_int_equal(pthread_join(th, &err), 0);
    assert_null(err);
    if (in_callback_start) {
        assert_int_equal(pthread_join(dl_cb.started, &err), 0);
        assert_null(err);
    }
    sem_destroy(&dl_cb.in_callback);
    alarm(0);
}

static void test_collect_inside_dl_iterate_phdr(void **state)
{
    (void)state;
    run_collecting_callback(NULL, MAIN_COLLECTS);
}

static void test_register_while_another_collects_inside_dl_iterate_phdr(void **state)
{
    (void)state;
    run_collecting_callback(register_and_leave, false);
}

/* A thread-local block of a library loaded with dlopen, which the thread
 * had when it registered, is scanned (through copies); once the library is
 * closed, glibc frees the block, a large one with munmap, and the
 * collector must not read it (it faulted there). The thread's next access
 * to a dynamic TLS block, in a second library, is where glibc frees it. */
/* The state of the TLS tests' second thread, which registers, touches a
 * library's thread-local variable, and waits for go while the main thread
 * collects. */
static struct {
    sem_t registered, stored, go;
    void *lib;
    uintptr_t h;
    pthread_t thread;
    bool running; /* started, not yet finished */
} tls_case;

/* Start fn on a thread of its own, with tls_case's semaphores new. */
static pthread_t tls_case_start(void *(*fn)(void *))
{
    sem_init(&tls_case.registered, 0, 0);
    sem_init(&tls_case.stored, 0, 0);
    sem_init(&tls_case.go, 0, 0);
    assert_int_equal(pthread_create(&tls_case.thread, NULL, fn, NULL), 0);
    tls_case.running = true;
    return tls_case.thread;
}

static void *tls_case_join(pthread_t th)
{
    void *err = "join";
    pthread_join(th, &err);
    tls_case.running = false;
    sem_destroy(&tls_case.registered);
    sem_destroy(&tls_case.stored);
    sem_destroy(&tls_case.go);
    return err;
}

/* Let the thread, waiting for go, end; it must have had no trouble. */
static void tls_case_finish(pthread_t th)
{
    sem_post(&tls_case.go);
    assert_null(tls_case_join(th));
}

/* After a test that failed with its thread still waiting: let it run to
 * its end, so that the next tests do not wait behind it. */
static int tls_case_teardown(void **state)
{
    (void)state;
    if (tls_case.running) {
        for (int i = 0; i < 4; i++)
            sem_post(&tls_case.go);
        tls_case_join(tls_case.thread);
    }
    return 0;
}

typedef void (*touch_fn)(void *);
typedef void (*touch_hidden_fn)(uintptr_t hidden, uintptr_t mask);

/* The copy plugin's copy_touch_hidden, in the copy lib. */
static touch_hidden_fn copy_toucher(void *lib)
{
    return (touch_hidden_fn)(uintptr_t)dlsym(lib, "copy_touch_hidden");
}

static void *tls_thread(void *arg)
{
    (void)arg;
    void *first = dlopen(TEST_ROOTS_TLSPLUGIN, RTLD_NOW | RTLD_LOCAL);
    touch_fn touch = first ? (touch_fn)(uintptr_t)dlsym(first, "tlsplugin_touch") : NULL;
    if (!touch)
        return "dlopen";
    touch(SHOW(tls_case.h)); /* the block exists before the thread registers */
    if (gc_register_thread() != 0)
        return "register";
    sem_post(&tls_case.stored);
    sem_wait(&tls_case.go); /* the main thread collects */
    dlclose(first);
    void *second = dlopen(TEST_ROOTS_TLSPLUGIN2, RTLD_NOW | RTLD_LOCAL);
    touch = second ? (touch_fn)(uintptr_t)dlsym(second, "tlsplugin_touch") : NULL;
    if (!touch)
        return "dlopen second";
    touch(NULL);
    sem_post(&tls_case.stored);
    sem_wait(&tls_case.go); /* the main thread collects */
    dlclose(second);
    gc_unregister_thread();
    return NULL;
}

/* Start tls_thread, and wait until it has registered with the first
 * library's block holding tls_case.h. */
static pthread_t tls_test_start(void)
{
    tls_case.h = make_away(104);
    pthread_t th = tls_case_start(tls_thread);
    sem_wait(&tls_case.stored);
    return th;
}

static void test_tls_of_closed_library(void **state)
{
    (void)state;
    pthread_t th = tls_test_start();
    collect();
    assert_true(alive(tls_case.h)); /* held only by the library's TLS */
    sem_post(&tls_case.go);
    sem_wait(&tls_case.stored);
    collect(); /* faulted here, reading the unmapped block */
    assert_dead(tls_case.h);
    tls_case_finish(th);
}

/* More libraries opened after gc_init than the first page of a listing
 * holds (gc/roots.c, spangc_listing): 62 segments of such libraries and 42
 * TLS modules fit there, and the arrays move to pages of their own beyond.
 * Every copy's data, and every copy's thread-local block of a thread,
 * holds an object; each must survive the collections that list them, and
 * die once the copies are closed. The thread registers after touching half
 * of the blocks, and touches the other half after: those the collector
 * finds in its vector, one slot at a time, since their ids span more slots
 * than runtime/thread.c copies at once. */
#define COPIES 140

static struct {
    void *lib[COPIES];
    uintptr_t data[COPIES], tls[COPIES];
    sem_t registered, go;
} copies;

/* Open a copy of the copy plugin under a new name (the dynamic linker
 * opens a file name once). */
static void *open_copy(void)
{
    static char image[1 << 20];
    static ssize_t len;
    if (len <= 0) { /* main() opens one before cmocka runs: no asserts */
        int fd = open(TEST_ROOTS_COPYPLUGIN, O_RDONLY);
        if (fd < 0)
            return NULL;
        len = read(fd, image, sizeof image);
        close(fd);
        if (len <= 0 || len == (ssize_t)sizeof image)
            return NULL;
    }
    char path[] = "/tmp/spangc-test-copyplugin-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0)
        return NULL;
    bool written = write(fd, image, (size_t)len) == len;
    close(fd);
    void *lib = written ? dlopen(path, RTLD_NOW | RTLD_LOCAL) : NULL;
    unlink(path);
    return lib;
}

static void *touch_every_copy(void *arg)
{
    (void)arg;
    for (int i = 0; i < COPIES; i += 2)
        ((touch_fn)(uintptr_t)dlsym(copies.lib[i], "copy_touch"))(SHOW(copies.tls[i]));
    if (gc_register_thread() != 0)
        return "register";
    for (int i = 1; i < COPIES; i += 2)
        copy_toucher(copies.lib[i])(copies.tls[i], MASK);
    sem_post(&copies.registered);
    sem_wait(&copies.go);
    gc_unregister_thread();
    return NULL;
}

static void test_more_libraries_than_a_listing_page(void **state)
{
    (void)state;
    for (int i = 0; i < COPIES; i++) {
        copies.lib[i] = open_copy();
        assert_non_null(copies.lib[i]);
        void **slot = dlsym(copies.lib[i], "copy_slot");
        assert_non_null(slot);
        copies.data[i] = make(48);
        store((volatile uintptr_t *)slot, copies.data[i], 0);
        copies.tls[i] = make(56);
    }
    sem_init(&copies.registered, 0, 0);
    sem_init(&copies.go, 0, 0);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, touch_every_copy, NULL), 0);
    sem_wait(&copies.registered);
    collect();
    collect(); /* the second reuses the listing the first replaced */
    for (int i = 0; i < COPIES; i++) {
        assert_true(alive(copies.data[i]));
        assert_true(alive(copies.tls[i]));
    }
    sem_post(&copies.go);
    void *err;
    assert_int_equal(pthread_join(th, &err), 0);
    assert_null(err);
    for (int i = 0; i < COPIES; i++)
        assert_int_equal(dlclose(copies.lib[i]), 0);
    collect();
    for (int i = 0; i < COPIES; i++)
        assert_dead(copies.data[i]);
    sem_destroy(&copies.registered);
    sem_destroy(&copies.go);
}

/* A thread-local block that a registered thread allocates after it
 * registered, of a library opened after gc_init: dl_iterate_phdr shows it
 * to its own thread only, and the collector finds it in the thread's
 * dynamic thread vector (runtime/thread.c, "Other threads' TLS blocks").
 * Before, the object it held was freed: the main thread, registered by
 * gc_init, and a thread that registered before the library was opened. */
static void test_tls_allocated_after_registering(void **state)
{
    (void)state;
    void *lib = open_copy();
    assert_non_null(lib);
    touch_hidden_fn touch = copy_toucher(lib);
    assert_non_null(touch);
    uintptr_t h = make(72);
    touch(h, MASK);
    collect();
    collect();
    assert_true(alive(h)); /* held only by this thread's new block */
    touch(HIDE(NULL), MASK);
    collect();
    assert_dead(h);
    assert_int_equal(dlclose(lib), 0);
    collect();
}

/* The end of a TLS test's thread: store tls_case.h with touch, wait while
 * the main thread collects, clear the variable and leave. */
static void *store_then_leave(touch_hidden_fn touch)
{
    touch(tls_case.h, MASK);
    sem_post(&tls_case.stored);
    sem_wait(&tls_case.go); /* the main thread collects */
    touch(HIDE(NULL), MASK);
    gc_unregister_thread();
    return NULL;
}

static void *register_then_touch(void *arg)
{
    (void)arg;
    if (gc_register_thread() != 0)
        return "register";
    sem_post(&tls_case.registered);
    sem_wait(&tls_case.go); /* the main thread opens the library */
    touch_hidden_fn touch = copy_toucher(tls_case.lib);
    if (!touch)
        return "dlsym";
    touch(tls_case.h, MASK);
    sem_post(&tls_case.stored);
    sem_wait(&tls_case.go); /* the main thread collects */
    touch(HIDE(NULL), MASK);
    sem_post(&tls_case.stored);
    sem_wait(&tls_case.go); /* the main thread collects */
    gc_unregister_thread();
    return NULL;
}

static void test_tls_of_library_opened_after_a_thread_registered(void **state)
{
    (void)state;
    tls_case.h = make_away(88);
    pthread_t th = tls_case_start(register_then_touch);
    sem_wait(&tls_case.registered);
    tls_case.lib = open_copy();
    assert_non_null(tls_case.lib);
    sem_post(&tls_case.go);
    sem_wait(&tls_case.stored);
    collect();
    collect();
    assert_true(alive(tls_case.h)); /* held only by the thread's new block */
    sem_post(&tls_case.go);
    sem_wait(&tls_case.stored);
    collect();
    assert_dead(tls_case.h);
    tls_case_finish(th);
    assert_int_equal(dlclose(tls_case.lib), 0);
}

/* The listing made with the world stopped (test_library_kept_opening_
 * during_collection) has the TLS modules of the libraries loaded after
 * gc_init too. Before, it had none, and in that collection every block of
 * theirs was skipped: both the block a thread had when it registered and
 * the one the main thread allocated after gc_init registered it. */
static void *touch_then_register(void *arg)
{
    (void)arg;
    touch_hidden_fn touch = copy_toucher(tls_case.lib);
    if (!touch)
        return "dlsym";
    touch(tls_case.h, MASK);
    if (gc_register_thread() != 0)
        return "register";
    sem_post(&tls_case.registered);
    sem_wait(&tls_case.go); /* the main thread collects */
    touch(HIDE(NULL), MASK);
    gc_unregister_thread();
    return NULL;
}

static void test_tls_in_a_listing_made_with_the_world_stopped(void **state)
{
    (void)state;
    tls_case.lib = open_copy();
    assert_non_null(tls_case.lib);
    tls_case.h = make(96); /* in the thread's block, listed when it registered */
    pthread_t th = tls_case_start(touch_then_register);
    sem_wait(&tls_case.registered);
    void *mine = open_copy();
    assert_non_null(mine);
    uintptr_t h = make(104); /* in the main thread's block, allocated now */
    copy_toucher(mine)(h, MASK);

    collect_while_the_plugin_toggles(); /* listed with the world stopped */
    assert_true(alive(tls_case.h));
    assert_true(alive(h));
    assert_true(alive(opened_late_obj));

    tls_case_finish(th);
    copy_toucher(mine)(HIDE(NULL), MASK);
    assert_int_equal(dlclose(plugin), 0);
    assert_int_equal(dlclose(mine), 0);
    assert_int_equal(dlclose(tls_case.lib), 0);
}

/* A library opened with dlopen before gc_init counts as one the program
 * started with (it is read in place, and must not be closed), but its TLS
 * blocks are made on first use, like any opened library's: a thread that
 * registers without one and uses the library's __thread variable after
 * has its block found in its vector. Before, the object was freed. main()
 * opens the library before gc_init. */
static void *opened_before_init;

static void *register_then_touch_old_library(void *arg)
{
    (void)arg;
    if (gc_register_thread() != 0)
        return "register";
    return store_then_leave(copy_toucher(opened_before_init));
}

static void test_tls_of_library_opened_before_gc_init(void **state)
{
    (void)state;
    assert_non_null(opened_before_init);
    tls_case.h = make(64);
    pthread_t th = tls_case_start(register_then_touch_old_library);
    sem_wait(&tls_case.stored);
    collect();
    collect();
    assert_true(alive(tls_case.h)); /* held only by the thread's new block */
    tls_case_finish(th);
    collect();
    assert_dead(tls_case.h);
}

/* The block of such a library that a thread had when it registered is
 * listed then, as a startup module's; once a library has been closed
 * since gc_init (another one here, with TLS) it is read through copies,
 * and it must be read all the same (gc/roots.c, tls_block_read). The
 * blocks of the libraries the program is linked with lie in each thread's
 * static TLS area, which is scanned with its stack (or, the main thread's,
 * on its own): only this kind of startup library shows whether the listed
 * blocks are read. With them skipped once a library had been closed, the
 * object was freed. */
static void *touch_old_library_then_register(void *arg)
{
    (void)arg;
    touch_hidden_fn touch = copy_toucher(opened_before_init);
    if (!touch)
        return "dlsym";
    touch(tls_case.h, MASK); /* the block exists before the thread registers */
    if (gc_register_thread() != 0)
        return "register";
    return store_then_leave(touch);
}

static void test_tls_of_startup_library_after_another_is_closed(void **state)
{
    (void)state;
    assert_non_null(opened_before_init);
    tls_case.h = make_away(64);
    pthread_t th = tls_case_start(touch_old_library_then_register);
    sem_wait(&tls_case.stored);
    void *closed = open_copy();
    assert_non_null(closed);
    ((touch_fn)(uintptr_t)dlsym(closed, "copy_touch"))(NULL); /* a block of its own */
    assert_int_equal(dlclose(closed), 0);
    collect();
    collect();
    bool kept = alive(tls_case.h);
    tls_case_finish(th);
    assert_true(kept); /* held only by the thread's block of the old library */
    collect();
    assert_dead(tls_case.h);
}

/* A thread registers with a block of library A, opens B, closes A, and
 * uses B's __thread variable: glibc frees A's block and (malloc reusing
 * the chunk) makes B's at the same address. The collector skipped the
 * block it found in the vector as one listed at registration, and did not
 * read the listed one either (A is closed): the object only B's variable
 * held was freed. */
static void *register_with_a_then_use_b(void *arg)
{
    (void)arg;
    void *a = open_copy();
    if (!a)
        return "open A";
    ((touch_fn)(uintptr_t)dlsym(a, "copy_touch"))(NULL); /* A's block */
    if (gc_register_thread() != 0)
        return "register";
    tls_case.lib = open_copy();
    if (!tls_case.lib)
        return "open B";
    dlclose(a);
    return store_then_leave(copy_toucher(tls_case.lib));
}

static void test_tls_block_where_a_closed_library_had_one(void **state)
{
    (void)state;
    tls_case.h = make(80);
    pthread_t th = tls_case_start(register_with_a_then_use_b);
    sem_wait(&tls_case.stored);
    collect();
    collect();
    assert_true(alive(tls_case.h)); /* held only by B's variable */
    tls_case_finish(th);
    assert_int_equal(dlclose(tls_case.lib), 0);
}

/* spangc_os_copy_many, which copies a thread's new TLS blocks together:
 * the ranges in order, one after another, and it stops at one that
 * cannot be read, saying how many were copied whole. */
static void test_copy_many_stops_at_an_unreadable_range(void **state)
{
    (void)state;
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    char *map = mmap(NULL, 3 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    assert_true(map != MAP_FAILED);
    memset(map, 'a', page);
    memset(map + 2 * page, 'c', page);
    map[8] = 'b';
    assert_int_equal(munmap(map + page, page), 0);
    uintptr_t src[] = {(uintptr_t)map, (uintptr_t)map + 8, (uintptr_t)map + page,
                       (uintptr_t)map + 2 * page};
    size_t len[] = {8, 16, 8, 8};
    char buf[40] = {0};
    assert_int_equal(spangc_os_copy_many(buf, src, len, 2), 2);
    assert_memory_equal(buf, "aaaaaaaabaaaaaaaaaaaaaaa", 24);
    memset(buf, 0, sizeof buf);
    assert_int_equal(spangc_os_copy_many(buf, src, len, 4), 2); /* the third is unmapped */
    assert_memory_equal(buf, "aaaaaaaabaaaaaaaaaaaaaaa", 24);
    assert_int_equal(spangc_os_copy_many(buf, src + 3, len + 3, 1), 1);
    assert_memory_equal(buf, "cccccccc", 8);
    assert_int_equal(munmap(map, page), 0);
    assert_int_equal(munmap(map + 2 * page, page), 0);
}

/* fork while another thread is inside one of spangc's dl_iterate_phdr
 * calls: glibc does not reset the dynamic linker's lock in the child, so
 * the child's first collection would wait for ever (a registering thread
 * listing its TLS blocks here; a collection's listing is the same). fork's
 * prepare handler waits for those calls to end. */
static int keep_registering; /* __atomic */

static void *register_until_told(void *arg)
{
    (void)arg;
    while (__atomic_load_n(&keep_registering, __ATOMIC_ACQUIRE)) {
        if (gc_register_thread() != 0)
            return "register";
        gc_unregister_thread();
    }
    return NULL;
}

/* Fork n children that each collect once and exit; NULL, or what went
 * wrong (a child that hung for 20 s is killed). */
static void *fork_collecting_children(void *arg)
{
    int n = (int)(intptr_t)arg;
    for (int i = 0; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0)
            return "fork";
        if (pid == 0) {
            gc_collect();
            _exit(0);
        }
        int status = -1;
        for (int ms = 0; ms < 20000 && waitpid(pid, &status, WNOHANG) == 0; ms++) {
            struct timespec ts = {0, 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (status == -1) {
            kill(pid, SIGKILL);
            waitpid(pid, &status, 0);
            return "a child hung";
        }
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
            return "a child failed";
    }
    return NULL;
}

#define FORKS (TRACK_VG_RUNNING() ? 10 : 200)

static void test_fork_while_another_thread_registers(void **state)
{
    (void)state;
    __atomic_store_n(&keep_registering, 1, __ATOMIC_RELEASE);
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, register_until_told, NULL), 0);
    const char *hung = fork_collecting_children((void *)(intptr_t)FORKS);
    __atomic_store_n(&keep_registering, 0, __ATOMIC_RELEASE);
    void *err;
    assert_int_equal(pthread_join(th, &err), 0);
    assert_null(err);
    assert_null(hung);
}

/* Two threads forking at once: the child of one inherited the other's
 * "hold spangc's dl_iterate_phdr calls off" and its first collection
 * waited for ever. */
static void test_two_threads_fork_at_once(void **state)
{
    (void)state;
    pthread_t th[2];
    for (int i = 0; i < 2; i++)
        assert_int_equal(
            pthread_create(&th[i], NULL, fork_collecting_children, (void *)(intptr_t)FORKS), 0);
    for (int i = 0; i < 2; i++) {
        void *err;
        assert_int_equal(pthread_join(th[i], &err), 0);
        assert_null(err);
    }
}

/* A library's data is read through process_vm_readv, which names the
 * process by an id; once the main thread has called pthread_exit, the
 * process id names a zombie without memory and the call fails (ESRCH),
 * which read as "nothing there": the plugin's data went unscanned and the
 * object only it held was freed. In a forked child, whose main thread
 * exits, and whose other thread reports with its exit status. */
static void *after_main_exits(void *arg)
{
    (void)arg;
    if (gc_register_thread() != 0)
        _exit(2);
    struct timespec ts = {0, 50 * 1000 * 1000}; /* the main thread is gone */
    nanosleep(&ts, NULL);
    void *lib = dlopen(TEST_ROOTS_PLUGIN, RTLD_NOW | RTLD_LOCAL);
    void **slot = lib ? dlsym(lib, "plugin_slot") : NULL;
    if (!slot)
        _exit(3);
    uintptr_t h = make(128);
    store((volatile uintptr_t *)slot, h, 0);
    collect();
    collect();
    _exit(alive(h) ? 0 : 1);
}

static void test_library_data_after_main_thread_exits(void **state)
{
    (void)state;
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        pthread_t th;
        if (pthread_create(&th, NULL, after_main_exits, NULL) != 0)
            _exit(4);
        gc_unregister_thread();
        pthread_exit(NULL);
    }
    assert_child_succeeded(pid);
}

#if defined(__x86_64__)
/* The same blocks read by a collector in a sandbox: a seccomp filter on
 * the collecting thread (and on it alone) refuses process_vm_readv, and in
 * the stricter mode every openat too, so neither copy is allowed
 * (runtime/os.h). A block of a library still loaded must be scanned all
 * the same (through /proc/self/mem, or in place); the block of a closed
 * library must not be read in place: it is unmapped. Before, with copies
 * refused, every block was read in place, and the closed library's
 * faulted when its module's address and TLS id had been given to the
 * next library (glibc reuses both). The object is made on an exited
 * thread, not first in its span (tls_test_start), and the main thread's
 * stack is cleared before each sandboxed collection: with the object made
 * on the main thread and the stack below pthread_join left as it was, it
 * stayed alive with each_copy's in-place fallback skipping the block. */
enum sandbox { REFUSE_VM_READV, REFUSE_VM_READV_AND_OPEN };

/* spangc_os_copy in the sandbox: through /proc/thread-self/mem where only
 * process_vm_readv is refused (a page that is gone reads as 0 bytes, not
 * as a fault), and -1 where both are. */
static const char *check_copies(enum sandbox how)
{
    static const char text[] = "read me through the memory file";
    char buf[sizeof text];
    long page = sysconf(_SC_PAGESIZE);
    char *gone = mmap(NULL, (size_t)page, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (gone == MAP_FAILED || munmap(gone, (size_t)page) != 0)
        return "mmap";
    long got = spangc_os_copy(buf, (uintptr_t)text, sizeof text);
    long from_gone = spangc_os_copy(buf, (uintptr_t)gone, 8);
    if (how == REFUSE_VM_READV)
        return got == (long)sizeof text && memcmp(buf, text, sizeof text) == 0 && from_gone == 0
                   ? NULL
                   : "copy through the memory file";
    return got == -1 && from_gone == -1 ? NULL : "copies should be refused";
}

static void *collect_in_sandbox(void *arg)
{
    enum sandbox how = (enum sandbox)(uintptr_t)arg;
    struct sock_filter filter[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_process_vm_readv, 2, 0),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, how == REFUSE_VM_READV ? ~0u : __NR_openat, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | EPERM),
    };
    struct sock_fprog prog = {sizeof filter / sizeof filter[0], filter};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0)
        return "seccomp";
    if (how == REFUSE_VM_READV_AND_OPEN && open("/proc/self/mem", O_RDONLY) >= 0)
        return "the filter let openat through";
    const char *err = check_copies(how);
    if (err)
        return (void *)err;
    collect();
    return NULL;
}

static __attribute__((noinline)) void start_and_join_sandboxed(enum sandbox how)
{
    pthread_t th;
    void *err;
    assert_int_equal(pthread_create(&th, NULL, collect_in_sandbox, (void *)(uintptr_t)how), 0);
    assert_int_equal(pthread_join(th, &err), 0);
    assert_null(err);
}

/* Collect on a thread in the sandbox. The main thread's stack is scanned
 * from where pthread_join stopped it: cleared first, as collect() does,
 * from a frame above those of pthread_create and pthread_join. */
static void collect_sandboxed(enum sandbox how)
{
    scrub_stack();
    start_and_join_sandboxed(how);
}

static void test_tls_read_in_a_sandbox(void **state)
{
    (void)state;
    /* Valgrind runs the filter on its own system calls. */
    if (TRACK_VG_RUNNING())
        skip();
    pthread_t th = tls_test_start();
    collect_sandboxed(REFUSE_VM_READV);
    assert_true(alive(tls_case.h)); /* copied through the memory file */
    collect_sandboxed(REFUSE_VM_READV_AND_OPEN);
    assert_true(alive(tls_case.h)); /* read in place: mapped */
    sem_post(&tls_case.go);
    sem_wait(&tls_case.stored);
    collect_sandboxed(REFUSE_VM_READV_AND_OPEN); /* faulted here */
    collect_sandboxed(REFUSE_VM_READV);
    assert_dead(tls_case.h);
    tls_case_finish(th);
}
#endif

/* ---- static TLS, and a startup library closed ---------------------------- */

static __attribute__((noinline)) uintptr_t make_and_store_ie(void *lib)
{
    uintptr_t h = make_away(64);
    ((void (*)(uintptr_t, uintptr_t))(uintptr_t)dlsym(lib, "ie_store_hidden"))(h, MASK);
    return h;
}

/* An object held only by an initial-exec __thread variable of a library
 * opened after the main thread registered: its block is in the main
 * thread's static TLS area, which is scanned whole. Before, the block was
 * found neither at registration nor in the vector, and the object was
 * freed. */
static void test_static_tls_of_library_opened_later(void **state)
{
    (void)state;
    void *lib = dlopen(TEST_ROOTS_IEPLUGIN, RTLD_NOW | RTLD_LOCAL);
    if (!lib) /* no static TLS left for it: nothing to test */
        skip();
    uintptr_t h = make_and_store_ie(lib);
    collect();
    collect();
    assert_true(alive(h));
    ((void (*)(uintptr_t, uintptr_t))(uintptr_t)dlsym(lib, "ie_store_hidden"))(MASK, MASK);
    collect();
    assert_dead(h);
}

/* A library with a 40 MiB TLS block, opened with dlopen before gc_init
 * (main() opens a copy, and touches the block), then closed while nothing
 * collects; using another library's TLS makes glibc free the closed one's
 * block, which unmaps it. The next collection must not read it: it was
 * read in place, as a startup module's, and the collection crashed. */
static void *big_tls_before_init;

/* dlopen a copy of the library at path, under a name of its own: a test
 * that later opens the library itself gets another module. No asserts:
 * main() calls it before cmocka runs. */
static void *open_file_copy(const char *path)
{
    char tmp[] = "/tmp/spangc-test-filecopy-XXXXXX";
    int in = open(path, O_RDONLY), out = mkstemp(tmp);
    bool ok = in >= 0 && out >= 0;
    char buf[65536];
    ssize_t n;
    while (ok && (n = read(in, buf, sizeof buf)) > 0)
        ok = write(out, buf, (size_t)n) == n;
    if (in >= 0)
        close(in);
    if (out >= 0)
        close(out);
    void *lib = ok ? dlopen(tmp, RTLD_NOW | RTLD_LOCAL) : NULL;
    unlink(tmp);
    return lib;
}

static void test_startup_library_with_tls_closed(void **state)
{
    (void)state;
    if (!big_tls_before_init)
        skip();
    collect();
    assert_int_equal(dlclose(big_tls_before_init), 0);
    big_tls_before_init = NULL;
    void *small = dlopen(TEST_ROOTS_TLSPLUGIN2, RTLD_NOW | RTLD_LOCAL);
    assert_non_null(small);
    ((touch_fn)(uintptr_t)dlsym(small, "tlsplugin_touch"))(NULL);
    collect();
    collect();
    assert_int_equal(dlclose(small), 0);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest fake_stack_tests[] = {
        cmocka_unit_test(test_address_taken_local),
        cmocka_unit_test(test_address_taken_local_of_a_stopped_thread),
    };
    if (argc > 1 && strcmp(argv[1], "--fake-stack") == 0) {
        expect_fake_frames = true;
        return cmocka_run_group_tests(fake_stack_tests, setup, NULL);
    }
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_global_root),
        cmocka_unit_test(test_added_roots),
        cmocka_unit_test(test_added_root_of_odd_length),
        cmocka_unit_test(test_state_section_is_not_scanned),
        cmocka_unit_test(test_added_roots_refuse_unused_heap),
        cmocka_unit_test(test_every_word_of_a_range),
        cmocka_unit_test(test_relro_is_not_scanned),
        cmocka_unit_test(test_library_closed_during_collection),
        cmocka_unit_test(test_library_data_after_a_hole),
        cmocka_unit_test_teardown(test_tls_of_closed_library, tls_case_teardown),
        cmocka_unit_test(test_more_libraries_than_a_listing_page),
        cmocka_unit_test(test_tls_allocated_after_registering),
        cmocka_unit_test_teardown(test_tls_of_library_opened_after_a_thread_registered,
                                  tls_case_teardown),
        cmocka_unit_test_teardown(test_tls_in_a_listing_made_with_the_world_stopped,
                                  tls_case_teardown),
        cmocka_unit_test_teardown(test_tls_of_library_opened_before_gc_init, tls_case_teardown),
        cmocka_unit_test_teardown(test_tls_of_startup_library_after_another_is_closed,
                                  tls_case_teardown),
        cmocka_unit_test_teardown(test_tls_block_where_a_closed_library_had_one, tls_case_teardown),
        cmocka_unit_test(test_copy_many_stops_at_an_unreadable_range),
        cmocka_unit_test(test_static_tls_of_library_opened_later),
        cmocka_unit_test(test_startup_library_with_tls_closed),
        cmocka_unit_test(test_library_opened_during_collection),
        cmocka_unit_test(test_library_kept_opening_during_collection),
        cmocka_unit_test(test_collect_inside_dl_iterate_phdr),
        cmocka_unit_test(test_library_data_after_main_thread_exits),
        cmocka_unit_test(test_fork_while_another_thread_registers),
        cmocka_unit_test(test_two_threads_fork_at_once),
        cmocka_unit_test(test_register_while_another_collects_inside_dl_iterate_phdr),
#if defined(__x86_64__)
        cmocka_unit_test_teardown(test_tls_read_in_a_sandbox, tls_case_teardown),
#endif
        cmocka_unit_test(test_many_added_roots),
        cmocka_unit_test(test_stack_slot),
        cmocka_unit_test(test_address_taken_local),
        cmocka_unit_test(test_address_taken_local_of_a_stopped_thread),
#if defined(__x86_64__)
        cmocka_unit_test(test_register),
#endif
        cmocka_unit_test(test_interior_pointer),
        cmocka_unit_test(test_scanned_object_pointer),
        cmocka_unit_test(test_precise_fields),
        cmocka_unit_test(test_atomic_not_scanned),
        cmocka_unit_test(test_thread_local),
        cmocka_unit_test(test_shared_library_data),
    };
    opened_before_init = open_copy(); /* setup calls gc_init */
    big_tls_before_init = open_file_copy(TEST_ROOTS_TLSPLUGIN);
    if (big_tls_before_init)
        ((touch_fn)(uintptr_t)dlsym(big_tls_before_init, "tlsplugin_touch"))(NULL);
    return cmocka_run_group_tests(tests, setup, NULL);
}
