/* Graph runtime: less work per step.
 *
 * BatchNorm folding: an inference-mode BatchNorm b whose input is a conv2d j (linear
 * activation, b its only consumer), with neither trained, computes
 *     y = (conv(x, W) + bias - mean) * s + beta,   s = gamma / sqrt(var + eps)   (per channel)
 *       = conv(x, W * s) + (bias - mean) * s + beta
 * so conv j runs with W' = W * s and b' = (bias - mean) * s + beta and b is skipped.  The
 * folded values are computed on the host in double from the model's tensors whenever the
 * weights are uploaded (graph creation, vkr_graph_upload_weights); nothing on the device
 * changes them (neither layer is trained, and only batch-statistics BN updates running
 * stats).  Backward is exact too: the input gradient of BN is dout * s, and conv's input
 * gradient W^T (s * dout) = W'^T dout, so b's gradient buffer becomes j's and conv j's
 * backward-data uses W'.  The device copy of W / bias then holds W' / b' (no second copy of
 * the frozen weights); vkr_graph_download_weights skips those slots (the host copy is the
 * truth), and a plan whose output is conv j itself (b not run) gets the unfolded weights in
 * separate buffers, uploaded when first needed.
 *
 * ReLU epilogues: a ReLU whose input is the only consumer of a conv2d / dense (linear) or add
 * output, run in place, is done in that layer's epilogue (GEMM or add shader); its forward
 * dispatch is skipped.  Its backward is unchanged (it reads the ReLU output, which is what the
 * fused layer wrote).  Neither the conv, dense nor add backward reads its own output. */
#include "graph_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int fold_disabled(const vkr_graph *g) {
    const char *e = getenv("VKRUN_NO_FOLD");
    return g->o.no_fuse || (e && *e && strcmp(e, "0") != 0);
}

vkr_status vkr__fold_setup(vkr_graph *g) {
    int nl = g->nl;
    g->fold_bn = malloc(nl * sizeof *g->fold_bn);
    g->fold_conv = malloc(nl * sizeof *g->fold_conv);
    int *ncons = calloc(nl, sizeof *ncons);
    if (!g->fold_bn || !g->fold_conv || !ncons) {
        free(ncons);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int j = 0; j < nl; j++) g->fold_bn[j] = g->fold_conv[j] = -1;
    for (int j = 0; j < nl; j++)
        for (int k = 0; k < g->L[j].ninputs; k++) ncons[g->L[j].input_idx[k]]++;
    for (int b = 0; b < nl && !fold_disabled(g); b++) {
        const vkr_layer *B = &g->L[b];
        if (B->type != VKR_LAYER_BATCHNORM || B->ninputs != 1 || g->pt[b] || g->bm[b]) continue;
        int j = B->input_idx[0];
        const vkr_layer *C = &g->L[j];
        if (C->type != VKR_LAYER_CONV2D || C->activation != VKR_ACT_LINEAR || g->pt[j] || ncons[j] != 1) continue;
        if (C->out_c != B->out_c || !vkr_model_param(g->m, j, VKR_PARAM_WEIGHT)) continue;
        int ok = 1;
        for (int k = 0; k < 4; k++) ok &= vkr_model_param(g->m, b, k) != NULL;
        if (!ok) continue;
        g->fold_bn[j] = b;
        g->fold_conv[b] = j;
        if (!C->use_bias) g->mem.weights += (uint64_t)C->out_c * 4;
    }
    free(ncons);
    return VKR_OK;
}

void vkr__fold_free(vkr_graph *g) {
    for (int j = 0; j < g->nl; j++) {
        if (g->fold_bias) vkr_buffer_destroy(g->fold_bias[j]);
        if (g->raw) vkr_buffer_destroy(g->raw[j][0]), vkr_buffer_destroy(g->raw[j][1]);
    }
    free(g->fold_bn);
    free(g->fold_conv);
    free(g->fold_bias);
    free(g->raw);
    g->fold_bn = g->fold_conv = NULL;
    g->fold_bias = NULL;
    g->raw = NULL;
}

int vkr__fold_slot(const vkr_graph *g, int j, int k) {
    return g->fold_bn && g->fold_bn[j] >= 0 && (k == VKR_PARAM_WEIGHT || k == VKR_PARAM_BIAS);
}

/* Host copies of W' and b' of conv j (folded with BN b), in double then rounded once. */
static vkr_status fold_values(const vkr_graph *g, int j, int b, float *w, float *bias) {
    const vkr_tensor *W = vkr_model_param(g->m, j, VKR_PARAM_WEIGHT);
    const vkr_tensor *Bc = g->L[j].use_bias ? vkr_model_param(g->m, j, VKR_PARAM_BIAS) : NULL;
    const vkr_tensor *ga = vkr_model_param(g->m, b, VKR_PARAM_GAMMA), *be = vkr_model_param(g->m, b, VKR_PARAM_BETA);
    const vkr_tensor *mu = vkr_model_param(g->m, b, VKR_PARAM_MEAN), *va = vkr_model_param(g->m, b, VKR_PARAM_VAR);
    uint64_t K = (uint64_t)g->L[j].out_c, per = W->count / K;
    if (per * K != W->count || ga->count < K || be->count < K || mu->count < K || va->count < K ||
        (Bc && Bc->count < K))
        return vkr_fail(VKR_ERR_INVALID, "%s: folding \"%s\" into \"%s\": parameter sizes do not match %d channels",
                        vkr__model_label(g->m), g->L[b].name, g->L[j].name, g->L[j].out_c);
    double eps = (double)(float)g->L[b].epsilon; /* as the BN shader: eps in fp32 */
    for (uint64_t k = 0; k < K; k++) {
        double s = (double)ga->data[k] / sqrt((double)va->data[k] + eps);
        for (uint64_t i = 0; i < per; i++) w[k * per + i] = (float)((double)W->data[k * per + i] * s);
        double b0 = Bc ? (double)Bc->data[k] : 0.0;
        bias[k] = (float)((b0 - (double)mu->data[k]) * s + (double)be->data[k]);
    }
    return VKR_OK;
}

static vkr_status upload_raw(vkr_graph *g, int j) {
    for (int k = 0; k < 2; k++) {
        const vkr_tensor *T = vkr_model_param(g->m, j, k);
        if (!g->raw[j][k] || !T) continue;
        vkr_status s = vkr_buffer_upload(g->raw[j][k], 0, T->data, T->count * 4);
        if (s) return s;
    }
    return VKR_OK;
}

vkr_status vkr__fold_upload(vkr_graph *g) {
    int nl = g->nl;
    if (!g->fold_bias) g->fold_bias = calloc(nl, sizeof *g->fold_bias);
    if (!g->raw) g->raw = calloc(nl, sizeof *g->raw);
    if (!g->fold_bias || !g->raw) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    vkr_status s = VKR_OK;
    for (int j = 0; j < nl && !s; j++) {
        int b = g->fold_bn[j];
        if (b < 0) continue;
        const vkr_tensor *W = vkr_model_param(g->m, j, VKR_PARAM_WEIGHT);
        uint64_t K = (uint64_t)g->L[j].out_c;
        float *w = malloc(W->count * sizeof *w), *bias = malloc(K * sizeof *bias);
        if (!w || !bias) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        if (!s) s = fold_values(g, j, b, w, bias);
        if (!s) s = vkr_buffer_upload(g->param[j][VKR_PARAM_WEIGHT], 0, w, W->count * 4);
        if (!s && g->L[j].use_bias && g->param[j][VKR_PARAM_BIAS])
            s = vkr_buffer_upload(g->param[j][VKR_PARAM_BIAS], 0, bias, K * 4);
        else if (!s) {
            if (!g->fold_bias[j]) s = vkr_buffer_create(g->ctx, K * 4, &g->fold_bias[j]);
            if (!s) s = vkr_buffer_upload(g->fold_bias[j], 0, bias, K * 4);
        }
        if (!s) s = upload_raw(g, j);
        free(w);
        free(bias);
    }
    return s;
}

void vkr__plan_fold(const vkr_graph *g, vkr__plan *P) {
    for (int b = 0; b < g->nl; b++) P->fold[b] = P->live[b] && g->fold_conv && g->fold_conv[b] >= 0;
}

void vkr__plan_fuse_relu(const vkr_graph *g, vkr__plan *P, int j, int p) {
    if (fold_disabled(g)) return;
    const vkr_layer *X = &g->L[p];
    int q = P->fold[p] ? g->fold_conv[p] : p; /* the layer that computes p's value */
    const vkr_layer *Q = &g->L[q];
    int gemm = (Q->type == VKR_LAYER_CONV2D || Q->type == VKR_LAYER_DENSE) && Q->activation == VKR_ACT_LINEAR;
    if (!(gemm && (q == p || X->type == VKR_LAYER_BATCHNORM)) && X->type != VKR_LAYER_ADD) return;
    if (X->type == VKR_LAYER_ADD && X->ninputs != 2) return;
    P->fused[j] = 1;
    P->epi_relu[q] = 1;
}

vkr_status vkr__fold_plan_alloc(vkr_graph *g, vkr__plan *P) {
    for (int j = 0; j < g->nl; j++) {
        int b = g->fold_bn ? g->fold_bn[j] : -1;
        if (b < 0 || !P->live[j] || P->live[b] || g->raw[j][0]) continue;
        for (int k = 0; k < 2; k++) {
            const vkr_tensor *T = vkr_model_param(g->m, j, k);
            if (!T || (k == VKR_PARAM_BIAS && !g->L[j].use_bias)) continue;
            vkr_status s = vkr_buffer_create(g->ctx, T->count * 4, &g->raw[j][k]);
            if (s) return s;
        }
        vkr_status s = upload_raw(g, j);
        if (s) return s;
    }
    return VKR_OK;
}

void vkr__conv_params(vkr_graph *g, const vkr__plan *P, int j, vkr_buffer **w, vkr_buffer **b) {
    const vkr_layer *L = &g->L[j];
    int fb = g->fold_bn ? g->fold_bn[j] : -1;
    *w = g->param[j][VKR_PARAM_WEIGHT];
    *b = L->use_bias ? g->param[j][VKR_PARAM_BIAS] : NULL;
    if (fb < 0) return;
    if (P->live[fb]) { /* folded: BN b is not run */
        if (!L->use_bias) *b = g->fold_bias[j];
    } else { /* this plan outputs conv j itself */
        *w = g->raw[j][VKR_PARAM_WEIGHT];
        *b = L->use_bias ? g->raw[j][VKR_PARAM_BIAS] : NULL;
    }
}
