/*
 * compiler.c - a single-pass compiler: a Pratt parser for expressions and
 * recursive descent for statements, emitting bytecode as it parses.
 *
 * There is no syntax tree. Each function being compiled has a Compiler on
 * the C stack, linked to the compiler of the enclosing function, which
 * tracks the local variables in scope (their stack slots are their indices)
 * and the upvalues the function captures. Name resolution happens as the
 * name is parsed: a local of this function, else an upvalue captured from
 * an enclosing one, else a global looked up by name at run time.
 *
 * Garbage collection: the function under construction, and everything it
 * has accumulated (code, constants, nested functions), is reachable from
 * its Compiler, a C local that spangc finds on the stack. So compiling
 * needs no special roots.
 *
 * Errors: the first error of a statement is reported; the parser then
 * skips to a statement boundary (panic mode) and carries on, so one run
 * reports all the independent errors in a file.
 */
#include "compiler.h"

#include "intern.h"
#include "scanner.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Parser {
    Token current;
    Token previous;
    bool had_error;
    bool panic_mode; /* suppress errors until the next statement */
    int depth;       /* statements and expressions being parsed, nested */
    bool gave_up;    /* nested too deeply: no more errors at all */
} Parser;

/* The parser recurses on the C stack, and each function being compiled
 * holds a Compiler of about 9 KB there: these bound both, well within the
 * main thread's 8 MiB, so that no input, however nested, can overflow it. */
#define NESTING_MAX 1000
#define FUNCTION_NESTING_MAX 100

typedef enum Precedence {
    PREC_NONE,
    PREC_ASSIGNMENT, /* =         */
    PREC_OR,         /* or        */
    PREC_AND,        /* and       */
    PREC_EQUALITY,   /* == !=     */
    PREC_COMPARISON, /* < > <= >= */
    PREC_TERM,       /* + -       */
    PREC_FACTOR,     /* * /       */
    PREC_UNARY,      /* ! -       */
    PREC_CALL,       /* . ()      */
    PREC_PRIMARY
} Precedence;

typedef void (*ParseFn)(bool can_assign);

typedef struct ParseRule {
    ParseFn prefix;
    ParseFn infix;
    Precedence precedence; /* of the infix operator */
} ParseRule;

typedef struct Local {
    Token name;
    int depth;     /* scope depth; -1 while its initializer is compiled */
    bool captured; /* some closure refers to it: close it on scope exit */
} Local;

typedef struct UpvalueRef {
    uint8_t index; /* a local slot of the enclosing function, or an upvalue of it */
    bool is_local;
} UpvalueRef;

typedef enum FunctionKind {
    KIND_SCRIPT,
    KIND_FUNCTION,
    KIND_METHOD,
    KIND_INITIALIZER
} FunctionKind;

typedef struct Compiler {
    struct Compiler *enclosing;
    ObjFunction *function;
    FunctionKind kind;
    int local_count;
    int scope_depth; /* 0: global scope */
    int stack_depth; /* values on the stack at this point of the code */
    int max_depth;   /* the most stack_depth has been: the frame's size */
    Local locals[UINT8_COUNT];
    UpvalueRef upvalues[UINT8_COUNT];
} Compiler;

typedef struct ClassCompiler {
    struct ClassCompiler *enclosing;
    bool has_superclass;
} ClassCompiler;

static Parser parser;
static Compiler *current;
static ClassCompiler *current_class;

static Chunk *chunk(void)
{
    return &current->function->chunk;
}

/* ---- errors ---------------------------------------------------------------- */

static void error_at(const Token *token, const char *message)
{
    if (parser.panic_mode || parser.gave_up)
        return;
    parser.panic_mode = true;
    parser.had_error = true;
    fprintf(stderr, "[line %d] Error", token->line);
    if (token->type == TOKEN_EOF)
        fprintf(stderr, " at end");
    else if (token->type != TOKEN_ERROR)
        fprintf(stderr, " at '%.*s'", token->length, token->start);
    fprintf(stderr, ": %s\n", message);
}

static void error(const char *message)
{
    error_at(&parser.previous, message);
}

static void error_at_current(const char *message)
{
    error_at(&parser.current, message);
}

static void advance(void);

/* Nested too deeply to go on: report it and skip the rest of the source,
 * so that every level being parsed returns at once, without the errors
 * each would report about the end it did not expect. Reported even after
 * an error earlier in the statement: it says why no later error is. */
static void error_too_deep(const char *message)
{
    parser.panic_mode = false;
    error_at_current(message);
    parser.gave_up = true;
    while (parser.current.type != TOKEN_EOF)
        advance();
}

/* ---- tokens ------------------------------------------------------------------ */

static void advance(void)
{
    parser.previous = parser.current;
    for (;;) {
        parser.current = scanner_next();
        if (parser.current.type != TOKEN_ERROR)
            break;
        error_at_current(parser.current.start);
    }
}

static void consume(TokenType type, const char *message)
{
    if (parser.current.type == type)
        advance();
    else
        error_at_current(message);
}

static bool check(TokenType type)
{
    return parser.current.type == type;
}

static bool match(TokenType type)
{
    if (!check(type))
        return false;
    advance();
    return true;
}

/* ---- emitting code -------------------------------------------------------- */

static void emit_byte(uint8_t byte)
{
    chunk_write(chunk(), byte, parser.previous.line);
}

static void emit_bytes(uint8_t a, uint8_t b)
{
    emit_byte(a);
    emit_byte(b);
}

/* How each instruction changes the number of values on the stack; the
 * calls pop their arguments as well (see emit_call). */
static const int8_t stack_effect[] = {
    [OP_CONSTANT] = 1,    [OP_NIL] = 1,          [OP_TRUE] = 1,          [OP_FALSE] = 1,
    [OP_POP] = -1,        [OP_GET_LOCAL] = 1,    [OP_SET_LOCAL] = 0,     [OP_GET_GLOBAL] = 1,
    [OP_DEFINE_GLOBAL] = -1, [OP_SET_GLOBAL] = 0, [OP_GET_UPVALUE] = 1,  [OP_SET_UPVALUE] = 0,
    [OP_GET_PROPERTY] = 0, [OP_SET_PROPERTY] = -1, [OP_GET_SUPER] = -1,  [OP_EQUAL] = -1,
    [OP_GREATER] = -1,    [OP_LESS] = -1,        [OP_ADD] = -1,          [OP_SUBTRACT] = -1,
    [OP_MULTIPLY] = -1,   [OP_DIVIDE] = -1,      [OP_NOT] = 0,           [OP_NEGATE] = 0,
    [OP_PRINT] = -1,      [OP_JUMP] = 0,         [OP_JUMP_IF_FALSE] = 0, [OP_LOOP] = 0,
    [OP_CALL] = 0,        [OP_INVOKE] = 0,       [OP_SUPER_INVOKE] = -1, [OP_CLOSURE] = 1,
    [OP_CLOSE_UPVALUE] = -1, [OP_RETURN] = -1,   [OP_CLASS] = 1,         [OP_INHERIT] = -1,
    [OP_METHOD] = -1,
};

/* The compiler counts the values each instruction leaves on the stack, in
 * the order the code is emitted, to learn how many stack slots a call of
 * the function can need: the VM checks that many are free before it
 * enters the function, so no program can write past the value stack.
 * Where two paths join with different counts (the condition popped on the
 * fall-through path of an if or a loop is still on the stack on the jump
 * path), the parser corrects the count by hand. */
static void adjust_stack(int delta)
{
    current->stack_depth += delta;
    if (current->stack_depth > current->max_depth) {
        /* More than the whole value stack: no call could ever run it.
         * Reported once, where the count first goes past. */
        if (current->max_depth <= STACK_MAX && current->stack_depth > STACK_MAX)
            error("Too much stack needed.");
        current->max_depth = current->stack_depth;
    }
}

static void emit_op(OpCode op)
{
    emit_byte((uint8_t)op);
    adjust_stack(stack_effect[op]);
}

static void emit_op_arg(OpCode op, uint8_t arg)
{
    emit_op(op);
    emit_byte(arg);
}

/* A call replaces the callee and its arguments by the result. */
static void emit_call(OpCode op, uint8_t name, uint8_t argc)
{
    if (op == OP_CALL) {
        emit_op_arg(op, argc);
    } else {
        emit_op_arg(op, name);
        emit_byte(argc);
    }
    adjust_stack(-argc);
}

/* A forward jump with a placeholder distance; returns where to patch. */
static int emit_jump(OpCode op)
{
    emit_op(op);
    emit_bytes(0xff, 0xff);
    return chunk()->count - 2;
}

static void patch_jump(int at)
{
    int distance = chunk()->count - at - 2;
    if (distance > UINT16_MAX)
        error("Too much code to jump over.");
    chunk()->code[at] = (uint8_t)(distance >> 8);
    chunk()->code[at + 1] = (uint8_t)distance;
}

static void emit_loop(int loop_start)
{
    emit_op(OP_LOOP);
    int distance = chunk()->count - loop_start + 2;
    if (distance > UINT16_MAX)
        error("Loop body too large.");
    emit_bytes((uint8_t)(distance >> 8), (uint8_t)distance);
}

/* The implicit return at the end of a body: an initializer returns this. */
static void emit_return(void)
{
    if (current->kind == KIND_INITIALIZER)
        emit_op_arg(OP_GET_LOCAL, 0);
    else
        emit_op(OP_NIL);
    emit_op(OP_RETURN);
}

static uint8_t make_constant(Value value)
{
    int index = chunk_add_constant(chunk(), value);
    if (index > UINT8_MAX) {
        error("Too many constants in one chunk.");
        return 0;
    }
    return (uint8_t)index;
}

static void emit_constant(Value value)
{
    emit_op_arg(OP_CONSTANT, make_constant(value));
}

/* ---- compilers and scopes ------------------------------------------------- */

static void compiler_begin(Compiler *compiler, FunctionKind kind)
{
    compiler->enclosing = current;
    compiler->function = NULL;
    compiler->kind = kind;
    compiler->local_count = 0;
    compiler->scope_depth = 0;
    compiler->stack_depth = 1; /* slot 0 */
    compiler->max_depth = 1;
    compiler->function = new_function();
    current = compiler;
    if (kind != KIND_SCRIPT)
        current->function->name = string_copy(parser.previous.start, parser.previous.length);

    /* Slot 0 holds the callee; in methods it is the receiver, named this. */
    Local *local = &current->locals[current->local_count++];
    local->depth = 0;
    local->captured = false;
    if (kind == KIND_METHOD || kind == KIND_INITIALIZER) {
        local->name.start = "this";
        local->name.length = 4;
    } else {
        local->name.start = "";
        local->name.length = 0;
    }
}

static ObjFunction *compiler_end(void)
{
    emit_return();
    ObjFunction *function = current->function;
    function->max_slots = current->max_depth;
    current = current->enclosing;
    return function;
}

static void begin_scope(void)
{
    current->scope_depth++;
}

static void end_scope(void)
{
    current->scope_depth--;
    while (current->local_count > 0 &&
           current->locals[current->local_count - 1].depth > current->scope_depth) {
        emit_op(current->locals[current->local_count - 1].captured ? OP_CLOSE_UPVALUE : OP_POP);
        current->local_count--;
    }
}

/* ---- variables ---------------------------------------------------------------- */

static uint8_t identifier_constant(const Token *name)
{
    return make_constant(OBJ_VAL(string_copy(name->start, name->length)));
}

static bool same_name(const Token *a, const Token *b)
{
    return a->length == b->length && memcmp(a->start, b->start, (size_t)a->length) == 0;
}

/* The slot of the innermost local called name, or -1. */
static int resolve_local(Compiler *compiler, const Token *name)
{
    for (int i = compiler->local_count - 1; i >= 0; i--) {
        Local *local = &compiler->locals[i];
        if (same_name(name, &local->name)) {
            if (local->depth == -1)
                error("Can't read local variable in its own initializer.");
            return i;
        }
    }
    return -1;
}

static int add_upvalue(Compiler *compiler, uint8_t index, bool is_local)
{
    int count = compiler->function->upvalue_count;
    for (int i = 0; i < count; i++) {
        UpvalueRef *u = &compiler->upvalues[i];
        if (u->index == index && u->is_local == is_local)
            return i;
    }
    if (count == UINT8_COUNT) {
        error("Too many closure variables in function.");
        return 0;
    }
    compiler->upvalues[count].is_local = is_local;
    compiler->upvalues[count].index = index;
    return compiler->function->upvalue_count++;
}

/* The upvalue index of name in compiler, capturing it (through every
 * function in between) from the enclosing function that declares it; -1
 * if no enclosing function does. */
static int resolve_upvalue(Compiler *compiler, const Token *name)
{
    if (compiler->enclosing == NULL)
        return -1;
    int local = resolve_local(compiler->enclosing, name);
    if (local != -1) {
        compiler->enclosing->locals[local].captured = true;
        return add_upvalue(compiler, (uint8_t)local, true);
    }
    int upvalue = resolve_upvalue(compiler->enclosing, name);
    if (upvalue != -1)
        return add_upvalue(compiler, (uint8_t)upvalue, false);
    return -1;
}

static void add_local(Token name)
{
    if (current->local_count == UINT8_COUNT) {
        error("Too many local variables in function.");
        return;
    }
    Local *local = &current->locals[current->local_count++];
    local->name = name;
    local->depth = -1;
    local->captured = false;
}

/* Declares parser.previous as a local in the current scope (globals are
 * late-bound and need no declaration). */
static void declare_variable(void)
{
    if (current->scope_depth == 0)
        return;
    const Token *name = &parser.previous;
    for (int i = current->local_count - 1; i >= 0; i--) {
        Local *local = &current->locals[i];
        if (local->depth != -1 && local->depth < current->scope_depth)
            break;
        if (same_name(name, &local->name))
            error("Already a variable with this name in this scope.");
    }
    add_local(*name);
}

static uint8_t parse_variable(const char *message)
{
    consume(TOKEN_IDENTIFIER, message);
    declare_variable();
    if (current->scope_depth > 0)
        return 0;
    return identifier_constant(&parser.previous);
}

static void mark_initialized(void)
{
    if (current->scope_depth == 0)
        return;
    current->locals[current->local_count - 1].depth = current->scope_depth;
}

static void define_variable(uint8_t global)
{
    if (current->scope_depth > 0) {
        mark_initialized();
        return;
    }
    emit_op_arg(OP_DEFINE_GLOBAL, global);
}

/* ---- expressions ------------------------------------------------------------- */

static void expression(void);
static void statement(void);
static void declaration(void);
static const ParseRule *get_rule(TokenType type);
static void parse_precedence(Precedence precedence);

static uint8_t argument_list(void)
{
    int count = 0;
    if (!check(TOKEN_RIGHT_PAREN)) {
        do {
            expression();
            if (count == 255)
                error("Can't have more than 255 arguments.");
            count++;
        } while (match(TOKEN_COMMA));
    }
    consume(TOKEN_RIGHT_PAREN, "Expect ')' after arguments.");
    return (uint8_t)count;
}

static void named_variable(Token name, bool can_assign)
{
    OpCode get_op, set_op;
    int arg = resolve_local(current, &name);
    if (arg != -1) {
        get_op = OP_GET_LOCAL;
        set_op = OP_SET_LOCAL;
    } else if ((arg = resolve_upvalue(current, &name)) != -1) {
        get_op = OP_GET_UPVALUE;
        set_op = OP_SET_UPVALUE;
    } else {
        arg = identifier_constant(&name);
        get_op = OP_GET_GLOBAL;
        set_op = OP_SET_GLOBAL;
    }
    if (can_assign && match(TOKEN_EQUAL)) {
        expression();
        emit_op_arg(set_op, (uint8_t)arg);
    } else {
        emit_op_arg(get_op, (uint8_t)arg);
    }
}

static Token synthetic_token(const char *text)
{
    Token token = {TOKEN_IDENTIFIER, text, (int)strlen(text), parser.previous.line};
    return token;
}

static void grouping(bool can_assign)
{
    (void)can_assign;
    expression();
    consume(TOKEN_RIGHT_PAREN, "Expect ')' after expression.");
}

static void number(bool can_assign)
{
    (void)can_assign;
    emit_constant(NUMBER_VAL(strtod(parser.previous.start, NULL)));
}

static void string(bool can_assign)
{
    (void)can_assign;
    /* The token includes the quotes. */
    emit_constant(OBJ_VAL(string_copy(parser.previous.start + 1, parser.previous.length - 2)));
}

static void literal(bool can_assign)
{
    (void)can_assign;
    switch (parser.previous.type) {
    case TOKEN_FALSE: emit_op(OP_FALSE); break;
    case TOKEN_NIL: emit_op(OP_NIL); break;
    case TOKEN_TRUE: emit_op(OP_TRUE); break;
    default: return;
    }
}

static void variable(bool can_assign)
{
    named_variable(parser.previous, can_assign);
}

static void unary(bool can_assign)
{
    (void)can_assign;
    TokenType op = parser.previous.type;
    parse_precedence(PREC_UNARY);
    emit_op(op == TOKEN_MINUS ? OP_NEGATE : OP_NOT);
}

/* Lox has six comparison operators and three comparison instructions:
 * a != b is !(a == b), a >= b is !(a < b), a <= b is !(a > b). */
static void binary(bool can_assign)
{
    (void)can_assign;
    TokenType op = parser.previous.type;
    parse_precedence((Precedence)(get_rule(op)->precedence + 1));
    switch (op) {
    case TOKEN_BANG_EQUAL: emit_op(OP_EQUAL); emit_op(OP_NOT); break;
    case TOKEN_EQUAL_EQUAL: emit_op(OP_EQUAL); break;
    case TOKEN_GREATER: emit_op(OP_GREATER); break;
    case TOKEN_GREATER_EQUAL: emit_op(OP_LESS); emit_op(OP_NOT); break;
    case TOKEN_LESS: emit_op(OP_LESS); break;
    case TOKEN_LESS_EQUAL: emit_op(OP_GREATER); emit_op(OP_NOT); break;
    case TOKEN_PLUS: emit_op(OP_ADD); break;
    case TOKEN_MINUS: emit_op(OP_SUBTRACT); break;
    case TOKEN_STAR: emit_op(OP_MULTIPLY); break;
    case TOKEN_SLASH: emit_op(OP_DIVIDE); break;
    default: return;
    }
}

/* a and b: if a is falsey it is the result, else b is. */
static void and_(bool can_assign)
{
    (void)can_assign;
    int end = emit_jump(OP_JUMP_IF_FALSE);
    emit_op(OP_POP);
    parse_precedence(PREC_AND);
    patch_jump(end);
}

/* a or b: if a is truthy it is the result, else b is. */
static void or_(bool can_assign)
{
    (void)can_assign;
    int else_jump = emit_jump(OP_JUMP_IF_FALSE);
    int end = emit_jump(OP_JUMP);
    patch_jump(else_jump);
    emit_op(OP_POP);
    parse_precedence(PREC_OR);
    patch_jump(end);
}

static void call(bool can_assign)
{
    (void)can_assign;
    uint8_t argc = argument_list();
    emit_call(OP_CALL, 0, argc);
}

/* obj.name, obj.name = value, or obj.name(args) as one OP_INVOKE so the
 * method is called without allocating a bound method. */
static void dot(bool can_assign)
{
    consume(TOKEN_IDENTIFIER, "Expect property name after '.'.");
    uint8_t name = identifier_constant(&parser.previous);
    if (can_assign && match(TOKEN_EQUAL)) {
        expression();
        emit_op_arg(OP_SET_PROPERTY, name);
    } else if (match(TOKEN_LEFT_PAREN)) {
        uint8_t argc = argument_list();
        emit_call(OP_INVOKE, name, argc);
    } else {
        emit_op_arg(OP_GET_PROPERTY, name);
    }
}

static void this_(bool can_assign)
{
    (void)can_assign;
    if (current_class == NULL) {
        error("Can't use 'this' outside of a class.");
        return;
    }
    variable(false);
}

/* super.name is resolved statically: the superclass is captured in a
 * local named "super" in the scope around the class's methods. */
static void super_(bool can_assign)
{
    (void)can_assign;
    if (current_class == NULL)
        error("Can't use 'super' outside of a class.");
    else if (!current_class->has_superclass)
        error("Can't use 'super' in a class with no superclass.");
    consume(TOKEN_DOT, "Expect '.' after 'super'.");
    consume(TOKEN_IDENTIFIER, "Expect superclass method name.");
    uint8_t name = identifier_constant(&parser.previous);

    named_variable(synthetic_token("this"), false);
    if (match(TOKEN_LEFT_PAREN)) {
        uint8_t argc = argument_list();
        named_variable(synthetic_token("super"), false);
        emit_call(OP_SUPER_INVOKE, name, argc);
    } else {
        named_variable(synthetic_token("super"), false);
        emit_op_arg(OP_GET_SUPER, name);
    }
}

static const ParseRule rules[TOKEN_COUNT] = {
    [TOKEN_LEFT_PAREN] = {grouping, call, PREC_CALL},
    [TOKEN_DOT] = {NULL, dot, PREC_CALL},
    [TOKEN_MINUS] = {unary, binary, PREC_TERM},
    [TOKEN_PLUS] = {NULL, binary, PREC_TERM},
    [TOKEN_SLASH] = {NULL, binary, PREC_FACTOR},
    [TOKEN_STAR] = {NULL, binary, PREC_FACTOR},
    [TOKEN_BANG] = {unary, NULL, PREC_NONE},
    [TOKEN_BANG_EQUAL] = {NULL, binary, PREC_EQUALITY},
    [TOKEN_EQUAL_EQUAL] = {NULL, binary, PREC_EQUALITY},
    [TOKEN_GREATER] = {NULL, binary, PREC_COMPARISON},
    [TOKEN_GREATER_EQUAL] = {NULL, binary, PREC_COMPARISON},
    [TOKEN_LESS] = {NULL, binary, PREC_COMPARISON},
    [TOKEN_LESS_EQUAL] = {NULL, binary, PREC_COMPARISON},
    [TOKEN_IDENTIFIER] = {variable, NULL, PREC_NONE},
    [TOKEN_STRING] = {string, NULL, PREC_NONE},
    [TOKEN_NUMBER] = {number, NULL, PREC_NONE},
    [TOKEN_AND] = {NULL, and_, PREC_AND},
    [TOKEN_FALSE] = {literal, NULL, PREC_NONE},
    [TOKEN_NIL] = {literal, NULL, PREC_NONE},
    [TOKEN_OR] = {NULL, or_, PREC_OR},
    [TOKEN_SUPER] = {super_, NULL, PREC_NONE},
    [TOKEN_THIS] = {this_, NULL, PREC_NONE},
    [TOKEN_TRUE] = {literal, NULL, PREC_NONE},
};

static const ParseRule *get_rule(TokenType type)
{
    return &rules[type];
}

/* Parses an expression whose operators bind at least as tightly as
 * precedence. Assignment is only valid where the whole expression could
 * be an assignment; elsewhere a trailing '=' is an error. */
static void parse_precedence_nested(Precedence precedence);

static void parse_precedence(Precedence precedence)
{
    if (parser.depth == NESTING_MAX) {
        error_too_deep("Expression nested too deeply.");
        return;
    }
    parser.depth++;
    parse_precedence_nested(precedence);
    parser.depth--;
}

static void parse_precedence_nested(Precedence precedence)
{
    advance();
    ParseFn prefix = get_rule(parser.previous.type)->prefix;
    if (prefix == NULL) {
        error("Expect expression.");
        return;
    }
    bool can_assign = precedence <= PREC_ASSIGNMENT;
    prefix(can_assign);
    while (precedence <= get_rule(parser.current.type)->precedence) {
        advance();
        get_rule(parser.previous.type)->infix(can_assign);
    }
    if (can_assign && match(TOKEN_EQUAL))
        error("Invalid assignment target.");
}

static void expression(void)
{
    parse_precedence(PREC_ASSIGNMENT);
}

/* ---- declarations ---------------------------------------------------------- */

static void block(void)
{
    while (!check(TOKEN_RIGHT_BRACE) && !check(TOKEN_EOF))
        declaration();
    consume(TOKEN_RIGHT_BRACE, "Expect '}' after block.");
}

/* Compiles parameters and body into a new function, then emits the
 * OP_CLOSURE that creates it at run time with its captured upvalues. */
static void function(FunctionKind kind)
{
    int nesting = 0;
    for (const Compiler *c = current; c->enclosing; c = c->enclosing)
        nesting++;
    if (nesting == FUNCTION_NESTING_MAX) {
        error_too_deep("Functions nested too deeply.");
        return;
    }
    Compiler compiler;
    compiler_begin(&compiler, kind);
    begin_scope();

    consume(TOKEN_LEFT_PAREN, "Expect '(' after function name.");
    if (!check(TOKEN_RIGHT_PAREN)) {
        do {
            current->function->arity++;
            if (current->function->arity > 255)
                error_at_current("Can't have more than 255 parameters.");
            uint8_t param = parse_variable("Expect parameter name.");
            define_variable(param);
            adjust_stack(1); /* the caller pushed it */
        } while (match(TOKEN_COMMA));
    }
    consume(TOKEN_RIGHT_PAREN, "Expect ')' after parameters.");
    consume(TOKEN_LEFT_BRACE, "Expect '{' before function body.");
    block();

    /* No end_scope: the frame is discarded whole on return. */
    ObjFunction *fn = compiler_end();
    emit_op_arg(OP_CLOSURE, make_constant(OBJ_VAL(fn)));
    for (int i = 0; i < fn->upvalue_count; i++) {
        emit_byte(compiler.upvalues[i].is_local ? 1 : 0);
        emit_byte(compiler.upvalues[i].index);
    }
}

static void method(void)
{
    consume(TOKEN_IDENTIFIER, "Expect method name.");
    uint8_t name = identifier_constant(&parser.previous);
    FunctionKind kind = KIND_METHOD;
    if (parser.previous.length == 4 && memcmp(parser.previous.start, "init", 4) == 0)
        kind = KIND_INITIALIZER;
    function(kind);
    emit_op_arg(OP_METHOD, name);
}

static void class_declaration(void)
{
    consume(TOKEN_IDENTIFIER, "Expect class name.");
    Token class_name = parser.previous;
    uint8_t name = identifier_constant(&parser.previous);
    declare_variable();

    emit_op_arg(OP_CLASS, name);
    define_variable(name);

    ClassCompiler class_compiler = {current_class, false};
    current_class = &class_compiler;

    if (match(TOKEN_LESS)) {
        consume(TOKEN_IDENTIFIER, "Expect superclass name.");
        variable(false);
        if (same_name(&class_name, &parser.previous))
            error("A class can't inherit from itself.");
        begin_scope();
        add_local(synthetic_token("super"));
        define_variable(0);
        named_variable(class_name, false);
        emit_op(OP_INHERIT);
        class_compiler.has_superclass = true;
    }

    named_variable(class_name, false);
    consume(TOKEN_LEFT_BRACE, "Expect '{' before class body.");
    while (!check(TOKEN_RIGHT_BRACE) && !check(TOKEN_EOF))
        method();
    consume(TOKEN_RIGHT_BRACE, "Expect '}' after class body.");
    emit_op(OP_POP);

    if (class_compiler.has_superclass)
        end_scope();
    current_class = current_class->enclosing;
}

static void fun_declaration(void)
{
    uint8_t global = parse_variable("Expect function name.");
    /* A function may refer to itself: it is initialized before its body. */
    mark_initialized();
    function(KIND_FUNCTION);
    define_variable(global);
}

static void var_declaration(void)
{
    uint8_t global = parse_variable("Expect variable name.");
    if (match(TOKEN_EQUAL))
        expression();
    else
        emit_op(OP_NIL);
    consume(TOKEN_SEMICOLON, "Expect ';' after variable declaration.");
    define_variable(global);
}

static void expression_statement(void)
{
    expression();
    consume(TOKEN_SEMICOLON, "Expect ';' after expression.");
    emit_op(OP_POP);
}

/* for (init; cond; step) body. The step is compiled before the body in the
 * bytecode, so the body jumps back to the step, which loops to the test. */
static void for_statement(void)
{
    begin_scope();
    consume(TOKEN_LEFT_PAREN, "Expect '(' after 'for'.");
    if (match(TOKEN_SEMICOLON)) {
        /* no initializer */
    } else if (match(TOKEN_VAR)) {
        var_declaration();
    } else {
        expression_statement();
    }

    int loop_start = chunk()->count;
    int exit_jump = -1;
    if (!match(TOKEN_SEMICOLON)) {
        expression();
        consume(TOKEN_SEMICOLON, "Expect ';' after loop condition.");
        exit_jump = emit_jump(OP_JUMP_IF_FALSE);
        emit_op(OP_POP);
    }

    if (!match(TOKEN_RIGHT_PAREN)) {
        int body_jump = emit_jump(OP_JUMP);
        int step_start = chunk()->count;
        expression();
        emit_op(OP_POP);
        consume(TOKEN_RIGHT_PAREN, "Expect ')' after for clauses.");
        emit_loop(loop_start);
        loop_start = step_start;
        patch_jump(body_jump);
    }

    statement();
    emit_loop(loop_start);
    if (exit_jump != -1) {
        patch_jump(exit_jump);
        adjust_stack(1); /* the condition, on the exit path */
        emit_op(OP_POP);
    }
    end_scope();
}

static void if_statement(void)
{
    consume(TOKEN_LEFT_PAREN, "Expect '(' after 'if'.");
    expression();
    consume(TOKEN_RIGHT_PAREN, "Expect ')' after condition.");

    int then_jump = emit_jump(OP_JUMP_IF_FALSE);
    emit_op(OP_POP);
    statement();
    int else_jump = emit_jump(OP_JUMP);
    patch_jump(then_jump);
    adjust_stack(1); /* the condition, on the else path */
    emit_op(OP_POP);
    if (match(TOKEN_ELSE))
        statement();
    patch_jump(else_jump);
}

static void print_statement(void)
{
    expression();
    consume(TOKEN_SEMICOLON, "Expect ';' after value.");
    emit_op(OP_PRINT);
}

static void return_statement(void)
{
    if (current->kind == KIND_SCRIPT)
        error("Can't return from top-level code.");
    if (match(TOKEN_SEMICOLON)) {
        emit_return();
        return;
    }
    if (current->kind == KIND_INITIALIZER)
        error("Can't return a value from an initializer.");
    expression();
    consume(TOKEN_SEMICOLON, "Expect ';' after return value.");
    emit_op(OP_RETURN);
}

static void while_statement(void)
{
    int loop_start = chunk()->count;
    consume(TOKEN_LEFT_PAREN, "Expect '(' after 'while'.");
    expression();
    consume(TOKEN_RIGHT_PAREN, "Expect ')' after condition.");

    int exit_jump = emit_jump(OP_JUMP_IF_FALSE);
    emit_op(OP_POP);
    statement();
    emit_loop(loop_start);
    patch_jump(exit_jump);
    adjust_stack(1); /* the condition, on the exit path */
    emit_op(OP_POP);
}

/* Skip tokens until something that looks like the start of a statement. */
static void synchronize(void)
{
    parser.panic_mode = false;
    while (parser.current.type != TOKEN_EOF) {
        if (parser.previous.type == TOKEN_SEMICOLON)
            return;
        switch (parser.current.type) {
        case TOKEN_CLASS:
        case TOKEN_FUN:
        case TOKEN_VAR:
        case TOKEN_FOR:
        case TOKEN_IF:
        case TOKEN_WHILE:
        case TOKEN_PRINT:
        case TOKEN_RETURN:
            return;
        default:
            advance();
        }
    }
}

static void statement_nested(void);

static void statement(void)
{
    if (parser.depth == NESTING_MAX) {
        error_too_deep("Statements nested too deeply.");
        return;
    }
    parser.depth++;
    statement_nested();
    parser.depth--;
}

static void statement_nested(void)
{
    if (match(TOKEN_PRINT)) {
        print_statement();
    } else if (match(TOKEN_FOR)) {
        for_statement();
    } else if (match(TOKEN_IF)) {
        if_statement();
    } else if (match(TOKEN_RETURN)) {
        return_statement();
    } else if (match(TOKEN_WHILE)) {
        while_statement();
    } else if (match(TOKEN_LEFT_BRACE)) {
        begin_scope();
        block();
        end_scope();
    } else {
        expression_statement();
    }
}

static void declaration(void)
{
    if (match(TOKEN_CLASS))
        class_declaration();
    else if (match(TOKEN_FUN))
        fun_declaration();
    else if (match(TOKEN_VAR))
        var_declaration();
    else
        statement();
    if (parser.panic_mode)
        synchronize();
}

ObjFunction *compile(const char *source)
{
    scanner_init(source);
    Compiler compiler;
    current = NULL;
    current_class = NULL;
    parser.had_error = false;
    parser.panic_mode = false;
    parser.depth = 0;
    parser.gave_up = false;
    compiler_begin(&compiler, KIND_SCRIPT);

    advance();
    while (!match(TOKEN_EOF))
        declaration();
    ObjFunction *function = compiler_end();
    return parser.had_error ? NULL : function;
}
