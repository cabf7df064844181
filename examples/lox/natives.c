/*
 * natives.c - the native functions: clock() from the book, plus natives
 * that expose the collector to Lox programs.
 *
 *   clock()      seconds of processor time used, as a number
 *   gc()         run a full collection now
 *   gcStats()    print a one-line summary of spangc's statistics on stderr
 *                (stderr, so a program's own output stays deterministic)
 *
 * None of these names is used by the conformance suite, and a script that
 * defines a global with the same name simply replaces the native.
 */
#include "natives.h"

#include "vm.h"

#include <spangc.h>
#include <time.h>

static bool native_clock(int argc, Value *args)
{
    (void)argc;
    args[-1] = NUMBER_VAL((double)clock() / CLOCKS_PER_SEC);
    return true;
}

static bool native_gc(int argc, Value *args)
{
    (void)argc;
    vm_clear_dead_slots();
    gc_collect();
    args[-1] = NIL_VAL;
    return true;
}

void natives_print_gc_summary(FILE *out)
{
    gc_stats st;
    gc_get_stats(&st);
    fprintf(out,
            "gc: %llu collections, heap %.1f KiB in %llu objects (%.1f KiB from the OS), "
            "%llu allocated in total, pauses %.3f ms (max %.3f ms)\n",
            (unsigned long long)st.num_gc, st.heap_alloc / 1024.0,
            (unsigned long long)st.heap_objects, st.heap_sys / 1024.0,
            (unsigned long long)st.mallocs, st.pause_total_ns / 1e6, st.max_pause_ns / 1e6);
}

static bool native_gc_stats(int argc, Value *args)
{
    (void)argc;
    natives_print_gc_summary(stderr);
    args[-1] = NIL_VAL;
    return true;
}

void natives_install(void)
{
    vm_define_native("clock", native_clock, 0);
    vm_define_native("gc", native_gc, 0);
    vm_define_native("gcStats", native_gc_stats, 0);
}
