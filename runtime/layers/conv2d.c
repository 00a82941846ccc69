/* conv2d: 2-D convolution (groups, dilation), OIHW weight [K, C/groups, R, S], optional bias, fused
 * linear / relu activation; the
 * GEMM epilogue can also apply a folded inference BatchNorm (graph_fold.c) or a following ReLU. */
#include "layers/layer.h"

#include <cJSON.h>

#include "ops/gemm_conv.h"
#include "ref/conv2d_ref.h"
#include "ref/relu_ref.h"

static vkr_status parse(const cJSON *obj, vkr_layer *L, const char *where) {
    static const int one[2] = {1, 1};
    vkr_status s;
    if ((s = vkr__json_int(obj, "filters", 0, 1, 1, 1 << 20, &L->filters, where)) ||
        (s = vkr__json_pair(obj, "kernel", NULL, 1, L->kernel, where)) ||
        (s = vkr__json_pair(obj, "strides", one, 1, L->strides, where)) || (s = vkr__json_padding(obj, L, where)) ||
        (s = vkr__json_bool(obj, "use_bias", 1, &L->use_bias, where)) || (s = vkr__json_activation(obj, L, 0, where)) ||
        (s = vkr__json_int(obj, "groups", 1, 0, 1, 1 << 20, &L->groups, where)) ||
        (s = vkr__json_pair(obj, "dilation", one, 1, L->dilation, where)))
        return s;
    return VKR_OK;
}

static int to_json(const vkr_layer *L, cJSON *o) {
    int bad = vkr__json_add_num(o, "filters", L->filters) | vkr__json_add_pair(o, "kernel", L->kernel) |
              vkr__json_add_pair(o, "strides", L->strides) | vkr__json_add_padding(o, L) |
              vkr__json_add_bool(o, "use_bias", L->use_bias) | vkr__json_add_activation(o, L);
    if (L->groups > 1) bad |= vkr__json_add_num(o, "groups", L->groups);
    if (L->dilation[0] > 1 || L->dilation[1] > 1) bad |= vkr__json_add_pair(o, "dilation", L->dilation);
    return bad;
}

static vkr_status infer(vkr_layer *L, vkr_layer_infer *I) {
    int64_t oh = 0, ow = 0;
    int G = L->groups > 1 ? L->groups : 1;
    if (I->c % G || L->filters % G)
        return vkr_fail(VKR_ERR_FORMAT, "%s: groups %d must divide the input channels %lld and the filters %d", I->where,
                        G, (long long)I->c, L->filters);
    vkr_status s = vkr__infer_window(L, I, &oh, &ow);
    if (s) return s;
    int64_t w[4] = {L->filters, I->c / G, L->kernel[0], L->kernel[1]};
    I->pndim[VKR_PARAM_WEIGHT] = 4;
    I->pndim[VKR_PARAM_BIAS] = 1;
    for (int d = 0; d < 4; d++) I->pshape[VKR_PARAM_WEIGHT][d] = w[d];
    I->pshape[VKR_PARAM_BIAS][0] = L->filters;
    I->c = L->filters, I->h = oh, I->w = ow;
    return VKR_OK;
}

static double flops(const vkr_layer *L) {
    int G = L->groups > 1 ? L->groups : 1;
    return 2.0 * L->out_c * L->out_h * L->out_w * (double)(L->in_c / G) * L->kernel[0] * L->kernel[1];
}

static vkr_status forward(const vkr_layer_fwd *f) {
    const vkr_layer *L = f->L;
    vkr_conv2d_shape p = vkr__conv_shape(L, f->n);
    vkr_buffer *b = L->use_bias ? f->param[VKR_PARAM_BIAS] : NULL;
    if (f->folded) return vkr_conv2d_bn_forward(f->cmd, &p, f->out, f->in[0], f->param[0], f->folded, f->relu);
    if (f->relu) return vkr_conv2d_relu_forward(f->cmd, &p, f->out, f->in[0], f->param[0], b);
    return vkr_conv2d_forward(f->cmd, &p, f->out, f->in[0], f->param[0], b);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    const vkr_layer *L = b->L;
    vkr_conv2d_shape p = vkr__conv_shape(L, b->n);
    if (L->activation == VKR_ACT_RELU) {
        vkr_status s = vkr_relu_backward(b->cmd, (uint64_t)b->n * vkr__layer_out_floats(L), b->dout, b->dout, b->out);
        if (s) return s;
    }
    return vkr_conv2d_backward(b->cmd, &p, b->din[0], b->dparam[0], L->use_bias ? b->dparam[1] : NULL, b->dout, b->in,
                               b->param[0]);
}

static uint64_t bwd_scratch(const vkr_context *ctx, const vkr_layer *L, int n) {
    vkr_conv2d_shape p = vkr__conv_shape(L, n);
    return vkr__conv_backward_scratch(ctx, &p, 1, L->use_bias);
}

static void ref_forward(const vkr_layer_ref *r) {
    vkr_conv2d_shape p = vkr__conv_shape(r->L, r->n);
    vkr_ref_conv2d_forward(r->out, r->in[0], r->param[0], r->param[1], &p);
    if (r->L->activation == VKR_ACT_RELU)
        vkr_ref_relu_forward((uint64_t)r->n * vkr__layer_out_floats(r->L), r->out, r->out);
}

static void ref_backward(const vkr_layer_ref *r) {
    vkr_conv2d_shape p = vkr__conv_shape(r->L, r->n);
    if (r->L->activation == VKR_ACT_RELU)
        vkr_ref_relu_backward((uint64_t)r->n * vkr__layer_out_floats(r->L), r->dout, r->dout, r->out);
    vkr_ref_conv2d_backward(r->din[0], r->dparam[0], r->dparam[1], r->dout, r->in[0], r->param[0], &p);
}

const vkr_layer_kind vkr_layer_conv2d = {
    .name = "conv2d",
    .min_inputs = 1,
    .max_inputs = 1,
    .nparam = 2,
    .param_names = {"weight", "bias"},
    .param_init = {VKR_INIT_GLOROT, VKR_INIT_ZERO},
    .trainable_slots = 1u << VKR_PARAM_WEIGHT | 1u << VKR_PARAM_BIAS,
    .has_bias_slot = 1,
    .needs_rank4 = 1,
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
