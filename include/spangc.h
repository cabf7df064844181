/*
 * spangc.h - the whole public interface of spangc, a garbage-collected heap
 * for C programs: language runtimes, interpreters, and programs that want
 * malloc without free.
 *
 * Quick start:
 *
 *     #include <spangc.h>
 *
 *     int main(void) {
 *         gc_init(NULL);                    // once, from the main thread
 *         char **v = gc_alloc(10 * sizeof *v);
 *         v[0] = gc_alloc_atomic(100);      // pointer-free memory
 *         ...                               // never call free()
 *     }
 *
 * Conventions
 *  - Functions that can fail return int: 0 on success, a negative errno
 *    value on failure (-EINVAL, -ENOMEM, -EEXIST, -ENOENT, -EPERM, and
 *    -EFAULT and -EIO where a function says so). They never abort on bad
 *    input.
 *  - Allocation returns NULL on failure. For out-of-memory that happens
 *    only after one forced collection and after the out-of-memory hook
 *    (gc_options.oom_fn) ran; errno is then ENOMEM. A size no heap could
 *    hold (over the machine's RAM plus swap, e.g. SIZE_MAX) fails at once
 *    with ENOMEM, without the collection or the hook. Calls before gc_init or from an
 *    unregistered thread return NULL with errno EPERM.
 *  - Before gc_init, and from a thread that is not registered (which must
 *    hold no heap pointers), nothing can be a heap object: gc_size gives
 *    0, gc_base and gc_weak_get NULL, gc_run_finalizers 0, and functions
 *    that take an object fail with EPERM. gc_type_new, gc_add_roots (after
 *    gc_init), gc_collect and the statistics work from any thread.
 *  - Every object returned by an allocation function is zeroed, aligned to
 *    at least 16 bytes, and stays alive while any word in a root, a stack,
 *    a register or another live scanned object points anywhere inside it.
 *    A pointer just past the end of an object does not keep it alive.
 *  - Heap corruption the collector detects ends the process with one line
 *    on stderr that starts "spangc: fatal:".
 *
 * "May collect" below means the call can run a garbage collection, so a
 * pointer the program holds only in memory spangc does not scan (malloc'd
 * memory, a file) must not be relied on across it.
 */
#ifndef SPANGC_H
#define SPANGC_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The version is written here once; CMake reads it from these lines. */
#define SPANGC_VERSION_MAJOR 0
#define SPANGC_VERSION_MINOR 1
#define SPANGC_VERSION_PATCH 0

#if defined(__GNUC__)
#define SPANGC_API __attribute__((visibility("default")))
#define SPANGC_MALLOC __attribute__((malloc, warn_unused_result))
#else
#define SPANGC_API
#define SPANGC_MALLOC
#endif

/* "MAJOR.MINOR.PATCH" of the library actually linked, which can differ from
 * the SPANGC_VERSION_* macros of the header a program was compiled with. */
SPANGC_API const char *gc_version(void);

/* ------------------------------------------------------------------------
 * Lifecycle
 * ------------------------------------------------------------------------ */

/* Bits of gc_options.flags. */
#define GC_OPT_TRACE            0x1u /* one line per cycle on stderr (GC_TRACE=1)     */
#define GC_OPT_FINALIZER_THREAD 0x2u /* run finalizers on a spangc thread             */
#define GC_OPT_NO_BACKGROUND_SWEEP 0x4u /* no sweeper thread: allocation sweeps lazily */
#define GC_OPT_IGNORE_ENV       0x8u /* do not read GC_* environment variables        */

/* Bits of gc_options.debug (also GC_DEBUG=verify,poison,stress=N). */
#define GC_DEBUG_VERIFY 0x1u /* re-mark after every mark and check every sweep  */
#define GC_DEBUG_POISON 0x2u /* fill freed slots, check the fill on allocation  */

/* Options for gc_init. Every field left zero takes its default: the value
 * of the environment variable named beside it if that is set (unless
 * GC_OPT_IGNORE_ENV), else the built-in default. debug and stress are
 * filled from GC_DEBUG separately: stress = 1 with GC_DEBUG=verify gives
 * both. */
typedef struct gc_options {
    int gc_percent;         /* GC_PERCENT: heap growth between collections in
                               percent of the live heap (default 100); negative
                               (or GC_PERCENT=off) disables automatic cycles   */
    uint64_t memory_limit;  /* GC_MEMORY_LIMIT (e.g. 512MiB): soft limit on the
                               memory spangc maps; collect earlier near it     */
    unsigned flags;         /* GC_OPT_* bits                                   */
    unsigned debug;         /* GC_DEBUG_* bits (GC_DEBUG)                      */
    unsigned stress;        /* collect every N allocations (GC_DEBUG=stress=N) */
    int suspend_signal;     /* GC_SUSPEND_SIGNAL: signal that stops threads for
                               marking (default SIGPWR)                        */
    unsigned scavenge_delay_ms; /* free pages idle this long go back to the OS
                                   (GC_SCAVENGE_DELAY_MS, default 1000)        */
    size_t mark_stack_limit;    /* bytes of mark stack before spangc falls back
                                   to rescanning (0: only memory limits it)    */
    unsigned markers;           /* GC_MARKERS: threads that mark while the world
                                   is stopped, the collecting one included
                                   (default: one per CPU the process may use -
                                   affinity mask, cgroup quota - at most 8)    */
    void (*oom_fn)(size_t size); /* called once before an allocation of size
                                    bytes returns NULL; it may release memory  */
    uint64_t min_heap;      /* GC_MIN_HEAP (e.g. 1MiB): the smallest collection
                               goal; no automatic cycle runs before the heap
                               holds this much (default 4MiB)                  */
} gc_options;

/* Initialize the collector. opts NULL means all defaults (and the
 * environment). Call once, from the main thread, before anything else; the
 * calling thread becomes registered and its stack bottom is found here.
 * Returns 0, -EEXIST on a second call, -EINVAL for an option out of range
 * (an unknown signal, a malformed GC_* variable), -ENOMEM. */
SPANGC_API int gc_init(const gc_options *opts);

/* ------------------------------------------------------------------------
 * Allocation (may collect)
 * ------------------------------------------------------------------------ */

/* A zeroed object of at least size bytes (size 0 gives a unique object),
 * scanned conservatively: every aligned word in it that points into a live
 * object keeps that object alive. */
SPANGC_API SPANGC_MALLOC void *gc_alloc(size_t size);

/* Like gc_alloc, for memory that holds no pointers (strings, numbers,
 * bytecode): it is never scanned, which makes marking cheaper and stops
 * integers from keeping garbage alive by accident. */
SPANGC_API SPANGC_MALLOC void *gc_alloc_atomic(size_t size);

/* A precise object layout: which words of an object may hold pointers.
 * Build one per kind of object, once (it lives until the process ends):
 *
 *     struct node { double key; struct node *left, *right; char tag; };
 *     static const gc_type *node_type;
 *     node_type = GC_TYPE(struct node, offsetof(struct node, left),
 *                                      offsetof(struct node, right));
 *
 * size is the size of one element (sizeof the struct); offsets are byte
 * offsets of pointer words, each a multiple of sizeof(void *) and below
 * size, in any order. An object allocated with gc_alloc_typed(n * size,
 * type) is an array: the layout repeats every size bytes, up to the end of
 * the object. Only the listed words are looked at when marking; each is
 * still checked like a conservative word (it may be NULL, a tagged value or
 * point inside an object). A layout with no pointer words is allowed and
 * allocates pointer-free (atomic) objects. A type is never freed: make
 * each layout once, not per object or per interpreter instance (a process
 * has room for some 300,000: 16 MiB).
 * It may be called from any thread, also before gc_init.
 * Returns NULL with errno EINVAL (size 0, pointer_offsets NULL with count
 * above 0, more offsets than words, an offset out of range or misaligned,
 * pointer words in a size that is not a multiple of sizeof(void *): a
 * packed struct) or ENOMEM. */
typedef struct gc_type gc_type;
SPANGC_API const gc_type *gc_type_new(size_t size, const size_t *pointer_offsets,
                                      size_t count);
#define GC_TYPE(T, ...)                                                        \
    gc_type_new(sizeof(T), (const size_t[]){__VA_ARGS__},                      \
                sizeof((const size_t[]){__VA_ARGS__}) / sizeof(size_t))

/* A zeroed object scanned precisely with type (see gc_type_new). type NULL
 * or not made by gc_type_new gives NULL with errno EINVAL. */
SPANGC_API SPANGC_MALLOC void *gc_alloc_typed(size_t size, const gc_type *type);

/* Like realloc: a new object of size bytes of the same kind as p (scanned,
 * atomic or typed) holding p's contents (up to size bytes), or p itself if
 * it is big enough and size is at least half of gc_size(p), or the new
 * object would be no smaller than p (bytes past size are then cleared);
 * shrinking can therefore move the object, and fail. A weak handle is
 * always copied, and the copy is no handle. p NULL is gc_alloc(size). The
 * old object is not freed: the collector reclaims it when it is unreachable.
 * p not the base of a live heap object (an interior, freed, stack, static
 * or malloc'd address) gives NULL with errno EINVAL; out of memory gives
 * NULL with errno ENOMEM and leaves p as it was. */
SPANGC_API void *gc_realloc(void *p, size_t size);

/* Usable size of the object whose base is p (at least what was asked for);
 * 0 if p is not the base of a live heap object. */
SPANGC_API size_t gc_size(const void *p);

/* Base of the heap object containing p (interior pointers welcome), or
 * NULL if p does not point into an allocated object. */
SPANGC_API void *gc_base(const void *p);

/* ------------------------------------------------------------------------
 * Collection
 * ------------------------------------------------------------------------ */

/* A full collection now. It also finishes sweeping before it returns, so
 * gc_get_stats is exact afterwards. Any thread may call it, also a
 * finalizer. Two threads calling it at once cause one collection. */
SPANGC_API void gc_collect(void);

/* gc_disable stops automatic collections until the matching gc_enable;
 * calls nest, and a gc_enable without a gc_disable is ignored. gc_collect
 * still collects. */
SPANGC_API void gc_disable(void);
SPANGC_API void gc_enable(void);

/* Set the heap growth between collections (the GC_PERCENT option) and
 * return the previous value. A negative value turns automatic collection
 * off (and reads back as -1); 0 collects whenever the heap grows past the
 * live data. The next collection's goal changes at once. Before gc_init
 * this and gc_set_memory_limit do nothing (gc_init sets the options: use
 * gc_options) and return 0. */
SPANGC_API int gc_set_percent(int percent);

/* Set the soft memory limit in bytes (the GC_MEMORY_LIMIT option; 0 for
 * none) and return the previous one. Under a limit this call and
 * gc_set_percent first finish sweeping the last collection's garbage (at
 * most one pass over the heap), so that the new goal counts the memory
 * that collection freed. */
SPANGC_API uint64_t gc_set_memory_limit(uint64_t bytes);

/* ------------------------------------------------------------------------
 * Roots outside the heap, stacks and program data segments
 * ------------------------------------------------------------------------
 * The data and bss segments of the program and of every loaded shared
 * library, and registered threads' stacks, registers and thread-local
 * variables, are scanned without being added. Memory from malloc or mmap is
 * not: add it here if it holds the only pointer to an object. */

/* Scan [start, start+len) conservatively at every collection. Returns 0,
 * -EINVAL (NULL start, len 0, a range that wraps around the address space,
 * or a range overlapping the GC heap), -EFAULT if part of the range is not
 * mapped or not readable, -EEXIST if a range starting at start is already
 * added, -EPERM before gc_init, -ENOMEM. Any thread may call it. The range
 * must stay mapped and readable until gc_remove_roots. */
SPANGC_API int gc_add_roots(void *start, size_t len);

/* Stop scanning the range added with this start. -ENOENT if none was. */
SPANGC_API int gc_remove_roots(void *start);

/* ------------------------------------------------------------------------
 * Threads
 * ------------------------------------------------------------------------
 * Every thread other than the one that called gc_init registers before it
 * allocates or holds a heap pointer. Registered threads are stopped for
 * marking with a signal (gc_options.suspend_signal), without cooperation;
 * their stacks, registers and thread-local variables are scanned. */

/* Register the calling thread. 0, -EEXIST if it already is, -EPERM before
 * gc_init, -ENOMEM. */
SPANGC_API int gc_register_thread(void);

/* Unregister the calling thread; it must hold no heap pointers afterwards.
 * A thread that exits registered is unregistered automatically.
 * 0, or -EINVAL if the thread is not registered. */
SPANGC_API int gc_unregister_thread(void);

/* ------------------------------------------------------------------------
 * Specials: finalizers, weak handles, heap profiling
 * ------------------------------------------------------------------------ */

typedef void (*gc_finalizer_fn)(void *obj, void *arg);

/* Arrange for fn(obj, arg) to run once after obj becomes unreachable.
 * The semantics are Go's runtime.SetFinalizer:
 *  - when a collection finds obj unreachable it queues the call and keeps
 *    obj (and everything obj points to) alive for it: the finalizer may
 *    read obj and even store it somewhere (resurrection);
 *  - the finalizer runs exactly once; obj is freed by a later collection if
 *    it is unreachable again by then; set a new finalizer to be called again;
 *  - if A points to B and both have finalizers, A's runs first and B's in a
 *    later cycle;
 *  - a cycle of objects with finalizers is never collected (its finalizers
 *    never run): hold the back references in a weak handle or in an object
 *    without a finalizer to avoid that;
 *  - arg is kept alive until the call.
 * Finalizers run from gc_run_finalizers on the caller's thread, or on a
 * finalizer thread with GC_OPT_FINALIZER_THREAD; never inside the collector
 * and never with a spangc lock held, so a finalizer may allocate, set
 * finalizers and call gc_collect.
 * obj must be the base of a live heap object: -EINVAL for NULL, an interior
 * pointer, a freed object, or a stack, static or malloc'd address; -EEXIST
 * if obj already has a finalizer; fn NULL removes the finalizer (-ENOENT if
 * there was none); -EPERM before gc_init or from an unregistered thread;
 * -ENOMEM. */
SPANGC_API int gc_set_finalizer(void *obj, gc_finalizer_fn fn, void *arg);

/* Run the finalizers queued so far on this thread, oldest first; returns
 * how many ran. Those queued while it runs (by other threads' collections,
 * or by the finalizers themselves) wait for the next call, so a call
 * always returns. Costs one load when nothing is queued. An unregistered
 * thread runs none (its stack is not scanned, so it could not keep obj
 * alive): 0. */
SPANGC_API size_t gc_run_finalizers(void);

/* A weak handle: gc_weak_get gives the object while it is reachable, and
 * NULL from the moment a collection finds it unreachable (before its
 * finalizer, if any, runs). The handle is itself a heap object: keep it
 * reachable as long as you use it. gc_weak_new returns the same handle for
 * the same object while the object lives. gc_weak_new: NULL with errno
 * EINVAL if obj is not the base of a live heap object, EPERM before gc_init
 * or from an unregistered thread, ENOMEM if out of memory. gc_weak_get:
 * NULL for w NULL; NULL with errno EINVAL if w is not a handle made by
 * gc_weak_new (an interior pointer, a copy of a handle's bytes, any other
 * address); NULL with errno EPERM before gc_init or from an unregistered
 * thread. A handle the collector freed gives NULL with errno EINVAL,
 * unless its memory already holds another object (another handle gives
 * that handle's object). Reading a handle the program let die while
 * another thread may be allocating its memory is a use after free. */
typedef struct gc_weak gc_weak;
SPANGC_API gc_weak *gc_weak_new(void *obj);
SPANGC_API void *gc_weak_get(const gc_weak *w);

/* Sample on average one allocation per bytes allocated for the heap profile
 * (exponentially distributed gaps; an object counts its size rounded up to
 * its size class, the size its sample records). Default 512 KiB; 1 samples every
 * allocation; 0 turns profiling off. Set it early, after gc_init (before,
 * it does nothing): objects allocated before are not in the profile. */
SPANGC_API void gc_set_profile_rate(size_t bytes);

/* Write the heap profile in the legacy text format ("heap_v2") that
 * google-pprof reads: in-use and allocated counts and bytes per allocation
 * stack, as of the last completed collection, followed by the process's
 * memory map. 0, -EINVAL for a NULL stream, -EIO on a write error, -ENOMEM.
 * Any thread may call it, also before gc_init (an empty profile). */
SPANGC_API int gc_write_heap_profile(FILE *out);

/* ------------------------------------------------------------------------
 * Statistics
 * ------------------------------------------------------------------------ */

typedef struct gc_stats {
    uint64_t heap_alloc;     /* bytes in allocated, not yet freed objects     */
    uint64_t heap_sys;       /* bytes of heap obtained from the OS            */
    uint64_t heap_released;  /* bytes returned to the OS                      */
    uint64_t total_alloc;    /* cumulative bytes allocated                    */
    uint64_t mallocs;        /* cumulative objects allocated                  */
    uint64_t frees;          /* cumulative objects freed                      */
    uint64_t num_gc;         /* completed collections                         */
    uint64_t pause_total_ns; /* all stop-the-world pauses                     */
    uint64_t last_pause_ns;
    uint64_t max_pause_ns;
    uint64_t next_gc;        /* heap_alloc that triggers the next collection  */
    /* spangc additions */
    uint64_t heap_inuse;     /* bytes in spans holding objects                */
    uint64_t heap_objects;   /* mallocs - frees                               */
    uint64_t heap_live;      /* bytes marked live by the last collection      */
    uint64_t metadata_sys;   /* bytes of spangc's own bookkeeping             */
    uint64_t num_forced_gc;  /* collections started by gc_collect             */
    uint64_t mark_stack_overflows; /* marks that had to rescan the heap      */
} gc_stats;

/* Fill *out (NULL is ignored; before gc_init every field is 0). Counts of
 * objects allocated by other threads since their last cache refill may
 * lag; after gc_collect every field is exact. */
SPANGC_API void gc_get_stats(gc_stats *out);

#ifdef __cplusplus
}
#endif
#endif /* SPANGC_H */
