/*
 * arena.c - reserving arenas and maintaining the arena index (arena.h).
 */
#include "arena.h"

#include "metalloc.h"
#include "os.h"

SPANGC_STATE arena_index spangc_arenas;

/* Install the heap_arena record of the arena at base. */
static bool arena_register(uintptr_t base)
{
    uintptr_t ai = base >> ARENA_SHIFT;
    ao_word *slot1 = &spangc_arenas.l1[ai >> ARENA_L2_BITS];
    ao_word *l2 = (ao_word *)ao_load(slot1);
    if (!l2) {
        l2 = spangc_meta_alloc(sizeof(ao_word) << ARENA_L2_BITS);
        if (!l2)
            return false;
        ao_store_rel(slot1, (uintptr_t)l2);
    }
    ao_word *slot2 = &l2[ai & ((1u << ARENA_L2_BITS) - 1)];
    if (ao_load(slot2))
        return true;
    heap_arena *ha = spangc_meta_alloc(sizeof(heap_arena));
    if (!ha)
        return false;
    ao_store_rel(slot2, (uintptr_t)ha);
    return true;
}

uintptr_t spangc_arena_reserve(size_t size, uintptr_t hint)
{
    size_t len = round_up(size, ARENA_SIZE);
    if (len < size)
        return 0;
    uintptr_t base = (uintptr_t)spangc_os_reserve(len, ARENA_SIZE, (void *)hint);
    if (!base)
        return 0;
    if ((base + len) >> ADDRESS_BITS) {
        spangc_os_free((void *)base, len);
        return 0;
    }
    for (uintptr_t a = base; a < base + len; a += ARENA_SIZE) {
        if (!arena_register(a)) {
            /* Registered arenas stay in the index (entries are never
             * removed); they simply hold no spans. */
            spangc_os_free((void *)base, len);
            return 0;
        }
    }
    uintptr_t lo = ao_load(&spangc_arenas.lo);
    if (lo == 0 || base < lo)
        ao_store(&spangc_arenas.lo, base);
    if (base + len > ao_load(&spangc_arenas.hi))
        ao_store(&spangc_arenas.hi, base + len);
    return base;
}

void spangc_arena_set_pages(uintptr_t base, size_t npages, struct mspan *s)
{
    uintptr_t p = base, end = base + npages * PAGE_SIZE;
    while (p < end) {
        heap_arena *ha = arena_of(p);
        size_t first = (p >> PAGE_SHIFT) & (PAGES_PER_ARENA - 1);
        size_t n = PAGES_PER_ARENA - first;
        if (n > (end - p) >> PAGE_SHIFT)
            n = (end - p) >> PAGE_SHIFT;
        for (size_t i = 0; i < n; i++)
            ao_store(&ha->spans[first + i], (uintptr_t)s);
        p += n * PAGE_SIZE;
    }
}
