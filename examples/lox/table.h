/*
 * table.h - hash tables from interned strings to values: globals, instance
 * fields and class methods.
 *
 * Open addressing with linear probing over a power-of-two array of entries.
 * Because every key is interned, keys are compared by pointer. A deleted
 * entry becomes a tombstone (no key, value true) so that probe sequences
 * passing through it stay intact; count includes tombstones, and the array
 * grows when count would pass 3/4 of the capacity.
 *
 * The entry array is a spangc object laid out by entry_type: both words of
 * each entry are pointer words (the key, and the value, which may be an
 * object). A table holds its keys and values strongly.
 */
#ifndef LOX_TABLE_H
#define LOX_TABLE_H

#include "common.h"
#include "value.h"

typedef struct Entry {
    ObjString *key;
    Value value;
} Entry;

typedef struct Table {
    int count;    /* live entries plus tombstones */
    int capacity; /* 0 or a power of two */
    Entry *entries;
} Table;

void table_init(Table *table);
/* Sets *value and returns true if key is present. */
bool table_get(const Table *table, const ObjString *key, Value *value);
/* The entry's value for key, or NULL; valid until the table next changes.
 * The interpreter loop reads through this rather than table_get, so that no
 * variable of its own long-lived frame has its address taken: such a slot
 * lives on the C stack for the whole run and keeps the last value read
 * alive through every gc() until it is overwritten. */
const Value *table_find(const Table *table, const ObjString *key);
/* Returns true if key was not present before; may collect. */
bool table_set(Table *table, ObjString *key, Value value);
/* Returns true if key was present. */
bool table_delete(Table *table, const ObjString *key);
/* Copies every entry of from into to; may collect. */
void table_add_all(const Table *from, Table *to);

#endif
