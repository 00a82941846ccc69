/* add: elementwise sum of two inputs of the same shape; a following ReLU may run in its
 * epilogue.  Its backward hands dout to both inputs' gradients (no scratch). */
#include "layers/layer.h"

#include "ref/add_ref.h"

static vkr_status infer(vkr_layer *L, vkr_layer_infer *I) {
    int64_t csum;
    return vkr__infer_inputs_match(L, I, 1, &csum);
}

static vkr_status forward(const vkr_layer_fwd *f) {
    uint64_t nout = (uint64_t)f->n * vkr__layer_out_floats(f->L);
    if (f->relu) return vkr_add_relu_forward(f->cmd, nout, f->out, f->in[0], f->in[1]);
    return vkr_add_forward(f->cmd, nout, f->out, f->in[0], f->in[1]);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    /* both gradients written here first, into two buffers: one dispatch */
    if (b->din[0] && b->din[1] && !b->din_add[0] && !b->din_add[1] && b->din[0] != b->din[1])
        return vkr_add_backward(b->cmd, (uint64_t)b->n * vkr__layer_out_floats(b->L), b->din[0], b->din[1], b->dout);
    return vkr__pass_grad(b);
}

static void ref_forward(const vkr_layer_ref *r) {
    vkr_ref_add_forward((uint64_t)r->n * vkr__layer_out_floats(r->L), r->out, r->in[0], r->in[1]);
}

const vkr_layer_kind vkr_layer_add = {
    .name = "add",
    .min_inputs = 2,
    .max_inputs = 2,
    .pass_grad = 1,
    .relu_epilogue = 1,
    .infer = infer,
    .forward = forward,
    .backward = backward,
    .ref_forward = ref_forward,
    .ref_backward = vkr__ref_pass_backward,
};
