/*
 * os.h - the only boundary between spangc and the operating system's
 * memory calls. Memory moves through three states (Go's names in
 * brackets):
 *
 *   reserved  [Reserved]  address space mapped PROT_NONE: costs nothing,
 *                         not even commit charge, cannot be touched
 *   committed [Ready]     readable and writable; the kernel supplies zero
 *                         pages on first touch. Charged to the kernel's
 *                         overcommit accounting like malloc's memory, so
 *                         a commit the kernel would refuse malloc fails
 *                         here too (ENOMEM) instead of ending in the OOM
 *                         killer [Go: sysReserve without MAP_NORESERVE]
 *   released  [Prepared]  committed, but madvise(MADV_DONTNEED) gave the
 *                         physical pages back; the next touch faults in
 *                         zero pages again
 *
 * Metadata (spans, arena index pages, mark stacks, specials) comes from
 * spangc_os_alloc, separate mappings that are never part of the heap and
 * never scanned.
 */
#ifndef SPANGC_OS_H
#define SPANGC_OS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/* Reserve size bytes of address space at a multiple of align (a power of
 * two), preferably at hint. NULL if the address space is exhausted. */
void *spangc_os_reserve(size_t size, size_t align, void *hint);

/* Make reserved memory readable and writable. */
bool spangc_os_commit(void *p, size_t size);

/* Return the physical pages of committed memory to the OS; the range stays
 * usable and reads back as zeros. False if the kernel refused (locked
 * memory): then the pages keep their contents. */
bool spangc_os_release(void *p, size_t size);

/* Whether every page of [lo, hi) is mapped, readable or not. */
bool spangc_os_mapped(uintptr_t lo, uintptr_t hi);

/* Whether every page of [lo, hi) is mapped and readable. */
bool spangc_os_readable(uintptr_t lo, uintptr_t hi);

/* Copy up to n bytes from src, in this process, to dst without faulting:
 * the bytes copied, which stop short at a page that is unmapped or
 * unreadable (0 if the first one is). Through process_vm_readv, or where
 * a sandbox refuses that, /proc/thread-self/mem; -1 if both are refused
 * (or /proc is not mounted): the caller must then read in place, where it
 * finds the memory mapped, or not at all. */
long spangc_os_copy(void *dst, uintptr_t src, size_t n);

/* Copy n ranges, src[i] of len[i] bytes (n at most SPANGC_OS_COPY_MANY),
 * into dst one after another, with one system call. Returns how many,
 * from the first, were copied whole (a range that cannot be read stops
 * the copy there), or -1 where the system refuses the call: copy them one
 * at a time with spangc_os_copy then. */
#define SPANGC_OS_COPY_MANY 64
long spangc_os_copy_many(void *dst, const uintptr_t *src, const size_t *len, size_t n);

/* The calling thread's kernel id. */
pid_t spangc_os_gettid(void);

/* RAM plus swap, in bytes: more than this can never be committed. */
uint64_t spangc_os_memory_total(void);

/* Zeroed read-write memory for metadata, or NULL. */
void *spangc_os_alloc(size_t size);
void spangc_os_free(void *p, size_t size);

/* Test hook: make the n-th OS memory request from now on fail (and every
 * one after it while *sticky*); n 0 turns injection off. Releases are not
 * requests; spangc_os_inject_release_failure makes every one fail. */
void spangc_os_inject_failure(uint64_t n, bool sticky);
void spangc_os_inject_release_failure(bool on);

#endif
