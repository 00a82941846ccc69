/* conv2d / dense as implicit GEMMs: kernel variants, operand modes, batch chunks
 * (see gemm_conv.h and shaders/gemm_conv.glsl). */
#include "gemm_conv.h"
#include "vkr_shader_ids.h"

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
    int32_t offA, offB, offC;
    int32_t klen; /* split-K: reduction indices per split (0: none) */
    int32_t beta;
    int32_t has_bias; /* bit 0: bias, bit 1: ReLU epilogue, bit 2: BatchNorm epilogue */
    int32_t ph, pw, r0, s0, rr, ss, hh, ww; /* FWD: ph = bias offset, pw = bias plane stride (groups) */
    int32_t dh, dw;                         /* dilation */
} gemm_push;
VKR_PUSH_CHECK(gemm_push, gemm_tiled);
VKR_PUSH_CHECK(gemm_push, gemm_tiled_f16);
VKR_PUSH_CHECK(gemm_push, gemm_tiled_bf16);
VKR_PUSH_CHECK(gemm_push, gemm_tiled_128x64);
VKR_PUSH_CHECK(gemm_push, gemm_tiled_128x64_f16);
VKR_PUSH_CHECK(gemm_push, gemm_tiled_128x64_bf16);
VKR_PUSH_CHECK(gemm_push, gemm_tiled_128x128);
VKR_PUSH_CHECK(gemm_push, gemm_tiled_128x128_f16);
VKR_PUSH_CHECK(gemm_push, gemm_tiled_128x128_bf16);
VKR_PUSH_CHECK(gemm_push, gemm_texel);
VKR_PUSH_CHECK(gemm_push, gemm_texel_f16);
VKR_PUSH_CHECK(gemm_push, gemm_texel_bf16);
VKR_PUSH_CHECK(gemm_push, gemm_texel_8x4);
VKR_PUSH_CHECK(gemm_push, gemm_texel_8x4_f16);
VKR_PUSH_CHECK(gemm_push, gemm_texel_8x4_bf16);
VKR_PUSH_CHECK(gemm_push, gemm_texel_8x8);
VKR_PUSH_CHECK(gemm_push, gemm_texel_8x8_f16);
VKR_PUSH_CHECK(gemm_push, gemm_texel_8x8_bf16);
VKR_PUSH_CHECK(gemm_push, gemm_texel_4x8);
VKR_PUSH_CHECK(gemm_push, gemm_texel_4x8_f16);
VKR_PUSH_CHECK(gemm_push, gemm_texel_4x8_bf16);

/* ------------------------------------------------------------ variants */

static _Thread_local vkr_gemm_variant g_force = VKR_GEMM_AUTO;
static _Thread_local uint64_t g_chunk_limit = 0;
static _Thread_local int g_texel_config = -1;
static _Thread_local int g_force_gather = 0;
static _Thread_local int g_force_split = 0;
static _Thread_local int g_split_target = 0;

static const vkr__texel_config k_texel[] = {
    {VKR_SHADER_gemm_texel_NAME, VKR_SHADER_gemm_texel_f16_NAME, VKR_SHADER_gemm_texel_bf16_NAME, 16, 4, 8, 8}, /* default: 16x4 outputs, 8x8 invocations */
    {VKR_SHADER_gemm_texel_NAME, VKR_SHADER_gemm_texel_f16_NAME, VKR_SHADER_gemm_texel_bf16_NAME, 16, 4, 32, 2},
    {VKR_SHADER_gemm_texel_8x4_NAME, VKR_SHADER_gemm_texel_8x4_f16_NAME, VKR_SHADER_gemm_texel_8x4_bf16_NAME, 8, 4, 8, 8},
    {VKR_SHADER_gemm_texel_8x8_NAME, VKR_SHADER_gemm_texel_8x8_f16_NAME, VKR_SHADER_gemm_texel_8x8_bf16_NAME, 8, 8, 8, 8},
    {VKR_SHADER_gemm_texel_4x8_NAME, VKR_SHADER_gemm_texel_4x8_f16_NAME, VKR_SHADER_gemm_texel_4x8_bf16_NAME, 4, 8, 8, 8},
};

int vkr__texel_config_count(void) { return (int)(sizeof k_texel / sizeof k_texel[0]); }
const vkr__texel_config *vkr__texel_config_at(int i) {
    return i >= 0 && i < vkr__texel_config_count() ? &k_texel[i] : NULL;
}
void vkr__gemm_force_texel_config(int i) { g_texel_config = i; }

/* TILED tiles (shaders/variants.cmake).  The default stays 64x64 until a GPU measurement picks
 * per device (none was available: the larger tiles are only checked for correctness). */
static const vkr__tiled_config k_tiled[] = {
    {VKR_SHADER_gemm_tiled_NAME, VKR_SHADER_gemm_tiled_f16_NAME, VKR_SHADER_gemm_tiled_bf16_NAME, 64, 64, 4, 4},
    {VKR_SHADER_gemm_tiled_128x64_NAME, VKR_SHADER_gemm_tiled_128x64_f16_NAME, VKR_SHADER_gemm_tiled_128x64_bf16_NAME, 128, 64, 8, 4},
    {VKR_SHADER_gemm_tiled_128x128_NAME, VKR_SHADER_gemm_tiled_128x128_f16_NAME, VKR_SHADER_gemm_tiled_128x128_bf16_NAME, 128, 128, 8, 8},
};
static _Thread_local int g_tiled_config = -1;
int vkr__tiled_config_count(void) { return (int)(sizeof k_tiled / sizeof k_tiled[0]); }
const vkr__tiled_config *vkr__tiled_config_at(int i) {
    return i >= 0 && i < vkr__tiled_config_count() ? &k_tiled[i] : NULL;
}
void vkr__gemm_force_tiled_config(int i) { g_tiled_config = i; }

/* The tuned pick lives next to the pipeline cache, per device and driver:
 * pipelines-VVVV-DDDD-DRIVER.bin -> tune-VVVV-DDDD-DRIVER.txt, one line "tiled <shader name>". */
int vkr__gemm_tune_path(const vkr_context *ctx, char *buf, size_t n) {
    const char *pc = ctx->pcache_path, *slash = strrchr(pc, '/');
    if (!pc[0] || !slash) return 0;
    return snprintf(buf, n, "%.*s/tune-%04x-%04x-%08x.txt", (int)(slash - pc), pc, ctx->info.vendor_id,
                    ctx->info.device_id, ctx->info.driver_version) < (int)n;
}


void vkr__gemm_tune_load(vkr_context *ctx) {
    char path[1100], name[64];
    ctx->tuned_tile = 0;
    if (!vkr__gemm_tune_path(ctx, path, sizeof path)) return;
    FILE *f = fopen(path, "r");
    if (!f) return;
    if (fscanf(f, "tiled %63s", name) == 1)
        for (int i = 0; i < vkr__tiled_config_count(); i++)
            if (!strcmp(name, k_tiled[i].shader)) ctx->tuned_tile = i;
    fclose(f);
}

int vkr__gemm_tuned_tile(const vkr_context *ctx) {
    /* the tune cache, read on first use: a cache in the context, hence the cast */
    if (ctx->tuned_tile < 0) vkr__gemm_tune_load((vkr_context *)ctx);
    return ctx->tuned_tile;
}

vkr_status vkr__gemm_tune_save(vkr_context *ctx, int tile) {
    char path[1100], dir[1100], line[96];
    if (tile < 0 || tile >= vkr__tiled_config_count()) return vkr_fail(VKR_ERR_INVALID, "tune: no tile %d", tile);
    if (!vkr__gemm_tune_path(ctx, path, sizeof path))
        return vkr_fail(VKR_ERR_UNSUPPORTED, "tune: no cache directory (set VKRUN_CACHE_DIR or HOME)");
    snprintf(dir, sizeof dir, "%s", path);
    *strrchr(dir, '/') = 0;
    vkr__mkdirs(dir);
    int n = snprintf(line, sizeof line, "tiled %s\n", k_tiled[tile].shader);
    vkr_status s = vkr_file_write_atomic(path, line, (size_t)n);
    if (s) return s;
    ctx->tuned_tile = tile;
    return VKR_OK;
}
void vkr__gemm_force_gather(int on) { g_force_gather = on; }
void vkr__gemm_set_chunk_limit(uint64_t bytes) { g_chunk_limit = bytes; }
void vkr__gemm_force_split(int splits) { g_force_split = splits > 0 ? splits : 0; }
void vkr__gemm_set_split_target(int workgroups) { g_split_target = workgroups > 0 ? workgroups : 0; }

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
    if (p->dil_h < 0 || p->dil_w < 0 || p->groups < 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: dilation and groups must be >= 0 (got %d, %d, %d)", op, p->dil_h, p->dil_w,
                        p->groups);
    if (p->c % vkr_conv2d_groups(p) || p->k % vkr_conv2d_groups(p))
        return vkr_fail(VKR_ERR_INVALID, "%s: groups %d must divide the input channels %d and the output channels %d", op,
                        p->groups, p->c, p->k);
    if ((int64_t)p->h + p->pad_t + p->pad_b < (int64_t)(p->r - 1) * vkr_conv2d_dil_h(p) + 1 ||
        (int64_t)p->w + p->pad_l + p->pad_r < (int64_t)(p->s - 1) * vkr_conv2d_dil_w(p) + 1)
        return vkr_fail(VKR_ERR_INVALID, "%s: kernel %dx%d (dilation %dx%d) larger than the padded input %dx%d", op, p->r,
                        p->s, vkr_conv2d_dil_h(p), vkr_conv2d_dil_w(p), p->h + p->pad_t + p->pad_b,
                        p->w + p->pad_l + p->pad_r);
    const int64_t lim = INT32_MAX / 2;
    int64_t chw = (int64_t)p->c * p->h * p->w, kcrs = (int64_t)p->k * p->c * p->r * p->s;
    int64_t kohw = (int64_t)p->k * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    if (p->h > lim || p->w > lim || chw > lim || kcrs > lim || kohw > lim || p->pad_t > lim || p->pad_b > lim ||
        p->pad_l > lim || p->pad_r > lim || p->stride_h > lim || p->stride_w > lim || p->dil_h > lim / (p->r + 1) ||
        p->dil_w > lim / (p->s + 1))
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

vkr_status vkr__gemm_plan_chunk(const char *op, const vkr_context *ctx, uint64_t per, int n, int *nb) {
    return plan_chunk(op, ctx, per, n, nb);
}
vkr_binding vkr__gemm_sub_binding(const vkr_context *ctx, vkr_buffer *b, uint64_t first, uint64_t count,
                                  int32_t *elem_off) {
    return sub_binding(ctx, b, first, count, elem_off);
}

/* ------------------------------------------------------------ split-K */

/* Weight and bias gradients reduce over batch x output pixels (up to 401,408 for ResNet50's
 * conv1 at batch 32) into outputs with few tiles (64x147, 256x64): one workgroup per tile
 * leaves most of a GPU idle.  Split-K cuts the reduction into S ranges, one workgroup per
 * (tile, split) writing a partial into the stream's scratch buffer, and a second pass
 * (gemm_splitk_reduce.comp) adds the partials in split order: deterministic, no atomics.
 *
 * Vulkan does not report the number of multiprocessors, so the split aims at a number of
 * workgroups per device type that fills the largest GPUs of that type at least once
 * (SPLIT_TARGET_*: e.g. 132 SMs x 4-8 resident 256-invocation workgroups on an H200) —
 * overridable by vkr__gemm_set_split_target — and keeps every split at least
 * SPLIT_MIN_K reduction steps long so the partial traffic stays small next to the GEMM.
 * CPU devices get no split: llvmpipe runs a few workgroups per core already, and splitting
 * only adds the partials' stores and the second pass (measured with vkrun bench --split). */
#define SPLIT_TARGET_DISCRETE 1024
#define SPLIT_TARGET_INTEGRATED 256
#define SPLIT_MIN_K 512
#define SPLIT_SCRATCH_CAP (64ull << 20) /* bytes of partials at most */

static uint32_t split_target(const vkr_context *ctx) {
    if (g_split_target > 0) return (uint32_t)g_split_target;
    switch (ctx->info.type) {
    case VKR_DEVICE_CPU: return 0;
    case VKR_DEVICE_INTEGRATED: return SPLIT_TARGET_INTEGRATED;
    default: return SPLIT_TARGET_DISCRETE;
    }
}

static uint64_t scratch_cap(const vkr_context *ctx) {
    uint64_t cap = SPLIT_SCRATCH_CAP;
    if (ctx->info.max_storage_buffer_range < cap) cap = ctx->info.max_storage_buffer_range;
    return cap;
}

/* Splits of a reduction of length kr into an output of `outs` floats computed by `groups`
 * workgroups, reduction ranges aligned to `align`; *klen = the range length (the last split
 * may be shorter: uneven splits).  Returns 1 for no split. */
static uint32_t plan_split(const vkr_context *ctx, uint64_t groups, uint64_t outs, uint64_t kr, uint32_t align,
                           uint32_t *klen) {
    uint64_t S = 1;
    if (g_force_split > 0) {
        S = (uint64_t)g_force_split;
    } else {
        uint32_t target = split_target(ctx);
        if (target && groups < target) S = (target + groups - 1) / groups;
        if (S > kr / SPLIT_MIN_K) S = kr / SPLIT_MIN_K;
    }
    uint64_t maxs = scratch_cap(ctx) / (outs ? outs * 4 : 4);
    if (S > maxs) S = maxs;
    if (S > ctx->info.max_workgroup_count[2]) S = ctx->info.max_workgroup_count[2];
    if (S > 65535) S = 65535;
    if (S <= 1) {
        *klen = 0;
        return 1;
    }
    uint64_t len = (kr + S - 1) / S;
    len = (len + align - 1) / align * align;
    S = (kr + len - 1) / len;
    *klen = S > 1 ? (uint32_t)len : 0;
    return S > 1 ? (uint32_t)S : 1;
}

typedef struct { uint32_t n, S, offP, offC, beta; } splitk_push;
typedef struct { int32_t nb, k, hw, offD, beta, ipb; } bias_grad_push;
VKR_PUSH_CHECK(splitk_push, gemm_splitk_reduce);
VKR_PUSH_CHECK(bias_grad_push, gemm_bias_grad);

/* Second pass: c[offC + i] (+)= sum over s < S of part[s*n + i], i < n. */
static vkr_status splitk_reduce(vkr_cmd *cmd, const char *label, vkr_buffer *part, uint32_t S, uint64_t n,
                                vkr_binding out, int32_t offC, int beta) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline *pipe;
    vkr_pipeline_desc d = {VKR_SHADER(gemm_splitk_reduce)};
    vkr_status s = vkr_pipeline_get(ctx, &d, &pipe);
    if (s) return s;
    splitk_push pc = {(uint32_t)n, S, 0, (uint32_t)offC, (uint32_t)(beta != 0)};
    vkr_binding b[2] = {vkr__range(part, 0, (uint64_t)S * n), out};
    uint32_t gx, gy;
    vkr_grid_1d((n + 3) / 4, 256, &gx, &gy);
    char l[80];
    snprintf(l, sizeof l, "%s (split-K sum)", label);
    vkr_cmd_label(cmd, l);
    return vkr_cmd_dispatch(cmd, pipe, b, 2, 0x2, &pc, gx, gy, 1);
}

/* ------------------------------------------------------------ one GEMM */

typedef struct {
    vkr_buffer *buf;
    uint64_t first, count; /* floats of the tensor this GEMM reads or writes */
} operand;

/* Kernel choice and grid of one GEMM (pipeline description filled in place). */
typedef struct {
    vkr_pipeline_desc d;
    uint32_t spec[8];
    int split_spec; /* index of the SPLITK specialization constant in spec */
    char bnd[6];
    uint32_t nbind, nblocks, gy;
    uint32_t align; /* split-K ranges start at multiples of this (the kernel's reduction step) */
} gemm_cfg;

/* The kernel of a configuration row for the context's precision. */
#define PREC_SHADER(tc, prec)                                                                                          \
    ((prec) == VKR_PRECISION_FP16 ? (tc)->shader_f16 : (prec) == VKR_PRECISION_BF16 ? (tc)->shader_bf16 : (tc)->shader)

static void gemm_config(const vkr_context *ctx, int dir, const gemm_push *pc, int amode, int bmode, int cmode,
                        gemm_cfg *g) {
    memset(g, 0, sizeof *g);
    vkr_precision prec = vkr_context_precision(ctx); /* fp16 / bf16 GEMM inputs (vkr_context_set_precision) */
    if (vkr_gemm_pick(ctx) == VKR_GEMM_TILED) {
        int ti = g_tiled_config >= 0 ? g_tiled_config : vkr__gemm_tuned_tile(ctx);
        const vkr__tiled_config *tc = &k_tiled[ti >= 0 && ti < vkr__tiled_config_count() ? ti : 0];
        g->spec[0] = (uint32_t)dir;
        g->split_spec = 1;
        g->d = (vkr_pipeline_desc){.shader = PREC_SHADER(tc, prec),
                                   .bindings = VKR_SHADER_gemm_tiled_BINDINGS,
                                   .push_size = sizeof *pc,
                                   .spec_count = 2,
                                   .spec = g->spec};
        g->nbind = 4;
        g->nblocks = vkr_div_up((uint64_t)pc->N, (uint32_t)tc->bn);
        g->gy = vkr_div_up((uint64_t)pc->M, (uint32_t)tc->bm);
        g->align = 16;
        return;
    }
    if (g_force_gather) amode = bmode = MODE_GATHER;
    if (pc->offA % 4) amode = MODE_GATHER; /* vec4 modes need texel-aligned tensors */
    if (pc->offB % 4) bmode = MODE_GATHER;
    const vkr__texel_config *tc = texel_config(dir, amode, bmode, pc->M);
    if (bmode == MODE_VEC4_MN && tc->tn % 4) bmode = MODE_GATHER;
    if (g_force_gather || pc->offC % 4 || (cmode == STORE_VEC4_N && tc->tn % 4) || (cmode == STORE_VEC4_M && tc->tm % 4))
        cmode = 0;
    _Static_assert(sizeof g->bnd == sizeof VKR_SHADER_gemm_texel_BINDINGS, "gemm_texel's bindings changed");
    memcpy(g->bnd, VKR_SHADER_gemm_texel_BINDINGS, sizeof g->bnd); /* texel buffers 't' bound as RGBA32F or 'r' R32F: */
    g->bnd[0] = amode ? 't' : 'r';
    g->bnd[1] = bmode ? 't' : 'r';
    g->bnd[3] = 'r';
    /* lanes run along x: over columns, unless there are too few of them (dense at batch 1) */
    uint32_t ncol = vkr_div_up((uint64_t)pc->N, (uint32_t)tc->tn), nrow = vkr_div_up((uint64_t)pc->M, (uint32_t)tc->tm);
    uint32_t swap = ncol * 2 <= (uint32_t)tc->lx && nrow > ncol;
    uint32_t spec[8] = {(uint32_t)tc->lx, (uint32_t)tc->ly, (uint32_t)dir, (uint32_t)amode, (uint32_t)bmode,
                        (uint32_t)cmode, swap, 0};
    memcpy(g->spec, spec, sizeof spec);
    g->split_spec = 7;
    g->d = (vkr_pipeline_desc){.shader = PREC_SHADER(tc, prec), .bindings = g->bnd, .push_size = sizeof *pc,
                               .spec_count = 8, .spec = g->spec};
    g->nbind = 5;
    g->nblocks = vkr_div_up(swap ? nrow : ncol, (uint32_t)tc->lx);
    g->gy = vkr_div_up(swap ? ncol : nrow, (uint32_t)tc->ly);
    g->align = 4;
}

/* Splits (and range length) the weight-gradient GEMM pc gets on this device; 1 = none. */
static uint32_t gemm_splits(const vkr_context *ctx, const gemm_push *pc, const gemm_cfg *g, uint32_t *klen) {
    uint32_t maxg = ctx->info.max_workgroup_count[0] < 65535 ? ctx->info.max_workgroup_count[0] : 65535;
    *klen = 0;
    if (g->nblocks > maxg) return 1; /* z folds x blocks */
    return plan_split(ctx, (uint64_t)g->nblocks * g->gy, (uint64_t)pc->M * pc->N, (uint64_t)pc->Kr, g->align, klen);
}

static vkr_status gemm(vkr_cmd *cmd, const char *label, int dir, gemm_push *pc, operand A, operand B, operand C,
                       vkr_buffer *bias, int amode, int bmode, int cmode) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_binding bind[5];
    bind[0] = sub_binding(ctx, A.buf, A.first, A.count, &pc->offA);
    bind[1] = sub_binding(ctx, B.buf, B.first, B.count, &pc->offB);
    bind[2] = sub_binding(ctx, C.buf, C.first, C.count, &pc->offC);
    pc->has_bias = (pc->has_bias & 6) | (bias != NULL); /* bits 1, 2: ReLU / BatchNorm epilogue (forward) */
    pc->klen = 0;
    bind[3] = bias ? vkr__whole(bias) : bind[0]; /* unused without bias */
    bind[4] = bind[2];
    gemm_cfg g;
    gemm_config(ctx, dir, pc, amode, bmode, cmode, &g);
    uint32_t klen, S = dir == DIR_WGRAD ? gemm_splits(ctx, pc, &g, &klen) : 1;
    g.spec[g.split_spec] = S > 1; /* the unsplit kernel is compiled without the split-K code */
    vkr_pipeline *pipe;
    vkr_status s = vkr_pipeline_get(ctx, &g.d, &pipe);
    if (s) return s;
    /* x blocks folded into z beyond the per-dimension limit */
    uint32_t maxg = ctx->info.max_workgroup_count[0] < 65535 ? ctx->info.max_workgroup_count[0] : 65535;
    uint32_t gz = vkr_div_up(g.nblocks, maxg), gy = g.gy;
    uint32_t gx = vkr_div_up(g.nblocks, gz);
    if (gy > ctx->info.max_workgroup_count[1] || gz > ctx->info.max_workgroup_count[2])
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: GEMM %dx%d too large for one dispatch", label, pc->M, pc->N);
    vkr_cmd_label(cmd, label);
    if (S <= 1) return vkr_cmd_dispatch(cmd, pipe, bind, g.nbind, 0x14, pc, gx, gy, gz);
    /* split-K: partials into the stream's scratch, then their sum into C */
    uint64_t mn = (uint64_t)pc->M * pc->N;
    vkr_buffer *scr;
    if ((s = vkr__cmd_scratch(cmd, (uint64_t)S * mn * 4, &scr))) return s;
    vkr_binding out = bind[2];
    gemm_push ps = *pc;
    ps.offC = 0;
    ps.beta = 0;
    ps.klen = (int32_t)klen;
    bind[2] = bind[4] = vkr__range(scr, 0, (uint64_t)S * mn);
    if ((s = vkr_cmd_dispatch(cmd, pipe, bind, g.nbind, 0x14, &ps, gx, gy, S))) return s;
    return splitk_reduce(cmd, label, scr, S, mn, out, pc->offC, pc->beta);
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
    pc->dh = vkr_conv2d_dil_h(p);
    pc->dw = vkr_conv2d_dil_w(p);
}

/* The convolution of one group of one image: c / G input and k / G output channels, n = 1
 * (grouped convolutions run one implicit GEMM per image and group; conv2d.c sends the depthwise
 * case to its own kernels, depthwise.c). */
static vkr_conv2d_shape group_shape(const vkr_conv2d_shape *p) {
    vkr_conv2d_shape q = *p;
    int G = vkr_conv2d_groups(p);
    q.n = 1;
    q.c = p->c / G;
    q.k = p->k / G;
    q.groups = 1;
    return q;
}



static int is_pointwise(const vkr_conv2d_shape *p) { /* 1x1, stride 1, no padding: B is the tensor itself */
    return p->r == 1 && p->s == 1 && p->stride_h == 1 && p->stride_w == 1 && !p->pad_t && !p->pad_b && !p->pad_l &&
           !p->pad_r;
}

/* The taps of a kernel of `r` (stride st, dilation d) that reach the input rows of one stride
 * phase (a = phase + top padding): r*d == a (mod st), i.e. r0 + step*t with step = st / gcd(st, d);
 * *r0 the first, *rr how many (0: none).  d = 1: r0 = a mod st, step st. */
static void dgrad_taps(int r, int st, int d, int a, int32_t *r0, int32_t *rr) {
    int g = st, b = d;
    while (b) {
        int t = g % b;
        g = b;
        b = t;
    }
    int step = st / g;
    *r0 = 0;
    *rr = 0;
    for (int t = 0; t < r && t < st; t++)
        if ((t * d - a) % st == 0) { /* t*d - a may be negative: % keeps the sign, 0 either way */
            *r0 = t;
            *rr = (r - t + step - 1) / step;
            return;
        }
}

/* ------------------------------------------------------------ directions */

/* epi: VKR__EPI_RELU max(., 0) after the bias, VKR__EPI_BN inference BatchNorm after the bias
 * (bias then holds 4 planes of k: bias, mean, gamma / sqrt(var + eps), beta; shaders: hasBias bits). */
static vkr_status grouped_forward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out,
                                  vkr_buffer *inp, vkr_buffer *weight, vkr_buffer *bias, int epi) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_conv2d_shape q = group_shape(p);
    int G = vkr_conv2d_groups(p), nb;
    uint64_t chw = (uint64_t)p->c * p->h * p->w, ohw = (uint64_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    uint64_t kohw = p->k * ohw, ghw = (uint64_t)q.c * p->h * p->w, gcrs = (uint64_t)q.c * p->r * p->s;
    vkr_status s = plan_chunk(op, ctx, chw > kohw ? chw : kohw, 1, &nb);
    if (s) return s;
    int pw = is_pointwise(p), hw = p->h * p->w;
    int amode = gcrs % 4 == 0 ? MODE_VEC4_K : MODE_GATHER;
    int bmode = pw && hw % 4 == 0 ? MODE_VEC4_MN : MODE_GATHER;
    int cmode = ohw % 4 == 0 ? STORE_VEC4_N : STORE_SCALAR;
    char label[64];
    snprintf(label, sizeof label, "%s forward (group)", op);
    for (int i = 0; i < p->n; i++)
        for (int g = 0; g < G; g++) {
            gemm_push pc;
            push_shape(&pc, &q, 1);
            pc.has_bias = epi & (VKR__EPI_RELU | VKR__EPI_BN);
            pc.ph = g * q.k; /* this group's bias / BatchNorm entries */
            pc.pw = p->k;
            pc.M = q.k;
            pc.N = (int32_t)ohw;
            pc.Kr = (int32_t)gcrs;
            operand A = {weight, g * q.k * gcrs, q.k * gcrs}, B = {inp, i * chw + g * ghw, ghw},
                    C = {out, i * kohw + g * q.k * ohw, q.k * ohw};
            if ((s = gemm(cmd, label, DIR_FWD, &pc, A, B, C, bias, amode, bmode, cmode))) return s;
        }
    return VKR_OK;
}

static vkr_status conv_forward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out,
                               vkr_buffer *inp, vkr_buffer *weight, vkr_buffer *bias, int epi) {
    if (vkr_conv2d_groups(p) > 1) return grouped_forward(cmd, op, p, out, inp, weight, bias, epi);
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

/* Splits of the d-bias reduction (whole images per split); *ipb = images per split. */
static uint32_t bias_splits(const vkr_context *ctx, int cnt, int k, uint64_t ohw, int *ipb) {
    uint32_t klen, S = plan_split(ctx, (uint64_t)k, (uint64_t)k, (uint64_t)cnt * ohw, (uint32_t)ohw, &klen);
    *ipb = S > 1 ? (int)(klen / ohw) : 0;
    return S;
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
    bias_grad_push pc = {cnt, k, (int32_t)ohw, 0, beta, 0};
    uint32_t S = bias_splits(ctx, cnt, k, ohw, &pc.ipb), split = S > 1;
    vkr_pipeline *pipe;
    vkr_pipeline_desc d = {VKR_SHADER(gemm_bias_grad), .spec_count = 1, .spec = &split};
    vkr_status s = vkr_pipeline_get(ctx, &d, &pipe);
    if (s) return s;
    vkr_buffer *scr = NULL;
    if (S > 1 && (s = vkr__cmd_scratch(cmd, (uint64_t)S * k * 4, &scr))) return s;
    vkr_binding bind[2] = {sub_binding(ctx, dout, first, (uint64_t)cnt * k * ohw, &pc.offD),
                           S > 1 ? vkr__range(scr, 0, (uint64_t)S * k) : vkr__whole(dbias)};
    uint32_t gx, gy;
    vkr_grid_1d((uint64_t)k, 1, &gx, &gy);
    vkr_cmd_label(cmd, label);
    if ((s = vkr_cmd_dispatch(cmd, pipe, bind, 2, 0x2, &pc, gx, gy, S))) return s;
    return S > 1 ? splitk_reduce(cmd, label, scr, S, (uint64_t)k, vkr__whole(dbias), 0, beta) : VKR_OK;
}

/* The weight-gradient GEMM of images [i0, i0 + cnt): push constants and operand modes. */
static void wgrad_setup(const vkr_conv2d_shape *p, int cnt, int beta, gemm_push *pc, int *amode, int *bmode,
                        int *cmode) {
    uint64_t hw = (uint64_t)p->h * p->w, ohw = (uint64_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    uint64_t crs = (uint64_t)p->c * p->r * p->s;
    int pw = is_pointwise(p);
    push_shape(pc, p, cnt);
    pc->M = p->k;
    pc->N = (int32_t)crs;
    pc->Kr = (int32_t)(cnt * ohw);
    pc->beta = beta;
    *amode = ohw % 4 == 0 ? MODE_VEC4_K : ohw == 1 && p->k % 4 == 0 ? MODE_VEC4_MN : MODE_GATHER;
    *bmode = pw && hw % 4 == 0 ? MODE_VEC4_K : pw && hw == 1 && p->c % 4 == 0 ? MODE_VEC4_MN : MODE_GATHER;
    *cmode = crs % 4 == 0 ? STORE_VEC4_N : STORE_SCALAR; /* dweight[ko][crs] */
}

uint64_t vkr__conv_backward_scratch(const vkr_context *ctx, const vkr_conv2d_shape *p, int dweight, int dbias) {
    if (vkr_conv2d_groups(p) > 1) { /* per image and group GEMMs (depthwise: none) + the d-bias over the batch */
        vkr_conv2d_shape q = group_shape(p), b = *p;
        b.groups = 1;
        b.c = q.c; /* the d-bias plan depends on k, the output and the chunk only */
        uint64_t w = dweight ? vkr__conv_backward_scratch(ctx, &q, 1, 0) : 0; /* (depthwise kernels: none needed) */
        uint64_t bb = dbias ? vkr__conv_backward_scratch(ctx, &b, 0, 1) : 0;
        return w > bb ? w : bb;
    }
    uint64_t chw = (uint64_t)p->c * p->h * p->w, ohw = (uint64_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    uint64_t kohw = p->k * ohw, need = 0;
    int nb = 1;
    if (vkr__conv_check_shape("conv", p) || plan_chunk("conv", ctx, chw > kohw ? chw : kohw, p->n, &nb)) return 0;
    int counts[2] = {nb, p->n % nb ? p->n % nb : nb}; /* a full chunk and the last one */
    for (int i = 0; i < 2; i++) {
        if (dweight)
            for (int gather = 0; gather < 2; gather++) { /* later chunks may bind unaligned: gathered */
                gemm_push pc;
                int am, bm, cm;
                wgrad_setup(p, counts[i], 0, &pc, &am, &bm, &cm);
                gemm_cfg g;
                gemm_config(ctx, DIR_WGRAD, &pc, gather ? MODE_GATHER : am, gather ? MODE_GATHER : bm, gather ? 0 : cm, &g);
                uint32_t klen, S = gemm_splits(ctx, &pc, &g, &klen);
                if (S > 1 && (uint64_t)S * pc.M * pc.N * 4 > need) need = (uint64_t)S * pc.M * pc.N * 4;
            }
        int ipb;
        uint32_t S = dbias ? bias_splits(ctx, counts[i], p->k, ohw, &ipb) : 1;
        if (S > 1 && (uint64_t)S * p->k * 4 > need) need = (uint64_t)S * p->k * 4;
    }
    return need;
}

/* Data gradient of images [i0, i0 + cnt) of shape p: one GEMM per stride phase, input pixels
 * (ph + sh*i, pw + sw*j) and the taps that reach them.  A: the weight, B: dout, C: dinp. */
static vkr_status dgrad_phases(vkr_cmd *cmd, const char *label, const vkr_conv2d_shape *p, int cnt, operand A,
                               operand B, operand C) {
    uint64_t hw = (uint64_t)p->h * p->w;
    int pw = is_pointwise(p);
    int amode = p->r == 1 && p->s == 1 && p->c % 4 == 0 ? MODE_VEC4_MN : MODE_GATHER;
    int bmode = pw && hw % 4 == 0 ? MODE_VEC4_MN : pw && hw == 1 && p->k % 4 == 0 ? MODE_VEC4_K : MODE_GATHER;
    /* dinp[img][c][pixel]: contiguous along n with stride 1, along c for dense (hw = 1) */
    int unit = p->stride_h == 1 && p->stride_w == 1;
    int cmode = unit && hw % 4 == 0 ? STORE_VEC4_N : hw == 1 && p->c % 4 == 0 ? STORE_VEC4_M : STORE_SCALAR;
    vkr_status s;
    for (int ph = 0; ph < p->stride_h && ph < p->h; ph++)
        for (int pwp = 0; pwp < p->stride_w && pwp < p->w; pwp++) {
            gemm_push pc;
            push_shape(&pc, p, cnt);
            pc.ph = ph;
            pc.pw = pwp;
            dgrad_taps(p->r, p->stride_h, vkr_conv2d_dil_h(p), ph + p->pad_t, &pc.r0, &pc.rr);
            dgrad_taps(p->s, p->stride_w, vkr_conv2d_dil_w(p), pwp + p->pad_l, &pc.s0, &pc.ss);
            pc.hh = (p->h - ph + p->stride_h - 1) / p->stride_h;
            pc.ww = (p->w - pwp + p->stride_w - 1) / p->stride_w;
            pc.M = p->c;
            pc.N = cnt * pc.hh * pc.ww;
            pc.Kr = p->k * pc.rr * pc.ss;
            if ((s = gemm(cmd, label, DIR_DGRAD, &pc, A, B, C, NULL, amode, bmode, cmode))) return s;
        }
    return VKR_OK;
}

/* d-bias alone over the batch chunks (grouped and depthwise convolutions) */
static vkr_status bias_only(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *dbias,
                            vkr_buffer *dout) {
    uint64_t chw = (uint64_t)p->c * p->h * p->w, ohw = (uint64_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    uint64_t kohw = p->k * ohw;
    int nb = 1;
    vkr_status s = plan_chunk(op, vkr__cmd_context(cmd), chw > kohw ? chw : kohw, p->n, &nb);
    char label[64];
    snprintf(label, sizeof label, "%s backward-bias", op);
    for (int i0 = 0; !s && i0 < p->n; i0 += nb) {
        int cnt = p->n - i0 < nb ? p->n - i0 : nb;
        s = bias_grad(cmd, label, dbias, dout, i0 * kohw, cnt, p->k, ohw, i0 > 0);
    }
    return s;
}

/* Grouped convolution backward: per image and group, the data-gradient phases and the
 * weight-gradient GEMM of that group (accumulated over the images). */
static vkr_status grouped_backward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *dinp,
                                   vkr_buffer *dweight, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *weight) {
    vkr_conv2d_shape q = group_shape(p);
    int G = vkr_conv2d_groups(p), nb;
    uint64_t chw = (uint64_t)p->c * p->h * p->w, ohw = (uint64_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    uint64_t kohw = p->k * ohw, ghw = (uint64_t)q.c * p->h * p->w, gcrs = (uint64_t)q.c * p->r * p->s;
    vkr_status s = plan_chunk(op, vkr__cmd_context(cmd), chw > kohw ? chw : kohw, 1, &nb);
    char label[64];
    for (int i = 0; !s && i < p->n; i++)
        for (int g = 0; !s && g < G; g++) {
            operand Wg = {weight, g * q.k * gcrs, q.k * gcrs}, Dg = {dout, i * kohw + g * q.k * ohw, q.k * ohw};
            operand Ig = {inp, i * chw + g * ghw, ghw};
            if (dinp) {
                operand Cg = {dinp, i * chw + g * ghw, ghw};
                snprintf(label, sizeof label, "%s backward-data (group)", op);
                s = dgrad_phases(cmd, label, &q, 1, Wg, Dg, Cg);
            }
            if (!s && dweight) {
                gemm_push pc;
                int amode, bmode, cmode;
                wgrad_setup(&q, 1, i > 0, &pc, &amode, &bmode, &cmode);
                operand Cw = {dweight, g * q.k * gcrs, q.k * gcrs};
                snprintf(label, sizeof label, "%s backward-weight (group)", op);
                s = gemm(cmd, label, DIR_WGRAD, &pc, Dg, Ig, Cw, NULL, amode, bmode, cmode);
            }
        }
    return s;
}

vkr_status vkr__conv_backward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *dinp,
                              vkr_buffer *dweight, vkr_buffer *dbias, vkr_buffer *dout, vkr_buffer *inp,
                              vkr_buffer *weight) {
    vkr_status s;
    if (vkr_conv2d_groups(p) > 1) {
        s = dinp || dweight ? grouped_backward(cmd, op, p, dinp, dweight, dout, inp, weight) : VKR_OK;
        return !s && dbias ? bias_only(cmd, op, p, dbias, dout) : s;
    }
    vkr_context *ctx = vkr__cmd_context(cmd);
    uint64_t chw = (uint64_t)p->c * p->h * p->w;
    uint64_t ohw = (uint64_t)vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p), kohw = p->k * ohw;
    uint64_t crs = (uint64_t)p->c * p->r * p->s;
    int nb = 1;
    if ((s = plan_chunk(op, ctx, chw > kohw ? chw : kohw, p->n, &nb))) return s;
    char label[64];
    for (int i0 = 0; i0 < p->n; i0 += nb) {
        int cnt = p->n - i0 < nb ? p->n - i0 : nb;
        operand Dout = {dout, i0 * kohw, cnt * kohw}, Inp = {inp, i0 * chw, cnt * chw};
        if (dinp) {
            operand A = {weight, 0, p->k * crs}, C = {dinp, i0 * chw, cnt * chw};
            snprintf(label, sizeof label, "%s backward-data", op);
            if ((s = dgrad_phases(cmd, label, p, cnt, A, Dout, C))) return s;
        }
        if (dweight) {
            gemm_push pc;
            int amode, bmode, cmode;
            wgrad_setup(p, cnt, i0 > 0, &pc, &amode, &bmode, &cmode);
            operand C = {dweight, 0, p->k * crs};
            snprintf(label, sizeof label, "%s backward-weight", op);
            if ((s = gemm(cmd, label, DIR_WGRAD, &pc, Dout, Inp, C, NULL, amode, bmode, cmode))) return s;
        }
        if (dbias) {
            snprintf(label, sizeof label, "%s backward-bias", op);
            if ((s = bias_grad(cmd, label, dbias, dout, i0 * kohw, cnt, p->k, ohw, i0 > 0))) return s;
        }
    }
    return VKR_OK;
}
