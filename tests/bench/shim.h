/*
 * shim.h - one tiny allocator interface so that every benchmark is one C
 * source that runs unchanged on each contender.
 *
 * Each benchmark is compiled once per contender, with exactly one of
 *
 *   BENCH_SPANGC    gc_alloc / gc_alloc_atomic, collection by spangc
 *   BENCH_BDWGC     GC_MALLOC / GC_MALLOC_ATOMIC (Boehm GC, bdw-gc)
 *   BENCH_MALLOC    glibc calloc / malloc + free
 *   BENCH_MIMALLOC  mi_zalloc / mi_malloc + mi_free
 *
 * defined, into its own executable (spangc and bdwgc both stop threads
 * with signals and must never share a process).
 *
 * bench_alloc returns zeroed memory that may hold pointers; bench_free is
 * a no-op for the two collectors, and benchmarks call it where a malloc
 * program would free. BENCH_IS_GC tells a benchmark whether the contender
 * collects at all.
 *
 * Pauses. spangc reports its stop-the-world pauses in gc_get_stats. For
 * bdwgc the shim installs a collection-event callback and times each stop
 * from GC_EVENT_PRE_STOP_WORLD to GC_EVENT_POST_START_WORLD, the same
 * window (suspend, mark, resume; bdwgc sweeps lazily afterwards, as spangc
 * does).
 *
 * Output. A benchmark ends with bench_result(), which prints one line
 *
 *   RESULT bench=NAME contender=C key=value ...
 *
 * that tests/bench/run parses (with the peak RSS of the process and, for
 * the collectors, collections and pauses). Anything else on stdout is for
 * humans.
 */
#ifndef BENCH_SHIM_H
#define BENCH_SHIM_H

#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#if defined(BENCH_SPANGC) + defined(BENCH_BDWGC) + defined(BENCH_MALLOC) +                \
        defined(BENCH_MIMALLOC) != 1
#error "define exactly one of BENCH_SPANGC, BENCH_BDWGC, BENCH_MALLOC, BENCH_MIMALLOC"
#endif

/* ---- helpers shared by every benchmark ------------------------------------ */

static inline uint64_t bench_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* A failed self-check: the run is worthless, say so and exit non-zero. */
static void bench_fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));
static void bench_fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("CHECK FAILED: ", stdout);
    vprintf(fmt, ap);
    fputs("\n", stdout);
    va_end(ap);
    fflush(stdout);
    exit(2);
}

static void bench_oom(size_t size)
{
    printf("OUT OF MEMORY allocating %zu bytes\n", size);
    fflush(stdout);
    exit(3);
}

/* p, or the run ends if the allocation failed. */
static inline void *bench_checked(void *p, size_t size)
{
    if (__builtin_expect(!p, 0))
        bench_oom(size);
    return p;
}

typedef struct bench_stats {
    uint64_t num_gc;
    uint64_t pause_total_ns;
    uint64_t last_pause_ns;
    uint64_t max_pause_ns;
    uint64_t heap_sys; /* bytes the allocator holds from the OS, 0 if unknown */
} bench_stats;

/* ---- spangc ----------------------------------------------------------------- */
#if defined(BENCH_SPANGC)
#include <spangc.h>

#define BENCH_CONTENDER "spangc"
#define BENCH_IS_GC 1

static inline void bench_init(void)
{
    int err = gc_init(NULL);
    if (err) {
        printf("gc_init failed: %d\n", err);
        exit(3);
    }
}
static inline void bench_threads_init(void) {}
static inline void bench_thread_begin(void)
{
    int err = gc_register_thread();
    if (err)
        bench_fail("gc_register_thread: %d", err);
}
static inline void bench_thread_end(void)
{
    gc_unregister_thread();
}
static inline void *bench_alloc(size_t n) { return bench_checked(gc_alloc(n), n); }
static inline void *bench_alloc_atomic(size_t n) { return bench_checked(gc_alloc_atomic(n), n); }
static inline void bench_free(void *p) { (void)p; }
static inline void bench_collect(void) { gc_collect(); }
static inline void bench_disable(void) { gc_disable(); }
static inline void bench_enable(void) { gc_enable(); }
static inline void bench_get_stats(bench_stats *out)
{
    gc_stats st;
    gc_get_stats(&st);
    out->num_gc = st.num_gc;
    out->pause_total_ns = st.pause_total_ns;
    out->last_pause_ns = st.last_pause_ns;
    out->max_pause_ns = st.max_pause_ns;
    out->heap_sys = st.heap_sys;
}
static inline const char *bench_version(void) { return gc_version(); }

/* ---- bdwgc ------------------------------------------------------------------ */
#elif defined(BENCH_BDWGC)
#define GC_THREADS
#define GC_NO_THREAD_REDIRECTS /* threads register themselves, as in spangc */
#include <gc.h>

#define BENCH_CONTENDER "bdwgc"
#define BENCH_IS_GC 1

/* Pause bookkeeping, written by the event callback (which bdwgc calls with
 * its allocation lock held, so there is one writer at a time). */
static struct {
    uint64_t stop_start, count, total, last, max;
} bench_bdw_pause;

static void GC_CALLBACK bench_bdw_event(GC_EventType e)
{
    if (e == GC_EVENT_PRE_STOP_WORLD) {
        bench_bdw_pause.stop_start = bench_now_ns();
    } else if (e == GC_EVENT_POST_START_WORLD && bench_bdw_pause.stop_start) {
        uint64_t d = bench_now_ns() - bench_bdw_pause.stop_start;
        bench_bdw_pause.stop_start = 0;
        bench_bdw_pause.count++;
        bench_bdw_pause.total += d;
        bench_bdw_pause.last = d;
        if (d > bench_bdw_pause.max)
            bench_bdw_pause.max = d;
    }
}

static inline void bench_init(void)
{
    GC_INIT();
    GC_set_on_collection_event(bench_bdw_event);
}
/* Before the first extra thread; this also starts bdwgc's parallel marker
 * threads (one per core), which single-threaded programs do not get. */
static inline void bench_threads_init(void) { GC_allow_register_threads(); }
static inline void bench_thread_begin(void)
{
    struct GC_stack_base sb;
    if (GC_get_stack_base(&sb) != GC_SUCCESS)
        bench_fail("GC_get_stack_base");
    int r = GC_register_my_thread(&sb);
    if (r != GC_SUCCESS)
        bench_fail("GC_register_my_thread: %d", r);
}
static inline void bench_thread_end(void) { GC_unregister_my_thread(); }
static inline void *bench_alloc(size_t n) { return bench_checked(GC_MALLOC(n), n); }
static inline void *bench_alloc_atomic(size_t n) { return bench_checked(GC_MALLOC_ATOMIC(n), n); }
static inline void bench_free(void *p) { (void)p; }
static inline void bench_collect(void) { GC_gcollect(); }
static inline void bench_disable(void) { GC_disable(); }
static inline void bench_enable(void) { GC_enable(); }
static inline void bench_get_stats(bench_stats *out)
{
    out->num_gc = GC_get_gc_no();
    out->pause_total_ns = bench_bdw_pause.total;
    out->last_pause_ns = bench_bdw_pause.last;
    out->max_pause_ns = bench_bdw_pause.max;
    out->heap_sys = GC_get_heap_size() + GC_get_unmapped_bytes();
}
static inline const char *bench_version(void)
{
    static char buf[32];
    unsigned v = GC_get_version();
    snprintf(buf, sizeof buf, "%u.%u.%u", v >> 16, (v >> 8) & 0xff, v & 0xff);
    return buf;
}

/* ---- glibc malloc ------------------------------------------------------------ */
#elif defined(BENCH_MALLOC)
#include <gnu/libc-version.h>

#define BENCH_CONTENDER "malloc"
#define BENCH_IS_GC 0

static inline void bench_init(void) {}
static inline void bench_threads_init(void) {}
static inline void bench_thread_begin(void) {}
static inline void bench_thread_end(void) {}
static inline void *bench_alloc(size_t n) { return bench_checked(calloc(1, n), n); }
static inline void *bench_alloc_atomic(size_t n) { return bench_checked(malloc(n), n); }
static inline void bench_free(void *p) { free(p); }
static inline void bench_collect(void) {}
static inline void bench_disable(void) {}
static inline void bench_enable(void) {}
static inline void bench_get_stats(bench_stats *out) { memset(out, 0, sizeof *out); }
static inline const char *bench_version(void) { return gnu_get_libc_version(); }

/* ---- mimalloc ---------------------------------------------------------------- */
#elif defined(BENCH_MIMALLOC)
#include <mimalloc.h>

#define BENCH_CONTENDER "mimalloc"
#define BENCH_IS_GC 0

static inline void bench_init(void) {}
static inline void bench_threads_init(void) {}
static inline void bench_thread_begin(void) {}
static inline void bench_thread_end(void) {}
static inline void *bench_alloc(size_t n) { return bench_checked(mi_zalloc(n), n); }
static inline void *bench_alloc_atomic(size_t n) { return bench_checked(mi_malloc(n), n); }
static inline void bench_free(void *p) { mi_free(p); }
static inline void bench_collect(void) {}
static inline void bench_disable(void) {}
static inline void bench_enable(void) {}
static inline void bench_get_stats(bench_stats *out) { memset(out, 0, sizeof *out); }
static inline const char *bench_version(void)
{
    static char buf[16];
    int v = mi_version();
    snprintf(buf, sizeof buf, "%d.%d.%d", v / 100, v / 10 % 10, v % 10);
    return buf;
}
#endif

/* ---- the result line ---------------------------------------------------------- */

/* Peak RSS of this process image in KiB (VmHWM), or 0. Not ru_maxrss:
 * that also counts the parent's pages the child had before exec, which
 * for a child of python3 is some 17 MB. */
static long bench_peak_rss_kb(void)
{
    FILE *f = fopen("/proc/self/status", "r");
    char line[256];
    long kb = 0;
    while (f && fgets(line, sizeof line, f))
        if (!strncmp(line, "VmHWM:", 6))
            kb = atol(line + 6);
    if (f)
        fclose(f);
    return kb;
}

/* Print "RESULT bench=NAME contender=C <extra> gcs=.. max_pause_us=.. ..."
 * where extra is printf-formatted "key=value" pairs. */
static void bench_result(const char *name, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void bench_result(const char *name, const char *fmt, ...)
{
    bench_stats st;
    bench_get_stats(&st);
    printf("RESULT bench=%s contender=%s version=%s ", name, BENCH_CONTENDER, bench_version());
    va_list ap;
    va_start(ap, fmt);
    vprintf(fmt, ap);
    va_end(ap);
    printf(" peak_rss_kb=%ld", bench_peak_rss_kb());
    if (BENCH_IS_GC)
        printf(" gcs=%llu max_pause_us=%.1f pause_total_ms=%.1f heap_sys_mb=%.1f",
               (unsigned long long)st.num_gc, st.max_pause_ns / 1e3, st.pause_total_ns / 1e6,
               st.heap_sys / 1048576.0);
    printf("\n");
    fflush(stdout);
}

/* Parse a positive count such as 20000000, 2e7 or 20M. */
static inline uint64_t bench_parse_count(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (*end == 'K' || *end == 'k')
        v *= 1e3, end++;
    else if (*end == 'M')
        v *= 1e6, end++;
    if (*end || v < 1)
        bench_fail("bad count: %s", s);
    return (uint64_t)v;
}

#endif /* BENCH_SHIM_H */
