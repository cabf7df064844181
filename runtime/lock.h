/*
 * lock.h - spangc's mutex, and the order in which its locks are taken.
 *
 * Locks are held briefly and never across a call into the program (a
 * finalizer, the out-of-memory hook). The allocation fast path takes none.
 *
 * Lock order (outer first). A thread holding one of these may only take
 * locks further down the list:
 *
 *   1. world_lock       gc/gc.c         serializes collections; held across
 *                                       a whole cycle, including the
 *                                       stopped world
 *   2. threads_lock     runtime/thread.c  the registered-thread list
 *   3. roots_lock       gc/roots.c      ranges from gc_add_roots
 *   4. mcentral.lock    runtime/mcentral.c  one per span class; never two
 *                                       at once except in fork's prepare,
 *                                       which takes them in class order
 *   5. span.speciallock gc/specials.c   one span's specials list
 *   6. mheap.lock       runtime/mheap.c the page heap
 *   7. prof_lock        gc/profile.c    heap-profile buckets
 *   8. finq_lock        gc/finalizer.c  the finalizer queue
 *   9. meta_lock        runtime/metalloc.c  metadata memory (a leaf)
 *
 * Two rules keep the stop-the-world protocol deadlock-free (see
 * runtime/thread.c): locks 3-9 are taken only inside a thread's runtime
 * section or by spangc's own threads, so a thread is never stopped while
 * holding one; and world_lock and threads_lock, which the collector holds
 * while the world is stopped, are taken only outside runtime sections, so
 * a thread waiting for them can be stopped.
 *
 * The dynamic linker's lock (taken by dl_iterate_phdr, dlopen, dlclose)
 * comes before every spangc lock: a program thread may hold it in a
 * dl_iterate_phdr callback of its own and allocate, or collect. So spangc
 * calls dl_iterate_phdr holding none of its locks (a registering thread,
 * the collector's listing: gc/roots.c), and never with the world stopped;
 * fork waits for those calls to end instead (runtime/thread.c).
 *
 * world_lock and threads_lock are "stoppable" locks (spangc_slock),
 * taken outside runtime sections: a
 * waiter sleeps in pthread_cond_wait rather than in pthread_mutex_lock.
 * Both let a signal handler run, but ThreadSanitizer delivers signals to a
 * thread only at points it knows to be blocking, and a condition wait is
 * one; a mutex wait is not, so a stopped-world request would never reach
 * a thread queued on a plain mutex. Waiters also poll for a stop every few
 * milliseconds, for threads that get no signals at all (exiting ones).
 *
 * Cancellation. A thread that pthread_cancel acted on while it waited for
 * a stoppable lock (pthread_cond_timedwait is a cancellation point), or
 * while it held one (the cycle's trace is written with world_lock held),
 * would die owning it and hang every other thread. So a thread's
 * cancellation is disabled from the start of its first slock_acquire to
 * its last slock_release, as bdwgc disables it in its collector; and so
 * is it throughout gc_init, thread registration and gc_write_heap_profile,
 * which read or write files. spangc's calls are therefore no cancellation
 * points (threads.md). The inner locks need nothing: no cancellation point
 * is reached while one is held.
 */
#ifndef SPANGC_LOCK_H
#define SPANGC_LOCK_H

#include <pthread.h>
#include <time.h>

/* Adaptive: a waiter spins a little before it sleeps. The locks are held
 * for a few hundred instructions, and the two sides that meet most (an
 * allocating thread refilling its cache and the background sweeper, on
 * one mcentral) otherwise paid a futex wait and a futex wake per meeting,
 * 7 % of GCBench's time. */
typedef struct spangc_lock {
    pthread_mutex_t mu;
} spangc_lock;

#define SPANGC_LOCK_INIT {PTHREAD_ADAPTIVE_MUTEX_INITIALIZER_NP}

static inline void lock_init(spangc_lock *l)
{
    pthread_mutexattr_t a;
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_ADAPTIVE_NP);
    pthread_mutex_init(&l->mu, &a);
    pthread_mutexattr_destroy(&a);
}

/* Dies ("spangc: fatal:") if the calling thread is a registered one that
 * is neither in a runtime section nor the holder of world_lock: the first
 * rule above, checked at every acquisition (runtime/thread.c). A thread
 * stopped while it holds one of these locks deadlocks the collector, but
 * only when a stop happens to land there; the check finds the caller at
 * once. */
void spangc_lock_check_section(void);

static inline void lock_acquire(spangc_lock *l)
{
    spangc_lock_check_section();
    pthread_mutex_lock(&l->mu);
}

static inline void lock_release(spangc_lock *l)
{
    pthread_mutex_unlock(&l->mu);
}

/* A lock whose waiters can be stopped by the suspend signal (see above).
 * mu is held only for a few instructions, never while the world is
 * stopped. */
typedef struct spangc_slock {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int held;
} spangc_slock;

#define SPANGC_SLOCK_INIT {PTHREAD_MUTEX_INITIALIZER, PTHREAD_COND_INITIALIZER, 0}

static inline void slock_init(spangc_slock *l)
{
    pthread_mutex_init(&l->mu, NULL);
    pthread_cond_init(&l->cv, NULL);
    l->held = 0;
}

/* Stop the calling thread if a stop of the world is under way and it has
 * not stopped for it yet (runtime/thread.c). */
void spangc_thread_poll_stop(void);

/* Disable the calling thread's cancellation, counting nested calls; the
 * last spangc_cancel_restore puts back the state it had (thread.c). */
void spangc_cancel_hold(void);
void spangc_cancel_restore(void);

/* runtime_enter / runtime_leave for the calling thread, if registered
 * (runtime/thread.c; thread.h cannot be included here). */
void spangc_section_enter(void);
void spangc_section_leave(void);

/* Under ThreadSanitizer, mu is held inside a runtime section. It may
 * deliver the suspend signal as pthread_mutex_lock returns, and a thread
 * stopped there would hold mu while the others, queued on it, never see
 * their signal (a mutex wait is not a point where ThreadSanitizer delivers
 * one); the stop is deferred to the moment mu is released instead, at the
 * cost of a stop waiting up to a timed wait (2 ms) for a thread queued on
 * the lock. With real signals a thread blocked on mu is stopped all the
 * same, and the one holding it releases mu after the restart. */
#if defined(SPANGC_TSAN)
#define slock_section_enter() spangc_section_enter()
#define slock_section_leave() spangc_section_leave()
#else
#define slock_section_enter() ((void)0)
#define slock_section_leave() ((void)0)
#endif

static inline void slock_acquire(spangc_slock *l)
{
    spangc_cancel_hold();
    slock_section_enter();
    pthread_mutex_lock(&l->mu);
    while (l->held) {
        /* Wake now and then to offer to stop: a signal that arrived while
         * waiting may have been deferred, and a thread that is exiting
         * under ThreadSanitizer never runs the handler at all. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 2000000;
        if (ts.tv_nsec >= 1000000000) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000;
        }
        if (pthread_cond_timedwait(&l->cv, &l->mu, &ts) != 0) {
            pthread_mutex_unlock(&l->mu);
            slock_section_leave();
            spangc_thread_poll_stop();
            slock_section_enter();
            pthread_mutex_lock(&l->mu);
        }
    }
    l->held = 1;
    pthread_mutex_unlock(&l->mu);
    slock_section_leave();
}

static inline void slock_release(spangc_slock *l)
{
    slock_section_enter();
    pthread_mutex_lock(&l->mu);
    l->held = 0;
    pthread_cond_signal(&l->cv);
    pthread_mutex_unlock(&l->mu);
    slock_section_leave();
    spangc_cancel_restore();
}

#endif
