/*
 * options.h - the collector's settings, fixed by gc_init.
 *
 * gc_init merges gc_options, the GC_* environment variables and the
 * defaults into spangc_config. Fields marked (runtime) may change later
 * through the API; everything else is read-only after gc_init.
 */
#ifndef SPANGC_OPTIONS_H
#define SPANGC_OPTIONS_H

#include "../include/spangc.h"
#include "../runtime/atomic.h"
#include "../runtime/base.h"

typedef struct spangc_config {
    ao_word gc_percent;        /* (runtime) intptr_t; < 0: no automatic cycles */
    ao_word memory_limit;      /* (runtime) 0: none */
    uint64_t min_heap;         /* the smallest next_gc */
    bool trace;
    bool finalizer_thread;
    bool background_sweep;
    bool verify;
    bool poison;
    unsigned stress;
    int suspend_signal;
    ao_word scavenge_delay_ns; /* (runtime, tests) */
    size_t mark_stack_limit;
    unsigned markers;          /* 0: one per CPU */
    void (*oom_fn)(size_t);
    ao_word profile_rate;      /* (runtime) gc_set_profile_rate */
    bool all_slow;             /* every allocation takes the slow path
                                  (debug modes, Valgrind): gc/debug.c */
} spangc_config;

/* Written by gc_init; (runtime) fields also by their gc_set_* function,
 * atomically, and read with the accessors below. */
extern SPANGC_STATE spangc_config spangc_cfg;

/* Fill spangc_cfg from opts (may be NULL) and the environment. Returns 0
 * or -EINVAL naming nothing: the caller reports it. */
int spangc_options_load(const gc_options *opts);

/* Parse "512MiB", "2G", "1048576" into bytes; false if malformed. */
bool spangc_parse_bytes(const char *s, uint64_t *out);

static inline int spangc_gc_percent(void)
{
    return (int)(intptr_t)ao_load(&spangc_cfg.gc_percent);
}

static inline uint64_t spangc_memory_limit(void)
{
    return ao_load(&spangc_cfg.memory_limit);
}

/* True if every allocation must take the slow path. */
static inline bool spangc_debug_slow_path(void)
{
    return spangc_cfg.all_slow;
}

#endif
