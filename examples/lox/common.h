/*
 * common.h - limits and small helpers shared by every part of the Lox VM.
 *
 * The limits are the ones the Lox conformance suite expects of a clox-style
 * VM: one byte addresses a constant, a local slot or an upvalue, so each is
 * capped at 256 per function; jumps are 16-bit; the call stack holds 64
 * frames of at most 256 slots each.
 */
#ifndef LOX_COMMON_H
#define LOX_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UINT8_COUNT (UINT8_MAX + 1)
#define FRAMES_MAX  64
#define STACK_MAX   (FRAMES_MAX * UINT8_COUNT)

/* Exit statuses, after sysexits.h (the conformance suite checks 65/70). */
#define EXIT_USAGE         64
#define EXIT_COMPILE_ERROR 65
#define EXIT_RUNTIME_ERROR 70
#define EXIT_IO_ERROR      74

#if defined(__GNUC__)
#define LOX_LIKELY(x)   __builtin_expect(!!(x), 1)
#define LOX_UNLIKELY(x) __builtin_expect(!!(x), 0)
#define LOX_NORETURN    __attribute__((noreturn))
#define LOX_NOINLINE    __attribute__((noinline))
#define LOX_PRINTF(f, a) __attribute__((format(printf, f, a)))
#else
#define LOX_LIKELY(x)   (x)
#define LOX_UNLIKELY(x) (x)
#define LOX_NORETURN
#define LOX_NOINLINE
#define LOX_PRINTF(f, a)
#endif

/* Report that the heap is exhausted and exit. Allocation failure is not a
 * Lox runtime error: spangc has already collected and still found no room. */
LOX_NORETURN void lox_out_of_memory(void);

#endif
