/* multiply: a * b for two inputs, b of a's shape or [N, C, 1, 1] / [N, C] broadcast over H, W
 * (squeeze-and-excitation).  Its backward reads both inputs' values (bwd_reads_input1). */
#include "layers/layer.h"

#include "ref/multiply_ref.h"

static vkr_status infer(vkr_layer *L, vkr_layer_infer *I) {
    const vkr_layer *Y = &I->layers[L->input_idx[1]];
    int same = Y->out_c == I->c && Y->out_h == I->h && Y->out_w == I->w && (Y->out_rank == I->rank || I->h * I->w == 1);
    int bcast = Y->out_c == I->c && Y->out_h == 1 && Y->out_w == 1 && I->rank == 4;
    if (!same && !bcast)
        return vkr_fail(VKR_ERR_FORMAT,
                        "%s: input \"%s\" is [N, %d, %d, %d]: neither the shape of \"%s\" [N, %d, %d, %d] nor [N, %d, 1, 1] "
                        "/ [N, %d] to broadcast",
                        I->where, Y->name, Y->out_c, Y->out_h, Y->out_w, I->x->name, (int)I->c, (int)I->h, (int)I->w,
                        (int)I->c, (int)I->c);
    return VKR_OK;
}

/* b's floats per plane: HW, or 1 when broadcast */
static int bhw(const vkr_layer *L, const vkr_layer *layers) {
    const vkr_layer *Y = &layers[L->input_idx[1]];
    return Y->out_h * Y->out_w == 1 ? 1 : L->out_h * L->out_w;
}

static vkr_status forward(const vkr_layer_fwd *f) {
    const vkr_layer *L = f->L;
    return vkr_multiply_forward(f->cmd, f->n, L->out_c, L->out_h * L->out_w, bhw(L, f->layers), f->out, f->in[0],
                                f->in[1]);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    const vkr_layer *L = b->L;
    return vkr_multiply_backward(b->cmd, b->n, L->out_c, L->out_h * L->out_w, bhw(L, b->layers), b->din[0], b->din[1],
                                 b->dout, b->in, b->in1);
}

static void ref_forward(const vkr_layer_ref *r) {
    const vkr_layer *L = r->L;
    vkr_ref_multiply_forward(r->n, L->out_c, L->out_h * L->out_w, bhw(L, r->layers), r->out, r->in[0], r->in[1]);
}

static void ref_backward(const vkr_layer_ref *r) {
    const vkr_layer *L = r->L;
    vkr_ref_multiply_backward(r->n, L->out_c, L->out_h * L->out_w, bhw(L, r->layers), r->din[0], r->din[1], r->dout,
                              r->in[0], r->in[1]);
}

const vkr_layer_kind vkr_layer_multiply = {
    .name = "multiply",
    .min_inputs = 2,
    .max_inputs = 2,
    .bwd_reads_input = VKR_READS_ALWAYS,
    .bwd_reads_input1 = 1,
    .infer = infer,
    .forward = forward,
    .backward = backward,
    .ref_forward = ref_forward,
    .ref_backward = ref_backward,
};
