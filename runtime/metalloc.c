/*
 * metalloc.c - the metadata allocator (see metalloc.h).
 */
#include "metalloc.h"

#include "atomic.h"
#include "base.h"
#include "lock.h"
#include "os.h"
#include "thread.h"

#include <string.h>

#define META_MIN_SHIFT  4
#define META_MAX_SHIFT  15
#define META_CLASSES    (META_MAX_SHIFT - META_MIN_SHIFT + 1)
#define META_CHUNK      ((size_t)256 * 1024)
#define OS_PAGE         ((size_t)4096)

typedef struct meta_block {
    struct meta_block *next;
} meta_block;

/* All fields guarded by lock, except sys (atomic, read by statistics). */
static SPANGC_STATE struct {
    spangc_lock lock;
    meta_block *free[META_CLASSES];
    char *chunk_cur, *chunk_end;
    ao_word sys;
} meta = {.lock = SPANGC_LOCK_INIT};

static unsigned meta_class(size_t size)
{
    unsigned c = 0;
    while (((size_t)1 << (c + META_MIN_SHIFT)) < size)
        c++;
    return c;
}

void *spangc_meta_alloc(size_t size)
{
    if (size == 0)
        size = 1;
    if (size > ((size_t)1 << META_MAX_SHIFT)) {
        size_t len = round_up(size, OS_PAGE);
        void *p = spangc_os_alloc(len);
        if (p)
            ao_add(&meta.sys, len);
        return p;
    }
    unsigned c = meta_class(size);
    size_t bsize = (size_t)1 << (c + META_MIN_SHIFT);
    void *p = NULL;
    bool fresh = false; /* never handed out: still the OS's zero pages */
    /* A runtime section, so that a registered thread is never stopped
     * while holding meta_lock (the collector allocates metadata). */
    spangc_thread *t = runtime_enter_self();
    lock_acquire(&meta.lock);
    if (meta.free[c]) {
        meta_block *b = meta.free[c];
        meta.free[c] = b->next;
        p = b;
    } else {
        if ((size_t)(meta.chunk_end - meta.chunk_cur) < bsize) {
            /* The rest of the old chunk is smaller than bsize; hand it out
             * to the free lists of smaller classes so it is not lost. */
            while (meta.chunk_cur && meta.chunk_cur < meta.chunk_end) {
                size_t left = (size_t)(meta.chunk_end - meta.chunk_cur);
                unsigned k = META_CLASSES - 1;
                while (((size_t)1 << (k + META_MIN_SHIFT)) > left)
                    k--;
                meta_block *b = (meta_block *)meta.chunk_cur;
                b->next = meta.free[k];
                meta.free[k] = b;
                meta.chunk_cur += (size_t)1 << (k + META_MIN_SHIFT);
            }
            char *chunk = spangc_os_alloc(META_CHUNK);
            if (!chunk) {
                lock_release(&meta.lock);
                runtime_leave_self(t);
                return NULL;
            }
            ao_add(&meta.sys, META_CHUNK);
            meta.chunk_cur = chunk;
            meta.chunk_end = chunk + META_CHUNK;
        }
        p = meta.chunk_cur;
        meta.chunk_cur += bsize;
        fresh = true;
    }
    lock_release(&meta.lock);
    runtime_leave_self(t);
    /* Clearing fresh memory would only make its pages resident. */
    if (!fresh)
        memset(p, 0, bsize);
    return p;
}

void spangc_meta_free(void *p, size_t size)
{
    if (!p)
        return;
    if (size == 0)
        size = 1;
    if (size > ((size_t)1 << META_MAX_SHIFT)) {
        size_t len = round_up(size, OS_PAGE);
        spangc_os_free(p, len);
        ao_sub(&meta.sys, len);
        return;
    }
    unsigned c = meta_class(size);
    meta_block *b = p;
    spangc_thread *t = runtime_enter_self();
    lock_acquire(&meta.lock);
    b->next = meta.free[c];
    meta.free[c] = b;
    lock_release(&meta.lock);
    runtime_leave_self(t);
}

/* gc_type records come from one region of address space reserved for
 * them alone, so that gc_alloc_typed can tell a type from any other
 * pointer by its address before it reads the magic word: a made-up
 * pointer (0x1000) crashed there. Committed as it fills, never freed.
 * 16 MiB, a modest reservation under a ulimit -v, holds some 300,000
 * types of a few pointers each. Guarded by meta.lock; the bounds are
 * atomic words that only grow, read without the lock. */
#define TYPE_REGION ((size_t)16 << 20)
#define TYPE_COMMIT ((size_t)64 << 10)

SPANGC_STATE spangc_type_space spangc_types;
static SPANGC_STATE size_t types_committed; /* meta.lock */

void *spangc_meta_alloc_type(size_t size)
{
    size = round_up(size, 16);
    void *p = NULL;
    spangc_thread *t = runtime_enter_self();
    lock_acquire(&meta.lock);
    uintptr_t lo = ao_load(&spangc_types.lo), hi = ao_load(&spangc_types.hi);
    if (!lo && (lo = (uintptr_t)spangc_os_reserve(TYPE_REGION, OS_PAGE, NULL)) != 0) {
        hi = lo;
        ao_store(&spangc_types.hi, hi);
        ao_store_rel(&spangc_types.lo, lo);
    }
    if (lo && size <= TYPE_REGION - (hi - lo)) {
        size_t need = round_up(hi - lo + size, TYPE_COMMIT);
        if (need <= types_committed ||
            spangc_os_commit((void *)(lo + types_committed), need - types_committed)) {
            if (need > types_committed) {
                ao_add(&meta.sys, need - types_committed);
                types_committed = need;
            }
            /* Counted as a type's at once: until gc_type_new has written
             * it, its magic word is still 0. */
            p = (void *)hi;
            ao_store_rel(&spangc_types.hi, hi + size);
        }
    }
    lock_release(&meta.lock);
    runtime_leave_self(t);
    return p;
}

uint64_t spangc_meta_sys(void)
{
    return ao_load(&meta.sys);
}

void spangc_meta_lock_all(void)
{
    lock_acquire(&meta.lock);
}

void spangc_meta_unlock_all(void)
{
    lock_release(&meta.lock);
}
