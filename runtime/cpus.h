/*
 * cpus.h - how many CPUs the process may use (cpus.c).
 */
#ifndef SPANGC_CPUS_H
#define SPANGC_CPUS_H

/* The CPUs the calling thread may run on (its affinity mask), no more
 * than the CPU quota of the process's cgroup, at least 1. The quota is
 * read at the first call and kept; the caller holds world_lock. */
unsigned spangc_cpus_usable(void);

/* The same under a quota of whole CPUs (0: none) given by the caller, for
 * tests on a host whose cgroup has none. */
unsigned spangc_cpus_usable_under(unsigned quota);

/* The cgroup CPU quota, rounded up to whole CPUs, or 0 if there is none
 * (or it cannot be read), with every file read at root followed by its
 * usual path: "" for the process's own files, a directory in which tests
 * lay out proc/self/{cgroup,mountinfo} and the cgroup tree. */
unsigned spangc_cgroup_cpu_quota(const char *root);

#endif
