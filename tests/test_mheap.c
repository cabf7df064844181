/*
 * test_mheap.c - the page heap: first fit, coalescing, growth behind a
 * guard page, release (idle spans only; under a limit, down to 95% of
 * it), many random sequences checked against a simple model, and the
 * bitmaps it sets up with a span.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <spangc.h>
#include <stdlib.h>
#include <string.h>

#include "arena.h"
#include "metalloc.h"
#include "mheap.h"
#include "options.h"
#include "os.h"
#include "thread.h"

/* These tests call mheap directly, as spangc's allocator does: inside a
 * runtime section (runtime/lock.h), here for the whole run; they never
 * collect. */
static int setup(void **state)
{
    (void)state;
    int err = gc_init(NULL);
    if (!err)
        runtime_enter(spangc_self);
    return err;
}

typedef struct free_list {
    uintptr_t base[4096];
    size_t npages[4096];
    size_t n;
} free_list;

static void collect_free(mspan *s, void *arg)
{
    free_list *f = arg;
    if (ao_load(&s->state) == SPAN_FREE && f->n < 4096) {
        f->base[f->n] = s->base;
        f->npages[f->n] = s->npages;
        f->n++;
    }
}

/* The span first fit would choose now: the lowest-addressed free span
 * that fits; 0 if none. */
static uintptr_t expected_fit(size_t npages)
{
    static free_list f;
    f.n = 0;
    lock_acquire(&spangc_heap.lock);
    spangc_mheap_walk(collect_free, &f);
    lock_release(&spangc_heap.lock);
    uintptr_t first = 0;
    for (size_t i = 0; i < f.n; i++)
        if (f.npages[i] >= npages && (!first || f.base[i] < first))
            first = f.base[i];
    return first;
}

/* Freeing three neighbours in any order leaves one free span. */
static void test_coalesce_neighbours(void **state)
{
    (void)state;
    mspan *a = spangc_mheap_alloc(3, 1);
    mspan *b = spangc_mheap_alloc(5, 1);
    mspan *c = spangc_mheap_alloc(7, 1);
    assert_true(a && b && c);
    assert_int_equal(b->base, a->base + 3 * PAGE_SIZE);
    assert_int_equal(c->base, b->base + 5 * PAGE_SIZE);
    uintptr_t base = a->base;
    spangc_mheap_free(a);
    spangc_mheap_free(c);
    spangc_mheap_free(b);
    spangc_mheap_verify();
    mspan *whole = spangc_span_of(base);
    assert_non_null(whole);
    assert_int_equal(whole->state, SPAN_FREE);
    assert_int_equal(whole->base, base);
    assert_true(whole->npages >= 15);
}

/* A request takes the lowest-addressed free span that fits, and its front
 * part, even where a smaller span higher up would fit. */
static void test_first_fit(void **state)
{
    (void)state;
    mspan *hold[8];
    for (int i = 0; i < 8; i++)
        hold[i] = spangc_mheap_alloc(i % 2 ? 1 : 10 - (size_t)i, 1);
    uintptr_t biggest = hold[0]->base;
    /* Free spans of 10, 8, 6 and 4 pages, in address order, separated by
     * 1-page spans (a free span may also follow the last). */
    for (int i = 0; i < 8; i += 2)
        spangc_mheap_free(hold[i]);
    spangc_mheap_verify();
    for (size_t want = 1; want <= 10; want++) {
        uintptr_t expect = expected_fit(want);
        mspan *s = spangc_mheap_alloc(want, 1);
        assert_non_null(s);
        assert_int_equal(s->base, expect);
        /* The 10-page span fits every request, so nothing above it is
         * taken; best fit would take the 4-page span above for 4. */
        assert_true(s->base <= biggest);
        spangc_mheap_free(s);
    }
    for (int i = 1; i < 8; i += 2)
        spangc_mheap_free(hold[i]);
    spangc_mheap_verify();
}

/* Released pages are counted page by page: a released free span that
 * merges with a dirty neighbour keeps its pages counted, and a span carved
 * from the merge takes back exactly the released pages it reuses. */
static void test_released_pages_counted_exactly(void **state)
{
    (void)state;
    mspan *g0 = spangc_mheap_alloc(1, 1);
    mspan *a = spangc_mheap_alloc(4, 1);
    mspan *b = spangc_mheap_alloc(4, 1);
    mspan *g1 = spangc_mheap_alloc(1, 1);
    assert_true(g0 && a && b && g1);
    /* First fit: no free span of 4 pages or more lies below a. */
    assert_int_equal(a->base, g0->base + PAGE_SIZE);
    assert_int_equal(b->base, a->base + 4 * PAGE_SIZE);
    assert_int_equal(g1->base, b->base + 4 * PAGE_SIZE);
    uintptr_t base = a->base;
    spangc_mheap_free(a);
    spangc_mheap_scavenge(0, 0);
    uint64_t released = ao_load(&spangc_heap.released);
    assert_true(spangc_span_of(base)->released);
    spangc_mheap_free(b); /* merges 4 released pages with 4 dirty ones */
    assert_int_equal(ao_load(&spangc_heap.released), released);
    assert_false(spangc_span_of(base)->released);
    spangc_mheap_verify();
    mspan *s = spangc_mheap_alloc(8, 1);
    assert_non_null(s);
    assert_int_equal(s->base, base);
    assert_int_equal(ao_load(&spangc_heap.released), released - 4 * PAGE_SIZE);
    spangc_mheap_verify();
    spangc_mheap_free(s);
    spangc_mheap_free(g0);
    spangc_mheap_free(g1);
    spangc_mheap_verify();
}

/* The scavenge delay the tests below pass, and the free span at base made
 * to look idle for twice that. */
#define IDLE_DELAY ((uint64_t)5 * 1000 * 1000 * 1000)

static void age_free_span(uintptr_t base)
{
    lock_acquire(&spangc_heap.lock);
    spangc_span_of(base)->free_since -= 2 * IDLE_DELAY;
    lock_release(&spangc_heap.lock);
}

/* A span freed next to a big idle free span does not make it young: the
 * merged span keeps the age of most of its pages, so the scavenger still
 * returns it. */
static void test_idle_span_stays_idle_when_merged(void **state)
{
    (void)state;
    mspan *g0 = spangc_mheap_alloc(1, 1);
    mspan *a = spangc_mheap_alloc(64, 1);
    mspan *b = spangc_mheap_alloc(1, 1);
    mspan *g1 = spangc_mheap_alloc(1, 1);
    assert_true(g0 && a && b && g1);
    assert_int_equal(b->base, a->base + 64 * PAGE_SIZE);
    uintptr_t base = a->base;
    spangc_mheap_free(a);
    age_free_span(base);
    spangc_mheap_free(b); /* fresh, and merged into a */
    assert_int_equal(spangc_span_of(base)->npages, 65);
    assert_true(spangc_mheap_scavenge(IDLE_DELAY, 0) >= 64 * PAGE_SIZE);
    assert_true(spangc_span_of(base)->released);
    spangc_mheap_verify();
    spangc_mheap_free(g0);
    spangc_mheap_free(g1);
    spangc_mheap_verify();
}

/* A span freed a moment ago stays: only spans idle for the delay go back
 * to the OS, so that a program reusing its memory does not pay a page
 * fault for each page of it. */
static void test_young_free_span_is_not_released(void **state)
{
    (void)state;
    mspan *g0 = spangc_mheap_alloc(1, 1);
    mspan *a = spangc_mheap_alloc(64, 1);
    mspan *g1 = spangc_mheap_alloc(1, 1);
    assert_true(g0 && a && g1);
    uintptr_t base = a->base;
    spangc_mheap_free(a);
    spangc_mheap_scavenge(IDLE_DELAY, 0);
    assert_false(spangc_span_of(base)->released);
    age_free_span(base);
    assert_true(spangc_mheap_scavenge(IDLE_DELAY, 0) >= 64 * PAGE_SIZE);
    assert_true(spangc_span_of(base)->released);
    spangc_mheap_free(g0);
    spangc_mheap_free(g1);
    spangc_mheap_verify();
}

/* Over a soft memory limit, free pages go back until the heap and its
 * metadata map 95% of the limit, not just the limit: room to grow before
 * the next release. The free pages here are 32 spans of 256 KiB between
 * spans in use, so the release stops within 256 KiB of where it aims. */
static void test_release_to_limit_leaves_a_margin(void **state)
{
    (void)state;
    enum { N = 64, PAGES = 32 };
    spangc_mheap_scavenge(0, 0); /* only the pages freed below are dirty */
    mspan *s[N];
    for (int i = 0; i < N; i++)
        assert_non_null(s[i] = spangc_mheap_alloc(PAGES, 1));
    for (int i = 1; i < N; i += 2)
        spangc_mheap_free(s[i]);
    uint64_t mapped = spangc_mapped_bytes();
    uint64_t limit = (mapped - (4 << 20)) / 19 * 20; /* 95% of it: 4 MiB below mapped */
    ao_store(&spangc_cfg.memory_limit, limit);
    spangc_mheap_scavenge_to_limit();
    uint64_t now = spangc_mapped_bytes();
    ao_store(&spangc_cfg.memory_limit, 0);
    assert_true(now <= limit - limit / 20);
    assert_true(now > limit - limit / 20 - 2 * PAGES * PAGE_SIZE); /* and no further */
    for (int i = 0; i < N; i += 2)
        spangc_mheap_free(s[i]);
    spangc_mheap_verify();
}

/* Random allocate/free sequences against a model of which pages are in
 * use; the heap's own invariants are checked after every step. */
static void test_random_sequences(void **state)
{
    (void)state;
    enum { SLOTS = 200, STEPS = 4000 };
    mspan *live[SLOTS] = {0};
    srand(12345);
    for (int round = 0; round < 5; round++) {
        for (int step = 0; step < STEPS; step++) {
            int i = rand() % SLOTS;
            if (live[i]) {
                spangc_mheap_free(live[i]);
                live[i] = NULL;
            } else {
                size_t npages = rand() % 8 ? 1 + (size_t)(rand() % 16) : 1 + (size_t)(rand() % 300);
                uintptr_t expect = expected_fit(npages);
                mspan *s = spangc_mheap_alloc(npages, 1);
                assert_non_null(s);
                assert_int_equal(s->npages, npages);
                if (expect)
                    assert_int_equal(s->base, expect);
                /* No overlap with any live span in the model. */
                for (int j = 0; j < SLOTS; j++) {
                    if (!live[j])
                        continue;
                    uintptr_t lo = live[j]->base, hi = lo + live[j]->npages * PAGE_SIZE;
                    assert_true(s->base + npages * PAGE_SIZE <= lo || s->base >= hi);
                }
                /* The memory is ours to write. */
                memset((void *)s->base, 0x5a, npages * PAGE_SIZE);
                live[i] = s;
            }
            if (step % 64 == 0)
                spangc_mheap_verify();
        }
        spangc_mheap_verify();
    }
    for (int i = 0; i < SLOTS; i++)
        if (live[i])
            spangc_mheap_free(live[i]);
    spangc_mheap_verify();
}

/* Pages freed with data in them are handed out again as needing zeroing;
 * released pages are clean again. */
static void test_needzero_and_release(void **state)
{
    (void)state;
    mspan *s = spangc_mheap_alloc(64, 1);
    uintptr_t base = s->base;
    memset((void *)base, 0xff, 64 * PAGE_SIZE);
    spangc_mheap_free(s);
    mspan *t = spangc_mheap_alloc(64, 1);
    assert_int_equal(t->base, base);
    assert_true(t->needzero);
    spangc_mheap_free(t);
    uint64_t before = ao_load(&spangc_heap.released);
    assert_true(spangc_mheap_scavenge(0, 0) >= 64 * PAGE_SIZE);
    assert_true(ao_load(&spangc_heap.released) > before);
    mspan *u = spangc_mheap_alloc(64, 1);
    assert_false(u->needzero);
    for (size_t i = 0; i < 64 * PAGE_SIZE; i += 512)
        assert_int_equal(((unsigned char *)base)[i], 0);
    spangc_mheap_free(u);
    spangc_mheap_verify();
}

/* A release the kernel refuses (locked memory, after mlockall) leaves the
 * pages as they were: not counted as released, still needing zeroing. It
 * used to be taken for done, and new objects were handed out holding the
 * old bytes. */
static void test_refused_release_keeps_span_dirty(void **state)
{
    (void)state;
    mspan *s = spangc_mheap_alloc(64, 1);
    uintptr_t base = s->base;
    memset((void *)base, 0xab, 64 * PAGE_SIZE);
    spangc_mheap_free(s);
    uint64_t before = ao_load(&spangc_heap.released);
    spangc_os_inject_release_failure(true);
    size_t done = spangc_mheap_scavenge(0, 0);
    spangc_os_inject_release_failure(false);
    assert_int_equal(done, 0);
    assert_int_equal(ao_load(&spangc_heap.released), before);
    mspan *t = spangc_mheap_alloc(64, 1);
    assert_int_equal(t->base, base);
    assert_true(t->needzero);
    spangc_mheap_free(t);
    spangc_mheap_verify();
}

/* Growth next to a dirty free span: the fresh pages are clean, but the
 * span they merge with is not, and a span carved across both must still
 * be zeroed. The release before growth, which would have cleaned the old
 * pages, is refused here (as under mlockall). */
static void test_growth_merges_with_dirty_span(void **state)
{
    (void)state;
    mspan *a = spangc_mheap_alloc(2048, 1);
    assert_non_null(a);
    memset((void *)a->base, 0xcd, 2048 * PAGE_SIZE);
    uintptr_t a_base = a->base;
    spangc_mheap_free(a);
    mspan *top = spangc_span_of(a_base);
    assert_int_equal(top->state, SPAN_FREE);
    assert_true(top->needzero);
    /* The free span that holds a reaches the end of the heap, so that
     * growing puts new pages right after it (unless a free span lower
     * down held a). */
    if (top->base + top->npages * PAGE_SIZE != spangc_heap.cur)
        skip();
    uintptr_t top_base = top->base;
    size_t want = top->npages + 1;
    spangc_os_inject_release_failure(true);
    mspan *b = spangc_mheap_alloc(want, 1);
    spangc_os_inject_release_failure(false);
    assert_non_null(b);
    if (b->base != top_base) {
        spangc_mheap_free(b);
        skip(); /* the OS put the new reservation elsewhere: no merge */
    }
    assert_true(b->needzero);
    spangc_mheap_free(b);
    spangc_mheap_verify();
}

/* The heap starts at its fixed hint, 0xc000000000 (runtime/mheap.c says
 * why), unless a sanitizer's memory layout is in the way. */
static void test_heap_starts_at_its_hint(void **state)
{
    (void)state;
#if defined(SPANGC_TSAN) || defined(__SANITIZE_ADDRESS__)
    skip();
#endif
    assert_int_equal(ao_load(&spangc_arenas.lo), (uintptr_t)0xc0 << 32);
}

/* A reservation's first page is never a span's: copies of its address
 * (gc_init's dead frames, the end of the mapping below) would keep an
 * object there alive for good. */
static void test_reservation_starts_with_a_guard_page(void **state)
{
    (void)state;
    assert_null(spangc_span_of(ao_load(&spangc_arenas.lo)));
}

/* Growth past the end of the reservation, where the OS gives the address
 * range that follows: the heap goes on where it stopped, so the span that
 * needed the growth starts in the old reservation, whose end is not left
 * unused behind a guard page. */
static void test_growth_continues_the_reservation(void **state)
{
    (void)state;
    enum { MAX = 64, NPAGES = 2048 }; /* 16 MiB spans */
    mspan *held[MAX];
    int n = 0;
    uintptr_t end0 = spangc_heap.end;
    for (;;) {
        assert_true(n < MAX);
        uintptr_t cur = spangc_heap.cur;
        mspan *s = spangc_mheap_alloc(NPAGES, 1);
        assert_non_null(s);
        held[n++] = s;
        if (spangc_heap.end == end0)
            continue;
        bool next_range = spangc_heap.end == end0 + ARENA_SIZE;
        if (next_range && cur < end0)
            assert_true(s->base < end0);
        while (n > 0)
            spangc_mheap_free(held[--n]);
        spangc_mheap_verify();
        if (!next_range || cur == end0)
            skip(); /* the OS put the new range elsewhere, or none was left */
        return;
    }
}

/* A request larger than an arena gets its own reservation. */
static void test_huge_span(void **state)
{
    (void)state;
    size_t npages = (200u << 20) / PAGE_SIZE;
    mspan *s = spangc_mheap_alloc(npages, 1);
    assert_non_null(s);
    assert_int_equal(s->npages, npages);
    assert_ptr_equal(spangc_span_of(s->base + (npages - 1) * PAGE_SIZE), s);
    spangc_mheap_free(s);
    spangc_mheap_verify();
}

/* A span of more slots than the structure holds bitmaps for (the 16-byte
 * class's 4-page spans) gets one zeroed block for all of them, given back
 * at the first stop of the world after the span is freed; smaller spans
 * keep theirs inline. The block's three parts do not overlap: all set in
 * one, the others stay clear. Many spans set up and freed do not grow the
 * metadata. */
static void test_span_bitmap_storage(void **state)
{
    (void)state;
    unsigned tiny = make_spanclass(1, 0);
    mspan *s = spangc_mheap_alloc(class_to_npages[1], tiny);
    assert_non_null(s);
    assert_int_equal(s->nelems, MAX_OBJECTS_PER_SPAN);
    assert_true(s->nelems > SPAN_INLINE_OBJECTS);
    uint32_t words = s->nelems / 64;
    assert_non_null(s->big_bits);
    assert_ptr_equal(s->alloc_bits, s->big_bits);
    assert_ptr_equal(s->mark_bits, s->big_bits + words);
    assert_ptr_equal((uint64_t *)s->par_bits, s->big_bits + 2 * words);
    for (uint32_t i = 0; i < 4 * words; i++)
        assert_int_equal(s->big_bits[i], 0);
    for (uint32_t w = 0; w < words; w++)
        s->par_bits[w][1] = ~(uint64_t)0;
    for (uint32_t w = 0; w < words; w++) {
        assert_int_equal(s->alloc_bits[w], 0);
        assert_int_equal(s->mark_bits[w], 0);
        assert_int_equal(s->par_bits[w][0], 0);
    }
    span_fold_marks(s);
    assert_int_equal(spangc_bitmap_count(s->mark_bits, s->nelems), s->nelems);
    memset(s->mark_bits, 0, words * sizeof(uint64_t));
    uint64_t *block = s->big_bits;
    spangc_mheap_free(s);
    assert_null(s->big_bits);
    /* Until the next stop of the world the block is not reused: a reader
     * that found the span in use just before still reads its zero alloc
     * bits. */
    void *other[64];
    for (int i = 0; i < 64; i++) {
        other[i] = spangc_meta_alloc(SPAN_BIG_BITS_BYTES);
        assert_ptr_not_equal(other[i], block);
        memset(other[i], 0xff, SPAN_BIG_BITS_BYTES);
    }
    for (uint32_t w = 0; w < words; w++)
        assert_int_equal(s->alloc_bits[w], 0);
    for (int i = 0; i < 64; i++)
        spangc_meta_free(other[i], SPAN_BIG_BITS_BYTES);
    spangc_mheap_free_retired_bits();

    mspan *small = spangc_mheap_alloc(class_to_npages[2], make_spanclass(2, 0));
    assert_true(small->nelems <= SPAN_INLINE_OBJECTS);
    assert_null(small->big_bits);
    assert_ptr_equal(small->alloc_bits, small->bits[0]);
    assert_ptr_equal((uint64_t *)small->par_bits, (uint64_t *)small->inline_par);
    spangc_mheap_free(small);

    uint64_t meta = spangc_meta_sys();
    for (int i = 0; i < 10000; i++) {
        mspan *t = spangc_mheap_alloc(class_to_npages[1], tiny);
        assert_non_null(t);
        for (uint32_t k = 0; k < 4 * words; k++)
            assert_int_equal(t->big_bits[k], 0); /* cleared of the last span's bits */
        t->big_bits[i % (4 * words)] = 1;
        spangc_mheap_free(t);
        spangc_mheap_free_retired_bits();
    }
    assert_int_equal(spangc_meta_sys(), meta);
    spangc_mheap_verify();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_coalesce_neighbours),
        cmocka_unit_test(test_first_fit),
        cmocka_unit_test(test_released_pages_counted_exactly),
        cmocka_unit_test(test_idle_span_stays_idle_when_merged),
        cmocka_unit_test(test_young_free_span_is_not_released),
        cmocka_unit_test(test_release_to_limit_leaves_a_margin),
        cmocka_unit_test(test_random_sequences),
        cmocka_unit_test(test_needzero_and_release),
        cmocka_unit_test(test_refused_release_keeps_span_dirty),
        cmocka_unit_test(test_growth_merges_with_dirty_span),
        cmocka_unit_test(test_heap_starts_at_its_hint),
        cmocka_unit_test(test_reservation_starts_with_a_guard_page),
        cmocka_unit_test(test_growth_continues_the_reservation),
        cmocka_unit_test(test_huge_span),
        cmocka_unit_test(test_span_bitmap_storage),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
