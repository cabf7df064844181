/*
 * stats.c - gc_get_stats.
 */
#include "gc.h"

#include "../include/spangc.h"

#include "../runtime/mcache.h"
#include "../runtime/metalloc.h"
#include "../runtime/mheap.h"
#include "../runtime/thread.h"

#include <string.h>

void gc_get_stats(gc_stats *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    /* All zero until gc_init has succeeded: a gc_init that failed may have
     * set up part of the heap, and a failed call changes nothing the
     * program can see. */
    if (ao_load(&spangc_gc.initialized) != 2)
        return;
    spangc_thread *t = spangc_self;
    if (t) {
        /* Count what this thread allocated from its cached spans. */
        runtime_enter(t);
        spangc_mcache_count_allocs(&t->cache);
        runtime_leave(t);
    }
    out->heap_alloc = ao_load(&spangc_mstats.heap_alloc);
    out->heap_sys = ao_load(&spangc_heap.sys);
    out->heap_released = ao_load(&spangc_heap.released);
    out->total_alloc = ao_load(&spangc_mstats.total_alloc);
    /* frees first: an object's free is counted after its allocation, so
     * mallocs read later is never below it, and heap_objects cannot wrap
     * when a sweep counts frees between the two loads. */
    out->frees = ao_load_acq(&spangc_mstats.frees);
    out->mallocs = ao_load_acq(&spangc_mstats.mallocs);
    out->num_gc = ao_load(&spangc_gc.num_gc);
    out->pause_total_ns = ao_load(&spangc_gc.pause_total_ns);
    out->last_pause_ns = ao_load(&spangc_gc.last_pause_ns);
    out->max_pause_ns = ao_load(&spangc_gc.max_pause_ns);
    uint64_t next = ao_load(&spangc_gc.next_gc);
    out->next_gc = next == UINT64_MAX ? 0 : next;
    out->heap_inuse = (uint64_t)ao_load(&spangc_heap.pages_inuse) * PAGE_SIZE;
    out->heap_objects = out->mallocs - out->frees;
    out->heap_live = ao_load(&spangc_gc.heap_marked);
    out->metadata_sys = spangc_meta_sys();
    out->num_forced_gc = ao_load(&spangc_gc.num_forced_gc);
    out->mark_stack_overflows = ao_load(&spangc_gc.mark_overflows);
}
