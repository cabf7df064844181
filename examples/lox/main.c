/*
 * main.c - the lox command: a REPL without a script, else run the script.
 *
 *   lox [options] [script.lox]
 *
 *   --gc-trace            spangc prints one line per collection on stderr
 *   --gc-stress           collect at every allocation (finds missing roots)
 *   --heap-profile FILE   sample allocations; write a pprof heap profile
 *                         to FILE at exit (google-pprof --text lox FILE);
 *                         FILE is opened before the script runs
 *   --stats               print the collector's statistics on stderr at exit
 *
 * Exit status: 0, 64 for bad usage, 65 for a compile error, 70 for a
 * runtime error, 74 when the script cannot be read or the heap profile
 * cannot be written.
 */
#include "common.h"
#include "intern.h"
#include "natives.h"
#include "object.h"
#include "vm.h"

#include <errno.h>
#include <spangc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct Flags {
    bool trace;
    bool stress;
    bool stats;
    const char *profile; /* heap profile output file, or NULL */
    const char *script;
} Flags;

/* Mean bytes between heap-profile samples: finer than spangc's default
 * (512 KiB), because Lox programs are small and their objects are too. */
#define PROFILE_RATE (16 * 1024)

static void usage(void)
{
    fprintf(stderr, "Usage: lox [--gc-trace] [--gc-stress] [--heap-profile FILE] [--stats] "
                    "[script.lox]\n");
    exit(EXIT_USAGE);
}

static Flags parse_flags(int argc, char **argv)
{
    Flags flags = {0};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--gc-trace") == 0)
            flags.trace = true;
        else if (strcmp(arg, "--gc-stress") == 0)
            flags.stress = true;
        else if (strcmp(arg, "--stats") == 0)
            flags.stats = true;
        else if (strcmp(arg, "--heap-profile") == 0 && i + 1 < argc && argv[i + 1][0] != '-')
            flags.profile = argv[++i];
        else if (arg[0] == '-' || flags.script)
            usage();
        else
            flags.script = arg;
    }
    return flags;
}

static void start_gc(const Flags *flags)
{
    gc_options opts = {0};
    if (flags->trace)
        opts.flags |= GC_OPT_TRACE;
    if (flags->stress)
        opts.stress = 1;
    /* Scripts are small: collect first at 1 MiB, as clox does, rather than
     * at spangc's default 4 MiB. GC_MIN_HEAP still overrides it (set and
     * not empty: spangc ignores an empty variable, and so must we). */
    const char *min_heap = getenv("GC_MIN_HEAP");
    if (!min_heap || !*min_heap)
        opts.min_heap = 1 << 20;
    /* Finalizers run on this thread, from gc_run_finalizers (natives.c:
     * openTemp counts the descriptors its finalizer closes, and gc() runs
     * the queued ones before it returns). A finalizer thread asked for in
     * the environment would run them on another thread, racing with both. */
    unsetenv("GC_FINALIZER_THREAD");
    int err = gc_init(&opts);
    if (err != 0) {
        fprintf(stderr, "lox: gc_init failed: %s\n", strerror(-err));
        exit(EXIT_RUNTIME_ERROR);
    }
    /* Before the first allocation: earlier objects are not sampled.
     * Without --heap-profile, sampling is off: spangc samples by default
     * (as Go does), and the first sample loads the unwinder and a bucket
     * table, about 250 KB that a small script would notice. */
    gc_set_profile_rate(flags->profile ? PROFILE_RATE : 0);
}

/* Opened before the script runs, so that a path that cannot be written is
 * known before the work is done. */
static FILE *open_profile(const char *path)
{
    FILE *out = fopen(path, "w");
    if (!out) {
        fprintf(stderr, "lox: cannot write heap profile \"%s\": %s\n", path, strerror(errno));
        exit(EXIT_IO_ERROR);
    }
    return out;
}

/* The profile describes the heap as of the last collection: collect first,
 * so it shows what the program holds at exit. False if it failed. */
static bool write_profile(FILE *out, const char *path)
{
    gc_collect();
    int err = gc_write_heap_profile(out);
    if (fclose(out) != 0 && err == 0)
        err = -EIO;
    if (err != 0)
        fprintf(stderr, "lox: writing heap profile \"%s\" failed: %s\n", path, strerror(-err));
    return err == 0;
}

/* The whole file, NUL-terminated, in a pointer-free spangc object. */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "Could not open file \"%s\".\n", path);
        exit(EXIT_IO_ERROR);
    }
    size_t capacity = 4096, length = 0;
    char *buffer = lox_grow_atomic(NULL, capacity);
    for (;;) {
        length += fread(buffer + length, 1, capacity - length - 1, f);
        if (length < capacity - 1)
            break;
        capacity *= 2;
        buffer = lox_grow_atomic(buffer, capacity);
    }
    if (ferror(f)) {
        fprintf(stderr, "Could not read file \"%s\".\n", path);
        exit(EXIT_IO_ERROR);
    }
    fclose(f);
    buffer[length] = '\0';
    return buffer;
}

static int run_file(const char *path)
{
    switch (vm_interpret(read_file(path))) {
    case INTERPRET_COMPILE_ERROR:
        return EXIT_COMPILE_ERROR;
    case INTERPRET_RUNTIME_ERROR:
        return EXIT_RUNTIME_ERROR;
    default:
        return 0;
    }
}

/* One line, of any length, at a time. The line is source text, not a Lox
 * object: the compiler copies what it keeps. */
static void repl(void)
{
    char *line = NULL;
    size_t capacity = 0;
    for (;;) {
        printf("> ");
        fflush(stdout);
        if (getline(&line, &capacity, stdin) < 0) {
            printf("\n");
            break;
        }
        vm_interpret(line);
    }
    free(line);
}

static void print_stats(void)
{
    gc_collect();
    gc_stats st;
    gc_get_stats(&st);
    InternStats is;
    intern_stats(&is);
    fprintf(stderr,
            "lox: heap statistics at exit (after a final collection)\n"
            "  collections      %llu (%llu forced)\n"
            "  pauses           %.3f ms total, %.3f ms max\n"
            "  allocated        %llu objects, %.1f KiB in total\n"
            "  live             %llu objects, %.1f KiB\n"
            "  heap             %.1f KiB from the OS, %.1f KiB returned, %.1f KiB in use\n"
            "  interned strings %zu live of %zu slots used, %zu capacity\n",
            (unsigned long long)st.num_gc, (unsigned long long)st.num_forced_gc,
            st.pause_total_ns / 1e6, st.max_pause_ns / 1e6, (unsigned long long)st.mallocs,
            st.total_alloc / 1024.0, (unsigned long long)st.heap_objects, st.heap_alloc / 1024.0,
            st.heap_sys / 1024.0, st.heap_released / 1024.0, st.heap_inuse / 1024.0, is.live,
            is.used, is.capacity);
}

int main(int argc, char **argv)
{
    Flags flags = parse_flags(argc, argv);
    FILE *profile = flags.profile ? open_profile(flags.profile) : NULL;
    start_gc(&flags);
    object_init_types();
    intern_init();
    vm_init();

    int status = 0;
    if (flags.script)
        status = run_file(flags.script);
    else
        repl();

    fflush(stdout);
    if (profile && !write_profile(profile, flags.profile) && status == 0)
        status = EXIT_IO_ERROR;
    if (flags.stats)
        print_stats();
    return status;
}
