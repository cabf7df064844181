/*
 * value.h - the representation of a Lox value in one 64-bit word.
 *
 * Lox has four kinds of value: nil, booleans, double-precision numbers and
 * references to heap objects. All of them fit in a uint64_t:
 *
 *   0                      nil   (so zeroed memory reads as nil)
 *   2, 3                   false, true
 *   16 .. 2^48             a pointer to an object, stored as is
 *   2^49 .. 2^64 - 1       a number: its IEEE-754 bits plus 2^49
 *
 * Why not the usual NaN boxing, which hides pointers inside a quiet NaN?
 * spangc finds the objects a word refers to by looking the word up as an
 * address: a root, a stack slot or a pointer word of a typed object keeps
 * an object alive only if its bits are an address inside that object. A
 * pointer wrapped in NaN tag bits is not, and the collector would free the
 * object under the program's feet. So here pointers stay raw and numbers
 * move instead: adding 2^49 to a double's bits lifts every number above the
 * 47-bit user address space, where no heap object can be. A Value word can
 * therefore be listed as a pointer word in a gc_type: spangc checks each
 * such word and ignores the ones that are numbers, nil or booleans.
 *
 * The only doubles that do not survive the shift are NaNs whose top 15 bits
 * are all set (sign, exponent and the top three mantissa bits), which wrap
 * around to small integers. Lox cannot produce one: it has no NaN literal,
 * and arithmetic only ever yields the hardware's default NaN (0xfff8... on
 * x86-64, 0x7ff8... on arm64) or propagates one it was given.
 */
#ifndef LOX_VALUE_H
#define LOX_VALUE_H

#include "common.h"

#include <string.h>

typedef struct Obj Obj;
typedef struct ObjString ObjString;

typedef uint64_t Value;

#define NUMBER_OFFSET ((uint64_t)1 << 49)

#define NIL_VAL   ((Value)0)
#define FALSE_VAL ((Value)2)
#define TRUE_VAL  ((Value)3)

static inline bool IS_NIL(Value v)
{
    return v == NIL_VAL;
}

static inline bool IS_BOOL(Value v)
{
    return (v | 1) == TRUE_VAL;
}

static inline bool IS_NUMBER(Value v)
{
    return v >= NUMBER_OFFSET;
}

/* Anything between the immediates and the numbers is an object pointer. */
static inline bool IS_OBJ(Value v)
{
    return v - (TRUE_VAL + 1) < NUMBER_OFFSET - (TRUE_VAL + 1);
}

/* nil and false are the only falsey values, and the two smallest words. */
static inline bool is_falsey(Value v)
{
    return v <= FALSE_VAL;
}

static inline bool AS_BOOL(Value v)
{
    return v == TRUE_VAL;
}

static inline Value BOOL_VAL(bool b)
{
    return b ? TRUE_VAL : FALSE_VAL;
}

static inline double AS_NUMBER(Value v)
{
    uint64_t bits = v - NUMBER_OFFSET;
    double d;
    memcpy(&d, &bits, sizeof d);
    return d;
}

static inline Value NUMBER_VAL(double d)
{
    uint64_t bits;
    memcpy(&bits, &d, sizeof bits);
    return bits + NUMBER_OFFSET;
}

static inline Obj *AS_OBJ(Value v)
{
    return (Obj *)(uintptr_t)v;
}

static inline Value OBJ_VAL(const void *obj)
{
    return (Value)(uintptr_t)obj;
}

/* Lox equality: numbers compare as doubles (so NaN != NaN and 0 == -0);
 * everything else, strings included since they are interned, by identity. */
static inline bool values_equal(Value a, Value b)
{
    if (IS_NUMBER(a) && IS_NUMBER(b))
        return AS_NUMBER(a) == AS_NUMBER(b);
    return a == b;
}

/* A growable array of values: a chunk's constants. Its storage is a spangc
 * object whose every word is a pointer word (see value_array_type). */
typedef struct ValueArray {
    int count;
    int capacity;
    Value *values;
} ValueArray;

void value_array_init(ValueArray *array);
/* Appends value; may collect. */
void value_array_write(ValueArray *array, Value value);

void print_value(Value value);

#endif
