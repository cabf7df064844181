/*
 * finalizer.h - the queue of finalizers ready to run (see finalizer.c).
 */
#ifndef SPANGC_FINALIZER_H
#define SPANGC_FINALIZER_H

#include "../include/spangc.h"
#include "../runtime/base.h"

struct special_finalizer;

/* Queue the finalizer record f, just unlinked from the span of obj, an
 * object found dead (sweep). Never fails: the queue keeps f itself. */
void spangc_finq_push(struct special_finalizer *f, void *obj);

/* Mark every queued object and arg (world stopped). */
void spangc_finq_mark(void);

/* Start the finalizer thread if the options ask for one. */
void spangc_finalizer_thread_start(void);

/* Tests only: called by the caller that is about to create the finalizer
 * thread, where a second caller must find the start already claimed
 * (tests/test_finalizer.c). */
extern SPANGC_STATE void (*volatile spangc_test_in_finalizer_start)(void);

/* fork support */
void spangc_finq_lock(void);
void spangc_finq_unlock(void);
void spangc_finq_reinit_child(void);

#endif
