/* Graph runtime: recording of forward, loss, backward and optimizer updates
 * into one command stream per call. */
#include "graph/graph_internal.h"
#include "layers/layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define TRY(x)                                                                                                         \
    do {                                                                                                               \
        vkr_status s_ = (x);                                                                                           \
        if (s_) return s_;                                                                                             \
    } while (0)

#define out_floats vkr__layer_out_floats

static vkr_buffer *vbuf(vkr_graph *g, vkr__plan *P, int v) { return v < 0 ? g->input : P->slot_buf[P->vbufs[v].slot]; }

uint64_t vkr__graph_scratch_bytes(const vkr_graph *g, const vkr__plan *P, int mb) {
    uint64_t need = 0;
    if (!g->ctx) return 0;
    for (int j = 0; j < g->nlayers; j++) {
        const vkr_layer *L = &g->layers[j];
        const vkr_layer_kind *K = vkr__layer_kind(L->type);
        if (!g->trained[j] || !P->run_backward || !P->run_backward[j] || !K->bwd_scratch) continue;
        uint64_t b = K->bwd_scratch(g->ctx, L, mb);
        if (b > need) need = b;
    }
    return need;
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

static vkr_status too_many_inputs(const vkr_layer *L) {
    return vkr_fail(VKR_ERR_UNSUPPORTED, "%s \"%s\": more than %d inputs", vkr_layer_type_name(L->type), L->name,
                    VKR_LAYER_MAX_INPUTS);
}

/* The mask key of dropout layer j in this training step (FNV-1a of its name as the salt, so that
 * a model and its head-only copy draw the same masks); *first its first image in the batch. */
static void dropout_key(const vkr_graph *g, int j, vkr_dropout_key *k, uint64_t *first) {
    uint32_t h = 2166136261u;
    for (const char *c = g->layers[j].name; *c; c++) h = (h ^ (uint8_t)*c) * 16777619u;
    *k = (vkr_dropout_key){(float)g->layers[j].rate, g->o.dropout_seed, h, g->step};
    *first = g->call_n > g->mb_n + g->mb_rest ? (uint64_t)(g->call_n - g->mb_n - g->mb_rest) : 0;
    *first += g->first_image; /* data-parallel: this rank's share starts there in the global batch */
}

/* re: recomputation before the backward (values in P->value_bw). */
static vkr_status fwd_layer(vkr_graph *g, vkr__plan *P, int j, int n, int train, int re) {
    const vkr_layer *L = &g->layers[j];
    const vkr_layer_kind *K = vkr__layer_kind(L->type);
    const int *V = re ? P->value_bw : P->value;
    if (P->fold[j] || P->fused[j]) return VKR_OK; /* done by the conv / producer (graph_fold.c) */
    if (L->ninputs > VKR_LAYER_MAX_INPUTS) return too_many_inputs(L);
    vkr_layer_fwd f = {.cmd = g->cmd, .L = L, .layers = g->layers, .n = n, .out = vbuf(g, P, V[j]), .param = g->param[j]};
    for (int k = 0; k < L->ninputs; k++) f.in[k] = vbuf(g, P, V[L->input_idx[k]]);
    int aux = K->argmax ? (re ? P->argmax_bw[j] : P->argmax[j]) : P->logits[j];
    f.aux = aux >= 0 ? vbuf(g, P, aux) : NULL;
    if (g->fold_bn[j] >= 0 && P->fold[g->fold_bn[j]]) f.folded = g->fold_aff[j]; /* + the BatchNorm after it */
    f.relu = L->activation == VKR_ACT_RELU || P->epi_relu[j]; /* in the epilogue */
    f.batch_stats = train && g->batch_stats[j];
    f.momentum = micro_momentum(g, L->momentum);
    f.save_mean = g->save_mean[j];
    f.save_invstd = g->save_invstd[j];
    if (f.batch_stats && g->bn_sync.exchange) {
        if (re) return vkr_fail(VKR_ERR_UNSUPPORTED, "synchronized BatchNorm with recomputation: not supported");
        f.sync = &g->bn_lsync;
    }
    vkr_dropout_key dk;
    if (train && vkr__drops(g, P, j)) {
        dropout_key(g, j, &dk, &f.first_image);
        f.drop = &dk;
    }
    vkr_cmd_label(g->cmd, L->name);
    return K->forward ? K->forward(&f) : VKR_OK;
}

static vkr_status bwd_layer(vkr_graph *g, vkr__plan *P, int j, int n) {
    const vkr_layer *L = &g->layers[j];
    const vkr_layer_kind *K = vkr__layer_kind(L->type);
    vkr_cmd *c = g->cmd;
    if (L->ninputs > VKR_LAYER_MAX_INPUTS) return too_many_inputs(L);
    vkr_layer_bwd b = {.cmd = c, .L = L, .layers = g->layers, .n = n, .param = g->param[j]};
    b.dout = vbuf(g, P, P->value_grad[j]);
    b.out = vbuf(g, P, P->value_bw[j]);
    b.in = L->ninputs ? vbuf(g, P, P->value_bw[L->input_idx[0]]) : NULL;
    b.in1 = K->bwd_reads_input1 && L->ninputs > 1 ? vbuf(g, P, P->value_bw[L->input_idx[1]]) : NULL;
    b.aux = K->argmax ? vbuf(g, P, P->argmax_bw[j]) : NULL;
    b.batch_stats = g->batch_stats[j];
    b.save_mean = g->save_mean[j];
    b.save_invstd = g->save_invstd[j];
    if (b.batch_stats && g->bn_sync.exchange) b.sync = &g->bn_lsync;
    vkr_dropout_key dk;
    if (vkr__drops(g, P, j)) {
        dropout_key(g, j, &dk, &b.first_image);
        b.drop = &dk;
    }
    for (int k = 0; k < 2 && g->trained[j]; k++) /* later micro-batches: into scratch, then added (below) */
        b.dparam[k] = g->grad[j][k] && g->accumulate ? (k ? g->acc_b : g->acc_w) : g->grad[j][k];
    for (int k = 0; k < L->ninputs; k++) {
        int p = L->input_idx[k];
        if (!P->run_backward[p]) continue;
        if (K->pass_grad) { /* the kind adds into the gradient itself */
            b.din[k] = vbuf(g, P, P->value_grad[p]);
            b.din_add[k] = !P->first[j][k];
        } else if (P->first[j][k]) {
            b.din[k] = vbuf(g, P, P->value_grad[p]);
        } else if (P->grad_scratch[j][k] >= 0) {
            b.din[k] = vbuf(g, P, P->grad_scratch[j][k]);
        }
    }
    vkr_cmd_label(c, L->name);
    if (!K->backward)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "layer \"%s\" (%s): no backward", L->name, vkr_layer_type_name(L->type));
    TRY(K->backward(&b));
    if (g->accumulate && g->trained[j]) /* weight gradients of the micro-batches add up */
        for (int k = 0; k < 2; k++)
            if (b.dparam[k]) TRY(vkr_axpby(c, vkr_model_param(g->m, j, k)->count, 1.0f, b.dparam[k], 1.0f, g->grad[j][k]));
    /* accumulate into gradients that an earlier backward already wrote */
    for (int k = 0; k < L->ninputs; k++) {
        int p = L->input_idx[k];
        if (!P->run_backward[p] || P->first[j][k] || P->grad_scratch[j][k] < 0) continue;
        TRY(vkr_axpby(c, (uint64_t)n * out_floats(&g->layers[p]), 1.0f, vbuf(g, P, P->grad_scratch[j][k]), 1.0f,
                      vbuf(g, P, P->value_grad[p])));
    }
    return VKR_OK;
}

/* The factor of the loss gradient: the scale under dynamic loss scaling (graph_scale.c), else 1. */
static float loss_factor(const vkr_graph *g) { return g->o.loss_scaling ? (float)g->ls_scale : 1.0f; }

static vkr_status record_loss(vkr_graph *g, vkr__plan *P, int n, int backward) {
    vkr_cmd *c = g->cmd;
    int lg = P->loss_layer;
    vkr_cmd_label(c, "loss");
    if (g->loss == VKR_LOSS_SOFTMAX_CE) {
        TRY(vkr_softmax_ce_forward(c, n, g->classes, g->result, g->probs, vbuf(g, P, P->value[lg]), g->targets));
        if (backward && P->run_backward[lg]) {
            vkr_buffer *d = vbuf(g, P, P->value_grad[lg]);
            TRY(vkr_softmax_ce_backward(c, n, g->classes, d, g->probs, g->targets));
            /* the mean over the whole call: a micro-batch of n of B images weighs n / B; times the loss scale */
            float f = (g->call_n > n ? (float)n / g->call_n : 1.0f) * loss_factor(g);
            if (f != 1.0f) TRY(vkr_axpby(c, (uint64_t)n * g->classes, 0.0f, g->probs, f, d));
        }
    } else if (backward && P->run_backward[lg]) {
        vkr_buffer *d = vbuf(g, P, P->value_grad[lg]);
        TRY(vkr_cmd_copy(c, d, 0, g->targets, 0, (uint64_t)n * g->target_floats * 4));
        float f = loss_factor(g);
        if (f != 1.0f) TRY(vkr_axpby(c, (uint64_t)n * g->target_floats, 0.0f, g->targets, f, d));
    }
    return VKR_OK;
}

vkr_status vkr__graph_record_updates(vkr_graph *g) {
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

/* Data-parallel overlap (vkr_graph_grad_hook): gradients [0, k) in backward order are final after
 * layer j's backward; a segment's end submits the stream so far (hook.progress while it runs),
 * then hook.ready, then resets the stream. */
static int grads_through(const vkr_graph *g, int j) {
    int k = 0;
    for (int l = g->nlayers - 1; l >= j; l--)
        for (int s = 0; g->trained[l] && s < g->layers[l].nparam && s < VKR_MAX_PARAMS; s++) k += g->grad[l][s] != NULL;
    return k;
}

static vkr_status submit_progress(vkr_graph *g) {
    if (!g->hook.progress) return vkr_cmd_submit(g->cmd);
    vkr_status s = vkr_cmd_submit_async(g->cmd);
    for (int done = 0; !s && !done;) {
        if ((s = vkr_cmd_wait_for(g->cmd, 200000, &done))) break;
        if (!done) s = g->hook.progress(g->hook.user);
    }
    if (s) vkr_cmd_reset(g->cmd); /* waits for the device: nothing left running */
    return s;
}

static vkr_status segment_end(vkr_graph *g, int k) {
    vkr_status s = submit_progress(g);
    if (!s) s = g->hook.ready(g->hook.user, k);
    if (!s) s = vkr_cmd_reset(g->cmd);
    return s;
}

vkr_status vkr__graph_update(vkr_graph *g) {
    vkr_status s;
    uint32_t step0 = g->step;
    if (!g->cmd_fresh && (s = vkr_cmd_reset(g->cmd))) return s;
    g->cmd_fresh = 0;
    if ((s = vkr__graph_record_updates(g)) || (s = vkr_cmd_submit(g->cmd))) {
        g->step = step0;
        return s;
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
    /* data-parallel overlap: the last micro-batch's backward in segments (graph_dp.c) */
    int segs = mode == VKR__RUN_GRADS && g->hook.cut && g->mb_rest == 0 && !g->o.timing;
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
            int k = segs && g->trained[j] && j > 0 ? grads_through(g, j) : 0;
            if (k && g->hook.cut(g->hook.user, k) && (s = segment_end(g, k))) return wrap(g, j, "backward segment", s);
        }
    g->upd_ts[0] = vkr_cmd_timing_count(g->cmd);
    if (mode == VKR__RUN_STEP && (s = vkr__graph_record_updates(g))) return wrap(g, -1, "optimizer", s);
    g->upd_ts[1] = vkr_cmd_timing_count(g->cmd);
    if (mode >= VKR__RUN_EVAL && g->loss == VKR_LOSS_SOFTMAX_CE && (s = vkr__stage_result_record(g, 2 * sizeof(float))))
        return wrap(g, -1, "loss download", s);
    g->last_dispatches = vkr_cmd_dispatch_count(g->cmd);
    g->last_barriers = vkr_cmd_barrier_count(g->cmd);
    if ((s = segs ? submit_progress(g) : vkr_cmd_submit(g->cmd))) return wrap(g, -1, "submit", s);
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
