/*
 * cpus.c - how many CPUs the process may use: the default number of
 * markers (gc/mark.c) [Go 1.25 sets its default GOMAXPROCS the same way].
 *
 * sysconf's count of online CPUs says what the machine has, not what the
 * process gets. Two limits are narrower, and the smaller wins:
 *
 *  - the affinity mask (taskset, cpusets, docker --cpuset-cpus): the CPUs
 *    the calling thread may run on, asked at every call (one system call);
 *  - the CPU bandwidth quota of the process's cgroup (docker --cpus,
 *    Kubernetes CPU limits): quota / period rounded up, the smallest along
 *    the path from the process's cgroup up to the root of its hierarchy;
 *    cgroup v2's cpu.max, or v1's cpu.cfs_quota_us and cpu.cfs_period_us
 *    (a v1 cpu controller is preferred: where both hierarchies are
 *    mounted, the cpu controller is in v1). Read once, at the first call:
 *    it takes a dozen file reads, and a quota is set when a container
 *    starts.
 *
 * With the online count, a process in a 2-CPU container on a 64-CPU host
 * started 8 markers sharing 2 CPUs' worth of time, and a marker that the
 * scheduler preempts while it holds grey objects holds the mark up.
 *
 * Finding the files: /proc/self/cgroup names the process's cgroup ("0::/p"
 * for v2, "N:cpu,cpuacct:/p" for v1), relative to the root of its cgroup
 * namespace; /proc/self/mountinfo says where that hierarchy is mounted and
 * which of its directories the mount shows (field 4, the mount's root).
 * The cgroup's directory is the mount point followed by the path less the
 * mount's root. Anything unexpected (no such mount, a path outside the
 * mount, an unreadable or malformed file, a path too long for the
 * buffers) means no quota, and the affinity mask alone counts.
 *
 * The /proc files are those of the calling thread (/proc/thread-self),
 * falling back to /proc/self before Linux 3.17: /proc/self is the main
 * thread's, and once the main thread has exited the kernel refuses to
 * open its mountinfo. Files are read with open and read, no stdio, into
 * buffers mapped for the one reading (struct scratch): the collector may
 * run on a coroutine's small stack, and these take 8 KiB.
 */
#include "cpus.h"

#include "base.h"
#include "os.h"

#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PATH_BYTES 1024
#define LINE_BYTES 2048

/* ---- reading files ------------------------------------------------------------ */

typedef struct cgroup_paths {
    char v1[PATH_BYTES], v2[PATH_BYTES]; /* from /proc/.../cgroup */
    bool has_v1, has_v2;
} cgroup_paths;

typedef struct cgroup_mount {
    int version;
    const char *path;       /* the process's cgroup, which the mount must show */
    char root[PATH_BYTES];  /* the hierarchy's directory the mount shows */
    char point[PATH_BYTES]; /* where it is mounted */
    bool found;
} cgroup_mount;

typedef struct scratch {
    char name[PATH_BYTES]; /* the file being opened */
    char line[LINE_BYTES]; /* each_line's buffer */
    char dir[PATH_BYTES];  /* the cgroup directory, cut as the walk goes up */
    cgroup_paths cg;
    cgroup_mount m;
} scratch;

/* Open the file named a followed by b for reading; -1 if it cannot be. */
static int open_joined(scratch *sc, const char *a, const char *b)
{
    if ((size_t)snprintf(sc->name, sizeof sc->name, "%s%s", a, b) >= sizeof sc->name)
        return -1;
    return open(sc->name, O_RDONLY | O_CLOEXEC);
}

/* Call fn on each line of the file root + path, the newline removed, until
 * fn returns true. Lines longer than LINE_BYTES are skipped (mountinfo's
 * overlay mounts can list long options; no cgroup line is that long).
 * False if the file cannot be opened. */
static bool each_line(scratch *sc, const char *root, const char *path,
                      bool (*fn)(char *line, void *arg), void *arg)
{
    int fd = open_joined(sc, root, path);
    if (fd < 0)
        return false;
    char *buf = sc->line;
    const size_t size = sizeof sc->line;
    size_t have = 0;
    bool skipping = false; /* inside a line too long for buf */
    for (;;) {
        ssize_t got = read(fd, buf + have, size - 1 - have);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0) {
            buf[have] = 0; /* a last line without a newline */
            if (have > 0 && !skipping)
                (void)fn(buf, arg);
            break;
        }
        have += (size_t)got;
        char *line = buf, *nl;
        bool stop = false;
        while (!stop && (nl = memchr(line, '\n', (size_t)(buf + have - line))) != NULL) {
            *nl = 0;
            stop = !skipping && fn(line, arg);
            skipping = false;
            line = nl + 1;
        }
        if (stop)
            break;
        have = (size_t)(buf + have - line);
        memmove(buf, line, have);
        if (have == size - 1) {
            skipping = true;
            have = 0;
        }
    }
    close(fd);
    return true;
}

typedef struct first_line {
    char *buf;
    size_t size;
    bool got;
} first_line;

static bool take_first_line(char *line, void *arg)
{
    first_line *f = arg;
    size_t n = strlen(line);
    if (n < f->size) {
        memcpy(f->buf, line, n + 1);
        f->got = true;
    }
    return true;
}

/* The first line of the file dir + file, if it has fewer than size bytes. */
static bool read_first_line(scratch *sc, const char *dir, const char *file, char *buf, size_t size)
{
    first_line f = {buf, size, false};
    return each_line(sc, dir, file, take_first_line, &f) && f.got;
}

/* Whether the comma-separated list holds item. */
static bool list_has(const char *list, const char *item)
{
    size_t n = strlen(item);
    for (const char *p = list;;) {
        const char *comma = strchr(p, ',');
        size_t len = comma ? (size_t)(comma - p) : strlen(p);
        if (len == n && memcmp(p, item, n) == 0)
            return true;
        if (!comma)
            return false;
        p = comma + 1;
    }
}

/* Copy src into dst[PATH_BYTES], undoing mountinfo's octal escapes (a
 * space is \040); false if it does not fit. */
static bool copy_unescaped(char *dst, const char *src)
{
    size_t n = 0;
    for (const char *s = src; *s; s++) {
        char c = *s;
        if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
            s[3] >= '0' && s[3] <= '7') {
            c = (char)((s[1] - '0') * 64 + (s[2] - '0') * 8 + (s[3] - '0'));
            s += 3;
        }
        if (n + 1 >= PATH_BYTES)
            return false;
        dst[n++] = c;
    }
    dst[n] = 0;
    return true;
}

/* ---- where the cgroup is ------------------------------------------------------- */

/* A line of /proc/.../cgroup: "id:controllers:path". */
static bool note_cgroup(char *line, void *arg)
{
    cgroup_paths *cg = arg;
    char *colon1 = strchr(line, ':');
    char *colon2 = colon1 ? strchr(colon1 + 1, ':') : NULL;
    if (!colon2)
        return false;
    *colon2 = 0;
    const char *controllers = colon1 + 1, *path = colon2 + 1;
    if (strlen(path) >= PATH_BYTES)
        return false;
    if (colon1 == line + 1 && line[0] == '0' && controllers[0] == 0) {
        strcpy(cg->v2, path);
        cg->has_v2 = true;
    } else if (list_has(controllers, "cpu")) {
        strcpy(cg->v1, path);
        cg->has_v1 = true;
    }
    return false;
}

/* Whether the path has a ".." component: a process outside the root of
 * its cgroup namespace (moved in with nsenter) sees "/../sibling", which
 * no mount inside the namespace shows. */
static bool has_dotdot(const char *path)
{
    for (const char *p = path; (p = strstr(p, "..")) != NULL; p += 2)
        if ((p == path || p[-1] == '/') && (p[2] == '/' || p[2] == 0))
            return true;
    return false;
}

/* The length of the mount's root to take off the cgroup path, or -1 if
 * the mount does not show that cgroup (its root is not the path or one of
 * its parents). */
static long root_prefix(const char *mount_root, const char *path)
{
    size_t n = strcmp(mount_root, "/") == 0 ? 0 : strlen(mount_root);
    if (has_dotdot(path) || strncmp(path, mount_root, n) != 0 || (path[n] != '/' && path[n] != 0))
        return -1;
    return (long)n;
}

/* A line of /proc/.../mountinfo: "id parent major:minor root point
 * options [optional fields...] - fstype source super-options". */
static bool find_mount(char *line, void *arg)
{
    cgroup_mount *m = arg;
    char *dash = strstr(line, " - ");
    if (!dash)
        return false;
    *dash = 0;
    char *field[5], *save = NULL;
    int n = 0;
    for (char *tok = strtok_r(line, " ", &save); tok && n < 5; tok = strtok_r(NULL, " ", &save))
        field[n++] = tok;
    char *fstype = strtok_r(dash + 3, " ", &save);
    (void)strtok_r(NULL, " ", &save); /* the source */
    char *super = strtok_r(NULL, " ", &save);
    if (n < 5 || !fstype)
        return false;
    bool wanted = m->version == 2 ? strcmp(fstype, "cgroup2") == 0
                                  : strcmp(fstype, "cgroup") == 0 && super && list_has(super, "cpu");
    if (!wanted || !copy_unescaped(m->root, field[3]) || !copy_unescaped(m->point, field[4]) ||
        root_prefix(m->root, m->path) < 0)
        return false; /* not this line; a later mount of the hierarchy may do */
    m->found = true;
    return true;
}

/* ---- reading the quota ---------------------------------------------------------- */

/* quota / period rounded up, or 0 for none. */
static unsigned whole_cpus(unsigned long long quota, unsigned long long period)
{
    if (period == 0 || quota == 0)
        return 0;
    unsigned long long n = (quota + period - 1) / period;
    return n > 1u << 20 ? 1u << 20 : (unsigned)n;
}

/* A decimal count at *s, which must end at stop; *s moves past it. */
static bool parse_count(const char **s, char stop, unsigned long long *out)
{
    char *end;
    errno = 0;
    *out = strtoull(*s, &end, 10);
    if (end == *s || *end != stop || errno)
        return false;
    *s = end;
    return true;
}

/* cgroup v2: cpu.max is "max PERIOD" or "QUOTA PERIOD". */
static unsigned quota_v2(scratch *sc, const char *dir)
{
    char buf[64];
    const char *p = buf;
    unsigned long long quota, period;
    if (!read_first_line(sc, dir, "/cpu.max", buf, sizeof buf) || strncmp(buf, "max", 3) == 0 ||
        !parse_count(&p, ' ', &quota))
        return 0;
    p++;
    return parse_count(&p, 0, &period) ? whole_cpus(quota, period) : 0;
}

/* cgroup v1: cpu.cfs_quota_us (-1 for none) and cpu.cfs_period_us. */
static unsigned quota_v1(scratch *sc, const char *dir)
{
    char q[32], p[32];
    const char *qs = q, *ps = p;
    unsigned long long quota, period;
    if (!read_first_line(sc, dir, "/cpu.cfs_quota_us", q, sizeof q) || q[0] == '-' ||
        !read_first_line(sc, dir, "/cpu.cfs_period_us", p, sizeof p) ||
        !parse_count(&qs, 0, &quota) || !parse_count(&ps, 0, &period))
        return 0;
    return whole_cpus(quota, period);
}

/* The smallest quota from sc->dir up to its first top bytes (the mount
 * point), each directory in turn. */
static unsigned smallest_quota_up(scratch *sc, size_t top, int version)
{
    char *dir = sc->dir;
    unsigned best = 0;
    for (;;) {
        unsigned q = version == 2 ? quota_v2(sc, dir) : quota_v1(sc, dir);
        if (q && (best == 0 || q < best))
            best = q;
        char *slash = strlen(dir) > top ? strrchr(dir + top, '/') : NULL;
        if (!slash)
            return best;
        *slash = 0;
    }
}

/* each_line on the calling thread's /proc file, or the process's. */
static bool each_proc_line(scratch *sc, const char *root, const char *file,
                           bool (*fn)(char *line, void *arg), void *arg)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/thread-self/%s", file);
    if (each_line(sc, root, path, fn, arg))
        return true;
    snprintf(path, sizeof path, "/proc/self/%s", file);
    return each_line(sc, root, path, fn, arg);
}

static unsigned quota_of(scratch *sc, const char *root)
{
    cgroup_paths *cg = &sc->cg;
    if (!each_proc_line(sc, root, "cgroup", note_cgroup, cg) || !(cg->has_v1 || cg->has_v2))
        return 0;
    cgroup_mount *m = &sc->m;
    m->version = cg->has_v1 ? 1 : 2;
    m->path = cg->has_v1 ? cg->v1 : cg->v2;
    if (!each_proc_line(sc, root, "mountinfo", find_mount, m) || !m->found)
        return 0;
    const char *rel = m->path + root_prefix(m->root, m->path); /* less the mount's root */
    if (strcmp(rel, "/") == 0)
        rel = "";
    const char *point = strcmp(m->point, "/") == 0 ? "" : m->point;
    /* Room for the longest file name after it, or no answer: skipping the
     * cgroup's own file would let a parent's larger quota through. */
    size_t n = (size_t)snprintf(sc->dir, sizeof sc->dir, "%s%s%s", root, point, rel);
    if (n + sizeof "/cpu.cfs_period_us" > sizeof sc->dir)
        return 0;
    return smallest_quota_up(sc, strlen(root) + strlen(point), m->version);
}

unsigned spangc_cgroup_cpu_quota(const char *root)
{
    scratch *sc = spangc_os_alloc(sizeof *sc); /* zeroed */
    if (!sc)
        return 0;
    unsigned q = quota_of(sc, root);
    spangc_os_free(sc, sizeof *sc);
    return q;
}

/* ---- the answer -------------------------------------------------------------- */

/* The CPUs in the calling thread's affinity mask; the online count if the
 * mask cannot be read. 8192 bits: the kernel refuses a mask smaller than
 * its number of possible CPUs, and no machine has more. */
static unsigned affinity_count(void)
{
    uint64_t mask[128];
    memset(mask, 0, sizeof mask);
    if (sched_getaffinity(0, sizeof mask, (cpu_set_t *)(void *)mask) != 0) {
        long online = sysconf(_SC_NPROCESSORS_ONLN);
        return online > 0 ? (unsigned)online : 1;
    }
    unsigned n = 0;
    for (size_t i = 0; i < sizeof mask / sizeof mask[0]; i++)
        n += (unsigned)__builtin_popcountll(mask[i]);
    return n;
}

/* The cgroup quota in whole CPUs, 0 for none; -1 until read. world_lock. */
static SPANGC_STATE int cgroup_quota = -1;

unsigned spangc_cpus_usable_under(unsigned quota)
{
    unsigned n = affinity_count();
    if (quota > 0 && quota < n)
        n = quota;
    return n > 0 ? n : 1;
}

unsigned spangc_cpus_usable(void)
{
    if (cgroup_quota < 0)
        cgroup_quota = (int)spangc_cgroup_cpu_quota("");
    return spangc_cpus_usable_under((unsigned)cgroup_quota);
}
