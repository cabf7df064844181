/*
 * table.c - the string-keyed hash table (see table.h for the layout).
 */
#include "table.h"

#include "object.h"

#define MAX_LOAD_NUM 3 /* grow past 3/4 full */
#define MAX_LOAD_DEN 4

void table_init(Table *table)
{
    table->count = 0;
    table->capacity = 0;
    table->entries = NULL;
}

/* The entry holding key, or the slot where it would go: the first
 * tombstone on the probe path if there is one, else the empty slot that
 * ends the path. The table must have at least one empty slot. */
static Entry *find_entry(Entry *entries, int capacity, const ObjString *key)
{
    uint32_t mask = (uint32_t)capacity - 1;
    uint32_t i = key->hash & mask;
    Entry *tombstone = NULL;
    for (;;) {
        Entry *e = &entries[i];
        if (e->key == key)
            return e;
        if (e->key == NULL) {
            if (IS_NIL(e->value))
                return tombstone ? tombstone : e;
            if (!tombstone)
                tombstone = e;
        }
        i = (i + 1) & mask;
    }
}

const Value *table_find(const Table *table, const ObjString *key)
{
    if (table->count == 0)
        return NULL;
    Entry *e = find_entry(table->entries, table->capacity, key);
    return e->key ? &e->value : NULL;
}

bool table_get(const Table *table, const ObjString *key, Value *value)
{
    const Value *found = table_find(table, key);
    if (found)
        *value = *found;
    return found != NULL;
}

/* Rehash into a fresh array, dropping tombstones. The old array becomes
 * garbage. */
static void resize(Table *table, int capacity)
{
    Entry *entries = lox_alloc_array((size_t)capacity * sizeof(Entry), entry_type);
    int count = 0;
    for (int i = 0; i < table->capacity; i++) {
        Entry *old = &table->entries[i];
        if (old->key == NULL)
            continue;
        Entry *dest = find_entry(entries, capacity, old->key);
        *dest = *old;
        count++;
    }
    table->entries = entries;
    table->capacity = capacity;
    table->count = count;
}

bool table_set(Table *table, ObjString *key, Value value)
{
    if ((table->count + 1) * MAX_LOAD_DEN > table->capacity * MAX_LOAD_NUM)
        resize(table, table->capacity < 8 ? 8 : table->capacity * 2);
    Entry *e = find_entry(table->entries, table->capacity, key);
    bool is_new = e->key == NULL;
    /* Reusing a tombstone does not change count: it was counted already. */
    if (is_new && IS_NIL(e->value))
        table->count++;
    e->key = key;
    e->value = value;
    return is_new;
}

bool table_delete(Table *table, const ObjString *key)
{
    if (table->count == 0)
        return false;
    Entry *e = find_entry(table->entries, table->capacity, key);
    if (e->key == NULL)
        return false;
    e->key = NULL;
    e->value = TRUE_VAL;
    return true;
}

void table_add_all(const Table *from, Table *to)
{
    for (int i = 0; i < from->capacity; i++) {
        Entry *e = &from->entries[i];
        if (e->key != NULL)
            table_set(to, e->key, e->value);
    }
}
