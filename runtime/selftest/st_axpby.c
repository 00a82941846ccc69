/* axpby on the device vs runtime/ref/axpby_ref.c. */
#include "ref/axpby_ref.h"
#include "vkrun_ops.h"
#include "vkrun_selftest.h"

#include <stdio.h>
#include <stdlib.h>

vkr_status vkr_check_axpby(vkr_context *ctx, vkr_selftest *st) {
    static const uint64_t sizes[] = {1, 7, 255, 256, 257, 100003};
    /* the scalars vary with the size (a shader that ignored one would fail): y = a*x + b*y */
    static const float ab[][2] = {{1.5f, -0.25f}, {-0.75f, 1.0f}, {0.0f, 2.0f}, {3.0f, 0.0f}, {1.0f, 1.0f}, {-2.0f, 0.5f}};
    vkr_rng rng;
    vkr_rng_seed(&rng, 1);
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        uint64_t n = sizes[k];
        float *x = malloc(n * 4), *y = malloc(n * 4), *got = NULL;
        vkr_buffer *bx = NULL, *by = NULL;
        vkr_cmd *cmd = NULL;
        vkr_status s = (x && y) ? VKR_OK : vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        if (!s) {
            vkr_rng_fill(&rng, x, n, -2, 2);
            vkr_rng_fill(&rng, y, n, -2, 2);
        }
        if (!s) s = vkr_upload_new(ctx, x, n, &bx);
        if (!s) s = vkr_upload_new(ctx, y, n, &by);
        if (!s) s = vkr_cmd_begin(ctx, &cmd);
        if (!s) s = vkr_axpby(cmd, n, ab[k][0], bx, ab[k][1], by);
        if (!s) s = vkr_cmd_submit(cmd);
        if (!s) s = vkr_download_new(by, n, &got);
        if (!s) {
            double *xd = vkr_to_double(x, n), *yd = vkr_to_double(y, n);
            double ma, mr;
            vkr_ref_axpby(n, ab[k][0], xd, ab[k][1], yd);
            vkr_compare(got, yd, n, &ma, &mr);
            char shape[64];
            snprintf(shape, sizeof shape, "n=%llu a=%g b=%g", (unsigned long long)n, ab[k][0], ab[k][1]);
            vkr_selftest_add(st, "axpby", "forward", shape, ma, mr, 1e-6);
            free(xd);
            free(yd);
        }
        vkr_cmd_free(cmd);
        vkr_buffer_destroy(bx);
        vkr_buffer_destroy(by);
        free(x);
        free(y);
        free(got);
        if (s) return s;
    }
    return VKR_OK;
}
