/* softmax: over the K of an [N, K] input.  Trained only as the last layer with the softmax_ce
 * loss, which then takes its input as the logits (the planner checks). */
#include "layers/layer.h"

#include "ref/softmax_ref.h"

static vkr_status infer(vkr_layer *L, vkr_layer_infer *I) {
    (void)L;
    if (I->h != 1 || I->w != 1)
        return vkr_fail(VKR_ERR_FORMAT, "%s needs an [N, K] input; \"%s\" outputs [N, %d, %d, %d]", I->where, I->x->name,
                        (int)I->c, (int)I->h, (int)I->w);
    return VKR_OK;
}

static vkr_status forward(const vkr_layer_fwd *f) {
    return vkr_softmax_forward(f->cmd, f->n, f->L->out_c, f->out, f->in[0]);
}

static void ref_forward(const vkr_layer_ref *r) { vkr_ref_softmax_forward(r->n, r->L->out_c, r->out, r->in[0]); }

const vkr_layer_kind vkr_layer_softmax = {
    .name = "softmax",
    .min_inputs = 1,
    .max_inputs = 1,
    .softmax = 1,
    .infer = infer,
    .forward = forward,
    .ref_forward = ref_forward,
};
