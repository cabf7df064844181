/*
 * profile_demo.c - a program for the google-pprof round trip
 * (tests/pprof_check.cmake): it samples every allocation, allocates in
 * two named functions, and writes the heap profile to argv[1].
 */
#include <spangc.h>

#include <stdio.h>
#include <string.h>

struct widget {
    struct widget *next;
    char *label;
    double price;
};

static struct widget *volatile catalog;

__attribute__((noinline)) static char *make_label(int i)
{
    char *s = gc_alloc_atomic(48);
    snprintf(s, 48, "widget #%d", i);
    return s;
}

__attribute__((noinline)) static void build_widget_catalog(int n)
{
    for (int i = 0; i < n; i++) {
        struct widget *w = gc_alloc(sizeof *w);
        w->label = make_label(i);
        w->price = i * 1.5;
        w->next = catalog;
        catalog = w;
    }
}

int main(int argc, char **argv)
{
    if (argc != 2 || gc_init(NULL) != 0)
        return 2;
    gc_set_profile_rate(1);
    build_widget_catalog(5000);
    gc_collect();
    FILE *f = fopen(argv[1], "w");
    if (!f || gc_write_heap_profile(f) != 0)
        return 1;
    fclose(f);
    return catalog ? 0 : 1;
}
