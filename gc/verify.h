/*
 * verify.h - heap consistency checks (see verify.c).
 */
#ifndef SPANGC_VERIFY_H
#define SPANGC_VERIFY_H

#include <stdbool.h>
#include <stdio.h>

#include "roots.h"

/* Check every span and list against the invariants of mspan.h and
 * mcentral.h, and the statistics against the spans; dies with
 * "spangc: fatal:" on a violation. spangc_verify_heap finishes sweeping
 * and stops the world to do it (call it outside spangc, from any thread);
 * _stopped is for the collector, with the world stopped, every span swept
 * and every mcache flushed. */
void spangc_verify_heap(void);
void spangc_verify_heap_stopped(void);

/* Print to out what refers to the allocated object containing obj: root
 * words (data segments, added ranges, thread stacks and TLS) and heap
 * objects, following heap referrers a few levels up; *n counts the direct
 * referrers by kind (n may be NULL). False if obj is not in an allocated object. A tool
 * for "why is this dropped object still alive?" (tests/testutil.h). It
 * prints with the world stopped: no other registered thread may be using
 * out (its lock would never be released). */
bool spangc_debug_explain(FILE *out, const void *obj, spangc_referrers *n);

#endif
