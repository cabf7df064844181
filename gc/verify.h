/*
 * verify.h - heap consistency checks (see verify.c).
 */
#ifndef SPANGC_VERIFY_H
#define SPANGC_VERIFY_H

#include <stdbool.h>

/* Check every span and list against the invariants of mspan.h and
 * mcentral.h, and the statistics against the spans. Requires that no
 * sweep is in progress and that no other thread allocates; the calling
 * thread's cached spans are included. Dies with "spangc: fatal:" on a
 * violation. */
void spangc_verify_heap(void);

#endif
