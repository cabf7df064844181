/*
 * specials.h - records attached to objects: finalizers, weak handles and
 * heap-profile samples (see specials.c).
 */
#ifndef SPANGC_SPECIALS_H
#define SPANGC_SPECIALS_H

#include "../include/spangc.h"
#include "../runtime/mspan.h"

/* The order of kinds is the order of processing at sweep: a dead
 * object's finalizer is queued before its weak handles are cleared. */
enum special_kind { SPECIAL_FINALIZER = 1, SPECIAL_WEAK = 2, SPECIAL_PROFILE = 3 };

typedef struct special {
    struct special *next;
    uint32_t offset; /* of the object in its span */
    uint8_t kind;
} special;

/* A finalizer's record is also its place in the finalizer queue: the
 * sweeper that finds the object dead unlinks the record from the span and
 * queues it as it is (finalizer.c), so that queueing needs no memory, and
 * a program out of memory when its objects die still gets their
 * finalizers run. Once queued the record is no longer a special: queued
 * replaces s, and the record is freed when its finalizer is called. */
typedef struct special_finalizer {
    union {
        special s; /* on the span's list */
        struct {
            struct special_finalizer *next;
            void *obj;
        } queued; /* on the finalizer queue */
    };
    gc_finalizer_fn fn;
    void *arg;
} special_finalizer;

struct gc_weak;
typedef struct special_weak {
    special s;
    struct gc_weak *handle;
} special_weak;

struct prof_bucket;
typedef struct special_profile {
    special s;
    struct prof_bucket *bucket;
} special_profile;

/* Attach rec (kind and offset filled in by this function) to the live
 * object at base obj. Returns 0, or -EEXIST if obj already has a record
 * of that kind and unique is set. The caller is in a runtime section and
 * has checked that obj is the base of a live object in span s. */
int spangc_special_add(mspan *s, uintptr_t obj, special *rec, int kind, bool unique);

/* Detach and return obj's record of that kind, or NULL. Same rules. */
special *spangc_special_remove(mspan *s, uintptr_t obj, int kind);

/* obj's record of that kind, or NULL; the caller holds s->speciallock. */
special *spangc_special_find_locked(mspan *s, uintptr_t obj, int kind);

/* Sweep: handle the records of s's unmarked objects (queue finalizers and
 * resurrect, clear weak handles, count profile frees). Called by the
 * span's sweeper, before the mark bits become alloc bits. */
void spangc_specials_sweep(mspan *s);

/* Mark: the roots the specials provide (world stopped). */
void spangc_specials_mark(void);

/* Give a record back to metadata memory. */
void spangc_special_free(special *r);

#endif
