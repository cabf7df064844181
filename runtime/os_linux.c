/*
 * os_linux.c - reserve, commit, release and metadata mappings on Linux,
 * and whether a range is mapped.
 * See os.h for the memory states.
 */
#include "os.h"

#include "atomic.h"
#include "base.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/uio.h>
#include <sys/sysinfo.h>
#include <sys/syscall.h>
#include <unistd.h>

/* Failure injection for tests (runtime/os.h). Written by the test thread
 * before the operations it targets; read with atomics by any thread. */
static SPANGC_STATE ao_word inject_countdown;
static SPANGC_STATE ao_word inject_sticky;
static SPANGC_STATE ao_word inject_release_failure;

void spangc_os_inject_release_failure(bool on)
{
    ao_store(&inject_release_failure, on);
}

void spangc_os_inject_failure(uint64_t n, bool sticky)
{
    ao_store(&inject_sticky, sticky);
    ao_store(&inject_countdown, n);
}

/* True if this request should fail. */
static bool injected_failure(void)
{
    for (;;) {
        uintptr_t n = ao_load(&inject_countdown);
        if (n == 0)
            return false;
        if (n == 1) {
            if (ao_load(&inject_sticky))
                return true;
            if (ao_cas(&inject_countdown, 1, 0))
                return true;
            continue;
        }
        if (ao_cas(&inject_countdown, n, n - 1))
            return false;
    }
}

void *spangc_os_reserve(size_t size, size_t align, void *hint)
{
    if (injected_failure())
        return NULL;
    int flags = MAP_PRIVATE | MAP_ANONYMOUS;
    if (hint) {
        void *p = mmap(hint, size, PROT_NONE, flags, -1, 0);
        if (p == hint)
            return p;
        if (p != MAP_FAILED)
            munmap(p, size);
    }
    /* Over-reserve by align and trim both ends to get an aligned range. */
    size_t len = size + align;
    if (len < size)
        return NULL;
    char *raw = mmap(NULL, len, PROT_NONE, flags, -1, 0);
    if (raw == MAP_FAILED)
        return NULL;
    char *p = (char *)round_up((uintptr_t)raw, align);
    if (p > raw)
        munmap(raw, (size_t)(p - raw));
    size_t tail = (size_t)((raw + len) - (p + size));
    if (tail)
        munmap(p + size, tail);
    return p;
}

bool spangc_os_commit(void *p, size_t size)
{
    if (injected_failure())
        return false;
    return mprotect(p, size, PROT_READ | PROT_WRITE) == 0;
}

bool spangc_os_release(void *p, size_t size)
{
    if (ao_load(&inject_release_failure))
        return false;
    return madvise(p, size, MADV_DONTNEED) == 0;
}

/* mincore fails with ENOMEM on a hole (a mapped page without read access
 * passes). */
bool spangc_os_mapped(uintptr_t lo, uintptr_t hi)
{
    enum { CHUNK_PAGES = 4096 };
    unsigned char vec[CHUNK_PAGES]; /* residency, not looked at */
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    for (uintptr_t p = lo & ~(uintptr_t)(page - 1); p < hi;) {
        size_t len = hi - p > CHUNK_PAGES * page ? CHUNK_PAGES * page : hi - p;
        if (mincore((void *)p, len, vec) != 0 && errno == ENOMEM)
            return false;
        p += len;
    }
    return true;
}

/* process_vm_readv on this process reads its memory as the kernel sees
 * it: a page that is unmapped or unreadable ends the copy with EFAULT (or
 * short) instead of faulting. Sandboxes may refuse it: ENOSYS, EPERM.
 * The process is named by the calling thread's id, not getpid(): once the
 * main thread has exited (pthread_exit), the process id names a zombie
 * without memory, and the call fails with ESRCH. */
pid_t spangc_os_gettid(void)
{
    return (pid_t)syscall(SYS_gettid);
}

static bool refused(long got)
{
    return got < 0 && (errno == ENOSYS || errno == EPERM);
}

/* The same copy through the calling thread's memory file (for the reason
 * above), for a sandbox that refuses process_vm_readv but lets the process
 * open that file (a seccomp filter naming the one call). A read that meets
 * an unmapped page stops short there, or fails with EIO at the first byte.
 * The file is opened for each copy rather than kept: an fd kept open would
 * read the parent's memory in a forked child, and a program that closes
 * every fd it did not open (daemons do) could hand its number to another
 * file. Only ever used where process_vm_readv is refused, so its cost (an
 * open and a close per 16 KiB copied) is a sandbox's only. */
static long copy_through_proc_mem(void *dst, uintptr_t src, size_t n)
{
    int fd = open("/proc/thread-self/mem", O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    ssize_t got = pread(fd, dst, n, (off_t)src);
    int err = errno;
    close(fd);
    if (got < 0)
        return err == EIO || err == EFAULT ? 0 : -1;
    return got;
}

long spangc_os_copy(void *dst, uintptr_t src, size_t n)
{
    struct iovec to = {dst, n}, from = {(void *)src, n};
    long got = process_vm_readv(spangc_os_gettid(), &to, 1, &from, 1, 0);
    if (refused(got))
        return copy_through_proc_mem(dst, src, n);
    return got < 0 ? 0 : got;
}

long spangc_os_copy_many(void *dst, const uintptr_t *src, const size_t *len, size_t n)
{
    struct iovec to = {dst, 0}, from[SPANGC_OS_COPY_MANY];
    if (n > SPANGC_OS_COPY_MANY)
        n = SPANGC_OS_COPY_MANY;
    for (size_t i = 0; i < n; i++) {
        from[i] = (struct iovec){(void *)src[i], len[i]};
        to.iov_len += len[i];
    }
    long got = process_vm_readv(spangc_os_gettid(), &to, 1, from, n, 0);
    if (refused(got))
        return -1;
    /* The kernel copies whole remote ranges only, in order. */
    size_t whole = 0, bytes = 0;
    while (got > 0 && whole < n && (bytes += len[whole]) <= (size_t)got)
        whole++;
    return (long)whole;
}

bool spangc_os_readable(uintptr_t lo, uintptr_t hi)
{
    /* One byte of each page, with process_vm_readv (mincore takes a
     * PROT_NONE page for a good one); where a sandbox refuses the call,
     * whether the pages are mapped. 64 pages a call: the caller may be on
     * a small (coroutine) stack. */
    enum { PAGES = 64 };
    char sink[PAGES];
    struct iovec local = {sink, 0}, remote[PAGES];
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    pid_t pid = spangc_os_gettid();
    for (uintptr_t p = lo; p < hi;) {
        size_t n = 0;
        for (; n < PAGES && p < hi; n++) {
            remote[n] = (struct iovec){(void *)p, 1};
            p = (p & ~(uintptr_t)(page - 1)) + page;
        }
        local.iov_len = n;
        ssize_t got = process_vm_readv(pid, &local, 1, remote, n, 0);
        if (refused(got))
            return spangc_os_mapped(lo, hi);
        if (got != (ssize_t)n)
            return false;
    }
    return true;
}

uint64_t spangc_os_memory_total(void)
{
    struct sysinfo si;
    if (sysinfo(&si) != 0)
        return UINT64_MAX;
    uint64_t unit = si.mem_unit ? si.mem_unit : 1;
    return ((uint64_t)si.totalram + si.totalswap) * unit;
}

void *spangc_os_alloc(size_t size)
{
    if (injected_failure())
        return NULL;
    void *p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? NULL : p;
}

void spangc_os_free(void *p, size_t size)
{
    munmap(p, size);
}
