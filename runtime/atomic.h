/*
 * atomic.h - the one door to atomic operations in spangc.
 *
 * Every atomic read-modify-write, every load or store that another thread
 * may race with, and every fence in the library goes through these
 * wrappers over libatomic_ops. Nothing else in the tree uses C11 atomics or
 * compiler builtins, so the memory-ordering decisions are all visible here
 * and in the callers' names (_acq, _rel, _full).
 *
 * The word type is AO_t (uintptr_t-sized). With gcc and clang on x86-64,
 * libatomic_ops maps these onto the __atomic builtins, which is also what
 * ThreadSanitizer needs to see every synchronization.
 */
#ifndef SPANGC_ATOMIC_H
#define SPANGC_ATOMIC_H

#include <atomic_ops.h>
#include <stdbool.h>
#include <stdint.h>

typedef volatile AO_t ao_word;

static inline uintptr_t ao_load(const ao_word *p)
{
    return AO_load(p);
}

static inline uintptr_t ao_load_acq(const ao_word *p)
{
    return AO_load_acquire(p);
}

static inline void ao_store(ao_word *p, uintptr_t v)
{
    AO_store(p, v);
}

static inline void ao_store_rel(ao_word *p, uintptr_t v)
{
    AO_store_release(p, v);
}

/* Compare-and-swap with full barrier; true if *p was old and is now new. */
static inline bool ao_cas(ao_word *p, uintptr_t old, uintptr_t new_value)
{
    return AO_compare_and_swap_full(p, old, new_value) != 0;
}

/* Returns the value before the addition. */
static inline uintptr_t ao_add(ao_word *p, uintptr_t v)
{
    return AO_fetch_and_add_full(p, v);
}

static inline uintptr_t ao_sub(ao_word *p, uintptr_t v)
{
    return AO_fetch_and_add_full(p, (AO_t)0 - v);
}

static inline void ao_or(ao_word *p, uintptr_t v)
{
    AO_or_full(p, v);
}

/* 32-bit words, for futexes. */
typedef volatile unsigned ao_uint;

static inline unsigned ao_uint_load_acq(const ao_uint *p)
{
    return AO_int_load_acquire(p);
}

static inline void ao_uint_store(ao_uint *p, unsigned v)
{
    AO_int_store_release(p, v);
}

/* Relaxed: a plain mov on x86-64, but a load or store other threads may
 * race with (a span's freeindex, see mspan.h). */
static inline unsigned ao_uint_load_relaxed(const ao_uint *p)
{
    return AO_int_load(p);
}

static inline void ao_uint_store_relaxed(ao_uint *p, unsigned v)
{
    AO_int_store(p, v);
}

static inline unsigned ao_uint_add(ao_uint *p, unsigned v)
{
    return AO_int_fetch_and_add_full(p, v);
}

/* A compiler-only barrier: orders a thread's accesses against its own
 * signal handler, which runs on the same CPU between two instructions. */
static inline void ao_signal_fence(void)
{
    AO_compiler_barrier();
}

#endif
