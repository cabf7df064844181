/*
 * fuzz_env.h - the environment variables both fuzz targets read once at
 * start-up (tests/fuzz/README.md):
 *   SPANGC_FUZZ_STRESS=N    collect every N allocations (default 32, 0 off)
 *   SPANGC_FUZZ_DEBUG=0|1|2 0: none, 1: poison (default), 2: verify+poison
 */
#ifndef SPANGC_FUZZ_ENV_H
#define SPANGC_FUZZ_ENV_H

#include <spangc.h>
#include <stdlib.h>

static inline void fuzz_read_env(unsigned *stress, unsigned *debug)
{
    const char *v;
    *stress = 32;
    if ((v = getenv("SPANGC_FUZZ_STRESS")))
        *stress = (unsigned)strtoul(v, NULL, 10);
    *debug = GC_DEBUG_POISON;
    if ((v = getenv("SPANGC_FUZZ_DEBUG")))
        *debug = *v == '2' ? GC_DEBUG_POISON | GC_DEBUG_VERIFY : *v == '1' ? GC_DEBUG_POISON : 0;
}

#endif
