/*
 * intern.h - making strings, and the intern set that makes them unique.
 *
 * Every ObjString the VM creates goes through here, so two strings with
 * equal characters are always the same object: string equality, and the
 * lookup of names in tables, is a pointer comparison.
 */
#ifndef LOX_INTERN_H
#define LOX_INTERN_H

#include "object.h"

/* Build the set's layout; call once, after object_init_types. */
void intern_init(void);

/* The interned string with these characters (created if needed); may
 * collect. */
ObjString *string_copy(const char *chars, int length);
/* The interned string a + b; may collect. */
ObjString *string_concat(const ObjString *a, const ObjString *b);

/* Counters for the statistics the VM prints. */
typedef struct InternStats {
    size_t capacity; /* slots in the set                                     */
    size_t used;     /* slots not empty (live strings and dead handles)      */
    size_t live;     /* slots whose string is alive                          */
} InternStats;
void intern_stats(InternStats *out);

#endif
