/*
 * roots.c - the roots of marking.
 *
 *  - data: the writable PT_LOAD segments (data, bss) of the program and of
 *    every loaded shared library, found with dl_iterate_phdr, minus their
 *    read-only-after-relocation part (relro_range) and spangc's own state
 *    (the spangc_state section, runtime/base.h), which holds heap
 *    addresses (bounds, cursors) that must not pin objects. Those of
 *    libraries loaded after gc_init are read through spangc_os_copy
 *    ("Libraries that may be unloaded" below);
 *  - threads: each registered thread's stack from its stopped stack pointer
 *    to its base, its spilled registers, and its TLS blocks: those it had
 *    when it registered and those of libraries opened with dlopen that it
 *    allocated since (runtime/thread.c; those of libraries loaded after
 *    gc_init are read through copies, and not at all once the library is
 *    closed);
 *  - added: ranges registered with gc_add_roots;
 *  - specials: objects with finalizers are scanned (not marked), weak
 *    handles and queued finalizers are kept (gc/specials.c).
 * All are scanned conservatively.
 */
#include "roots.h"

#include "finalizer.h"
#include "gc.h"
#include "mark.h"
#include "specials.h"
#include "../include/spangc.h"
#include "../runtime/arena.h"
#include "../runtime/lock.h"
#include "../runtime/metalloc.h"
#include "../runtime/os.h"
#include "../runtime/thread.h"
#include "../runtime/track.h"

#include <errno.h>
#include <link.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#define NO_SANITIZE_SCAN __attribute__((no_sanitize("address", "thread")))

typedef struct range_set {
    mem_range *r;
    size_t n, cap;
} range_set;

/* The data segments of the loaded modules, as dl_iterate_phdr lists them.
 * A listing is one block of the OS's memory, not metadata: it is made
 * with no spangc lock held ("Listing" below), and metadata is allocated
 * under meta_lock, which a registered thread takes only inside spangc.
 * Its arrays start in the block's own page (inline), which holds the
 * modules of most programs, and move to pages of their own if they
 * outgrow it: two listings, the installed one and the spare, cost two
 * pages, not one per array. */
struct spangc_listing {
    range_set segments;   /* of the program and the libraries it started with */
    range_set unloadable; /* of libraries loaded after gc_init */
    struct {              /* the modules with TLS */
        tls_module *m;
        size_t n, cap;
    } tls_modules;
    uintptr_t signature;                      /* link_map_signature() when listed */
    unsigned long long adds;                  /* dlpi_adds (libraries ever loaded) then */
    unsigned long long subs;                  /* dlpi_subs (ever unloaded); ~0: unknown */
    bool failed;                              /* out of memory while listing */
    size_t inline_bytes;                      /* the size of inline_area */
    _Alignas(16) unsigned char inline_area[]; /* the rest of the block */
};

/* added: roots_lock (taken inside a runtime section), with its index.
 * now, copy: the collector, under world_lock. spare: taken and given back
 * with compare-and-swap. startup, startup_subs: written by gc_init,
 * read-only after. */
static SPANGC_STATE struct {
    spangc_lock lock;
    range_set added;
    spangc_listing *now; /* the listing the collector scans */
    /* The listing install replaced, which the next lister reuses with its
     * arrays, so that listing again allocates nothing unless a list
     * outgrows the last one: a collection forced by a failed allocation
     * may need one. NULL while a lister holds it. */
    ao_word spare;
    range_set startup; /* libraries present at gc_init: load address, name hash */
    unsigned long long startup_subs; /* their dlpi_subs (libraries ever closed) */
    uintptr_t *copy;   /* COPY_BYTES of metadata, for unloadable segments */
    /* added by start address, so that adding or removing one of many
     * ranges (a root per native handle, say) costs O(1) rather than a scan
     * of them all: 100,000 gc_add_roots calls took 1.45 s. Linear probing;
     * a slot holds 1 + the range's position in added.r, 0 when empty; at
     * most half full. */
    uint32_t *slot;
    size_t nslots; /* a power of two, or 0 */
} roots = {.lock = SPANGC_LOCK_INIT};

/* Append to s, growing it with metadata. */
static bool range_push(range_set *s, uintptr_t lo, uintptr_t hi)
{
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 32;
        mem_range *r = spangc_meta_alloc(cap * sizeof *r);
        if (!r)
            return false;
        if (s->r) {
            memcpy(r, s->r, s->n * sizeof *r);
            spangc_meta_free(s->r, s->cap * sizeof *r);
        }
        s->r = r;
        s->cap = cap;
    }
    s->r[s->n].lo = lo;
    s->r[s->n].hi = hi;
    s->n++;
    return true;
}

/* ---- the index of added ranges (roots_lock) ----------------------------- */

static size_t index_home(uintptr_t lo, size_t nslots)
{
    return (size_t)(((uint64_t)lo * 0x9E3779B97F4A7C15ull) >> 32) & (nslots - 1);
}

/* The slot of the range starting at lo, or SIZE_MAX. */
static size_t index_find(uintptr_t lo)
{
    if (!roots.nslots)
        return SIZE_MAX;
    size_t mask = roots.nslots - 1;
    for (size_t s = index_home(lo, roots.nslots); roots.slot[s]; s = (s + 1) & mask)
        if (roots.added.r[roots.slot[s] - 1].lo == lo)
            return s;
    return SIZE_MAX;
}

static void index_put(uint32_t *slot, size_t nslots, uintptr_t lo, size_t pos)
{
    size_t s = index_home(lo, nslots);
    while (slot[s])
        s = (s + 1) & (nslots - 1);
    slot[s] = (uint32_t)(pos + 1);
}

/* Index the range just pushed (the last of added.r); past half full, the
 * table doubles and is rebuilt from added.r, that range included. */
static bool index_insert(void)
{
    size_t last = roots.added.n - 1;
    if ((roots.added.n + 1) * 2 <= roots.nslots) {
        index_put(roots.slot, roots.nslots, roots.added.r[last].lo, last);
        return true;
    }
    size_t nslots = roots.nslots ? roots.nslots * 2 : 64;
    uint32_t *slot = spangc_meta_alloc(nslots * sizeof *slot); /* zeroed */
    if (!slot)
        return false;
    for (size_t i = 0; i < roots.added.n; i++)
        index_put(slot, nslots, roots.added.r[i].lo, i);
    if (roots.slot)
        spangc_meta_free(roots.slot, roots.nslots * sizeof *slot);
    roots.slot = slot;
    roots.nslots = nslots;
    return true;
}

/* Empty slot s, moving later entries of its probe run back into the hole
 * (no tombstones). Reads added.r, which must still match the index. */
static void index_remove_slot(size_t s)
{
    size_t mask = roots.nslots - 1, hole = s;
    for (size_t j = (s + 1) & mask; roots.slot[j]; j = (j + 1) & mask) {
        size_t home = index_home(roots.added.r[roots.slot[j] - 1].lo, roots.nslots);
        /* The entry at j may fill the hole unless its home lies after the
         * hole, cyclically, up to j. */
        if (((j - home) & mask) >= ((j - hole) & mask)) {
            roots.slot[hole] = roots.slot[j];
            hole = j;
        }
    }
    roots.slot[hole] = 0;
}

/* ---- data segments ------------------------------------------------------ */

/* Libraries that may be unloaded
 *
 * The segments are listed before the world stops (a stopped thread may
 * hold the dynamic linker's lock, which dl_iterate_phdr takes), so another
 * thread can dlclose a library between the listing and the scan, and its
 * segments are unmapped under the collector. Only libraries opened with
 * dlopen are ever unloaded; those present at gc_init (the program's own
 * dependencies, in practice) are read directly. The others are copied,
 * COPY_BYTES at a time, with spangc_os_copy (process_vm_readv on this
 * process), which stops at a page that is gone instead of faulting; what it
 * cannot read belonged to a library that no longer exists. A library
 * opened with dlopen before gc_init counts as a startup one: closing it
 * while a collection runs is still unsafe (docs/architecture.md). */
#define COPY_BYTES (16 * 1024)

/* Out of metadata memory, a library goes unlisted, and is then read
 * through copies like one loaded later: slower, never wrong. */
static int note_startup(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    (void)data;
    (void)range_push(&roots.startup, info->dlpi_addr, spangc_module_name_hash(info->dlpi_name));
    roots.startup_subs = info->dlpi_subs;
    return 0;
}

/* Whether the module loaded at addr, from the file whose name has hash
 * name (spangc_module_name_hash), was there at gc_init. The name tells a
 * library opened since at the address of a closed one from it. */
static bool startup_module(uintptr_t addr, uintptr_t name)
{
    for (size_t i = 0; i < roots.startup.n; i++)
        if (roots.startup.r[i].lo == addr && roots.startup.r[i].hi == name)
            return true;
    return false;
}

static bool loaded_at_startup(const struct dl_phdr_info *info)
{
    if (info->dlpi_name == NULL || info->dlpi_name[0] == 0)
        return true; /* the program itself (or the vDSO) */
    return startup_module(info->dlpi_addr, spangc_module_name_hash(info->dlpi_name));
}

/* The module's read-only-after-relocation part (PT_GNU_RELRO: .got,
 * .data.rel.ro, C++ vtables), as [*lo, *hi), or an empty range. The
 * dynamic linker makes its whole pages read-only before any of the
 * module's code runs, so they can never hold a heap address; it usually
 * sits at the start of the writable segment and is often much of it (14
 * of libc's 75 KiB, far more in C++ libraries). Only whole pages are
 * protected: the last partial page stays writable and is scanned [bdwgc
 * also leaves RELRO out]. */
static void relro_range(const struct dl_phdr_info *info, uintptr_t *lo, uintptr_t *hi)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    *lo = *hi = 0;
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_GNU_RELRO) {
            *lo = info->dlpi_addr + ph->p_vaddr;
            *hi = (*lo + ph->p_memsz) & ~(page - 1);
            if (*hi < *lo)
                *hi = *lo;
            return;
        }
    }
}

/* A listing's block: its header and the inline part of its arrays. */
static size_t listing_bytes(void)
{
    return (uintptr_t)sysconf(_SC_PAGESIZE);
}

/* A new, empty listing: half of the inline area for segments (a module
 * has one or two writable segments), a quarter for each of the others. */
static spangc_listing *listing_new(void)
{
    spangc_listing *l = spangc_os_alloc(listing_bytes());
    if (!l)
        return NULL;
    l->inline_bytes = listing_bytes() - sizeof *l;
    size_t segments = l->inline_bytes / 2 / sizeof(mem_range);
    size_t unloadable = l->inline_bytes / 4 / sizeof(mem_range);
    mem_range *r = (mem_range *)l->inline_area;
    l->segments.r = r;
    l->segments.cap = segments;
    l->unloadable.r = r + segments;
    l->unloadable.cap = unloadable;
    l->tls_modules.m = (tls_module *)(r + segments + unloadable);
    l->tls_modules.cap =
        (l->inline_bytes - (segments + unloadable) * sizeof *r) / sizeof(tls_module);
    return l;
}

static bool in_block(const spangc_listing *l, const void *array)
{
    const unsigned char *p = array;
    return p >= l->inline_area && p < l->inline_area + l->inline_bytes;
}

/* One of l's arrays, full (n elements of elem bytes, room for *cap),
 * moved to pages of its own twice the size. NULL when out of memory. */
static void *listing_grow(spangc_listing *l, void *array, size_t n, size_t *cap, size_t elem)
{
    size_t bytes = round_up(*cap * 2 * elem, listing_bytes());
    void *moved = spangc_os_alloc(bytes);
    if (!moved)
        return NULL;
    memcpy(moved, array, n * elem);
    if (!in_block(l, array))
        spangc_os_free(array, *cap * elem);
    *cap = bytes / elem;
    return moved;
}

static bool listing_push(spangc_listing *l, range_set *s, uintptr_t lo, uintptr_t hi)
{
    if (s->n == s->cap) {
        mem_range *r = listing_grow(l, s->r, s->n, &s->cap, sizeof *r);
        if (!r)
            return false;
        s->r = r;
    }
    s->r[s->n++] = (mem_range){lo, hi};
    return true;
}

static bool listing_push_tls(spangc_listing *l, tls_module m)
{
    if (l->tls_modules.n == l->tls_modules.cap) {
        tls_module *moved =
            listing_grow(l, l->tls_modules.m, l->tls_modules.n, &l->tls_modules.cap, sizeof m);
        if (!moved)
            return false;
        l->tls_modules.m = moved;
    }
    l->tls_modules.m[l->tls_modules.n++] = m;
    return true;
}

static void listing_free(spangc_listing *l)
{
    if (!in_block(l, l->segments.r))
        spangc_os_free(l->segments.r, l->segments.cap * sizeof(mem_range));
    if (!in_block(l, l->unloadable.r))
        spangc_os_free(l->unloadable.r, l->unloadable.cap * sizeof(mem_range));
    if (!in_block(l, l->tls_modules.m))
        spangc_os_free(l->tls_modules.m, l->tls_modules.cap * sizeof(tls_module));
    spangc_os_free(l, listing_bytes());
}

static void push_segment(spangc_listing *l, range_set *set, uintptr_t lo, uintptr_t hi)
{
    if (lo < hi && !listing_push(l, set, lo, hi))
        l->failed = true;
}

static uintptr_t link_map_signature(void);

/* dl_iterate_phdr callback: add a module to the listing data. The first
 * call also takes the signature of the module list: dl_iterate_phdr holds
 * the dynamic linker's lock from the first callback to the last, so the
 * two describe the same list. */
static int collect_segments(struct dl_phdr_info *info, size_t size, void *data)
{
    (void)size;
    spangc_listing *l = data;
    if (!l->signature)
        l->signature = link_map_signature();
    bool startup = loaded_at_startup(info);
    range_set *set = startup ? &l->segments : &l->unloadable;
    l->adds = info->dlpi_adds;
    l->subs = info->dlpi_subs;
    uintptr_t rlo, rhi;
    relro_range(info, &rlo, &rhi);
    for (int i = 0; i < info->dlpi_phnum; i++) {
        const ElfW(Phdr) *ph = &info->dlpi_phdr[i];
        if (ph->p_type == PT_TLS && info->dlpi_tls_modid) {
            tls_module m = {.module = info->dlpi_addr,
                            .modid = info->dlpi_tls_modid,
                            .size = ph->p_memsz,
                            .name = spangc_module_name_hash(info->dlpi_name),
                            .startup = startup};
            if (!listing_push_tls(l, m))
                l->failed = true;
        }
        if (ph->p_type != PT_LOAD || !(ph->p_flags & PF_W) || ph->p_memsz == 0)
            continue;
        uintptr_t lo = info->dlpi_addr + ph->p_vaddr, hi = lo + ph->p_memsz;
        if (rhi <= lo || hi <= rlo) {
            push_segment(l, set, lo, hi);
        } else { /* what lies below and above the read-only part */
            push_segment(l, set, lo, rlo > lo ? rlo : lo);
            push_segment(l, set, rhi < hi ? rhi : hi, hi);
        }
    }
    return l->failed;
}

/* The dynamic linker's list of loaded modules, as a number that changes
 * when a module is added or removed: a hash of their link_map, load and
 * dynamic-section addresses, file names, and of their count. A library
 * closed and another opened in its place often gets the same link_map
 * (malloc reuses the block) and load address (and the same l_ld, if only
 * its bss differs), but not the same name. Not seen: the same file name,
 * rebuilt with a larger bss (docs/architecture.md). Only the program's
 * namespace, the one dl_iterate_phdr lists: a library opened with dlmopen
 * in a new namespace is on neither (docs/embedding.md, "What keeps an
 * object alive"). */
static uintptr_t link_map_signature(void)
{
    uintptr_t sig = 0, n = 0;
    for (const struct link_map *m = _r_debug.r_map; m; m = m->l_next, n++) {
        sig = ((sig * 31 + (uintptr_t)m) * 31 + m->l_addr) * 31 + (uintptr_t)m->l_ld;
        for (const char *c = m->l_name; c && *c; c++)
            sig = sig * 131 + (unsigned char)*c;
    }
    return (sig ^ (n << 48)) | 1; /* never 0, the mark of "not taken yet" */
}

/* Listing
 *
 * The segments are listed with dl_iterate_phdr, which takes the dynamic
 * linker's lock. A program thread may hold that lock and wait for spangc:
 * its callback allocates, or collects, and then waits for world_lock. So
 * the collector lists before it takes world_lock, holding no spangc lock,
 * and never with the world stopped (a stopped thread may hold the lock);
 * it installs the listing under world_lock, and once the world is stopped
 * checks it against the dynamic linker's list (spangc_roots_changed). If
 * a module came or went in between, it restarts the world, lets world_lock
 * go, and lists again (gc/gc.c). */
/* Keep l as the spare, or free it if there is one already. */
static void listing_give_back(spangc_listing *l)
{
    l->segments.n = l->unloadable.n = l->tls_modules.n = 0;
    l->signature = 0;
    l->adds = l->subs = 0;
    l->failed = false;
    if (!ao_cas(&roots.spare, 0, (uintptr_t)l))
        listing_free(l);
}

spangc_listing *spangc_roots_list(void)
{
    uintptr_t spare;
    do
        spare = ao_load(&roots.spare);
    while (spare && !ao_cas(&roots.spare, spare, 0));
    spangc_listing *l = spare ? (spangc_listing *)spare : listing_new();
    if (!l)
        return NULL;
    spangc_dl_iterate_phdr(collect_segments, l);
    if (l->failed) {
        listing_give_back(l);
        return NULL;
    }
    return l;
}

/* roots.copy, once the listing has a segment read through copies. */
static void need_copy_buffer(void)
{
    if (roots.now->unloadable.n && !roots.copy && !(roots.copy = spangc_meta_alloc(COPY_BYTES)))
        spangc_throw("out of metadata memory listing data segments");
}

void spangc_roots_install(spangc_listing *l)
{
    spangc_listing *old = roots.now;
    roots.now = l;
    if (old)
        listing_give_back(old);
    need_copy_buffer();
}

/* The first listing, and a spare already grown to its size. */
int spangc_roots_init(void)
{
    dl_iterate_phdr(note_startup, NULL);
    spangc_listing *l = spangc_roots_list();
    if (!l)
        return -ENOMEM;
    spangc_roots_install(l);
    if ((l = spangc_roots_list()) == NULL)
        return -ENOMEM;
    listing_give_back(l);
    return 0;
}

/* Without the lock, but with the world stopped: a thread stopped inside
 * dlopen or dlclose has linked or unlinked an entry with one pointer
 * store, or not yet, and frees an entry only after unlinking it. */
bool spangc_roots_changed(void)
{
    return link_map_signature() != roots.now->signature;
}

/* Listing with the world stopped
 *
 * A program that opens and closes libraries without pause can change the
 * list between every listing and stop. After a few tries the collector
 * lists the libraries loaded after gc_init from the dynamic linker's list
 * itself, with the world stopped (no lock needed, as above). link_map's
 * public part has no program headers; they are found through the ELF
 * header, which for a shared object lies at its load address (its first
 * PT_LOAD maps file offset 0 at address 0). The header and headers are
 * read through copies only, so a wrong guess cannot fault (where copies
 * are refused, this listing fails), and are believed only if their
 * PT_DYNAMIC lies where the dynamic linker's l_ld says. */
#define MAX_PHDRS 64

static bool module_phdrs(const struct link_map *m, ElfW(Phdr) *ph, int *phnum)
{
    ElfW(Ehdr) eh;
    if (spangc_os_copy(&eh, m->l_addr, sizeof eh) != (long)sizeof eh ||
        memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0 || eh.e_phentsize != sizeof *ph ||
        eh.e_phnum == 0 || eh.e_phnum > MAX_PHDRS)
        return false;
    size_t bytes = eh.e_phnum * sizeof *ph;
    if (spangc_os_copy(ph, m->l_addr + eh.e_phoff, bytes) != (long)bytes)
        return false;
    for (int i = 0; i < eh.e_phnum; i++)
        if (ph[i].p_type == PT_DYNAMIC && m->l_addr + ph[i].p_vaddr == (uintptr_t)m->l_ld) {
            *phnum = eh.e_phnum;
            return true;
        }
    return false;
}

/* List one module's writable segments, found through its ELF header. */
static bool list_module_stopped(const struct link_map *m)
{
    ElfW(Phdr) ph[MAX_PHDRS];
    int phnum;
    if (!module_phdrs(m, ph, &phnum))
        return false;
    struct dl_phdr_info info = {.dlpi_addr = m->l_addr,
                                .dlpi_name = m->l_name,
                                .dlpi_phdr = ph,
                                .dlpi_phnum = (ElfW(Half))phnum,
                                .dlpi_adds = roots.now->adds,
                                .dlpi_subs = ~0ull, /* unknown: a library may be gone */
                                .dlpi_tls_modid = spangc_threads_link_map_modid(m)};
    collect_segments(&info, sizeof info, roots.now);
    return true;
}

/* Drop the late modules' TLS entries, which the stopped listing makes
 * again, if it can: where glibc does not say where a link_map keeps the
 * TLS module id, keep them all (some may be of closed modules, whose blocks
 * are read through copies). */
static void drop_late_tls_modules(void)
{
    if (!spangc_threads_link_map_modid_known())
        return;
    size_t kept = 0;
    for (size_t i = 0; i < roots.now->tls_modules.n; i++)
        if (roots.now->tls_modules.m[i].startup)
            roots.now->tls_modules.m[kept++] = roots.now->tls_modules.m[i];
    roots.now->tls_modules.n = kept;
}

bool spangc_roots_list_stopped(void)
{
    roots.now->unloadable.n = 0;
    drop_late_tls_modules();
    for (const struct link_map *m = _r_debug.r_map; m; m = m->l_next)
        if (m->l_name && m->l_name[0] &&
            !startup_module(m->l_addr, spangc_module_name_hash(m->l_name)) &&
            !list_module_stopped(m))
            return false;
    if (roots.now->failed)
        spangc_throw("out of metadata memory listing data segments");
    need_copy_buffer();
    roots.now->signature = link_map_signature();
    return true;
}

/* Tests only (roots.h). */
SPANGC_STATE void (*volatile spangc_test_before_unloadable_scan)(void);
SPANGC_STATE void (*volatile spangc_test_before_stop)(void);

/* Call fn on copies, made in buf, of the readable words of [lo, hi), with
 * the address each copy came from. Where the system allows no copy at all
 * (runtime/os.h), the words that mincore finds mapped are read in place:
 * skipping them would free what they hold. Mapped is not known otherwise:
 * dlclose unmaps a library before it unlinks it from the list the stop is
 * checked against, and frees a TLS block whose address and TLS id the
 * next library may get. A page found mapped but without read access would
 * still fault: that takes a sandbox refusing both copies and such memory
 * mapped again, inaccessible, by the time of the scan. */
static void each_copy(uintptr_t *buf, size_t buf_bytes, uintptr_t lo, uintptr_t hi,
                      void (*fn)(uintptr_t lo, uintptr_t hi, uintptr_t from, void *arg), void *arg)
{
    uintptr_t page = (uintptr_t)sysconf(_SC_PAGESIZE);
    lo = round_up(lo, sizeof(uintptr_t));
    hi &= ~(uintptr_t)(sizeof(uintptr_t) - 1);
    while (lo < hi) {
        size_t n = hi - lo < buf_bytes ? hi - lo : buf_bytes;
        long got = spangc_os_copy(buf, lo, n);
        if (got < 0) {
            if (spangc_os_mapped(lo, lo + n))
                fn(lo, lo + n, lo, arg);
            lo += n;
            continue;
        }
        if (got > 0)
            fn((uintptr_t)buf, (uintptr_t)buf + ((size_t)got & ~(sizeof(uintptr_t) - 1)), lo, arg);
        if (got == (long)n) {
            lo += n;
        } else {
            /* A page that is gone: go on after it. */
            uintptr_t hole = lo + (size_t)got;
            lo = (hole & ~(page - 1)) + page;
        }
    }
}

/* Scan [lo, hi) minus spangc's own state, with mark(lo, hi). */
static void mark_excluding_state(uintptr_t lo, uintptr_t hi, void (*mark)(uintptr_t, uintptr_t))
{
    uintptr_t slo, shi;
    spangc_state_bounds(&slo, &shi);
    if (shi <= lo || slo >= hi) {
        mark(lo, hi);
        return;
    }
    if (lo < slo)
        mark(lo, slo);
    if (shi < hi)
        mark(shi, hi);
}

static void mark_copy(uintptr_t lo, uintptr_t hi, uintptr_t from, void *arg)
{
    (void)from;
    (void)arg;
    spangc_mark_range(lo, hi);
}

/* A segment of a library that may be unloaded, through copies. */
static void mark_unloadable(uintptr_t lo, uintptr_t hi)
{
    each_copy(roots.copy, COPY_BYTES, lo, hi, mark_copy, NULL);
}

/* Stacks and added ranges (often malloc'd) hold uninitialised words that
 * memcheck must not see us read (runtime/track.h). */
static void mark_undefined_range(uintptr_t lo, uintptr_t hi)
{
    if (TRACK_VG_RUNNING())
        track_vg_scan(lo, hi, spangc_mark_range);
    else
        spangc_mark_range(lo, hi);
}

/* How a thread's TLS block is read. */
typedef enum tls_read { TLS_IN_PLACE, TLS_COPIED, TLS_GONE } tls_read;

/* Whether the listing the collector scans has b's module: at its address,
 * with its TLS id and file name. */
static bool tls_module_listed(const tls_block *b)
{
    for (size_t i = 0; i < roots.now->tls_modules.n; i++) {
        const tls_module *m = &roots.now->tls_modules.m[i];
        if (m->module == b->module && m->modid == b->modid && m->name == b->name)
            return true;
    }
    return false;
}

/* The block of a module present at gc_init is read in place while no
 * library has been closed since gc_init (dlpi_subs): the program's
 * dependencies are never unloaded, and a library opened with dlopen
 * before gc_init must not be closed while a collection runs
 * (docs/architecture.md). Once one has been closed, glibc has freed its
 * blocks (a large one is unmapped), and another library may have its
 * address and TLS id: the blocks were read in place all the same, and the
 * next collection crashed. So they are read through copies from then on,
 * and not at all if their module is missing from the listing.
 *
 * Any other module may have been closed since the thread registered, and
 * glibc frees the block then. Such a block is read through copies if its
 * module was in the listing the collector scans, or loaded after it (the
 * thread registered since, so its dlpi_adds is newer); a module loaded
 * before the listing and missing from it has been closed. */
static tls_read tls_block_read(const tls_block *b)
{
    if (startup_module(b->module, b->name)) {
        if (!tls_module_listed(b))
            return TLS_GONE;
        /* An address from a vector may be stale. */
        bool closed_since = roots.now->subs != roots.startup_subs;
        return b->from_vector || closed_since ? TLS_COPIED : TLS_IN_PLACE;
    }
    if (b->adds > roots.now->adds || tls_module_listed(b))
        return TLS_COPIED;
    return TLS_GONE;
}

/* A TLS block, unlike a segment of a listed library, may be gone even
 * when its module is listed: tls_block_read matches the module by load
 * address and TLS id, and a library closed and opened again (or another
 * one, in its place) usually gets both back, while the thread's old block
 * is freed.
 *
 * Call fn on a copy of tls, [lo, hi): the one runtime/thread.c made with a
 * thread's other new blocks, if it did; else through roots.copy, or, where
 * that does not exist yet (the only library loaded after gc_init came
 * after the listing), a small buffer on the stack. */
#define TLS_COPY_WORDS 128

static void each_tls_copy(const tls_block *tls, uintptr_t lo, uintptr_t hi,
                          void (*fn)(uintptr_t lo, uintptr_t hi, uintptr_t from, void *arg),
                          void *arg)
{
    uintptr_t buf[TLS_COPY_WORDS];
    if (tls->copy)
        fn((uintptr_t)tls->copy, (uintptr_t)tls->copy + (hi - lo), lo, arg);
    else if (roots.copy)
        each_copy(roots.copy, COPY_BYTES, lo, hi, fn, arg);
    else
        each_copy(buf, sizeof buf, lo, hi, fn, arg);
}

static void mark_thread_range(uintptr_t lo, uintptr_t hi, const tls_block *tls, void *arg)
{
    (void)arg;
    tls_read how = tls ? tls_block_read(tls) : TLS_IN_PLACE;
    if (how == TLS_IN_PLACE) {
        mark_undefined_range(lo, hi);
    } else if (how == TLS_COPIED) {
        each_tls_copy(tls, lo, hi, mark_copy, NULL);
    }
    spangc_mark_drain();
}

void spangc_roots_mark(void)
{
    for (size_t i = 0; i < roots.now->segments.n; i++) {
        mark_excluding_state(roots.now->segments.r[i].lo, roots.now->segments.r[i].hi,
                             spangc_mark_range);
        spangc_mark_drain();
    }
    for (size_t i = 0; i < roots.now->unloadable.n; i++) {
        if (spangc_test_before_unloadable_scan)
            spangc_test_before_unloadable_scan();
        mark_excluding_state(roots.now->unloadable.r[i].lo, roots.now->unloadable.r[i].hi,
                             mark_unloadable);
        spangc_mark_drain();
    }
    lock_acquire(&roots.lock);
    for (size_t i = 0; i < roots.added.n; i++) {
        mark_undefined_range(roots.added.r[i].lo, roots.added.r[i].hi);
        spangc_mark_drain();
    }
    lock_release(&roots.lock);
    spangc_threads_scan(mark_thread_range, roots.now->tls_modules.m, roots.now->tls_modules.n,
                        NULL);
    spangc_finq_mark();
    spangc_specials_mark();
}

/* ---- explaining why an object is alive --------------------------------- */

typedef struct referrer_search {
    FILE *out;
    uintptr_t lo, hi; /* the object */
    const char *what;
    int *count; /* of the current kind of root */
    int printed;
} referrer_search;

NO_SANITIZE_SCAN uintptr_t spangc_find_word_into(uintptr_t lo, uintptr_t hi, uintptr_t tlo,
                                                 uintptr_t thi)
{
    for (uintptr_t a = round_up(lo, sizeof(uintptr_t)); a + sizeof(uintptr_t) <= hi;
         a += sizeof(uintptr_t)) {
        uintptr_t w = *(const uintptr_t *)a;
        if (w >= tlo && w < thi)
            return a;
    }
    return 0;
}

/* [lo, hi) holds the words of [from, from + (hi - lo)), the range
 * [range_lo, range_hi) of rs->what or a part of it. */
static void search_words(uintptr_t lo, uintptr_t hi, uintptr_t from, uintptr_t range_lo,
                         uintptr_t range_hi, referrer_search *rs)
{
    uintptr_t slo, shi; /* spangc's state is not a root (mark_excluding_state) */
    spangc_state_bounds(&slo, &shi);
    for (uintptr_t a = lo; (a = spangc_find_word_into(a, hi, rs->lo, rs->hi)) != 0;
         a += sizeof(uintptr_t)) {
        uintptr_t at = from + (a - lo);
        if (at >= slo && at < shi)
            continue;
        (*rs->count)++;
        /* No dladdr here: it takes the dynamic linker's lock, which a
         * stopped thread may hold. */
        if (rs->printed++ < 8)
            fprintf(rs->out,
                    "spangc: %p is referenced from %s [%p, %p) at %p (%#lx below its top)\n",
                    (void *)rs->lo, rs->what, (void *)range_lo, (void *)range_hi, (void *)at,
                    (unsigned long)(range_hi - at));
    }
}

static void search_range(uintptr_t lo, uintptr_t hi, referrer_search *rs)
{
    search_words(lo, hi, lo, lo, hi, rs);
}

/* The segment searched through copies, for search_copy. Written and read
 * only by the thread that has stopped the world (it holds world_lock). */
static SPANGC_STATE mem_range copied_segment;

static void search_copy(uintptr_t lo, uintptr_t hi, uintptr_t from, void *arg)
{
    search_words(lo, hi, from, copied_segment.lo, copied_segment.hi, arg);
}

/* The search under way, for search_chunk: track_vg_scan's callback takes
 * no argument. Written and read only by the thread that has stopped the
 * world (it holds world_lock). */
static SPANGC_STATE referrer_search *current_search;

static void search_chunk(uintptr_t lo, uintptr_t hi)
{
    search_range(lo, hi, current_search);
}

/* Stacks and added ranges hold uninitialised words (mark_undefined_range). */
static void search_undefined_range(uintptr_t lo, uintptr_t hi, void *arg)
{
    if (TRACK_VG_RUNNING()) {
        current_search = arg;
        track_vg_scan(lo, hi, search_chunk);
    } else {
        search_range(lo, hi, arg);
    }
}

/* As mark_thread_range reads them. */
static void search_thread_range(uintptr_t lo, uintptr_t hi, const tls_block *tls, void *arg)
{
    tls_read how = tls ? tls_block_read(tls) : TLS_IN_PLACE;
    if (how == TLS_IN_PLACE) {
        search_undefined_range(lo, hi, arg);
    } else if (how == TLS_COPIED) {
        copied_segment = (mem_range){lo, hi};
        each_tls_copy(tls, lo, hi, search_copy, arg);
    }
}

spangc_referrers spangc_roots_explain(FILE *out, uintptr_t obj, size_t size)
{
    spangc_referrers n = {0};
    referrer_search rs = {.out = out, .lo = obj, .hi = obj + size};
    rs.what = "a data segment";
    rs.count = &n.data;
    for (size_t i = 0; i < roots.now->segments.n; i++)
        search_range(roots.now->segments.r[i].lo, roots.now->segments.r[i].hi, &rs);
    for (size_t i = 0; i < roots.now->unloadable.n; i++) {
        copied_segment = roots.now->unloadable.r[i];
        each_copy(roots.copy, COPY_BYTES, copied_segment.lo, copied_segment.hi, search_copy, &rs);
    }
    rs.what = "an added root range";
    rs.count = &n.added;
    for (size_t i = 0; i < roots.added.n; i++)
        search_undefined_range(roots.added.r[i].lo, roots.added.r[i].hi, &rs);
    rs.what = "a thread's stack or TLS";
    rs.count = &n.threads;
    spangc_threads_scan(search_thread_range, roots.now->tls_modules.m, roots.now->tls_modules.n,
                        &rs);
    return n;
}

/* ---- gc_add_roots / gc_remove_roots ------------------------------------ */

int gc_add_roots(void *start, size_t len)
{
    uintptr_t lo = (uintptr_t)start;
    if (!start || len == 0 || lo + len < lo)
        return -EINVAL;
    if (!ao_load(&spangc_gc.initialized))
        return -EPERM;
    /* No part of the range may lie in an arena the heap has reserved. An
     * object's words are scanned anyway when it is reachable, and as a
     * root they would keep whatever they point to alive for good; a page
     * not in use yet (reserved PROT_NONE, or inside a free span, whose
     * middle pages have no span entry) would fault at the next collection,
     * or become an immortal object's home once the heap grows into it. So
     * the test is by arena, not by span. */
    uintptr_t hlo = ao_load(&spangc_arenas.lo), hhi = ao_load(&spangc_arenas.hi);
    if (lo < hhi && lo + len > hlo) {
        /* Only the part inside the heap's bounds: a huge len must not
         * mean a walk over every arena of it. */
        uintptr_t end = lo + len < hhi ? lo + len : hhi;
        uintptr_t first = lo > hlo ? lo : hlo;
        for (uintptr_t p = first & ~(ARENA_SIZE - 1); p < end; p += ARENA_SIZE)
            if (arena_of(p))
                return -EINVAL;
    }
    /* A range with a hole, or a page it may not read (PROT_NONE), would
     * fault at the next collection, far from the call that added it. */
    if (!spangc_os_readable(lo, lo + len))
        return -EFAULT;
    int err = 0;
    spangc_thread *t = runtime_enter_self();
    lock_acquire(&roots.lock);
    if (index_find(lo) != SIZE_MAX)
        err = -EEXIST;
    else if (roots.added.n >= UINT32_MAX - 1 || !range_push(&roots.added, lo, lo + len))
        err = -ENOMEM;
    else if (!index_insert()) {
        roots.added.n--;
        err = -ENOMEM;
    }
    lock_release(&roots.lock);
    runtime_leave_self(t);
    return err;
}

int gc_remove_roots(void *start)
{
    uintptr_t lo = (uintptr_t)start;
    int err = -ENOENT;
    spangc_thread *t = runtime_enter_self();
    lock_acquire(&roots.lock);
    size_t s = index_find(lo);
    if (s != SIZE_MAX) {
        size_t i = roots.slot[s] - 1, last = roots.added.n - 1;
        index_remove_slot(s);
        if (i != last) {
            /* The last range moves into the gap: re-point its slot. */
            roots.slot[index_find(roots.added.r[last].lo)] = (uint32_t)(i + 1);
            roots.added.r[i] = roots.added.r[last];
        }
        roots.added.n--;
        err = 0;
    }
    lock_release(&roots.lock);
    runtime_leave_self(t);
    return err;
}

void spangc_roots_lock(void)
{
    lock_acquire(&roots.lock);
}

void spangc_roots_unlock(void)
{
    lock_release(&roots.lock);
}
