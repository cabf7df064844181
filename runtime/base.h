/*
 * base.h - what every spangc file needs: the heap's geometry, branch
 * hints, the fatal-error path, and the marker for global state.
 *
 * Global state. Every mutable global of the library is declared with
 * SPANGC_STATE, which puts it in the ELF section "spangc_state". The root
 * scanner skips that section when it scans the program's data segments,
 * so the collector's own bookkeeping (heap bounds, cursors, queue heads)
 * never keeps an object alive by looking like a pointer. This works the
 * same whether spangc is linked statically or as a shared library.
 */
#ifndef SPANGC_BASE_H
#define SPANGC_BASE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define likely(x)   __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)
#define NOINLINE    __attribute__((noinline))
#define SPANGC_STATE __attribute__((section("spangc_state")))

/* Heap geometry. A page is spangc's unit of span allocation (two OS pages
 * on x86-64); an arena is the unit of address-space reservation and of
 * the arena index (runtime/arena.h). */
#define PAGE_SHIFT      13
#define PAGE_SIZE       ((size_t)1 << PAGE_SHIFT)
#define ARENA_SHIFT     26
#define ARENA_SIZE      ((size_t)1 << ARENA_SHIFT)
#define PAGES_PER_ARENA (ARENA_SIZE / PAGE_SIZE)
#define ADDRESS_BITS    48

/* Objects up to MAX_SMALL_SIZE come from size classes; larger ones get a
 * span of their own. */
#define MAX_SMALL_SIZE  32768
#define MIN_ALIGN       16

static inline uintptr_t round_up(uintptr_t x, uintptr_t align)
{
    return (x + align - 1) & ~(align - 1);
}

/* Print "spangc: fatal: <message>" on stderr and abort. For broken heap
 * invariants only, never for bad arguments. Async-signal-safe: it formats
 * into a stack buffer and calls write(2). Supports %s, %p, %% and %d, %u,
 * %x with no length or with l, ll or z. */
__attribute__((noreturn, format(printf, 1, 2))) void spangc_throw(const char *fmt, ...);

/* Like spangc_throw for a failed internal check (SPANGC_ASSERT). */
#define SPANGC_ASSERT(cond)                                                    \
    do {                                                                       \
        if (unlikely(!(cond)))                                                 \
            spangc_throw("%s:%d: assertion failed: %s", __FILE__, __LINE__,    \
                         #cond);                                               \
    } while (0)

/* CLOCK_MONOTONIC in nanoseconds. */
uint64_t spangc_nanotime(void);

/* The bounds of the spangc_state section (see above). */
void spangc_state_bounds(uintptr_t *lo, uintptr_t *hi);

#endif
