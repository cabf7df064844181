/*
 * value.c - value arrays and printing values.
 */
#include "value.h"

#include "object.h"

#include <stdio.h>

void value_array_init(ValueArray *array)
{
    array->count = 0;
    array->capacity = 0;
    array->values = NULL;
}

void value_array_write(ValueArray *array, Value value)
{
    if (array->count == array->capacity) {
        int capacity = array->capacity < 8 ? 8 : array->capacity * 2;
        array->values =
            lox_grow_array(array->values, (size_t)capacity * sizeof(Value), value_array_type);
        array->capacity = capacity;
    }
    array->values[array->count++] = value;
}

void print_value(Value value)
{
    if (IS_NUMBER(value))
        printf("%g", AS_NUMBER(value));
    else if (IS_OBJ(value))
        print_object(value);
    else if (IS_NIL(value))
        printf("nil");
    else
        printf(AS_BOOL(value) ? "true" : "false");
}
