/*
 * weak.c - weak handles [Go: weak.Pointer, mheap.go's weak handles].
 *
 * A handle is a small noscan heap object holding its target's address as
 * an integer, so it does not keep the target alive. The target carries a
 * WEAK special that points at the handle; that record keeps the handle
 * alive while the target lives and makes gc_weak_new return the same
 * handle for the same object. When a collection finds the target
 * unreachable, sweeping its span clears the handle (before the target's
 * finalizer can run) and drops the record; the handle itself is then an
 * ordinary object that dies when the program drops it.
 *
 * Reading: after a mark, a dead target's handle still holds its address
 * until the target's span is swept. gc_weak_get therefore sweeps that
 * span first (spangc_ensure_swept) and reads the handle again; inside a
 * runtime section no new cycle can start, so an address read after the
 * sweep belongs to a live object, and once returned it is held by the
 * caller like any pointer.
 */
#include "weak.h"

#include "specials.h"
#include "sweep.h"
#include "../runtime/malloc.h"
#include "../runtime/metalloc.h"
#include "../runtime/thread.h"
#include "../runtime/track.h"

#include <errno.h>
#include <string.h>

#define WEAK_MAGIC 0x7765616b68646c21ull /* "weakhdl!" */

struct gc_weak {
    ao_word addr;   /* target address, 0 once it died */
    uint64_t magic; /* handle_magic(this handle) */
};

/* The magic depends on the handle's own address, so that a copy of its
 * bytes elsewhere (gc_realloc of a handle, a memcpy) is not taken for a
 * handle: no WEAK record points at a copy, so its address would never be
 * cleared, and once the target died the copy would return whatever came
 * to live at that address. */
static uint64_t handle_magic(const gc_weak *w)
{
    return WEAK_MAGIC ^ (uint64_t)(uintptr_t)w;
}

bool spangc_weak_is_handle(const void *p, size_t size)
{
    const gc_weak *w = p;
    return size >= sizeof *w && w->magic == handle_magic(w);
}

void spangc_weak_clear(gc_weak *w)
{
    ao_store_rel(&w->addr, 0);
}

void spangc_weak_copy(void *dst, const gc_weak *w, size_t n)
{
    gc_weak now = {.addr = ao_load(&w->addr), .magic = w->magic};
    size_t head = n < sizeof now ? n : sizeof now;
    memcpy(dst, &now, head);
    memcpy((char *)dst + head, (const char *)w + head, n - head);
}

/* The existing handle of obj, or NULL. */
static gc_weak *existing_handle(mspan *s, uintptr_t obj)
{
    lock_acquire(&s->speciallock);
    special_weak *r = (special_weak *)spangc_special_find_locked(s, obj, SPECIAL_WEAK);
    gc_weak *w = r ? r->handle : NULL;
    lock_release(&s->speciallock);
    return w;
}

gc_weak *gc_weak_new(void *ptr)
{
    spangc_thread *t = spangc_self;
    uintptr_t obj = (uintptr_t)ptr;
    if (!t) {
        errno = EPERM;
        return NULL;
    }
    mspan *s;
    uint32_t idx;
    runtime_enter(t);
    bool ok = spangc_find_base(obj, &s, &idx);
    gc_weak *w = ok ? existing_handle(s, obj) : NULL;
    runtime_leave(t);
    if (!ok) {
        errno = EINVAL;
        return NULL;
    }
    if (w)
        return w;

    /* Allocating may collect: ptr, on our stack, keeps obj alive. */
    gc_weak *fresh = spangc_alloc_for(sizeof *fresh, 1, NULL, __builtin_return_address(0));
    special_weak *rec = spangc_meta_alloc(sizeof *rec);
    if (!fresh || !rec) {
        spangc_meta_free(rec, sizeof *rec);
        errno = ENOMEM;
        return NULL;
    }
    fresh->magic = handle_magic(fresh);
    ao_store(&fresh->addr, obj);
    rec->handle = fresh;
    runtime_enter(t);
    if (!spangc_find_base(obj, &s, &idx))
        spangc_throw("weak handle target %p died while held", ptr);
    /* Another thread may have made one meanwhile: there is one handle per
     * object, so use it and let ours be collected. */
    w = existing_handle(s, obj);
    if (!w && spangc_special_add(s, obj, &rec->s, SPECIAL_WEAK, true) == 0) {
        w = fresh;
        rec = NULL;
    } else if (!w) {
        w = existing_handle(s, obj);
    }
    runtime_leave(t);
    if (rec)
        spangc_meta_free(rec, sizeof *rec);
    return w;
}

void *gc_weak_get(const gc_weak *cw)
{
    gc_weak *w = (gc_weak *)cw;
    spangc_thread *t = spangc_self;
    if (!t) {
        errno = EPERM;
        return NULL;
    }
    if (!w)
        return NULL;
    void *result = NULL;
    runtime_enter(t);
    /* Read the magic only at the base of an allocated slot (an interior
     * pointer would read into the next one). spangc_find_base sweeps the
     * handle's span first: a handle the program let die may be freed by a
     * sweeper, and poisoned for memory checkers, at any moment until then;
     * after it, inside this runtime section, no sweeper touches the span
     * again, so a slot found free stays free and is not read. A slot
     * allocated again since is read as whatever now lives there: a program
     * that reads a handle it let die while another thread allocates that
     * memory has a use after free (spangc.h). */
    mspan *hs;
    uint32_t idx;
    if (spangc_find_base((uintptr_t)w, &hs, &idx) && track_readable(w, sizeof *w) &&
        spangc_weak_is_handle(w, hs->elemsize)) {
        uintptr_t addr = ao_load_acq(&w->addr);
        mspan *s = addr ? spangc_span_of_heap(addr) : NULL;
        if (s) {
            spangc_ensure_swept(s);
            result = (void *)ao_load_acq(&w->addr);
        }
    } else {
        errno = EINVAL;
    }
    runtime_leave(t);
    return result;
}
