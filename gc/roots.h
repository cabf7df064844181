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

/* A listing of the writable segments of the program and its shared
 * libraries (roots.c, "Listing"). */
typedef struct spangc_listing spangc_listing;

/* List them. With the world running and no spangc lock held:
 * dl_iterate_phdr takes the dynamic linker's lock, which a stopped thread,
 * or one waiting for a spangc lock, may hold. NULL when out of memory: the
 * installed listing stays, and if it is out of date the stop's check fails
 * and the collector tries again. */
spangc_listing *spangc_roots_list(void);

/* Under world_lock: make l the listing that marking scans. The one it
 * replaces becomes the spare whose arrays the next listing reuses. */
void spangc_roots_install(spangc_listing *l);

/* With the world stopped: whether a library was opened or closed since
 * the installed listing was made; the collector then restarts the world
 * and lists again, or a library opened in between (its constructor
 * storing an object in its data) would not be scanned. */
bool spangc_roots_changed(void);

/* With the world stopped, when the list keeps changing: list the
 * segments of the libraries loaded after gc_init from the dynamic
 * linker's list, without its lock. False if a library's program headers
 * could not be found; the collector must then list again the usual way. */
bool spangc_roots_list_stopped(void);

/* Tests only: called before each stop of the world that the installed
 * listing must match. */
extern SPANGC_STATE void (*volatile spangc_test_before_stop)(void);

/* gc_init: note the libraries loaded so far, which are never unloaded,
 * and make the first listing. -ENOMEM if there is no memory for it. */
int spangc_roots_init(void);

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
