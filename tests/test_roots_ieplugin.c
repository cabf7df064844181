/* A library test_roots opens with dlopen after gc_init whose __thread
 * variable is initial-exec: glibc puts its block in the static TLS area's
 * surplus of every thread, and its code reaches the block from the thread
 * pointer, so no thread's vector slot is ever filled. */
#include <stdint.h>

static __thread void *volatile ie_slot __attribute__((tls_model("initial-exec")));

/* Stores h ^ mask: the address never passes through the caller. */
void ie_store_hidden(uintptr_t h, uintptr_t mask)
{
    ie_slot = (void *)(h ^ mask);
}
