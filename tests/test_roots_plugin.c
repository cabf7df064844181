/* A library test_roots loads with dlopen after gc_init and closes during a
 * collection: its data segment may be unmapped under the collector. The
 * array makes that segment span many pages. */
void *plugin_slot;
char plugin_bss[1 << 20];
