/*
 * natives.h - functions and classes written in C that Lox programs call.
 */
#ifndef LOX_NATIVES_H
#define LOX_NATIVES_H

#include <stdio.h>

/* Define every native in the VM's globals. Called by vm_init. */
void natives_install(void);

/* One line summarizing the collector's statistics, written to out. */
void natives_print_gc_summary(FILE *out);

#endif
