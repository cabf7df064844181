/*
 * profile.h - sampled heap profiling (see profile.c).
 */
#ifndef SPANGC_PROFILE_H
#define SPANGC_PROFILE_H

#include <stddef.h>
#include <stdint.h>

#include "../runtime/mcache.h"

struct prof_bucket;

/* Bytes until the next sample for a thread, drawn from an exponential
 * distribution with the current mean (UINT64_MAX when profiling is off).
 * Also notes the rate generation in c. */
uint64_t spangc_profile_next_sample(mcache *c);

/* True if the rate changed since c last drew a sample distance. */
bool spangc_profile_rate_changed(const mcache *c);

/* Record a sampled allocation of the object at obj (elemsize bytes), made
 * from return address caller. Called outside any runtime section. */
void spangc_profile_sample(uintptr_t obj, size_t elemsize, void *caller, uint64_t rate);

/* A sampled object was freed (sweep). */
void spangc_profile_free(struct prof_bucket *b, size_t size);

/* Mark termination (world stopped): start a new profile cycle. */
void spangc_profile_next_cycle(void);

/* After the restart, and when sweeping has finished: publish what is
 * complete (see the three-cycle scheme in profile.c). */
void spangc_profile_flush(bool sweep_done);

/* fork support */
void spangc_profile_lock(void);
void spangc_profile_unlock(void);

#endif
