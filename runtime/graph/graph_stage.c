/* Graph runtime: a step's host transfers inside its one submission.
 *
 * A call records forward, loss, backward and the optimizer updates into one command buffer,
 * submitted once (graph_exec.c), with no host round trip inside it.  Around it, the input and
 * targets go in and the loss / correct count come out.  Where the graph's buffers are in
 * host-visible memory (llvmpipe, integrated GPUs, resizable BAR) those are plain memcpys.
 * Otherwise a synchronous vkr_buffer_upload / download would be a submission and a wait of its
 * own each; instead they are copied into mapped host buffers and the copies are recorded at the
 * start and the end of the step's command buffer: one submission, one wait per step. */
#include "graph/graph_internal.h"
#include "core/internal.h"

#include <string.h>

static _Thread_local int t_force;

void vkr__graph_force_staging(int on) { t_force = on; }

vkr_status vkr__stage_create(vkr_graph *g) {
    g->staged = t_force || !vkr__buffer_map(g->input) || !vkr__buffer_map(g->targets) || !vkr__buffer_map(g->result);
    if (!g->staged) return VKR_OK;
    vkr_status s = vkr__buffer_create_host(g->ctx, vkr_buffer_size(g->input), &g->stage_in);
    if (!s) s = vkr__buffer_create_host(g->ctx, vkr_buffer_size(g->targets), &g->stage_tg);
    if (!s) s = vkr__buffer_create_host(g->ctx, vkr_buffer_size(g->result), &g->stage_res);
    return s;
}

void vkr__stage_free(vkr_graph *g) {
    vkr_buffer_destroy(g->stage_in);
    vkr_buffer_destroy(g->stage_tg);
    vkr_buffer_destroy(g->stage_res);
    g->stage_in = g->stage_tg = g->stage_res = NULL;
}

vkr_status vkr__stage_in(vkr_graph *g, const float *input, uint64_t in_bytes, const float *targets, uint64_t tg_bytes) {
    vkr_status s;
    if (!g->staged) {
        s = vkr_buffer_upload(g->input, 0, input, in_bytes);
        if (!s && targets) s = vkr_buffer_upload(g->targets, 0, targets, tg_bytes);
        return s;
    }
    memcpy(vkr__buffer_map(g->stage_in), input, in_bytes);
    s = vkr_cmd_copy(g->cmd, g->input, 0, g->stage_in, 0, in_bytes);
    if (!s && targets) {
        memcpy(vkr__buffer_map(g->stage_tg), targets, tg_bytes);
        s = vkr_cmd_copy(g->cmd, g->targets, 0, g->stage_tg, 0, tg_bytes);
    }
    return s;
}

vkr_status vkr__stage_result_record(vkr_graph *g, uint64_t bytes) {
    return g->staged ? vkr_cmd_copy(g->cmd, g->stage_res, 0, g->result, 0, bytes) : VKR_OK;
}

vkr_status vkr__stage_result_read(vkr_graph *g, void *dst, uint64_t bytes) {
    if (!g->staged) return vkr_buffer_download(g->result, 0, dst, bytes);
    memcpy(dst, vkr__buffer_map(g->stage_res), bytes);
    return VKR_OK;
}
