/*
 * thread.c - registered threads and signal-based stop-the-world.
 *
 * Stopping the world
 *
 *   collector (holds world_lock)            each other registered thread
 *   ----------------------------            ----------------------------
 *   take threads_lock
 *   acks = 0, ack_target = N
 *   tgkill(t, suspend signal)       ---->   handler: in a runtime section?
 *     (other CPUs' threads first)             yes: stop_pending = 1, return;
 *                                                  runtime_leave stops later
 *                                             no:  stop now:
 *                                           stop: spill registers into this
 *                                             frame, record the stack
 *                                             pointer, acks++ (the last one
 *   yield, then futex-wait,        <-----     wakes the collector), then
 *     until acks == N
 *   ... mark ...                              futex-wait on world_gen
 *   world_gen++, futex wake all      ---->  return from the handler
 *   release threads_lock
 *
 * Only the last acknowledgement makes a system call to wake the collector,
 * so stopping N threads costs N signals and at most one wake-up; the
 * collector yields its CPU for a while before it sleeps, which usually
 * saves that one too (spangc_stop_world). The handler only
 * uses async-signal-safe operations (atomics, a raw futex system call,
 * sched_getcpu) and preserves errno. It is installed with SA_RESTART, so
 * restartable system calls the thread was blocked in continue after the
 * stop (see docs/threads.md for those Linux never restarts, such as
 * nanosleep). Registers of a thread stopped inside the handler are in the
 * signal frame the kernel pushed on the thread's stack, above the handler's
 * own frame; the recorded stack pointer is below both, so scanning from it
 * to the stack base covers them.
 *
 * Every stop has an epoch (odd while the world is stopped), and a thread
 * acknowledges each epoch at most once: a signal delivered late, after the
 * restart, finds its epoch over and returns, and a thread may also stop of
 * its own accord when it notices a stop while waiting for a spangc lock
 * (spangc_thread_poll_stop); ThreadSanitizer, which delivers signals only
 * at points it chooses, needs that.
 *
 * A thread that exits while registered is unregistered by a pthread key
 * destructor, which flushes its mcache. threads_lock guards the list; the
 * collector holds it from the first signal to the restart, so no thread
 * joins or leaves while the world is stopped.
 *
 * fork: the prepare handler stops the world and takes every spangc lock in
 * order, so the child starts with a consistent heap; the child keeps only
 * the forking thread (see gc/gc.c for the collector's part). That stop
 * must not park a thread where the signal found it: glibc's fork takes
 * every malloc arena lock after the prepare handlers, and a thread parked
 * inside malloc holds one, so fork would wait for ever. What the child
 * needs is only that no other thread is inside spangc. So in a fork stop
 * (threads.fork_stop) a thread inside a runtime section stops as usual
 * when it leaves the section; one outside spangc acknowledges and runs on,
 * gated: its next runtime_enter waits until the restart (world_gen moves
 * on) [bdwgc does not stop the world for fork either].
 */
#include "thread.h"

#include "mcentral.h"
#include "metalloc.h"
#include "os.h"

#include <dlfcn.h>
#include <errno.h>
#include <link.h>
#include <sched.h>
#include <linux/futex.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

__thread spangc_thread *spangc_self __attribute__((tls_model("initial-exec")));

/* A set of TLS module ids; those from LACKING_IDS up are always in it. */
#define LACKING_IDS 1024

/* The registry. list, count and lacking: threads_lock. dl_listers,
 * dl_forks: atomics (spangc_dl_iterate_phdr). The other fields are set in
 * spangc_threads_init, before any second thread exists. */
static SPANGC_STATE struct {
    spangc_slock lock;
    ao_word dl_listers; /* spangc's calls inside dl_iterate_phdr now */
    ao_word dl_forks;   /* fork prepare handlers holding new calls off */
    spangc_thread *list;
    size_t count;
    /* TLS modules some thread had no block of when it registered (see
     * "Other threads' TLS blocks"). */
    uint64_t lacking[LACKING_IDS / 64];
    int signal;
    ao_uint acks;       /* futex word: threads stopped for this stop */
    ao_uint ack_target; /* how many the collector waits for */
    ao_uint world_gen;  /* futex word: bumped at every restart */
    pid_t pid;          /* for tgkill; set again in a forked child */
    ao_word stop_epoch; /* odd while a stop is in progress */
    ao_word fork_stop;  /* this stop is for fork: gate, do not park */
    pthread_key_t key;
    bool ready;
} threads = {.lock = SPANGC_SLOCK_INIT};

/* ---- stopping ---------------------------------------------------------- */

/* Tests only (thread.h): set by a test, cleared by the hook itself. */
SPANGC_STATE void (*volatile spangc_test_in_stop_claim)(void);
/* Tests only (thread.h): set and cleared by a test, between collections. */
SPANGC_STATE void (*volatile spangc_test_on_signal)(pid_t tid);

/* How many times the collector yields its CPU, waiting for the stopping
 * threads, before it sleeps (about a millisecond); and how long it sleeps
 * before it signals the threads that have not answered again. */
#define STOP_YIELDS 2000
#define RESIGNAL_NS (10 * 1000 * 1000)

/* timeout: relative, for FUTEX_WAIT only; NULL waits for ever. */
static long futex(ao_uint *addr, int op, unsigned val, const struct timespec *timeout)
{
    return syscall(SYS_futex, addr, op, val, timeout, NULL, 0);
}

/* Count this thread as stopped; the last one wakes the collector. */
static void acknowledge(void)
{
    if (ao_uint_add(&threads.acks, 1) + 1 == ao_uint_load_acq(&threads.ack_target))
        futex(&threads.acks, FUTEX_WAKE_PRIVATE, 1, NULL);
}

/* Record the stack pointer below every frame of the stopping thread,
 * acknowledge, and wait for the restart. Not instrumented by
 * AddressSanitizer: checking for use after return, it would move marker
 * into a fake frame off the stack, and the stack scan would take the
 * thread for one on another stack and scan all of its registered one. */
static NOINLINE __attribute__((no_sanitize("address"))) void park(spangc_thread *t, unsigned gen)
{
    volatile uintptr_t marker = 0;
    t->stopped_sp = (uintptr_t)&marker;
    t->fake_stack = spangc_fake_stack_of_self();
    ao_uint_store_relaxed(&t->stop_cpu, (unsigned)sched_getcpu());
    acknowledge();
    while (ao_uint_load_acq(&threads.world_gen) == gen)
        futex(&threads.world_gen, FUTEX_WAIT_PRIVATE, gen, NULL);
    (void)marker;
}

/* Claim the stop under way for this thread: false if there is none, or
 * the thread has already answered it. A CAS: off the signal path
 * (runtime_leave, a lock wait) the collector's repeated signal can land
 * between the test and the claim, and the handler then stops the thread
 * for this epoch; a plain store after it returned would park the thread a
 * second time, with the world running, until some later restart, and
 * count an acknowledgement towards the next stop. The thread that holds
 * world_lock stops the others and never claims a stop itself: a stray
 * suspend signal (SIGPWR, the default, can be process-directed), taken at
 * once or left pending from a runtime section, would park it for a
 * restart only it can make. */
static bool claim_stop(spangc_thread *t)
{
    if (t->holds_world)
        return false;
    uintptr_t epoch = ao_load_acq(&threads.stop_epoch);
    uintptr_t acked = ao_load(&t->acked_epoch);
    /* Loaded once: a test may clear it while this thread is here. */
    void (*hook)(void) = spangc_test_in_stop_claim;
    if (unlikely(hook != NULL))
        hook();
    return (epoch & 1) && acked != epoch && ao_cas(&t->acked_epoch, acked, epoch);
}

/* Stop here. A thread stopped inside the signal handler has its registers
 * in the signal frame the kernel pushed above us; a thread stopping itself
 * (runtime_leave) has the program's values only in callee-saved registers.
 * __builtin_unwind_init makes this function's prologue save all of them in
 * its frame, which lies above park's marker; the fence after the call
 * keeps the compiler from tail-calling park, which would pop them first. */
static NOINLINE void stop_self(spangc_thread *t)
{
    __builtin_unwind_init();
    if (!claim_stop(t))
        return;
    park(t, ao_uint_load_acq(&threads.world_gen));
    ao_signal_fence();
}

/* A fork stop, for a thread outside spangc: acknowledge the stop and run
 * on, gated. Called only from the handler. */
static void gate_self(spangc_thread *t)
{
    if (!claim_stop(t))
        return;
    t->gate_gen = ao_uint_load_acq(&threads.world_gen);
    t->gated = 1;
    acknowledge();
}

/* runtime_enter found the gate set: wait for the restart that ends the fork
 * stop, if it has not happened yet. Inside the section already, so a stop
 * after the restart only sets stop_pending. */
void spangc_thread_pass_gate(spangc_thread *t)
{
    unsigned gen = t->gate_gen;
    while (ao_uint_load_acq(&threads.world_gen) == gen)
        futex(&threads.world_gen, FUTEX_WAIT_PRIVATE, gen, NULL);
    t->gated = 0;
}

void spangc_lock_check_section(void)
{
    spangc_thread *t = spangc_self;
    if (t && !t->in_runtime && !t->holds_world)
        spangc_throw("a spangc lock taken outside a runtime section (runtime/lock.h)");
}

/* The calling thread's held slocks, and its cancellation state before
 * the first (runtime/lock.h, "Cancellation"). Only the thread itself. */
static __thread int cancel_holds __attribute__((tls_model("initial-exec")));
static __thread int cancel_state __attribute__((tls_model("initial-exec")));

void spangc_cancel_hold(void)
{
    if (cancel_holds++ == 0)
        pthread_setcancelstate(PTHREAD_CANCEL_DISABLE, &cancel_state);
}

void spangc_cancel_restore(void)
{
    if (--cancel_holds == 0)
        pthread_setcancelstate(cancel_state, NULL);
}

void spangc_section_enter(void)
{
    (void)runtime_enter_self();
}

void spangc_section_leave(void)
{
    runtime_leave_self(spangc_self);
}

void spangc_thread_poll_stop(void)
{
    spangc_thread *t = spangc_self;
    if (t && !t->in_runtime)
        stop_self(t);
}

void spangc_thread_stop_deferred(spangc_thread *t)
{
    t->stop_pending = 0;
    stop_self(t);
}

static void suspend_handler(int sig, siginfo_t *info, void *ctx)
{
    (void)sig;
    (void)info;
    (void)ctx;
    int saved_errno = errno;
    spangc_thread *t = spangc_self;
    if (t) {
        if (t->in_runtime)
            t->stop_pending = 1;
        else if (ao_load_acq(&threads.fork_stop))
            gate_self(t);
        else
            stop_self(t);
    }
    errno = saved_errno;
}

/* tgkill, not pthread_kill: glibc's blocks and restores every signal
 * around it, two more system calls per thread. The id is valid: a thread
 * leaves the list (under threads_lock, held by the caller) before it
 * exits. */
static void signal_thread(spangc_thread *t)
{
    void (*hook)(pid_t) = spangc_test_on_signal;
    if (unlikely(hook != NULL))
        hook(t->tid);
    if (syscall(SYS_tgkill, threads.pid, t->tid, threads.signal) != 0)
        spangc_throw("cannot signal registered thread %lu (error %d); did it exit "
                     "without unregistering?",
                     (unsigned long)t->pthread, errno);
}

/* Signal every registered thread but self: first those that stopped on
 * another CPU last time, then those that stopped on this one. A thread
 * the kernel wakes on the collector's CPU runs its handler at once, before
 * the collector sends the next signal; signalled first, those threads
 * held back the signals for the other CPU, which sat idle meanwhile. With
 * 16 blocked threads (tests/bench/stw.c), the last acknowledgement came
 * 53-60 us after the first signal in this order, 61-76 in list order.
 * Only a hint: the kernel may wake a thread anywhere (and where
 * sched_getcpu cannot tell, it answers -1 for all, and the order is the
 * list's). Each thread's hint is read before any signal is sent, so never
 * while the thread writes it. sched_getcpu in the handler reads the
 * kernel's rseq area or calls the vDSO: no lock, nothing to interrupt. */
static void signal_all(spangc_thread *self)
{
    unsigned here = (unsigned)sched_getcpu();
    for (spangc_thread *t = threads.list; t; t = t->next)
        t->signal_late = ao_uint_load_relaxed(&t->stop_cpu) == here;
    for (spangc_thread *t = threads.list; t; t = t->next)
        if (t != self && !t->signal_late)
            signal_thread(t);
    for (spangc_thread *t = threads.list; t; t = t->next)
        if (t != self && t->signal_late)
            signal_thread(t);
}

void spangc_stop_world(bool for_fork)
{
    slock_acquire(&threads.lock);
    spangc_thread *self = spangc_self;
    unsigned n = 0;
    for (spangc_thread *t = threads.list; t; t = t->next)
        n += t != self;
    ao_uint_store(&threads.acks, 0);
    ao_uint_store(&threads.ack_target, n);
    ao_store_rel(&threads.fork_stop, for_fork);
    uintptr_t epoch = ao_add(&threads.stop_epoch, 1) + 1; /* odd: stopping */
    signal_all(self);
    /* Yield rather than sleep while the acknowledgements come in. The
     * stopping threads are mostly woken on this CPU and run as soon as we
     * yield; and if we slept, this CPU could go idle, and the last
     * acknowledgement, from the other CPU, would pay for waking it: 10-25
     * us under a hypervisor, a quarter of a 16-thread stop. Sleep only if
     * a thread is slow to answer (one spinning on a busy CPU), and signal
     * again whoever has not answered after each RESIGNAL_NS: under
     * ThreadSanitizer, which holds a signal back until the thread reaches
     * a point of its choosing, one was seen never to arrive (a thread
     * polling a pipe with nanosleep, 1 run in 10 of test_thread). A thread
     * that has answered ignores the repeat. */
    for (unsigned yields = 0;; yields++) {
        unsigned a = ao_uint_load_acq(&threads.acks);
        if (a >= n)
            break;
        if (yields < STOP_YIELDS) {
            sched_yield();
            continue;
        }
        struct timespec ts = {0, RESIGNAL_NS};
        if (futex(&threads.acks, FUTEX_WAIT_PRIVATE, a, &ts) != 0 && errno == ETIMEDOUT) {
            for (spangc_thread *t = threads.list; t; t = t->next)
                if (t != self && ao_load(&t->acked_epoch) != epoch)
                    signal_thread(t);
        }
    }
    for (spangc_thread *t = threads.list; t; t = t->next)
        if (t != self && ao_load(&t->acked_epoch) != epoch)
            spangc_throw("registered thread %lu did not stop (acknowledged stop %lu of %lu)",
                         (unsigned long)t->pthread, (unsigned long)ao_load(&t->acked_epoch),
                         (unsigned long)epoch);
}

void spangc_start_world(void)
{
    ao_store(&threads.fork_stop, 0);
    ao_add(&threads.stop_epoch, 1); /* even: running */
    ao_uint_add(&threads.world_gen, 1);
    futex(&threads.world_gen, FUTEX_WAKE_PRIVATE, 0x7fffffff, NULL);
    slock_release(&threads.lock);
}

/* ---- scanning ---------------------------------------------------------- */

NOINLINE uintptr_t spangc_frame_below_caller(void)
{
    return (uintptr_t)__builtin_frame_address(0);
}

/* ---- AddressSanitizer's fake frames ----------------------------------- */

/* AddressSanitizer, when it checks for use after return
 * (ASAN_OPTIONS=detect_stack_use_after_return=1, the default of newer
 * compilers' runtimes), moves a function's address-taken locals out of
 * the stack into a "fake frame" it allocates elsewhere, and the real frame
 * keeps only a pointer to it. An object held by such a local would look
 * unreachable. So the stack scan also scans every fake frame that a word
 * of the stack points into, if the frame belongs to an active call of
 * that thread: its real frame lies on the thread's stack, and the runtime
 * still counts it as live (a returned call's frame reads as free).
 *
 * The runtime's interface for collectors (sanitizer/asan_interface.h) is
 * declared weak, so that spangc finds it whenever the program runs with
 * AddressSanitizer, whether or not spangc itself was built with it; in
 * any other program both are NULL and none of this runs. Each thread
 * reads its own fake stack as it stops, with its stack pointer. */
extern void *__asan_get_current_fake_stack(void) __attribute__((weak, visibility("default")));
extern void *__asan_addr_is_in_fake_stack(void *fake_stack, void *addr, void **beg, void **end)
    __attribute__((weak, visibility("default")));

void *spangc_fake_stack_of_self(void)
{
    return __asan_get_current_fake_stack ? __asan_get_current_fake_stack() : NULL;
}

/* Reads a stopped thread's stack, redzones and all. */
static __attribute__((no_sanitize("address", "thread"))) void
scan_fake_frames(const spangc_thread *t, uintptr_t lo, uintptr_t hi,
                 void (*fn)(uintptr_t lo, uintptr_t hi, const tls_block *tls, void *arg), void *arg)
{
    if (!t->fake_stack || !__asan_addr_is_in_fake_stack)
        return;
    for (uintptr_t p = lo & ~(uintptr_t)7; p + sizeof(void *) <= hi; p += sizeof(void *)) {
        void *beg, *end;
        uintptr_t real =
            (uintptr_t)__asan_addr_is_in_fake_stack(t->fake_stack, *(void **)p, &beg, &end);
        if (real >= t->stack_lo && real < t->stack_hi)
            fn((uintptr_t)beg, (uintptr_t)end, NULL, arg);
    }
}

/* The lowest address from which [.., hi) is mapped, at least lo. The
 * main thread's registered stack reaches down as far as RLIMIT_STACK lets
 * it grow (main_stack_bounds), and only its top is mapped; its lowest
 * pages can never be, since the kernel counts the arguments above
 * __libc_stack_end against the limit too. Walked down from the top, 64
 * pages at a time: the range may also hold other mappings below the
 * stack, which must not be taken for it. */
static uintptr_t mapped_bottom(uintptr_t lo, uintptr_t hi)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    uintptr_t bottom = hi & ~(page - 1); /* the top page is in use */
    while (bottom > lo) {
        uintptr_t step = bottom - lo < 64 * page ? bottom - lo : 64 * page;
        if (spangc_os_mapped(bottom - step, bottom)) {
            bottom -= step;
            continue;
        }
        /* A hole in this chunk: find its top page by page. */
        while (bottom > lo && spangc_os_mapped(bottom - page, bottom))
            bottom -= page;
        break;
    }
    return bottom > lo ? bottom : lo;
}

/* ---- other threads' TLS blocks ----------------------------------------- */

/* Other threads' TLS blocks
 *
 * glibc gives a thread its block of a module loaded with dlopen when the
 * thread first uses one of the module's thread-local variables, and
 * dl_iterate_phdr shows only the calling thread's blocks, so a thread
 * lists its blocks when it registers (collect_tls) and cannot list those
 * it allocates later. The collector finds those in the thread's dynamic
 * thread vector (DTV): an array of block addresses indexed by TLS module
 * id, which the thread's descriptor (its pthread_t) points to. The layout
 * is glibc's own, but glibc publishes it for debuggers, which read the TLS
 * of a stopped process the same way: each _thread_db_* symbol is {size in
 * bits, count, offset} of one field.
 *
 * The vector is read through copies only (the pointer to it, in the
 * thread's descriptor, in place): a thread stopped while glibc grows its
 * vector (realloc) may still point to the freed one. A slot
 * glibc has not filled holds an odd value (TLS_DTV_UNALLOCATED, -1). A
 * slot of a module closed since the thread last used TLS may still hold
 * the closed module's block, which glibc frees only at the thread's next
 * TLS access: it is scanned, through copies, at worst keeping alive what
 * it held. Each registering thread checks the reading against its own
 * blocks as dl_iterate_phdr reports them; one mismatch turns it off, and
 * blocks allocated after registration go unscanned, as without it. */
static SPANGC_STATE struct {
    size_t vector_in_thread; /* the DTV pointer's offset in the descriptor */
    size_t slots_in_vector;  /* slot 0's offset from that pointer */
    size_t slot_bytes;
    size_t block_in_slot;     /* the block address's offset in a slot */
    size_t length_in_slot;    /* the length's offset in slot -1 */
    size_t modid_in_link_map; /* l_tls_modid's offset in a struct link_map */
    bool modid_known;
    /* The static TLS area's size, with the descriptor, and the
     * descriptor's; 0 if glibc does not say (main_static_tls). */
    size_t static_tls_size, descriptor_size;
} dtv_layout; /* set by spangc_threads_init, read-only after */

/* 1 from spangc_threads_init if the layout is published, 0 for ever once
 * a registering thread saw it disagree with dl_iterate_phdr. atomic. */
static SPANGC_STATE ao_word dtv_usable;

static void dtv_layout_init(void)
{
    const uint32_t *vector = dlsym(RTLD_DEFAULT, "_thread_db_pthread_dtvp");
    const uint32_t *slots = dlsym(RTLD_DEFAULT, "_thread_db_dtv_dtv");
    const uint32_t *block = dlsym(RTLD_DEFAULT, "_thread_db_dtv_t_pointer_val");
    const uint32_t *length = dlsym(RTLD_DEFAULT, "_thread_db_dtv_t_counter");
    const uint32_t *modid = dlsym(RTLD_DEFAULT, "_thread_db_link_map_l_tls_modid");
    void (*static_info)(size_t *, size_t *) =
        (void (*)(size_t *, size_t *))dlsym(RTLD_DEFAULT, "_dl_get_tls_static_info");
    const uint32_t *descriptor = dlsym(RTLD_DEFAULT, "_thread_db_sizeof_pthread");
    if (static_info && descriptor) {
        size_t align;
        static_info(&dtv_layout.static_tls_size, &align);
        dtv_layout.descriptor_size = *descriptor;
    }
    const uint32_t word_bits = 8 * sizeof(uintptr_t);
    if (modid && modid[0] == word_bits) {
        dtv_layout.modid_in_link_map = modid[2];
        dtv_layout.modid_known = true;
    }
    if (!vector || !slots || !block || !length || vector[0] != word_bits || block[0] != word_bits ||
        length[0] != word_bits || slots[0] % word_bits != 0 || slots[2] % sizeof(uintptr_t) != 0 ||
        block[2] % sizeof(uintptr_t) != 0 || block[2] + sizeof(uintptr_t) > slots[0] / 8 ||
        length[2] % sizeof(uintptr_t) != 0 || length[2] + sizeof(uintptr_t) > slots[0] / 8)
        return;
    dtv_layout.vector_in_thread = vector[2];
    dtv_layout.slots_in_vector = slots[2];
    dtv_layout.slot_bytes = slots[0] / 8;
    dtv_layout.block_in_slot = block[2];
    dtv_layout.length_in_slot = length[2];
    ao_store(&dtv_usable, 1);
}

static bool copy_word(uintptr_t *w, uintptr_t from)
{
    return spangc_os_copy(w, from, sizeof *w) == (long)sizeof *w;
}

/* thread's vector. Read in place: the descriptor of a registered thread
 * (in its stack or static TLS area) lasts until after the thread
 * unregisters, and the pointer, even if stale, is only read through. */
static uintptr_t dtv_vector(pthread_t thread)
{
    return *(const volatile uintptr_t *)((uintptr_t)thread + dtv_layout.vector_in_thread);
}

/* Where vector keeps the address of module modid's block. */
static uintptr_t slot_block_address(uintptr_t vector, size_t modid)
{
    return vector + dtv_layout.slots_in_vector + modid * dtv_layout.slot_bytes +
           dtv_layout.block_in_slot;
}

/* A block address as a slot holds it, or 0 for none: glibc marks a slot
 * not filled yet with an odd value (TLS_DTV_UNALLOCATED, -1). */
static uintptr_t slot_block(uintptr_t v)
{
    return v & 1 ? 0 : v;
}

/* The block of module modid in vector, or 0 if it has none (or it cannot
 * be read). */
static uintptr_t vector_block(uintptr_t vector, size_t modid)
{
    uintptr_t v;
    if (!vector || !copy_word(&v, slot_block_address(vector, modid)))
        return 0;
    return slot_block(v);
}

/* Registration: the calling thread's block of a module, as dl_iterate_phdr
 * gave it, must be the one its vector holds. */
static void dtv_check(size_t modid, const void *block)
{
    if (ao_load(&dtv_usable) && vector_block(dtv_vector(pthread_self()), modid) != (uintptr_t)block)
        ao_store(&dtv_usable, 0);
}

size_t spangc_threads_link_map_modid(const void *m)
{
    size_t modid;
    if (!dtv_layout.modid_known ||
        spangc_os_copy(&modid, (uintptr_t)m + dtv_layout.modid_in_link_map, sizeof modid) !=
            (long)sizeof modid)
        return 0;
    return modid;
}

bool spangc_threads_link_map_modid_known(void)
{
    return dtv_layout.modid_known;
}

/* threads_lock: whether some thread had no block of module modid when it
 * registered. A module that has a block in every thread that registered
 * (one linked with the program: its blocks are made with the thread)
 * needs no look in the vectors. */
static bool lacking(size_t modid)
{
    return modid >= LACKING_IDS || (threads.lacking[modid / 64] >> (modid % 64) & 1);
}

/* Whether the collector looks for the threads' blocks of m in their
 * vectors: a module loaded after gc_init, or one some thread had no block
 * of when it registered. */
static bool looked_for(const tls_module *m)
{
    return !m->startup || lacking(m->modid);
}

/* Whether t's block of module m, at lo, is one it allocated after it
 * registered (one it listed then is scanned as such). */
static bool block_is_new(const spangc_thread *t, const tls_module *m, uintptr_t lo)
{
    /* Listed when it registered, if the listed block is this module's,
     * whole: a block at the same address may be a closed library's, whose
     * memory glibc gave to this one (it frees the old block at the
     * thread's next TLS access), or a smaller block of a library that had
     * this one's load address and id. */
    for (size_t i = 0; i < t->ntls; i++) {
        const tls_block *b = &t->tls[i];
        if (b->lo == lo && b->module == m->module && b->modid == m->modid && b->name == m->name &&
            b->hi - b->lo >= m->size)
            return false;
    }
    return true;
}

/* The new blocks of one thread, copied together: a copy is a system call,
 * the blocks are small (a module's __thread variables), and a thread may
 * have many. A block that does not fit, or that could not be copied with
 * the others, goes to fn uncopied, for the caller to copy on its own. */
#define BLOCK_COPY_WORDS 256
#define BLOCK_COPY_MAX   32 /* at most SPANGC_OS_COPY_MANY */

typedef struct new_blocks {
    tls_block b[BLOCK_COPY_MAX];
    uintptr_t src[BLOCK_COPY_MAX];
    size_t len[BLOCK_COPY_MAX];
    size_t n, bytes;
    uintptr_t words[BLOCK_COPY_WORDS];
} new_blocks;

static void flush_blocks(new_blocks *nb,
                         void (*fn)(uintptr_t lo, uintptr_t hi, const tls_block *tls, void *arg),
                         void *arg)
{
    long whole = nb->n ? spangc_os_copy_many(nb->words, nb->src, nb->len, nb->n) : 0;
    const uintptr_t *at = nb->words;
    for (size_t i = 0; i < nb->n; i++) {
        tls_block *b = &nb->b[i];
        if ((long)i < whole)
            b->copy = at;
        at += nb->len[i] / sizeof *at;
        fn(b->lo, b->hi, b, arg);
    }
    nb->n = nb->bytes = 0;
}

static void add_block(new_blocks *nb, const tls_module *m, uintptr_t lo,
                      void (*fn)(uintptr_t lo, uintptr_t hi, const tls_block *tls, void *arg),
                      void *arg)
{
    tls_block b = {.lo = lo,
                   .hi = lo + m->size,
                   .module = m->module,
                   .name = m->name,
                   .modid = m->modid,
                   .from_vector = true};
    size_t len = round_up(m->size, sizeof(uintptr_t));
    if (len > sizeof nb->words || lo % sizeof(uintptr_t) != 0) {
        fn(b.lo, b.hi, &b, arg);
        return;
    }
    if (nb->n == BLOCK_COPY_MAX || nb->bytes + len > sizeof nb->words)
        flush_blocks(nb, fn, arg);
    nb->b[nb->n] = b;
    nb->src[nb->n] = lo;
    nb->len[nb->n] = len;
    nb->n++;
    nb->bytes += len;
}

/* t's blocks of the modules looked for. glibc keeps the vector's length
 * (the highest id it has a slot for) in slot -1; a module with a higher id
 * has no block in t, and what lies past the vector is not a slot. Slots -1
 * to the highest id looked for are copied at once if they fit in
 * VECTOR_COPY_WORDS (a copy is a system call), else one at a time. */
#define VECTOR_COPY_WORDS 256

static void scan_vector(const spangc_thread *t, const tls_module *mods, size_t nmods,
                        void (*fn)(uintptr_t lo, uintptr_t hi, const tls_block *tls, void *arg),
                        void *arg)
{
    size_t hi = 0;
    for (size_t i = 0; i < nmods; i++)
        if (looked_for(&mods[i]) && mods[i].modid > hi)
            hi = mods[i].modid;
    uintptr_t vector = hi ? dtv_vector(t->pthread) : 0;
    if (!vector)
        return;
    uintptr_t slots[VECTOR_COPY_WORDS], length;
    uintptr_t first = vector + dtv_layout.slots_in_vector - dtv_layout.slot_bytes; /* slot -1 */
    size_t stride = dtv_layout.slot_bytes / sizeof(uintptr_t);
    size_t block_word = dtv_layout.block_in_slot / sizeof(uintptr_t);
    size_t bytes = (hi + 2) * dtv_layout.slot_bytes;
    bool copied = bytes <= sizeof slots && spangc_os_copy(slots, first, bytes) == (long)bytes;
    if (copied)
        length = slots[dtv_layout.length_in_slot / sizeof(uintptr_t)];
    else if (!copy_word(&length, first + dtv_layout.length_in_slot))
        return;
    new_blocks nb;
    nb.n = nb.bytes = 0;
    for (size_t i = 0; i < nmods; i++) {
        const tls_module *m = &mods[i];
        if (!looked_for(m) || m->modid > length)
            continue;
        uintptr_t block = copied ? slot_block(slots[(m->modid + 1) * stride + block_word])
                                 : vector_block(vector, m->modid);
        if (block && m->size && block_is_new(t, m, block))
            add_block(&nb, m, block, fn, arg);
    }
    flush_blocks(&nb, fn, arg);
}

void spangc_threads_scan(void (*fn)(uintptr_t lo, uintptr_t hi, const tls_block *tls, void *arg),
                         const tls_module *mods, size_t nmods, void *arg)
{
    bool dtv = ao_load(&dtv_usable);
    for (spangc_thread *t = threads.list; t; t = t->next) {
        uintptr_t lo = t->stopped_sp;
        if (lo < t->stack_lo || lo >= t->stack_hi) {
            /* Running on a stack other than the one registered (a
             * coroutine): scan all of the registered one that is
             * mapped. Other stacks must be added with gc_add_roots
             * (docs/threads.md). */
            lo = mapped_bottom(t->stack_lo, t->stack_hi);
        }
        fn(lo, t->stack_hi, NULL, arg);
        scan_fake_frames(t, lo, t->stack_hi, fn, arg);
        if (t->static_tls_hi)
            fn(t->static_tls_lo, t->static_tls_hi, NULL, arg);
        for (size_t i = 0; i < t->ntls; i++)
            fn(t->tls[i].lo, t->tls[i].hi, &t->tls[i], arg);
        if (dtv)
            scan_vector(t, mods, nmods, fn, arg);
    }
}

void spangc_threads_flush_caches(void)
{
    for (spangc_thread *t = threads.list; t; t = t->next)
        spangc_mcache_release_all(&t->cache);
}

size_t spangc_threads_count_stopped(void)
{
    return threads.count;
}

size_t spangc_thread_count(void)
{
    slock_acquire(&threads.lock);
    size_t n = threads.count;
    slock_release(&threads.lock);
    return n;
}

/* ---- registration ------------------------------------------------------ */

typedef struct tls_collect {
    tls_block *ranges;
    size_t n, cap;
    uint64_t lacking[LACKING_IDS / 64]; /* modules it has no block of */
    bool out_of_memory;                 /* some block is missing from ranges */
} tls_collect;

/* dl_iterate_phdr callback: the calling thread's TLS block of every loaded
 * module that has one (dlpi_tls_data is this thread's copy). */
static int collect_tls(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    tls_collect *c = data;
    size_t modid = info->dlpi_tls_modid;
    if (!info->dlpi_tls_data) {
        if (modid && modid < LACKING_IDS)
            c->lacking[modid / 64] |= (uint64_t)1 << (modid % 64);
        return 0;
    }
    dtv_check(modid, info->dlpi_tls_data);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type != PT_TLS || ph->p_memsz == 0)
            continue;
        if (c->n == c->cap) {
            size_t cap = c->cap ? c->cap * 2 : 8;
            tls_block *r = spangc_meta_alloc(cap * sizeof *r);
            if (!r) {
                c->out_of_memory = true;
                return 1;
            }
            if (c->ranges) {
                memcpy(r, c->ranges, c->n * sizeof *r);
                spangc_meta_free(c->ranges, c->cap * sizeof *r);
            }
            c->ranges = r;
            c->cap = cap;
        }
        uintptr_t lo = (uintptr_t)info->dlpi_tls_data;
        c->ranges[c->n] = (tls_block){.lo = lo,
                                      .hi = lo + ph->p_memsz,
                                      .module = info->dlpi_addr,
                                      .name = spangc_module_name_hash(info->dlpi_name),
                                      .modid = info->dlpi_tls_modid,
                                      .adds = info->dlpi_adds};
        c->n++;
    }
    return 0;
}

/* The main thread's static TLS area. A library opened with dlopen whose
 * variables are initial-exec (or reached through TLS descriptors) gets
 * its block in the surplus of every thread's static TLS area, which its
 * code reaches from the thread pointer; the thread's vector slot then
 * stays empty, so neither the blocks listed at registration nor the
 * vector find it. A thread's own stack range already holds its static TLS
 * area (glibc puts it at the top of the thread's stack block); the main
 * thread's lies elsewhere, below its descriptor: [tp - (static size -
 * descriptor size), tp) on x86-64, where the descriptor is the thread
 * pointer. The sizes are glibc's, from _dl_get_tls_static_info and the
 * published _thread_db_sizeof_pthread; unless a block listed at
 * registration lies inside the area and none across its ends, it is not
 * used. It lasts as long as the process, and a closed library's block in
 * it only keeps alive what it last held. */
static void main_static_tls(spangc_thread *t, const tls_collect *c)
{
#if defined(__x86_64__)
    size_t size = dtv_layout.static_tls_size, descriptor = dtv_layout.descriptor_size;
    uintptr_t tp = (uintptr_t)t->pthread;
    if (t->tid != threads.pid || size <= descriptor || size - descriptor > tp)
        return;
    uintptr_t lo = tp - (size - descriptor);
    /* The blocks of the modules loaded at start-up (libc's, at least) lie
     * inside it; those of modules opened before registration may lie
     * elsewhere, but none across its ends. */
    bool holds_one = false;
    for (size_t i = 0; i < c->n; i++) {
        bool in = c->ranges[i].lo >= lo && c->ranges[i].hi <= tp;
        if (!in && c->ranges[i].lo < tp && c->ranges[i].hi > lo)
            return;
        holds_one |= in;
    }
    if (!holds_one)
        return;
    t->static_tls_lo = lo;
    t->static_tls_hi = tp;
#else
    (void)t;
    (void)c;
#endif
}

/* glibc's record of where the main thread's stack began (its argc), set
 * before main runs; weak, so that a libc without it links too. */
extern void *__libc_stack_end __attribute__((weak));

/* The main thread's stack: from __libc_stack_end down by RLIMIT_STACK
 * (by half the address space below it if unlimited: the stack may grow
 * until it meets a mapping). pthread_getattr_np finds the same bounds by
 * reading /proc/self/maps with stdio and sscanf, which maps about 100 KB
 * of libc and a malloc arena into a program that may otherwise use
 * neither. Above __libc_stack_end lie only argv, envp and the aux vector. */
static bool main_stack_bounds(pid_t tid, uintptr_t *lo, uintptr_t *hi)
{
    if (&__libc_stack_end == NULL || __libc_stack_end == NULL || tid != getpid())
        return false;
    struct rlimit rl;
    if (getrlimit(RLIMIT_STACK, &rl) != 0)
        return false;
    uintptr_t top = (uintptr_t)__libc_stack_end;
    uintptr_t size =
        rl.rlim_cur == RLIM_INFINITY || rl.rlim_cur > top / 2 ? top / 2 : (uintptr_t)rl.rlim_cur;
    uintptr_t sp = (uintptr_t)__builtin_frame_address(0);
    /* On a stack of its own (a coroutine): let pthread_getattr_np say. */
    if (sp >= top || sp < top - size)
        return false;
    *lo = top - size;
    *hi = top;
    return true;
}

/* The stack of the calling thread, whose kernel id is tid. */
static bool get_stack_bounds(pid_t tid, uintptr_t *lo, uintptr_t *hi)
{
    if (main_stack_bounds(tid, lo, hi))
        return true;
    pthread_attr_t attr;
    void *addr;
    size_t size;
    if (pthread_getattr_np(pthread_self(), &attr) != 0)
        return false;
    int err = pthread_attr_getstack(&attr, &addr, &size);
    pthread_attr_destroy(&attr);
    if (err)
        return false;
    *lo = (uintptr_t)addr;
    *hi = (uintptr_t)addr + size;
    return true;
}

static void thread_exit_destructor(void *arg)
{
    if (spangc_self == arg)
        spangc_thread_unregister();
}

static int thread_register(void)
{
    if (!threads.ready)
        return -EPERM;
    if (spangc_self)
        return -EEXIST;
    spangc_thread *t = spangc_meta_alloc(sizeof *t);
    if (!t)
        return -ENOMEM;
    spangc_mcache_init(&t->cache);
    t->pthread = pthread_self();
    t->tid = spangc_os_gettid();
    if (!get_stack_bounds(t->tid, &t->stack_lo, &t->stack_hi)) {
        spangc_meta_free(t, sizeof *t);
        return -ENOMEM;
    }
    /* The key's destructor runs only for a non-NULL value. */
    pthread_setspecific(threads.key, t);

    /* dl_iterate_phdr takes the dynamic linker's lock, which a thread
     * inside a dl_iterate_phdr callback of its own may hold while it
     * collects; a collection takes threads_lock to stop the world, so
     * threads_lock must not be held here. */
    tls_collect c = {0};
    spangc_dl_iterate_phdr(collect_tls, &c);
    /* A thread whose TLS blocks are not all listed would have the objects
     * its thread-local variables hold collected under it. */
    if (c.out_of_memory) {
        pthread_setspecific(threads.key, NULL);
        spangc_meta_free(c.ranges, c.cap * sizeof *c.ranges);
        spangc_meta_free(t, sizeof *t);
        return -ENOMEM;
    }
    main_static_tls(t, &c);
    /* Joining the list makes the thread visible to stop-the-world; from
     * then on it must be able to take the signal. */
    slock_acquire(&threads.lock);
    t->tls = c.ranges;
    t->ntls = c.n;
    t->tls_cap = c.cap;
    for (size_t i = 0; i < LACKING_IDS / 64; i++)
        threads.lacking[i] |= c.lacking[i];
    t->next = threads.list;
    if (threads.list)
        threads.list->prev = t;
    threads.list = t;
    threads.count++;
    spangc_self = t;
    slock_release(&threads.lock);
    return 0;
}

/* With cancellation held off throughout: a cancel taking effect in the
 * wait for another thread's dl_iterate_phdr (dl_enter's nanosleep) would
 * leave the half-made record behind (runtime/lock.h, "Cancellation"). */
int spangc_thread_register(void)
{
    spangc_cancel_hold();
    int err = thread_register();
    spangc_cancel_restore();
    return err;
}

int spangc_thread_unregister(void)
{
    spangc_thread *t = spangc_self;
    if (!t)
        return -EINVAL;
    runtime_enter(t);
    spangc_mcache_release_all(&t->cache);
    runtime_leave(t);

    slock_acquire(&threads.lock);
    if (t->prev)
        t->prev->next = t->next;
    else
        threads.list = t->next;
    if (t->next)
        t->next->prev = t->prev;
    threads.count--;
    spangc_self = NULL;
    slock_release(&threads.lock);

    pthread_setspecific(threads.key, NULL);
    if (t->tls)
        spangc_meta_free(t->tls, t->tls_cap * sizeof(tls_block));
    spangc_meta_free(t, sizeof *t);
    return 0;
}

int spangc_threads_init(int suspend_signal)
{
    if (pthread_key_create(&threads.key, thread_exit_destructor) != 0)
        return -ENOMEM;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_sigaction = suspend_handler;
    sa.sa_flags = SA_SIGINFO | SA_RESTART;
    /* Block everything but synchronous faults while a thread is parked in
     * the handler: a parked thread must not run other handlers. */
    sigfillset(&sa.sa_mask);
    sigdelset(&sa.sa_mask, SIGSEGV);
    sigdelset(&sa.sa_mask, SIGBUS);
    sigdelset(&sa.sa_mask, SIGILL);
    sigdelset(&sa.sa_mask, SIGFPE);
    if (sigaction(suspend_signal, &sa, NULL) != 0)
        return -EINVAL;
    threads.pid = getpid();
    threads.signal = suspend_signal;
    dtv_layout_init();
    threads.ready = true;
    return spangc_thread_register();
}

/* ---- fork -------------------------------------------------------------- */

/* spangc's own calls of dl_iterate_phdr and fork
 *
 * fork must not copy the dynamic linker's lock held by one of spangc's
 * calls of dl_iterate_phdr: glibc does not reset that lock in the child,
 * whose next listing would wait for ever. So fork's prepare handler waits
 * for the calls under way to end, and holds new ones off until the fork is
 * done. This is not a lock the calls share: a program thread may collect,
 * and so list, inside a dl_iterate_phdr callback of its own while another
 * thread's listing waits for the lock that callback holds; an exclusive
 * lock would deadlock the two. A fork at that moment still can: from the
 * callback, or from a third thread, whose prepare handler waits for the
 * waiting listing while it holds the callback's own listing off. Each side
 * announces itself with a full barrier before it reads the other's count. */
static void dl_enter(void)
{
    for (;;) {
        while (ao_load_acq(&threads.dl_forks) != 0) {
            struct timespec ts = {0, 100 * 1000};
            nanosleep(&ts, NULL);
        }
        ao_add(&threads.dl_listers, 1);
        if (ao_load(&threads.dl_forks) == 0)
            return;
        ao_sub(&threads.dl_listers, 1);
    }
}

/* Under ThreadSanitizer, the call is made inside a runtime section: a
 * thread stopped inside it would hold the dynamic linker's lock, and one
 * waiting for that lock takes no signal there (runtime/lock.h), so the
 * stop would wait for ever. With real signals, that waiter stops. */
int spangc_dl_iterate_phdr(int (*fn)(struct dl_phdr_info *, size_t, void *), void *data)
{
    dl_enter();
    slock_section_enter();
    int r = dl_iterate_phdr(fn, data);
    slock_section_leave();
    ao_sub(&threads.dl_listers, 1);
    return r;
}

void spangc_threads_dl_fork_block(void)
{
    ao_add(&threads.dl_forks, 1);
    while (ao_load_acq(&threads.dl_listers) != 0)
        sched_yield();
}

void spangc_threads_dl_fork_unblock(void)
{
    ao_sub(&threads.dl_forks, 1);
}

/* In the child only the forking thread survives: drop the others, giving
 * their cached spans back so no span stays owned by a dead cache. */
void spangc_threads_after_fork_child(void)
{
    spangc_thread *self = spangc_self;
    spangc_thread *t = threads.list;
    while (t) {
        spangc_thread *next = t->next;
        if (t != self) {
            spangc_mcache_release_all(&t->cache);
            if (t->tls)
                spangc_meta_free(t->tls, t->tls_cap * sizeof(tls_block));
            spangc_meta_free(t, sizeof *t);
        }
        t = next;
    }
    threads.list = self;
    threads.count = self ? 1 : 0;
    if (self) {
        self->next = self->prev = NULL;
        self->pthread = pthread_self();
        self->tid = spangc_os_gettid();
    }
    threads.pid = getpid();
    slock_init(&threads.lock);
    ao_uint_store(&threads.acks, 0);
    /* A thread held off by the fork may have counted itself in for a
     * moment (dl_enter), and another thread's fork may be
     * holding calls off: neither exists here. */
    ao_store(&threads.dl_listers, 0);
    ao_store(&threads.dl_forks, 0);
    /* The parent forked with the world stopped (atfork_prepare): end that
     * stop here, or the child's first stop would make the epoch even and
     * its new threads would take the signal for no stop at all. */
    if (ao_load(&threads.stop_epoch) & 1)
        ao_add(&threads.stop_epoch, 1);
    ao_store(&threads.fork_stop, 0);
}
