/* Graph runtime: sizing a graph at a micro-batch (the main plan, input / target buffers,
 * accumulation scratch, staging) and the memory figures the planner (graph_micro.c) measures. */
#include "graph/graph_internal.h"

#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"

#define out_floats vkr__layer_out_floats

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
        for (int j = 0; j < g->nlayers; j++) {
            if (!g->trained[j]) continue;
            for (int k = 0; k < g->layers[j].nparam; k++) {
                const vkr_tensor *Tt = vkr_model_param(m, j, k);
                if (!Tt || !vkr_param_slot_trainable(g->layers[j].type, k)) continue;
                mem->train_state += Tt->count * 4 * (1 + moments);
                if (Tt->count > acc[k & 1]) acc[k & 1] = Tt->count;
            }
            if (g->batch_stats[j]) mem->train_state += 2ull * g->layers[j].out_c * 4;
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

vkr_status vkr__zeros(vkr_context *ctx, uint64_t floats, vkr_buffer **b) {
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
    s = vkr__zeros(ctx, (uint64_t)mb * g->m->in_c * g->h * g->w, &g->input);
    if (!s) s = vkr__zeros(ctx, (uint64_t)mb * tfl, &g->targets);
    if (!s) s = vkr__zeros(ctx, (uint64_t)mb * g->classes, &g->probs);
    if (!s && g->o.training && mb < g->step_batch) {
        g->acc_floats[0] = g->acc_floats[1] = 0;
        for (int j = 0; j < g->nlayers; j++)
            for (int k = 0; k < VKR_MAX_PARAMS; k++)
                if (g->grad[j][k]) {
                    uint64_t c = vkr_model_param(g->m, j, k)->count;
                    if (c > g->acc_floats[k & 1]) g->acc_floats[k & 1] = c;
                }
        if (g->acc_floats[0]) s = vkr__zeros(ctx, g->acc_floats[0], &g->acc_w);
        if (!s && g->acc_floats[1]) s = vkr__zeros(ctx, g->acc_floats[1], &g->acc_b);
    }
    if (!s) s = vkr__plan_alloc(g, &g->main);
    if (!s) s = vkr__stage_create(g); /* after input, targets and result exist */
    if (!s && g->mem.scratch) s = vkr_buffer_create(ctx, g->mem.scratch, &g->scratch);
    if (!s && g->cmd && g->scratch) vkr_cmd_set_scratch(g->cmd, g->scratch);
    if (s) vkr__graph_unsize(g);
    return s;
}
