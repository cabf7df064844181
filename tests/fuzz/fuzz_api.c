/*
 * fuzz_api.c - a libFuzzer target that drives the spangc API from its
 * input and checks every collection against a shadow model.
 *
 * The input is a sequence of operations (one opcode byte, then the
 * operation's own bytes; a missing byte reads as 0): allocate scanned,
 * atomic and typed objects of many sizes, link and unlink them, store them
 * in roots, add and remove root ranges, set and remove finalizers, make and
 * read weak handles, collect, run finalizers (which may resurrect, set a new
 * finalizer, allocate or collect), reallocate, change the pacer, misuse the
 * API. The model keeps, for every object, its address (XORed with MASK, so
 * the model never keeps anything alive), the expected value of each of its
 * first MAXSLOT words and which of them are edges the collector must
 * follow (every word of a gc_alloc object, the pointer words of a typed
 * object, none of an atomic one).
 *
 * Where the graph lives (all of it spangc memory or registered ranges):
 *  - four malloc'd blocks of BLKW words, registered and unregistered in
 *    parts with gc_add_roots / gc_remove_roots;
 *  - a root table (a gc_alloc object, grown and shrunk with gc_realloc) and
 *    a handle table, both held by a malloc'd two-word range registered for
 *    the whole input;
 *  - edges: pointers (interior ones too) inside objects.
 *
 * After every collection (explicit, or automatic: detected through
 * gc_stats.num_gc after each call that may collect), with
 *   R = closure(roots),
 *   G = closure(R, everything objects with pending finalizers point to,
 *       finalizer args)              -- what marking must mark,
 *   M = closure(G, objects with pending finalizers)  -- what must survive,
 * the model checks, one-sidedly (an object the model calls dead may survive
 * through a stray word on the stack or in a data segment):
 *  - every object in M is alive (gc_base) with intact contents, a zero tail
 *    and a plausible gc_size; objects outside M become "lost" and are never
 *    touched again (unless a weak handle hands them back);
 *  - a pending finalizer whose object is outside G may be queued; a
 *    finalizer that runs must have been so at some collection since it was
 *    set, must run at most once, never after its removal, only inside
 *    gc_run_finalizers, on an intact object;
 *  - a weak handle whose target stayed in R at every collection since the
 *    handle was made returns the target; once it returned NULL it stays
 *    NULL; it never returns anything but its target, and a target it
 *    returns is alive (so are the objects it points to);
 *  - gc_weak_new returns the same handle while the target stayed in R;
 *  - after gc_collect, the statistics cover at least what the model knows
 *    to be marked and alive.
 * At the end of each input every root is dropped, every finalizer removed
 * or run, and the heap collected, so the next input starts clean.
 *
 * Environment (read once at start-up):
 *   SPANGC_FUZZ_STRESS=N    collect every N allocations (default 32, 0 off)
 *   SPANGC_FUZZ_DEBUG=0|1|2 0: none, 1: poison (default), 2: verify+poison
 *   SPANGC_FUZZ_BG_SWEEP=1  keep the background sweeper (nondeterministic)
 *   SPANGC_FUZZ_TRACE=1     print each operation on stderr
 */
#include <spangc.h>

#include "fuzz_env.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MASK ((uintptr_t)0xa5a5a5a5a5a5a5a5u)
#define HIDE(p) ((uintptr_t)(p) ^ MASK)
#define SHOW(h) ((void *)((h) ^ MASK))

/* Data words: the top 16 bits make them non-canonical addresses, which
 * can never point into the heap. */
#define STAMP_TAG ((uint64_t)0xd1ce000000000000u)
/* Integer finalizer args: likewise never an address. */
#define TOK_TAG ((uint64_t)0xfeed000000000000u)

enum {
    MAXOBJ = 256,  /* model objects per input */
    MAXSLOT = 16,  /* modelled words per object; the rest is a pattern */
    NBLK = 4,      /* malloc'd root blocks */
    BLKW = 8,      /* words per block */
    NBSLOT = NBLK * BLKW,
    TBLMAX = 64,   /* root table entries at most */
    HSLOTS = 16,   /* handle table entries */
    MAXH = 128,    /* weak handles per input */
    MAXTOK = 128,  /* finalizers set per input */
};

enum { K_SCAN, K_ATOMIC, K_TYPED };
enum { T_NONE, T_PENDING, T_RUN, T_REMOVED };

typedef struct mobj {
    uintptr_t h;        /* hidden address */
    uint64_t seed;      /* data stamps */
    uint32_t size;      /* requested bytes (current) */
    uint32_t cw;        /* words [MAXSLOT, cw) hold the pattern, the rest 0 */
    uint8_t kind, type;
    bool lost;          /* found unreachable: may be freed, never touched */
    int16_t reg_token;  /* finalizer believed registered, or -1 */
    int16_t handle;     /* latest weak handle entry, or -1 */
    uintptr_t slot[MAXSLOT]; /* hidden expected values */
    int16_t edge[MAXSLOT];   /* target of a pointer word, or -1 */
} mobj;

typedef struct tok {
    int16_t obj, arg_obj; /* arg_obj >= 0: arg is that object */
    uint8_t state;
    bool queueable;       /* outside G at some collection since set */
} tok;

typedef struct handle {
    uintptr_t hh;   /* hidden handle address */
    int16_t obj;
    uint8_t refs;   /* handle table entries holding it */
    bool must;      /* target in R at every collection since made */
    bool seen_null;
} handle;

typedef struct rslot {
    uintptr_t vh; /* hidden value */
    int16_t target;
} rslot;

typedef struct fstate {
    uint64_t gen;
    const uint8_t *in;
    size_t len, pos, op;
    mobj o[MAXOBJ];
    int nobj;
    tok t[MAXTOK];
    int ntok;
    handle h[MAXH];
    int nh;
    int16_t hslot[HSLOTS];
    rslot r[NBSLOT + TBLMAX];
    uintptr_t *blk[NBLK];
    bool reg_on[NBLK][BLKW];
    uint8_t reg_cov[NBLK][BLKW];
    uintptr_t *anchor; /* [0] root table, [1] handle table; registered */
    uint32_t tblcap;
    uint64_t seen_gc;
    int percent;
    uint64_t limit;
    int disabled;
    /* running finalizers */
    bool in_run, cb_collected, cb_refinalized;
    unsigned finmode;
    int fin_rs;
    size_t cb_calls;
    /* closures of the last collection */
    uint8_t inR[MAXOBJ], inG[MAXOBJ], inM[MAXOBJ];
    int16_t stk[MAXOBJ];
} fstate;

/* Persistent across inputs. */
static fstate *F;
static uint64_t generation;
static unsigned stress;
static bool trace;

typedef struct ftype {
    size_t size;
    size_t offs[2];
    size_t n;
    uint32_t words, ptrmask;
    const gc_type *t;
} ftype;

static ftype types[] = {
    {16, {8}, 1, 0, 0, NULL},     /* a header word and a pointer */
    {32, {0, 16}, 2, 0, 0, NULL}, /* pointer, data, pointer, data */
    {24, {0}, 0, 0, 0, NULL},     /* no pointers: atomic */
    {8, {0}, 1, 0, 0, NULL},      /* every word a pointer */
    {40, {32, 8}, 2, 0, 0, NULL}, /* offsets out of order */
    {64, {56}, 1, 0, 0, NULL},    /* the last word only */
};
#define NTYPES (sizeof types / sizeof types[0])

/* ---- failure ------------------------------------------------------------- */

static __attribute__((noreturn, format(printf, 1, 2))) void fail(const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "\nspangc-fuzz: FAILED: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nspangc-fuzz: input %llu, operation %zu\n",
            F ? (unsigned long long)F->gen : 0ull, F ? F->op : (size_t)0);
    abort();
}

#define CHECK(cond, ...)                                                       \
    do {                                                                       \
        if (!(cond))                                                           \
            fail(__VA_ARGS__);                                                 \
    } while (0)

#define TRACE(...)                                                             \
    do {                                                                       \
        if (trace)                                                             \
            fprintf(stderr, __VA_ARGS__);                                      \
    } while (0)

/* ---- input ---------------------------------------------------------------- */

static uint8_t next(void)
{
    return F->pos < F->len ? F->in[F->pos++] : 0;
}

/* ---- helpers -------------------------------------------------------------- */

static uintptr_t addr(int i)
{
    return (uintptr_t)SHOW(F->o[i].h);
}

static uint64_t stamp(uint64_t seed, uint32_t w)
{
    uint64_t x = (seed + w) * 0x9e3779b97f4a7c15ull;
    return STAMP_TAG | ((x ^ (x >> 29)) & 0x0000ffffffffffffull);
}

static bool is_ptr_slot(const mobj *o, uint32_t w)
{
    if (o->kind == K_SCAN)
        return true;
    if (o->kind == K_ATOMIC)
        return false;
    const ftype *t = &types[o->type];
    return (t->ptrmask >> (w % t->words)) & 1;
}

static uint32_t writable_slots(const mobj *o)
{
    uint32_t w = o->size / 8;
    return w < MAXSLOT ? w : MAXSLOT;
}

static uint64_t num_gc(void)
{
    gc_stats s;
    gc_get_stats(&s);
    return s.num_gc;
}

/* A usable object chosen by b, or -1. */
static int pick_obj(uint8_t b)
{
    if (F->nobj == 0)
        return -1;
    int start = b % F->nobj;
    for (int k = 0; k < F->nobj; k++) {
        int i = (start + k) % F->nobj;
        if (!F->o[i].lost)
            return i;
    }
    return -1;
}

static int nroots(void)
{
    return NBSLOT + (int)F->tblcap;
}

static volatile uintptr_t *rslot_mem(int rs)
{
    if (rs < NBSLOT)
        return &F->blk[rs / BLKW][rs % BLKW];
    return &((volatile uintptr_t *)F->anchor[0])[rs - NBSLOT];
}

static bool rslot_is_root(int rs)
{
    if (rs >= NBSLOT)
        return rs - NBSLOT < (int)F->tblcap;
    int b = rs / BLKW, w = rs % BLKW;
    for (int s = 0; s <= w; s++)
        if (F->reg_on[b][s] && w < s + F->reg_cov[b][s])
            return true;
    return false;
}

static uintptr_t ptr_value(int target, uint32_t off)
{
    return target >= 0 ? addr(target) + off : 0;
}

static void set_root(int rs, int target, uint32_t off)
{
    uintptr_t v = ptr_value(target, off);
    *rslot_mem(rs) = v;
    F->r[rs].vh = HIDE(v);
    F->r[rs].target = (int16_t)target;
}

static void set_word(int src, uint32_t w, uintptr_t value, int target)
{
    mobj *o = &F->o[src];
    ((volatile uintptr_t *)addr(src))[w] = value;
    o->slot[w] = HIDE(value);
    o->edge[w] = (int16_t)(target >= 0 && is_ptr_slot(o, w) ? target : -1);
}

static void set_edge(int src, uint32_t w, int target, uint32_t off)
{
    set_word(src, w, ptr_value(target, off), target);
}

/* An interior offset into object i chosen by b (mostly 0). */
static uint32_t pick_off(int i, uint8_t b)
{
    uint32_t size = F->o[i].size;
    if (b < 160 || size == 0)
        return 0;
    if (b >= 250)
        return size - 1; /* the last byte */
    return (uint32_t)(b * 2654435761u) % size;
}

/* ---- checking ------------------------------------------------------------- */

static const char *kind_name(const mobj *o)
{
    return o->kind == K_SCAN ? "scan" : o->kind == K_ATOMIC ? "atomic" : "typed";
}

/* Object i must be alive with the contents the model gave it. */
static void check_object(int i, const char *why)
{
    mobj *o = &F->o[i];
    uintptr_t p = addr(i);
    CHECK(gc_base((void *)p) == (void *)p,
          "%s: object %d (%p, %s, %u bytes) is not alive: gc_base gives %p", why, i,
          (void *)p, kind_name(o), o->size, gc_base((void *)p));
    size_t es = gc_size((void *)p);
    CHECK(es >= o->size && es % 16 == 0 && p % 16 == 0,
          "%s: object %d at %p: gc_size %zu for %u bytes", why, i, (void *)p, es, o->size);
    if (o->size > 1) {
        CHECK(gc_base((void *)(p + o->size - 1)) == (void *)p &&
                  gc_base((void *)(p + o->size / 2)) == (void *)p,
              "%s: object %d at %p: gc_base of an interior pointer is wrong", why, i, (void *)p);
    }
    const volatile uintptr_t *w = (const volatile uintptr_t *)p;
    size_t nw = es / 8;
    for (uint32_t k = 0; k < MAXSLOT && k < nw; k++) {
        uintptr_t v = w[k];
        CHECK(HIDE(v) == o->slot[k],
              "%s: object %d (%p, %s, %u bytes) word %u is %#lx, expected %#lx", why, i,
              (void *)p, kind_name(o), o->size, k, (unsigned long)v,
              (unsigned long)(uintptr_t)SHOW(o->slot[k]));
    }
    for (uint32_t k = MAXSLOT; k < o->cw && k < nw; k++)
        CHECK(w[k] == stamp(o->seed, k), "%s: object %d (%p, %u bytes) word %u is %#lx, expected %#lx",
              why, i, (void *)p, o->size, k, (unsigned long)w[k],
              (unsigned long)stamp(o->seed, k));
    for (size_t k = o->cw > MAXSLOT ? o->cw : MAXSLOT; k < nw; k++)
        CHECK(w[k] == 0, "%s: object %d (%p, %u bytes, usable %zu) tail word %zu is %#lx, expected 0",
              why, i, (void *)p, o->size, es, k, (unsigned long)w[k]);
}

static void check_tables(void)
{
    uintptr_t tbl = F->anchor[0], ht = F->anchor[1];
    CHECK(gc_base((void *)tbl) == (void *)tbl, "the root table %p is not alive", (void *)tbl);
    CHECK(gc_base((void *)ht) == (void *)ht, "the handle table %p is not alive", (void *)ht);
    size_t nw = gc_size((void *)tbl) / 8;
    CHECK(nw >= F->tblcap, "root table: gc_size %zu for %u entries", nw * 8, F->tblcap);
    for (size_t k = 0; k < nw && k < TBLMAX; k++) {
        uintptr_t v = ((volatile uintptr_t *)tbl)[k];
        uintptr_t want = k < F->tblcap ? (uintptr_t)SHOW(F->r[NBSLOT + k].vh) : 0;
        CHECK(v == want, "root table entry %zu is %#lx, expected %#lx", k, (unsigned long)v,
              (unsigned long)want);
    }
    for (int k = 0; k < HSLOTS; k++) {
        uintptr_t v = ((volatile uintptr_t *)ht)[k];
        uintptr_t want = F->hslot[k] >= 0 ? (uintptr_t)SHOW(F->h[F->hslot[k]].hh) : 0;
        CHECK(v == want, "handle table entry %d is %#lx, expected %#lx", k, (unsigned long)v,
              (unsigned long)want);
    }
}

/* ---- the model's view of a collection -------------------------------------- */

static int push(uint8_t *in, int sp, int i)
{
    if (!in[i]) {
        CHECK(!F->o[i].lost, "model bug: object %d is lost but reachable", i);
        in[i] = 1;
        F->stk[sp++] = (int16_t)i;
    }
    return sp;
}

static void closure(uint8_t *in, int sp)
{
    while (sp > 0) {
        const mobj *o = &F->o[F->stk[--sp]];
        for (int w = 0; w < MAXSLOT; w++)
            if (o->edge[w] >= 0)
                sp = push(in, sp, o->edge[w]);
    }
}

/* A collection happened since the model last looked; the heap it saw is
 * the model's current state. */
static void model_collected(void)
{
    fstate *f = F;
    memset(f->inR, 0, sizeof f->inR);
    int sp = 0;
    for (int rs = 0; rs < nroots(); rs++)
        if (f->r[rs].target >= 0 && rslot_is_root(rs))
            sp = push(f->inR, sp, f->r[rs].target);
    closure(f->inR, sp);

    memcpy(f->inG, f->inR, sizeof f->inG);
    sp = 0;
    for (int k = 0; k < f->ntok; k++) {
        if (f->t[k].state != T_PENDING)
            continue;
        const mobj *o = &f->o[f->t[k].obj];
        for (int w = 0; w < MAXSLOT; w++)
            if (o->edge[w] >= 0)
                sp = push(f->inG, sp, o->edge[w]);
        if (f->t[k].arg_obj >= 0)
            sp = push(f->inG, sp, f->t[k].arg_obj);
    }
    closure(f->inG, sp);

    memcpy(f->inM, f->inG, sizeof f->inM);
    sp = 0;
    for (int k = 0; k < f->ntok; k++)
        if (f->t[k].state == T_PENDING)
            sp = push(f->inM, sp, f->t[k].obj);
    closure(f->inM, sp);

    for (int k = 0; k < f->ntok; k++)
        if (f->t[k].state == T_PENDING && !f->inG[f->t[k].obj])
            f->t[k].queueable = true;
    for (int i = 0; i < f->nobj; i++)
        if (!f->inM[i])
            f->o[i].lost = true;
    /* A word in an unregistered part of a block may still point at an
     * object that is gone now: from here on it is just a number. */
    for (int rs = 0; rs < nroots(); rs++)
        if (f->r[rs].target >= 0 && f->o[f->r[rs].target].lost)
            f->r[rs].target = -1;
    for (int k = 0; k < f->nh; k++)
        if (f->h[k].must && !f->inR[f->h[k].obj])
            f->h[k].must = false;

    for (int i = 0; i < f->nobj; i++)
        if (!f->o[i].lost)
            check_object(i, "after a collection");
    check_tables();
    for (int k = 0; k < f->nh; k++) {
        handle *h = &f->h[k];
        if (h->must) {
            void *r = gc_weak_get(SHOW(h->hh));
            CHECK(r == (void *)addr(h->obj),
                  "after a collection: weak handle %p of reachable object %d (%p) gives %p",
                  SHOW(h->hh), h->obj, (void *)addr(h->obj), r);
        } else if (h->refs > 0 && h->seen_null) {
            void *r = gc_weak_get(SHOW(h->hh));
            CHECK(r == NULL, "weak handle %p gave NULL, and now %p", SHOW(h->hh), r);
        }
    }
}

/* Call after anything that may collect. */
static bool sync_gc(void)
{
    uint64_t n = num_gc();
    if (n == F->seen_gc)
        return false;
    CHECK(n > F->seen_gc, "num_gc went back from %llu to %llu", (unsigned long long)F->seen_gc,
          (unsigned long long)n);
    TRACE("  [collected: num_gc %llu -> %llu]\n", (unsigned long long)F->seen_gc,
          (unsigned long long)n);
    F->seen_gc = n;
    model_collected();
    return true;
}

/* ---- allocation ------------------------------------------------------------- */

static uint32_t pick_words(uint8_t s)
{
    static const uint32_t medium[] = {1000, 2047, 4095, 4096, 4097, 4098};
    static const uint32_t large[] = {6000, 8192, 20000};
    if (s < 160)
        return s % 17;
    if (s < 230)
        return 17 + (uint32_t)(s * 7) % 500;
    if (s < 250)
        return medium[s % 6];
    return large[s % 3];
}

static void *raw_alloc(int kind, int type, size_t size)
{
    switch (kind) {
    case K_SCAN:
        return gc_alloc(size);
    case K_ATOMIC:
        return gc_alloc_atomic(size);
    default:
        return gc_alloc_typed(size, types[type].t);
    }
}

/* A new model object, or -1 when the model is full. */
static int new_object(uint8_t kb, uint8_t sb)
{
    if (F->nobj == MAXOBJ)
        return -1;
    int kind, type = 0;
    switch (kb & 7) {
    case 0: case 1: case 2: kind = K_SCAN; break;
    case 3: kind = K_ATOMIC; break;
    default: kind = K_TYPED; type = (kb >> 3) % NTYPES; break;
    }
    uint32_t words = pick_words(sb);
    uint32_t extra = (kb & 0x80) ? (kb >> 4) & 7 : 0;
    size_t size = (size_t)words * 8 + extra;
    void *p = raw_alloc(kind, type, size);
    CHECK(p != NULL, "allocating %zu bytes (%s) failed: errno %d", size,
          kind == K_SCAN ? "scan" : kind == K_ATOMIC ? "atomic" : "typed", errno);
    CHECK(((uintptr_t)p & 15) == 0, "allocation %p is not 16-byte aligned", p);
    sync_gc(); /* a collection before p existed */
    size_t es = gc_size(p);
    CHECK(es >= size, "gc_size %zu of a new %zu-byte object", es, size);
    const volatile uintptr_t *pw = p;
    for (size_t k = 0; k < es / 8; k++)
        CHECK(pw[k] == 0, "new %zu-byte object %p: word %zu is %#lx, not zero", size, p, k,
              (unsigned long)pw[k]);
    int i = F->nobj++;
    mobj *o = &F->o[i];
    memset(o, 0, sizeof *o);
    o->h = HIDE(p);
    o->seed = (F->gen << 24) ^ ((uint64_t)i << 8) ^ 0x5eed;
    o->size = (uint32_t)size;
    o->cw = words;
    o->kind = (uint8_t)kind;
    o->type = (uint8_t)type;
    o->reg_token = -1;
    o->handle = -1;
    for (int w = 0; w < MAXSLOT; w++) {
        o->slot[w] = HIDE(0);
        o->edge[w] = -1;
    }
    for (uint32_t w = 0; w < writable_slots(o); w++)
        set_word(i, w, stamp(o->seed, w), -1);
    volatile uintptr_t *vw = p;
    for (uint32_t w = MAXSLOT; w < words; w++)
        vw[w] = stamp(o->seed, w);
    TRACE("  new object %d at %p: %s%s%u bytes\n", i, p,
          kind == K_SCAN ? "scan " : kind == K_ATOMIC ? "atomic " : "typed ", "", (unsigned)size);
    return i;
}

/* Store object i somewhere the input chooses (or nowhere). */
static void store_somewhere(int i)
{
    uint8_t d = next();
    if (i < 0)
        return;
    if (d < 96) {
        set_root(d % nroots(), i, 0);
    } else if (d < 224) {
        int src = pick_obj(next());
        uint8_t w = next();
        if (src >= 0 && writable_slots(&F->o[src]) > 0)
            set_edge(src, w % writable_slots(&F->o[src]), i, 0);
    }
}

/* ---- finalizers --------------------------------------------------------------- */

static void *tok_arg(int k)
{
    if (F->t[k].arg_obj >= 0)
        return (void *)addr(F->t[k].arg_obj);
    return (void *)(uintptr_t)(TOK_TAG | (F->gen & 0xffffffffu) << 16 | (uint64_t)k);
}

static int new_token(int obj, int arg_obj)
{
    if (F->ntok == MAXTOK)
        return -1;
    int k = F->ntok++;
    F->t[k] = (tok){.obj = (int16_t)obj, .arg_obj = (int16_t)arg_obj, .state = T_NONE};
    return k;
}

static void finalizer(void *obj, void *arg);

/* gc_set_finalizer(object i, finalizer, a new token's arg). */
static void set_fin(int i, int arg_obj, const char *where)
{
    int k = new_token(i, arg_obj);
    if (k < 0)
        return;
    mobj *o = &F->o[i];
    int r = gc_set_finalizer((void *)addr(i), finalizer, tok_arg(k));
    TRACE("  set finalizer %d on object %d%s: %d\n", k, i, where, r);
    if (o->reg_token < 0) {
        CHECK(r == 0, "gc_set_finalizer on object %d without one%s: %d", i, where, r);
    } else if (!F->t[o->reg_token].queueable) {
        CHECK(r == -EEXIST, "gc_set_finalizer on object %d with finalizer %d%s: %d, not -EEXIST",
              i, o->reg_token, where, r);
    } else {
        /* The old one may have been queued, which removed it. */
        CHECK(r == 0 || r == -EEXIST, "gc_set_finalizer on object %d%s: %d", i, where, r);
    }
    if (r == 0) {
        F->t[k].state = T_PENDING;
        o->reg_token = (int16_t)k;
    }
}

/* gc_run_finalizers with the behaviours mode asks for. */
static size_t run_finalizers(unsigned mode, int rs)
{
    fstate *f = F;
    f->in_run = true;
    f->finmode = mode;
    f->fin_rs = rs;
    f->cb_calls = 0;
    f->cb_collected = false;
    f->cb_refinalized = false;
    size_t ran = gc_run_finalizers();
    f->in_run = false;
    CHECK(ran == f->cb_calls, "gc_run_finalizers says %zu ran, %zu calls seen", ran,
          f->cb_calls);
    return ran;
}

static void finalizer(void *obj, void *arg)
{
    fstate *f = F;
    CHECK(f != NULL, "a finalizer (%p, %p) ran between inputs", obj, arg);
    CHECK(f->in_run, "finalizer (%p, %p) ran outside gc_run_finalizers", obj, arg);
    f->cb_calls++;
    int k = -1;
    for (int j = 0; j < f->ntok; j++) {
        if (f->t[j].state == T_PENDING && addr(f->t[j].obj) == (uintptr_t)obj &&
            tok_arg(j) == arg) {
            k = j;
            break;
        }
    }
    if (k < 0) {
        for (int j = 0; j < f->ntok; j++)
            if (f->t[j].state != T_NONE && !f->o[f->t[j].obj].lost &&
                addr(f->t[j].obj) == (uintptr_t)obj && tok_arg(j) == arg)
                fail("finalizer %d of object %d (%p) ran %s", j, f->t[j].obj, obj,
                     f->t[j].state == T_RUN ? "a second time" : "after it was removed");
        fail("a finalizer ran for %p with arg %p, which no pending finalizer has", obj, arg);
    }
    tok *t = &f->t[k];
    int i = t->obj;
    mobj *o = &f->o[i];
    TRACE("  finalizer %d of object %d (%p)\n", k, i, obj);
    CHECK(t->queueable,
          "finalizer %d ran for object %d (%p), which was reachable (or reachable from another "
          "finalizable object) at every collection since the finalizer was set",
          k, i, obj);
    CHECK(!o->lost, "model bug: pending finalizer on a lost object");
    check_object(i, "in its finalizer");
    for (int w = 0; w < MAXSLOT; w++)
        if (o->edge[w] >= 0)
            check_object(o->edge[w], "pointed to by an object being finalized");
    if (t->arg_obj >= 0)
        check_object(t->arg_obj, "a finalizer's arg");
    t->state = T_RUN;
    if (o->reg_token == k)
        o->reg_token = -1;

    /* Behaviours. */
    if ((f->finmode & 1) && f->fin_rs >= 0)
        set_root(f->fin_rs, i, 0); /* resurrect */
    if ((f->finmode & 2) && !f->cb_refinalized) {
        f->cb_refinalized = true;
        set_fin(i, -1, "inside its finalizer");
    }
    if ((f->finmode & 4) && !f->cb_collected) {
        f->cb_collected = true;
        uint64_t before = f->seen_gc;
        gc_collect();
        CHECK(sync_gc() && f->seen_gc == before + 1, "gc_collect in a finalizer: num_gc %llu -> %llu",
              (unsigned long long)before, (unsigned long long)f->seen_gc);
    }
    if ((f->finmode & 8) && f->fin_rs >= 0 && f->nobj < MAXOBJ) {
        /* A holder that points at the object, stored in a root. */
        int n = new_object(0, 2);
        if (!o->lost)
            set_edge(n, 0, i, 0);
        set_root(f->fin_rs, n, 0);
    }
}

/* ---- weak handles --------------------------------------------------------------- */

/* A weak handle gave back object i, which the model had lost: it was
 * marked by the last collection, so it and everything it points to is
 * alive. */
static void revive(int i)
{
    if (!F->o[i].lost)
        return;
    F->o[i].lost = false;
    check_object(i, "handed back by a weak handle");
    for (int w = 0; w < MAXSLOT; w++)
        if (F->o[i].edge[w] >= 0)
            revive(F->o[i].edge[w]);
}

static void hslot_set(int hs, int e)
{
    int old = F->hslot[hs];
    if (old >= 0)
        F->h[old].refs--;
    ((volatile uintptr_t *)F->anchor[1])[hs] = e >= 0 ? (uintptr_t)SHOW(F->h[e].hh) : 0;
    F->hslot[hs] = (int16_t)e;
    if (e >= 0)
        F->h[e].refs++;
}

/* ---- operations ------------------------------------------------------------------- */

enum {
    OP_ALLOC, OP_ALLOC2, OP_LINK, OP_LINK2, OP_UNLINK, OP_ROOT, OP_UNROOT, OP_ADD_ROOTS,
    OP_REMOVE_ROOTS, OP_SET_FIN, OP_REMOVE_FIN, OP_WEAK_NEW, OP_WEAK_GET, OP_COLLECT,
    OP_RUN_FIN, OP_GARBAGE, OP_REALLOC, OP_TABLE_REALLOC, OP_CHECK, OP_PACING, OP_QUERY,
    OP_MISUSE, NOPS
};

static void op_alloc(void)
{
    uint8_t kb = next(), sb = next();
    int i = new_object(kb, sb);
    store_somewhere(i);
}

static void op_link(void)
{
    int src = pick_obj(next());
    uint8_t wb = next(), tb = next(), ob = next();
    if (src < 0 || writable_slots(&F->o[src]) == 0)
        return;
    uint32_t w = wb % writable_slots(&F->o[src]);
    int target = tb >= 240 ? -1 : pick_obj(tb);
    set_edge(src, w, target, target >= 0 ? pick_off(target, ob) : 0);
    TRACE("  object %d word %u -> %d\n", src, w, target);
}

static void op_unlink(void)
{
    int src = pick_obj(next());
    uint8_t wb = next();
    if (src < 0 || writable_slots(&F->o[src]) == 0)
        return;
    uint32_t w = wb % writable_slots(&F->o[src]);
    set_word(src, w, (wb & 0x80) ? 0 : stamp(F->o[src].seed, w), -1);
}

static void op_root(void)
{
    int rs = next() % nroots();
    int target = pick_obj(next());
    uint8_t ob = next();
    set_root(rs, target, target >= 0 ? pick_off(target, ob) : 0);
    TRACE("  root %d -> %d\n", rs, target);
}

static void op_unroot(void)
{
    set_root(next() % nroots(), -1, 0);
}

static void op_add_roots(void)
{
    uint8_t a = next(), b = next();
    int blk = a % NBLK, s = (a / NBLK) % BLKW;
    int l = 1 + b % (BLKW - s);
    bool partial = b & 0x80; /* a length that ends inside the last word */
    size_t len = (size_t)l * 8 - (partial ? 4 : 0);
    int r = gc_add_roots(&F->blk[blk][s], len);
    int want = F->reg_on[blk][s] ? -EEXIST : 0;
    CHECK(r == want, "gc_add_roots(block %d + %d words, %zu) = %d, expected %d", blk, s, len, r,
          want);
    if (r == 0) {
        F->reg_on[blk][s] = true;
        F->reg_cov[blk][s] = (uint8_t)(l - (partial ? 1 : 0));
    }
    TRACE("  add roots block %d word %d len %zu: %d\n", blk, s, len, r);
}

static void op_remove_roots(void)
{
    uint8_t a = next();
    int blk = a % NBLK, s = (a / NBLK) % BLKW;
    int r = gc_remove_roots(&F->blk[blk][s]);
    int want = F->reg_on[blk][s] ? 0 : -ENOENT;
    CHECK(r == want, "gc_remove_roots(block %d + %d words) = %d, expected %d", blk, s, r, want);
    F->reg_on[blk][s] = false;
    F->reg_cov[blk][s] = 0;
    TRACE("  remove roots block %d word %d: %d\n", blk, s, r);
}

static void op_set_fin(void)
{
    int i = pick_obj(next());
    uint8_t ab = next();
    if (i >= 0)
        set_fin(i, ab >= 192 ? pick_obj(ab) : -1, "");
}

static void op_remove_fin(void)
{
    int i = pick_obj(next());
    if (i < 0)
        return;
    mobj *o = &F->o[i];
    int r = gc_set_finalizer((void *)addr(i), NULL, NULL);
    TRACE("  remove finalizer of object %d: %d\n", i, r);
    if (o->reg_token < 0) {
        CHECK(r == -ENOENT, "removing the finalizer of object %d, which has none: %d", i, r);
        return;
    }
    tok *t = &F->t[o->reg_token];
    if (!t->queueable)
        CHECK(r == 0, "removing finalizer %d of object %d: %d", o->reg_token, i, r);
    else
        CHECK(r == 0 || r == -ENOENT, "removing finalizer %d of object %d: %d", o->reg_token, i,
              r);
    if (r == 0)
        t->state = T_REMOVED; /* it must never run */
    /* -ENOENT: it was queued and will run. */
    o->reg_token = -1;
}

static void op_weak_new(void)
{
    int i = pick_obj(next());
    int hs = next() % HSLOTS;
    if (i < 0 || F->nh == MAXH)
        return;
    errno = 0;
    gc_weak *w = gc_weak_new((void *)addr(i));
    CHECK(w != NULL, "gc_weak_new on live object %d: NULL, errno %d", i, errno);
    sync_gc();
    mobj *o = &F->o[i];
    if (o->handle >= 0 && F->h[o->handle].must)
        CHECK(HIDE(w) == F->h[o->handle].hh,
              "gc_weak_new on object %d gave %p, but its handle %p is still valid", i, (void *)w,
              SHOW(F->h[o->handle].hh));
    int e = -1;
    for (int k = 0; k < F->nh; k++) {
        if ((F->h[k].refs > 0 || F->h[k].must) && F->h[k].hh == HIDE(w)) {
            CHECK(F->h[k].obj == i, "gc_weak_new on object %d gave %p, the handle of object %d",
                  i, (void *)w, F->h[k].obj);
            CHECK(!F->h[k].seen_null,
                  "gc_weak_new on object %d gave %p, a handle that returned NULL", i, (void *)w);
            e = k;
            break;
        }
    }
    if (e < 0) {
        e = F->nh++;
        F->h[e] = (handle){.hh = HIDE(w), .obj = (int16_t)i};
    }
    /* Made or found after any collection above, for a live target. */
    F->h[e].must = !o->lost;
    o->handle = (int16_t)e;
    hslot_set(hs, e);
    TRACE("  weak handle %d (%p) of object %d in slot %d\n", e, (void *)w, i, hs);
}

static void op_weak_get(void)
{
    int hs = next() % HSLOTS;
    uint8_t rb = next();
    int e = F->hslot[hs];
    if (e < 0)
        return;
    handle *h = &F->h[e];
    void *r = gc_weak_get(SHOW(h->hh));
    void *target = (void *)addr(h->obj);
    TRACE("  weak get slot %d (handle %d, object %d): %p\n", hs, e, h->obj, r);
    if (h->seen_null)
        CHECK(r == NULL, "weak handle %p returned NULL before, now %p", SHOW(h->hh), r);
    if (h->must)
        CHECK(r == target, "weak handle %p of reachable object %d (%p) gives %p", SHOW(h->hh),
              h->obj, target, r);
    if (r == NULL) {
        h->seen_null = true;
        return;
    }
    CHECK(r == target, "weak handle %p of object %d (%p) gives %p", SHOW(h->hh), h->obj, target,
          r);
    if (rb >= 128) {
        revive(h->obj);
        set_root(rb % nroots(), h->obj, 0);
    } else if (F->o[h->obj].lost) {
        check_object(h->obj, "handed back by a weak handle");
    }
}

static void op_collect(void)
{
    gc_stats a, b;
    gc_get_stats(&a);
    CHECK(a.num_gc == F->seen_gc, "model bug: a collection went unnoticed");
    gc_collect();
    CHECK(sync_gc() && F->seen_gc == a.num_gc + 1, "gc_collect: num_gc %llu -> %llu",
          (unsigned long long)a.num_gc, (unsigned long long)F->seen_gc);
    gc_get_stats(&b);
    CHECK(b.num_forced_gc == a.num_forced_gc + 1, "gc_collect: num_forced_gc %llu -> %llu",
          (unsigned long long)a.num_forced_gc, (unsigned long long)b.num_forced_gc);
    /* Sweeping is finished: the statistics are exact. */
    uint64_t marked = gc_size((void *)F->anchor[0]) + gc_size((void *)F->anchor[1]);
    uint64_t live = marked, objects = 2;
    for (int i = 0; i < F->nobj; i++) {
        if (F->o[i].lost)
            continue;
        uint64_t es = gc_size((void *)addr(i));
        live += es;
        objects++;
        if (F->inG[i])
            marked += es;
    }
    CHECK(b.heap_live >= marked, "heap_live %llu < %llu bytes the model knows were marked",
          (unsigned long long)b.heap_live, (unsigned long long)marked);
    CHECK(b.heap_alloc >= live, "heap_alloc %llu < %llu bytes the model knows are alive",
          (unsigned long long)b.heap_alloc, (unsigned long long)live);
    CHECK(b.heap_objects >= objects && b.heap_objects == b.mallocs - b.frees,
          "heap_objects %llu (mallocs %llu, frees %llu), the model knows of %llu",
          (unsigned long long)b.heap_objects, (unsigned long long)b.mallocs,
          (unsigned long long)b.frees, (unsigned long long)objects);
    CHECK(b.heap_inuse >= b.heap_alloc, "heap_inuse %llu < heap_alloc %llu",
          (unsigned long long)b.heap_inuse, (unsigned long long)b.heap_alloc);
}

static void op_run_fin(void)
{
    uint8_t mode = next(), rb = next();
    size_t ran = run_finalizers(mode & 15, rb % nroots());
    TRACE("  ran %zu finalizers (mode %u)\n", ran, mode & 15);
}

static void op_garbage(void)
{
    uint8_t n = next(), kb = next(), sb = next();
    int count = 1 + n % 48;
    for (int k = 0; k < count; k++) {
        int kind = (kb + k) % 3;
        uint32_t words = pick_words((uint8_t)(sb + 37 * k));
        if (words > 4096 && (k & 3))
            words = 3; /* keep the big ones rare */
        void *p = raw_alloc(kind == 2 ? K_TYPED : kind, (kb >> 2) % NTYPES, (size_t)words * 8);
        CHECK(p != NULL, "allocating garbage failed");
        if (words)
            ((volatile uintptr_t *)p)[0] = stamp(F->gen, (uint32_t)k);
    }
    sync_gc();
}

/* The model of an object whose first size bytes are all that is left. */
static void truncate_model(mobj *o, size_t size)
{
    o->size = (uint32_t)size;
    uint32_t nw = (uint32_t)(size / 8);
    if (o->cw > nw)
        o->cw = nw;
    for (uint32_t w = nw; w < MAXSLOT; w++) {
        o->slot[w] = HIDE(0);
        o->edge[w] = -1;
    }
}

static void op_realloc(void)
{
    int i = pick_obj(next());
    uint8_t sb = next();
    if (i < 0 || F->nobj == MAXOBJ)
        return;
    mobj *o = &F->o[i];
    size_t size = (size_t)pick_words(sb) * 8;
    void *p = (void *)addr(i);
    size_t old_es = gc_size(p);
    void *q = gc_realloc(p, size);
    CHECK(q != NULL, "gc_realloc(object %d, %zu) failed: errno %d", i, size, errno);
    sync_gc();
    TRACE("  realloc object %d (%p, %u bytes) to %zu: %p\n", i, p, o->size, size, q);
    /* In place when the object is big enough and at least half of it stays
     * in use (or when a new object would be no smaller, which the model
     * does not know); otherwise a copy of the first min(size, old) bytes. */
    bool in_place = size <= old_es && size >= old_es / 2;
    if (q == p) {
        CHECK(size <= old_es, "gc_realloc kept %p (usable %zu) for %zu bytes", p, old_es, size);
        CHECK(!o->lost, "model bug: realloc in place of a lost object");
        truncate_model(o, size);
        store_somewhere(i);
        return;
    }
    CHECK(!in_place, "gc_realloc moved %p (usable %zu) for %zu bytes", p, old_es, size);
    int n = F->nobj++;
    mobj *m = &F->o[n];
    *m = *o;
    m->h = HIDE(q);
    truncate_model(m, size);
    m->lost = false;
    m->reg_token = -1;
    m->handle = -1;
    /* If a collection inside gc_realloc lost the old object (it was only
     * on our stack), what it pointed to may be gone for the model: those
     * words are just numbers now. */
    for (int w = 0; w < MAXSLOT; w++)
        if (m->edge[w] >= 0 && F->o[m->edge[w]].lost)
            m->edge[w] = -1;
    check_object(n, "a reallocated object");
    store_somewhere(n);
}

static void op_table_realloc(void)
{
    static const uint32_t caps[] = {1, 4, 8, 16, 32, 64};
    uint32_t cap = caps[next() % 6];
    void *p = (void *)F->anchor[0];
    void *q = gc_realloc(p, (size_t)cap * 8);
    CHECK(q != NULL, "gc_realloc of the root table failed");
    sync_gc();
    /* Entries past cap are gone, whether the table shrank in place or
     * was copied into a smaller object. */
    for (uint32_t k = cap; k < F->tblcap; k++) {
        F->r[NBSLOT + k].vh = HIDE(0);
        F->r[NBSLOT + k].target = -1;
    }
    if (q != p)
        F->anchor[0] = (uintptr_t)q;
    F->tblcap = cap;
    TRACE("  root table %p -> %p, %u entries\n", p, q, cap);
    check_tables();
}

static void op_check(void)
{
    for (int i = 0; i < F->nobj; i++)
        if (!F->o[i].lost)
            check_object(i, "between collections");
    check_tables();
}

static void op_pacing(void)
{
    static const int percents[] = {-1, 0, 5, 100, 400};
    static const uint64_t limits[] = {0, 1, 1u << 20, 16u << 20};
    uint8_t a = next(), b = next();
    switch (a % 4) {
    case 0: {
        int v = percents[b % 5];
        int old = gc_set_percent(v);
        CHECK(old == F->percent, "gc_set_percent returned %d, expected %d", old, F->percent);
        F->percent = v;
        break;
    }
    case 1: {
        uint64_t v = limits[b % 4];
        uint64_t old = gc_set_memory_limit(v);
        CHECK(old == F->limit, "gc_set_memory_limit returned %llu, expected %llu",
              (unsigned long long)old, (unsigned long long)F->limit);
        F->limit = v;
        break;
    }
    case 2:
        if (F->disabled < 8) {
            gc_disable();
            F->disabled++;
        }
        break;
    default:
        if (F->disabled > 0) {
            gc_enable();
            F->disabled--;
        }
        break;
    }
}

static void op_query(void)
{
    int i = pick_obj(next());
    uint8_t ob = next();
    if (i < 0)
        return;
    uintptr_t p = addr(i);
    uint32_t off = pick_off(i, ob);
    CHECK(gc_base((void *)(p + off)) == (void *)p, "gc_base(object %d + %u) = %p, not %p", i, off,
          gc_base((void *)(p + off)), (void *)p);
    size_t es = gc_size((void *)(p + off));
    if (off)
        CHECK(es == 0, "gc_size of an interior pointer (object %d + %u) is %zu", i, off, es);
    else
        CHECK(es >= F->o[i].size, "gc_size(object %d) = %zu < %u", i, es, F->o[i].size);
}

static int static_word;

static void op_misuse(void)
{
    uint8_t a = next(), b = next();
    int i = pick_obj(b);
    int local = 0;
    int r;
    switch (a % 8) {
    case 0: {
        void *m = malloc(32);
        CHECK(gc_base(m) == NULL && gc_size(m) == 0, "gc_base/gc_size accept malloc'd memory");
        CHECK(gc_base(&local) == NULL && gc_base(&static_word) == NULL && gc_base(NULL) == NULL,
              "gc_base accepts a non-heap address");
        CHECK(gc_set_finalizer(m, finalizer, NULL) == -EINVAL,
              "gc_set_finalizer accepts malloc'd memory");
        CHECK(gc_set_finalizer(NULL, finalizer, NULL) == -EINVAL, "gc_set_finalizer(NULL)");
        errno = 0;
        CHECK(gc_weak_new(m) == NULL && errno == EINVAL, "gc_weak_new accepts malloc'd memory");
        CHECK(gc_weak_get(NULL) == NULL, "gc_weak_get(NULL)");
        free(m);
        break;
    }
    case 1:
        if (i >= 0 && F->o[i].size > 1) {
            uint32_t off = 1 + (uint32_t)(b * 7u) % (F->o[i].size - 1);
            r = gc_set_finalizer((void *)(addr(i) + off), finalizer, NULL);
            CHECK(r == -EINVAL, "gc_set_finalizer(object %d + %u) = %d", i, off, r);
            errno = 0;
            CHECK(gc_weak_new((void *)(addr(i) + off)) == NULL && errno == EINVAL,
                  "gc_weak_new accepts an interior pointer");
        }
        break;
    case 2:
        if (i >= 0 && F->o[i].size > 1) {
            errno = 0;
            void *q = gc_realloc((void *)(addr(i) + 1), 64);
            CHECK(q == NULL && errno == EINVAL, "gc_realloc accepts an interior pointer: %p", q);
        }
        break;
    case 3:
        if (i >= 0) {
            r = gc_add_roots((void *)addr(i), F->o[i].size ? F->o[i].size : 1);
            CHECK(r == -EINVAL, "gc_add_roots on a heap object: %d", r);
        }
        CHECK(gc_add_roots(NULL, 8) == -EINVAL && gc_add_roots(&local, 0) == -EINVAL,
              "gc_add_roots accepts NULL or an empty range");
        CHECK(gc_remove_roots(&local) == -ENOENT, "gc_remove_roots of a range never added");
        break;
    case 4:
        /* A heap object that is not a handle (its second word is never
         * the handle magic: it is a stamp, a pointer or 0). */
        if (i >= 0) {
            errno = 0;
            CHECK(gc_weak_get((gc_weak *)addr(i)) == NULL, "gc_weak_get of object %d", i);
        }
        CHECK(gc_weak_get((gc_weak *)&static_word) == NULL, "gc_weak_get of a static");
        break;
    case 5:
        errno = 0;
        CHECK(gc_alloc_typed(16, NULL) == NULL && errno == EINVAL, "gc_alloc_typed(NULL type)");
        if (i >= 0) {
            errno = 0;
            CHECK(gc_alloc_typed(16, (const gc_type *)addr(i)) == NULL && errno == EINVAL,
                  "gc_alloc_typed with a heap object as its type");
        }
        break;
    case 6:
        if (i >= 0 && F->o[i].reg_token < 0) {
            r = gc_set_finalizer((void *)addr(i), NULL, NULL);
            CHECK(r == -ENOENT, "removing a finalizer object %d does not have: %d", i, r);
        }
        break;
    default:
        CHECK(gc_size(&local) == 0 && gc_size(NULL) == 0, "gc_size of a non-heap address");
        break;
    }
}

/* ---- one input ------------------------------------------------------------------------ */

/* Clear stale words below the stack pointer so that a dead frame of this
 * input does not keep the next input's objects alive by accident. */
static __attribute__((noinline, no_sanitize("address"))) void scrub_stack(void)
{
    volatile uintptr_t buf[4096];
    for (size_t k = 0; k < sizeof buf / sizeof buf[0]; k++)
        buf[k] = 0;
}

static void begin_input(const uint8_t *data, size_t size)
{
    F = calloc(1, sizeof *F);
    if (!F)
        abort();
    F->gen = ++generation;
    F->in = data;
    F->len = size;
    F->percent = 100;
    for (int k = 0; k < HSLOTS; k++)
        F->hslot[k] = -1;
    for (int k = 0; k < NBSLOT + TBLMAX; k++) {
        F->r[k].vh = HIDE(0);
        F->r[k].target = -1;
    }
    /* The previous input ended with a collection (end_input), which for
     * stress mode was a stress collection: this input's stress
     * collections come at the same points whatever ran before. */
    F->seen_gc = num_gc();
    for (int b = 0; b < NBLK; b++) {
        F->blk[b] = calloc(BLKW, sizeof(uintptr_t));
        if (!F->blk[b])
            abort();
    }
    F->anchor = calloc(2, sizeof(uintptr_t));
    if (!F->anchor)
        abort();
    CHECK(gc_add_roots(F->anchor, 2 * sizeof(uintptr_t)) == 0, "registering the anchor");
    F->tblcap = 16;
    F->anchor[0] = (uintptr_t)gc_alloc(F->tblcap * sizeof(uintptr_t));
    F->anchor[1] = (uintptr_t)gc_alloc(HSLOTS * sizeof(uintptr_t));
    CHECK(F->anchor[0] && F->anchor[1], "allocating the tables");
    /* Block 0 is registered from the start. */
    CHECK(gc_add_roots(F->blk[0], BLKW * sizeof(uintptr_t)) == 0, "registering block 0");
    F->reg_on[0][0] = true;
    F->reg_cov[0][0] = BLKW;
    sync_gc();
}

static void end_input(void)
{
    fstate *f = F;
    f->op = (size_t)-1;
    TRACE("  end of input\n");
    /* Every finalizer still set is removed, or was queued and runs now. */
    for (int i = 0; i < f->nobj; i++) {
        mobj *o = &f->o[i];
        if (o->lost || o->reg_token < 0)
            continue;
        tok *t = &f->t[o->reg_token];
        int r = gc_set_finalizer((void *)addr(i), NULL, NULL);
        if (r == 0)
            t->state = T_REMOVED;
        else
            CHECK(r == -ENOENT && t->queueable,
                  "removing finalizer %d of object %d at the end: %d", o->reg_token, i, r);
        o->reg_token = -1;
    }
    run_finalizers(0, -1);
    for (int k = 0; k < f->ntok; k++)
        CHECK(f->t[k].state != T_PENDING,
              "finalizer %d of object %d was queued (its removal said -ENOENT) but did not run "
              "in gc_run_finalizers",
              k, f->t[k].obj);

    /* Drop every root. */
    for (int b = 0; b < NBLK; b++) {
        for (int s = 0; s < BLKW; s++)
            if (f->reg_on[b][s])
                CHECK(gc_remove_roots(&f->blk[b][s]) == 0, "removing roots at the end");
        memset(f->blk[b], 0, BLKW * sizeof(uintptr_t));
    }
    memset((void *)f->anchor[0], 0, f->tblcap * sizeof(uintptr_t));
    memset((void *)f->anchor[1], 0, HSLOTS * sizeof(uintptr_t));
    CHECK(gc_remove_roots(f->anchor) == 0, "removing the anchor");
    f->anchor[0] = f->anchor[1] = 0;
    for (int k = 0; k < NBSLOT + TBLMAX; k++) {
        f->r[k].vh = HIDE(0);
        f->r[k].target = -1;
    }
    memset(f->reg_on, 0, sizeof f->reg_on);
    memset(f->reg_cov, 0, sizeof f->reg_cov);
    for (int k = 0; k < HSLOTS; k++)
        f->hslot[k] = -1;

    while (f->disabled > 0) {
        gc_enable();
        f->disabled--;
    }
    if (f->percent != 100)
        gc_set_percent(100);
    if (f->limit)
        gc_set_memory_limit(0);

    /* One collection frees this input's objects (the model has no roots
     * left, so it has nothing to check). In stress mode it is a stress
     * collection, reached by allocating: the stress count starts from zero
     * for the next input, so that the same input collects at the same
     * points (a collection costs about a millisecond here, mostly scanning
     * the sanitizer runtime's 10 MB of data segments, so there is only one
     * per input beyond what the input asks for). */
    scrub_stack();
    uint64_t n = num_gc();
    if (stress) {
        for (unsigned k = 0; k <= stress && num_gc() == n; k++)
            (void)!gc_alloc_atomic(16);
        CHECK(num_gc() == n + 1, "no stress collection in %u allocations", stress + 1);
    } else {
        gc_collect();
    }
    for (int i = 0; i < f->nobj; i++)
        f->o[i].lost = true;
    f->seen_gc = num_gc();
    CHECK(run_finalizers(0, -1) == 0, "a finalizer ran after every finalizer was removed or run");

    for (int b = 0; b < NBLK; b++)
        free(f->blk[b]);
    free(f->anchor);
    free(f);
    F = NULL;
}

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *v;
    unsigned debug;
    fuzz_read_env(&stress, &debug);
    trace = (v = getenv("SPANGC_FUZZ_TRACE")) && *v == '1';
    unsigned flags = GC_OPT_IGNORE_ENV;
    if (!((v = getenv("SPANGC_FUZZ_BG_SWEEP")) && *v == '1'))
        flags |= GC_OPT_NO_BACKGROUND_SWEEP;
    gc_options o = {
        .gc_percent = 100,
        .flags = flags,
        .debug = debug,
        .stress = stress,
        .mark_stack_limit = 1, /* one chunk: wide graphs take the overflow path */
    };
    int r = gc_init(&o);
    if (r != 0) {
        fprintf(stderr, "spangc-fuzz: gc_init: %d\n", r);
        abort();
    }
    for (size_t k = 0; k < NTYPES; k++) {
        ftype *t = &types[k];
        t->words = (uint32_t)(t->size / 8);
        for (size_t j = 0; j < t->n; j++)
            t->ptrmask |= 1u << (t->offs[j] / 8);
        t->t = gc_type_new(t->size, t->offs, t->n);
        if (!t->t) {
            fprintf(stderr, "spangc-fuzz: gc_type_new failed\n");
            abort();
        }
    }
    /* Bad layouts are refused. */
    size_t bad_off[] = {12}, big_off[] = {16};
    errno = 0;
    if (gc_type_new(0, NULL, 0) || errno != EINVAL || gc_type_new(16, bad_off, 1) ||
        gc_type_new(16, big_off, 1)) {
        fprintf(stderr, "spangc-fuzz: gc_type_new accepts a bad layout\n");
        abort();
    }
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    begin_input(data, size);
    while (F->pos < F->len) {
        uint8_t op = next();
        F->op++;
        TRACE("op %zu: %d\n", F->op, op % NOPS);
        switch (op % NOPS) {
        case OP_ALLOC:
        case OP_ALLOC2: op_alloc(); break;
        case OP_LINK:
        case OP_LINK2: op_link(); break;
        case OP_UNLINK: op_unlink(); break;
        case OP_ROOT: op_root(); break;
        case OP_UNROOT: op_unroot(); break;
        case OP_ADD_ROOTS: op_add_roots(); break;
        case OP_REMOVE_ROOTS: op_remove_roots(); break;
        case OP_SET_FIN: op_set_fin(); break;
        case OP_REMOVE_FIN: op_remove_fin(); break;
        case OP_WEAK_NEW: op_weak_new(); break;
        case OP_WEAK_GET: op_weak_get(); break;
        case OP_COLLECT: op_collect(); break;
        case OP_RUN_FIN: op_run_fin(); break;
        case OP_GARBAGE: op_garbage(); break;
        case OP_REALLOC: op_realloc(); break;
        case OP_TABLE_REALLOC: op_table_realloc(); break;
        case OP_CHECK: op_check(); break;
        case OP_PACING: op_pacing(); break;
        case OP_QUERY: op_query(); break;
        default: op_misuse(); break;
        }
    }
    end_input();
    return 0;
}

/* Conservative scanning needs every frame on the real stack: a fake stack
 * for use-after-return detection lives in memory spangc does not scan. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
    return "detect_stack_use_after_return=0";
}
