/*
 * options.c - gc_options, environment variables and defaults.
 *
 * Environment variables (read only for fields left zero, and not at all
 * with GC_OPT_IGNORE_ENV):
 *   GC_PERCENT=N|off        heap growth percentage; off or < 0 disables
 *   GC_MEMORY_LIMIT=SIZE    soft limit, e.g. 512MiB, 2GiB, 100MB, 65536
 *   GC_TRACE=1              one line per cycle on stderr
 *   GC_DEBUG=a,b,c          verify, poison, stress=N
 *   GC_SUSPEND_SIGNAL=N     signal number used to stop threads
 *   GC_SCAVENGE_DELAY_MS=N  idle time before free pages go back to the OS
 *   GC_FINALIZER_THREAD=1   run finalizers on a spangc thread
 *   GC_MARKERS=N            threads that mark (1: the collecting one only)
 */
#include "options.h"

#include <errno.h>
#include <limits.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

SPANGC_STATE spangc_config spangc_cfg;

#define DEFAULT_GC_PERCENT      100
#define DEFAULT_SCAVENGE_DELAY  1000 /* ms */
#define DEFAULT_PROFILE_RATE    (512 * 1024)
#define DEFAULT_MIN_HEAP        ((uint64_t)4 << 20) /* [Go: heapminimum] */

bool spangc_parse_bytes(const char *s, uint64_t *out)
{
    if (*s < '0' || *s > '9')
        return false;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return false;
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {
        {"", 1},
        {"B", 1},
        {"KiB", 1ull << 10}, {"MiB", 1ull << 20}, {"GiB", 1ull << 30}, {"TiB", 1ull << 40},
        {"K", 1ull << 10},   {"M", 1ull << 20},   {"G", 1ull << 30},   {"T", 1ull << 40},
        {"KB", 1000ull},     {"MB", 1000000ull},  {"GB", 1000000000ull},
        {"TB", 1000000000000ull},
    };
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return false;
            *out = v * units[i].mult;
            return true;
        }
    }
    return false;
}

/* An environment variable, NULL if unset or empty. */
static const char *env_value(bool use_env, const char *name)
{
    const char *v = use_env ? getenv(name) : NULL;
    return v && *v ? v : NULL;
}

/* A decimal integer in [min, max]: the range is checked on the long, before
 * the caller narrows it, so that 4294967306 is not taken for 10. Nothing
 * before or after it: strtol would skip leading blanks and a '+', and
 * " 50" passed where "50 " did not. */
static bool parse_int(const char *s, long min, long max, long *out)
{
    if (*s != '-' && (*s < '0' || *s > '9'))
        return false;
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || end == s || *end || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* GC_DEBUG=verify,poison,stress=N */
static int parse_debug(const char *s, spangc_config *c)
{
    char buf[256];
    if (strlen(s) >= sizeof buf)
        return -EINVAL;
    strcpy(buf, s);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        long n;
        if (strcmp(tok, "verify") == 0)
            c->verify = true;
        else if (strcmp(tok, "poison") == 0)
            c->poison = true;
        else if (strncmp(tok, "stress=", 7) == 0 && parse_int(tok + 7, 0, UINT_MAX, &n))
            c->stress = (unsigned)n;
        else if (strcmp(tok, "stress") == 0)
            c->stress = 1;
        else
            return -EINVAL;
    }
    return 0;
}

int spangc_options_load(const gc_options *opts)
{
    gc_options o;
    memset(&o, 0, sizeof o);
    if (opts)
        o = *opts;
    spangc_config c;
    memset(&c, 0, sizeof c);
    if (o.flags & ~(unsigned)(GC_OPT_TRACE | GC_OPT_FINALIZER_THREAD | GC_OPT_NO_BACKGROUND_SWEEP |
                              GC_OPT_IGNORE_ENV))
        return -EINVAL;
    bool env = !(o.flags & GC_OPT_IGNORE_ENV);
    const char *v;
    long n;

    int percent = o.gc_percent ? o.gc_percent : DEFAULT_GC_PERCENT;
    if (!o.gc_percent && (v = env_value(env, "GC_PERCENT"))) {
        if (strcmp(v, "off") == 0)
            percent = -1;
        else if (parse_int(v, LONG_MIN, 1000000, &n))
            percent = n < 0 ? -1 : (n == 0 ? 1 : (int)n);
        else
            return -EINVAL;
    }
    c.gc_percent = (uintptr_t)(intptr_t)(percent < 0 ? -1 : percent);

    uint64_t limit = o.memory_limit;
    if (!limit && (v = env_value(env, "GC_MEMORY_LIMIT")) && !spangc_parse_bytes(v, &limit))
        return -EINVAL;
    c.memory_limit = limit;

    uint64_t min_heap = o.min_heap;
    if (!min_heap && (v = env_value(env, "GC_MIN_HEAP")) &&
        (!spangc_parse_bytes(v, &min_heap) || min_heap == 0))
        return -EINVAL;
    c.min_heap = min_heap ? min_heap : DEFAULT_MIN_HEAP;

    c.trace = o.flags & GC_OPT_TRACE;
    if (!c.trace && (v = env_value(env, "GC_TRACE")))
        c.trace = strcmp(v, "0") != 0 && *v;

    c.finalizer_thread = o.flags & GC_OPT_FINALIZER_THREAD;
    if (!c.finalizer_thread && (v = env_value(env, "GC_FINALIZER_THREAD")))
        c.finalizer_thread = strcmp(v, "0") != 0 && *v;

    c.background_sweep = !(o.flags & GC_OPT_NO_BACKGROUND_SWEEP);

    /* GC_DEBUG supplies the modes and the stress period that the options
     * leave unset: options.stress = 1 with GC_DEBUG=verify gives both. */
    if (o.debug & ~(unsigned)(GC_DEBUG_VERIFY | GC_DEBUG_POISON))
        return -EINVAL;
    spangc_config d;
    memset(&d, 0, sizeof d);
    if ((v = env_value(env, "GC_DEBUG")) && parse_debug(v, &d) != 0)
        return -EINVAL;
    c.verify = o.debug ? (o.debug & GC_DEBUG_VERIFY) != 0 : d.verify;
    c.poison = o.debug ? (o.debug & GC_DEBUG_POISON) != 0 : d.poison;
    c.stress = o.stress ? o.stress : d.stress;

    c.suspend_signal = o.suspend_signal ? o.suspend_signal : SIGPWR;
    if (!o.suspend_signal && (v = env_value(env, "GC_SUSPEND_SIGNAL"))) {
        if (!parse_int(v, 1, NSIG - 1, &n))
            return -EINVAL;
        c.suspend_signal = (int)n;
    }
    /* Refused here rather than by sigaction in spangc_threads_init, after
     * the heap is set up: glibc keeps the signals between the standard
     * ones and SIGRTMIN (32 and 33) for itself. */
    if (c.suspend_signal <= 0 || c.suspend_signal >= NSIG || c.suspend_signal == SIGKILL ||
        c.suspend_signal == SIGSTOP || c.suspend_signal == SIGSEGV || c.suspend_signal == SIGBUS ||
        (c.suspend_signal > SIGSYS && c.suspend_signal < SIGRTMIN))
        return -EINVAL;

    unsigned delay = o.scavenge_delay_ms ? o.scavenge_delay_ms : DEFAULT_SCAVENGE_DELAY;
    if (!o.scavenge_delay_ms && (v = env_value(env, "GC_SCAVENGE_DELAY_MS"))) {
        if (!parse_int(v, 0, UINT_MAX, &n))
            return -EINVAL;
        delay = (unsigned)n;
    }
    c.scavenge_delay_ns = (uint64_t)delay * 1000000u;

    c.mark_stack_limit = o.mark_stack_limit;
    c.markers = o.markers;
    if (!c.markers && (v = env_value(env, "GC_MARKERS"))) {
        /* Any count is taken, as in gc_options; at most MAX_MARKERS (gc/mark.c)
         * run. */
        if (!parse_int(v, 1, UINT_MAX, &n))
            return -EINVAL;
        c.markers = (unsigned)n;
    }
    c.oom_fn = o.oom_fn;
    c.profile_rate = DEFAULT_PROFILE_RATE;
    spangc_cfg = c;
    return 0;
}
