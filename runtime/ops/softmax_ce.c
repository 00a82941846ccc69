/* Fused softmax + categorical cross-entropy (shaders/softmax.comp then
 * shaders/softmax_ce.comp) and its backward (shaders/softmax_ce_backward.comp). */
#include "op_util.h"
#include "vkr_shader_ids.h"

/* defined in softmax.c */
uint64_t vkr__loss_chunk_floats(const vkr_context *ctx);
vkr_status vkr__loss_row_chunking(const char *op, const vkr_context *ctx, int classes, uint64_t *rows_per_chunk,
                                  uint64_t *align_floats);
vkr_status vkr__softmax_record(vkr_cmd *cmd, const char *op, int batch, int classes, vkr_buffer *out,
                               vkr_buffer *inp);

typedef struct { uint32_t rows, classes, base, batch, flags; } ce_push;
typedef struct { uint32_t n; float batch; uint32_t classes, base; } ce_bwd_push;
VKR_PUSH_CHECK(ce_push, softmax_ce);
VKR_PUSH_CHECK(ce_bwd_push, softmax_ce_backward);

vkr_status vkr_softmax_ce_forward(vkr_cmd *cmd, int batch, int classes, vkr_buffer *result, vkr_buffer *probs,
                                  vkr_buffer *logits, vkr_buffer *targets) {
    static const char *op = "softmax_ce_forward";
    vkr_status s;
    if (!cmd) return vkr_fail(VKR_ERR_INVALID, "%s: cmd is NULL", op);
    if (batch <= 0 || classes <= 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: batch (%d) and classes (%d) must be positive", op, batch, classes);
    uint64_t n = (uint64_t)batch * (uint64_t)classes;
    if ((s = vkr__need(op, "result", result, 2)) || (s = vkr__need(op, "probs", probs, n)) ||
        (s = vkr__need(op, "logits", logits, n)) || (s = vkr__need(op, "targets", targets, n)))
        return s;
    if (probs == logits || probs == targets || result == probs || result == logits || result == targets)
        return vkr_fail(VKR_ERR_INVALID, "%s: probs/result must not alias logits, targets or each other", op);
    vkr_context *ctx = vkr__cmd_context(cmd);
    if ((s = vkr__softmax_record(cmd, op, batch, classes, probs, logits))) return s;

    vkr_pipeline_desc d = {VKR_SHADER(softmax_ce)};
    vkr_pipeline *p;
    uint64_t rpc = 1, a = 1;
    if ((s = vkr__loss_row_chunking(op, ctx, classes, &rpc, &a))) return s;
    if ((s = vkr_pipeline_get(ctx, &d, &p))) return s;
    for (uint64_t r0 = 0; r0 < (uint64_t)batch; r0 += rpc) {
        uint64_t rows = (uint64_t)batch - r0 < rpc ? (uint64_t)batch - r0 : rpc;
        uint64_t off = r0 * (uint64_t)classes, aoff = off - off % a, span = off - aoff + rows * (uint64_t)classes;
        ce_push pc = {
            (uint32_t)rows, (uint32_t)classes, (uint32_t)(off - aoff), (uint32_t)batch,
            (r0 == 0 ? 1u : 0u) | (r0 + rows >= (uint64_t)batch ? 2u : 0u)};
        vkr_binding bind[4] = {vkr__range(result, 0, 2), vkr__range(logits, aoff, span),
                               vkr__range(targets, aoff, span), vkr__range(probs, aoff, span)};
        if ((s = vkr_cmd_dispatch(cmd, p, bind, 4, 0x1, &pc, 1, 1, 1))) return s;
    }
    return VKR_OK;
}

vkr_status vkr_softmax_ce_backward(vkr_cmd *cmd, int batch, int classes, vkr_buffer *dlogits, vkr_buffer *probs,
                                   vkr_buffer *targets) {
    static const char *op = "softmax_ce_backward";
    vkr_status s;
    if (!cmd) return vkr_fail(VKR_ERR_INVALID, "%s: cmd is NULL", op);
    if (batch <= 0 || classes <= 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: batch (%d) and classes (%d) must be positive", op, batch, classes);
    if (!dlogits) return VKR_OK; /* NULL gradient output: nothing to compute */
    uint64_t n = (uint64_t)batch * (uint64_t)classes;
    if ((s = vkr__need(op, "dlogits", dlogits, n)) || (s = vkr__need(op, "probs", probs, n)) ||
        (s = vkr__need(op, "targets", targets, n)))
        return s;
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline_desc d = {VKR_SHADER(softmax_ce_backward)};
    vkr_pipeline *p;
    if ((s = vkr_pipeline_get(ctx, &d, &p))) return s;
    /* whole rows per dispatch: each element needs its row's target sum */
    uint64_t rpc = 1, a = 1;
    if ((s = vkr__loss_row_chunking(op, ctx, classes, &rpc, &a))) return s;
    for (uint64_t r0 = 0; r0 < (uint64_t)batch; r0 += rpc) {
        uint64_t rows = (uint64_t)batch - r0 < rpc ? (uint64_t)batch - r0 : rpc;
        uint64_t off = r0 * (uint64_t)classes, aoff = off - off % a, cnt = rows * (uint64_t)classes,
                 span = off - aoff + cnt;
        ce_bwd_push pc = {(uint32_t)cnt, (float)batch, (uint32_t)classes, (uint32_t)(off - aoff)};
        vkr_binding bind[3] = {vkr__range(dlogits, aoff, span), vkr__range(probs, aoff, span),
                               vkr__range(targets, aoff, span)};
        uint32_t gx, gy;
        vkr_grid_1d(cnt, 256, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, p, bind, 3, 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}
