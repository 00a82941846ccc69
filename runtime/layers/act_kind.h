/* The element-wise activation kinds (clip, sigmoid, hard_sigmoid, hard_swish, swish): one op,
 * vkr_act_forward / vkr_act_backward with a mode, and its reference (runtime/ref/act_ref.c).
 * Each runtime/layers/<type>.c defines its parameters and uses VKR__ACT_KIND.  The backward
 * reads the layer's input (not in place: the input must survive the forward). */
#ifndef VKRUN_LAYERS_ACT_KIND_H
#define VKRUN_LAYERS_ACT_KIND_H

#include "layers/layer.h"
#include "ref/act_ref.h"

/* act_params(const vkr_layer *L) must be defined before use: the op's parameters of layer L. */
#define VKR__ACT_KIND(lname, PARSE, TO_JSON)                                                             \
    static vkr_status act_fwd(const vkr_layer_fwd *f) {                                                  \
        vkr_act_params a = act_params(f->L);                                                             \
        return vkr_act_forward(f->cmd, &a, (uint64_t)f->n * vkr__layer_out_floats(f->L), f->out, f->in[0]); \
    }                                                                                                    \
    static vkr_status act_bwd(const vkr_layer_bwd *b) {                                                  \
        vkr_act_params a = act_params(b->L);                                                             \
        return vkr_act_backward(b->cmd, &a, (uint64_t)b->n * vkr__layer_out_floats(b->L), b->din[0], b->dout, \
                                b->in);                                                                  \
    }                                                                                                    \
    static void act_ref_fwd(const vkr_layer_ref *r) {                                                    \
        vkr_act_params a = act_params(r->L);                                                             \
        vkr_ref_act_forward(&a, (uint64_t)r->n * vkr__layer_out_floats(r->L), r->out, r->in[0]);         \
    }                                                                                                    \
    static void act_ref_bwd(const vkr_layer_ref *r) {                                                    \
        vkr_act_params a = act_params(r->L);                                                             \
        vkr_ref_act_backward(&a, (uint64_t)r->n * vkr__layer_out_floats(r->L), r->din[0], r->dout, r->in[0]); \
    }                                                                                                    \
    const vkr_layer_kind vkr_layer_##lname = {                                                           \
        .name = #lname,                                                                                  \
        .min_inputs = 1,                                                                                 \
        .max_inputs = 1,                                                                                 \
        .bwd_reads_input = VKR_READS_ALWAYS,                                                             \
        .parse = PARSE,                                                                                  \
        .to_json = TO_JSON,                                                                              \
        .forward = act_fwd,                                                                              \
        .backward = act_bwd,                                                                             \
        .ref_forward = act_ref_fwd,                                                                      \
        .ref_backward = act_ref_bwd,                                                                     \
    }

#endif
