/* A shared library with a data word, for test_roots: spangc must scan the
 * data segments of every loaded library. */
void *roots_lib_slot;
