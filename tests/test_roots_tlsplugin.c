/* A library test_roots loads with dlopen after gc_init, whose thread-local
 * block is large enough that glibc's malloc maps it on its own (above the
 * largest mmap threshold, 32 MiB), and unmaps it when the library is
 * closed. Only its first page is ever touched. Built a second time with a
 * small block (TLSPLUGIN_SMALL), which cannot take the first one's place. */
#ifdef TLSPLUGIN_SMALL
#define TLS_BIG_BYTES 64
#else
#define TLS_BIG_BYTES (40 << 20)
#endif
__thread volatile char tls_big[TLS_BIG_BYTES]; /* volatile: kept, and touched */
static __thread void *volatile tls_slot;

void tlsplugin_touch(void *p)
{
    tls_big[0] = 1;
    tls_slot = p;
}
