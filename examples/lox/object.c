/*
 * object.c - object layouts, allocation and printing.
 *
 * The layouts are the heart of how the VM uses spangc precisely: each
 * gc_type below names, by offsetof, the fields of one object kind that can
 * refer to another object. Fields not named (lengths, hashes, arities,
 * C function pointers, the chars of a string) are never looked at by the
 * collector. A Value field is named even though it often holds a number:
 * spangc checks each named word and ignores words that are not addresses
 * of heap objects, and value.h keeps numbers out of the address range.
 */
#include "object.h"

#include "intern.h"

#include <stdio.h>
#include <stdlib.h>

const gc_type *value_array_type;
const gc_type *entry_type;
static const gc_type *kind_types[OBJ_KIND_COUNT];

static const gc_type *checked(const gc_type *type)
{
    if (!type) {
        fprintf(stderr, "lox: cannot build an object layout\n");
        exit(EXIT_RUNTIME_ERROR);
    }
    return type;
}

/* The closure's header word stays below 2^25 (object.h). */
_Static_assert(offsetof(ObjClosure, upvalue_count) == 2 &&
                   offsetof(ObjClosure, function) == sizeof(void *),
               "ObjClosure: kind in bits 0-7, count in bits 16-31 of word 0");

void object_init_types(void)
{
    /* Strings hold no pointers: a layout without pointer words makes them
     * atomic objects, which marking never scans. */
    kind_types[OBJ_STRING] = checked(gc_type_new(sizeof(ObjString), NULL, 0));
    kind_types[OBJ_FUNCTION] = checked(GC_TYPE(ObjFunction, offsetof(ObjFunction, chunk.code),
                                               offsetof(ObjFunction, chunk.lines),
                                               offsetof(ObjFunction, chunk.constants.values),
                                               offsetof(ObjFunction, name)));
    kind_types[OBJ_NATIVE] = checked(GC_TYPE(ObjNative, offsetof(ObjNative, name)));
    /* One pointer word, repeated over the whole object: see ObjClosure. */
    kind_types[OBJ_CLOSURE] = checked(GC_TYPE(void *, 0));
    kind_types[OBJ_UPVALUE] =
        checked(GC_TYPE(ObjUpvalue, offsetof(ObjUpvalue, location), offsetof(ObjUpvalue, closed),
                        offsetof(ObjUpvalue, next)));
    kind_types[OBJ_CLASS] =
        checked(GC_TYPE(ObjClass, offsetof(ObjClass, name), offsetof(ObjClass, init),
                        offsetof(ObjClass, construct), offsetof(ObjClass, methods.entries)));
    kind_types[OBJ_INSTANCE] = checked(GC_TYPE(ObjInstance, offsetof(ObjInstance, klass),
                                               offsetof(ObjInstance, fields.entries)));
    kind_types[OBJ_BOUND_METHOD] = checked(GC_TYPE(
        ObjBoundMethod, offsetof(ObjBoundMethod, receiver), offsetof(ObjBoundMethod, method)));
    /* OBJ_FOREIGN: each native class brings its own layout. */
    value_array_type = checked(GC_TYPE(Value, 0));
    entry_type = checked(GC_TYPE(Entry, offsetof(Entry, key), offsetof(Entry, value)));
}

/* ---- allocation ---------------------------------------------------------- */

void lox_out_of_memory(void)
{
    fprintf(stderr, "lox: out of memory\n");
    exit(EXIT_RUNTIME_ERROR);
}

static void *check(void *p)
{
    if (LOX_UNLIKELY(!p))
        lox_out_of_memory();
    return p;
}

void *lox_alloc_object(ObjKind kind, size_t size)
{
    Obj *obj = check(gc_alloc_typed(size, kind_types[kind]));
    obj->kind = (uint8_t)kind;
    return obj;
}

void *lox_alloc_array(size_t size, const gc_type *type)
{
    return check(gc_alloc_typed(size, type));
}

void *lox_grow_atomic(void *old, size_t size)
{
    return check(old ? gc_realloc(old, size) : gc_alloc_atomic(size));
}

void *lox_grow_array(void *old, size_t size, const gc_type *type)
{
    return check(old ? gc_realloc(old, size) : gc_alloc_typed(size, type));
}

/* ---- constructors ---------------------------------------------------------
 * Memory comes zeroed, so only non-zero fields are set. An object under
 * construction is referenced from a C local, which spangc sees on the
 * stack or in a register: no "temporary root" bookkeeping is needed when
 * a constructor allocates twice. */

ObjFunction *new_function(void)
{
    ObjFunction *f = lox_alloc_object(OBJ_FUNCTION, sizeof(ObjFunction));
    chunk_init(&f->chunk);
    return f;
}

ObjNative *new_native(NativeFn fn, int arity, ObjString *name)
{
    ObjNative *n = lox_alloc_object(OBJ_NATIVE, sizeof(ObjNative));
    n->arity = arity;
    n->fn = fn;
    n->name = name;
    return n;
}

ObjClosure *new_closure(ObjFunction *function)
{
    int n = function->upvalue_count;
    ObjClosure *c =
        lox_alloc_object(OBJ_CLOSURE, sizeof(ObjClosure) + (size_t)n * sizeof(ObjUpvalue *));
    c->upvalue_count = (uint16_t)n;
    c->function = function;
    return c;
}

ObjUpvalue *new_upvalue(Value *slot)
{
    ObjUpvalue *u = lox_alloc_object(OBJ_UPVALUE, sizeof(ObjUpvalue));
    u->location = slot;
    return u;
}

ObjClass *new_class(ObjString *name)
{
    ObjClass *k = lox_alloc_object(OBJ_CLASS, sizeof(ObjClass));
    k->name = name;
    table_init(&k->methods);
    return k;
}

ObjInstance *new_instance(ObjClass *klass)
{
    ObjInstance *i = lox_alloc_object(OBJ_INSTANCE, sizeof(ObjInstance));
    i->klass = klass;
    table_init(&i->fields);
    return i;
}

ObjBoundMethod *new_bound_method(Value receiver, Obj *method)
{
    ObjBoundMethod *b = lox_alloc_object(OBJ_BOUND_METHOD, sizeof(ObjBoundMethod));
    b->receiver = receiver;
    b->method = method;
    return b;
}

ObjForeign *new_foreign(ObjClass *klass, size_t size, const gc_type *type)
{
    ObjForeign *f = check(gc_alloc_typed(size, type));
    f->obj.kind = OBJ_FOREIGN;
    f->klass = klass;
    return f;
}

/* ---- printing ------------------------------------------------------------ */

static void print_function(const ObjFunction *f)
{
    if (f->name)
        printf("<fn %s>", f->name->chars);
    else
        printf("<script>");
}

static void print_method(const Obj *method)
{
    if (method->kind == OBJ_CLOSURE)
        print_function(((const ObjClosure *)method)->function);
    else
        printf("<native fn>");
}

void print_object(Value value)
{
    switch (OBJ_KIND(value)) {
    case OBJ_STRING:
        fwrite(AS_STRING(value)->chars, 1, (size_t)AS_STRING(value)->length, stdout);
        break;
    case OBJ_FUNCTION:
        print_function(AS_FUNCTION(value));
        break;
    case OBJ_NATIVE:
        printf("<native fn>");
        break;
    case OBJ_CLOSURE:
        print_function(AS_CLOSURE(value)->function);
        break;
    case OBJ_UPVALUE:
        printf("upvalue");
        break;
    case OBJ_CLASS:
        printf("%s", AS_CLASS(value)->name->chars);
        break;
    case OBJ_INSTANCE:
        printf("%s instance", AS_INSTANCE(value)->klass->name->chars);
        break;
    case OBJ_BOUND_METHOD:
        print_method(AS_BOUND_METHOD(value)->method);
        break;
    case OBJ_FOREIGN:
        printf("%s instance", AS_FOREIGN(value)->klass->name->chars);
        break;
    case OBJ_KIND_COUNT:
        break;
    }
}
