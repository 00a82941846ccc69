/* Graph runtime: creation (weights uploaded once, planned buffers), inference,
 * training steps, weight download, timings. Recording is in graph_exec.c,
 * buffer planning in graph_plan.c. */
#include "graph_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static uint64_t out_floats(const vkr_layer *L) { return (uint64_t)L->out_c * L->out_h * L->out_w; }

void vkr_graph_destroy(vkr_graph *g) {
    if (!g) return;
    if (g->cmd) vkr_cmd_free(g->cmd);
    vkr__plan_free(&g->main);
    vkr__plan_free(&g->infer);
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
    vkr__stage_free(g);
    vkr_buffer_destroy(g->input);
    vkr_buffer_destroy(g->targets);
    vkr_buffer_destroy(g->probs);
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
    if ((s = vkr__fold_setup(g))) {
        vkr_graph_destroy(g);
        return s;
    }
    if (o.training) s = vkr__plan_build(g, &g->main, g->target, 1, 1);
    else s = vkr__plan_build(g, &g->main, g->target, 0, 0);
    if (s) {
        vkr_graph_destroy(g);
        return s;
    }
    /* memory figures */
    vkr_graph_memory *mem = &g->mem;
    for (int t = 0; t < m->ntensors; t++) mem->weights += m->tensors[t].count * 4;
    if (o.training) {
        int moments = o.optimizer == VKR_OPTIM_ADAM ? 2 : 1;
        for (int j = 0; j < g->nl; j++) {
            if (!g->pt[j]) continue;
            for (int k = 0; k < g->L[j].nparam; k++) {
                const vkr_tensor *Tt = vkr_model_param(m, j, k);
                if (Tt && vkr_param_slot_trainable(g->L[j].type, k)) mem->train_state += Tt->count * 4 * (1 + moments);
            }
            if (g->bm[j]) mem->train_state += 2ull * g->L[j].out_c * 4;
        }
    }
    uint64_t tfl = g->loss == VKR_LOSS_SOFTMAX_CE ? (uint64_t)g->classes : g->target_floats;
    mem->train_state += (uint64_t)g->batch * g->classes * 4 + 16;
    mem->input = (uint64_t)g->batch * m->in_c * h * w * 4 + (uint64_t)g->batch * tfl * 4;
    mem->activations = g->main.planned_floats * 4;
    mem->naive = g->main.naive_floats * 4;
    mem->total = mem->weights + mem->train_state + mem->activations + mem->input;
    *out = g;
    return VKR_OK;
}

vkr_status vkr_graph_plan(vkr_model *m, const vkr_graph_opts *opts, vkr_graph_memory *mem) {
    vkr_graph *g;
    vkr_status s = graph_setup(m, opts, &g);
    if (s) return s;
    *mem = g->mem;
    vkr_graph_destroy(g);
    return VKR_OK;
}

static vkr_status new_zero(vkr_context *ctx, uint64_t floats, vkr_buffer **b) {
    vkr_status s = vkr_buffer_create(ctx, (floats ? floats : 1) * 4, b);
    if (!s) s = vkr_buffer_fill_zero(*b);
    return s;
}

static uint64_t device_heap(const vkr_context *ctx) {
    const vkr_device_info *I = vkr_context_device(ctx);
    uint64_t best = 0;
    for (uint32_t i = 0; i < I->heap_count; i++)
        if (I->heap_device_local[i] && I->heap_size[i] > best) best = I->heap_size[i];
    return best;
}

vkr_status vkr_graph_create(vkr_context *ctx, vkr_model *m, const vkr_graph_opts *opts, vkr_graph **out) {
    *out = NULL;
    vkr_graph *g;
    vkr_status s = graph_setup(m, opts, &g);
    if (s) return s;
    g->ctx = ctx;
    if (!vkr_context_device(ctx)->timestamps) g->o.timing = 0; /* layer_times then reports it */
    const char *lab = vkr__model_label(m);
    uint64_t heap = device_heap(ctx), used = vkr_device_bytes_allocated(ctx);
    if (heap && g->mem.total + used > heap) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY,
                     "%s: batch %d at %dx%d needs %.1f MiB of device memory (weights %.1f, activations %.1f planned, "
                     "training state %.1f, input %.1f) but the device heap has %.1f MiB (%.1f in use); use a smaller batch",
                     lab, g->batch, g->h, g->w, g->mem.total / 1048576.0, g->mem.weights / 1048576.0,
                     g->mem.activations / 1048576.0, g->mem.train_state / 1048576.0, g->mem.input / 1048576.0,
                     heap / 1048576.0, used / 1048576.0);
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
    uint64_t tfl = g->loss == VKR_LOSS_SOFTMAX_CE ? (uint64_t)g->classes : g->target_floats;
    if (!s) s = new_zero(ctx, (uint64_t)g->batch * m->in_c * g->h * g->w, &g->input);
    if (!s) s = new_zero(ctx, (uint64_t)g->batch * tfl, &g->targets);
    if (!s) s = new_zero(ctx, (uint64_t)g->batch * g->classes, &g->probs);
    if (!s) s = new_zero(ctx, 4, &g->result);
    if (!s) s = vkr__stage_create(g);
    if (!s) s = vkr__fold_upload(g);
    if (!s) s = vkr__plan_alloc(g, &g->main);
    if (!s) s = vkr_cmd_begin(ctx, &g->cmd);
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

vkr_status vkr_graph_forward(vkr_graph *g, const float *input, int n, const char *layer, float *out) {
    int j = layer ? vkr_model_find_layer(g->m, layer) : g->target;
    if (j < 0) return vkr_fail(VKR_ERR_NOT_FOUND, "%s: no layer named \"%s\"", vkr__model_label(g->m), layer);
    if (n < 1 || n > g->batch)
        return vkr_fail(VKR_ERR_INVALID, "graph forward: n = %d outside [1, batch %d]", n, g->batch);
    if (j == 0) { /* the input itself */
        memcpy(out, input, (size_t)n * out_floats(&g->L[0]) * sizeof(float));
        return VKR_OK;
    }
    vkr__plan *P;
    if (!g->o.training && g->main.built && g->main.target == j) {
        P = &g->main;
    } else {
        P = &g->infer;
        if (!P->built || P->target != j || P->with_loss) {
            vkr_status s = vkr__plan_build(g, P, j, 0, 0);
            if (!s) s = vkr__plan_alloc(g, P);
            if (s) {
                vkr__plan_free(P);
                return s;
            }
        }
    }
    return vkr__graph_run(g, P, input, NULL, n, 0, NULL, NULL, out);
}

static vkr_status need_loss_plan(vkr_graph *g, vkr__plan **P) {
    if (g->o.training) {
        *P = &g->main;
        return VKR_OK;
    }
    /* inference graph: a loss plan without backward (lazily) */
    *P = &g->infer;
    if (g->infer.built && g->infer.with_loss) return VKR_OK;
    vkr_status s = vkr__plan_build(g, &g->infer, g->target, 1, 0);
    if (!s) s = vkr__plan_alloc(g, &g->infer);
    if (s) vkr__plan_free(&g->infer);
    return s;
}

vkr_status vkr_graph_train_step(vkr_graph *g, const float *input, const float *targets, int n, float *loss,
                                int *correct) {
    if (!g->o.training) return vkr_fail(VKR_ERR_INVALID, "train_step on a graph created without training");
    return vkr__graph_run(g, &g->main, input, targets, n, 3, loss, correct, NULL);
}

vkr_status vkr_graph_backward_only(vkr_graph *g, const float *input, const float *targets, int n, float *loss,
                                   int *correct) {
    if (!g->o.training) return vkr_fail(VKR_ERR_INVALID, "backward on a graph created without training");
    return vkr__graph_run(g, &g->main, input, targets, n, 2, loss, correct, NULL);
}

vkr_status vkr_graph_eval_batch(vkr_graph *g, const float *input, const float *targets, int n, float *loss,
                                int *correct) {
    vkr__plan *P;
    vkr_status s = need_loss_plan(g, &P);
    if (s) return s;
    return vkr__graph_run(g, P, input, targets, n, 1, loss, correct, NULL);
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
