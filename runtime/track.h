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
#include <stdint.h>

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

/* False if a memory checker considers any of [p, p+n) inaccessible (a
 * freed slot): for reads of memory a caller claims is an object. */
static inline int track_readable(const void *p, size_t n)
{
#if defined(SPANGC_ASAN)
    if (__asan_region_is_poisoned((void *)(uintptr_t)p, n))
        return 0;
#endif
#if defined(SPANGC_HAVE_VALGRIND)
    unsigned char vbits[64];
    /* 3: some byte is unaddressable; 0: not running under Valgrind. */
    if (n <= sizeof vbits && VALGRIND_GET_VBITS(p, vbits, n) == 3)
        return 0;
#endif
    (void)p;
    (void)n;
    return 1;
}

/* Call scan on [lo, hi) while memcheck treats every byte of it as
 * defined, then restore the bytes' validity bits as they were.
 *
 * Conservative scanning of stacks (and of malloc'd ranges added as roots)
 * reads uninitialised words on purpose: padding, dead locals, words no one
 * wrote. Left alone, memcheck reports every mark decision taken from such a
 * word, and then everything computed from the mark bits (sweeping, the
 * statistics, the pacer), far from the cause. Making the range defined for
 * good would instead hide the program's own reads of uninitialised stack
 * memory, so the bits are saved and put back. A word memcheck considers
 * unaddressable (just below a stopped thread's stack pointer) is not read:
 * nothing the thread still uses can be stored there. */
static inline void track_vg_scan(uintptr_t lo, uintptr_t hi,
                                 void (*scan)(uintptr_t lo, uintptr_t hi))
{
#if defined(SPANGC_HAVE_VALGRIND)
    enum { CHUNK = 4096 };
    unsigned char vbits[CHUNK];
    lo = (lo + sizeof(uintptr_t) - 1) & ~(uintptr_t)(sizeof(uintptr_t) - 1);
    while (lo + sizeof(uintptr_t) <= hi) {
        uintptr_t end = hi - lo > CHUNK ? lo + CHUNK : hi;
        size_t n = end - lo;
        if (VALGRIND_GET_VBITS(lo, vbits, n) == 1) {
            (void)VALGRIND_MAKE_MEM_DEFINED(lo, n);
            scan(lo, end);
            (void)VALGRIND_SET_VBITS(lo, vbits, n);
        } else {
            /* Some of the chunk is unaddressable: go word by word. */
            for (uintptr_t a = lo; a + sizeof(uintptr_t) <= end; a += sizeof(uintptr_t)) {
                if (VALGRIND_GET_VBITS(a, vbits, sizeof(uintptr_t)) != 1)
                    continue;
                (void)VALGRIND_MAKE_MEM_DEFINED(a, sizeof(uintptr_t));
                scan(a, a + sizeof(uintptr_t));
                (void)VALGRIND_SET_VBITS(a, vbits, sizeof(uintptr_t));
            }
        }
        lo = end;
    }
#else
    scan(lo, hi);
#endif
}

#endif
