/*
 * object.h - the heap objects of the Lox VM and how they are allocated.
 *
 * Every object starts with an Obj header holding its kind, and every object
 * is a spangc object allocated with gc_alloc_typed and the gc_type of its
 * kind (object_init_types builds them once, at startup). A gc_type lists
 * the words of a struct that may point to other objects; the collector
 * scans exactly those, so a function's arity or a string's hash can never
 * keep garbage alive, and strings (no pointer words at all) are never
 * scanned. Nothing here frees an object, marks one or links objects into a
 * list: when no root and no scanned word refers to an object any more,
 * spangc reclaims it.
 *
 * Invariants
 *  - An object's pointer fields are either NULL or point to the base of a
 *    live object; Value fields follow value.h.
 *  - Strings are interned (intern.h): two strings with the same characters
 *    are the same object, so they compare by pointer.
 *  - The objects of OBJ_FOREIGN are made by native code (natives.c) with a
 *    gc_type of their own; the VM only knows their common header.
 */
#ifndef LOX_OBJECT_H
#define LOX_OBJECT_H

#include "common.h"
#include "chunk.h"
#include "table.h"
#include "value.h"

#include <spangc.h>

typedef enum ObjKind {
    OBJ_STRING,
    OBJ_FUNCTION,
    OBJ_NATIVE,
    OBJ_CLOSURE,
    OBJ_UPVALUE,
    OBJ_CLASS,
    OBJ_INSTANCE,
    OBJ_BOUND_METHOD,
    OBJ_FOREIGN,
    OBJ_KIND_COUNT
} ObjKind;

struct Obj {
    uint8_t kind; /* ObjKind */
};

struct ObjString {
    Obj obj;
    uint32_t hash; /* FNV-1a of chars */
    int length;
    char chars[]; /* length bytes and a terminating NUL */
};

typedef struct ObjFunction {
    Obj obj;
    int arity;
    int upvalue_count;
    int max_slots; /* stack slots a call can use, slot 0 included */
    Chunk chunk;
    ObjString *name; /* NULL for the top-level script */
} ObjFunction;

/* A native function gets its arguments in args[0 .. argc-1] and leaves its
 * result in args[-1], the slot of the callee (or of the receiver, for a
 * native method). It returns false after reporting a runtime error with
 * vm_native_error. */
typedef bool (*NativeFn)(int argc, Value *args);

typedef struct ObjNative {
    Obj obj;
    int arity; /* -1: any number of arguments */
    NativeFn fn;
    ObjString *name;
} ObjNative;

typedef struct ObjUpvalue {
    Obj obj;
    Value *location; /* a VM stack slot while open, &closed once closed */
    Value closed;
    struct ObjUpvalue *next; /* open upvalues, by location, highest first */
} ObjUpvalue;

/* A closure is a header word followed by pointer words only: its gc_type
 * says "every word may be a pointer", and the header word is never the
 * address of an object. It holds the kind in bits 0-7 and the count (at
 * most 256) in bits 16-31, so it is below 2^25; spangc's arenas are
 * aligned to 64 MiB and none can start at 0, so none lies below 2^26.
 * (With the count in the upper half, as an int after the kind would put
 * it, 192 upvalues made the word 0xc000000003: inside the first arena.) */
typedef struct ObjClosure {
    Obj obj;
    uint16_t upvalue_count;
    ObjFunction *function;
    ObjUpvalue *upvalues[];
} ObjClosure;

typedef struct ObjClass {
    Obj obj;
    ObjString *name;
    struct ObjClosure *init; /* the "init" method, cached; NULL if none      */
    ObjNative *construct;    /* native classes: makes the object; else NULL  */
    Table methods;           /* name -> ObjClosure or ObjNative              */
} ObjClass;

typedef struct ObjInstance {
    Obj obj;
    ObjClass *klass;
    Table fields;
} ObjInstance;

/* A method bound to its receiver; the method is an ObjClosure or, for a
 * native class, an ObjNative. */
typedef struct ObjBoundMethod {
    Obj obj;
    Value receiver;
    Obj *method;
} ObjBoundMethod;

/* The header of an object made by a native class (natives.c extends it).
 * It shares ObjInstance's first two fields, so methods are found the same
 * way; it has no fields table. */
typedef struct ObjForeign {
    Obj obj;
    ObjClass *klass;
} ObjForeign;

/* Layouts for arrays the VM allocates: Values (constants) and table
 * entries. Both are "every word may be a pointer". */
extern const gc_type *value_array_type;
extern const gc_type *entry_type;

/* Build one gc_type per object kind and per array kind. Call once, after
 * gc_init and before allocating any object. */
void object_init_types(void);

/* Allocation helpers: they never return NULL (they end the process with
 * "out of memory" instead). All may collect. */
void *lox_alloc_object(ObjKind kind, size_t size); /* laid out by kind */
void *lox_alloc_array(size_t size, const gc_type *type);
void *lox_grow_atomic(void *old, size_t size); /* old NULL: a new atomic object */
void *lox_grow_array(void *old, size_t size, const gc_type *type);

ObjFunction *new_function(void);
ObjNative *new_native(NativeFn fn, int arity, ObjString *name);
ObjClosure *new_closure(ObjFunction *function);
ObjUpvalue *new_upvalue(Value *slot);
ObjClass *new_class(ObjString *name);
ObjInstance *new_instance(ObjClass *klass);
ObjBoundMethod *new_bound_method(Value receiver, Obj *method);
/* size bytes laid out by type, which must list offsetof(ObjForeign, klass). */
ObjForeign *new_foreign(ObjClass *klass, size_t size, const gc_type *type);

void print_object(Value value);

static inline ObjKind OBJ_KIND(Value v)
{
    return (ObjKind)AS_OBJ(v)->kind;
}

static inline bool is_obj_kind(Value v, ObjKind kind)
{
    return IS_OBJ(v) && AS_OBJ(v)->kind == kind;
}

#define IS_STRING(v)       is_obj_kind(v, OBJ_STRING)
#define IS_FUNCTION(v)     is_obj_kind(v, OBJ_FUNCTION)
#define IS_NATIVE(v)       is_obj_kind(v, OBJ_NATIVE)
#define IS_CLOSURE(v)      is_obj_kind(v, OBJ_CLOSURE)
#define IS_CLASS(v)        is_obj_kind(v, OBJ_CLASS)
#define IS_INSTANCE(v)     is_obj_kind(v, OBJ_INSTANCE)
#define IS_BOUND_METHOD(v) is_obj_kind(v, OBJ_BOUND_METHOD)
#define IS_FOREIGN(v)      is_obj_kind(v, OBJ_FOREIGN)

#define AS_STRING(v)       ((ObjString *)AS_OBJ(v))
#define AS_CSTRING(v)      (((ObjString *)AS_OBJ(v))->chars)
#define AS_FUNCTION(v)     ((ObjFunction *)AS_OBJ(v))
#define AS_NATIVE(v)       ((ObjNative *)AS_OBJ(v))
#define AS_CLOSURE(v)      ((ObjClosure *)AS_OBJ(v))
#define AS_CLASS(v)        ((ObjClass *)AS_OBJ(v))
#define AS_INSTANCE(v)     ((ObjInstance *)AS_OBJ(v))
#define AS_BOUND_METHOD(v) ((ObjBoundMethod *)AS_OBJ(v))
#define AS_FOREIGN(v)      ((ObjForeign *)AS_OBJ(v))

#endif
