/* Global average pooling, forward and backward (shaders/gap_*.comp).
 * out[N,C] = mean over HW of inp[N,C,HW]: planes with HW <= GAP_SMALL_HW are
 * summed by one invocation each (gap_forward_small), larger planes by one
 * workgroup each with a shared-memory tree reduction (gap_forward).  Tensors
 * over maxStorageBufferRange are split into ranges of whole planes, each bound
 * as a sub-range (offsets aligned down, the remainder passed as a base). */
#include "op_util.h"
#include "vkr_shader_ids.h"

#define GAP_SMALL_HW 256u

uint64_t vkr__bn_chunk_limit(const vkr_context *ctx); /* batchnorm.c (honours the test override) */
void vkr__bn_magic(uint32_t d, uint32_t mg[2]);

typedef struct { uint32_t hw, planes, base_o, base_x; } gap_fwd_push;
typedef struct { uint32_t hw, planes, base_i, base_o, mg[2]; } gap_bwd_push;
VKR_PUSH_CHECK(gap_fwd_push, gap_forward);
VKR_PUSH_CHECK(gap_fwd_push, gap_forward_small);
VKR_PUSH_CHECK(gap_bwd_push, gap_backward);

static vkr_status gap_check(vkr_cmd *cmd, const char *op, int n, int c, int hw, uint64_t *planes, uint64_t *per,
                            uint64_t *af) {
    if (!cmd) return vkr_fail(VKR_ERR_INVALID, "%s: command stream is NULL", op);
    if (n <= 0 || c <= 0 || hw <= 0) return vkr_fail(VKR_ERR_INVALID, "%s: non-positive shape n=%d c=%d hw=%d", op, n, c, hw);
    vkr_context *ctx = vkr__cmd_context(cmd);
    *af = ctx->info.min_storage_buffer_offset_alignment / 4;
    if (*af < 1) *af = 1;
    uint64_t lim = vkr__bn_chunk_limit(ctx);
    *planes = (uint64_t)n * (uint64_t)c;
    if ((uint64_t)hw + *af - 1 > lim)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: one plane of %d floats exceeds the device's maxStorageBufferRange", op, hw);
    *per = (lim - (*af - 1)) / (uint64_t)hw; /* planes per chunk; the output range (per floats) fits as well */
    if (*per > *planes) *per = *planes;
    return VKR_OK;
}

static vkr_binding bind_at(vkr_buffer *b, uint64_t first, uint64_t count, uint64_t af, uint32_t *base) {
    uint64_t f0 = first / af * af;
    *base = (uint32_t)(first - f0);
    vkr_binding r = {b, f0 * 4, (count + *base) * 4};
    return r;
}

vkr_status vkr_gap_forward(vkr_cmd *cmd, int n, int c, int hw, vkr_buffer *out, vkr_buffer *inp) {
    const char *op = "gap_forward";
    uint64_t planes, per, af;
    vkr_status s;
    if ((s = gap_check(cmd, op, n, c, hw, &planes, &per, &af))) return s;
    if ((s = vkr__need(op, "out", out, planes)) || (s = vkr__need(op, "inp", inp, planes * (uint64_t)hw))) return s;
    int small = (uint32_t)hw <= GAP_SMALL_HW;
    vkr_pipeline *pp;
    vkr_pipeline_desc d = small ? (vkr_pipeline_desc){VKR_SHADER(gap_forward_small)} : (vkr_pipeline_desc){VKR_SHADER(gap_forward)};
    if ((s = vkr_pipeline_get(vkr__cmd_context(cmd), &d, &pp))) return s;
    for (uint64_t q0 = 0; q0 < planes; q0 += per) {
        uint64_t np = planes - q0 < per ? planes - q0 : per;
        gap_fwd_push pc = {(uint32_t)hw, (uint32_t)np, 0, 0};
        vkr_binding b[2] = {bind_at(out, q0, np, af, &pc.base_o), bind_at(inp, q0 * (uint64_t)hw, np * (uint64_t)hw, af, &pc.base_x)};
        uint32_t gx, gy;
        vkr_grid_1d(np, small ? 64 : 1, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, pp, b, 2, 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}

vkr_status vkr_gap_backward(vkr_cmd *cmd, int n, int c, int hw, vkr_buffer *dinp, vkr_buffer *dout) {
    const char *op = "gap_backward";
    uint64_t planes, per, af;
    vkr_status s;
    if ((s = gap_check(cmd, op, n, c, hw, &planes, &per, &af))) return s;
    if (!dinp) return vkr__need(op, "dout", dout, planes);
    if ((s = vkr__need(op, "dinp", dinp, planes * (uint64_t)hw)) || (s = vkr__need(op, "dout", dout, planes))) return s;
    if (dinp == dout) return vkr_fail(VKR_ERR_INVALID, "%s: dinp must not be the same buffer as dout", op);
    vkr_pipeline *pp;
    vkr_pipeline_desc d = {VKR_SHADER(gap_backward)};
    if ((s = vkr_pipeline_get(vkr__cmd_context(cmd), &d, &pp))) return s;
    for (uint64_t q0 = 0; q0 < planes; q0 += per) {
        uint64_t np = planes - q0 < per ? planes - q0 : per;
        gap_bwd_push pc = {(uint32_t)hw, (uint32_t)np, 0, 0, {0, 0}};
        vkr__bn_magic((uint32_t)hw, pc.mg);
        vkr_binding b[2] = {bind_at(dinp, q0 * (uint64_t)hw, np * (uint64_t)hw, af, &pc.base_i), bind_at(dout, q0, np, af, &pc.base_o)};
        uint32_t gx, gy;
        vkr_grid_1d((np * (uint64_t)hw + 3) / 4, 256, &gx, &gy); /* GAP_RUN = 4 per invocation */
        if ((s = vkr_cmd_dispatch(cmd, pp, b, 2, 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}
