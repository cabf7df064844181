/*
 * gc.c - initialization and the collection cycle.
 *
 * The collector is not written yet: the heap only grows, and gc_collect
 * does nothing. (It arrives with the collector issue.)
 */
#include "gc.h"

#include "options.h"
#include "../runtime/mcentral.h"
#include "../runtime/mheap.h"
#include "../runtime/thread.h"

#include <errno.h>

SPANGC_STATE gc_state spangc_gc = {.world_lock = SPANGC_LOCK_INIT};
SPANGC_STATE mstats spangc_mstats;

#define STR2(x) #x
#define STR(x) STR2(x)

const char *gc_version(void)
{
    return STR(SPANGC_VERSION_MAJOR) "." STR(SPANGC_VERSION_MINOR) "." STR(SPANGC_VERSION_PATCH);
}

int gc_init(const gc_options *opts)
{
    if (!ao_cas(&spangc_gc.initialized, 0, 1))
        return -EEXIST;
    int err = spangc_options_load(opts);
    if (!err) {
        spangc_mheap_init();
        spangc_mcentral_init();
        ao_store(&spangc_gc.next_gc, UINT64_MAX);
        err = spangc_threads_init(spangc_cfg.suspend_signal);
    }
    if (err)
        ao_store(&spangc_gc.initialized, 0);
    return err;
}

void spangc_gc_collect_auto(void)
{
}

void gc_collect(void)
{
}

void gc_disable(void)
{
    ao_add(&spangc_gc.disabled, 1);
}

void gc_enable(void)
{
    for (;;) {
        uintptr_t d = ao_load(&spangc_gc.disabled);
        if (d == 0 || ao_cas(&spangc_gc.disabled, d, d - 1))
            return;
    }
}

int gc_register_thread(void)
{
    if (!ao_load(&spangc_gc.initialized))
        return -EPERM;
    return spangc_thread_register();
}

int gc_unregister_thread(void)
{
    return spangc_thread_unregister();
}
