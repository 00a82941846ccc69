/* A deliberate leak for the ASan build: proves that tests/sanitizer/lsan.supp
 * hides only the third-party driver stack, never vkrun's own leaks.  It creates a
 * Vulkan context (so the driver, ICU and LLVM are loaded as in every test) and a
 * buffer, and never destroys either; ctest lsan_catches_vkrun_leaks requires
 * LeakSanitizer to report both allocations and fail the process. */
#include "vkrun.h"

#include <stdio.h>

/* noinline: the pointers die with this frame, so only a leak remains */
__attribute__((noinline)) static int leak(void) {
    vkr_context *ctx = NULL;
    vkr_context_opts o = {0};
    if (vkr_context_create(&o, &ctx)) {
        fprintf(stderr, "leak_canary: no Vulkan device: %s\n", vkr_last_error());
        return 2;
    }
    vkr_buffer *b = NULL;
    if (vkr_buffer_create(ctx, 4096, &b)) {
        fprintf(stderr, "leak_canary: %s\n", vkr_last_error());
        return 2;
    }
    return 0; /* both leaked on purpose */
}

int main(void) {
    if (leak()) return 2;
    printf("leak_canary: a vkr_context and a vkr_buffer leaked on purpose\n");
    return 0;
}
