/* Graph runtime: creation (weights uploaded once, planned buffers), inference,
 * training steps, weight download, timings. Recording is in graph_exec.c,
 * buffer planning in graph_plan.c. */
#include "graph/graph_internal.h"
#include "layers/layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define out_floats vkr__layer_out_floats

void vkr_graph_destroy(vkr_graph *g) {
    if (!g) return;
    if (g->cmd) vkr_cmd_free(g->cmd);
    g->cmd = NULL;
    vkr__graph_unsize(g);
    for (int j = 0; j < g->nlayers; j++) {
        for (int k = 0; k < VKR_MAX_PARAMS; k++) {
            if (g->param) vkr_buffer_destroy(g->param[j][k]);
            if (g->grad) vkr_buffer_destroy(g->grad[j][k]);
            if (g->moment1) vkr_buffer_destroy(g->moment1[j][k]);
            if (g->moment2) vkr_buffer_destroy(g->moment2[j][k]);
        }
        if (g->save_mean) vkr_buffer_destroy(g->save_mean[j]);
        if (g->save_invstd) vkr_buffer_destroy(g->save_invstd[j]);
    }
    vkr__fold_free(g);
    vkr_buffer_destroy(g->result);
    vkr_buffer_destroy(g->ls_flag);
    free(g->param);
    free(g->grad);
    free(g->moment1);
    free(g->moment2);
    free(g->save_mean);
    free(g->save_invstd);
    for (int k = 0; k < 4; k++) vkr_buffer_destroy(g->bn_lsync.tmp[k]);
    free(g->bn_host);
    free(g->layers);
    free(g->trained);
    free(g->batch_stats);
    free(g->needs_grad);
    free(g->fwd_ms);
    free(g->bwd_ms);
    free(g->fwd_ts);
    free(g->bwd_ts);
    free(g);
}

/* Builds the host side of a graph: shapes, flags, plans, memory figures. */
static vkr_status graph_setup(vkr_model *m, const vkr_graph_opts *opts, vkr_graph **out) {
    *out = NULL;
    const char *lab = vkr__model_label(m);
    vkr_graph_opts o = opts ? *opts : (vkr_graph_opts){0};
    if (o.batch <= 0) o.batch = 1;
    int h = o.height > 0 ? o.height : m->in_h, w = o.width > 0 ? o.width : m->in_w;
    if (o.freeze < 0) o.freeze = 0;
    vkr_graph *g = calloc(1, sizeof *g);
    if (!g) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    g->m = m;
    g->o = o;
    g->nlayers = m->nlayers;
    g->batch = o.batch;
    g->h = h;
    g->w = w;
    int h0 = m->shape_h, w0 = m->shape_w;
    vkr_status s = vkr_model_infer_shapes(m, h, w);
    if (s) {
        free(g);
        if (h0 && w0) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s", vkr_last_error());
            (void)vkr_model_infer_shapes(m, h0, w0); /* back to the previous sizes */
            vkr_fail(s, "%s", msg);
        }
        return s;
    }
    g->layers = malloc(g->nlayers * sizeof *g->layers);
    g->trained = calloc(g->nlayers, 1);
    g->batch_stats = calloc(g->nlayers, 1);
    g->needs_grad = calloc(g->nlayers, 1);
    g->fwd_ms = calloc(g->nlayers, sizeof(double));
    g->bwd_ms = calloc(g->nlayers, sizeof(double));
    g->fwd_ts = calloc(2 * g->nlayers, sizeof(uint32_t));
    g->bwd_ts = calloc(2 * g->nlayers, sizeof(uint32_t));
    if (!g->layers || !g->trained || !g->batch_stats || !g->needs_grad || !g->fwd_ms || !g->bwd_ms || !g->fwd_ts || !g->bwd_ts) {
        vkr_graph_destroy(g);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    memcpy(g->layers, m->layers, g->nlayers * sizeof *g->layers);
    if (h0 && w0 && (h0 != h || w0 != w)) (void)vkr_model_infer_shapes(m, h0, w0);
    g->target = g->nlayers - 1;
    if (o.output) {
        g->target = vkr_model_find_layer(m, o.output);
        if (g->target < 0) {
            vkr_graph_destroy(g);
            return vkr_fail(VKR_ERR_NOT_FOUND, "%s: no layer named \"%s\"", lab, o.output);
        }
    }
    const vkr_layer *T = &g->layers[g->target];
    g->loss = o.loss;
    if (g->loss == VKR_LOSS_AUTO) g->loss = vkr__layer_is_softmax(T) ? VKR_LOSS_SOFTMAX_CE : VKR_LOSS_DOT;
    if (g->loss == VKR_LOSS_SOFTMAX_CE && T->out_rank != 2 && !(T->out_h == 1 && T->out_w == 1)) {
        vkr_graph_destroy(g);
        return vkr_fail(VKR_ERR_INVALID, "%s: the softmax_ce loss needs an [N, K] output; \"%s\" outputs [N, %d, %d, %d]",
                        lab, T->name, T->out_c, T->out_h, T->out_w);
    }
    g->classes = T->out_c;
    g->target_floats = out_floats(T);
    /* trained parameters and gradient flow */
    for (int j = 0; j < g->nlayers; j++) {
        const vkr_layer *L = &g->layers[j];
        g->trained[j] = o.training && j >= o.freeze && L->trainable && L->nparam > 0;
        g->batch_stats[j] = g->trained[j] && o.bn_train && vkr__layer_kind(L->type)->batch_stats;
        int r = g->trained[j];
        for (int k = 0; k < L->ninputs; k++) r |= g->needs_grad[L->input_idx[k]];
        g->needs_grad[j] = (char)r;
    }
    g->step_batch = o.batch;
    g->ls_scale = o.loss_scale_init > 0 ? o.loss_scale_init : 32768.0; /* 2^15 (Keras) */
    g->recompute = o.training && o.recompute > 0;
    vkr_status fs = vkr__fold_setup(g);
    if (fs) {
        vkr_graph_destroy(g);
        return fs;
    }
    *out = g;
    return VKR_OK;
}

vkr_status vkr_graph_plan(vkr_model *m, const vkr_graph_opts *opts, vkr_graph_memory *mem) {
    vkr_graph *g;
    vkr_status s = graph_setup(m, opts, &g);
    if (s) return s;
    int mb = g->o.micro_batch > 0 && g->o.micro_batch < g->step_batch ? g->o.micro_batch : g->step_batch;
    s = vkr__graph_size(g, mb);
    if (!s) *mem = g->mem;
    vkr_graph_destroy(g);
    return s;
}

vkr_status vkr_graph_create(vkr_context *ctx, vkr_model *m, const vkr_graph_opts *opts, vkr_graph **out) {
    *out = NULL;
    vkr_graph *g;
    vkr_status s = graph_setup(m, opts, &g);
    if (s) return s;
    g->ctx = ctx;
    if (!vkr_context_device(ctx)->timestamps) g->o.timing = 0; /* layer_times then reports it */
    const char *lab = vkr__model_label(m);
    int mb;
    if ((s = vkr__graph_choose(g, &mb))) {
        vkr_graph_destroy(g);
        return s;
    }
    int nl = g->nlayers;
    g->param = calloc(nl, sizeof *g->param);
    g->grad = calloc(nl, sizeof *g->grad);
    g->moment1 = calloc(nl, sizeof *g->moment1);
    g->moment2 = calloc(nl, sizeof *g->moment2);
    g->save_mean = calloc(nl, sizeof *g->save_mean);
    g->save_invstd = calloc(nl, sizeof *g->save_invstd);
    if (!g->param || !g->grad || !g->moment1 || !g->moment2 || !g->save_mean || !g->save_invstd) {
        vkr_graph_destroy(g);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int j = 0; j < nl && !s; j++) {
        const vkr_layer *L = &g->layers[j];
        for (int k = 0; k < L->nparam && !s; k++) {
            const vkr_tensor *T = vkr_model_param(m, j, k);
            if (!T) continue;
            s = vkr_buffer_from_floats(ctx, T->data, T->count, &g->param[j][k]);
            if (!s && g->trained[j] && vkr_param_slot_trainable(L->type, k)) {
                s = vkr__zeros(ctx, T->count, &g->grad[j][k]);
                if (!s) s = vkr__zeros(ctx, T->count, &g->moment1[j][k]);
                if (!s && g->o.optimizer == VKR_OPTIM_ADAM) s = vkr__zeros(ctx, T->count, &g->moment2[j][k]);
            }
        }
        if (!s && g->batch_stats[j]) {
            s = vkr__zeros(ctx, L->out_c, &g->save_mean[j]);
            if (!s) s = vkr__zeros(ctx, L->out_c, &g->save_invstd[j]);
        }
    }
    if (!s) s = vkr__zeros(ctx, 4, &g->result);
    if (!s) {
        s = vkr__graph_size(g, mb);
        /* an allocation the budget allowed failed: smaller micro-batches, unless forced */
        while (s == VKR_ERR_OUT_OF_MEMORY && g->o.micro_batch <= 0 && mb > 1) {
            mb = (mb + 1) / 2;
            g->recoveries++;
            s = vkr__graph_size(g, mb);
        }
    }
    if (!s) s = vkr__fold_upload(g);
    if (!s) s = vkr_cmd_begin(ctx, &g->cmd);
    if (!s && g->scratch) vkr_cmd_set_scratch(g->cmd, g->scratch);
    if (!s && g->o.timing) s = vkr_cmd_enable_timestamps(g->cmd, 64u * nl + 1024);
    if (s) {
        if (s == VKR_ERR_OUT_OF_MEMORY && !strstr(vkr_last_error(), "needs") && g->mem.total)
            s = vkr_fail(s, "%s: graph at batch %d needs %.1f MiB of device memory: %s", lab, g->batch,
                         g->mem.total / 1048576.0, vkr_last_error());
        else if (s == VKR_ERR_OUT_OF_MEMORY && !strstr(vkr_last_error(), "needs")) /* failed before it was sized */
            s = vkr_fail(s, "%s: graph at batch %d: out of device memory before its memory plan was made: %s", lab,
                         g->batch, vkr_last_error());
        vkr_graph_destroy(g);
        return s;
    }
    g->cmd_fresh = 1;
    *out = g;
    return VKR_OK;
}

vkr_status vkr_graph_memory_info(const vkr_graph *g, vkr_graph_memory *mem) {
    *mem = g->mem;
    return VKR_OK;
}

uint64_t vkr_graph_out_floats(const vkr_graph *g, const char *layer) {
    int j = layer ? vkr_model_find_layer(g->m, layer) : g->target;
    return j < 0 ? 0 : out_floats(&g->layers[j]);
}

vkr_status vkr_graph_download_weights(vkr_graph *g) {
    for (int j = 0; j < g->nlayers; j++)
        for (int k = 0; k < g->layers[j].nparam; k++) {
            vkr_tensor *T = vkr_model_param(g->m, j, k);
            if (!T || !g->param[j][k]) continue;
            vkr_status s = vkr_buffer_download(g->param[j][k], 0, T->data, T->count * 4);
            if (s) return s;
        }
    return VKR_OK;
}

vkr_status vkr_graph_upload_weights(vkr_graph *g) {
    for (int j = 0; j < g->nlayers; j++)
        for (int k = 0; k < g->layers[j].nparam; k++) {
            vkr_tensor *T = vkr_model_param(g->m, j, k);
            if (!T || !g->param[j][k]) continue;
            vkr_status s = vkr_buffer_upload(g->param[j][k], 0, T->data, T->count * 4);
            if (s) return s;
        }
    return vkr__fold_upload(g); /* the folded BatchNorms' epilogue constants, from the new values */
}

vkr_status vkr_graph_download_grad(vkr_graph *g, const char *tensor, float *out) {
    int t = vkr_model_find_tensor(g->m, tensor);
    if (t < 0) return vkr_fail(VKR_ERR_NOT_FOUND, "%s: no tensor \"%s\"", vkr__model_label(g->m), tensor ? tensor : "");
    for (int j = 0; j < g->nlayers; j++)
        for (int k = 0; k < g->layers[j].nparam; k++)
            if (g->layers[j].param[k] == t) {
                if (!g->grad || !g->grad[j][k])
                    return vkr_fail(VKR_ERR_INVALID, "tensor \"%s\" is not trained in this graph", tensor);
                return vkr_buffer_download(g->grad[j][k], 0, out, g->m->tensors[t].count * 4);
            }
    return vkr_fail(VKR_ERR_NOT_FOUND, "tensor \"%s\" belongs to no layer", tensor);
}

void vkr_graph_set_lr(vkr_graph *g, float lr) { g->o.optim.lr = lr; }
uint32_t vkr_graph_step(const vkr_graph *g) { return g->step; }

vkr_status vkr_graph_layer_times(const vkr_graph *g, double *forward_ms, double *backward_ms) {
    if (!g->o.timing)
        return vkr_fail(VKR_ERR_INVALID, "graph created without timing (or the device has no timestamps)");
    for (int j = 0; j < g->nlayers; j++) {
        if (forward_ms) forward_ms[j] = g->fwd_ms[j];
        if (backward_ms) backward_ms[j] = g->bwd_ms[j];
    }
    return VKR_OK;
}

double vkr_graph_update_ms(const vkr_graph *g) { return g->upd_ms; }

void vkr_graph_last_counts(const vkr_graph *g, uint32_t *dispatches, uint32_t *barriers) {
    if (dispatches) *dispatches = g->last_dispatches;
    if (barriers) *barriers = g->last_barriers;
}

double vkr_graph_layer_flops(const vkr_graph *g, int j, double *backward) {
    if (backward) *backward = 0;
    if (j < 0 || j >= g->nlayers) return 0;
    const vkr_layer *L = &g->layers[j];
    const vkr_layer_kind *K = vkr__layer_kind(L->type);
    double f = K->flops ? K->flops(L) : 0;
    if (backward && g->main.built && g->main.run_backward && g->main.run_backward[j]) {
        int din = L->ninputs && g->main.run_backward[L->input_idx[0]];
        *backward = f * ((g->trained[j] ? 1 : 0) + (din ? 1 : 0));
    }
    return f;
}

void vkr_graph_layer_shape(const vkr_graph *g, int j, int *c, int *h, int *w, int *rank) {
    const vkr_layer *L = &g->layers[j < 0 ? 0 : j >= g->nlayers ? g->nlayers - 1 : j];
    if (c) *c = L->out_c;
    if (h) *h = L->out_h;
    if (w) *w = L->out_w;
    if (rank) *rank = L->out_rank;
}
