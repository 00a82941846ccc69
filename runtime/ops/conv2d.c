/* conv2d forward / backward (NCHW, OIHW weights, explicit asymmetric padding), recorded as
 * implicit GEMMs by the shared GEMM layer (gemm_conv.c; shaders gemm_tiled / gemm_texel /
 * gemm_bias_grad). */
#include "gemm_conv.h"

static _Thread_local int g_dw_gemm = 0;
void vkr__conv_force_gemm_depthwise(int on) { g_dw_gemm = on; }

/* groups == c == k: the depthwise kernels (depthwise.c) unless forced through the grouped GEMM */
static int depthwise(const vkr_conv2d_shape *p) {
    return !g_dw_gemm && p->groups > 1 && p->groups == p->c && p->groups == p->k;
}

static vkr_status forward(const char *op, vkr_cmd *cmd, const vkr_conv2d_shape *p, vkr_buffer *out, vkr_buffer *inp,
                          vkr_buffer *weight, vkr_buffer *bias, int relu) {
    vkr_status s = vkr__conv_check_shape(op, p);
    if (s) return s;
    uint64_t n = p->n, oh = vkr_conv2d_out_h(p), ow = vkr_conv2d_out_w(p);
    if ((s = vkr__need(op, "out", out, n * p->k * oh * ow)) || (s = vkr__need(op, "inp", inp, n * p->c * p->h * p->w)) ||
        (s = vkr__need(op, "weight", weight, vkr_conv2d_weight_floats(p))) ||
        (bias && (s = vkr__need(op, "bias", bias, (uint64_t)p->k))))
        return s;
    if (depthwise(p)) return vkr__dw_forward(cmd, relu ? "conv2d+relu" : "conv2d", p, out, inp, weight, bias,
                                             relu ? VKR__EPI_RELU : 0);
    if (relu) return vkr__conv_forward_relu(cmd, "conv2d+relu", p, out, inp, weight, bias);
    return vkr__conv_forward(cmd, "conv2d", p, out, inp, weight, bias);
}

vkr_status vkr_conv2d_forward(vkr_cmd *cmd, const vkr_conv2d_shape *p, vkr_buffer *out, vkr_buffer *inp,
                              vkr_buffer *weight, vkr_buffer *bias) {
    return forward("conv2d_forward", cmd, p, out, inp, weight, bias, 0);
}

vkr_status vkr_conv2d_bn_forward(vkr_cmd *cmd, const vkr_conv2d_shape *p, vkr_buffer *out, vkr_buffer *inp,
                                 vkr_buffer *weight, vkr_buffer *affine, int relu) {
    const char *op = "conv2d_bn_forward";
    vkr_status s = vkr__conv_check_shape(op, p);
    if (s) return s;
    uint64_t n = p->n, oh = vkr_conv2d_out_h(p), ow = vkr_conv2d_out_w(p);
    if ((s = vkr__need(op, "out", out, n * p->k * oh * ow)) || (s = vkr__need(op, "inp", inp, n * p->c * p->h * p->w)) ||
        (s = vkr__need(op, "weight", weight, vkr_conv2d_weight_floats(p))) ||
        (s = vkr__need(op, "affine", affine, 4ull * p->k)))
        return s;
    int epi = VKR__EPI_BN | (relu ? VKR__EPI_RELU : 0);
    if (depthwise(p)) return vkr__dw_forward(cmd, relu ? "conv2d+bn+relu" : "conv2d+bn", p, out, inp, weight, affine, epi);
    return vkr__conv_forward_epi(cmd, relu ? "conv2d+bn+relu" : "conv2d+bn", p, out, inp, weight, affine, epi);
}

vkr_status vkr_conv2d_relu_forward(vkr_cmd *cmd, const vkr_conv2d_shape *p, vkr_buffer *out, vkr_buffer *inp,
                                   vkr_buffer *weight, vkr_buffer *bias) {
    return forward("conv2d_relu_forward", cmd, p, out, inp, weight, bias, 1);
}

vkr_status vkr_conv2d_backward(vkr_cmd *cmd, const vkr_conv2d_shape *p, vkr_buffer *dinp, vkr_buffer *dweight,
                               vkr_buffer *dbias, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *weight) {
    const char *op = "conv2d_backward";
    vkr_status s = vkr__conv_check_shape(op, p);
    if (s) return s;
    uint64_t n = p->n, oh = vkr_conv2d_out_h(p), ow = vkr_conv2d_out_w(p);
    uint64_t ninp = n * p->c * p->h * p->w, nw = vkr_conv2d_weight_floats(p);
    if ((s = vkr__need(op, "dout", dout, n * p->k * oh * ow))) return s;
    if (dinp && ((s = vkr__need(op, "dinp", dinp, ninp)) || (s = vkr__need(op, "weight", weight, nw)))) return s;
    if (dweight && ((s = vkr__need(op, "dweight", dweight, nw)) || (s = vkr__need(op, "inp", inp, ninp)))) return s;
    if (dbias && (s = vkr__need(op, "dbias", dbias, (uint64_t)p->k))) return s;
    if (depthwise(p)) {
        if ((dinp || dweight) && (s = vkr__dw_backward(cmd, "conv2d", p, dinp, dweight, dout, inp, weight))) return s;
        return dbias ? vkr__conv_backward(cmd, "conv2d", p, NULL, NULL, dbias, dout, inp, weight) : VKR_OK;
    }
    return vkr__conv_backward(cmd, "conv2d", p, dinp, dweight, dbias, dout, inp, weight);
}
