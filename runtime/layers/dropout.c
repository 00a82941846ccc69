/* dropout: the identity in inference and by default in training (its value is its input's); with
 * vkr_graph_opts.dropout, in training steps an inverted dropout (vkr_dropout: kept elements
 * scaled by 1 / (1 - rate), the mask a counter-based hash, recomputed by the backward). */
#include "layers/layer.h"

#include <cJSON.h>

static vkr_status parse(const cJSON *obj, vkr_layer *L, const char *where) {
    vkr_status s = vkr__json_num(obj, "rate", 0, 0, 1, &L->rate, where);
    if (s) return s;
    if (L->rate >= 1) return vkr__json_fail(where, "rate must be in [0, 1)");
    return VKR_OK;
}

static int to_json(const vkr_layer *L, cJSON *o) { return vkr__json_add_num(o, "rate", L->rate); }

static vkr_status forward(const vkr_layer_fwd *f) {
    uint64_t per = vkr__layer_out_floats(f->L);
    if (!f->drop) /* an alias of its input; or, in a training plan's inference call, a copy */
        return f->out == f->in[0] ? VKR_OK : vkr_cmd_copy(f->cmd, f->out, 0, f->in[0], 0, (uint64_t)f->n * per * 4);
    return vkr_dropout(f->cmd, (uint64_t)f->n * per, f->first_image * per, f->drop, f->out, f->in[0]);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    if (!b->drop) return vkr__pass_grad(b);
    if (!b->din[0]) return VKR_OK;
    uint64_t per = vkr__layer_out_floats(b->L), n = (uint64_t)b->n * per;
    if (!b->din_add[0]) return vkr_dropout(b->cmd, n, b->first_image * per, b->drop, b->din[0], b->dout);
    /* another consumer wrote din first: mask dout in place, then add */
    vkr_status s = vkr_dropout(b->cmd, n, b->first_image * per, b->drop, b->dout, b->dout);
    return s ? s : vkr_axpby(b->cmd, n, 1.0f, b->dout, 1.0f, b->din[0]);
}

const vkr_layer_kind vkr_layer_dropout = {
    .name = "dropout",
    .min_inputs = 1,
    .max_inputs = 1,
    .alias_input = 1,
    .train_drops = 1,
    .pass_grad = 1,
    .parse = parse,
    .to_json = to_json,
    .forward = forward,
    .backward = backward,
    .ref_forward = vkr__ref_copy_forward,
    .ref_backward = vkr__ref_pass_backward,
};
