/* Depthwise convolution (groups == c == k), shaders/dw_forward.comp, dw_bwd_data.comp,
 * dw_bwd_weight.comp: direct kernels (a depthwise conv has R*S MACs per output, too few for a
 * GEMM).  Forward: DW_RUN outputs of a row per invocation; data gradient: DW_RUN input pixels
 * of a row and a column phase (iw mod stride) per invocation; weight gradient:
 * one workgroup per channel and group of DW_TAPS taps, each invocation a run of output positions,
 * the partials folded by shared-memory trees (no atomics).  Batches over maxStorageBufferRange
 * run in chunks of images bound as sub-ranges (the GEMM layer's chunk plan); later chunks add
 * their weight-gradient partial (flags bit 3). */
#include "gemm_conv.h"
#include "vkr_shader_ids.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    int32_t nb, C, H, W, OH, OW, R, S;
    int32_t sh, sw, pt, pl, dh, dw;
    int32_t offI, offO;
    int32_t flags;
    int32_t pad_;
    uint32_t mg_a[2], mg_h[2], mg_c[2]; /* magic divisors of the invocation index (shaders/dw_common.glsl) */
} dw_push;

void vkr__bn_magic(uint32_t d, uint32_t mg[2]); /* batchnorm.c */

/* the magic divisors of dw_split: blocks per row, rows per plane, C */
static void set_magic(dw_push *pc, uint32_t blocks, uint32_t rows) {
    vkr__bn_magic(blocks, pc->mg_a);
    vkr__bn_magic(rows, pc->mg_h);
    vkr__bn_magic((uint32_t)pc->C, pc->mg_c);
}
VKR_PUSH_CHECK(dw_push, dw_forward);
VKR_PUSH_CHECK(dw_push, dw_bwd_data);
VKR_PUSH_CHECK(dw_push, dw_bwd_weight);

#define DW_RUN 8  /* shaders/dw_common.glsl */
#define DW_TAPS 8 /* shaders/dw_bwd_weight.comp: taps per workgroup */

static dw_push push_of(const vkr_conv2d_shape *p, int nb) {
    dw_push pc = {nb, p->c, p->h, p->w, vkr_conv2d_out_h(p), vkr_conv2d_out_w(p), p->r, p->s,
                  p->stride_h, p->stride_w, p->pad_t, p->pad_l, vkr_conv2d_dil_h(p), vkr_conv2d_dil_w(p), 0, 0, 0,
                  0, {0, 0}, {0, 0}, {0, 0}};
    return pc;
}

static vkr_status pipe(vkr_cmd *cmd, vkr_pipeline_desc d, vkr_pipeline **out) {
    return vkr_pipeline_get(vkr__cmd_context(cmd), &d, out);
}

vkr_status vkr__dw_forward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out, vkr_buffer *inp,
                           vkr_buffer *weight, vkr_buffer *bias, int epi) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    uint64_t chw = (uint64_t)p->c * p->h * p->w, cohw = (uint64_t)p->c * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    int nb = 1;
    vkr_pipeline *pp;
    vkr_status s;
    if ((s = vkr__gemm_plan_chunk(op, ctx, chw > cohw ? chw : cohw, p->n, &nb)) ||
        (s = pipe(cmd, (vkr_pipeline_desc){VKR_SHADER(dw_forward)}, &pp)))
        return s;
    char label[64];
    snprintf(label, sizeof label, "%s forward (depthwise)", op);
    for (int i0 = 0; i0 < p->n; i0 += nb) {
        int cnt = p->n - i0 < nb ? p->n - i0 : nb;
        dw_push pc = push_of(p, cnt);
        pc.flags = (bias ? 1 : 0) | (epi & (VKR__EPI_RELU | VKR__EPI_BN));
        set_magic(&pc, (uint32_t)((pc.OW + DW_RUN - 1) / DW_RUN), (uint32_t)pc.OH);
        vkr_binding b[4] = {vkr__gemm_sub_binding(ctx, out, i0 * cohw, cnt * cohw, &pc.offO),
                            vkr__gemm_sub_binding(ctx, inp, i0 * chw, cnt * chw, &pc.offI), vkr__whole(weight),
                            vkr__whole(bias ? bias : weight)};
        uint32_t gx, gy;
        vkr_grid_1d((uint64_t)cnt * p->c * pc.OH * ((pc.OW + DW_RUN - 1) / DW_RUN), 64, &gx, &gy);
        vkr_cmd_label(cmd, label);
        if ((s = vkr_cmd_dispatch(cmd, pp, b, 4, 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}

vkr_status vkr__dw_backward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *dinp,
                            vkr_buffer *dweight, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *weight) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    uint64_t chw = (uint64_t)p->c * p->h * p->w, cohw = (uint64_t)p->c * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    int nb = 1;
    vkr_pipeline *pd = NULL, *pw = NULL;
    vkr_status s;
    if ((s = vkr__gemm_plan_chunk(op, ctx, chw > cohw ? chw : cohw, p->n, &nb)) ||
        (dinp && (s = pipe(cmd, (vkr_pipeline_desc){VKR_SHADER(dw_bwd_data)}, &pd))) ||
        (dweight && (s = pipe(cmd, (vkr_pipeline_desc){VKR_SHADER(dw_bwd_weight)}, &pw))))
        return s;
    char label[64];
    for (int i0 = 0; i0 < p->n; i0 += nb) {
        int cnt = p->n - i0 < nb ? p->n - i0 : nb;
        dw_push pc = push_of(p, cnt);
        uint32_t gx, gy;
        if (dinp) {
            vkr_binding b[3] = {vkr__gemm_sub_binding(ctx, dinp, i0 * chw, cnt * chw, &pc.offI),
                                vkr__gemm_sub_binding(ctx, dout, i0 * cohw, cnt * cohw, &pc.offO), vkr__whole(weight)};
            uint64_t nj = (uint64_t)(p->w + p->stride_w - 1) / p->stride_w; /* columns per phase */
            uint64_t blocks = (uint64_t)p->stride_w * ((nj + DW_RUN - 1) / DW_RUN);
            set_magic(&pc, (uint32_t)blocks, (uint32_t)p->h);
            vkr_grid_1d((uint64_t)cnt * p->c * p->h * blocks, 64, &gx, &gy);
            snprintf(label, sizeof label, "%s backward-data (depthwise)", op);
            vkr_cmd_label(cmd, label);
            if ((s = vkr_cmd_dispatch(cmd, pd, b, 3, 0x1, &pc, gx, gy, 1))) return s;
        }
        if (dweight) {
            pc.flags = i0 > 0 ? 8 : 0;
            vkr_binding b[3] = {vkr__whole(dweight), vkr__gemm_sub_binding(ctx, dout, i0 * cohw, cnt * cohw, &pc.offO),
                                vkr__gemm_sub_binding(ctx, inp, i0 * chw, cnt * chw, &pc.offI)};
            vkr_grid_1d((uint64_t)p->c * ((p->r * p->s + DW_TAPS - 1) / DW_TAPS), 1, &gx, &gy);
            snprintf(label, sizeof label, "%s backward-weight (depthwise)", op);
            vkr_cmd_label(cmd, label);
            if ((s = vkr_cmd_dispatch(cmd, pw, b, 3, 0x1, &pc, gx, gy, 1))) return s;
        }
    }
    return VKR_OK;
}
