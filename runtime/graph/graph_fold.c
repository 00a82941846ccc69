/* Graph runtime: less work per step.
 *
 * BatchNorm folding: an inference-mode BatchNorm b whose input is a conv2d j (linear
 * activation, b its only consumer), with neither trained, is computed in the conv's GEMM
 * epilogue: out = ((conv(x, W) + bias) - mean) * g + beta, g = gamma / sqrt(var + eps), the
 * same arithmetic as the two ops (vkr_conv2d_bn_forward), and b is not dispatched.  The
 * per-channel constants [bias, mean, g, beta] are computed on the host (g in double, rounded
 * once) whenever the weights are uploaded (graph creation, vkr_graph_upload_weights); nothing
 * on the device changes them (neither layer is trained; only batch-statistics BN updates
 * running stats).  The weights themselves stay as they are.
 *
 * Why not W' = W * g and b' = (bias - mean) * g + beta in the weights: that is exact in real
 * arithmetic, but each W' and b' is rounded once and the same rounding then enters every pixel
 * of every image (coherent errors that sums over pixels and images do not average out): the
 * gradients of a head trained on a folded ResNet50 base drifted 3x further from the float64
 * reference (ctest python_parity: 7.4e-6 against 2.2e-6) with the features no less accurate.
 *
 * A BatchNorm whose backward runs in the plan (a frozen conv + BN between trained layers) is not
 * folded there: its backward needs nothing from the conv but the plan keeps the unfused pair.
 *
 * ReLU epilogues: a ReLU whose input is the only consumer of a conv2d / dense (linear) or add
 * output (or of a folded BN), run in place, is done in that layer's epilogue (GEMM or add
 * shader); its forward dispatch is skipped.  Its backward is unchanged (it reads the ReLU
 * output, which is what the fused layer wrote); neither the conv, dense nor add backward reads
 * its own output. */
#include "graph/graph_internal.h"
#include "layers/layer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static int fold_disabled(const vkr_graph *g) {
    const char *e = getenv("VKRUN_NO_FOLD");
    return g->o.no_fuse || (e && *e && strcmp(e, "0") != 0);
}

vkr_status vkr__fold_setup(vkr_graph *g) {
    int nl = g->nlayers;
    g->fold_bn = malloc(nl * sizeof *g->fold_bn);
    g->fold_conv = malloc(nl * sizeof *g->fold_conv);
    int *ncons = calloc(nl, sizeof *ncons);
    if (!g->fold_bn || !g->fold_conv || !ncons) {
        free(ncons);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (int j = 0; j < nl; j++) g->fold_bn[j] = g->fold_conv[j] = -1;
    for (int j = 0; j < nl; j++)
        for (int k = 0; k < g->layers[j].ninputs; k++) ncons[g->layers[j].input_idx[k]]++;
    /* The one pair-specific rewrite of the runtime: a BatchNorm's arithmetic done by the conv2d
     * GEMM epilogue (vkr_conv2d_bn_forward), so the two types are named here. */
    for (int b = 0; b < nl && !fold_disabled(g); b++) {
        const vkr_layer *B = &g->layers[b];
        if (B->type != VKR_LAYER_BATCHNORM || B->ninputs != 1 || g->trained[b] || g->batch_stats[b]) continue;
        int j = B->input_idx[0];
        const vkr_layer *C = &g->layers[j];
        if (C->type != VKR_LAYER_CONV2D || C->activation != VKR_ACT_LINEAR || g->trained[j] || ncons[j] != 1) continue;
        if (C->out_c != B->out_c || !vkr_model_param(g->m, j, VKR_PARAM_WEIGHT)) continue;
        int ok = 1;
        for (int k = 0; k < 4; k++) ok &= vkr_model_param(g->m, b, k) != NULL;
        if (!ok) continue;
        g->fold_bn[j] = b;
        g->fold_conv[b] = j;
        g->mem.weights += 4ull * C->out_c * 4; /* the epilogue constants */
    }
    free(ncons);
    return VKR_OK;
}

void vkr__fold_free(vkr_graph *g) {
    for (int j = 0; g->fold_aff && j < g->nlayers; j++) vkr_buffer_destroy(g->fold_aff[j]);
    free(g->fold_bn);
    free(g->fold_conv);
    free(g->fold_aff);
    g->fold_bn = g->fold_conv = NULL;
    g->fold_aff = NULL;
}

/* aff[4][K] of conv j with BN b: conv bias (0 without), mean, gamma / sqrt(var + eps) (double,
 * rounded once), beta. */
static vkr_status fold_values(const vkr_graph *g, int j, int b, float *aff) {
    const vkr_tensor *Bc = g->layers[j].use_bias ? vkr_model_param(g->m, j, VKR_PARAM_BIAS) : NULL;
    const vkr_tensor *ga = vkr_model_param(g->m, b, VKR_PARAM_GAMMA), *be = vkr_model_param(g->m, b, VKR_PARAM_BETA);
    const vkr_tensor *mu = vkr_model_param(g->m, b, VKR_PARAM_MEAN), *va = vkr_model_param(g->m, b, VKR_PARAM_VAR);
    uint64_t K = (uint64_t)g->layers[j].out_c;
    if (ga->count < K || be->count < K || mu->count < K || va->count < K || (Bc && Bc->count < K))
        return vkr_fail(VKR_ERR_INVALID, "%s: folding \"%s\" into \"%s\": parameter sizes do not match %d channels",
                        vkr__model_label(g->m), g->layers[b].name, g->layers[j].name, g->layers[j].out_c);
    double eps = (double)(float)g->layers[b].epsilon; /* as the BN shader: eps in fp32 */
    for (uint64_t k = 0; k < K; k++) {
        aff[k] = Bc ? Bc->data[k] : 0.0f;
        aff[K + k] = mu->data[k];
        aff[2 * K + k] = (float)((double)ga->data[k] / sqrt((double)va->data[k] + eps));
        aff[3 * K + k] = be->data[k];
    }
    return VKR_OK;
}

vkr_status vkr__fold_upload(vkr_graph *g) {
    if (!g->fold_aff) g->fold_aff = calloc(g->nlayers, sizeof *g->fold_aff);
    if (!g->fold_aff) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    vkr_status s = VKR_OK;
    for (int j = 0; j < g->nlayers && !s; j++) {
        int b = g->fold_bn[j];
        if (b < 0) continue;
        uint64_t K = (uint64_t)g->layers[j].out_c;
        float *aff = malloc(4 * K * sizeof *aff);
        if (!aff) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        s = fold_values(g, j, b, aff);
        if (!s && !g->fold_aff[j]) s = vkr_buffer_create(g->ctx, 4 * K * 4, &g->fold_aff[j]);
        if (!s) s = vkr_buffer_upload(g->fold_aff[j], 0, aff, 4 * K * 4);
        free(aff);
    }
    return s;
}

void vkr__plan_fold(const vkr_graph *g, vkr__plan *P) {
    for (int b = 0; b < g->nlayers; b++) P->fold[b] = P->live[b] && !P->run_backward[b] && g->fold_conv && g->fold_conv[b] >= 0;
}

void vkr__plan_fuse_relu(const vkr_graph *g, vkr__plan *P, int j, int p) {
    if (fold_disabled(g)) return;
    int q = P->fold[p] ? g->fold_conv[p] : p; /* the layer that computes p's value (a folded BN's: its conv) */
    const vkr_layer *Q = &g->layers[q];
    if (!vkr__layer_kind(Q->type)->relu_epilogue || Q->activation != VKR_ACT_LINEAR) return;
    P->fused[j] = 1;
    P->epi_relu[q] = 1;
}
