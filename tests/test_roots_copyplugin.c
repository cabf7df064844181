/* A small library test_roots copies to many files and opens every copy:
 * more libraries, each with data and a thread-local block, than the first
 * page of a listing of the roots has room for. */
#include <stdint.h>

void *copy_slot;
static __thread void *volatile copy_tls_slot;

void copy_touch(void *p)
{
    copy_tls_slot = p;
}

/* Store the object whose address is hidden ^ mask: the caller never holds
 * the address, so its frame cannot keep the object alive. */
void copy_touch_hidden(uintptr_t hidden, uintptr_t mask)
{
    copy_tls_slot = (void *)(hidden ^ mask);
}
