/*
 * wakeup - what waking a blocked thread costs on this machine.
 *
 * Why: stopping the world with signals wakes every blocked registered
 * thread twice (the stop signal, then the restart), so a stop with T
 * threads costs about 2T wake-ups and context switches no matter what
 * spangc does (see stw.c). How much one of those costs depends on the
 * machine far more than on the collector: on the same CPU it is a context
 * switch; on another, idle CPU it is an inter-processor interrupt, and
 * under a hypervisor waking an idle virtual CPU can cost tens of
 * microseconds. This probe measures both, so that the stw figures of a
 * machine can be read against its floor. It is not a contender benchmark:
 * it never touches spangc.
 *
 * Two threads, each pinned to a CPU, take turns:
 *   futex   A wakes B through a futex and sleeps until B wakes it back;
 *   signal  A sends B (blocked in pause) a signal with tgkill and waits,
 *           yielding its CPU, until B's handler has run: the stop
 *           signal's round trip, without the restart.
 * Both are measured with B on A's CPU and with B on the other CPU.
 *
 * Usage: wakeup [-n round-trips]       (default 20000 per case)
 */
#define _GNU_SOURCE
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

enum mode { FUTEX, SIGNAL };

static atomic_uint ping, pong;  /* futex words: 1 while a turn is pending */
static atomic_uint handled;     /* signals B has handled */
static atomic_int partner_tid;
static enum mode mode;
static int partner_cpu;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static void futex_wait(atomic_uint *w, unsigned val)
{
    syscall(SYS_futex, w, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake(atomic_uint *w)
{
    syscall(SYS_futex, w, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0);
}

static int pin(int cpu)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(cpu, &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

static void on_signal(int sig)
{
    (void)sig;
    atomic_fetch_add(&handled, 1);
}

/* B: answers every turn until the process exits. */
static void *partner(void *arg)
{
    (void)arg;
    if (pin(partner_cpu) != 0) {
        fprintf(stderr, "wakeup: cannot pin to CPU %d\n", partner_cpu);
        exit(1);
    }
    atomic_store(&partner_tid, (int)syscall(SYS_gettid));
    for (;;) {
        if (mode == SIGNAL) {
            pause();
            continue;
        }
        while (atomic_load(&ping) == 0)
            futex_wait(&ping, 0);
        atomic_store(&ping, 0);
        atomic_store(&pong, 1);
        futex_wake(&pong);
    }
    return NULL;
}

/* One case in a child process, so that each starts with fresh threads. */
static double run_case(enum mode m, int cpu, int n)
{
    int fd[2];
    if (pipe(fd) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        mode = m;
        partner_cpu = cpu;
        signal(SIGUSR1, on_signal);
        pthread_t t;
        if (pin(0) != 0 || pthread_create(&t, NULL, partner, NULL) != 0)
            _exit(1);
        while (atomic_load(&partner_tid) == 0)
            usleep(1000);
        usleep(10000); /* let B block */
        uint64_t t0 = now_ns();
        for (int i = 0; i < n; i++) {
            if (m == FUTEX) {
                atomic_store(&ping, 1);
                futex_wake(&ping);
                while (atomic_load(&pong) == 0)
                    futex_wait(&pong, 0);
                atomic_store(&pong, 0);
            } else {
                unsigned before = atomic_load(&handled);
                syscall(SYS_tgkill, getpid(), atomic_load(&partner_tid), SIGUSR1);
                while (atomic_load(&handled) == before)
                    sched_yield();
            }
        }
        double us = (double)(now_ns() - t0) / n / 1e3;
        if (write(fd[1], &us, sizeof us) != sizeof us)
            _exit(1);
        _exit(0);
    }
    close(fd[1]);
    double us = -1;
    if (pid < 0 || read(fd[0], &us, sizeof us) != sizeof us)
        us = -1;
    close(fd[0]);
    if (pid > 0) {
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
    }
    return us;
}

int main(int argc, char **argv)
{
    int n = 20000, opt;
    while ((opt = getopt(argc, argv, "n:")) != -1) {
        if (opt != 'n' || (n = atoi(optarg)) < 1) {
            fprintf(stderr, "usage: %s [-n round-trips]\n", argv[0]);
            return 1;
        }
    }
    long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
    const char *name[] = {"futex", "signal"};
    for (int m = FUTEX; m <= SIGNAL; m++) {
        double same = run_case(m, 0, n);
        double other = ncpu > 1 ? run_case(m, 1, n) : -1;
        /* -1: the case could not run (one CPU, or pinning refused). */
        printf("%-6s round trip: same CPU %.2f us, other CPU %.2f us%s\n", name[m], same, other,
               same < 0 || other < 0 ? " (-1: could not run)" : "");
        printf("RESULT bench=wakeup mode=%s same_cpu_us=%.2f other_cpu_us=%.2f\n", name[m], same,
               other);
    }
    return 0;
}
