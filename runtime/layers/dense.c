/* dense: [N, F] x weight[units, F]^T + bias, fused linear / relu / softmax activation (softmax:
 * in inference through a logits scratch; in training the softmax_ce loss takes the logits). */
#include "layers/layer.h"

#include <cJSON.h>

#include "ops/gemm_conv.h"
#include "ref/dense_ref.h"
#include "ref/relu_ref.h"

static vkr_status parse(const cJSON *obj, vkr_layer *L, const char *where) {
    vkr_status s;
    if ((s = vkr__json_int(obj, "units", 0, 1, 1, 1 << 24, &L->filters, where)) ||
        (s = vkr__json_bool(obj, "use_bias", 1, &L->use_bias, where)) || (s = vkr__json_activation(obj, L, 1, where)))
        return s;
    return VKR_OK;
}

static int to_json(const vkr_layer *L, cJSON *o) {
    return vkr__json_add_num(o, "units", L->filters) | vkr__json_add_bool(o, "use_bias", L->use_bias) |
           vkr__json_add_activation(o, L);
}

static vkr_status infer(vkr_layer *L, vkr_layer_infer *I) {
    if (I->h != 1 || I->w != 1)
        return vkr_fail(VKR_ERR_FORMAT, "%s needs an [N, F] input (e.g. after gap); \"%s\" outputs [N, %d, %d, %d]",
                        I->where, I->x->name, (int)I->c, (int)I->h, (int)I->w);
    I->pndim[VKR_PARAM_WEIGHT] = 2;
    I->pshape[VKR_PARAM_WEIGHT][0] = L->filters;
    I->pshape[VKR_PARAM_WEIGHT][1] = I->c;
    I->pndim[VKR_PARAM_BIAS] = 1;
    I->pshape[VKR_PARAM_BIAS][0] = L->filters;
    I->c = L->filters;
    I->rank = 2;
    return VKR_OK;
}

static double flops(const vkr_layer *L) { return 2.0 * L->out_c * (double)L->in_c; }

static vkr_status forward(const vkr_layer_fwd *f) {
    const vkr_layer *L = f->L;
    vkr_buffer *dst = f->aux ? f->aux : f->out; /* logits scratch, then the softmax */
    vkr_buffer *b = L->use_bias ? f->param[VKR_PARAM_BIAS] : NULL;
    vkr_status s = f->relu ? vkr_dense_relu_forward(f->cmd, f->n, L->in_c, L->out_c, dst, f->in[0], f->param[0], b)
                           : vkr_dense_forward(f->cmd, f->n, L->in_c, L->out_c, dst, f->in[0], f->param[0], b);
    if (!s && f->aux) s = vkr_softmax_forward(f->cmd, f->n, L->out_c, f->out, dst);
    return s;
}

static vkr_status backward(const vkr_layer_bwd *b) {
    const vkr_layer *L = b->L;
    if (L->activation == VKR_ACT_RELU) {
        vkr_status s = vkr_relu_backward(b->cmd, (uint64_t)b->n * vkr__layer_out_floats(L), b->dout, b->dout, b->out);
        if (s) return s;
    }
    return vkr_dense_backward(b->cmd, b->n, L->in_c, L->out_c, b->din[0], b->dparam[0],
                              L->use_bias ? b->dparam[1] : NULL, b->dout, b->in, b->param[0]);
}

static uint64_t bwd_scratch(const vkr_context *ctx, const vkr_layer *L, int n) {
    vkr_conv2d_shape p = {n, L->in_c, 1, 1, L->out_c, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    return vkr__conv_backward_scratch(ctx, &p, 1, L->use_bias);
}

static void ref_forward(const vkr_layer_ref *r) {
    const vkr_layer *L = r->L;
    vkr_ref_dense_forward(r->n, L->in_c, L->out_c, r->out, r->in[0], r->param[0], r->param[1]);
    if (L->activation == VKR_ACT_RELU) vkr_ref_relu_forward((uint64_t)r->n * L->out_c, r->out, r->out);
    /* softmax: the loss applies it */
}

static void ref_backward(const vkr_layer_ref *r) {
    const vkr_layer *L = r->L;
    if (L->activation == VKR_ACT_RELU) vkr_ref_relu_backward((uint64_t)r->n * L->out_c, r->dout, r->dout, r->out);
    vkr_ref_dense_backward(r->n, L->in_c, L->out_c, r->din[0], r->dparam[0], r->dparam[1], r->dout, r->in[0],
                           r->param[0]);
}

const vkr_layer_kind vkr_layer_dense = {
    .name = "dense",
    .min_inputs = 1,
    .max_inputs = 1,
    .nparam = 2,
    .param_names = {"weight", "bias"},
    .param_init = {VKR_INIT_GLOROT, VKR_INIT_ZERO},
    .trainable_slots = 1u << VKR_PARAM_WEIGHT | 1u << VKR_PARAM_BIAS,
    .has_bias_slot = 1,
    .relu_epilogue = 1,
    .bwd_reads_input = VKR_READS_WHEN_TRAINED,
    .parse = parse,
    .to_json = to_json,
    .infer = infer,
    .flops = flops,
    .forward = forward,
    .backward = backward,
    .bwd_scratch = bwd_scratch,
    .ref_forward = ref_forward,
    .ref_backward = ref_backward,
};
