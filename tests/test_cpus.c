/*
 * test_cpus.c - how many CPUs the process may use (runtime/cpus.c): the
 * affinity mask, and the cgroup CPU quota read from fake cgroup trees laid
 * out in a temporary directory (v2, v1, a namespaced mount, and files
 * that are missing or malformed).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cpus.h"

static char root[256];

/* Write text to root + path, making the directories on the way. */
static void put(const char *path, const char *text)
{
    char name[1024];
    snprintf(name, sizeof name, "%s%s", root, path);
    for (char *slash = strchr(name + strlen(root) + 1, '/'); slash; slash = strchr(slash + 1, '/')) {
        *slash = 0;
        mkdir(name, 0755);
        *slash = '/';
    }
    FILE *f = fopen(name, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static int make_root(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/spangc-test-cpus-XXXXXX");
    return mkdtemp(root) ? 0 : -1;
}

static int remove_root(void **state)
{
    (void)state;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", root);
    return system(cmd) == 0 ? 0 : -1;
}

#define MOUNTINFO_V2                                                                        \
    "22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/vda1 rw\n"                               \
    "29 22 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:4 - cgroup2 "       \
    "cgroup2 rw,nsdelegate\n"

/* v2: the smallest quota on the way up counts, rounded up; "max" is none. */
static void test_v2_quota(void **state)
{
    (void)state;
    put("/proc/self/cgroup", "0::/kubepods/pod1/c1\n");
    put("/proc/self/mountinfo", MOUNTINFO_V2);
    put("/sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "max 100000\n");
    put("/sys/fs/cgroup/kubepods/pod1/cpu.max", "150000 100000\n");
    put("/sys/fs/cgroup/kubepods/cpu.max", "400000 100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 2);
    put("/sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "800000 100000\n"); /* a parent's is smaller */
    assert_int_equal(spangc_cgroup_cpu_quota(root), 2);
    put("/sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "50000 100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 1);
    put("/sys/fs/cgroup/kubepods/pod1/c1/cpu.max", "max 100000\n");
    put("/sys/fs/cgroup/kubepods/pod1/cpu.max", "max 100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 4);
    put("/sys/fs/cgroup/kubepods/cpu.max", "max 100000");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
}

/* v1: the cpu controller's hierarchy, found by its mount's options, even
 * where a v2 hierarchy is mounted too (the hybrid layout). */
static void test_v1_quota(void **state)
{
    (void)state;
    put("/proc/self/cgroup", "12:pids:/docker/abc\n"
                             "4:cpu,cpuacct:/docker/abc\n"
                             "0::/docker/abc\n");
    put("/proc/self/mountinfo",
        "22 1 8:1 / / rw - ext4 /dev/vda1 rw\n"
        "31 22 0:28 / /sys/fs/cgroup rw - tmpfs tmpfs rw,mode=755\n"
        "33 31 0:30 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpuacct\n"
        "34 31 0:31 / /sys/fs/cgroup/cpu,cpuacct rw,relatime - cgroup cgroup rw,cpu,cpuacct\n"
        "41 31 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n");
    put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "300000\n");
    put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    put("/sys/fs/cgroup/unified/docker/abc/cpu.max", "100000 100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 3);
    /* The period is read, not assumed to be the kernel's default. */
    put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "50000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 6);
    put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_period_us", "100000\n");
    put("/sys/fs/cgroup/cpu,cpuacct/docker/abc/cpu.cfs_quota_us", "-1\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_quota_us", "250000\n");
    put("/sys/fs/cgroup/cpu,cpuacct/cpu.cfs_period_us", "100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 3); /* the root's own, rounded up */
}

/* A mount that shows only part of the hierarchy (a cgroup namespace, or a
 * container's bind mount): the path is taken relative to the mount's root;
 * a cgroup that no mount shows has no quota. Escaped characters in the
 * mount point are undone. */
static void test_mount_root(void **state)
{
    (void)state;
    const char *one_mount = "29 22 0:26 /kubepods/pod1 /sys/fs/my\\040cgroup rw - cgroup2 "
                            "cgroup2 rw\n";
    put("/proc/self/cgroup", "0::/kubepods/pod1/c1\n");
    put("/proc/self/mountinfo", one_mount);
    put("/sys/fs/my cgroup/c1/cpu.max", "200000 100000\n");
    put("/sys/fs/my cgroup/cpu.max", "max 100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 2);
    put("/proc/self/cgroup", "0::/kubepods/pod2/c1\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
    /* A prefix of the path that is not a parent: "/kubepods/pod1" does not
     * show "/kubepods/pod1x" (taking it for one would read the quota
     * below). */
    put("/proc/self/cgroup", "0::/kubepods/pod1x\n");
    put("/sys/fs/my cgroupx/cpu.max", "500000 100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
    /* Another mount of the hierarchy, listed later, that does show it. */
    char two_mounts[512];
    snprintf(two_mounts, sizeof two_mounts, "%s%s", one_mount,
             "30 22 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n");
    put("/proc/self/mountinfo", two_mounts);
    put("/proc/self/cgroup", "0::/kubepods/pod2/c1\n");
    put("/sys/fs/cgroup/kubepods/pod2/c1/cpu.max", "300000 100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 3);
}

/* Missing, malformed or unusual files mean no quota, never a crash or a
 * made-up number; a very long mountinfo line is skipped, not misread. */
static void test_bad_files(void **state)
{
    (void)state;
    put("/proc/self/cgroup", "0::/a\n");
    put("/proc/self/mountinfo", MOUNTINFO_V2);
    put("/sys/fs/cgroup/a/cpu.max", "garbage\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
    put("/sys/fs/cgroup/a/cpu.max", "100000 0\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
    put("/sys/fs/cgroup/a/cpu.max", "100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
    put("/sys/fs/cgroup/a/cpu.max", "100000 100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 1);

    char *line = malloc(10000);
    assert_non_null(line);
    /* Too long, so skipped whole: its tail, past the reading buffer,
     * would pass for a cgroup2 mount at /bogus, whose quota is 3 CPUs. */
    memset(line, 'x', 9000);
    strcpy(line + 9000, " 2 0:1 / /bogus rw - cgroup2 cgroup2 rw\n");
    put("/bogus/a/cpu.max", "300000 100000\n");
    char *info = malloc(11000);
    assert_non_null(info);
    snprintf(info, 11000, "%s%s", line, MOUNTINFO_V2);
    put("/proc/self/mountinfo", info);
    assert_int_equal(spangc_cgroup_cpu_quota(root), 1);
    free(info);
    free(line);

    put("/proc/self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/vda1 rw\n"); /* no cgroup2 mount */
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
    put("/proc/self/cgroup", "");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
    assert_int_equal(spangc_cgroup_cpu_quota("/nonexistent-spangc-root"), 0);
}

/* The calling thread's /proc files come first (/proc/self is the main
 * thread's, unreadable once it has exited); /proc/self is the fallback. */
static void test_thread_self_first(void **state)
{
    (void)state;
    put("/proc/self/cgroup", "0::/s\n");
    put("/proc/self/mountinfo", MOUNTINFO_V2);
    put("/sys/fs/cgroup/s/cpu.max", "300000 100000\n");
    put("/sys/fs/cgroup/t/cpu.max", "100000 100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 3);
    put("/proc/thread-self/cgroup", "0::/t"); /* no newline at the end */
    assert_int_equal(spangc_cgroup_cpu_quota(root), 1);
    put("/proc/thread-self/mountinfo", "22 1 8:1 / / rw - ext4 /dev/vda1 rw\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0); /* its own mountinfo wins too */
    char name[1024];
    snprintf(name, sizeof name, "%s/proc/thread-self/cgroup", root);
    unlink(name);
    snprintf(name, sizeof name, "%s/proc/thread-self/mountinfo", root);
    unlink(name);
}

/* The walk stops at the mount point; a line that straddles two reads is
 * put together; a cgroup path too long to name its files, or one with a
 * ".." (outside its cgroup namespace), gives no quota rather than a
 * parent's or a stranger's. */
static void test_walk_and_edges(void **state)
{
    (void)state;
    put("/proc/self/cgroup", "0::/a\n");
    put("/sys/fs/cgroup/a/cpu.max", "max 100000\n");
    put("/sys/fs/cpu.max", "100000 100000\n"); /* above the mount point */
    /* A first line of about 2,030 bytes: the cgroup2 line after it
     * straddles the end of the first 2,047-byte read. */
    char first[2100];
    int n = snprintf(first, sizeof first, "1 1 8:1 / /");
    memset(first + n, 'y', 1990);
    strcpy(first + n + 1990, " rw - ext4 /dev/vda1 rw\n");
    char info[2400];
    snprintf(info, sizeof info, "%s%s", first, MOUNTINFO_V2);
    put("/proc/self/mountinfo", info);
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
    put("/sys/fs/cgroup/a/cpu.max", "200000 100000\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 2);

    /* A path of about 1,000 bytes: its own file's name would not fit. */
    char deep[1100] = "0::/a";
    for (int i = 0; i < 4; i++) {
        size_t len = strlen(deep);
        deep[len] = '/';
        memset(deep + len + 1, 'd' + i, 240);
        deep[len + 241] = 0;
    }
    char file[1200];
    snprintf(file, sizeof file, "/sys/fs/cgroup%s/cpu.max", deep + 3);
    put(file, "100000 100000\n");
    strcat(deep, "\n");
    put("/proc/self/cgroup", deep);
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);

    put("/proc/self/cgroup", "0::/../a\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
    put("/proc/self/cgroup", "0::/a/..\n");
    assert_int_equal(spangc_cgroup_cpu_quota(root), 0);
}

/* The affinity mask: pinned to one CPU, one; with the mask restored, the
 * count of its CPUs (or the real quota, if smaller). */
static void test_affinity(void **state)
{
    (void)state;
    cpu_set_t saved, one;
    assert_int_equal(pthread_getaffinity_np(pthread_self(), sizeof saved, &saved), 0);
    int first = 0;
    while (!CPU_ISSET(first, &saved))
        first++;
    CPU_ZERO(&one);
    CPU_SET(first, &one);
    assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof one, &one), 0);
    assert_int_equal(spangc_cpus_usable(), 1);
    assert_int_equal(pthread_setaffinity_np(pthread_self(), sizeof saved, &saved), 0);
    unsigned all = (unsigned)CPU_COUNT(&saved), quota = spangc_cgroup_cpu_quota("");
    assert_int_equal(spangc_cpus_usable(), quota && quota < all ? quota : all);
    /* A quota below the mask's count wins, one above it does not (this
     * host may have none of its own to show it). */
    assert_int_equal(spangc_cpus_usable_under(0), all);
    assert_int_equal(spangc_cpus_usable_under(all + 1), all);
    if (all > 1)
        assert_int_equal(spangc_cpus_usable_under(all - 1), all - 1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_v2_quota),   cmocka_unit_test(test_v1_quota),
        cmocka_unit_test(test_mount_root), cmocka_unit_test(test_bad_files),
        cmocka_unit_test(test_thread_self_first), cmocka_unit_test(test_walk_and_edges),
        cmocka_unit_test(test_affinity),
    };
    return cmocka_run_group_tests(tests, make_root, remove_root);
}
