/*
 * track.h - telling memory checkers which heap bytes a program may touch.
 *
 * AddressSanitizer (a SPANGC_SANITIZE=address build) and Valgrind's
 * memcheck know nothing about spangc's heap: to them it is one big mmap.
 * These hooks mark a free slot off limits when it is swept free and give
 * it back when it is allocated, so that a program reading or writing an
 * object the collector freed is reported by the tool, with the access's
 * stack. Everything compiles away in a normal build; under Valgrind the
 * allocation fast path is bypassed (gc/options.c) so that only the slow
 * path needs the hooks.
 *
 * The collector itself never reads a free slot: marking looks only into
 * allocated objects, and sweeping touches only bitmaps (gc/debug.c's
 * poisoning opens a slot before filling it).
 */
#ifndef SPANGC_TRACK_H
#define SPANGC_TRACK_H

#include <stddef.h>

#if defined(SPANGC_ASAN)
#include <sanitizer/asan_interface.h>
#define TRACK_ASAN_POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define TRACK_ASAN_UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define TRACK_ASAN_POISON(p, n)   ((void)(p), (void)(n))
#define TRACK_ASAN_UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#if defined(SPANGC_HAVE_VALGRIND)
#include <valgrind/memcheck.h>
#define TRACK_VG_NOACCESS(p, n)  (void)VALGRIND_MAKE_MEM_NOACCESS((p), (n))
#define TRACK_VG_DEFINED(p, n)   (void)VALGRIND_MAKE_MEM_DEFINED((p), (n))
#define TRACK_VG_RUNNING()       (RUNNING_ON_VALGRIND != 0)
#else
#define TRACK_VG_NOACCESS(p, n)  ((void)(p), (void)(n))
#define TRACK_VG_DEFINED(p, n)   ((void)(p), (void)(n))
#define TRACK_VG_RUNNING()       0
#endif

/* A slot (or large object) of n bytes at p was freed by sweeping. */
static inline void track_free(void *p, size_t n)
{
    TRACK_ASAN_POISON(p, n);
    TRACK_VG_NOACCESS(p, n);
}

/* A slot is being handed out: open it before it is zeroed (it reads as
 * zero either way, so it counts as initialized). */
static inline void track_alloc(void *p, size_t n)
{
    TRACK_ASAN_UNPOISON(p, n);
    TRACK_VG_DEFINED(p, n);
}

#endif
