/* gap: global average pooling, [N, C, H, W] to [N, C]. */
#include "layers/layer.h"

#include "ref/gap_ref.h"

static vkr_status infer(vkr_layer *L, vkr_layer_infer *I) {
    (void)L;
    I->h = I->w = 1;
    I->rank = 2;
    return VKR_OK;
}

static vkr_status forward(const vkr_layer_fwd *f) {
    const vkr_layer *L = f->L;
    return vkr_gap_forward(f->cmd, f->n, L->in_c, L->in_h * L->in_w, f->out, f->in[0]);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    const vkr_layer *L = b->L;
    return vkr_gap_backward(b->cmd, b->n, L->in_c, L->in_h * L->in_w, b->din[0], b->dout);
}

static void ref_forward(const vkr_layer_ref *r) {
    vkr_ref_gap_forward(r->n, r->L->in_c, r->L->in_h * r->L->in_w, r->out, r->in[0]);
}

static void ref_backward(const vkr_layer_ref *r) {
    vkr_ref_gap_backward(r->n, r->L->in_c, r->L->in_h * r->L->in_w, r->din[0], r->dout);
}

const vkr_layer_kind vkr_layer_gap = {
    .name = "gap",
    .min_inputs = 1,
    .max_inputs = 1,
    .needs_rank4 = 1,
    .infer = infer,
    .forward = forward,
    .backward = backward,
    .ref_forward = ref_forward,
    .ref_backward = ref_backward,
};
