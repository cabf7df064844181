/*
 * weak.h - weak handles (see weak.c).
 */
#ifndef SPANGC_WEAK_H
#define SPANGC_WEAK_H

#include "../include/spangc.h"

/* The target died: make w answer NULL from now on (sweep). */
void spangc_weak_clear(gc_weak *w);

#endif
