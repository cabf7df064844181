/*
 * vm.c - the bytecode interpreter.
 *
 * Roots. Everything the running program can reach starts from the VM
 * state below: the value stack, the call frames, the global table, the
 * list of open upvalues. That state is one object in static storage, and
 * spangc scans the program's data and bss segments conservatively at every
 * collection, so it is a root with no registration and no per-push
 * bookkeeping. The collector does not need to know where the stack top is:
 * it scans the whole array. (Slots above the top may still hold popped
 * values, and frames above the current one the closures of returned
 * calls; they keep those objects alive until overwritten, which is why
 * vm_clear_dead_slots exists.) C locals holding objects are roots too,
 * because spangc scans the C stack and registers, so a native or a
 * constructor that allocates twice needs no temporary roots.
 *
 * Dispatch. The loop keeps the current frame's instruction pointer, slot
 * base, constant array and the stack pointer in C locals, and writes ip
 * and the stack pointer back (SAVE_FRAME) only before something that reads
 * them: a call, a runtime error. With GCC or Clang, each handler jumps
 * straight to the next through a table of label addresses.
 *
 * Safepoints. Finalizers queued by a collection run on this thread when
 * the VM calls gc_run_finalizers: at the end of each vm_interpret, and at
 * every SAFEPOINT_INTERVAL-th instruction that calls or jumps backwards
 * (so a program that never returns to the top level still gets its files
 * closed). Counting down a register costs next to nothing. The same count
 * enforces vm_limits.steps: each safepoint interval is shortened to what
 * is left of the limit, so the limit costs nothing while it is off.
 *
 * Calls. A call pushes a CallFrame whose slots start at the callee's stack
 * slot: slot 0 is the callee (or the receiver, for methods) and the
 * arguments are the first locals. Natives run on the caller's frame and
 * leave their result in the callee slot.
 */
#include "vm.h"

#include "compiler.h"
#include "intern.h"
#include "natives.h"

#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

typedef struct CallFrame {
    ObjClosure *closure;
    uint8_t *ip;  /* next instruction; saved only when the frame is left */
    Value *slots; /* the frame's slot 0 in the value stack */
} CallFrame;

static struct {
    Value stack[STACK_MAX];
    CallFrame frames[FRAMES_MAX];
    int frame_count;
    Value *stack_top; /* valid outside run(), and inside it after SAVE_FRAME */
    Table globals;
    ObjString *init_string;
    ObjUpvalue *open_upvalues; /* sorted by stack slot, highest first */
} vm;

VmLimits vm_limits = {0, INT_MAX - 1}; /* intern.c: the length and its NUL fit an int */

/* Steps of vm_limits.steps left in this vm_interpret, not counting the
 * interval run() is counting down. */
static unsigned long steps_left;

static void reset_stack(void)
{
    vm.stack_top = vm.stack;
    vm.frame_count = 0;
    vm.open_upvalues = NULL;
}

void vm_clear_dead_slots(void)
{
    memset(vm.stack_top, 0, (size_t)(vm.stack + STACK_MAX - vm.stack_top) * sizeof(Value));
    memset(&vm.frames[vm.frame_count], 0,
           (size_t)(FRAMES_MAX - vm.frame_count) * sizeof(CallFrame));
}

/* Moves the value of every open upvalue at or above last into the upvalue
 * itself: the slots are about to be popped. A closed upvalue drops its
 * link to the next open one, which its layout traces: a closure that
 * outlives the call would otherwise keep every upvalue below it on the
 * list alive, and the values they close over. */
static void close_upvalues(const Value *last)
{
    while (vm.open_upvalues != NULL && vm.open_upvalues->location >= last) {
        ObjUpvalue *u = vm.open_upvalues;
        u->closed = *u->location;
        u->location = &u->closed;
        vm.open_upvalues = u->next;
        u->next = NULL;
    }
}

/* ---- errors ---------------------------------------------------------------- */

/* Prints the message, then one line per active frame, innermost first,
 * naming the line of the instruction that was executing. */
static void report_runtime_error(const char *format, va_list args)
{
    vfprintf(stderr, format, args);
    fputc('\n', stderr);
    for (int i = vm.frame_count - 1; i >= 0; i--) {
        const CallFrame *frame = &vm.frames[i];
        const ObjFunction *fn = frame->closure->function;
        size_t instruction = (size_t)(frame->ip - fn->chunk.code - 1);
        fprintf(stderr, "[line %d] in ", fn->chunk.lines[instruction]);
        if (fn->name)
            fprintf(stderr, "%s()\n", fn->name->chars);
        else
            fprintf(stderr, "script\n");
    }
    /* A closure that escaped (into a global, say) keeps its variables:
     * left open, they would point at stack slots the next REPL line
     * reuses. */
    close_upvalues(vm.stack);
    reset_stack();
}

static void runtime_error(const char *format, ...) LOX_PRINTF(1, 2);

static void runtime_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    report_runtime_error(format, args);
    va_end(args);
}

bool vm_native_error(const char *format, ...)
{
    va_list args;
    va_start(args, format);
    report_runtime_error(format, args);
    va_end(args);
    return false;
}

/* ---- calls ------------------------------------------------------------------- */

static inline bool call_closure(ObjClosure *closure, int argc)
{
    if (LOX_UNLIKELY(argc != closure->function->arity)) {
        runtime_error("Expected %d arguments but got %d.", closure->function->arity, argc);
        return false;
    }
    Value *slots = vm.stack_top - argc - 1;
    /* Both the frames and the value stack are bounded; the compiler has
     * counted how many slots the function can need (compiler.c). */
    if (LOX_UNLIKELY(vm.frame_count == FRAMES_MAX ||
                     closure->function->max_slots > vm.stack + STACK_MAX - slots)) {
        runtime_error("Stack overflow.");
        return false;
    }
    CallFrame *frame = &vm.frames[vm.frame_count++];
    frame->closure = closure;
    frame->ip = closure->function->chunk.code;
    frame->slots = slots;
    return true;
}

static bool call_native(ObjNative *native, int argc)
{
    if (native->arity >= 0 && argc != native->arity) {
        runtime_error("Expected %d arguments but got %d.", native->arity, argc);
        return false;
    }
    Value *args = vm.stack_top - argc;
    if (!native->fn(argc, args))
        return false;
    vm.stack_top = args;
    return true;
}

/* A method is a closure, or a native for the methods of native classes. */
static bool call_method(Obj *method, int argc)
{
    if (method->kind == OBJ_CLOSURE)
        return call_closure((ObjClosure *)method, argc);
    return call_native((ObjNative *)method, argc);
}

/* Calling a class makes an instance and runs init on it, if there is one;
 * a native class makes its object with its constructor instead. */
static bool call_class(ObjClass *klass, int argc)
{
    if (klass->construct)
        return call_native(klass->construct, argc);
    vm.stack_top[-argc - 1] = OBJ_VAL(new_instance(klass));
    if (klass->init)
        return call_closure(klass->init, argc);
    if (argc != 0) {
        runtime_error("Expected 0 arguments but got %d.", argc);
        return false;
    }
    return true;
}

static bool call_value(Value callee, int argc)
{
    if (IS_OBJ(callee)) {
        switch (OBJ_KIND(callee)) {
        case OBJ_CLOSURE:
            return call_closure(AS_CLOSURE(callee), argc);
        case OBJ_NATIVE:
            return call_native(AS_NATIVE(callee), argc);
        case OBJ_CLASS:
            return call_class(AS_CLASS(callee), argc);
        case OBJ_BOUND_METHOD: {
            ObjBoundMethod *bound = AS_BOUND_METHOD(callee);
            vm.stack_top[-argc - 1] = bound->receiver;
            return call_method(bound->method, argc);
        }
        default:
            break;
        }
    }
    runtime_error("Can only call functions and classes.");
    return false;
}

static bool invoke_from_class(ObjClass *klass, ObjString *name, int argc)
{
    Value method;
    if (!table_get(&klass->methods, name, &method)) {
        runtime_error("Undefined property '%s'.", name->chars);
        return false;
    }
    return call_method(AS_OBJ(method), argc);
}

/* receiver.name(args): a field holding a callable wins over a method. */
static bool invoke(ObjString *name, int argc)
{
    Value receiver = vm.stack_top[-argc - 1];
    if (IS_INSTANCE(receiver)) {
        ObjInstance *instance = AS_INSTANCE(receiver);
        Value field;
        if (table_get(&instance->fields, name, &field)) {
            vm.stack_top[-argc - 1] = field;
            return call_value(field, argc);
        }
        return invoke_from_class(instance->klass, name, argc);
    }
    if (IS_FOREIGN(receiver))
        return invoke_from_class(AS_FOREIGN(receiver)->klass, name, argc);
    runtime_error("Only instances have methods.");
    return false;
}

/* Replaces the receiver in *slot by the method name of klass bound to it. */
static bool bind_method(ObjClass *klass, ObjString *name, Value *slot)
{
    Value method;
    if (!table_get(&klass->methods, name, &method)) {
        runtime_error("Undefined property '%s'.", name->chars);
        return false;
    }
    *slot = OBJ_VAL(new_bound_method(*slot, AS_OBJ(method)));
    return true;
}

/* ---- upvalues ---------------------------------------------------------------- */

/* The open upvalue for a stack slot, shared by every closure capturing it. */
static ObjUpvalue *capture_upvalue(Value *slot)
{
    ObjUpvalue *prev = NULL;
    ObjUpvalue *u = vm.open_upvalues;
    while (u != NULL && u->location > slot) {
        prev = u;
        u = u->next;
    }
    if (u != NULL && u->location == slot)
        return u;
    ObjUpvalue *created = new_upvalue(slot);
    created->next = u;
    if (prev == NULL)
        vm.open_upvalues = created;
    else
        prev->next = created;
    return created;
}

/* ---- the interpreter loop ---------------------------------------------------- */

#define SAFEPOINT_INTERVAL 1024

/* The length of the next safepoint interval: 0 when the step limit is used up. */
static unsigned next_interval(void)
{
    if (vm_limits.steps == 0)
        return SAFEPOINT_INTERVAL;
    unsigned n = steps_left < SAFEPOINT_INTERVAL ? (unsigned)steps_left : SAFEPOINT_INTERVAL;
    steps_left -= n;
    return n;
}

#if defined(__GNUC__) && !defined(LOX_NO_COMPUTED_GOTO)
#define LOX_COMPUTED_GOTO 1
#endif

static InterpretResult run(void)
{
    CallFrame *frame;
    uint8_t *ip;
    Value *slots;
    Value *constants;
    Value *sp;
    unsigned safepoint_budget = next_interval();

#define LOAD_FRAME()                                                                           \
    do {                                                                                       \
        frame = &vm.frames[vm.frame_count - 1];                                                \
        ip = frame->ip;                                                                        \
        slots = frame->slots;                                                                  \
        constants = frame->closure->function->chunk.constants.values;                          \
        sp = vm.stack_top;                                                                     \
    } while (0)
#define SAVE_FRAME() (frame->ip = ip, vm.stack_top = sp)

#define READ_BYTE()     (*ip++)
#define READ_SHORT()    (ip += 2, (uint16_t)((ip[-2] << 8) | ip[-1]))
#define READ_CONSTANT() (constants[READ_BYTE()])
#define READ_STRING()   AS_STRING(READ_CONSTANT())
#define PUSH(v)         (*sp++ = (v))
#define POP()           (*--sp)
#define PEEK(n)         (sp[-1 - (n)])

#define RUNTIME_ERROR(...)                                                                     \
    do {                                                                                       \
        SAVE_FRAME();                                                                          \
        runtime_error(__VA_ARGS__);                                                            \
        return INTERPRET_RUNTIME_ERROR;                                                        \
    } while (0)

/* Runs a call helper on the saved state, then resumes whatever frame is on
 * top afterwards (a new one, or the same one after a native). */
#define CALL(expr)                                                                             \
    do {                                                                                       \
        SAVE_FRAME();                                                                          \
        if (LOX_UNLIKELY(!(expr)))                                                             \
            return INTERPRET_RUNTIME_ERROR;                                                    \
        LOAD_FRAME();                                                                          \
    } while (0)

#define SAFEPOINT()                                                                            \
    do {                                                                                       \
        if (LOX_UNLIKELY(--safepoint_budget == 0)) {                                           \
            gc_run_finalizers();                                                               \
            safepoint_budget = next_interval();                                                \
            if (LOX_UNLIKELY(safepoint_budget == 0))                                           \
                RUNTIME_ERROR("Step limit exceeded.");                                         \
        }                                                                                      \
    } while (0)

#define NUMBER_OP(result_val, op)                                                              \
    do {                                                                                       \
        Value b_ = PEEK(0), a_ = PEEK(1);                                                      \
        if (LOX_UNLIKELY(!IS_NUMBER(a_) || !IS_NUMBER(b_)))                                    \
            RUNTIME_ERROR("Operands must be numbers.");                                        \
        sp[-2] = result_val(AS_NUMBER(a_) op AS_NUMBER(b_));                                   \
        sp--;                                                                                  \
    } while (0)

#ifdef LOX_COMPUTED_GOTO
#define OPCODES(X)                                                                             \
    X(OP_CONSTANT) X(OP_NIL) X(OP_TRUE) X(OP_FALSE) X(OP_POP) X(OP_GET_LOCAL)                  \
    X(OP_SET_LOCAL) X(OP_GET_GLOBAL) X(OP_DEFINE_GLOBAL) X(OP_SET_GLOBAL) X(OP_GET_UPVALUE)    \
    X(OP_SET_UPVALUE) X(OP_GET_PROPERTY) X(OP_SET_PROPERTY) X(OP_GET_SUPER) X(OP_EQUAL)        \
    X(OP_GREATER) X(OP_LESS) X(OP_ADD) X(OP_SUBTRACT) X(OP_MULTIPLY) X(OP_DIVIDE) X(OP_NOT)    \
    X(OP_NEGATE) X(OP_PRINT) X(OP_JUMP) X(OP_JUMP_IF_FALSE) X(OP_LOOP) X(OP_CALL)              \
    X(OP_INVOKE) X(OP_SUPER_INVOKE) X(OP_CLOSURE) X(OP_CLOSE_UPVALUE) X(OP_RETURN)             \
    X(OP_CLASS) X(OP_INHERIT) X(OP_METHOD)
#define LABEL_ADDRESS(op) [op] = &&do_##op,
    static void *const dispatch_table[] = {OPCODES(LABEL_ADDRESS)};
#undef LABEL_ADDRESS
#define DISPATCH() goto *dispatch_table[*ip++]
#define CASE(op)   do_##op:
#else
#define DISPATCH() goto dispatch
#define CASE(op)   case op:
#endif

    LOAD_FRAME();
#ifdef LOX_COMPUTED_GOTO
    DISPATCH();
#else
dispatch:
    switch ((OpCode)READ_BYTE()) {
#endif

    CASE(OP_CONSTANT)
    {
        PUSH(READ_CONSTANT());
        DISPATCH();
    }
    CASE(OP_NIL)
    {
        PUSH(NIL_VAL);
        DISPATCH();
    }
    CASE(OP_TRUE)
    {
        PUSH(TRUE_VAL);
        DISPATCH();
    }
    CASE(OP_FALSE)
    {
        PUSH(FALSE_VAL);
        DISPATCH();
    }
    CASE(OP_POP)
    {
        sp--;
        DISPATCH();
    }
    CASE(OP_GET_LOCAL)
    {
        PUSH(slots[READ_BYTE()]);
        DISPATCH();
    }
    CASE(OP_SET_LOCAL)
    {
        slots[READ_BYTE()] = PEEK(0);
        DISPATCH();
    }
    CASE(OP_GET_GLOBAL)
    {
        ObjString *name = READ_STRING();
        const Value *value = table_find(&vm.globals, name);
        if (LOX_UNLIKELY(!value))
            RUNTIME_ERROR("Undefined variable '%s'.", name->chars);
        PUSH(*value);
        DISPATCH();
    }
    CASE(OP_DEFINE_GLOBAL)
    {
        table_set(&vm.globals, READ_STRING(), PEEK(0));
        sp--;
        DISPATCH();
    }
    CASE(OP_SET_GLOBAL)
    {
        ObjString *name = READ_STRING();
        if (LOX_UNLIKELY(table_set(&vm.globals, name, PEEK(0)))) {
            table_delete(&vm.globals, name);
            RUNTIME_ERROR("Undefined variable '%s'.", name->chars);
        }
        DISPATCH();
    }
    CASE(OP_GET_UPVALUE)
    {
        PUSH(*frame->closure->upvalues[READ_BYTE()]->location);
        DISPATCH();
    }
    CASE(OP_SET_UPVALUE)
    {
        *frame->closure->upvalues[READ_BYTE()]->location = PEEK(0);
        DISPATCH();
    }
    CASE(OP_GET_PROPERTY)
    {
        Value receiver = PEEK(0);
        ObjString *name = READ_STRING();
        ObjClass *klass;
        if (IS_INSTANCE(receiver)) {
            ObjInstance *instance = AS_INSTANCE(receiver);
            const Value *value = table_find(&instance->fields, name);
            if (value) {
                sp[-1] = *value;
                DISPATCH();
            }
            klass = instance->klass;
        } else if (IS_FOREIGN(receiver)) {
            klass = AS_FOREIGN(receiver)->klass;
        } else {
            RUNTIME_ERROR("Only instances have properties.");
        }
        SAVE_FRAME();
        if (!bind_method(klass, name, &sp[-1]))
            return INTERPRET_RUNTIME_ERROR;
        DISPATCH();
    }
    CASE(OP_SET_PROPERTY)
    {
        if (LOX_UNLIKELY(!IS_INSTANCE(PEEK(1))))
            RUNTIME_ERROR("Only instances have fields.");
        ObjInstance *instance = AS_INSTANCE(PEEK(1));
        table_set(&instance->fields, READ_STRING(), PEEK(0));
        sp[-2] = sp[-1];
        sp--;
        DISPATCH();
    }
    CASE(OP_GET_SUPER)
    {
        ObjString *name = READ_STRING();
        ObjClass *superclass = AS_CLASS(POP());
        SAVE_FRAME();
        if (!bind_method(superclass, name, &sp[-1]))
            return INTERPRET_RUNTIME_ERROR;
        DISPATCH();
    }
    CASE(OP_EQUAL)
    {
        sp[-2] = BOOL_VAL(values_equal(sp[-2], sp[-1]));
        sp--;
        DISPATCH();
    }
    CASE(OP_GREATER)
    {
        NUMBER_OP(BOOL_VAL, >);
        DISPATCH();
    }
    CASE(OP_LESS)
    {
        NUMBER_OP(BOOL_VAL, <);
        DISPATCH();
    }
    CASE(OP_ADD)
    {
        Value b = PEEK(0), a = PEEK(1);
        if (LOX_LIKELY(IS_NUMBER(a) && IS_NUMBER(b))) {
            sp[-2] = NUMBER_VAL(AS_NUMBER(a) + AS_NUMBER(b));
        } else if (IS_STRING(a) && IS_STRING(b)) {
            if (LOX_UNLIKELY(AS_STRING(a)->length > vm_limits.string_length - AS_STRING(b)->length))
                RUNTIME_ERROR("String too long.");
            sp[-2] = OBJ_VAL(string_concat(AS_STRING(a), AS_STRING(b)));
        } else {
            RUNTIME_ERROR("Operands must be two numbers or two strings.");
        }
        sp--;
        DISPATCH();
    }
    CASE(OP_SUBTRACT)
    {
        NUMBER_OP(NUMBER_VAL, -);
        DISPATCH();
    }
    CASE(OP_MULTIPLY)
    {
        NUMBER_OP(NUMBER_VAL, *);
        DISPATCH();
    }
    CASE(OP_DIVIDE)
    {
        NUMBER_OP(NUMBER_VAL, /);
        DISPATCH();
    }
    CASE(OP_NOT)
    {
        sp[-1] = BOOL_VAL(is_falsey(sp[-1]));
        DISPATCH();
    }
    CASE(OP_NEGATE)
    {
        if (LOX_UNLIKELY(!IS_NUMBER(PEEK(0))))
            RUNTIME_ERROR("Operand must be a number.");
        sp[-1] = NUMBER_VAL(-AS_NUMBER(sp[-1]));
        DISPATCH();
    }
    CASE(OP_PRINT)
    {
        print_value(POP());
        putchar('\n');
        DISPATCH();
    }
    CASE(OP_JUMP)
    {
        uint16_t distance = READ_SHORT();
        ip += distance;
        DISPATCH();
    }
    CASE(OP_JUMP_IF_FALSE)
    {
        uint16_t distance = READ_SHORT();
        if (is_falsey(PEEK(0)))
            ip += distance;
        DISPATCH();
    }
    CASE(OP_LOOP)
    {
        uint16_t distance = READ_SHORT();
        SAFEPOINT(); /* before the jump: an error names this instruction's line */
        ip -= distance;
        DISPATCH();
    }
    /* The safepoint comes before the call: a step-limit error then names
     * the caller's line, not a callee that has run no instruction yet. */
    CASE(OP_CALL)
    {
        SAFEPOINT();
        int argc = READ_BYTE();
        Value callee = PEEK(argc);
        if (LOX_LIKELY(IS_CLOSURE(callee)))
            CALL(call_closure(AS_CLOSURE(callee), argc));
        else
            CALL(call_value(callee, argc));
        DISPATCH();
    }
    CASE(OP_INVOKE)
    {
        SAFEPOINT();
        ObjString *name = READ_STRING();
        int argc = READ_BYTE();
        CALL(invoke(name, argc));
        DISPATCH();
    }
    CASE(OP_SUPER_INVOKE)
    {
        SAFEPOINT();
        ObjString *name = READ_STRING();
        int argc = READ_BYTE();
        ObjClass *superclass = AS_CLASS(POP());
        CALL(invoke_from_class(superclass, name, argc));
        DISPATCH();
    }
    CASE(OP_CLOSURE)
    {
        ObjFunction *function = AS_FUNCTION(READ_CONSTANT());
        ObjClosure *closure = new_closure(function);
        PUSH(OBJ_VAL(closure));
        for (int i = 0; i < closure->upvalue_count; i++) {
            uint8_t is_local = READ_BYTE();
            uint8_t index = READ_BYTE();
            closure->upvalues[i] =
                is_local ? capture_upvalue(slots + index) : frame->closure->upvalues[index];
        }
        DISPATCH();
    }
    CASE(OP_CLOSE_UPVALUE)
    {
        close_upvalues(sp - 1);
        sp--;
        DISPATCH();
    }
    CASE(OP_RETURN)
    {
        Value result = POP();
        if (vm.open_upvalues != NULL && vm.open_upvalues->location >= slots)
            close_upvalues(slots);
        vm.frame_count--;
        if (vm.frame_count == 0) {
            vm.stack_top = vm.stack;
            return INTERPRET_OK;
        }
        sp = slots;
        PUSH(result);
        vm.stack_top = sp;
        LOAD_FRAME();
        DISPATCH();
    }
    CASE(OP_CLASS)
    {
        PUSH(OBJ_VAL(new_class(READ_STRING())));
        DISPATCH();
    }
    CASE(OP_INHERIT)
    {
        Value superclass = PEEK(1);
        if (!IS_CLASS(superclass))
            RUNTIME_ERROR("Superclass must be a class.");
        if (AS_CLASS(superclass)->construct)
            RUNTIME_ERROR("Cannot inherit from native class '%s'.",
                          AS_CLASS(superclass)->name->chars);
        ObjClass *subclass = AS_CLASS(PEEK(0));
        /* Copy-down inheritance: methods defined next override these. */
        table_add_all(&AS_CLASS(superclass)->methods, &subclass->methods);
        subclass->init = AS_CLASS(superclass)->init;
        sp--;
        DISPATCH();
    }
    CASE(OP_METHOD)
    {
        ObjString *name = READ_STRING();
        ObjClass *klass = AS_CLASS(PEEK(1));
        table_set(&klass->methods, name, PEEK(0));
        if (name == vm.init_string)
            klass->init = AS_CLOSURE(PEEK(0));
        sp--;
        DISPATCH();
    }

#ifndef LOX_COMPUTED_GOTO
    }
    return INTERPRET_RUNTIME_ERROR; /* not reached: every opcode dispatches */
#endif

#undef LOAD_FRAME
#undef SAVE_FRAME
#undef READ_BYTE
#undef READ_SHORT
#undef READ_CONSTANT
#undef READ_STRING
#undef PUSH
#undef POP
#undef PEEK
#undef RUNTIME_ERROR
#undef CALL
#undef SAFEPOINT
#undef NUMBER_OP
#undef DISPATCH
#undef CASE
}

/* ---- the interface ------------------------------------------------------------ */

void vm_init(void)
{
    reset_stack();
    table_init(&vm.globals);
    vm.init_string = string_copy("init", 4);
    natives_install();
}

void vm_reset(void)
{
    reset_stack();
    vm_clear_dead_slots();
    table_init(&vm.globals);
    natives_install();
}

InterpretResult vm_interpret(const char *source)
{
    ObjFunction *function = compile(source);
    if (function == NULL)
        return INTERPRET_COMPILE_ERROR;
    ObjClosure *closure = new_closure(function);
    reset_stack();
    steps_left = vm_limits.steps;
    *vm.stack_top++ = OBJ_VAL(closure);
    /* Cannot fail: the compiler refuses a function that needs more slots
     * than the whole stack. But run() must never start without a frame. */
    if (!call_closure(closure, 0))
        return INTERPRET_RUNTIME_ERROR;
    InterpretResult result = run();
    gc_run_finalizers();
    return result;
}

static ObjString *string_of(const char *chars)
{
    return string_copy(chars, (int)strlen(chars));
}

void vm_define_global(const char *name, Value value)
{
    table_set(&vm.globals, string_of(name), value);
}

void vm_define_native(const char *name, NativeFn fn, int arity)
{
    ObjString *key = string_of(name);
    table_set(&vm.globals, key, OBJ_VAL(new_native(fn, arity, key)));
}

ObjClass *vm_native_class(const char *name, NativeFn construct, int arity)
{
    ObjString *key = string_of(name);
    ObjClass *klass = new_class(key);
    klass->construct = new_native(construct, arity, key);
    return klass;
}

void vm_define_method(ObjClass *klass, const char *name, NativeFn fn, int arity)
{
    ObjString *key = string_of(name);
    table_set(&klass->methods, key, OBJ_VAL(new_native(fn, arity, key)));
}
