/* Graph runtime: gradients in and out and the optimizer update alone, for data-parallel
 * training (include/vkrun_model.h; runtime/train/fit_dp.c sums them over the ranks). */
#include "graph/graph_internal.h"

#include <stdlib.h>
#include <string.h>

/* The i-th trained tensor in backward order: layer *j, slot *k. */
static int grad_at(const vkr_graph *g, int i, int *j, int *k) {
    if (!g->o.training || !g->grad) return 0;
    for (int l = g->nlayers - 1; l >= 0; l--) {
        if (!g->trained[l]) continue;
        for (int s = 0; s < g->layers[l].nparam && s < VKR_MAX_PARAMS; s++)
            if (g->grad[l][s] && i-- == 0) {
                *j = l;
                *k = s;
                return 1;
            }
    }
    return 0;
}

int vkr_graph_grad_count(const vkr_graph *g) {
    int n = 0, j, k;
    while (grad_at(g, n, &j, &k)) n++;
    return n;
}

uint64_t vkr_graph_grad_floats(const vkr_graph *g, int i) {
    int j, k;
    return grad_at(g, i, &j, &k) ? vkr_model_param(g->m, j, k)->count : 0;
}

vkr_status vkr_graph_grad_read(vkr_graph *g, int i, float *out) {
    int j, k;
    if (!grad_at(g, i, &j, &k)) return vkr_fail(VKR_ERR_INVALID, "graph: no gradient %d", i);
    return vkr_buffer_download(g->grad[j][k], 0, out, vkr_model_param(g->m, j, k)->count * sizeof(float));
}

vkr_status vkr_graph_grad_write(vkr_graph *g, int i, const float *in) {
    int j, k;
    if (!grad_at(g, i, &j, &k)) return vkr_fail(VKR_ERR_INVALID, "graph: no gradient %d", i);
    return vkr_buffer_upload(g->grad[j][k], 0, in, vkr_model_param(g->m, j, k)->count * sizeof(float));
}

vkr_status vkr_graph_apply_update(vkr_graph *g) {
    if (!g->o.training) return vkr_fail(VKR_ERR_INVALID, "apply_update on a graph created without training");
    vkr_status s = vkr__graph_update(g);
    return s ? vkr_fail(s, "%s: optimizer update: %s", vkr__model_label(g->m), vkr_last_error()) : VKR_OK;
}

void vkr_graph_set_grad_hook(vkr_graph *g, const vkr_graph_grad_hook *hook) {
    memset(&g->hook, 0, sizeof g->hook);
    if (hook) g->hook = *hook;
}

void vkr_graph_set_first_image(vkr_graph *g, int first) { g->first_image = first > 0 ? first : 0; }

/* vkr_bn_sync.exchange (layers/layer.h): the stream so far runs, a and b go through the user's
 * exchange on the host, the results are written to out_a, out_b, recording goes on. */
static vkr_status bn_exchange(void *gv, int backward, int c, double *count, vkr_buffer *a, vkr_buffer *b,
                              vkr_buffer *out_a, vkr_buffer *out_b) {
    vkr_graph *g = gv;
    vkr_status s;
    if (c > g->bn_maxc) return vkr_fail(VKR_ERR_INVALID, "synchronized BatchNorm: %d channels > %d", c, g->bn_maxc);
    if (g->mb_n < g->call_n)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "synchronized BatchNorm with micro-batches (%d of the step's %d images "
                        "per submission): not supported; a smaller --batch or more ranks fit the device at once",
                        g->mb_n, g->call_n);
    if (g->o.timing) return vkr_fail(VKR_ERR_UNSUPPORTED, "synchronized BatchNorm with per-layer timing: not supported");
    float *h = g->bn_host;
    size_t bytes = (size_t)c * sizeof(float);
    if ((s = vkr_cmd_submit(g->cmd))) {
        vkr_cmd_reset(g->cmd);
        return s;
    }
    if (!(s = vkr_buffer_download(a, 0, h, bytes)) && !(s = vkr_buffer_download(b, 0, h + c, bytes)) &&
        !(s = g->bn_sync.exchange(g->bn_sync.user, backward, c, count, h, h + c)) &&
        !(s = vkr_buffer_upload(out_a, 0, h, bytes)))
        s = vkr_buffer_upload(out_b, 0, h + c, bytes);
    vkr_status r = vkr_cmd_reset(g->cmd);
    return s ? s : r;
}

vkr_status vkr_graph_set_bn_sync(vkr_graph *g, const vkr_graph_bn_sync *sync) {
    memset(&g->bn_sync, 0, sizeof g->bn_sync);
    if (!sync || !sync->exchange) return VKR_OK;
    if (!g->o.training) return vkr_fail(VKR_ERR_INVALID, "bn_sync on a graph created without training");
    int maxc = 0;
    for (int j = 0; j < g->nlayers; j++)
        if (g->batch_stats[j] && g->layers[j].out_c > maxc) maxc = g->layers[j].out_c;
    if (maxc > g->bn_maxc) {
        for (int k = 0; k < 4; k++) {
            vkr_buffer_destroy(g->bn_lsync.tmp[k]);
            g->bn_lsync.tmp[k] = NULL;
        }
        free(g->bn_host);
        g->bn_maxc = 0;
        g->bn_host = malloc(2 * sizeof(float) * (size_t)maxc);
        if (!g->bn_host) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        for (int k = 0; k < 4; k++) {
            vkr_status s = vkr__zeros(g->ctx, (uint64_t)maxc, &g->bn_lsync.tmp[k]);
            if (s) return s;
        }
        g->bn_maxc = maxc;
    }
    g->bn_lsync.graph = g;
    g->bn_lsync.exchange = bn_exchange;
    g->bn_sync = *sync;
    return VKR_OK;
}

/* The forward exchange of BatchNorm j without images, and its running-statistics update with the
 * global batch's statistics (recorded), as the ranks with images update theirs
 * (layers/batchnorm.c: the same shape and running-variance convention). */
static vkr_status idle_forward(vkr_graph *g, int j) {
    const vkr_layer *L = &g->layers[j];
    int c = L->out_c;
    double cnt = 0;
    memset(g->bn_host, 0, 2 * sizeof(float) * (size_t)c);
    vkr_status s = g->bn_sync.exchange(g->bn_sync.user, 0, c, &cnt, g->bn_host, g->bn_host + c);
    if (!s) s = vkr_buffer_upload(g->save_mean[j], 0, g->bn_host, (size_t)c * sizeof(float));
    if (!s) s = vkr_buffer_upload(g->save_invstd[j], 0, g->bn_host + c, (size_t)c * sizeof(float));
    vkr_bn_shape p = {1, L->in_c, L->in_h, L->in_w, (float)L->epsilon, (float)L->momentum, 1};
    if (!s) s = vkr_batchnorm_train_running(g->cmd, &p, cnt, g->save_mean[j], g->save_invstd[j], g->param[j][2],
                                            g->param[j][3]);
    return s;
}

vkr_status vkr_graph_bn_sync_idle(vkr_graph *g) {
    if (!g->bn_sync.exchange || g->bn_maxc == 0) return VKR_OK; /* no BatchNorm with batch statistics */
    vkr_status s = VKR_OK;
    if (!g->cmd_fresh && (s = vkr_cmd_reset(g->cmd))) return s;
    g->cmd_fresh = 0;
    for (int j = 0; j < g->nlayers && !s; j++)
        if (g->batch_stats[j]) s = idle_forward(g, j);
    vkr_status u = vkr_cmd_submit(g->cmd); /* the running statistics */
    if (!s) s = u;
    for (int j = g->nlayers - 1; j >= 0 && !s; j--) {
        if (!g->batch_stats[j]) continue;
        int c = g->layers[j].out_c;
        double cnt = 0;
        memset(g->bn_host, 0, 2 * sizeof(float) * (size_t)c);
        s = g->bn_sync.exchange(g->bn_sync.user, 1, c, &cnt, g->bn_host, g->bn_host + c);
    }
    return s;
}
