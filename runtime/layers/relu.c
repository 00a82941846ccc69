/* relu: max(x, 0), in place over its input when it is that value's only consumer, or done in
 * the producer's epilogue (conv2d, dense, add; graph_fold.c). */
#include "layers/layer.h"

#include "ref/relu_ref.h"

static vkr_status forward(const vkr_layer_fwd *f) {
    return vkr_relu_forward(f->cmd, (uint64_t)f->n * vkr__layer_out_floats(f->L), f->out, f->in[0]);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    return vkr_relu_backward(b->cmd, (uint64_t)b->n * vkr__layer_out_floats(b->L), b->din[0], b->dout, b->out);
}

static void ref_forward(const vkr_layer_ref *r) {
    vkr_ref_relu_forward((uint64_t)r->n * vkr__layer_out_floats(r->L), r->out, r->in[0]);
}

static void ref_backward(const vkr_layer_ref *r) {
    vkr_ref_relu_backward((uint64_t)r->n * vkr__layer_out_floats(r->L), r->din[0], r->dout, r->out);
}

const vkr_layer_kind vkr_layer_relu = {
    .name = "relu",
    .min_inputs = 1,
    .max_inputs = 1,
    .in_place = 1,
    .bwd_reads_output = 1,
    .forward = forward,
    .backward = backward,
    .ref_forward = ref_forward,
    .ref_backward = ref_backward,
};
