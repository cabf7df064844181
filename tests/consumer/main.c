/* Built against the installed spangc (tests/consumer/run.cmake). */
#include <spangc.h>

#include <stdio.h>
#include <string.h>

int main(void)
{
    char expect[32];
    snprintf(expect, sizeof expect, "%d.%d.%d", SPANGC_VERSION_MAJOR, SPANGC_VERSION_MINOR,
             SPANGC_VERSION_PATCH);
    if (strcmp(gc_version(), expect) != 0 || gc_init(NULL) != 0)
        return 1;
    char **v = gc_alloc(1000 * sizeof *v);
    for (int i = 0; i < 1000; i++)
        v[i] = gc_alloc_atomic(64);
    gc_collect();
    for (int i = 0; i < 1000; i++)
        if (gc_base(v[i] + 10) != v[i])
            return 2;
    gc_stats st;
    gc_get_stats(&st);
    printf("consumer ok: spangc %s, %llu objects\n", gc_version(),
           (unsigned long long)st.heap_objects);
    return st.heap_objects >= 1001 ? 0 : 3;
}
