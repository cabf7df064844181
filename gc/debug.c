/*
 * debug.c - the debug modes (GC_DEBUG=verify,poison,stress=N).
 *
 * verify   After every mark, a second, independent mark from the same
 *          roots into separate bitmaps: every object it reaches must have
 *          been marked by the first (a missed object would be freed while
 *          reachable). At the start of every cycle, with sweeping finished
 *          and the world stopped, every span's counts, bitmaps and lists
 *          are checked against each other and the statistics
 *          (verify.c). Failures die with "spangc: fatal: verify: ..." and
 *          the address.
 * poison   Sweeping fills every freed slot with 0xde; handing a slot out
 *          checks that its bytes are still 0xde or 0 (never-used memory),
 *          so a write after free is reported with the object's address and
 *          size class.
 * stress=N Collect every N allocations (malloc.c).
 *
 * Every debug mode sends all allocations through the slow path (the fast
 * path's budget is 0), which is where they are checked. The memory
 * checkers (AddressSanitizer builds, runs under Valgrind) use the same
 * per-slot hooks to mark freed slots inaccessible (runtime/track.h).
 */
#include "debug.h"

#include "mark.h"
#include "options.h"
#include "roots.h"
#include "../runtime/metalloc.h"
#include "../runtime/mheap.h"
#include "../runtime/track.h"

#include <string.h>
#include <unistd.h>

#define POISON_BYTE 0xde

SPANGC_STATE bool spangc_track_slots;

void spangc_debug_init(void)
{
#if defined(SPANGC_ASAN)
    spangc_track_slots = true;
#else
    spangc_track_slots = spangc_cfg.poison || TRACK_VG_RUNNING();
#endif
    spangc_cfg.all_slow =
        spangc_cfg.stress || spangc_cfg.poison || spangc_cfg.verify || TRACK_VG_RUNNING();
}

/* Calls fn on each slot this sweep of s frees. */
static void for_each_freed(mspan *s, void (*fn)(mspan *s, uint32_t idx))
{
    for (uint32_t w = 0; w * 64 < s->nelems; w++)
        for (uint64_t freed = span_freed_word(s, w); freed; freed &= freed - 1)
            fn(s, w * 64 + (uint32_t)__builtin_ctzll(freed));
}

static void free_slot(mspan *s, uint32_t idx)
{
    void *p = (void *)(s->base + (uintptr_t)idx * s->elemsize);
    if (spangc_cfg.poison) {
        track_alloc(p, s->elemsize);
        memset(p, POISON_BYTE, s->elemsize);
    }
    track_free(p, s->elemsize);
}

void spangc_debug_freed(mspan *s)
{
    for_each_freed(s, free_slot);
}

void spangc_debug_span_freed(mspan *s)
{
    void *p = (void *)s->base;
    size_t n = s->npages * PAGE_SIZE;
    if (spangc_cfg.poison) {
        track_alloc(p, n);
        memset(p, POISON_BYTE, n);
    }
    track_free(p, n);
}

/* Freed memory holds the poison byte, or 0 where it came fresh from the
 * OS or went back to it. The offset of the first other byte, or SIZE_MAX. */
static size_t poison_broken_at(const unsigned char *p, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (p[i] != POISON_BYTE && p[i] != 0)
            return i;
    return SIZE_MAX;
}

void spangc_debug_alloc(mspan *s, uint32_t idx)
{
    unsigned char *p = (unsigned char *)(s->base + (uintptr_t)idx * s->elemsize);
    track_alloc(p, s->elemsize);
    if (!spangc_cfg.poison)
        return;
    size_t i = poison_broken_at(p, s->elemsize);
    if (i != SIZE_MAX)
        spangc_throw("poison: write after free at %p, byte %zu of a freed %zu-byte object "
                     "(size class %u) at %p",
                     (void *)(p + i), i, s->elemsize, span_sizeclass(s), (void *)p);
}

void spangc_debug_alloc_large(mspan *s)
{
    const unsigned char *p = (const unsigned char *)s->base;
    size_t i = poison_broken_at(p, s->elemsize);
    if (i != SIZE_MAX)
        spangc_throw("poison: write after free at %p, byte %zu of freed memory reused for a "
                     "%zu-byte large object at %p",
                     (void *)(p + i), i, s->elemsize, (void *)p);
}

/* ---- checkmark ------------------------------------------------------------ */

static uint64_t *check_bits_of(mspan *s)
{
    return s->check_bits;
}

static size_t bitmap_bytes(const mspan *s)
{
    return sizeof(uint64_t) * ((s->nelems + 63) / 64);
}

static void check_alloc(mspan *s, void *arg)
{
    bool *failed = arg;
    if (*failed)
        return;
    s->check_bits = spangc_meta_alloc(bitmap_bytes(s));
    if (!s->check_bits)
        *failed = true;
}

static void check_discard(mspan *s, void *arg)
{
    (void)arg;
    spangc_meta_free(s->check_bits, bitmap_bytes(s));
    s->check_bits = NULL;
}

static void check_compare(mspan *s, void *arg)
{
    (void)arg;
    for (uint32_t w = 0; w * 64 < s->nelems; w++) {
        /* All three words, unfolded: the sweeper folds them and counts
         * the objects two markers marked (mspan.h). */
        uint64_t marked = s->mark_bits[w] | s->par_bits[w][0] | s->par_bits[w][1];
        uint64_t missed = s->check_bits[w] & ~marked;
        if (missed) {
            uint32_t idx = w * 64 + (uint32_t)__builtin_ctzll(missed);
            spangc_referrers n = spangc_roots_explain(
                stderr, s->base + (uintptr_t)idx * s->elemsize, s->elemsize);
            if (!n.data && !n.added && !n.threads)
                fprintf(stderr, "spangc: verify: it is referenced only from the heap\n");
            spangc_throw("verify: object %p (size %zu, span %p) is reachable but was not "
                         "marked",
                         (void *)(s->base + (uintptr_t)idx * s->elemsize), s->elemsize,
                         (void *)s->base);
        }
    }
    spangc_meta_free(s->check_bits, bitmap_bytes(s));
    s->check_bits = NULL;
}

void spangc_debug_checkmark(void)
{
    /* Out of memory is not a broken heap: the collection that runs just
     * before an allocation reports ENOMEM must not die for want of check
     * bitmaps. Skip this cycle's check and say so. */
    bool failed = false;
    spangc_mheap_for_each_span(check_alloc, &failed);
    if (failed) {
        spangc_mheap_for_each_span(check_discard, NULL);
        static const char msg[] =
            "spangc: verify: out of metadata memory, check mark skipped this cycle\n";
        /* write, not stdio: the world is stopped and a stopped thread may
         * hold stderr's lock. */
        ssize_t ignored = write(2, msg, sizeof msg - 1);
        (void)ignored;
        return;
    }
    spangc_mark_set_bitmap(check_bits_of);
    spangc_mark_begin(false); /* one marker: a plain, separate algorithm run */
    spangc_roots_mark();
    spangc_mark_finish();
    spangc_mark_set_bitmap(NULL);
    spangc_mheap_for_each_span(check_compare, NULL);
}
