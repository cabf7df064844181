/*
 * chunk.h - bytecode: the instruction set and the chunk that holds it.
 *
 * A chunk is one function's code. Its three arrays live on the spangc heap
 * and are reachable only through the ObjFunction that embeds the chunk:
 * the code and the line table are pointer-free (gc_alloc_atomic), the
 * constants are Values in an array whose every word is a pointer word.
 *
 * Operands follow the opcode: one byte for a constant, local, upvalue or
 * argument count; two bytes (big-endian) for a jump distance.
 */
#ifndef LOX_CHUNK_H
#define LOX_CHUNK_H

#include "common.h"
#include "value.h"

typedef enum OpCode {
    OP_CONSTANT,      /* [const]        push constants[const]                */
    OP_NIL,
    OP_TRUE,
    OP_FALSE,
    OP_POP,
    OP_GET_LOCAL,     /* [slot]                                              */
    OP_SET_LOCAL,     /* [slot]         leaves the value on the stack        */
    OP_GET_GLOBAL,    /* [name]                                              */
    OP_DEFINE_GLOBAL, /* [name]                                              */
    OP_SET_GLOBAL,    /* [name]                                              */
    OP_GET_UPVALUE,   /* [index]                                             */
    OP_SET_UPVALUE,   /* [index]                                             */
    OP_GET_PROPERTY,  /* [name]         instance -> field or bound method    */
    OP_SET_PROPERTY,  /* [name]         instance value -> value              */
    OP_GET_SUPER,     /* [name]         this superclass -> bound method      */
    OP_EQUAL,
    OP_GREATER,
    OP_LESS,
    OP_ADD,
    OP_SUBTRACT,
    OP_MULTIPLY,
    OP_DIVIDE,
    OP_NOT,
    OP_NEGATE,
    OP_PRINT,
    OP_JUMP,          /* [hi lo]        forward                              */
    OP_JUMP_IF_FALSE, /* [hi lo]        forward, leaves the condition        */
    OP_LOOP,          /* [hi lo]        backward                             */
    OP_CALL,          /* [argc]                                              */
    OP_INVOKE,        /* [name argc]    receiver.name(args) without binding  */
    OP_SUPER_INVOKE,  /* [name argc]    super.name(args), superclass on top  */
    OP_CLOSURE,       /* [fn (is_local index)*]                              */
    OP_CLOSE_UPVALUE,
    OP_RETURN,
    OP_CLASS,         /* [name]                                              */
    OP_INHERIT,       /* superclass subclass -> superclass                   */
    OP_METHOD,        /* [name]         class closure -> class               */
} OpCode;

typedef struct Chunk {
    int count;
    int capacity;
    uint8_t *code;
    int *lines; /* source line of each byte of code */
    ValueArray constants;
} Chunk;

void chunk_init(Chunk *chunk);
/* Appends one byte; may collect. */
void chunk_write(Chunk *chunk, uint8_t byte, int line);
/* Appends a constant and returns its index; may collect. */
int chunk_add_constant(Chunk *chunk, Value value);

#endif
