/*
 * thread.h - registered threads, runtime sections, and stopping the world.
 *
 * Every thread that allocates or holds heap pointers is registered: it has
 * a spangc_thread record with its mcache and stack bounds, reachable from
 * the thread-local spangc_self.
 *
 * Runtime sections [Go: acquirem / non-preemptible regions]. The world is
 * stopped with a signal that can arrive between any two instructions. A
 * thread that is inside spangc (taking a slot from its mcache, sweeping a
 * span, holding an mcentral or mheap lock) must not stop there: the
 * collector would see a half-made allocation or wait for a lock forever.
 * So spangc code that touches shared heap state runs between
 * runtime_enter and runtime_leave. The signal handler, finding the thread
 * inside a section, only sets stop_pending and returns; runtime_leave
 * sees the flag and stops the thread itself. The section costs the fast
 * path two non-atomic stores and a load.
 *
 * Rules that follow:
 *  - A runtime section never blocks on something the collector holds
 *    while the world is stopped (world_lock, threads_lock), and never calls
 *    program code.
 *  - Code that waits for world_lock (to collect) does so outside sections.
 */
#ifndef SPANGC_THREAD_H
#define SPANGC_THREAD_H

#include "atomic.h"
#include "mcache.h"

#include <pthread.h>
#include <sys/types.h>
#include <signal.h>

typedef struct mem_range {
    uintptr_t lo, hi;
} mem_range;

/* One module's TLS block of one thread, as the thread had it when it
 * registered, or as the collector found it in the thread's dynamic thread
 * vector (from_vector). A library loaded with dlopen may be closed since,
 * and glibc frees (perhaps unmaps) its blocks: the collector asks which
 * modules are loaded (gc/roots.c) before it reads one. */
/* A module's file name as a number: with its load address, what tells a
 * module from another opened at the address of a closed one. */
static inline uintptr_t spangc_module_name_hash(const char *name)
{
    uintptr_t h = 5381;
    for (const char *c = name; c && *c; c++)
        h = h * 33 + (unsigned char)*c;
    return h;
}

typedef struct tls_block {
    uintptr_t lo, hi;
    uintptr_t module;   /* the module's dlpi_addr                         */
    uintptr_t name;     /* spangc_module_name_hash of its dlpi_name       */
    size_t modid;       /* its dlpi_tls_modid                             */
    unsigned long long adds; /* dlpi_adds (libraries ever loaded) then    */
    bool from_vector;   /* read through copies, even for a startup module */
    const uintptr_t *copy; /* from_vector: its words, if already copied */
} tls_block;

/* A loaded module that has thread-local storage, as the collector's
 * listing of the loaded modules has it (gc/roots.c). */
typedef struct tls_module {
    uintptr_t module;   /* its dlpi_addr            */
    size_t modid;       /* its dlpi_tls_modid       */
    size_t size;        /* its PT_TLS segment's p_memsz: a block's size */
    uintptr_t name;     /* spangc_module_name_hash of its dlpi_name */
    bool startup;       /* loaded by gc_init, never unloaded */
} tls_module;

typedef struct spangc_thread {
    mcache cache;

    /* Only this thread and its own signal handler touch these. */
    volatile sig_atomic_t in_runtime;   /* runtime-section depth        */
    volatile sig_atomic_t stop_pending; /* a stop arrived in a section  */
    volatile sig_atomic_t gated;        /* wait at the next section:    */
    unsigned gate_gen;                  /*   until world_gen moves on   */
    bool holds_world;                   /* holds world_lock (gc/gc.c)   */

    /* Registry (threads_lock). */
    struct spangc_thread *next, *prev;
    pthread_t pthread;
    pid_t tid;             /* the kernel's id of the thread, for tgkill */
    uintptr_t stack_lo, stack_hi;
    /* The main thread's static TLS area, or 0, 0 (thread.c, main_static_tls) */
    uintptr_t static_tls_lo, static_tls_hi;
    tls_block *tls;        /* the thread's TLS blocks at registration   */
    size_t ntls, tls_cap;  /* tls_cap entries allocated                 */

    /* Written by the thread as it stops (before it acknowledges), or as it
     * starts a collection itself; read by the collector while the world is
     * stopped. The stack is scanned from here to stack_hi. */
    uintptr_t stopped_sp;
    /* AddressSanitizer's fake stack of the thread, or NULL; written and
     * read with stopped_sp ("AddressSanitizer's fake frames", thread.c). */
    void *fake_stack;
    /* The stop epoch this thread last acknowledged (thread.c). */
    ao_word acked_epoch;
    /* The CPU the thread last stopped on, written as it stops (park), read
     * by the collector before it signals the thread again: a hint for the
     * order of the signals (thread.c, spangc_stop_world). */
    ao_uint stop_cpu;
    bool signal_late; /* collector only: this stop, signal it last */
} spangc_thread;

/* The calling thread's record, or NULL if it is not registered. */
extern __thread spangc_thread *spangc_self __attribute__((tls_model("initial-exec")));

void spangc_thread_stop_deferred(spangc_thread *t);
void spangc_thread_pass_gate(spangc_thread *t);

/* Tests only: called by a thread stopping itself between its test of the
 * stop epoch and its claim of it (tests/test_thread.c). */
extern SPANGC_STATE void (*volatile spangc_test_in_stop_claim)(void);

/* Tests only: called by the collector with the id of each thread it is
 * about to signal to stop, in the order it signals them. */
extern SPANGC_STATE void (*volatile spangc_test_on_signal)(pid_t tid);

static inline void runtime_enter(spangc_thread *t)
{
    t->in_runtime++;
    ao_signal_fence();
    if (unlikely(t->gated)) /* a fork is under way (thread.c, "fork") */
        spangc_thread_pass_gate(t);
}

static inline void runtime_leave(spangc_thread *t)
{
    ao_signal_fence();
    t->in_runtime--;
    ao_signal_fence();
    if (unlikely(t->stop_pending) && t->in_runtime == 0)
        spangc_thread_stop_deferred(t);
}

/* A runtime section for whichever thread calls: registered threads enter
 * one; spangc's own threads (and unregistered callers) are never stopped
 * and need none. Pass the result to runtime_leave_self. */
static inline spangc_thread *runtime_enter_self(void)
{
    spangc_thread *t = spangc_self;
    if (t)
        runtime_enter(t);
    return t;
}

static inline void runtime_leave_self(spangc_thread *t)
{
    if (t)
        runtime_leave(t);
}

/* Set up the registry, register the calling (main) thread, and install
 * the suspend signal handler. Returns 0 or a negative errno. */
int spangc_threads_init(int suspend_signal);

/* Register / unregister the calling thread (0 or negative errno). */
int spangc_thread_register(void);
int spangc_thread_unregister(void);

/* Stop every registered thread except the caller; the caller holds
 * world_lock and is not in a runtime section. Holds threads_lock until
 * spangc_start_world. for_fork: a thread outside spangc is not stopped
 * where it is (inside malloc, perhaps) but held at its next runtime
 * section (thread.c, "fork"); its stack is then not to be scanned. */
void spangc_stop_world(bool for_fork);
void spangc_start_world(void);

/* An address below every frame of the caller (a noinline function's own
 * frame). */
uintptr_t spangc_frame_below_caller(void);

/* The calling thread's AddressSanitizer fake stack, or NULL when the
 * program does not run with AddressSanitizer or does not use fake frames
 * ("AddressSanitizer's fake frames", thread.c). */
void *spangc_fake_stack_of_self(void);

/* For a thread about to collect, at spangc's entry point, once it holds
 * world_lock (while it waits for the lock, another collector may stop it,
 * and its park then records a deeper stack pointer). The entry function's
 * prologue saves every callee-saved register in its frame
 * (__builtin_unwind_init), where the program's values held in registers
 * now are; the thread's stack scan starts just below that frame, so stale
 * words in the collector's own deeper frames are not scanned. The entry
 * function must end with SPANGC_KEEP_FRAME() so that it is not turned into
 * a tail call, which would restore the registers early. A macro because
 * the saving must happen in the frame that stays active. */
#define SPANGC_SAVE_CONTEXT(t)                                                 \
    do {                                                                       \
        __builtin_unwind_init();                                               \
        (t)->stopped_sp = spangc_frame_below_caller();                         \
        (t)->fake_stack = spangc_fake_stack_of_self();                         \
    } while (0)

#define SPANGC_KEEP_FRAME() ao_signal_fence()

/* With the world stopped: call fn on each registered thread's stack range
 * (from its stopped stack pointer, or the collector's saved one, to its
 * base), with tls NULL, and on each of its TLS blocks, with the block:
 * those it had when it registered, and its blocks of the modules mods[0,
 * nmods) that it may have allocated since (found in its dynamic thread
 * vector, "Other threads' TLS blocks" in thread.c). */
void spangc_threads_scan(void (*fn)(uintptr_t lo, uintptr_t hi, const tls_block *tls, void *arg),
                         const tls_module *mods, size_t nmods, void *arg);

/* The TLS module id of the dynamic linker's entry m (a struct link_map),
 * read through a copy, with the layout glibc publishes for debuggers; 0
 * if the module has no TLS, or if that layout is not known. */
size_t spangc_threads_link_map_modid(const void *m);

/* Whether spangc_threads_link_map_modid knows the layout. */
bool spangc_threads_link_map_modid_known(void);

/* With the world stopped: flush every registered thread's mcache. */
void spangc_threads_flush_caches(void);

/* In a fork child, with every lock re-initialized: keep only the calling
 * thread in the registry. */
void spangc_threads_after_fork_child(void);

/* dl_iterate_phdr, for spangc's own calls (a registering thread's TLS
 * blocks, a collection's listing); and, in fork's prepare handler, before
 * anything else, a wait until none of those is under way, which holds new
 * ones off until its parent handler unblocks them (the child starts with
 * none held off: spangc_threads_after_fork_child). */
struct dl_phdr_info;
int spangc_dl_iterate_phdr(int (*fn)(struct dl_phdr_info *, size_t, void *), void *data);
void spangc_threads_dl_fork_block(void);
void spangc_threads_dl_fork_unblock(void);

/* Number of registered threads; _stopped while the caller has stopped
 * the world (it holds threads_lock). */
size_t spangc_thread_count(void);
size_t spangc_threads_count_stopped(void);

#endif
