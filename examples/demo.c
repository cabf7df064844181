/*
 * demo.c - the smallest useful spangc program: build lists that become
 * garbage, keep one alive, and print what the collector did.
 */
#include <spangc.h>

#include <stdio.h>
#include <string.h>

struct node {
    struct node *next;
    char *label;
    long value;
};

int main(void)
{
    if (gc_init(NULL) != 0) {
        fprintf(stderr, "demo: gc_init failed\n");
        return 1;
    }
    struct node *keep = NULL;
    for (int round = 0; round < 200; round++) {
        struct node *list = NULL;
        for (long i = 0; i < 10000; i++) {
            struct node *n = gc_alloc(sizeof *n);
            n->label = gc_alloc_atomic(16);
            snprintf(n->label, 16, "node %ld", i);
            n->value = i;
            n->next = list;
            list = n;
        }
        if (round == 0)
            keep = list; /* the first list stays reachable */
    }
    long sum = 0;
    for (struct node *n = keep; n; n = n->next)
        sum += n->value;

    gc_collect();
    gc_stats st;
    gc_get_stats(&st);
    printf("spangc %s\n", gc_version());
    printf("kept list: sum %ld, head \"%s\"\n", sum, keep->label);
    printf("allocated %llu objects (%llu MiB) in total\n", (unsigned long long)st.mallocs,
           (unsigned long long)(st.total_alloc >> 20));
    printf("collections: %llu, max pause %.3f ms\n", (unsigned long long)st.num_gc,
           st.max_pause_ns / 1e6);
    printf("live now: %llu objects, %llu KiB; heap from the OS: %llu MiB\n",
           (unsigned long long)st.heap_objects, (unsigned long long)(st.heap_alloc >> 10),
           (unsigned long long)(st.heap_sys >> 20));
    return 0;
}
