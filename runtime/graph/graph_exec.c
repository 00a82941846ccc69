/* Graph runtime: recording of forward, loss, backward and optimizer updates
 * into one command stream per call. */
#include "graph/graph_internal.h"
#include "ops/gemm_conv.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        vkr_status s_ = (x);                                                                                           \
        if (s_) return s_;                                                                                             \
    } while (0)

static uint64_t out_floats(const vkr_layer *L) { return (uint64_t)L->out_c * L->out_h * L->out_w; }

static vkr_buffer *vbuf(vkr_graph *g, vkr__plan *P, int v) { return v < 0 ? g->input : P->slot_buf[P->vbufs[v].slot]; }

static vkr_conv2d_shape conv_shape(const vkr_layer *L, int n) {
    vkr_conv2d_shape p = {n, L->in_c, L->in_h, L->in_w, L->out_c, L->kernel[0], L->kernel[1], L->strides[0],
                          L->strides[1], L->rpad[0], L->rpad[1], L->rpad[2], L->rpad[3]};
    return p;
}

uint64_t vkr__graph_scratch_bytes(const vkr_graph *g, const vkr__plan *P, int mb) {
    uint64_t need = 0;
    if (!g->ctx) return 0;
    for (int j = 0; j < g->nlayers; j++) {
        const vkr_layer *L = &g->layers[j];
        if (!g->trained[j] || !P->run_backward || !P->run_backward[j]) continue;
        vkr_conv2d_shape p;
        if (L->type == VKR_LAYER_CONV2D) p = conv_shape(L, mb);
        else if (L->type == VKR_LAYER_DENSE) p = (vkr_conv2d_shape){mb, L->in_c, 1, 1, L->out_c, 1, 1, 1, 1, 0, 0, 0, 0};
        else continue;
        uint64_t b = vkr__conv_backward_scratch(g->ctx, &p, 1, L->use_bias);
        if (b > need) need = b;
    }
    return need;
}

static vkr_pool_shape pool_shape(const vkr_layer *L, int n) {
    vkr_pool_shape p = {n, L->in_c, L->in_h, L->in_w, L->kernel[0], L->kernel[1], L->strides[0], L->strides[1],
                        L->rpad[0], L->rpad[1], L->rpad[2], L->rpad[3], L->count_include_pad};
    return p;
}

static vkr_pad_shape pad_shape(const vkr_layer *L, int n) {
    vkr_pad_shape p = {n, L->in_c, L->in_h, L->in_w, L->pad[0], L->pad[1], L->pad[2], L->pad[3]};
    return p;
}

static vkr_bn_shape bn_shape(const vkr_layer *L, int n) {
    vkr_bn_shape p = {n, L->in_c, L->in_h, L->in_w, (float)L->epsilon, (float)L->momentum, 1};
    return p;
}

/* Momentum of the running-statistics update of one micro-batch, such that the k updates
 * of a step give momentum * r + (1 - momentum) * (size-weighted mean of the micro-batch
 * statistics), as one update with the whole batch would: with R_i the images from micro-batch
 * i on and B those of the step, mu_i = (B - (1-m) R_i) / (B - (1-m) R_{i+1}). */
static float micro_momentum(const vkr_graph *g, double m) {
    if (g->call_n <= 0 || g->mb_n >= g->call_n) return (float)m;
    double B = g->call_n, after = g->mb_rest, from = after + g->mb_n;
    return (float)((B - (1 - m) * from) / (B - (1 - m) * after));
}

/* n-input concat (n > 2) as per-image block copies. */
static vkr_status concat_copies(vkr_graph *g, vkr__plan *P, const vkr_layer *L, int n, vkr_buffer *out,
                                vkr_buffer *const *parts, int backward) {
    uint64_t hw = (uint64_t)L->out_h * L->out_w, ctot = (uint64_t)L->out_c;
    uint64_t off = 0;
    for (int k = 0; k < L->ninputs; k++) {
        uint64_t ck = (uint64_t)g->layers[L->input_idx[k]].out_c;
        if (parts[k])
            for (int b = 0; b < n; b++) {
                uint64_t big = (b * ctot + off) * hw * 4, small = b * ck * hw * 4;
                if (backward) TRY(vkr_cmd_copy(g->cmd, parts[k], small, out, big, ck * hw * 4));
                else TRY(vkr_cmd_copy(g->cmd, out, big, parts[k], small, ck * hw * 4));
            }
        off += ck;
    }
    (void)P;
    return VKR_OK;
}

/* re: recomputation before the backward (values in P->value_bw). */
static vkr_status fwd_layer(vkr_graph *g, vkr__plan *P, int j, int n, int train, int re) {
    const vkr_layer *L = &g->layers[j];
    vkr_cmd *c = g->cmd;
    const int *V = re ? P->value_bw : P->value;
    vkr_buffer *out = vbuf(g, P, V[j]);
    vkr_buffer *in = L->ninputs ? vbuf(g, P, V[L->input_idx[0]]) : NULL;
    vkr_buffer **pb = g->param[j];
    uint64_t nout = (uint64_t)n * out_floats(L);
    if (P->fold[j] || P->fused[j]) return VKR_OK; /* done by the conv / producer (graph_fold.c) */
    int relu = L->activation == VKR_ACT_RELU || P->epi_relu[j]; /* in the epilogue */
    vkr_cmd_label(c, L->name);
    switch (L->type) {
    case VKR_LAYER_INPUT:
    case VKR_LAYER_DROPOUT:
        return VKR_OK;
    case VKR_LAYER_CONV2D: {
        vkr_conv2d_shape p = conv_shape(L, n);
        vkr_buffer *b = L->use_bias ? pb[1] : NULL;
        if (g->fold_bn[j] >= 0 && P->fold[g->fold_bn[j]]) /* + the BatchNorm after it (graph_fold.c) */
            return vkr_conv2d_bn_forward(c, &p, out, in, pb[0], g->fold_aff[j], relu);
        if (relu) return vkr_conv2d_relu_forward(c, &p, out, in, pb[0], b);
        return vkr_conv2d_forward(c, &p, out, in, pb[0], b);
    }
    case VKR_LAYER_DENSE: {
        vkr_buffer *dst = P->logits[j] >= 0 ? vbuf(g, P, P->logits[j]) : out;
        vkr_buffer *b = L->use_bias ? pb[1] : NULL;
        if (relu) TRY(vkr_dense_relu_forward(c, n, L->in_c, L->out_c, dst, in, pb[0], b));
        else TRY(vkr_dense_forward(c, n, L->in_c, L->out_c, dst, in, pb[0], b));
        if (P->logits[j] >= 0) TRY(vkr_softmax_forward(c, n, L->out_c, out, dst));
        return VKR_OK;
    }
    case VKR_LAYER_BATCHNORM: {
        vkr_bn_shape p = bn_shape(L, n);
        p.momentum = micro_momentum(g, L->momentum);
        if (train && g->batch_stats[j])
            return vkr_batchnorm_train_forward(c, &p, out, g->save_mean[j], g->save_invstd[j], in, pb[0], pb[1], pb[2],
                                               pb[3]);
        return vkr_batchnorm_infer_forward(c, &p, out, in, pb[0], pb[1], pb[2], pb[3]);
    }
    case VKR_LAYER_RELU:
        return vkr_relu_forward(c, nout, out, in);
    case VKR_LAYER_ADD:
        if (relu) return vkr_add_relu_forward(c, nout, out, in, vbuf(g, P, V[L->input_idx[1]]));
        return vkr_add_forward(c, nout, out, in, vbuf(g, P, V[L->input_idx[1]]));
    case VKR_LAYER_ZEROPAD: {
        vkr_pad_shape p = pad_shape(L, n);
        return vkr_zeropad_forward(c, &p, out, in);
    }
    case VKR_LAYER_MAXPOOL: {
        vkr_pool_shape p = pool_shape(L, n);
        return vkr_maxpool_forward(c, &p, out, vbuf(g, P, re ? P->argmax_bw[j] : P->argmax[j]), in);
    }
    case VKR_LAYER_AVGPOOL: {
        vkr_pool_shape p = pool_shape(L, n);
        return vkr_avgpool_forward(c, &p, out, in);
    }
    case VKR_LAYER_GAP:
        return vkr_gap_forward(c, n, L->in_c, L->in_h * L->in_w, out, in);
    case VKR_LAYER_CONCAT: {
        if (L->ninputs == 2)
            return vkr_concat_forward(c, n, g->layers[L->input_idx[0]].out_c, g->layers[L->input_idx[1]].out_c,
                                      L->out_h * L->out_w, out, in, vbuf(g, P, V[L->input_idx[1]]));
        vkr_buffer *parts[64];
        if (L->ninputs > 64) return vkr_fail(VKR_ERR_UNSUPPORTED, "concat \"%s\": more than 64 inputs", L->name);
        for (int k = 0; k < L->ninputs; k++) parts[k] = vbuf(g, P, V[L->input_idx[k]]);
        return concat_copies(g, P, L, n, out, parts, 0);
    }
    case VKR_LAYER_SOFTMAX:
        return vkr_softmax_forward(c, n, L->out_c, out, in);
    default:
        return vkr_fail(VKR_ERR_INVALID, "layer \"%s\": unknown type", L->name);
    }
}

static vkr_status bwd_layer(vkr_graph *g, vkr__plan *P, int j, int n) {
    const vkr_layer *L = &g->layers[j];
    vkr_cmd *c = g->cmd;
    vkr_buffer *dout = vbuf(g, P, P->value_grad[j]);
    vkr_buffer *out = vbuf(g, P, P->value_bw[j]);
    vkr_buffer *in = L->ninputs ? vbuf(g, P, P->value_bw[L->input_idx[0]]) : NULL;
    vkr_buffer **pb = g->param[j], *gb[2] = {g->grad[j][0], g->grad[j][1]};
    if (g->accumulate) { /* later micro-batches: into scratch, then added (below) */
        gb[0] = gb[0] ? g->acc_w : NULL;
        gb[1] = gb[1] ? g->acc_b : NULL;
    }
    uint64_t nout = (uint64_t)n * out_floats(L);
    vkr_buffer *din[64] = {0};
    if (L->ninputs > 64) return vkr_fail(VKR_ERR_UNSUPPORTED, "layer \"%s\": more than 64 inputs", L->name);
    for (int k = 0; k < L->ninputs; k++) {
        int p = L->input_idx[k];
        if (!P->run_backward[p]) continue;
        if (P->first[j][k]) din[k] = vbuf(g, P, P->value_grad[p]);
        else if (P->grad_scratch[j][k] >= 0) din[k] = vbuf(g, P, P->grad_scratch[j][k]);
    }
    int pt = g->trained[j];
    vkr_cmd_label(c, L->name);
    switch (L->type) {
    case VKR_LAYER_CONV2D: {
        vkr_conv2d_shape p = conv_shape(L, n);
        if (L->activation == VKR_ACT_RELU) TRY(vkr_relu_backward(c, nout, dout, dout, out));
        TRY(vkr_conv2d_backward(c, &p, din[0], pt ? gb[0] : NULL, pt && L->use_bias ? gb[1] : NULL, dout, in, pb[0]));
        break;
    }
    case VKR_LAYER_DENSE:
        if (L->activation == VKR_ACT_RELU) TRY(vkr_relu_backward(c, nout, dout, dout, out));
        TRY(vkr_dense_backward(c, n, L->in_c, L->out_c, din[0], pt ? gb[0] : NULL, pt && L->use_bias ? gb[1] : NULL,
                               dout, in, pb[0]));
        break;
    case VKR_LAYER_BATCHNORM: {
        vkr_bn_shape p = bn_shape(L, n);
        if (g->batch_stats[j])
            TRY(vkr_batchnorm_train_backward(c, &p, din[0], pt ? gb[0] : NULL, pt ? gb[1] : NULL, dout, in, pb[0],
                                             g->save_mean[j], g->save_invstd[j]));
        else
            TRY(vkr_batchnorm_infer_backward(c, &p, din[0], pt ? gb[0] : NULL, pt ? gb[1] : NULL, dout, in, pb[0],
                                             pb[2], pb[3]));
        break;
    }
    case VKR_LAYER_RELU:
        TRY(vkr_relu_backward(c, nout, din[0], dout, out));
        break;
    case VKR_LAYER_ADD:
    case VKR_LAYER_DROPOUT: {
        int both_first = L->ninputs == 2 && P->first[j][0] && P->first[j][1] && din[0] && din[1] && din[0] != din[1];
        if (both_first) {
            TRY(vkr_add_backward(c, nout, din[0], din[1], dout));
            break;
        }
        for (int k = 0; k < L->ninputs; k++) {
            int p = L->input_idx[k];
            if (!P->run_backward[p]) continue;
            vkr_buffer *dst = vbuf(g, P, P->value_grad[p]);
            if (P->first[j][k]) TRY(vkr_cmd_copy(c, dst, 0, dout, 0, nout * 4));
            else TRY(vkr_axpby(c, nout, 1.0f, dout, 1.0f, dst));
        }
        return VKR_OK;
    }
    case VKR_LAYER_ZEROPAD: {
        vkr_pad_shape p = pad_shape(L, n);
        TRY(vkr_zeropad_backward(c, &p, din[0], dout));
        break;
    }
    case VKR_LAYER_MAXPOOL: {
        vkr_pool_shape p = pool_shape(L, n);
        TRY(vkr_maxpool_backward(c, &p, din[0], dout, vbuf(g, P, P->argmax_bw[j])));
        break;
    }
    case VKR_LAYER_AVGPOOL: {
        vkr_pool_shape p = pool_shape(L, n);
        TRY(vkr_avgpool_backward(c, &p, din[0], dout));
        break;
    }
    case VKR_LAYER_GAP:
        TRY(vkr_gap_backward(c, n, L->in_c, L->in_h * L->in_w, din[0], dout));
        break;
    case VKR_LAYER_CONCAT:
        if (L->ninputs == 2)
            TRY(vkr_concat_backward(c, n, g->layers[L->input_idx[0]].out_c, g->layers[L->input_idx[1]].out_c,
                                    L->out_h * L->out_w, din[0], din[1], dout));
        else
            TRY(concat_copies(g, P, L, n, dout, din, 1));
        break;
    default:
        return vkr_fail(VKR_ERR_UNSUPPORTED, "layer \"%s\" (%s): no backward", L->name, vkr_layer_type_name(L->type));
    }
    if (g->accumulate && g->trained[j]) /* weight gradients of the micro-batches add up */
        for (int k = 0; k < 2; k++)
            if (gb[k]) TRY(vkr_axpby(c, vkr_model_param(g->m, j, k)->count, 1.0f, gb[k], 1.0f, g->grad[j][k]));
    /* accumulate into gradients that an earlier backward already wrote */
    for (int k = 0; k < L->ninputs; k++) {
        int p = L->input_idx[k];
        if (!P->run_backward[p] || P->first[j][k] || P->grad_scratch[j][k] < 0) continue;
        TRY(vkr_axpby(c, (uint64_t)n * out_floats(&g->layers[p]), 1.0f, vbuf(g, P, P->grad_scratch[j][k]), 1.0f,
                      vbuf(g, P, P->value_grad[p])));
    }
    return VKR_OK;
}

static vkr_status record_loss(vkr_graph *g, vkr__plan *P, int n, int backward) {
    vkr_cmd *c = g->cmd;
    int lg = P->loss_layer;
    vkr_cmd_label(c, "loss");
    if (g->loss == VKR_LOSS_SOFTMAX_CE) {
        TRY(vkr_softmax_ce_forward(c, n, g->classes, g->result, g->probs, vbuf(g, P, P->value[lg]), g->targets));
        if (backward && P->run_backward[lg]) {
            vkr_buffer *d = vbuf(g, P, P->value_grad[lg]);
            TRY(vkr_softmax_ce_backward(c, n, g->classes, d, g->probs, g->targets));
            /* the mean over the whole call: a micro-batch of n of B images weighs n / B */
            if (g->call_n > n) TRY(vkr_axpby(c, (uint64_t)n * g->classes, 0.0f, g->probs, (float)n / g->call_n, d));
        }
    } else if (backward && P->run_backward[lg]) {
        TRY(vkr_cmd_copy(c, vbuf(g, P, P->value_grad[lg]), 0, g->targets, 0, (uint64_t)n * g->target_floats * 4));
    }
    return VKR_OK;
}

static vkr_status record_updates(vkr_graph *g) {
    g->step++;
    vkr_optim_params o = g->o.optim;
    o.step = g->step;
    for (int j = 0; j < g->nlayers; j++) {
        if (!g->trained[j]) continue;
        const vkr_layer *L = &g->layers[j];
        for (int k = 0; k < L->nparam; k++) {
            if (!g->grad[j][k]) continue;
            const vkr_tensor *T = vkr_model_param(g->m, j, k);
            vkr_cmd_label(g->cmd, L->name);
            if (g->o.optimizer == VKR_OPTIM_ADAM)
                TRY(vkr_adam_step(g->cmd, T->count, &o, g->param[j][k], g->grad[j][k], g->moment1[j][k], g->moment2[j][k]));
            else
                TRY(vkr_sgd_step(g->cmd, T->count, &o, g->param[j][k], g->grad[j][k], g->moment1[j][k]));
        }
    }
    return VKR_OK;
}

static vkr_status wrap(vkr_graph *g, int j, const char *phase, vkr_status s) {
    char msg[1024];
    snprintf(msg, sizeof msg, "%s", vkr_last_error());
    if (j < 0) return vkr_fail(s, "%s: %s: %s", vkr__model_label(g->m), phase, msg);
    return vkr_fail(s, "%s: layer %d \"%s\" (%s) %s: %s", vkr__model_label(g->m), j, g->layers[j].name,
                    vkr_layer_type_name(g->layers[j].type), phase, msg);
}

static double range_ms(vkr_graph *g, uint32_t a, uint32_t b) {
    double t = 0;
    for (uint32_t q = a; q < b; q++) {
        double ms;
        if (vkr_cmd_timing(g->cmd, q, &ms, NULL) == VKR_OK) t += ms;
    }
    return t;
}

vkr_status vkr__graph_run(vkr_graph *g, vkr__plan *P, const float *input, const float *targets, int n,
                          vkr__run_mode mode, float *loss, int *correct, float *out) {
    vkr_status s;
    if (n < 1 || n > g->batch) return vkr_fail(VKR_ERR_INVALID, "graph: n = %d outside [1, batch %d]", n, g->batch);
    if (!input) return vkr_fail(VKR_ERR_INVALID, "graph: no input");
    if (mode >= VKR__RUN_EVAL && !targets) return vkr_fail(VKR_ERR_INVALID, "graph: no targets");
    if (loss) *loss = NAN;
    if (correct) *correct = 0;
    uint64_t in_floats = (uint64_t)n * g->m->in_c * g->h * g->w;
    uint64_t tf = (uint64_t)n * (g->loss == VKR_LOSS_SOFTMAX_CE ? (uint64_t)g->classes : g->target_floats);
    if (!g->cmd_fresh && (s = vkr_cmd_reset(g->cmd))) return s;
    g->cmd_fresh = 0;
    /* input and targets: memcpy into mapped memory, or copies recorded into this submission */
    if ((s = vkr__stage_in(g, input, in_floats * 4, mode >= VKR__RUN_EVAL ? targets : NULL, tf * 4)))
        return wrap(g, -1, "input upload", s);
    memset(g->fwd_ts, 0, 2 * g->nlayers * sizeof *g->fwd_ts);
    memset(g->bwd_ts, 0, 2 * g->nlayers * sizeof *g->bwd_ts);
    int train = mode >= VKR__RUN_GRADS;
    for (int j = 0; j < g->nlayers; j++) {
        if (!P->live[j]) continue;
        g->fwd_ts[2 * j] = vkr_cmd_timing_count(g->cmd);
        if ((s = fwd_layer(g, P, j, n, train, 0))) return wrap(g, j, "forward", s);
        g->fwd_ts[2 * j + 1] = vkr_cmd_timing_count(g->cmd);
    }
    if (mode >= VKR__RUN_EVAL && (s = record_loss(g, P, n, train))) return wrap(g, -1, "loss", s);
    if (train)
        for (int j = g->nlayers - 1; j >= 0; j--) {
            if (!P->run_backward[j]) continue;
            g->bwd_ts[2 * j] = vkr_cmd_timing_count(g->cmd);
            for (int r = P->recompute_from[j] < 0 ? j : P->recompute_from[j]; r < j; r++) /* the segment j ends, again */
                if (P->recomputed[r] && (s = fwd_layer(g, P, r, n, train, 1))) return wrap(g, r, "recomputation", s);
            if ((s = bwd_layer(g, P, j, n))) return wrap(g, j, "backward", s);
            g->bwd_ts[2 * j + 1] = vkr_cmd_timing_count(g->cmd);
        }
    g->upd_ts[0] = vkr_cmd_timing_count(g->cmd);
    if (mode == VKR__RUN_STEP && (s = record_updates(g))) return wrap(g, -1, "optimizer", s);
    g->upd_ts[1] = vkr_cmd_timing_count(g->cmd);
    if (mode >= VKR__RUN_EVAL && g->loss == VKR_LOSS_SOFTMAX_CE && (s = vkr__stage_result_record(g, 2 * sizeof(float))))
        return wrap(g, -1, "loss download", s);
    g->last_dispatches = vkr_cmd_dispatch_count(g->cmd);
    g->last_barriers = vkr_cmd_barrier_count(g->cmd);
    if ((s = vkr_cmd_submit(g->cmd))) return wrap(g, -1, "submit", s);
    if (g->o.timing) {
        for (int j = 0; j < g->nlayers; j++) {
            g->fwd_ms[j] = range_ms(g, g->fwd_ts[2 * j], g->fwd_ts[2 * j + 1]);
            g->bwd_ms[j] = range_ms(g, g->bwd_ts[2 * j], g->bwd_ts[2 * j + 1]);
        }
        g->upd_ms = range_ms(g, g->upd_ts[0], g->upd_ts[1]);
    }
    if (out && mode == VKR__RUN_INFER) {
        uint64_t of = (uint64_t)n * out_floats(&g->layers[P->target]);
        if ((s = vkr_buffer_download(vbuf(g, P, P->value[P->target]), 0, out, of * 4))) return wrap(g, -1, "download", s);
    }
    if (mode >= VKR__RUN_EVAL && g->loss == VKR_LOSS_SOFTMAX_CE) {
        float r[2];
        if ((s = vkr__stage_result_read(g, r, sizeof r))) return wrap(g, -1, "download", s);
        if (loss) *loss = r[0];
        if (correct) *correct = (int)lrintf(r[1]);
    }
    return VKR_OK;
}
