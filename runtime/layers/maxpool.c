/* maxpool: window maximum; the forward keeps the argmax (an index buffer shaped like the output)
 * for the backward. */
#include "layers/layer.h"

#include "ref/maxpool_ref.h"

static vkr_status forward(const vkr_layer_fwd *f) {
    vkr_pool_shape p = vkr__pool_shape(f->L, f->n);
    return vkr_maxpool_forward(f->cmd, &p, f->out, f->aux, f->in[0]);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    vkr_pool_shape p = vkr__pool_shape(b->L, b->n);
    return vkr_maxpool_backward(b->cmd, &p, b->din[0], b->dout, b->aux);
}

static void ref_forward(const vkr_layer_ref *r) {
    vkr_pool_shape p = vkr__pool_shape(r->L, r->n);
    vkr_ref_maxpool_forward(r->out, r->argmax, r->in[0], &p);
}

static void ref_backward(const vkr_layer_ref *r) {
    vkr_pool_shape p = vkr__pool_shape(r->L, r->n);
    vkr_ref_maxpool_backward(r->din[0], r->dout, r->argmax, &p);
}

const vkr_layer_kind vkr_layer_maxpool = {
    .name = "maxpool",
    .min_inputs = 1,
    .max_inputs = 1,
    .needs_rank4 = 1,
    .argmax = 1,
    .parse = vkr__pool_parse,
    .to_json = vkr__pool_to_json,
    .infer = vkr__pool_infer,
    .forward = forward,
    .backward = backward,
    .ref_forward = ref_forward,
    .ref_backward = ref_backward,
};
