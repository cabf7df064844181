/*
 * intern.c - string objects and the intern set.
 *
 * The set is an open-addressing hash set of slots {ref, hash}, probed
 * linearly over a power-of-two array. The slot array is a spangc object
 * whose layout names ref as its one pointer word; hash is not scanned.
 *
 * Strings are looked up by their characters before one is created, so a
 * concatenation whose result already exists allocates nothing: the hash is
 * computed over the two halves in turn and compared against the halves.
 *
 * The set holds its strings weakly. A slot refers to its string through a
 * spangc weak handle (gc_weak_new): the slot keeps the handle alive, the
 * handle does not keep the string alive. So a string that nothing else
 * refers to is collected even though it is interned, and from the
 * collection that finds it unreachable on, gc_weak_get returns NULL for
 * it: the set can never hand out a dead string. Its slot stays occupied
 * (a lookup probes past it, like a tombstone) until the next rebuild.
 *
 * Slots are never deleted one by one. When an insertion would pass 3/4
 * full, the set is rebuilt from the strings still alive, at a size chosen
 * from their number, so dead slots are dropped in bulk.
 *
 * Invariants: every non-empty slot holds a handle made for a string whose
 * hash is the slot's hash; no two live strings in the set have the same
 * characters; at least one slot in four is empty, so probing ends.
 */
#include "intern.h"

#include <limits.h>
#include <string.h>

typedef struct Slot {
    gc_weak *ref;   /* NULL: empty; else a weak handle to the string */
    uint32_t hash;  /* the string's hash, so probing rarely touches it */
} Slot;

static struct {
    Slot *slots;
    uint32_t capacity; /* 0 or a power of two */
    uint32_t used;     /* non-empty slots */
} set;

static const gc_type *slot_type;

void intern_init(void)
{
    slot_type = GC_TYPE(Slot, offsetof(Slot, ref));
    if (!slot_type)
        lox_out_of_memory();
}

/* ---- weak references from slots ---------------------------------------------- */

/* The slot's string, or NULL once it has been found unreachable. */
static ObjString *slot_target(const Slot *slot)
{
    return gc_weak_get(slot->ref);
}

/* gc_weak_new returns the existing handle if the string already has one,
 * as it does when a rebuild moves a live string to a new slot. */
static void slot_fill(Slot *slot, ObjString *s)
{
    slot->ref = gc_weak_new(s);
    if (!slot->ref)
        lox_out_of_memory();
    slot->hash = s->hash;
}

/* ---- the set ------------------------------------------------------------- */

#define FNV_OFFSET 2166136261u
#define FNV_PRIME  16777619u

static uint32_t hash_bytes(uint32_t h, const char *s, int n)
{
    for (int i = 0; i < n; i++) {
        h ^= (uint8_t)s[i];
        h *= FNV_PRIME;
    }
    return h;
}

/* The string whose characters are a followed by b, if the set has it. */
static ObjString *find(const char *a, int alen, const char *b, int blen, uint32_t hash)
{
    if (set.capacity == 0)
        return NULL;
    uint32_t mask = set.capacity - 1;
    for (uint32_t i = hash & mask;; i = (i + 1) & mask) {
        Slot *slot = &set.slots[i];
        if (!slot->ref)
            return NULL;
        if (slot->hash != hash)
            continue;
        ObjString *s = slot_target(slot);
        if (s && s->length == alen + blen && memcmp(s->chars, a, (size_t)alen) == 0 &&
            memcmp(s->chars + alen, b, (size_t)blen) == 0)
            return s;
    }
}

static Slot *empty_slot(Slot *slots, uint32_t capacity, uint32_t hash)
{
    uint32_t mask = capacity - 1;
    uint32_t i = hash & mask;
    while (slots[i].ref)
        i = (i + 1) & mask;
    return &slots[i];
}

/* Move the strings still alive into a new array at most half full. */
static void rebuild(void)
{
    uint32_t live = 0;
    for (uint32_t i = 0; i < set.capacity; i++)
        if (set.slots[i].ref && slot_target(&set.slots[i]))
            live++;
    uint32_t capacity = 16;
    while (capacity < 2 * (live + 1))
        capacity *= 2;
    Slot *slots = lox_alloc_array(capacity * sizeof(Slot), slot_type);
    /* Count again: that allocation may have collected some of them. */
    live = 0;
    for (uint32_t i = 0; i < set.capacity; i++) {
        ObjString *s = set.slots[i].ref ? slot_target(&set.slots[i]) : NULL;
        if (s) {
            slot_fill(empty_slot(slots, capacity, set.slots[i].hash), s);
            live++;
        }
    }
    set.slots = slots;
    set.capacity = capacity;
    set.used = live;
}

static void insert(ObjString *s)
{
    if ((set.used + 1) * 4 > set.capacity * 3)
        rebuild();
    slot_fill(empty_slot(set.slots, set.capacity, s->hash), s);
    set.used++;
}

static ObjString *intern(const char *a, int alen, const char *b, int blen)
{
    if (alen > INT_MAX - 1 - blen)
        lox_out_of_memory();
    uint32_t hash = hash_bytes(hash_bytes(FNV_OFFSET, a, alen), b, blen);
    ObjString *s = find(a, alen, b, blen, hash);
    if (s)
        return s;
    int length = alen + blen;
    s = lox_alloc_object(OBJ_STRING, sizeof(ObjString) + (size_t)length + 1);
    memcpy(s->chars, a, (size_t)alen);
    memcpy(s->chars + alen, b, (size_t)blen);
    s->length = length;
    s->hash = hash;
    insert(s);
    return s;
}

ObjString *string_copy(const char *chars, int length)
{
    return intern(chars, length, "", 0);
}

ObjString *string_concat(const ObjString *a, const ObjString *b)
{
    return intern(a->chars, a->length, b->chars, b->length);
}

void intern_stats(InternStats *out)
{
    out->capacity = set.capacity;
    out->used = set.used;
    out->live = 0;
    for (uint32_t i = 0; i < set.capacity; i++)
        if (set.slots[i].ref && slot_target(&set.slots[i]))
            out->live++;
}
