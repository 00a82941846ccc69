/* Graph runtime: creation (weights uploaded once, planned buffers), inference,
 * training steps, weight download, timings. Recording is in graph_exec.c,
 * buffer planning in graph_plan.c. */
#include "graph/graph_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t out_floats(const vkr_layer *L) { return (uint64_t)L->out_c * L->out_h * L->out_w; }

void vkr_graph_destroy(vkr_graph *g) {
    if (!g) return;
    if (g->cmd) vkr_cmd_free(g->cmd);
    g->cmd = NULL;
    vkr__graph_unsize(g);
    for (int j = 0; j < g->nl; j++) {
        for (int k = 0; k < VKR_MAX_PARAMS; k++) {
            if (g->param) vkr_buffer_destroy(g->param[j][k]);
            if (g->grad) vkr_buffer_destroy(g->grad[j][k]);
            if (g->st1) vkr_buffer_destroy(g->st1[j][k]);
            if (g->st2) vkr_buffer_destroy(g->st2[j][k]);
        }
        if (g->save_mean) vkr_buffer_destroy(g->save_mean[j]);
        if (g->save_invstd) vkr_buffer_destroy(g->save_invstd[j]);
    }
    vkr__fold_free(g);
    vkr_buffer_destroy(g->result);
    free(g->param);
    free(g->grad);
    free(g->st1);
    free(g->st2);
    free(g->save_mean);
    free(g->save_invstd);
    free(g->L);
    free(g->pt);
    free(g->bm);
    free(g->rg);
    free(g->fwd_ms);
    free(g->bwd_ms);
    free(g->fq);
    free(g->bq);
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
    g->nl = m->nlayers;
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
    g->L = malloc(g->nl * sizeof *g->L);
    g->pt = calloc(g->nl, 1);
    g->bm = calloc(g->nl, 1);
    g->rg = calloc(g->nl, 1);
    g->fwd_ms = calloc(g->nl, sizeof(double));
    g->bwd_ms = calloc(g->nl, sizeof(double));
    g->fq = calloc(2 * g->nl, sizeof(uint32_t));
    g->bq = calloc(2 * g->nl, sizeof(uint32_t));
    if (!g->L || !g->pt || !g->bm || !g->rg || !g->fwd_ms || !g->bwd_ms || !g->fq || !g->bq) {
        vkr_graph_destroy(g);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    memcpy(g->L, m->layers, g->nl * sizeof *g->L);
    if (h0 && w0 && (h0 != h || w0 != w)) (void)vkr_model_infer_shapes(m, h0, w0);
    g->target = g->nl - 1;
    if (o.output) {
        g->target = vkr_model_find_layer(m, o.output);
        if (g->target < 0) {
            vkr_graph_destroy(g);
            return vkr_fail(VKR_ERR_NOT_FOUND, "%s: no layer named \"%s\"", lab, o.output);
        }
    }
    const vkr_layer *T = &g->L[g->target];
    int ends_softmax = T->type == VKR_LAYER_SOFTMAX || (T->type == VKR_LAYER_DENSE && T->activation == VKR_ACT_SOFTMAX);
    g->loss = o.loss;
    if (g->loss == VKR_LOSS_AUTO) g->loss = ends_softmax ? VKR_LOSS_SOFTMAX_CE : VKR_LOSS_DOT;
    if (g->loss == VKR_LOSS_SOFTMAX_CE && T->out_rank != 2 && !(T->out_h == 1 && T->out_w == 1)) {
        vkr_graph_destroy(g);
        return vkr_fail(VKR_ERR_INVALID, "%s: the softmax_ce loss needs an [N, K] output; \"%s\" outputs [N, %d, %d, %d]",
                        lab, T->name, T->out_c, T->out_h, T->out_w);
    }
    g->classes = T->out_c;
    g->target_floats = out_floats(T);
    /* trained parameters and gradient flow */
    for (int j = 0; j < g->nl; j++) {
        const vkr_layer *L = &g->L[j];
        g->pt[j] = o.training && j >= o.freeze && L->trainable && L->nparam > 0;
        g->bm[j] = g->pt[j] && o.bn_train && L->type == VKR_LAYER_BATCHNORM;
        int r = g->pt[j];
        for (int k = 0; k < L->ninputs; k++) r |= g->rg[L->input_idx[k]];
        g->rg[j] = (char)r;
    }
    g->step_batch = o.batch;
    g->recompute = o.training && o.recompute > 0;
    vkr_status fs = vkr__fold_setup(g);
    if (fs) {
        vkr_graph_destroy(g);
        return fs;
    }
    *out = g;
    return VKR_OK;
}

/* Memory figures of the graph at micro-batch mb from its main plan P; *largest gets the
 * largest single buffer. */
static void figures(const vkr_graph *g, const vkr__plan *P, int mb, vkr_graph_memory *mem, uint64_t *largest) {
    const vkr_model *m = g->m;
    memset(mem, 0, sizeof *mem);
    uint64_t big = 0, acc[2] = {0, 0};
    for (int t = 0; t < m->ntensors; t++) {
        mem->weights += m->tensors[t].count * 4;
        if (m->tensors[t].count * 4 > big) big = m->tensors[t].count * 4;
    }
    if (g->o.training) {
        int moments = g->o.optimizer == VKR_OPTIM_ADAM ? 2 : 1;
        for (int j = 0; j < g->nl; j++) {
            if (!g->pt[j]) continue;
            for (int k = 0; k < g->L[j].nparam; k++) {
                const vkr_tensor *Tt = vkr_model_param(m, j, k);
                if (!Tt || !vkr_param_slot_trainable(g->L[j].type, k)) continue;
                mem->train_state += Tt->count * 4 * (1 + moments);
                if (Tt->count > acc[k & 1]) acc[k & 1] = Tt->count;
            }
            if (g->bm[j]) mem->train_state += 2ull * g->L[j].out_c * 4;
        }
        if (mb < g->step_batch) mem->train_state += (acc[0] + acc[1]) * 4;
    }
    uint64_t tfl = g->loss == VKR_LOSS_SOFTMAX_CE ? (uint64_t)g->classes : g->target_floats;
    uint64_t xin = (uint64_t)mb * m->in_c * g->h * g->w * 4;
    mem->train_state += (uint64_t)mb * g->classes * 4 + 16;
    mem->input = xin + (uint64_t)mb * tfl * 4;
    mem->activations = P->planned_floats * 4;
    mem->naive = P->naive_floats * 4;
    mem->scratch = g->o.training ? vkr__graph_scratch_bytes(g, P, mb) : 0;
    mem->total = mem->weights + mem->train_state + mem->activations + mem->input + mem->scratch;
    if (xin > big) big = xin;
    for (int i = 0; i < P->nslots; i++)
        if (P->slot_floats[i] * 4 > big) big = P->slot_floats[i] * 4;
    if (largest) *largest = big;
}

static vkr_status build_main(vkr_graph *g, vkr__plan *P, int mb) {
    g->batch = mb;
    return vkr__plan_build(g, P, g->target, g->o.training, g->o.training);
}

vkr_status vkr__graph_measure(vkr_graph *g, int mb, vkr_graph_memory *mem, uint64_t *largest) {
    vkr__plan P = {0};
    int keep = g->batch;
    vkr_status s = build_main(g, &P, mb);
    g->batch = keep;
    if (s) return s;
    figures(g, &P, mb, mem, largest);
    vkr__plan_free(&P);
    return VKR_OK;
}

static vkr_status new_zero(vkr_context *ctx, uint64_t floats, vkr_buffer **b) {
    vkr_status s = vkr_buffer_create(ctx, (floats ? floats : 1) * 4, b);
    if (!s) s = vkr_buffer_fill_zero(*b);
    return s;
}

void vkr__graph_unsize(vkr_graph *g) {
    if (g->cmd) vkr_cmd_set_scratch(g->cmd, NULL); /* the stream borrowed it */
    vkr_buffer_destroy(g->scratch);
    g->scratch = NULL;
    vkr__stage_free(g);
    vkr__plan_free(&g->main);
    vkr__plan_free(&g->infer);
    vkr_buffer *b[5] = {g->input, g->targets, g->probs, g->acc_w, g->acc_b};
    for (int i = 0; i < 5; i++) vkr_buffer_destroy(b[i]);
    g->input = g->targets = g->probs = g->acc_w = g->acc_b = NULL;
}

vkr_status vkr__graph_size(vkr_graph *g, int mb) {
    vkr__graph_unsize(g);
    vkr_status s = build_main(g, &g->main, mb);
    if (s) return s;
    figures(g, &g->main, mb, &g->mem, NULL);
    if (!g->ctx) return VKR_OK;
    vkr_context *ctx = g->ctx;
    uint64_t tfl = g->loss == VKR_LOSS_SOFTMAX_CE ? (uint64_t)g->classes : g->target_floats;
    s = new_zero(ctx, (uint64_t)mb * g->m->in_c * g->h * g->w, &g->input);
    if (!s) s = new_zero(ctx, (uint64_t)mb * tfl, &g->targets);
    if (!s) s = new_zero(ctx, (uint64_t)mb * g->classes, &g->probs);
    if (!s && g->o.training && mb < g->step_batch) {
        g->acc_floats[0] = g->acc_floats[1] = 0;
        for (int j = 0; j < g->nl; j++)
            for (int k = 0; k < VKR_MAX_PARAMS; k++)
                if (g->grad[j][k]) {
                    uint64_t c = vkr_model_param(g->m, j, k)->count;
                    if (c > g->acc_floats[k & 1]) g->acc_floats[k & 1] = c;
                }
        if (g->acc_floats[0]) s = new_zero(ctx, g->acc_floats[0], &g->acc_w);
        if (!s && g->acc_floats[1]) s = new_zero(ctx, g->acc_floats[1], &g->acc_b);
    }
    if (!s) s = vkr__plan_alloc(g, &g->main);
    if (!s) s = vkr__stage_create(g); /* after input, targets and result exist */
    if (!s && g->mem.scratch) s = vkr_buffer_create(ctx, g->mem.scratch, &g->scratch);
    if (!s && g->cmd && g->scratch) vkr_cmd_set_scratch(g->cmd, g->scratch);
    if (s) vkr__graph_unsize(g);
    return s;
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
    int nl = g->nl;
    g->param = calloc(nl, sizeof *g->param);
    g->grad = calloc(nl, sizeof *g->grad);
    g->st1 = calloc(nl, sizeof *g->st1);
    g->st2 = calloc(nl, sizeof *g->st2);
    g->save_mean = calloc(nl, sizeof *g->save_mean);
    g->save_invstd = calloc(nl, sizeof *g->save_invstd);
    if (!g->param || !g->grad || !g->st1 || !g->st2 || !g->save_mean || !g->save_invstd) {
        vkr_graph_destroy(g);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int j = 0; j < nl && !s; j++) {
        const vkr_layer *L = &g->L[j];
        for (int k = 0; k < L->nparam && !s; k++) {
            const vkr_tensor *T = vkr_model_param(m, j, k);
            if (!T) continue;
            s = vkr_buffer_from_floats(ctx, T->data, T->count, &g->param[j][k]);
            if (!s && g->pt[j] && vkr_param_slot_trainable(L->type, k)) {
                s = new_zero(ctx, T->count, &g->grad[j][k]);
                if (!s) s = new_zero(ctx, T->count, &g->st1[j][k]);
                if (!s && g->o.optimizer == VKR_OPTIM_ADAM) s = new_zero(ctx, T->count, &g->st2[j][k]);
            }
        }
        if (!s && g->bm[j]) {
            s = new_zero(ctx, L->out_c, &g->save_mean[j]);
            if (!s) s = new_zero(ctx, L->out_c, &g->save_invstd[j]);
        }
    }
    if (!s) s = new_zero(ctx, 4, &g->result);
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
        if (s == VKR_ERR_OUT_OF_MEMORY && !strstr(vkr_last_error(), "needs"))
            s = vkr_fail(s, "%s: graph at batch %d needs %.1f MiB of device memory: %s", lab, g->batch,
                         g->mem.total / 1048576.0, vkr_last_error());
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
    return j < 0 ? 0 : out_floats(&g->L[j]);
}

vkr_status vkr_graph_download_weights(vkr_graph *g) {
    for (int j = 0; j < g->nl; j++)
        for (int k = 0; k < g->L[j].nparam; k++) {
            vkr_tensor *T = vkr_model_param(g->m, j, k);
            if (!T || !g->param[j][k]) continue;
            vkr_status s = vkr_buffer_download(g->param[j][k], 0, T->data, T->count * 4);
            if (s) return s;
        }
    return VKR_OK;
}

vkr_status vkr_graph_upload_weights(vkr_graph *g) {
    for (int j = 0; j < g->nl; j++)
        for (int k = 0; k < g->L[j].nparam; k++) {
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
    for (int j = 0; j < g->nl; j++)
        for (int k = 0; k < g->L[j].nparam; k++)
            if (g->L[j].param[k] == t) {
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
    for (int j = 0; j < g->nl; j++) {
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
    if (j < 0 || j >= g->nl) return 0;
    const vkr_layer *L = &g->L[j];
    double f = 0;
    if (L->type == VKR_LAYER_CONV2D) f = 2.0 * L->out_c * L->out_h * L->out_w * (double)L->in_c * L->kernel[0] * L->kernel[1];
    if (L->type == VKR_LAYER_DENSE) f = 2.0 * L->out_c * (double)L->in_c;
    if (backward && g->main.built && g->main.runbw && g->main.runbw[j]) {
        int din = L->ninputs && g->main.runbw[L->input_idx[0]];
        *backward = f * ((g->pt[j] ? 1 : 0) + (din ? 1 : 0));
    }
    return f;
}

void vkr_graph_layer_shape(const vkr_graph *g, int j, int *c, int *h, int *w, int *rank) {
    const vkr_layer *L = &g->L[j < 0 ? 0 : j >= g->nl ? g->nl - 1 : j];
    if (c) *c = L->out_c;
    if (h) *h = L->out_h;
    if (w) *w = L->out_w;
    if (rank) *rank = L->out_rank;
}
