/* concat: channel concatenation of inputs with the same H, W (two inputs: one shader; more:
 * per-image block copies). */
#include "layers/layer.h"

#include <string.h>

static vkr_status infer(vkr_layer *L, vkr_layer_infer *I) {
    int64_t csum;
    vkr_status s = vkr__infer_inputs_match(L, I, 0, &csum);
    if (!s) I->c = csum;
    return s;
}

/* n-input concat as per-image block copies: parts -> out (forward) or out -> parts (backward). */
static vkr_status copies(vkr_cmd *cmd, const vkr_layer *L, const vkr_layer *layers, int n, vkr_buffer *out,
                         vkr_buffer *const *parts, int backward) {
    uint64_t hw = (uint64_t)L->out_h * L->out_w, ctot = (uint64_t)L->out_c;
    uint64_t off = 0;
    for (int k = 0; k < L->ninputs; k++) {
        uint64_t ck = (uint64_t)layers[L->input_idx[k]].out_c;
        if (parts[k])
            for (int b = 0; b < n; b++) {
                uint64_t big = (b * ctot + off) * hw * 4, small = b * ck * hw * 4;
                vkr_status s = backward ? vkr_cmd_copy(cmd, parts[k], small, out, big, ck * hw * 4)
                                        : vkr_cmd_copy(cmd, out, big, parts[k], small, ck * hw * 4);
                if (s) return s;
            }
        off += ck;
    }
    return VKR_OK;
}

static vkr_status forward(const vkr_layer_fwd *f) {
    const vkr_layer *L = f->L;
    if (L->ninputs == 2)
        return vkr_concat_forward(f->cmd, f->n, f->layers[L->input_idx[0]].out_c, f->layers[L->input_idx[1]].out_c,
                                  L->out_h * L->out_w, f->out, f->in[0], f->in[1]);
    return copies(f->cmd, L, f->layers, f->n, f->out, f->in, 0);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    const vkr_layer *L = b->L;
    if (L->ninputs == 2)
        return vkr_concat_backward(b->cmd, b->n, b->layers[L->input_idx[0]].out_c, b->layers[L->input_idx[1]].out_c,
                                   L->out_h * L->out_w, b->din[0], b->din[1], b->dout);
    return copies(b->cmd, L, b->layers, b->n, b->dout, b->din, 1);
}

static void ref_forward(const vkr_layer_ref *r) {
    const vkr_layer *L = r->L;
    uint64_t hw = (uint64_t)L->out_h * L->out_w, off = 0;
    for (int k = 0; k < L->ninputs; k++) {
        uint64_t ck = (uint64_t)r->layers[L->input_idx[k]].out_c;
        for (int b = 0; b < r->n; b++)
            memcpy(r->out + (b * (uint64_t)L->out_c + off) * hw, r->in[k] + b * ck * hw, ck * hw * sizeof(double));
        off += ck;
    }
}

static void ref_backward(const vkr_layer_ref *r) {
    const vkr_layer *L = r->L;
    uint64_t hw = (uint64_t)L->out_h * L->out_w, off = 0;
    for (int k = 0; k < L->ninputs; k++) {
        uint64_t ck = (uint64_t)r->layers[L->input_idx[k]].out_c;
        for (int b = 0; b < r->n; b++) {
            const double *src = r->dout + (b * (uint64_t)L->out_c + off) * hw;
            for (uint64_t i = 0; i < ck * hw; i++) r->din[k][b * ck * hw + i] += src[i];
        }
        off += ck;
    }
}

const vkr_layer_kind vkr_layer_concat = {
    .name = "concat",
    .min_inputs = 2,
    .max_inputs = 1 << 16,
    .infer = infer,
    .forward = forward,
    .backward = backward,
    .ref_forward = ref_forward,
    .ref_backward = ref_backward,
};
