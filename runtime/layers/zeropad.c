/* zeropad: explicit zero padding [top, bottom, left, right] of H and W. */
#include "layers/layer.h"

#include <cJSON.h>
#include <string.h>

#include "ref/zeropad_ref.h"

static vkr_status parse(const cJSON *obj, vkr_layer *L, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "padding");
    if (!v) return vkr__json_fail(where, "missing field \"padding\"");
    L->pad_mode = VKR_PAD_EXPLICIT;
    return vkr__json_pad4(v, L->pad, "padding", where);
}

static int to_json(const vkr_layer *L, cJSON *o) { return !vkr__json_put(o, "padding", cJSON_CreateIntArray(L->pad, 4)); }

static vkr_status infer(vkr_layer *L, vkr_layer_infer *I) {
    memcpy(L->rpad, L->pad, sizeof L->rpad);
    I->h += L->pad[0] + L->pad[1];
    I->w += L->pad[2] + L->pad[3];
    return VKR_OK;
}

static vkr_pad_shape pad_shape(const vkr_layer *L, int n) {
    vkr_pad_shape p = {n, L->in_c, L->in_h, L->in_w, L->pad[0], L->pad[1], L->pad[2], L->pad[3]};
    return p;
}

static vkr_status forward(const vkr_layer_fwd *f) {
    vkr_pad_shape p = pad_shape(f->L, f->n);
    return vkr_zeropad_forward(f->cmd, &p, f->out, f->in[0]);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    vkr_pad_shape p = pad_shape(b->L, b->n);
    return vkr_zeropad_backward(b->cmd, &p, b->din[0], b->dout);
}

static void ref_forward(const vkr_layer_ref *r) {
    vkr_pad_shape p = pad_shape(r->L, r->n);
    vkr_ref_zeropad_forward(r->out, r->in[0], &p);
}

static void ref_backward(const vkr_layer_ref *r) {
    vkr_pad_shape p = pad_shape(r->L, r->n);
    vkr_ref_zeropad_backward(r->din[0], r->dout, &p);
}

const vkr_layer_kind vkr_layer_zeropad = {
    .name = "zeropad",
    .min_inputs = 1,
    .max_inputs = 1,
    .needs_rank4 = 1,
    .parse = parse,
    .to_json = to_json,
    .infer = infer,
    .forward = forward,
    .backward = backward,
    .ref_forward = ref_forward,
    .ref_backward = ref_backward,
};
