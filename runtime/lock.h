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
 * runtime/thread.c): locks 2-9 are taken only inside a thread's runtime
 * section or by spangc's own threads, so a thread is never stopped while
 * holding one; and world_lock is taken only outside a runtime section, so
 * a thread waiting for it can be stopped.
 */
#ifndef SPANGC_LOCK_H
#define SPANGC_LOCK_H

#include <pthread.h>

typedef struct spangc_lock {
    pthread_mutex_t mu;
} spangc_lock;

#define SPANGC_LOCK_INIT {PTHREAD_MUTEX_INITIALIZER}

static inline void lock_init(spangc_lock *l)
{
    pthread_mutex_init(&l->mu, NULL);
}

static inline void lock_acquire(spangc_lock *l)
{
    pthread_mutex_lock(&l->mu);
}

static inline void lock_release(spangc_lock *l)
{
    pthread_mutex_unlock(&l->mu);
}

#endif
