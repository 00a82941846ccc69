/* avgpool: window mean, padding counted or not (count_include_pad). */
#include "layers/layer.h"

#include <cJSON.h>

#include "ref/avgpool_ref.h"

static vkr_status parse(const cJSON *obj, vkr_layer *L, const char *where) {
    vkr_status s = vkr__pool_parse(obj, L, where);
    if (!s) s = vkr__json_bool(obj, "count_include_pad", 0, &L->count_include_pad, where);
    return s;
}

static int to_json(const vkr_layer *L, cJSON *o) {
    return vkr__pool_to_json(L, o) | vkr__json_add_bool(o, "count_include_pad", L->count_include_pad);
}

static vkr_status forward(const vkr_layer_fwd *f) {
    vkr_pool_shape p = vkr__pool_shape(f->L, f->n);
    return vkr_avgpool_forward(f->cmd, &p, f->out, f->in[0]);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    vkr_pool_shape p = vkr__pool_shape(b->L, b->n);
    return vkr_avgpool_backward(b->cmd, &p, b->din[0], b->dout);
}

static void ref_forward(const vkr_layer_ref *r) {
    vkr_pool_shape p = vkr__pool_shape(r->L, r->n);
    vkr_ref_avgpool_forward(r->out, r->in[0], &p);
}

static void ref_backward(const vkr_layer_ref *r) {
    vkr_pool_shape p = vkr__pool_shape(r->L, r->n);
    vkr_ref_avgpool_backward(r->din[0], r->dout, &p);
}

const vkr_layer_kind vkr_layer_avgpool = {
    .name = "avgpool",
    .min_inputs = 1,
    .max_inputs = 1,
    .needs_rank4 = 1,
    .parse = parse,
    .to_json = to_json,
    .infer = vkr__pool_infer,
    .forward = forward,
    .backward = backward,
    .ref_forward = ref_forward,
    .ref_backward = ref_backward,
};
