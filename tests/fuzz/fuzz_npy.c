/* Fuzzes the .npy reader (vkr_npy_read): a file that reads must hold exactly count floats. */
#include "fuzz_util.h"
#include "vkrun_npy.h"

static volatile float g_sink; /* reads every element: ASan sees a short buffer */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    vkr_npy a;
    vkr_status s = vkr_npy_read(path, &a);
    FUZZ_REQUIRE_MESSAGE(s);
    close(fd);
    if (s) return 0;
    uint64_t n = 1;
    for (int d = 0; d < a.ndim; d++) n *= (uint64_t)a.shape[d];
    if (n != a.count || a.ndim < 0 || a.ndim > VKR_NPY_MAX_DIMS) abort();
    for (uint64_t i = 0; i < a.count; i++) g_sink += a.data[i];
    vkr_npy_free(&a);
    return 0;
}
