/*
 * testutil.h - helpers for tests that watch objects live and die.
 *
 * An object's fate is observed through a hidden pointer (XORed with MASK,
 * so the test does not keep the object alive by holding it) and gc_base,
 * which answers NULL for a freed slot. Objects are made and stored by
 * noinline helpers so that no copy of their address stays in the test's
 * own frame, and collect() clears the dead stack below it first.
 */
#ifndef SPANGC_TESTUTIL_H
#define SPANGC_TESTUTIL_H

#include <spangc.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

#include "verify.h"

#define MASK ((uintptr_t)0xa5a5a5a5a5a5a5a5u)
#define HIDE(p) ((uintptr_t)(p) ^ MASK)
#define SHOW(h) ((void *)((h) ^ MASK))

static __attribute__((noinline, unused)) uintptr_t make(size_t size)
{
    char *p = gc_alloc(size);
    memset(p, 0x11, size);
    return HIDE(p);
}

static __attribute__((noinline, unused)) bool alive(uintptr_t h)
{
    return gc_base(SHOW(h)) == SHOW(h);
}

/* *where = the object h, plus offset; the raw address never passes
 * through the caller's frame. */
static __attribute__((noinline, unused)) void store(volatile uintptr_t *where, uintptr_t h, size_t offset)
{
    *where = (uintptr_t)SHOW(h) + offset;
}

/* Clear stale words below the stack pointer left by earlier calls, so a
 * dead frame's copy cannot be picked up by a later, deeper frame. Not
 * instrumented: AddressSanitizer would put redzones around buf that this
 * loop must clear too. */
static __attribute__((noinline, unused, no_sanitize("address"))) void scrub_stack(void)
{
    volatile uintptr_t buf[2048];
    for (size_t i = 0; i < sizeof buf / sizeof buf[0]; i++)
        buf[i] = 0;
}

static __attribute__((unused)) void collect(void)
{
    scrub_stack();
    gc_collect();
    spangc_verify_heap();
}

#endif
