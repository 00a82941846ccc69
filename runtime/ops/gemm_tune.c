/* The public tuning hooks of include/vkrun_ops.h over the GEMM layer's internal tables. */
#include "gemm_conv.h"

int vkr_gemm_tile_count(vkr_gemm_variant v) {
    return v == VKR_GEMM_TILED ? vkr__tiled_config_count() : v == VKR_GEMM_TEXEL ? vkr__texel_config_count() : 0;
}

vkr_status vkr_gemm_tile_at(vkr_gemm_variant v, int i, vkr_gemm_tile *out) {
    if (i < 0 || i >= vkr_gemm_tile_count(v))
        return vkr_fail(VKR_ERR_INVALID, "gemm tile %d: the %s table has %d entries", i, vkr_gemm_variant_name(v),
                        vkr_gemm_tile_count(v));
    if (v == VKR_GEMM_TILED) {
        const vkr__tiled_config *c = vkr__tiled_config_at(i);
        *out = (vkr_gemm_tile){c->shader, c->bm, c->bn, c->tm, c->tn, 16, 16};
    } else {
        const vkr__texel_config *c = vkr__texel_config_at(i);
        *out = (vkr_gemm_tile){c->shader, 0, 0, c->tm, c->tn, c->lx, c->ly};
    }
    return VKR_OK;
}

void vkr_gemm_force_tile(vkr_gemm_variant v, int i) {
    if (v == VKR_GEMM_TILED) vkr__gemm_force_tiled_config(i);
    else if (v == VKR_GEMM_TEXEL) vkr__gemm_force_texel_config(i);
}

void vkr_gemm_force_split(int splits) { vkr__gemm_force_split(splits); }
int vkr_gemm_tuned_tile(const vkr_context *ctx) { return vkr__gemm_tuned_tile(ctx); }
vkr_status vkr_gemm_tune_save(vkr_context *ctx, int tile) { return vkr__gemm_tune_save(ctx, tile); }
int vkr_gemm_tune_path(const vkr_context *ctx, char *buf, size_t n) { return vkr__gemm_tune_path(ctx, buf, n); }
void vkr_conv_force_gemm_depthwise(int on) { vkr__conv_force_gemm_depthwise(on); }
