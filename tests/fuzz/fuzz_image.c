/* Fuzzes the image path of `vkrun predict` and of the data loader: decode (stb_image behind the
 * library's size caps), resize and preprocess.  A decoded image is within the caps and its
 * buffer is whole; every byte of the CHW output is written. */
#include "fuzz_util.h"
#include "vkrun_data.h"

#include <math.h>

static volatile unsigned g_sink;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    char path[64];
    int fd = fuzz_file(data, size, path, sizeof path);
    if (fd < 0) return 0;
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    vkr_status s = vkr_image_read_rgb(path, &rgb, &w, &h);
    FUZZ_REQUIRE_MESSAGE(s);
    if (!s) {
        if (w <= 0 || h <= 0 || w > VKR_IMAGE_MAX_SIDE || h > VKR_IMAGE_MAX_SIDE) abort();
        g_sink += rgb[0] + rgb[(size_t)w * h * 3 - 1]; /* the buffer is whole (ASan checks the ends) */
        free(rgb);
        if ((double)w * h > 4e6) { /* decoding twice more than 4 Mpixel costs seconds: decode only */
            close(fd);
            return 0;
        }
        static float out[3 * 17 * 23];
        int ch = size & 1 ? 1 : 3;
        s = vkr_image_load_ex(path, 17, 23, ch, size & 2 ? VKR_INTERP_NEAREST : VKR_INTERP_BILINEAR,
                              VKR_PREPROC_TORCH, out);
        FUZZ_REQUIRE_MESSAGE(s);
        for (int i = 0; !s && i < ch * 17 * 23; i++)
            if (!isfinite(out[i])) abort();
    }
    close(fd);
    return 0;
}
