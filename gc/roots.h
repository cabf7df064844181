/*
 * roots.h - where marking starts (see roots.c).
 */
#ifndef SPANGC_ROOTS_H
#define SPANGC_ROOTS_H

#include <stddef.h>
#include <stdint.h>

/* Before stopping the world: list the writable segments of the program
 * and its shared libraries (dl_iterate_phdr takes a lock that a stopped
 * thread might hold, so this cannot happen inside the stop). */
void spangc_roots_prepare(void);

/* With the world stopped: mark from every root. */
void spangc_roots_mark(void);

/* Verify mode found [obj, obj + size) unmarked but reachable: print which
 * roots point into it, to stderr (world stopped). */
void spangc_roots_explain(uintptr_t obj, size_t size);

/* fork support */
void spangc_roots_lock(void);
void spangc_roots_unlock(void);

#endif
