/* Batch normalization, inference and training, forward and backward
 * (shaders/batchnorm_*.comp, reductions in shaders/reduce.glsl).
 *
 * Statistics are per channel over N*H*W.  Two ways to compute them:
 *  - fused: the whole tensor fits one binding and N*H*W is small
 *    (<= BN_FUSED_MAX; on CPU devices also whenever C >= 16): one dispatch,
 *    one workgroup per channel doing tree
 *    reductions (two-pass variance: mean first, then squared deviations) and
 *    the element-wise part;
 *  - split: the tensor is cut into chunks of whole samples, each bound as a
 *    sub-range under maxStorageBufferRange.  Per chunk, pass 1 reduces blocks
 *    of BN_BLOCK elements of each channel to partials (forward: (mean, M2);
 *    backward: (sum dout, sum dout*xhat)); pass 2 merges them (Chan's formula /
 *    tree sums) into per-channel accumulators that carry over across chunks.
 *    No float atomics anywhere.
 *
 * Scratch space without allocations (an op only records into a vkr_cmd):
 *  - block partials live in the chunk's own output range (out / dinp), at the
 *    first elements of each channel, before the element-wise pass overwrites
 *    them (so out must not alias inp, dinp must not alias dout / inp);
 *  - forward accumulators are save_mean (mean) and save_invstd (M2 until the
 *    final step turns it into invstd);
 *  - backward accumulators are dbeta (S1) and dgamma (S2); when one of them is
 *    NULL but dinp is wanted, they live in dinp "slots" (global elements 0 and
 *    1 of each channel), which batchnorm_bwd_fix overwrites last with their
 *    own gradient.
 */
#include "op_util.h"
#include "vkr_shader_ids.h"

#include <math.h>
#include <string.h>

#define BN_FUSED_MAX 16384u
#define BN_BLOCK 4096u
#define BN_RUN 4u /* consecutive elements per invocation in the element-wise passes (reduce_bn.glsl) */

#define F_PARAM_VAR 1u
#define F_W0 2u
#define F_W1 4u
#define F_SLOT 8u
#define F_FIRST 16u
#define F_UNBIASED 32u
#define F_TRAIN 64u
#define F_DINP 128u

typedef struct {
    uint32_t C, HW, nb, base;
    uint32_t B, P, jp0, flags;
    float cnt_prev, cnt_total, eps, momentum;
    uint32_t mg_hw[2], mg_c[2];
} bn_push;
VKR_PUSH_CHECK(bn_push, batchnorm_apply);
VKR_PUSH_CHECK(bn_push, batchnorm_bwd_dinp);
VKR_PUSH_CHECK(bn_push, batchnorm_bwd_fix);
VKR_PUSH_CHECK(bn_push, batchnorm_bwd_fused);
VKR_PUSH_CHECK(bn_push, batchnorm_bwd_merge);
VKR_PUSH_CHECK(bn_push, batchnorm_bwd_part);
VKR_PUSH_CHECK(bn_push, batchnorm_train_final);
VKR_PUSH_CHECK(bn_push, batchnorm_train_fused);
VKR_PUSH_CHECK(bn_push, batchnorm_train_merge);
VKR_PUSH_CHECK(bn_push, batchnorm_train_part);

/* Internal, for the self-checks: force the chunk limit (floats per binding),
 * the path (0 auto, 1 fused when possible, 2 split) and the block size. */
uint64_t vkr__bn_chunk_limit(const vkr_context *ctx);
void vkr__bn_magic(uint32_t d, uint32_t mg[2]);

static _Thread_local uint64_t t_chunk;
static _Thread_local int t_path;
static _Thread_local uint32_t t_block;

void vkr__bn_test_overrides(uint64_t chunk_floats, int path, uint32_t block) {
    t_chunk = chunk_floats;
    t_path = path;
    t_block = block;
}

uint64_t vkr__bn_chunk_limit(const vkr_context *ctx) {
    uint64_t dev = vkr__chunk_floats(ctx);
    return t_chunk && t_chunk < dev ? t_chunk : dev;
}

/* Magic numbers for red_udiv (shaders/reduce.glsl): exact x / d for x < 2^31. */
void vkr__bn_magic(uint32_t d, uint32_t mg[2]) {
    if (d <= 1) {
        mg[0] = mg[1] = 0;
        return;
    }
    uint32_t l = 0;
    while ((1ull << l) < d) l++;
    uint32_t k = l - 1;
    mg[0] = (uint32_t)(((1ull << (32 + k)) + d - 1) / d);
    mg[1] = k;
}

/* Binding of floats [first, first+count) of b, offset aligned down to the
 * storage alignment (`af` floats); *base = first - aligned offset. */
static vkr_binding bind_at(vkr_buffer *b, uint64_t first, uint64_t count, uint64_t af, uint32_t *base) {
    uint64_t f0 = first / af * af;
    *base = (uint32_t)(first - f0);
    vkr_binding r = {b, f0 * 4, (count + *base) * 4};
    return r;
}

typedef struct {
    vkr_context *ctx;
    uint64_t C, HW, N, S;   /* S = C*HW floats per sample */
    uint64_t af;            /* storage alignment in floats */
    uint64_t nb_max;        /* samples per chunk */
    int single;             /* one chunk holds the whole tensor */
} bn_plan;

static vkr_status bn_prepare(vkr_cmd *cmd, const char *op, const vkr_bn_shape *p, int train, bn_plan *pl) {
    if (!cmd) return vkr_fail(VKR_ERR_INVALID, "%s: command stream is NULL", op);
    if (!p) return vkr_fail(VKR_ERR_INVALID, "%s: shape is NULL", op);
    if (p->n <= 0 || p->c <= 0 || p->h <= 0 || p->w <= 0)
        return vkr_fail(VKR_ERR_INVALID, "%s: non-positive shape n=%d c=%d h=%d w=%d", op, p->n, p->c, p->h, p->w);
    if (!(p->eps >= 0) || !isfinite(p->eps)) return vkr_fail(VKR_ERR_INVALID, "%s: eps must be finite and >= 0", op);
    if (train && !isfinite(p->momentum)) return vkr_fail(VKR_ERR_INVALID, "%s: momentum must be finite", op);
    memset(pl, 0, sizeof *pl);
    pl->ctx = vkr__cmd_context(cmd);
    pl->C = (uint64_t)p->c;
    pl->HW = (uint64_t)p->h * (uint64_t)p->w;
    pl->N = (uint64_t)p->n;
    pl->S = pl->C * pl->HW;
    pl->af = pl->ctx->info.min_storage_buffer_offset_alignment / 4;
    if (pl->af < 1) pl->af = 1;
    uint64_t lim = vkr__bn_chunk_limit(pl->ctx);
    if (pl->S + pl->af - 1 > lim)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: one sample (%llu floats) exceeds the device's maxStorageBufferRange", op,
                        (unsigned long long)pl->S);
    if (pl->C > 0xFFFFFFull || pl->N * pl->HW >= (1ull << 31))
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: %llu channels x %llu elements per channel is too large", op,
                        (unsigned long long)pl->C, (unsigned long long)(pl->N * pl->HW));
    pl->nb_max = (lim - (pl->af - 1)) / pl->S;
    if (pl->nb_max > pl->N) pl->nb_max = pl->N;
    pl->single = pl->nb_max >= pl->N;
    return VKR_OK;
}

static int use_fused(const bn_plan *pl) {
    if (!pl->single) return 0;
    if (t_path == 1) return 1;
    if (t_path == 2) return 0;
    /* On CPU devices (llvmpipe) a workgroup per channel keeps every core busy once
     * there are a few channels, and saves the extra passes of the split path. */
    if (pl->ctx->info.type == VKR_DEVICE_CPU && pl->C >= 16) return 1;
    return pl->N * pl->HW <= BN_FUSED_MAX;
}

static uint32_t block_size(void) { return t_block >= 8 ? t_block : BN_BLOCK; }

static void push_init(bn_push *pc, const bn_plan *pl, const vkr_bn_shape *p) {
    memset(pc, 0, sizeof *pc);
    pc->C = (uint32_t)pl->C;
    pc->HW = (uint32_t)pl->HW;
    pc->nb = (uint32_t)pl->N;
    pc->B = block_size();
    pc->P = 1;
    pc->cnt_total = (float)(pl->N * pl->HW);
    pc->eps = p->eps;
    pc->momentum = p->momentum;
    vkr__bn_magic(pc->HW, pc->mg_hw);
    vkr__bn_magic(pc->C, pc->mg_c);
}

#define get_pipe(ctx, shader, out) vkr_pipeline_get(ctx, &(vkr_pipeline_desc){VKR_SHADER(shader)}, out)

static vkr_status dispatch_groups(vkr_cmd *cmd, vkr_pipeline *pp, const vkr_binding *b, uint32_t nb, uint32_t writes,
                                  const bn_push *pc, uint64_t groups) {
    uint32_t gx, gy;
    vkr_grid_1d(groups, 1, &gx, &gy);
    return vkr_cmd_dispatch(cmd, pp, b, nb, writes, pc, gx, gy, 1);
}

static vkr_status dispatch_items(vkr_cmd *cmd, vkr_pipeline *pp, const vkr_binding *b, uint32_t nb, uint32_t writes,
                                 const bn_push *pc, uint64_t items, uint32_t local) {
    uint32_t gx, gy;
    vkr_grid_1d(items, local, &gx, &gy);
    return vkr_cmd_dispatch(cmd, pp, b, nb, writes, pc, gx, gy, 1);
}

/* Blocks per channel for a chunk of `cnt` elements per channel whose partials
 * start at channel-local element jp0 (2 floats each). */
static uint32_t blocks_for(uint64_t cnt, uint32_t B, uint32_t jp0) {
    uint64_t P = (cnt + B - 1) / B;
    if (P <= 1 || jp0 + 2 * P > cnt) return 1;
    return (uint32_t)P;
}

/* ---------------------------------------------------------------- inference */

vkr_status vkr_batchnorm_infer_forward(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *out, vkr_buffer *inp,
                                       vkr_buffer *gamma, vkr_buffer *beta, vkr_buffer *mean, vkr_buffer *var) {
    const char *op = "batchnorm_infer_forward";
    bn_plan pl;
    vkr_status s;
    if ((s = bn_prepare(cmd, op, p, 0, &pl))) return s;
    uint64_t total = pl.N * pl.S;
    if ((s = vkr__need(op, "out", out, total)) || (s = vkr__need(op, "inp", inp, total)) ||
        (s = vkr__need(op, "gamma", gamma, pl.C)) || (s = vkr__need(op, "beta", beta, pl.C)) ||
        (s = vkr__need(op, "mean", mean, pl.C)) || (s = vkr__need(op, "var", var, pl.C)))
        return s;
    vkr_pipeline *pa;
    if ((s = get_pipe(pl.ctx, batchnorm_apply, &pa))) return s;
    bn_push pc;
    push_init(&pc, &pl, p);
    pc.flags = F_PARAM_VAR;
    for (uint64_t n0 = 0; n0 < pl.N; n0 += pl.nb_max) {
        uint64_t nb = pl.N - n0 < pl.nb_max ? pl.N - n0 : pl.nb_max;
        pc.nb = (uint32_t)nb;
        vkr_binding b[6];
        b[0] = bind_at(out, n0 * pl.S, nb * pl.S, pl.af, &pc.base);
        b[1] = bind_at(inp, n0 * pl.S, nb * pl.S, pl.af, &pc.base);
        b[2] = vkr__range(gamma, 0, pl.C);
        b[3] = vkr__range(beta, 0, pl.C);
        b[4] = vkr__range(mean, 0, pl.C);
        b[5] = vkr__range(var, 0, pl.C);
        if ((s = dispatch_items(cmd, pa, b, 6, 0x1, &pc, (nb * pl.S + BN_RUN - 1) / BN_RUN, 256))) return s;
    }
    return VKR_OK;
}

/* Pass 1 + 2 of the backward sums over chunk [n0, n0+nb): acc0 += sum dout,
 * acc1 += sum dout*xhat (plain [c] or dinp slots per pc->flags). */
static vkr_status bwd_sums_chunk(vkr_cmd *cmd, const bn_plan *pl, bn_push *pc, uint64_t n0, uint64_t nb,
                                 vkr_buffer *scratch, int scratch_ok, vkr_binding acc0, vkr_binding acc1,
                                 vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *mean, vkr_buffer *par) {
    vkr_status s;
    vkr_pipeline *p1, *p2;
    if ((s = get_pipe(pl->ctx, batchnorm_bwd_part, &p1)) ||
        (s = get_pipe(pl->ctx, batchnorm_bwd_merge, &p2)))
        return s;
    pc->nb = (uint32_t)nb;
    pc->cnt_prev = (float)(n0 * pl->HW);
    pc->B = block_size();
    pc->P = scratch_ok ? blocks_for(nb * pl->HW, pc->B, pc->jp0) : 1;
    if (pc->P == 1) pc->B = (uint32_t)(nb * pl->HW); /* one block covers the chunk */
    pc->flags = (pc->flags & ~F_FIRST) | (n0 == 0 ? F_FIRST : 0);
    vkr_binding b[7];
    uint32_t base;
    b[0] = scratch_ok ? bind_at(scratch, n0 * pl->S, nb * pl->S, pl->af, &base) : acc1;
    b[1] = acc0;
    b[2] = acc1;
    b[3] = bind_at(dout, n0 * pl->S, nb * pl->S, pl->af, &pc->base);
    b[4] = bind_at(inp, n0 * pl->S, nb * pl->S, pl->af, &pc->base);
    b[5] = vkr__range(mean, 0, pl->C);
    b[6] = vkr__range(par, 0, pl->C);
    uint32_t wr = (pc->flags & F_W0 ? 0x2u : 0) | (pc->flags & F_W1 ? 0x4u : 0) | (pc->P > 1 ? 0x1u : 0);
    if ((s = dispatch_groups(cmd, p1, b, 7, wr, pc, (uint64_t)pc->P * pl->C))) return s;
    if (pc->P > 1) {
        vkr_binding m[3] = {acc0, acc1, b[0]};
        wr = (pc->flags & F_W0 ? 0x1u : 0) | (pc->flags & F_W1 ? 0x2u : 0);
        if ((s = dispatch_groups(cmd, p2, m, 3, wr, pc, pl->C))) return s;
    }
    return VKR_OK;
}

static vkr_status check_alias(const char *op, const char *a, const vkr_buffer *x, const char *b, const vkr_buffer *y) {
    if (x && x == y) return vkr_fail(VKR_ERR_INVALID, "%s: %s must not be the same buffer as %s", op, a, b);
    return VKR_OK;
}

/* The element-wise input-gradient pass (batchnorm_bwd_dinp) over the chunks of samples [from, to):
 * pc's flags and cnt_total as the caller sets them; with `slot`, the first two global elements of
 * each channel are skipped (they hold the sums until batchnorm_bwd_fix). */
static vkr_status dinp_chunks(vkr_cmd *cmd, const bn_plan *pl, bn_push *pc, uint64_t from, uint64_t to, int slot,
                              vkr_buffer *dinp, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *gamma, vkr_buffer *stat1,
                              vkr_buffer *stat2, vkr_binding a0, vkr_binding a1) {
    vkr_pipeline *pd;
    vkr_status s = get_pipe(pl->ctx, batchnorm_bwd_dinp, &pd);
    for (uint64_t n0 = from; !s && n0 < to; n0 += pl->nb_max) {
        uint64_t nb = to - n0 < pl->nb_max ? to - n0 : pl->nb_max;
        uint64_t before = n0 * pl->HW;
        pc->nb = (uint32_t)nb;
        pc->jp0 = slot && before < 2 ? (uint32_t)(2 - before) : 0;
        vkr_binding b[8];
        b[0] = bind_at(dinp, n0 * pl->S, nb * pl->S, pl->af, &pc->base);
        b[1] = bind_at(dout, n0 * pl->S, nb * pl->S, pl->af, &pc->base);
        b[2] = bind_at(inp, n0 * pl->S, nb * pl->S, pl->af, &pc->base);
        b[3] = vkr__range(gamma, 0, pl->C);
        b[4] = vkr__range(stat1, 0, pl->C);
        b[5] = vkr__range(stat2, 0, pl->C);
        b[6] = a0;
        b[7] = a1;
        s = dispatch_items(cmd, pd, b, 8, 0x1, pc, (nb * pl->S + BN_RUN - 1) / BN_RUN, 256);
    }
    return s;
}

vkr_status vkr_batchnorm_infer_backward(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *dinp, vkr_buffer *dgamma,
                                        vkr_buffer *dbeta, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *gamma,
                                        vkr_buffer *mean, vkr_buffer *var) {
    const char *op = "batchnorm_infer_backward";
    bn_plan pl;
    vkr_status s;
    if ((s = bn_prepare(cmd, op, p, 0, &pl))) return s;
    uint64_t total = pl.N * pl.S;
    if ((dinp && (s = vkr__need(op, "dinp", dinp, total))) || (dgamma && (s = vkr__need(op, "dgamma", dgamma, pl.C))) ||
        (dbeta && (s = vkr__need(op, "dbeta", dbeta, pl.C))) || (s = vkr__need(op, "dout", dout, total)) ||
        (s = vkr__need(op, "inp", inp, total)) || (s = vkr__need(op, "gamma", gamma, pl.C)) ||
        (s = vkr__need(op, "mean", mean, pl.C)) || (s = vkr__need(op, "var", var, pl.C)))
        return s;
    if ((s = check_alias(op, "dinp", dinp, "dout", dout)) || (s = check_alias(op, "dinp", dinp, "inp", inp)) ||
        (s = check_alias(op, "dgamma", dgamma, "dbeta", dbeta)))
        return s;
    if (!dinp && !dgamma && !dbeta) return VKR_OK;
    bn_push pc;
    push_init(&pc, &pl, p);
    pc.flags = F_PARAM_VAR | (dbeta ? F_W0 : 0) | (dgamma ? F_W1 : 0) | (dinp ? F_DINP : 0);
    if (use_fused(&pl)) {
        vkr_pipeline *pf;
        if ((s = get_pipe(pl.ctx, batchnorm_bwd_fused, &pf))) return s;
        vkr_binding b[8] = {vkr__range(dinp ? dinp : dout, 0, total), vkr__range(dgamma ? dgamma : gamma, 0, pl.C),
                            vkr__range(dbeta ? dbeta : gamma, 0, pl.C), vkr__range(dout, 0, total),
                            vkr__range(inp, 0, total), vkr__range(gamma, 0, pl.C), vkr__range(mean, 0, pl.C),
                            vkr__range(var, 0, pl.C)};
        uint32_t wr = (dinp ? 0x1u : 0) | (dgamma ? 0x2u : 0) | (dbeta ? 0x4u : 0);
        return dispatch_groups(cmd, pf, b, 8, wr, &pc, pl.C);
    }
    for (uint64_t n0 = 0; n0 < pl.N; n0 += pl.nb_max) {
        uint64_t nb = pl.N - n0 < pl.nb_max ? pl.N - n0 : pl.nb_max;
        if (dgamma || dbeta) {
            vkr_binding a0 = vkr__range(dbeta ? dbeta : dgamma, 0, pl.C), a1 = vkr__range(dgamma ? dgamma : dbeta, 0, pl.C);
            pc.jp0 = 0;
            if ((s = bwd_sums_chunk(cmd, &pl, &pc, n0, nb, dinp, dinp != NULL, a0, a1, dout, inp, mean, var))) return s;
        }
        if (dinp) {
            bn_push pd_pc = pc;
            pd_pc.flags = F_PARAM_VAR;
            vkr_binding g = vkr__range(gamma, 0, pl.C);
            if ((s = dinp_chunks(cmd, &pl, &pd_pc, n0, n0 + nb, 0, dinp, dout, inp, gamma, mean, var, g, g))) return s;
        }
    }
    return VKR_OK;
}

/* ----------------------------------------------------------------- training */

static vkr_status train_fwd_check(const char *op, const vkr_bn_shape *p, vkr_cmd *cmd, bn_plan *pl, vkr_buffer *out,
                                  vkr_buffer *save_mean, vkr_buffer *save_invstd, vkr_buffer *inp) {
    vkr_status s;
    if ((s = bn_prepare(cmd, op, p, 1, pl))) return s;
    uint64_t total = pl->N * pl->S;
    if ((s = vkr__need(op, "out", out, total)) || (s = vkr__need(op, "save_mean", save_mean, pl->C)) ||
        (s = vkr__need(op, "save_invstd", save_invstd, pl->C)) || (s = vkr__need(op, "inp", inp, total)))
        return s;
    if ((s = check_alias(op, "out", out, "inp", inp)) || (s = check_alias(op, "save_mean", save_mean, "save_invstd", save_invstd)))
        return s;
    return VKR_OK;
}

/* Split path, statistics: per-channel mean into save_mean and M2 (sum of squared deviations)
 * into save_m2, chunk by chunk; block partials in out. */
static vkr_status train_stats(vkr_cmd *cmd, const bn_plan *pl, const vkr_bn_shape *p, vkr_buffer *out,
                              vkr_buffer *save_mean, vkr_buffer *save_m2, vkr_buffer *inp) {
    vkr_status s;
    vkr_pipeline *p1, *p2;
    if ((s = get_pipe(pl->ctx, batchnorm_train_part, &p1)) || (s = get_pipe(pl->ctx, batchnorm_train_merge, &p2)))
        return s;
    bn_push pc;
    push_init(&pc, pl, p);
    uint32_t unb = p->unbiased_running_var ? F_UNBIASED : 0;
    vkr_binding am = vkr__range(save_mean, 0, pl->C), a2 = vkr__range(save_m2, 0, pl->C);
    for (uint64_t n0 = 0; n0 < pl->N; n0 += pl->nb_max) {
        uint64_t nb = pl->N - n0 < pl->nb_max ? pl->N - n0 : pl->nb_max;
        pc.nb = (uint32_t)nb;
        pc.cnt_prev = (float)(n0 * pl->HW);
        pc.jp0 = 0;
        pc.B = block_size();
        pc.P = blocks_for(nb * pl->HW, pc.B, 0);
        if (pc.P == 1) pc.B = (uint32_t)(nb * pl->HW); /* one block covers the chunk */
        pc.flags = unb | (n0 == 0 ? F_FIRST : 0);
        vkr_binding b[4];
        b[0] = bind_at(out, n0 * pl->S, nb * pl->S, pl->af, &pc.base);
        b[1] = am;
        b[2] = a2;
        b[3] = bind_at(inp, n0 * pl->S, nb * pl->S, pl->af, &pc.base);
        if ((s = dispatch_groups(cmd, p1, b, 4, pc.P > 1 ? 0x1u : 0x6u, &pc, (uint64_t)pc.P * pl->C))) return s;
        if (pc.P > 1) {
            vkr_binding m[3] = {am, a2, b[0]};
            if ((s = dispatch_groups(cmd, p2, m, 3, 0x3, &pc, pl->C))) return s;
        }
    }
    return VKR_OK;
}

/* M2 -> invstd over `count` elements per channel, and the running statistics. */
static vkr_status train_running(vkr_cmd *cmd, const bn_plan *pl, const vkr_bn_shape *p, double count,
                                vkr_buffer *save_mean, vkr_buffer *save_invstd, vkr_buffer *running_mean,
                                vkr_buffer *running_var) {
    vkr_status s;
    vkr_pipeline *pfin;
    if ((s = get_pipe(pl->ctx, batchnorm_train_final, &pfin))) return s;
    bn_push pc;
    push_init(&pc, pl, p);
    pc.cnt_total = (float)count;
    pc.flags = p->unbiased_running_var ? F_UNBIASED : 0;
    vkr_binding f[4] = {vkr__range(save_mean, 0, pl->C), vkr__range(save_invstd, 0, pl->C),
                        vkr__range(running_mean, 0, pl->C), vkr__range(running_var, 0, pl->C)};
    return dispatch_items(cmd, pfin, f, 4, 0xE, &pc, pl->C, 64);
}

/* Split path, the rest: M2 -> invstd over `count` elements per channel, running statistics,
 * then the element-wise normalization. */
static vkr_status train_finish(vkr_cmd *cmd, const bn_plan *pl, const vkr_bn_shape *p, double count, vkr_buffer *out,
                               vkr_buffer *save_mean, vkr_buffer *save_invstd, vkr_buffer *inp, vkr_buffer *gamma,
                               vkr_buffer *beta, vkr_buffer *running_mean, vkr_buffer *running_var) {
    vkr_status s;
    vkr_pipeline *pa;
    if ((s = train_running(cmd, pl, p, count, save_mean, save_invstd, running_mean, running_var)) ||
        (s = get_pipe(pl->ctx, batchnorm_apply, &pa)))
        return s;
    bn_push pc;
    push_init(&pc, pl, p);
    vkr_binding am = vkr__range(save_mean, 0, pl->C), a2 = vkr__range(save_invstd, 0, pl->C);
    pc.flags = 0; /* parameter 5 is invstd */
    for (uint64_t n0 = 0; n0 < pl->N; n0 += pl->nb_max) {
        uint64_t nb = pl->N - n0 < pl->nb_max ? pl->N - n0 : pl->nb_max;
        pc.nb = (uint32_t)nb;
        vkr_binding b[6];
        b[0] = bind_at(out, n0 * pl->S, nb * pl->S, pl->af, &pc.base);
        b[1] = bind_at(inp, n0 * pl->S, nb * pl->S, pl->af, &pc.base);
        b[2] = vkr__range(gamma, 0, pl->C);
        b[3] = vkr__range(beta, 0, pl->C);
        b[4] = am;
        b[5] = a2;
        if ((s = dispatch_items(cmd, pa, b, 6, 0x1, &pc, (nb * pl->S + BN_RUN - 1) / BN_RUN, 256))) return s;
    }
    return VKR_OK;
}

vkr_status vkr_batchnorm_train_stats(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *out, vkr_buffer *save_mean,
                                     vkr_buffer *save_m2, vkr_buffer *inp) {
    bn_plan pl;
    vkr_status s = train_fwd_check("batchnorm_train_stats", p, cmd, &pl, out, save_mean, save_m2, inp);
    return s ? s : train_stats(cmd, &pl, p, out, save_mean, save_m2, inp);
}

vkr_status vkr_batchnorm_train_finish(vkr_cmd *cmd, const vkr_bn_shape *p, double count, vkr_buffer *out,
                                      vkr_buffer *save_mean, vkr_buffer *save_invstd, vkr_buffer *inp, vkr_buffer *gamma,
                                      vkr_buffer *beta, vkr_buffer *running_mean, vkr_buffer *running_var) {
    const char *op = "batchnorm_train_finish";
    bn_plan pl;
    vkr_status s;
    if ((s = train_fwd_check(op, p, cmd, &pl, out, save_mean, save_invstd, inp))) return s;
    if ((s = vkr__need(op, "gamma", gamma, pl.C)) || (s = vkr__need(op, "beta", beta, pl.C)) ||
        (s = vkr__need(op, "running_mean", running_mean, pl.C)) || (s = vkr__need(op, "running_var", running_var, pl.C)) ||
        (s = check_alias(op, "running_mean", running_mean, "running_var", running_var)))
        return s;
    if (!(count >= 1) || count >= 2147483648.0 || !isfinite(count))
        return vkr_fail(VKR_ERR_INVALID, "%s: element count %g per channel outside [1, 2^31)", op, count);
    return train_finish(cmd, &pl, p, count, out, save_mean, save_invstd, inp, gamma, beta, running_mean, running_var);
}

vkr_status vkr_batchnorm_train_running(vkr_cmd *cmd, const vkr_bn_shape *p, double count, vkr_buffer *save_mean,
                                       vkr_buffer *save_invstd, vkr_buffer *running_mean, vkr_buffer *running_var) {
    const char *op = "batchnorm_train_running";
    bn_plan pl;
    vkr_status s;
    if ((s = bn_prepare(cmd, op, p, 1, &pl))) return s;
    if ((s = vkr__need(op, "save_mean", save_mean, pl.C)) || (s = vkr__need(op, "save_invstd", save_invstd, pl.C)) ||
        (s = vkr__need(op, "running_mean", running_mean, pl.C)) || (s = vkr__need(op, "running_var", running_var, pl.C)) ||
        (s = check_alias(op, "save_mean", save_mean, "save_invstd", save_invstd)) ||
        (s = check_alias(op, "running_mean", running_mean, "running_var", running_var)))
        return s;
    if (!(count >= 1) || count >= 2147483648.0 || !isfinite(count))
        return vkr_fail(VKR_ERR_INVALID, "%s: element count %g per channel outside [1, 2^31)", op, count);
    return train_running(cmd, &pl, p, count, save_mean, save_invstd, running_mean, running_var);
}

vkr_status vkr_batchnorm_train_forward(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *out, vkr_buffer *save_mean,
                                       vkr_buffer *save_invstd, vkr_buffer *inp, vkr_buffer *gamma, vkr_buffer *beta,
                                       vkr_buffer *running_mean, vkr_buffer *running_var) {
    const char *op = "batchnorm_train_forward";
    bn_plan pl;
    vkr_status s;
    if ((s = train_fwd_check(op, p, cmd, &pl, out, save_mean, save_invstd, inp))) return s;
    uint64_t total = pl.N * pl.S;
    if ((s = vkr__need(op, "gamma", gamma, pl.C)) || (s = vkr__need(op, "beta", beta, pl.C)) ||
        (s = vkr__need(op, "running_mean", running_mean, pl.C)) || (s = vkr__need(op, "running_var", running_var, pl.C)) ||
        (s = check_alias(op, "running_mean", running_mean, "running_var", running_var)))
        return s;
    if (use_fused(&pl)) {
        bn_push pc;
        push_init(&pc, &pl, p);
        vkr_pipeline *pf;
        if ((s = get_pipe(pl.ctx, batchnorm_train_fused, &pf))) return s;
        pc.flags = p->unbiased_running_var ? F_UNBIASED : 0;
        vkr_binding b[8] = {vkr__range(out, 0, total),        vkr__range(save_mean, 0, pl.C),
                            vkr__range(save_invstd, 0, pl.C), vkr__range(running_mean, 0, pl.C),
                            vkr__range(running_var, 0, pl.C), vkr__range(inp, 0, total),
                            vkr__range(gamma, 0, pl.C),       vkr__range(beta, 0, pl.C)};
        return dispatch_groups(cmd, pf, b, 8, 0x1F, &pc, pl.C);
    }
    if ((s = train_stats(cmd, &pl, p, out, save_mean, save_invstd, inp))) return s;
    return train_finish(cmd, &pl, p, (double)(pl.N * pl.HW), out, save_mean, save_invstd, inp, gamma, beta,
                        running_mean, running_var);
}

vkr_status vkr_batchnorm_train_backward(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *dinp, vkr_buffer *dgamma,
                                        vkr_buffer *dbeta, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *gamma,
                                        vkr_buffer *save_mean, vkr_buffer *save_invstd) {
    const char *op = "batchnorm_train_backward";
    bn_plan pl;
    vkr_status s;
    if ((s = bn_prepare(cmd, op, p, 0, &pl))) return s;
    uint64_t total = pl.N * pl.S;
    if ((dinp && (s = vkr__need(op, "dinp", dinp, total))) || (dgamma && (s = vkr__need(op, "dgamma", dgamma, pl.C))) ||
        (dbeta && (s = vkr__need(op, "dbeta", dbeta, pl.C))) || (s = vkr__need(op, "dout", dout, total)) ||
        (s = vkr__need(op, "inp", inp, total)) || (s = vkr__need(op, "gamma", gamma, pl.C)) ||
        (s = vkr__need(op, "save_mean", save_mean, pl.C)) || (s = vkr__need(op, "save_invstd", save_invstd, pl.C)))
        return s;
    if ((s = check_alias(op, "dinp", dinp, "dout", dout)) || (s = check_alias(op, "dinp", dinp, "inp", inp)) ||
        (s = check_alias(op, "dgamma", dgamma, "dbeta", dbeta)))
        return s;
    if (!dinp && !dgamma && !dbeta) return VKR_OK;
    bn_push pc;
    push_init(&pc, &pl, p);
    uint64_t cnt = pl.N * pl.HW;
    int slot = dinp && !(dgamma && dbeta);
    uint64_t slotn = pl.HW >= 2 ? pl.S : 2 * pl.C; /* floats from 0 holding every channel's global elements 0, 1 */
    int fused = use_fused(&pl) || (slot && pl.single && (cnt < 2 || slotn > vkr__bn_chunk_limit(pl.ctx)));
    if (fused) {
        vkr_pipeline *pf;
        if ((s = get_pipe(pl.ctx, batchnorm_bwd_fused, &pf))) return s;
        pc.flags = F_TRAIN | (dbeta ? F_W0 : 0) | (dgamma ? F_W1 : 0) | (dinp ? F_DINP : 0);
        vkr_binding b[8] = {vkr__range(dinp ? dinp : dout, 0, total), vkr__range(dgamma ? dgamma : gamma, 0, pl.C),
                            vkr__range(dbeta ? dbeta : gamma, 0, pl.C), vkr__range(dout, 0, total),
                            vkr__range(inp, 0, total), vkr__range(gamma, 0, pl.C), vkr__range(save_mean, 0, pl.C),
                            vkr__range(save_invstd, 0, pl.C)};
        uint32_t wr = (dinp ? 0x1u : 0) | (dgamma ? 0x2u : 0) | (dbeta ? 0x4u : 0);
        return dispatch_groups(cmd, pf, b, 8, wr, &pc, pl.C);
    }
    if (slot && (cnt < 2 || slotn > vkr__bn_chunk_limit(pl.ctx)))
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: shape too large for the split path without dgamma and dbeta", op);
    vkr_binding a0, a1;
    if (slot) {
        a0 = a1 = vkr__range(dinp, 0, slotn);
        pc.flags = F_SLOT | F_W0 | F_W1;
    } else {
        a0 = vkr__range(dbeta ? dbeta : dgamma, 0, pl.C);
        a1 = vkr__range(dgamma ? dgamma : dbeta, 0, pl.C);
        pc.flags = (dbeta ? F_W0 : 0) | (dgamma ? F_W1 : 0);
    }
    /* sums over the whole batch, chunk by chunk */
    for (uint64_t n0 = 0; n0 < pl.N; n0 += pl.nb_max) {
        uint64_t nb = pl.N - n0 < pl.nb_max ? pl.N - n0 : pl.nb_max;
        uint64_t before = n0 * pl.HW;
        pc.jp0 = slot && before < 2 ? (uint32_t)(2 - before) : 0;
        if (pc.jp0 > nb * pl.HW) pc.jp0 = (uint32_t)(nb * pl.HW);
        if ((s = bwd_sums_chunk(cmd, &pl, &pc, n0, nb, dinp, dinp != NULL, a0, a1, dout, inp, save_mean, save_invstd)))
            return s;
    }
    if (!dinp) return VKR_OK;
    vkr_pipeline *pfix;
    if ((s = get_pipe(pl.ctx, batchnorm_bwd_fix, &pfix))) return s;
    pc.flags = F_TRAIN | (pc.flags & F_SLOT);
    if ((s = dinp_chunks(cmd, &pl, &pc, 0, pl.N, slot, dinp, dout, inp, gamma, save_mean, save_invstd, a0, a1)))
        return s;
    if (!slot) return VKR_OK;
    pc.flags = F_TRAIN | F_SLOT | (dbeta ? F_W0 : 0) | (dgamma ? F_W1 : 0);
    pc.base = 0;
    vkr_binding f[8] = {a0,
                        vkr__range(dgamma ? dgamma : gamma, 0, pl.C),
                        vkr__range(dbeta ? dbeta : gamma, 0, pl.C),
                        vkr__range(dout, 0, slotn),
                        vkr__range(inp, 0, slotn),
                        vkr__range(gamma, 0, pl.C),
                        vkr__range(save_mean, 0, pl.C),
                        vkr__range(save_invstd, 0, pl.C)};
    uint32_t wr = 0x1u | (dgamma ? 0x2u : 0) | (dbeta ? 0x4u : 0);
    return dispatch_items(cmd, pfix, f, 8, wr, &pc, pl.C, 64);
}

static vkr_status train_bwd_check(const char *op, const vkr_bn_shape *p, vkr_cmd *cmd, bn_plan *pl, vkr_buffer *dinp,
                                  vkr_buffer *s1, vkr_buffer *s2, vkr_buffer *dout, vkr_buffer *inp,
                                  vkr_buffer *save_mean, vkr_buffer *save_invstd) {
    vkr_status s;
    if ((s = bn_prepare(cmd, op, p, 0, pl))) return s;
    uint64_t total = pl->N * pl->S;
    if ((dinp && (s = vkr__need(op, "dinp", dinp, total))) || (s = vkr__need(op, "sum_dout", s1, pl->C)) ||
        (s = vkr__need(op, "sum_dout_xhat", s2, pl->C)) || (s = vkr__need(op, "dout", dout, total)) ||
        (s = vkr__need(op, "inp", inp, total)) || (s = vkr__need(op, "save_mean", save_mean, pl->C)) ||
        (s = vkr__need(op, "save_invstd", save_invstd, pl->C)))
        return s;
    if ((s = check_alias(op, "dinp", dinp, "dout", dout)) || (s = check_alias(op, "dinp", dinp, "inp", inp)) ||
        (s = check_alias(op, "sum_dout", s1, "sum_dout_xhat", s2)))
        return s;
    return VKR_OK;
}

vkr_status vkr_batchnorm_train_bwd_sums(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *dinp, vkr_buffer *sum_dout,
                                        vkr_buffer *sum_dout_xhat, vkr_buffer *dout, vkr_buffer *inp,
                                        vkr_buffer *save_mean, vkr_buffer *save_invstd) {
    bn_plan pl;
    vkr_status s;
    if ((s = train_bwd_check("batchnorm_train_bwd_sums", p, cmd, &pl, dinp, sum_dout, sum_dout_xhat, dout, inp,
                             save_mean, save_invstd)))
        return s;
    bn_push pc;
    push_init(&pc, &pl, p);
    pc.flags = F_W0 | F_W1;
    vkr_binding a0 = vkr__range(sum_dout, 0, pl.C), a1 = vkr__range(sum_dout_xhat, 0, pl.C);
    for (uint64_t n0 = 0; n0 < pl.N; n0 += pl.nb_max) {
        uint64_t nb = pl.N - n0 < pl.nb_max ? pl.N - n0 : pl.nb_max;
        pc.jp0 = 0;
        if ((s = bwd_sums_chunk(cmd, &pl, &pc, n0, nb, dinp, dinp != NULL, a0, a1, dout, inp, save_mean, save_invstd)))
            return s;
    }
    return VKR_OK;
}

vkr_status vkr_batchnorm_train_bwd_dinp(vkr_cmd *cmd, const vkr_bn_shape *p, double count, vkr_buffer *dinp,
                                        vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *gamma, vkr_buffer *save_mean,
                                        vkr_buffer *save_invstd, vkr_buffer *sum_dout, vkr_buffer *sum_dout_xhat) {
    const char *op = "batchnorm_train_bwd_dinp";
    bn_plan pl;
    vkr_status s;
    if (!dinp) return vkr_fail(VKR_ERR_INVALID, "%s: dinp is NULL", op);
    if ((s = train_bwd_check(op, p, cmd, &pl, dinp, sum_dout, sum_dout_xhat, dout, inp, save_mean, save_invstd)) ||
        (s = vkr__need(op, "gamma", gamma, pl.C)))
        return s;
    if (!(count >= 1) || count >= 2147483648.0 || !isfinite(count))
        return vkr_fail(VKR_ERR_INVALID, "%s: element count %g per channel outside [1, 2^31)", op, count);
    bn_push pc;
    push_init(&pc, &pl, p);
    pc.cnt_total = (float)count;
    pc.flags = F_TRAIN;
    return dinp_chunks(cmd, &pl, &pc, 0, pl.N, 0, dinp, dout, inp, gamma, save_mean, save_invstd,
                       vkr__range(sum_dout, 0, pl.C), vkr__range(sum_dout_xhat, 0, pl.C));
}
