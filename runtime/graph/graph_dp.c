/* Graph runtime: gradients in and out and the optimizer update alone, for data-parallel
 * training (include/vkrun_model.h; runtime/train/fit_dp.c sums them over the ranks). */
#include "graph/graph_internal.h"

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
