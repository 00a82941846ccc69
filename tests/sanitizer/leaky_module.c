/* A test-only shared library that leaks the way a Vulkan driver stack does (issue 23):
 * vkr_leaky_module_leak() allocates one block that it keeps only in a global of its own (a
 * driver's cache) and one that it forgets.  leaky_host.c loads it with dlopen and closes it
 * with dlclose before exit, as the Vulkan loader does with an ICD.  Never linked into anything
 * else. */
#include <stdlib.h>
#include <string.h>

/* a root for LeakSanitizer only while this module is mapped (exported: the store is not elided) */
__attribute__((visibility("default"))) void *vkr_leaky_module_cache;

__attribute__((noinline)) static void forget(void) {
    volatile unsigned char *p = malloc(96);
    if (p) p[0] = 1; /* the pointer dies with this frame */
}

__attribute__((visibility("default"))) int vkr_leaky_module_leak(void) {
    vkr_leaky_module_cache = malloc(160);
    if (!vkr_leaky_module_cache) return 1;
    memset(vkr_leaky_module_cache, 0, 160);
    forget();
    return 0;
}
