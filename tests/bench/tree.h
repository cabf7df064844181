/*
 * tree.h - the binary tree of two-pointer nodes that binarytrees.c and
 * pauses.c build bottom-up (each node allocated with bench_alloc, so it is
 * scanned by the collectors).
 */
#ifndef BENCH_TREE_H
#define BENCH_TREE_H

#include "shim.h"

typedef struct node {
    struct node *left, *right;
} node;

/* A complete tree of the given depth (depth 0: one leaf). */
static node *bottom_up(int depth)
{
    node *n = bench_alloc(sizeof *n);
    if (depth > 0) {
        n->left = bottom_up(depth - 1);
        n->right = bottom_up(depth - 1);
    }
    return n;
}

#endif
