/* dense forward / backward: out[B,OUT] = inp[B,IN] . weight[OUT,IN]^T + bias[OUT], recorded as
 * the 1x1 convolution over [B, IN, 1, 1] on the same GEMM path as conv2d (gemm_conv.c). */
#include "gemm_conv.h"

static vkr_status dense_shape(const char *op, int batch, int in, int outf, vkr_conv2d_shape *p) {
    if (batch <= 0 || in <= 0 || outf <= 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: batch, in, out must be positive (got %d, %d, %d)", op, batch, in, outf);
    vkr_conv2d_shape q = {.n = batch, .c = in, .h = 1, .w = 1, .k = outf, .r = 1, .s = 1, .stride_h = 1, .stride_w = 1};
    *p = q;
    return vkr__conv_check_shape(op, p);
}

static vkr_status forward(const char *op, vkr_cmd *cmd, int batch, int in, int outf, vkr_buffer *out, vkr_buffer *inp,
                          vkr_buffer *weight, vkr_buffer *bias, int relu) {
    vkr_conv2d_shape p;
    vkr_status s = dense_shape(op, batch, in, outf, &p);
    if (s) return s;
    if ((s = vkr__need(op, "out", out, (uint64_t)batch * outf)) || (s = vkr__need(op, "inp", inp, (uint64_t)batch * in)) ||
        (s = vkr__need(op, "weight", weight, (uint64_t)outf * in)) || (bias && (s = vkr__need(op, "bias", bias, (uint64_t)outf))))
        return s;
    if (relu) return vkr__conv_forward_relu(cmd, "dense+relu", &p, out, inp, weight, bias);
    return vkr__conv_forward(cmd, "dense", &p, out, inp, weight, bias);
}

vkr_status vkr_dense_forward(vkr_cmd *cmd, int batch, int in, int outf, vkr_buffer *out, vkr_buffer *inp,
                             vkr_buffer *weight, vkr_buffer *bias) {
    return forward("dense_forward", cmd, batch, in, outf, out, inp, weight, bias, 0);
}

vkr_status vkr_dense_relu_forward(vkr_cmd *cmd, int batch, int in, int outf, vkr_buffer *out, vkr_buffer *inp,
                                  vkr_buffer *weight, vkr_buffer *bias) {
    return forward("dense_relu_forward", cmd, batch, in, outf, out, inp, weight, bias, 1);
}

vkr_status vkr_dense_backward(vkr_cmd *cmd, int batch, int in, int outf, vkr_buffer *dinp, vkr_buffer *dweight,
                              vkr_buffer *dbias, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *weight) {
    const char *op = "dense_backward";
    vkr_conv2d_shape p;
    vkr_status s = dense_shape(op, batch, in, outf, &p);
    if (s) return s;
    uint64_t ninp = (uint64_t)batch * in, nw = (uint64_t)outf * in;
    if ((s = vkr__need(op, "dout", dout, (uint64_t)batch * outf))) return s;
    if (dinp && ((s = vkr__need(op, "dinp", dinp, ninp)) || (s = vkr__need(op, "weight", weight, nw)))) return s;
    if (dweight && ((s = vkr__need(op, "dweight", dweight, nw)) || (s = vkr__need(op, "inp", inp, ninp)))) return s;
    if (dbias && (s = vkr__need(op, "dbias", dbias, (uint64_t)outf))) return s;
    return vkr__conv_backward(cmd, "dense", &p, dinp, dweight, dbias, dout, inp, weight);
}
