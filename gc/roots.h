/*
 * roots.h - where marking starts (see roots.c).
 */
#ifndef SPANGC_ROOTS_H
#define SPANGC_ROOTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "../runtime/base.h"

/* Before stopping the world: list the writable segments of the program
 * and its shared libraries (dl_iterate_phdr takes a lock that a stopped
 * thread might hold, so this cannot happen inside the stop). */
void spangc_roots_prepare(void);

/* With the world stopped: whether a library was opened or closed since
 * spangc_roots_prepare listed them; the collector then restarts the world
 * and lists again, or a library opened in between (its constructor
 * storing an object in its data) would not be scanned. */
bool spangc_roots_changed(void);

/* With the world stopped, when the list keeps changing: list the
 * segments of the libraries loaded after gc_init from the dynamic
 * linker's list, without its lock. False if a library's program headers
 * could not be found; the collector must then list again the usual way. */
bool spangc_roots_list_stopped(void);

/* Tests only: called after each listing, before the world stops. */
extern SPANGC_STATE void (*volatile spangc_test_after_roots_listed)(void);

/* gc_init: note the libraries loaded so far, which are never unloaded. */
void spangc_roots_init(void);

/* Tests only: called, world stopped, before each segment of a library
 * loaded after gc_init is scanned (tests/test_roots.c dlcloses it there). */
extern SPANGC_STATE void (*volatile spangc_test_before_unloadable_scan)(void);

/* With the world stopped: mark from every root. */
void spangc_roots_mark(void);

/* The address of the first aligned word in [lo, hi) whose value lies in
 * [tlo, thi), or 0. */
uintptr_t spangc_find_word_into(uintptr_t lo, uintptr_t hi, uintptr_t tlo, uintptr_t thi);

/* Where the words that point into an object were found. */
typedef struct spangc_referrers {
    int data;    /* data segments */
    int added;   /* ranges added with gc_add_roots */
    int threads; /* thread stacks, saved registers and TLS */
    int heap;    /* other allocated objects (spangc_debug_explain only) */
} spangc_referrers;

/* With the world stopped: print to out the root words that point into
 * [obj, obj + size) (at most eight), and count them. For verify failures
 * and spangc_debug_explain. */
spangc_referrers spangc_roots_explain(FILE *out, uintptr_t obj, size_t size);

/* fork support */
void spangc_roots_lock(void);
void spangc_roots_unlock(void);

#endif
