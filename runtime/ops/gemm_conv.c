/* conv2d / dense as implicit GEMMs: kernel variants, operand modes, batch chunks
 * (see gemm_conv.h and shaders/gemm_conv.glsl). */
#include "gemm_conv.h"

#include <stdio.h>
#include <string.h>

enum { DIR_FWD = 0, DIR_DGRAD = 1, DIR_WGRAD = 2 };
/* operand modes of gemm_texel.comp (for C: 0 scalar stores, 1 vec4 along n, 2 vec4 along m) */
enum { MODE_GATHER = 0, MODE_VEC4_K = 1, MODE_VEC4_MN = 2 };
enum { STORE_SCALAR = 0, STORE_VEC4_N = 1, STORE_VEC4_M = 2 };

typedef struct {
    int32_t M, N, Kr;
    int32_t nb, C, H, W;
    int32_t K, R, S;
    int32_t sh, sw, pt, pl;
    int32_t OH, OW;
    int32_t offA, offB, offC, offBias;
    int32_t beta;
    int32_t has_bias; /* bit 0: bias, bit 1: ReLU epilogue, bit 2: BatchNorm epilogue */
    int32_t ph, pw, r0, s0, rr, ss, hh, ww;
} gemm_push;

/* ------------------------------------------------------------ variants */

static _Thread_local vkr_gemm_variant g_force = VKR_GEMM_AUTO;
static _Thread_local uint64_t g_chunk_limit = 0;
static _Thread_local int g_texel_config = -1;
static _Thread_local int g_force_gather = 0;

static const vkr__texel_config k_texel[] = {
    {"gemm_texel", 16, 4, 8, 8},   /* default: 16x4 outputs, 8x8 invocations */
    {"gemm_texel", 16, 4, 32, 2},
    {"gemm_texel_8x4", 8, 4, 8, 8},
    {"gemm_texel_8x8", 8, 8, 8, 8},
    {"gemm_texel_4x8", 4, 8, 8, 8},
};

int vkr__texel_config_count(void) { return (int)(sizeof k_texel / sizeof k_texel[0]); }
const vkr__texel_config *vkr__texel_config_at(int i) {
    return i >= 0 && i < vkr__texel_config_count() ? &k_texel[i] : NULL;
}
void vkr__gemm_force_texel_config(int i) { g_texel_config = i; }
void vkr__gemm_force_gather(int on) { g_force_gather = on; }
void vkr__gemm_set_chunk_limit(uint64_t bytes) { g_chunk_limit = bytes; }

const char *vkr_gemm_variant_name(vkr_gemm_variant v) {
    switch (v) {
    case VKR_GEMM_AUTO: return "auto";
    case VKR_GEMM_TILED: return "tiled";
    case VKR_GEMM_TEXEL: return "texel";
    default: return "?";
    }
}

void vkr_gemm_force_variant(vkr_gemm_variant v) {
    g_force = (v >= VKR_GEMM_AUTO && v < VKR_GEMM_VARIANT_COUNT) ? v : VKR_GEMM_AUTO;
}

vkr_gemm_variant vkr_gemm_pick(const vkr_context *ctx) {
    if (g_force != VKR_GEMM_AUTO) return g_force;
    return ctx && ctx->info.type == VKR_DEVICE_CPU ? VKR_GEMM_TEXEL : VKR_GEMM_TILED;
}

/* Block shape of TEXEL per direction and operand modes, from side-by-side runs on llvmpipe
 * (process CPU time, batch 32, ResNet50 shapes): 16x4 where B is gathered (im2col taps: the
 * vec4 rows of A are reused over 4 gathered columns), 8x8 for the pointwise forward / data
 * gradient (vec4 loads on both sides), 4x8 when the output has at most 4 rows (e.g. the data
 * gradient of a 3-channel input). */
static const vkr__texel_config *texel_config(int dir, int amode, int bmode, int m) {
    (void)amode;
    if (g_texel_config >= 0 && g_texel_config < vkr__texel_config_count()) return &k_texel[g_texel_config];
    if (m <= 4) return &k_texel[4];
    if (bmode == MODE_VEC4_MN && dir != DIR_WGRAD) return &k_texel[3];
    if (bmode == MODE_GATHER) return &k_texel[1];
    return &k_texel[0];
}

/* ------------------------------------------------------------ shapes */

vkr_status vkr__conv_check_shape(const char *op, const vkr_conv2d_shape *p) {
    if (!p) return vkr_fail(VKR_ERR_INVALID, "%s: shape is NULL", op);
    if (p->n <= 0 || p->c <= 0 || p->h <= 0 || p->w <= 0 || p->k <= 0 || p->r <= 0 || p->s <= 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: n, c, h, w, k, r, s must be positive (got %d, %d, %d, %d, %d, %d, %d)", op,
                        p->n, p->c, p->h, p->w, p->k, p->r, p->s);
    if (p->stride_h <= 0 || p->stride_w <= 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: strides must be positive (got %d, %d)", op, p->stride_h, p->stride_w);
    if (p->pad_t < 0 || p->pad_b < 0 || p->pad_l < 0 || p->pad_r < 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: padding must be >= 0 (got %d, %d, %d, %d)", op, p->pad_t, p->pad_b,
                        p->pad_l, p->pad_r);
    if (p->h + p->pad_t + p->pad_b < p->r || p->w + p->pad_l + p->pad_r < p->s)
        return vkr_fail(VKR_ERR_INVALID, "%s: kernel %dx%d larger than the padded input %dx%d", op, p->r, p->s,
                        p->h + p->pad_t + p->pad_b, p->w + p->pad_l + p->pad_r);
    const int64_t lim = INT32_MAX / 2;
    int64_t chw = (int64_t)p->c * p->h * p->w, kcrs = (int64_t)p->k * p->c * p->r * p->s;
    int64_t kohw = (int64_t)p->k * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    if (p->h > lim || p->w > lim || chw > lim || kcrs > lim || kohw > lim || p->pad_t > lim || p->pad_b > lim ||
        p->pad_l > lim || p->pad_r > lim || p->stride_h > lim || p->stride_w > lim)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: tensor sizes beyond 2^30 elements per image are not supported", op);
    return VKR_OK;
}

/* ------------------------------------------------------------ bindings */

static uint64_t bind_align(const vkr_context *ctx) {
    uint64_t a = ctx->info.min_storage_buffer_offset_alignment;
    if (ctx->info.min_texel_buffer_offset_alignment > a) a = ctx->info.min_texel_buffer_offset_alignment;
    return a < 16 ? 16 : a;
}

/* Bytes one binding of a batch chunk may span. */
static uint64_t chunk_limit(const vkr_context *ctx) {
    uint64_t lim = ctx->info.max_storage_buffer_range;
    uint64_t tex = ctx->info.max_texel_buffer_elements * 4; /* R32F views */
    if (tex && tex < lim) lim = tex;
    if (lim > (1ull << 31)) lim = 1ull << 31;
    if (g_chunk_limit && g_chunk_limit < lim) lim = g_chunk_limit;
    return lim;
}

/* Images per chunk so that every per-image tensor of `per` floats fits one binding. */
static vkr_status plan_chunk(const char *op, const vkr_context *ctx, uint64_t per, int n, int *nb) {
    uint64_t lim = chunk_limit(ctx), slack = bind_align(ctx) + 16;
    uint64_t bytes = per * 4;
    if (bytes + slack > lim)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: one image needs a %.1f MiB binding, over the device limit of %.1f MiB", op,
                        bytes / 1048576.0, lim / 1048576.0);
    uint64_t k = (lim - slack) / bytes;
    *nb = k >= (uint64_t)n ? n : (int)k;
    return VKR_OK;
}

/* Binding of floats [first, first+count) of b from an aligned offset; *elem_off = first's index in it. */
static vkr_binding sub_binding(const vkr_context *ctx, vkr_buffer *b, uint64_t first, uint64_t count, int32_t *elem_off) {
    uint64_t align = bind_align(ctx);
    uint64_t byte0 = first * 4, off = byte0 / align * align;
    uint64_t end = (first + count) * 4;
    uint64_t range = (end - off + 15) / 16 * 16;
    if (off + range > b->size) range = b->size - off;
    *elem_off = (int32_t)((byte0 - off) / 4);
    vkr_binding r = {b, off, range};
    return r;
}

/* ------------------------------------------------------------ one GEMM */

typedef struct {
    vkr_buffer *buf;
    uint64_t first, count; /* floats of the tensor this GEMM reads or writes */
} operand;

static vkr_status gemm(vkr_cmd *cmd, const char *label, int dir, gemm_push *pc, operand A, operand B, operand C,
                       vkr_buffer *bias, int amode, int bmode, int cmode) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_gemm_variant v = vkr_gemm_pick(ctx);
    vkr_binding bind[5];
    bind[0] = sub_binding(ctx, A.buf, A.first, A.count, &pc->offA);
    bind[1] = sub_binding(ctx, B.buf, B.first, B.count, &pc->offB);
    bind[2] = sub_binding(ctx, C.buf, C.first, C.count, &pc->offC);
    pc->offBias = 0;
    pc->has_bias = (pc->has_bias & 6) | (bias != NULL); /* bits 1, 2: ReLU / BatchNorm epilogue (forward) */
    bind[3] = bias ? vkr__whole(bias) : bind[0]; /* unused without bias */
    bind[4] = bind[2];
    uint32_t nbind = 4;
    vkr_pipeline *pipe;
    vkr_status s;
    uint32_t gx, gy, nblocks;
    if (v == VKR_GEMM_TILED) {
        uint32_t spec[1] = {(uint32_t)dir};
        vkr_pipeline_desc d = {.shader = "gemm_tiled", .bindings = "ssss", .push_size = sizeof *pc, .spec_count = 1,
                               .spec = spec};
        if ((s = vkr_pipeline_get(ctx, &d, &pipe))) return s;
        nblocks = vkr_div_up((uint64_t)pc->N, 64);
        gy = vkr_div_up((uint64_t)pc->M, 64);
    } else {
        if (g_force_gather) amode = bmode = MODE_GATHER;
        if (pc->offA % 4) amode = MODE_GATHER; /* vec4 modes need texel-aligned tensors */
        if (pc->offB % 4) bmode = MODE_GATHER;
        const vkr__texel_config *tc = texel_config(dir, amode, bmode, pc->M);
        if (bmode == MODE_VEC4_MN && tc->tn % 4) bmode = MODE_GATHER;
        if (g_force_gather || pc->offC % 4 || (cmode == STORE_VEC4_N && tc->tn % 4) || (cmode == STORE_VEC4_M && tc->tm % 4))
            cmode = 0;
        char bnd[6] = {amode ? 't' : 'r', bmode ? 't' : 'r', 's', 'r', 's', 0};
        /* lanes run along x: over columns, unless there are too few of them (dense at batch 1) */
        uint32_t ncol = vkr_div_up((uint64_t)pc->N, (uint32_t)tc->tn), nrow = vkr_div_up((uint64_t)pc->M, (uint32_t)tc->tm);
        uint32_t swap = ncol * 2 <= (uint32_t)tc->lx && nrow > ncol;
        uint32_t spec[7] = {(uint32_t)tc->lx, (uint32_t)tc->ly, (uint32_t)dir, (uint32_t)amode, (uint32_t)bmode,
                            (uint32_t)cmode, swap};
        nbind = 5;
        vkr_pipeline_desc d = {.shader = tc->shader, .bindings = bnd, .push_size = sizeof *pc, .spec_count = 7,
                               .spec = spec};
        if ((s = vkr_pipeline_get(ctx, &d, &pipe))) return s;
        nblocks = vkr_div_up(swap ? nrow : ncol, (uint32_t)tc->lx);
        gy = vkr_div_up(swap ? ncol : nrow, (uint32_t)tc->ly);
    }
    /* x blocks folded into z beyond the per-dimension limit */
    uint32_t maxg = ctx->info.max_workgroup_count[0] < 65535 ? ctx->info.max_workgroup_count[0] : 65535;
    uint32_t gz = vkr_div_up(nblocks, maxg);
    gx = vkr_div_up(nblocks, gz);
    if (gy > ctx->info.max_workgroup_count[1] || gz > ctx->info.max_workgroup_count[2])
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: GEMM %dx%d too large for one dispatch", label, pc->M, pc->N);
    vkr_cmd_label(cmd, label);
    return vkr_cmd_dispatch(cmd, pipe, bind, nbind, 0x14, pc, gx, gy, gz);
}

static void push_shape(gemm_push *pc, const vkr_conv2d_shape *p, int nb) {
    memset(pc, 0, sizeof *pc);
    pc->nb = nb;
    pc->C = p->c;
    pc->H = p->h;
    pc->W = p->w;
    pc->K = p->k;
    pc->R = p->r;
    pc->S = p->s;
    pc->sh = p->stride_h;
    pc->sw = p->stride_w;
    pc->pt = p->pad_t;
    pc->pl = p->pad_l;
    pc->OH = vkr_conv2d_out_h(p);
    pc->OW = vkr_conv2d_out_w(p);
}

static int is_pointwise(const vkr_conv2d_shape *p) { /* 1x1, stride 1, no padding: B is the tensor itself */
    return p->r == 1 && p->s == 1 && p->stride_h == 1 && p->stride_w == 1 && !p->pad_t && !p->pad_b && !p->pad_l &&
           !p->pad_r;
}

/* ------------------------------------------------------------ directions */

/* epi: VKR__EPI_RELU max(., 0) after the bias, VKR__EPI_BN inference BatchNorm after the bias
 * (bias then holds 4 planes of k: bias, mean, gamma / sqrt(var + eps), beta; shaders: hasBias bits). */
static vkr_status conv_forward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out,
                               vkr_buffer *inp, vkr_buffer *weight, vkr_buffer *bias, int epi) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    uint64_t chw = (uint64_t)p->c * p->h * p->w, hw = (uint64_t)p->h * p->w;
    uint64_t ohw = (uint64_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p), kohw = p->k * ohw;
    uint64_t crs = (uint64_t)p->c * p->r * p->s;
    int nb = 1;
    vkr_status s = plan_chunk(op, ctx, chw > kohw ? chw : kohw, p->n, &nb);
    if (s) return s;
    int pw = is_pointwise(p);
    int amode = crs % 4 == 0 ? MODE_VEC4_K : MODE_GATHER;
    int bmode = pw && hw % 4 == 0 ? MODE_VEC4_MN : pw && hw == 1 && p->c % 4 == 0 ? MODE_VEC4_K : MODE_GATHER;
    /* out[img][ko][q]: contiguous along pixels n, or along ko for dense (q = 1) */
    int cmode = ohw % 4 == 0 ? STORE_VEC4_N : ohw == 1 && p->k % 4 == 0 ? STORE_VEC4_M : STORE_SCALAR;
    char label[64];
    snprintf(label, sizeof label, "%s forward", op);
    for (int i0 = 0; i0 < p->n; i0 += nb) {
        int cnt = p->n - i0 < nb ? p->n - i0 : nb;
        gemm_push pc;
        push_shape(&pc, p, cnt);
        pc.has_bias = epi & (VKR__EPI_RELU | VKR__EPI_BN); /* gemm() sets bit 0 */
        pc.M = p->k;
        pc.N = (int32_t)(cnt * ohw);
        pc.Kr = (int32_t)crs;
        operand A = {weight, 0, p->k * crs}, B = {inp, i0 * chw, cnt * chw}, C = {out, i0 * kohw, cnt * kohw};
        if ((s = gemm(cmd, label, DIR_FWD, &pc, A, B, C, bias, amode, bmode, cmode))) return s;
    }
    return VKR_OK;
}

vkr_status vkr__conv_forward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out,
                             vkr_buffer *inp, vkr_buffer *weight, vkr_buffer *bias) {
    return conv_forward(cmd, op, p, out, inp, weight, bias, 0);
}

vkr_status vkr__conv_forward_relu(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out,
                                  vkr_buffer *inp, vkr_buffer *weight, vkr_buffer *bias) {
    return conv_forward(cmd, op, p, out, inp, weight, bias, VKR__EPI_RELU);
}

vkr_status vkr__conv_forward_epi(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out,
                                 vkr_buffer *inp, vkr_buffer *weight, vkr_buffer *bias, int epi) {
    return conv_forward(cmd, op, p, out, inp, weight, bias, epi);
}

static vkr_status bias_grad(vkr_cmd *cmd, const char *label, vkr_buffer *dbias, vkr_buffer *dout, uint64_t first,
                            int cnt, int k, uint64_t ohw, int beta) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline *pipe;
    vkr_pipeline_desc d = {.shader = "gemm_bias_grad", .bindings = "ss", .push_size = 20};
    vkr_status s = vkr_pipeline_get(ctx, &d, &pipe);
    if (s) return s;
    struct { int32_t nb, k, hw, offD, beta; } pc = {cnt, k, (int32_t)ohw, 0, beta};
    vkr_binding bind[2] = {sub_binding(ctx, dout, first, (uint64_t)cnt * k * ohw, &pc.offD), vkr__whole(dbias)};
    uint32_t gx, gy;
    vkr_grid_1d((uint64_t)k, 1, &gx, &gy);
    vkr_cmd_label(cmd, label);
    return vkr_cmd_dispatch(cmd, pipe, bind, 2, 0x2, &pc, gx, gy, 1);
}

vkr_status vkr__conv_backward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *dinp,
                              vkr_buffer *dweight, vkr_buffer *dbias, vkr_buffer *dout, vkr_buffer *inp,
                              vkr_buffer *weight) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    uint64_t chw = (uint64_t)p->c * p->h * p->w, hw = (uint64_t)p->h * p->w;
    uint64_t ohw = (uint64_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p), kohw = p->k * ohw;
    uint64_t crs = (uint64_t)p->c * p->r * p->s;
    int nb = 1;
    vkr_status s = plan_chunk(op, ctx, chw > kohw ? chw : kohw, p->n, &nb);
    if (s) return s;
    int pw = is_pointwise(p);
    char label[64];
    for (int i0 = 0; i0 < p->n; i0 += nb) {
        int cnt = p->n - i0 < nb ? p->n - i0 : nb;
        operand Dout = {dout, i0 * kohw, cnt * kohw}, Inp = {inp, i0 * chw, cnt * chw};
        if (dinp) {
            /* one GEMM per stride phase: input pixels (ph + sh*i, pw + sw*j) and the taps that reach them */
            operand A = {weight, 0, p->k * crs}, C = {dinp, i0 * chw, cnt * chw};
            int amode = p->r == 1 && p->s == 1 && p->c % 4 == 0 ? MODE_VEC4_MN : MODE_GATHER;
            int bmode = pw && hw % 4 == 0 ? MODE_VEC4_MN : pw && hw == 1 && p->k % 4 == 0 ? MODE_VEC4_K : MODE_GATHER;
            /* dinp[img][c][pixel]: contiguous along n with stride 1, along c for dense (hw = 1) */
            int unit = p->stride_h == 1 && p->stride_w == 1;
            int cmode = unit && hw % 4 == 0 ? STORE_VEC4_N : hw == 1 && p->c % 4 == 0 ? STORE_VEC4_M : STORE_SCALAR;
            snprintf(label, sizeof label, "%s backward-data", op);
            for (int ph = 0; ph < p->stride_h && ph < p->h; ph++)
                for (int pwp = 0; pwp < p->stride_w && pwp < p->w; pwp++) {
                    gemm_push pc;
                    push_shape(&pc, p, cnt);
                    pc.ph = ph;
                    pc.pw = pwp;
                    pc.r0 = (ph + p->pad_t) % p->stride_h;
                    pc.s0 = (pwp + p->pad_l) % p->stride_w;
                    pc.rr = pc.r0 < p->r ? (p->r - pc.r0 + p->stride_h - 1) / p->stride_h : 0;
                    pc.ss = pc.s0 < p->s ? (p->s - pc.s0 + p->stride_w - 1) / p->stride_w : 0;
                    pc.hh = (p->h - ph + p->stride_h - 1) / p->stride_h;
                    pc.ww = (p->w - pwp + p->stride_w - 1) / p->stride_w;
                    pc.M = p->c;
                    pc.N = cnt * pc.hh * pc.ww;
                    pc.Kr = p->k * pc.rr * pc.ss;
                    if ((s = gemm(cmd, label, DIR_DGRAD, &pc, A, Dout, C, NULL, amode, bmode, cmode))) return s;
                }
        }
        if (dweight) {
            gemm_push pc;
            push_shape(&pc, p, cnt);
            pc.M = p->k;
            pc.N = (int32_t)crs;
            pc.Kr = (int32_t)(cnt * ohw);
            pc.beta = i0 > 0;
            int amode = ohw % 4 == 0 ? MODE_VEC4_K : ohw == 1 && p->k % 4 == 0 ? MODE_VEC4_MN : MODE_GATHER;
            int bmode = pw && hw % 4 == 0 ? MODE_VEC4_K : pw && hw == 1 && p->c % 4 == 0 ? MODE_VEC4_MN : MODE_GATHER;
            operand C = {dweight, 0, p->k * crs};
            snprintf(label, sizeof label, "%s backward-weight", op);
            int cmode = crs % 4 == 0 ? STORE_VEC4_N : STORE_SCALAR; /* dweight[ko][crs] */
            if ((s = gemm(cmd, label, DIR_WGRAD, &pc, Dout, Inp, C, NULL, amode, bmode, cmode))) return s;
        }
        if (dbias) {
            snprintf(label, sizeof label, "%s backward-bias", op);
            if ((s = bias_grad(cmd, label, dbias, dout, i0 * kohw, cnt, p->k, ohw, i0 > 0))) return s;
        }
    }
    return VKR_OK;
}
