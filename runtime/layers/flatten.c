/* flatten: [N, C, H, W] -> [N, C*H*W] in NCHW order (torch.flatten(x, 1)); flat inputs pass
 * through.  Its value is its input's (no buffer, no dispatch); gradients pass through. */
#include "layers/layer.h"

static vkr_status infer(vkr_layer *L, vkr_layer_infer *I) {
    (void)L;
    int64_t f = I->c * I->h * I->w;
    if (f > 0x7fffffff) return vkr_fail(VKR_ERR_FORMAT, "%s: %lld features do not fit an int", I->where, (long long)f);
    I->c = f;
    I->h = I->w = 1;
    I->rank = 2;
    return VKR_OK;
}

const vkr_layer_kind vkr_layer_flatten = {
    .name = "flatten",
    .min_inputs = 1,
    .max_inputs = 1,
    .alias_input = 1,
    .pass_grad = 1,
    .infer = infer,
    .backward = vkr__pass_grad,
    .ref_forward = vkr__ref_copy_forward,
    .ref_backward = vkr__ref_pass_backward,
};
