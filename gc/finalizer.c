/*
 * finalizer.c - queued finalizers and where they run [Go: mfinal.go].
 *
 * Sweeping a dead object with a finalizer resurrects the object and
 * queues the finalizer's record here: the record gc_set_finalizer made
 * becomes the queue's node (specials.h), so queueing allocates nothing
 * and cannot fail, however little memory is left when the objects die.
 * The queue, guarded by finq_lock, is a root of marking: a queued object
 * (and everything it points to, and arg) stays alive until its finalizer
 * has been called. A record leaves the queue, and is freed, just before
 * its call; from then on the object is alive only if the finalizer or the
 * program keeps it so, and a later cycle frees it otherwise.
 *
 * Finalizers run from gc_run_finalizers on the calling thread, or on the
 * finalizer thread (GC_OPT_FINALIZER_THREAD). That thread is spangc's
 * own, but it runs program code, so it is a registered thread like any
 * other: it is stopped and its stack is scanned. No spangc lock is held
 * during a call, so a finalizer may allocate, set finalizers, and collect.
 */
#include "finalizer.h"

#include "mark.h"
#include "options.h"
#include "specials.h"
#include "sweep.h"
#include "../runtime/lock.h"
#include "../runtime/metalloc.h"
#include "../runtime/thread.h"

#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>

/* The queue (lock), first in first out: records are added at the tail
 * and taken at the head, so a finalizer waits only for those queued before
 * it, however many are queued after it (a stack let a steady stream of new
 * ones put the oldest off for ever). count is also read without the lock,
 * atomically, for the cheap empty test and as gc_run_finalizers' bound.
 * wake is a semaphore rather than a condition variable because pushers
 * (sweepers, inside runtime sections) must never wait for a lock the
 * stoppable finalizer thread might hold. */
static SPANGC_STATE struct {
    spangc_lock lock;
    special_finalizer *head; /* the oldest, NULL when the queue is empty */
    special_finalizer *tail; /* the newest */
    ao_word count;
    sem_t wake;             /* posted per queued record, for the finalizer thread */
    ao_word thread_started; /* 0, THREAD_STARTING, or 1 once it waits on wake */
} finq = {.lock = SPANGC_LOCK_INIT};

/* Tests only (finalizer.h): set by a test, cleared by the hook itself. */
SPANGC_STATE void (*volatile spangc_test_in_finalizer_start)(void);

/* One caller at a time starts the thread (a CAS from 0); the thread itself
 * moves the state on to 1, and from then on every push posts wake. */
#define THREAD_STARTING 2

void spangc_finq_push(special_finalizer *f, void *obj)
{
    f->queued.next = NULL;
    f->queued.obj = obj;
    lock_acquire(&finq.lock);
    if (finq.tail)
        finq.tail->queued.next = f;
    else
        finq.head = f;
    finq.tail = f;
    lock_release(&finq.lock);
    /* Both full barriers, with the thread's CAS to 1 before its first look
     * at count: either it sees this record, or this sees it started. */
    ao_add(&finq.count, 1);
    if (ao_load_acq(&finq.thread_started) == 1)
        sem_post(&finq.wake);
}

typedef struct finq_entry {
    gc_finalizer_fn fn;
    void *obj;
    void *arg;
} finq_entry;

/* Take the oldest record, copy it to out and free it; false if the queue
 * is empty. */
static bool finq_pop(finq_entry *out)
{
    spangc_thread *t = runtime_enter_self();
    lock_acquire(&finq.lock);
    special_finalizer *f = finq.head;
    if (f) {
        finq.head = f->queued.next;
        if (!finq.head)
            finq.tail = NULL;
        *out = (finq_entry){f->fn, f->queued.obj, f->arg};
    }
    lock_release(&finq.lock);
    if (f) {
        ao_sub(&finq.count, 1);
        spangc_meta_free(f, sizeof *f);
    }
    runtime_leave_self(t);
    return f != NULL;
}

int gc_set_finalizer(void *obj, gc_finalizer_fn fn, void *arg)
{
    spangc_thread *t = spangc_self;
    uintptr_t p = (uintptr_t)obj;
    if (!t)
        return -EPERM;
    if (!obj)
        return -EINVAL;
    special_finalizer *rec = NULL;
    if (fn && !(rec = spangc_meta_alloc(sizeof *rec)))
        return -ENOMEM;
    int err = 0;
    runtime_enter(t);
    mspan *s;
    uint32_t idx;
    if (!spangc_find_base(p, &s, &idx)) {
        err = -EINVAL;
    } else if (fn) {
        rec->fn = fn;
        rec->arg = arg;
        err = spangc_special_add(s, p, &rec->s, SPECIAL_FINALIZER, true);
        if (err == 0)
            rec = NULL;
    } else {
        special *old = spangc_special_remove(s, p, SPECIAL_FINALIZER);
        if (old)
            spangc_special_free(old);
        else
            err = -ENOENT;
    }
    runtime_leave(t);
    if (rec)
        spangc_meta_free(rec, sizeof *rec);
    return err;
}

size_t gc_run_finalizers(void)
{
    /* An unregistered thread's stack is not scanned: obj and arg, once
     * out of the queue, would be held only there and could be freed while
     * the finalizer runs. */
    size_t queued = ao_load_acq(&finq.count);
    if (queued == 0 || !spangc_self)
        return 0;
    /* Only as many as were queued when the call began: the queue is
     * FIFO, so those are the ones taken first (unless another thread
     * takes some), and a call returns even while other threads' cycles,
     * or its own finalizers, keep queuing more. */
    size_t ran = 0;
    finq_entry e;
    while (ran < queued && finq_pop(&e)) {
        /* e lives on this stack while fn runs: obj and arg stay alive. */
        e.fn(e.obj, e.arg);
        ran++;
    }
    return ran;
}

void spangc_finq_mark(void)
{
    for (special_finalizer *f = finq.head; f; f = f->queued.next) {
        spangc_mark_word((uintptr_t)f->queued.obj);
        spangc_mark_word((uintptr_t)f->arg);
    }
    spangc_mark_drain();
}

static void *finalizer_thread(void *arg)
{
    (void)arg;
    /* Only spangc's stop signal and synchronous faults reach this thread. */
    sigset_t all;
    sigfillset(&all);
    sigdelset(&all, spangc_cfg.suspend_signal);
    pthread_sigmask(SIG_BLOCK, &all, NULL);
    if (gc_register_thread() != 0) {
        ao_store_rel(&finq.thread_started, 0); /* try again after the next cycle */
        return NULL;
    }
    ao_cas(&finq.thread_started, THREAD_STARTING, 1);
    for (;;) {
        while (ao_load_acq(&finq.count) == 0)
            sem_wait(&finq.wake);
        gc_run_finalizers();
    }
    return NULL;
}

/* Called after every cycle by whichever thread ran it: several may race
 * here (in a forked child, the first cycles of its threads), and only the
 * CAS's winner may create the thread and initialise wake, which another
 * finalizer thread could otherwise be waiting on. */
void spangc_finalizer_thread_start(void)
{
    if (!spangc_cfg.finalizer_thread || ao_load_acq(&finq.thread_started) ||
        !ao_cas(&finq.thread_started, 0, THREAD_STARTING))
        return;
    if (unlikely(spangc_test_in_finalizer_start != NULL))
        spangc_test_in_finalizer_start();
    pthread_t th;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    sem_init(&finq.wake, 0, 0);
    if (pthread_create(&th, &attr, finalizer_thread, NULL) != 0)
        ao_store_rel(&finq.thread_started, 0); /* try again after the next cycle */
    pthread_attr_destroy(&attr);
}

void spangc_finq_lock(void)
{
    lock_acquire(&finq.lock);
}

void spangc_finq_unlock(void)
{
    lock_release(&finq.lock);
}

void spangc_finq_reinit_child(void)
{
    ao_store(&finq.thread_started, 0); /* threads do not survive fork */
}
