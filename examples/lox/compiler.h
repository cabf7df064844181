/*
 * compiler.h - the single-pass compiler from Lox source to bytecode.
 */
#ifndef LOX_COMPILER_H
#define LOX_COMPILER_H

#include "object.h"

/* Compile a whole script into the function that runs it, or report every
 * compile error on stderr and return NULL. May collect. */
ObjFunction *compile(const char *source);

#endif
