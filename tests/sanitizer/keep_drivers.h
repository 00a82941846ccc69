/* tests/sanitizer/keep_drivers.c: the Vulkan driver and layer libraries kept loaded until exit
 * in the sanitizer build (what it dlopened with RTLD_NODELETE before main) */
#ifndef VKR_KEEP_DRIVERS_H
#define VKR_KEEP_DRIVERS_H

int vkr_keep_drivers_count(void);
const char *vkr_keep_drivers_lib(int i); /* the path as the manifest resolved it; NULL past the end */

#endif
