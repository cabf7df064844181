/*
 * chunk.c - growing a chunk's code, line table and constants.
 *
 * Arrays double when full. The old array is simply dropped: nothing else
 * points to it, so the collector reclaims it. gc_realloc keeps the kind of
 * the object it copies (atomic or typed), so only the first allocation of
 * each array has to say what it holds.
 */
#include "chunk.h"

#include "object.h"

#include <spangc.h>

void chunk_init(Chunk *chunk)
{
    chunk->count = 0;
    chunk->capacity = 0;
    chunk->code = NULL;
    chunk->lines = NULL;
    value_array_init(&chunk->constants);
}

void chunk_write(Chunk *chunk, uint8_t byte, int line)
{
    if (chunk->count == chunk->capacity) {
        int capacity = chunk->capacity < 8 ? 8 : chunk->capacity * 2;
        chunk->code = lox_grow_atomic(chunk->code, (size_t)capacity * sizeof *chunk->code);
        chunk->lines = lox_grow_atomic(chunk->lines, (size_t)capacity * sizeof *chunk->lines);
        chunk->capacity = capacity;
    }
    chunk->code[chunk->count] = byte;
    chunk->lines[chunk->count] = line;
    chunk->count++;
}

int chunk_add_constant(Chunk *chunk, Value value)
{
    value_array_write(&chunk->constants, value);
    return chunk->constants.count - 1;
}
