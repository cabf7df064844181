/*
 * fuzz_lox.c - a libFuzzer target that runs its input as a Lox program on
 * the example VM (examples/lox), whose every object lives on spangc.
 *
 * What it finds: memory errors and undefined behaviour (ASan, UBSan) in
 * the scanner, compiler, VM and collector; objects freed while the VM still
 * uses them (a missing root shows up as a use of poisoned memory, since
 * the collector runs every few dozen allocations and poisons what it
 * frees); the collector's own consistency checks (verify mode). Compile
 * errors and runtime errors are ordinary outcomes.
 *
 * Bounded work: every program gets the same small step limit (calls and
 * backward jumps, vm_limits in vm.h) and a cap on string length, so each
 * input ends quickly and in little memory. Between inputs the VM forgets
 * its globals (vm_reset) and the collector's stress count is brought back
 * to the same point, so an input behaves the same alone as in a run.
 *
 * Environment (read once at start-up):
 *   SPANGC_FUZZ_STRESS=N    collect every N allocations (default 32, 0 off)
 *   SPANGC_FUZZ_DEBUG=0|1|2 0: none, 1: poison (default), 2: verify+poison
 *   SPANGC_FUZZ_STEPS=N     the step limit (default 2000)
 *   SPANGC_FUZZ_OUTPUT=1    keep the program's output and error messages
 */
#include "intern.h"
#include "natives.h"
#include "object.h"
#include "vm.h"

#include <spangc.h>

#include "fuzz_env.h"
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Long enough for any string a short program means to build; short enough
 * that a loop doubling one stays small. */
#define FUZZ_STRING_MAX 4096

static unsigned stress;
static FILE *devnull; /* NULL: output is kept */

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void die(const char *what)
{
    fprintf(stderr, "fuzz_lox: %s\n", what);
    abort();
}

/* Allocate up to the next stress collection (or collect), so that the
 * stress count starts from zero: an input then collects at the same points
 * whether it runs first (reproducing a crash from its file) or after
 * others in a fuzzing run. */
static void collect_to_stress_boundary(void)
{
    if (!stress) {
        gc_collect();
        return;
    }
    gc_stats s;
    gc_get_stats(&s);
    uint64_t n = s.num_gc;
    for (unsigned k = 0; k <= stress && s.num_gc == n; k++) {
        (void)!gc_alloc_atomic(16);
        gc_get_stats(&s);
    }
    if (s.num_gc == n)
        die("no stress collection");
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *v;
    unsigned debug;
    fuzz_read_env(&stress, &debug);
    vm_limits.steps = 2000;
    if ((v = getenv("SPANGC_FUZZ_STEPS")))
        vm_limits.steps = strtoul(v, NULL, 10);
    vm_limits.string_length = FUZZ_STRING_MAX;

    /* Without the background sweeper, what is freed when depends only on
     * the input: a crash reproduces from its file. */
    gc_options o = {
        .flags = GC_OPT_IGNORE_ENV | GC_OPT_NO_BACKGROUND_SWEEP,
        .debug = debug,
        .stress = stress,
    };
    if (gc_init(&o) != 0)
        die("gc_init failed");
    object_init_types();
    intern_init();
    vm_init();
    collect_to_stress_boundary();

    if (!((v = getenv("SPANGC_FUZZ_OUTPUT")) && *v == '1')) {
        /* libFuzzer reports on stderr, the sanitizers on descriptor 2:
         * only the C streams the VM prints through are redirected. */
        devnull = fopen("/dev/null", "w");
        if (!devnull || !freopen("/dev/null", "w", stdout))
            die("cannot open /dev/null");
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* The scanner wants a NUL-terminated string; a NUL inside the input
     * just ends the program there. */
    char *source = malloc(size + 1);
    if (!source)
        die("out of memory");
    memcpy(source, data, size);
    source[size] = '\0';

    FILE *err = stderr;
    if (devnull)
        stderr = devnull;
    vm_interpret(source);
    fflush(stdout);
    stderr = err;
    free(source);

    vm_reset();
    /* The collection frees this program's objects; the finalizers of its
     * temporary files close them. */
    collect_to_stress_boundary();
    gc_run_finalizers();
    return 0;
}

/* Conservative scanning needs every frame on the real stack: a fake stack
 * for use-after-return detection lives in memory spangc does not scan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_stack_use_after_return=0";
}
