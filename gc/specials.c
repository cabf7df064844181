/*
 * specials.c - per-span lists of records attached to objects.
 *
 * A span keeps one singly linked list of specials sorted by (offset of the
 * object in the span, kind). Three kinds:
 *
 *   FINALIZER  fn and arg to call once the object is unreachable
 *   WEAK       the object's weak handle (gc/weak.c)
 *   PROFILE    the heap-profile bucket of a sampled allocation
 *
 * Locking [Go: mspan.speciallock and mheap.specials]. A span's list is
 * read or changed only
 *  - by the span's sweeper, which owns the span (sweepgen CAS) and needs
 *    no lock, or
 *  - under the span's speciallock, by a thread in a runtime section that
 *    has first made sure the span is swept for the current cycle
 *    (spangc_ensure_swept): no sweeper can then own it, and no new cycle
 *    can start before the section ends;
 *  - by the collector while the world is stopped (marking).
 *
 * Marking. An object with a finalizer is not kept alive by it, but
 * everything it points to is, so that the finalizer finds valid memory:
 * its contents are scanned without marking it. A finalizer's arg is a
 * root. A weak handle is kept alive by its record; the handle does not
 * keep its object alive (it holds the address as an integer in a noscan
 * object).
 *
 * Sweeping an unmarked object's records: a finalizer is queued and the
 * object marked again (resurrected) so that it survives until the
 * finalizer has run; weak handles are cleared, resurrected or not; a
 * profile record counts the free, unless the object was resurrected (it
 * is not freed yet). Records of marked objects stay.
 */
#include "specials.h"

#include "finalizer.h"
#include "mark.h"
#include "profile.h"
#include "sweep.h"
#include "weak.h"
#include "../runtime/metalloc.h"
#include "../runtime/mheap.h"

#include <errno.h>

/* Spans that have had specials since the last mark: marking looks at
 * every span only if there is any (atomic). */
static SPANGC_STATE ao_word specials_exist;

static size_t record_size(int kind)
{
    switch (kind) {
    case SPECIAL_FINALIZER:
        return sizeof(special_finalizer);
    case SPECIAL_WEAK:
        return sizeof(special_weak);
    default:
        return sizeof(special_profile);
    }
}

void spangc_special_free(special *r)
{
    spangc_meta_free(r, record_size(r->kind));
}

/* The link that points at the first record >= (offset, kind). */
static special **find_link(mspan *s, uint32_t offset, int kind)
{
    special **link = &s->specials;
    while (*link && ((*link)->offset < offset ||
                     ((*link)->offset == offset && (*link)->kind < kind)))
        link = &(*link)->next;
    return link;
}

special *spangc_special_find_locked(mspan *s, uintptr_t obj, int kind)
{
    uint32_t offset = (uint32_t)(obj - s->base);
    special *r = *find_link(s, offset, kind);
    return r && r->offset == offset && r->kind == kind ? r : NULL;
}

int spangc_special_add(mspan *s, uintptr_t obj, special *rec, int kind, bool unique)
{
    spangc_ensure_swept(s);
    uint32_t offset = (uint32_t)(obj - s->base);
    rec->offset = offset;
    rec->kind = (uint8_t)kind;
    lock_acquire(&s->speciallock);
    special **link = find_link(s, offset, kind);
    if (unique && *link && (*link)->offset == offset && (*link)->kind == kind) {
        lock_release(&s->speciallock);
        return -EEXIST;
    }
    rec->next = *link;
    *link = rec;
    lock_release(&s->speciallock);
    ao_store(&specials_exist, 1);
    return 0;
}

special *spangc_special_remove(mspan *s, uintptr_t obj, int kind)
{
    spangc_ensure_swept(s);
    uint32_t offset = (uint32_t)(obj - s->base);
    lock_acquire(&s->speciallock);
    special **link = find_link(s, offset, kind);
    special *r = *link;
    if (r && r->offset == offset && r->kind == kind)
        *link = r->next;
    else
        r = NULL;
    lock_release(&s->speciallock);
    return r;
}

void spangc_specials_sweep(mspan *s)
{
    special **link = &s->specials;
    while (*link) {
        uint32_t offset = (*link)->offset;
        uint32_t idx = s->nelems == 1 ? 0 : offset / (uint32_t)s->elemsize;
        uintptr_t obj = s->base + offset;
        if (bitmap_get(s->mark_bits, idx)) {
            while (*link && (*link)->offset == offset)
                link = &(*link)->next;
            continue;
        }
        /* Dead. Records of one object are adjacent, finalizer first. */
        bool resurrect = (*link)->kind == SPECIAL_FINALIZER;
        if (resurrect)
            bitmap_set(s->mark_bits, idx);
        while (*link && (*link)->offset == offset) {
            special *r = *link;
            if (r->kind == SPECIAL_PROFILE && resurrect) {
                link = &r->next; /* not freed yet: keep counting it */
                continue;
            }
            *link = r->next;
            if (r->kind == SPECIAL_FINALIZER) {
                spangc_finq_push((special_finalizer *)r, (void *)obj);
                continue; /* the queue owns the record now */
            }
            switch (r->kind) {
            case SPECIAL_WEAK:
                spangc_weak_clear(((special_weak *)r)->handle);
                break;
            case SPECIAL_PROFILE:
                spangc_profile_free(((special_profile *)r)->bucket, s->elemsize);
                break;
            }
            spangc_special_free(r);
        }
    }
}

static void mark_span_specials(mspan *s, void *arg)
{
    (void)arg;
    for (special *r = s->specials; r; r = r->next) {
        uintptr_t obj = s->base + r->offset;
        if (r->kind == SPECIAL_FINALIZER) {
            special_finalizer *f = (special_finalizer *)r;
            spangc_mark_scan_object(obj);
            spangc_mark_word((uintptr_t)f->arg);
        } else if (r->kind == SPECIAL_WEAK) {
            spangc_mark_word((uintptr_t)((special_weak *)r)->handle);
        }
    }
    spangc_mark_drain();
}

void spangc_specials_mark(void)
{
    if (ao_load(&specials_exist))
        spangc_mheap_for_each_span(mark_span_specials, NULL);
}
