/* A small library test_roots copies to many files and opens every copy:
 * more libraries, each with data and a thread-local block, than the first
 * page of a listing of the roots has room for. */
void *copy_slot;
static __thread void *volatile copy_tls_slot;

void copy_touch(void *p)
{
    copy_tls_slot = p;
}
