/*
 * vm.h - the virtual machine that runs compiled Lox, and the small
 * interface natives use to talk to it.
 */
#ifndef LOX_VM_H
#define LOX_VM_H

#include "object.h"

typedef enum InterpretResult {
    INTERPRET_OK,
    INTERPRET_COMPILE_ERROR,
    INTERPRET_RUNTIME_ERROR
} InterpretResult;

/* Once, after gc_init. Sets up the globals and the native functions. */
void vm_init(void);

/* Forget every global and define the natives afresh, as vm_init left
 * them: a host that runs unrelated programs one after another (the fuzz
 * target) keeps one from seeing the last one's state. May collect. */
void vm_reset(void);

/* Limits for programs that may never end or may build huge strings (the
 * fuzz target runs arbitrary ones). A program that passes one stops with a
 * runtime error. steps: calls and backward jumps per vm_interpret, 0 for no
 * limit (the default). string_length: the longest string + may build; the
 * default is the most an ObjString can hold. */
typedef struct VmLimits {
    unsigned long steps;
    int string_length;
} VmLimits;
extern VmLimits vm_limits;

/* Compile and run source in the global scope of the VM (globals persist
 * between calls, which is what the REPL needs). May collect. */
InterpretResult vm_interpret(const char *source);

/* Bind a value, or a new native function, to a global name. May collect. */
void vm_define_global(const char *name, Value value);
void vm_define_native(const char *name, NativeFn fn, int arity);

/* A native class: calling it runs construct, which makes the object (an
 * ObjForeign) and leaves it in args[-1]. Lox classes cannot inherit from
 * it, so its methods always get one of its own objects as receiver. The
 * class is not bound to any name until vm_define_global. May collect. */
ObjClass *vm_native_class(const char *name, NativeFn construct, int arity);
void vm_define_method(ObjClass *klass, const char *name, NativeFn fn, int arity);

/* For natives: report a runtime error (message and stack trace) and
 * return false, which the native then returns. */
bool vm_native_error(const char *format, ...) LOX_PRINTF(1, 2);

/* Clear the stack slots above the top and the frames above the current
 * one. Popped values and the closures of returned calls linger there until
 * overwritten, and the collector sees the whole static VM state; clearing
 * them before an explicit collection keeps dead objects from surviving it,
 * which makes weak references and finalizers behave predictably. */
void vm_clear_dead_slots(void);

#endif
