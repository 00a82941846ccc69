/* batchnorm: per-channel normalization with gamma, beta and running statistics (Keras
 * momentum convention); running statistics in inference, batch statistics when trained with
 * opts.bn_train.  An inference BatchNorm after a frozen conv2d may be folded into the conv's
 * epilogue (graph_fold.c). */
#include "layers/layer.h"

#include <cJSON.h>
#include <stdlib.h>

#include "ref/batchnorm_ref.h"

static vkr_status parse(const cJSON *obj, vkr_layer *L, const char *where) {
    vkr_status s;
    if ((s = vkr__json_num(obj, "epsilon", 1e-3, 0, 1, &L->epsilon, where)) ||
        (s = vkr__json_num(obj, "momentum", 0.99, 0, 1, &L->momentum, where)))
        return s;
    if (L->epsilon <= 0) return vkr__json_fail(where, "epsilon must be > 0");
    return VKR_OK;
}

static int to_json(const vkr_layer *L, cJSON *o) {
    return vkr__json_add_num(o, "epsilon", L->epsilon) | vkr__json_add_num(o, "momentum", L->momentum);
}

static vkr_status infer(vkr_layer *L, vkr_layer_infer *I) {
    (void)L;
    for (int k = 0; k < 4; k++) {
        I->pndim[k] = 1;
        I->pshape[k][0] = I->c;
    }
    return VKR_OK;
}

static vkr_bn_shape bn_shape(const vkr_layer *L, int n) {
    vkr_bn_shape p = {n, L->in_c, L->in_h, L->in_w, (float)L->epsilon, (float)L->momentum, 1};
    return p;
}

/* Synchronized over the ranks (vkr_bn_sync): local statistics, their combination, the rest. */
static vkr_status sync_forward(const vkr_layer_fwd *f, const vkr_bn_shape *p) {
    vkr_buffer *const *pb = f->param;
    double cnt = (double)p->n * p->h * p->w;
    vkr_status s = vkr_batchnorm_train_stats(f->cmd, p, f->out, f->save_mean, f->save_invstd, f->in[0]);
    if (!s) s = f->sync->exchange(f->sync->graph, 0, p->c, &cnt, f->save_mean, f->save_invstd, f->save_mean, f->save_invstd);
    if (!s) s = vkr_batchnorm_train_finish(f->cmd, p, cnt, f->out, f->save_mean, f->save_invstd, f->in[0], pb[0], pb[1],
                                           pb[2], pb[3]);
    return s;
}

/* The local sums into dbeta / dgamma (this rank's weight gradients), the combined ones for dinp. */
static vkr_status sync_backward(const vkr_layer_bwd *b, const vkr_bn_shape *p) {
    const vkr_bn_sync *y = b->sync;
    vkr_buffer *s1 = b->dparam[1] ? b->dparam[1] : y->tmp[2], *s2 = b->dparam[0] ? b->dparam[0] : y->tmp[3];
    double cnt = (double)p->n * p->h * p->w;
    vkr_status s = vkr_batchnorm_train_bwd_sums(b->cmd, p, b->din[0], s1, s2, b->dout, b->in, b->save_mean,
                                                b->save_invstd);
    if (!s) s = y->exchange(y->graph, 1, p->c, &cnt, s1, s2, y->tmp[0], y->tmp[1]);
    if (!s && b->din[0])
        s = vkr_batchnorm_train_bwd_dinp(b->cmd, p, cnt, b->din[0], b->dout, b->in, b->param[0], b->save_mean,
                                         b->save_invstd, y->tmp[0], y->tmp[1]);
    return s;
}

static vkr_status forward(const vkr_layer_fwd *f) {
    vkr_bn_shape p = bn_shape(f->L, f->n);
    vkr_buffer *const *pb = f->param;
    p.momentum = f->momentum;
    if (f->batch_stats && f->sync) return sync_forward(f, &p);
    if (f->batch_stats)
        return vkr_batchnorm_train_forward(f->cmd, &p, f->out, f->save_mean, f->save_invstd, f->in[0], pb[0], pb[1],
                                           pb[2], pb[3]);
    return vkr_batchnorm_infer_forward(f->cmd, &p, f->out, f->in[0], pb[0], pb[1], pb[2], pb[3]);
}

static vkr_status backward(const vkr_layer_bwd *b) {
    vkr_bn_shape p = bn_shape(b->L, b->n);
    if (b->batch_stats && b->sync) return sync_backward(b, &p);
    if (b->batch_stats)
        return vkr_batchnorm_train_backward(b->cmd, &p, b->din[0], b->dparam[0], b->dparam[1], b->dout, b->in,
                                            b->param[0], b->save_mean, b->save_invstd);
    return vkr_batchnorm_infer_backward(b->cmd, &p, b->din[0], b->dparam[0], b->dparam[1], b->dout, b->in, b->param[0],
                                        b->param[2], b->param[3]);
}

static void ref_forward(const vkr_layer_ref *r) {
    const vkr_layer *L = r->L;
    vkr_bn_shape p = bn_shape(L, r->n);
    double *const *P = r->param;
    if (!r->batch_stats) {
        vkr_ref_batchnorm_infer_forward(r->out, r->in[0], P[0], P[1], P[2], P[3], &p);
        return;
    }
    double *sm = calloc(L->in_c, sizeof(double)), *si = calloc(L->in_c, sizeof(double));
    vkr_ref_batchnorm_train_forward(r->out, sm, si, r->in[0], P[0], P[1], NULL, NULL, &p);
    free(sm);
    free(si);
}

static void ref_backward(const vkr_layer_ref *r) {
    const vkr_layer *L = r->L;
    vkr_bn_shape p = bn_shape(L, r->n);
    double *const *P = r->param;
    if (!r->batch_stats) {
        vkr_ref_batchnorm_infer_backward(r->din[0], r->dparam[0], r->dparam[1], r->dout, r->in[0], P[0], P[2], P[3], &p);
        return;
    }
    /* the batch statistics again (the forward's are not kept) */
    double *sm = calloc(L->in_c, sizeof(double)), *si = calloc(L->in_c, sizeof(double));
    double *tmp = calloc((size_t)r->n * vkr__layer_out_floats(L), sizeof(double));
    vkr_ref_batchnorm_train_forward(tmp, sm, si, r->in[0], P[0], P[1], NULL, NULL, &p);
    vkr_ref_batchnorm_train_backward(r->din[0], r->dparam[0], r->dparam[1], r->dout, r->in[0], P[0], sm, si, &p);
    free(sm);
    free(si);
    free(tmp);
}

const vkr_layer_kind vkr_layer_batchnorm = {
    .name = "batchnorm",
    .min_inputs = 1,
    .max_inputs = 1,
    .nparam = 4,
    .param_names = {"gamma", "beta", "running_mean", "running_var"},
    .param_init = {VKR_INIT_ONE, VKR_INIT_ZERO, VKR_INIT_ZERO, VKR_INIT_ONE},
    .trainable_slots = 1u << VKR_PARAM_GAMMA | 1u << VKR_PARAM_BETA,
    .batch_stats = 1,
    .bwd_reads_input = VKR_READS_ALWAYS,
    .parse = parse,
    .to_json = to_json,
    .infer = infer,
    .forward = forward,
    .backward = backward,
    .ref_forward = ref_forward,
    .ref_backward = ref_backward,
};
