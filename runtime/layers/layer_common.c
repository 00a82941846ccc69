/* Helpers shared by several layer kinds: windows (conv2d, pools), matching inputs (add,
 * concat), op shapes, pass-through gradients. */
#include "layers/layer.h"

#include <cJSON.h>
#include <string.h>

static void same_pad(int64_t in, int k, int s, int *before, int *after) {
    int64_t out = (in + s - 1) / s;
    int64_t total = (out - 1) * s + k - in;
    if (total < 0) total = 0;
    *before = (int)(total / 2);
    *after = (int)(total - *before);
}

vkr_status vkr__infer_window(vkr_layer *L, const vkr_layer_infer *I, int64_t *oh, int64_t *ow) {
    int64_t h = I->h, w = I->w;
    /* the effective window: a dilated kernel spans (k - 1) * d + 1 (conv2d; pools have no dilation) */
    int dh = L->dilation[0] > 1 ? L->dilation[0] : 1, dw = L->dilation[1] > 1 ? L->dilation[1] : 1;
    int kh = (L->kernel[0] - 1) * dh + 1, kw = (L->kernel[1] - 1) * dw + 1, sh = L->strides[0], sw = L->strides[1];
    if (L->pad_mode == VKR_PAD_SAME) {
        same_pad(h, kh, sh, &L->rpad[0], &L->rpad[1]);
        same_pad(w, kw, sw, &L->rpad[2], &L->rpad[3]);
    } else if (L->pad_mode == VKR_PAD_EXPLICIT) {
        memcpy(L->rpad, L->pad, sizeof L->rpad);
    } else {
        memset(L->rpad, 0, sizeof L->rpad);
    }
    int64_t ph = h + L->rpad[0] + L->rpad[1], pw = w + L->rpad[2] + L->rpad[3];
    if (ph < kh || pw < kw)
        return vkr_fail(VKR_ERR_FORMAT, "%s: window %dx%d larger than its padded input %lldx%lld (input %lldx%lld)",
                        I->where, kh, kw, (long long)ph, (long long)pw, (long long)h, (long long)w);
    *oh = (ph - kh) / sh + 1;
    *ow = (pw - kw) / sw + 1;
    if (L->ceil_mode) { /* torch: round up, but the last window starts inside the input or its top / left padding */
        *oh = (ph - kh + sh - 1) / sh + 1;
        *ow = (pw - kw + sw - 1) / sw + 1;
        if ((*oh - 1) * sh >= h + L->rpad[0]) --*oh;
        if ((*ow - 1) * sw >= w + L->rpad[2]) --*ow;
    }
    return VKR_OK;
}

vkr_status vkr__infer_inputs_match(const vkr_layer *L, const vkr_layer_infer *I, int same_c, int64_t *csum) {
    *csum = 0;
    for (int k = 0; k < L->ninputs; k++) {
        const vkr_layer *Y = &I->layers[L->input_idx[k]];
        int same = Y->out_h == I->h && Y->out_w == I->w && Y->out_rank == I->rank;
        if (same_c) same = same && Y->out_c == I->c;
        if (!same)
            return vkr_fail(VKR_ERR_FORMAT, "%s: input \"%s\" is [N, %d, %d, %d] but \"%s\" is [N, %d, %d, %d]", I->where,
                            Y->name, Y->out_c, Y->out_h, Y->out_w, I->x->name, (int)I->c, (int)I->h, (int)I->w);
        *csum += Y->out_c;
    }
    return VKR_OK;
}

vkr_conv2d_shape vkr__conv_shape(const vkr_layer *L, int n) {
    vkr_conv2d_shape p = {n, L->in_c, L->in_h, L->in_w, L->out_c, L->kernel[0], L->kernel[1], L->strides[0],
                          L->strides[1], L->rpad[0], L->rpad[1], L->rpad[2], L->rpad[3],
                          L->dilation[0] > 1 ? L->dilation[0] : 1, L->dilation[1] > 1 ? L->dilation[1] : 1,
                          L->groups > 1 ? L->groups : 1};
    return p;
}

vkr_pool_shape vkr__pool_shape(const vkr_layer *L, int n) {
    vkr_pool_shape p = {n, L->in_c, L->in_h, L->in_w, L->kernel[0], L->kernel[1], L->strides[0], L->strides[1],
                        L->rpad[0], L->rpad[1], L->rpad[2], L->rpad[3], L->count_include_pad, L->ceil_mode};
    return p;
}

vkr_status vkr__pool_parse(const cJSON *obj, vkr_layer *L, const char *where) {
    vkr_status s;
    if ((s = vkr__json_pair(obj, "pool", NULL, 1, L->kernel, where)) ||
        (s = vkr__json_pair(obj, "strides", L->kernel, 1, L->strides, where)) ||
        (s = vkr__json_padding(obj, L, where)) || (s = vkr__json_bool(obj, "ceil_mode", 0, &L->ceil_mode, where)))
        return s;
    return VKR_OK;
}

int vkr__pool_to_json(const vkr_layer *L, cJSON *o) {
    int bad = vkr__json_add_pair(o, "pool", L->kernel) | vkr__json_add_pair(o, "strides", L->strides) |
              vkr__json_add_padding(o, L);
    if (L->ceil_mode) bad |= vkr__json_add_bool(o, "ceil_mode", 1);
    return bad;
}

vkr_status vkr__pool_infer(vkr_layer *L, vkr_layer_infer *I) {
    int64_t oh = 0, ow = 0;
    vkr_status s = vkr__infer_window(L, I, &oh, &ow);
    if (s) return s;
    if (L->rpad[0] >= L->kernel[0] || L->rpad[1] >= L->kernel[0] || L->rpad[2] >= L->kernel[1] ||
        L->rpad[3] >= L->kernel[1])
        return vkr_fail(VKR_ERR_FORMAT, "%s: padding (%d, %d, %d, %d) must be smaller than the pool %dx%d", I->where,
                        L->rpad[0], L->rpad[1], L->rpad[2], L->rpad[3], L->kernel[0], L->kernel[1]);
    I->h = oh, I->w = ow;
    return VKR_OK;
}

vkr_status vkr__pass_grad(const vkr_layer_bwd *b) {
    uint64_t nout = (uint64_t)b->n * vkr__layer_out_floats(b->L);
    for (int k = 0; k < b->L->ninputs; k++) {
        if (!b->din[k]) continue;
        vkr_status s = b->din_add[k] ? vkr_axpby(b->cmd, nout, 1.0f, b->dout, 1.0f, b->din[k])
                                     : vkr_cmd_copy(b->cmd, b->din[k], 0, b->dout, 0, nout * 4);
        if (s) return s;
    }
    return VKR_OK;
}

void vkr__ref_copy_forward(const vkr_layer_ref *r) {
    memcpy(r->out, r->in[0], (size_t)r->n * vkr__layer_out_floats(r->L) * sizeof(double));
}

void vkr__ref_pass_backward(const vkr_layer_ref *r) {
    uint64_t no = (uint64_t)r->n * vkr__layer_out_floats(r->L);
    for (int k = 0; k < r->L->ninputs; k++)
        for (uint64_t i = 0; i < no; i++) r->din[k][i] += r->dout[i];
}
