/* The fp16- and bf16-input GEMM kernels of --precision fp16 / bf16 (PREC_F16 / PREC_BF16
 * variants of gemm_tiled.comp, each tile shape, and gemm_texel.comp), conv2d and dense, forward
 * and backward, with the context's precision set (vkr_context_set_precision); ops gemm_f16 and
 * gemm_bf16 (the suite's name picks the format):
 *   - against the double reference on the inputs rounded to the format (runtime/ref/half_ref.c):
 *     within TOL_GEMM, i.e. the kernels round exactly those inputs and accumulate in fp32;
 *   - against the plain fp32 reference: within TOL_GEMM_F16 / TOL_GEMM_BF16 relative to max
 *     sum |a b| (the format's epsilon bound, tolerances.h);
 *   - the same with split-K weight gradients forced (the SPLITK partials of the fp16 kernels);
 *   - fp16: an input beyond fp16's range (1e5) turns the outputs it reaches into inf / NaN (what
 *     dynamic loss scaling detects), the others stay finite;
 *   - fp16: single values (ties, subnormals, the range's end) come out exactly rounded.
 * The bias gradient is an fp32 sum (not a GEMM): checked against the fp32 reference.
 * fp16: SKIP where the device lacks shaderFloat16 (bf16 runs on any device). */
#include "ops/gemm_conv.h"
#include "ref/conv2d_ref.h"
#include "ref/half_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

static const struct {
    vkr_gemm_variant v;
    int tile;
} k_var[] = {{VKR_GEMM_TILED, 0}, {VKR_GEMM_TILED, 1}, {VKR_GEMM_TILED, 2}, {VKR_GEMM_TEXEL, -1}};

typedef struct {
    vkr_conv2d_shape p;
    int dense;
    int splits; /* > 0: split-K of the weight gradient forced to this many partial sums */
} f16_case;

static void force(int i) {
    vkr_gemm_force_variant(i < 0 ? VKR_GEMM_AUTO : k_var[i].v);
    vkr__gemm_force_tiled_config(i < 0 ? -1 : k_var[i].tile);
}

static void label(char *buf, size_t n, int v, const f16_case *k) {
    const vkr_conv2d_shape *p = &k->p;
    char vn[32];
    if (k_var[v].tile > 0) snprintf(vn, sizeof vn, "tiled%dx%d", vkr__tiled_config_at(k_var[v].tile)->bm,
                                    vkr__tiled_config_at(k_var[v].tile)->bn);
    else snprintf(vn, sizeof vn, "%s", vkr_gemm_variant_name(k_var[v].v));
    int o = k->dense ? snprintf(buf, n, "%s %dx%d->%d", vn, p->n, p->c, p->k)
                     : snprintf(buf, n, "%s n%d c%d %dx%d k%d %dx%d/%d", vn, p->n, p->c, p->h, p->w, p->k, p->r, p->s,
                                p->stride_h);
    if (k->splits && o > 0 && (size_t)o < n) snprintf(buf + o, n - (size_t)o, " S%d", k->splits);
}

static double max_of(const double *x, size_t n) {
    double m = 0;
    for (size_t i = 0; i < n; i++) m = fabs(x[i]) > m ? fabs(x[i]) : m;
    return m;
}

/* |x| in [0.1, 2) with random signs, as floats (the device gets exactly these values) */
static double *rand_away(st_case *c, size_t n) {
    double *x = st_rand_away_from_zero(c, n);
    for (size_t i = 0; x && i < n; i++) x[i] = (float)x[i];
    return x;
}

static double *absd(st_case *c, const double *x, size_t n) {
    double *a = st_doubles(c, n);
    for (size_t i = 0; a && i < n; i++) a[i] = fabs(x[i]);
    return a;
}

/* A conv (a dense layer is the 1x1 conv over [B, IN, 1, 1]; vkr_dense_* record the same GEMMs). */
static vkr_status rec(vkr_cmd *k, const f16_case *kc, int fwd, vkr_buffer *out, vkr_buffer *inp, vkr_buffer *w,
                      vkr_buffer *b, vkr_buffer *dout, vkr_buffer *dinp, vkr_buffer *dw, vkr_buffer *db) {
    const vkr_conv2d_shape *p = &kc->p;
    if (kc->dense)
        return fwd ? vkr_dense_forward(k, p->n, p->c, p->k, out, inp, w, b)
                   : vkr_dense_backward(k, p->n, p->c, p->k, dinp, dw, db, dout, inp, w);
    return fwd ? vkr_conv2d_forward(k, p, out, inp, w, b) : vkr_conv2d_backward(k, p, dinp, dw, db, dout, inp, w);
}

typedef struct {
    double *out, *dinp, *dw, *db;
} refs;

static int is_bf16(const st_case *c) { return !strcmp(c->op, "gemm_bf16"); }

/* The format's rounding of n values (runtime/ref/half_ref.c). */
static void round_to(const st_case *c, double *out, const double *x, size_t n) {
    if (is_bf16(c)) vkr_ref_round_bf16_array(out, x, n);
    else vkr_ref_round_f16_array(out, x, n);
}

/* out, dinp, dw, db carved from one host array (the arena holds few arrays per case) */
static refs refs_new(st_case *c, size_t no, size_t ni, size_t nw, size_t nb) {
    double *a = st_doubles(c, no + ni + nw + nb);
    refs r = {a, a ? a + no : NULL, a ? a + no + ni : NULL, a ? a + no + ni + nw : NULL};
    return r;
}

/* Downloads b into the host array got (n floats). */
static void down(st_case *c, vkr_buffer *b, float *got, size_t n) {
    if (!c->s) c->s = vkr_buffer_download(b, 0, got, n * sizeof(float));
}

static void f16_run(st_case *c, const void *kase) {
    const f16_case *kc = kase;
    const vkr_conv2d_shape *p = &kc->p;
    size_t ni = (size_t)p->n * p->c * p->h * p->w, nw = (size_t)p->k * p->c * p->r * p->s, nb = (size_t)p->k;
    size_t no = (size_t)p->n * p->k * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    double *di = rand_away(c, ni), *dw = rand_away(c, nw), *db = st_rand(c, nb, -1, 1), *dd = rand_away(c, no);
    double *hi = st_doubles(c, ni), *hw = st_doubles(c, nw), *hd = st_doubles(c, no); /* rounded to fp16 */
    refs R32 = refs_new(c, no, ni, nw, nb), R16 = refs_new(c, no, ni, nw, nb);
    refs S = refs_new(c, no, ni, nw, nb); /* sum |a b| */
    float *go = st_alloc(c, no * 4), *gi = st_alloc(c, ni * 4), *gw = st_alloc(c, nw * 4), *gb = st_alloc(c, nb * 4);
    double *ai = absd(c, di, ni), *aw = absd(c, dw, nw), *ad = absd(c, dd, no);
    vkr_buffer *inp = st_up(c, di, ni), *w = st_up(c, dw, nw), *b = st_up(c, db, nb), *dout = st_up(c, dd, no);
    vkr_buffer *out = st_fill(c, no, NAN), *dinp = st_fill(c, ni, NAN), *dwb = st_fill(c, nw, NAN), *dbb = st_fill(c, nb, NAN);
    if (c->s) return;
    round_to(c, hi, di, ni);
    round_to(c, hw, dw, nw);
    round_to(c, hd, dd, no);
    vkr_ref_conv2d_forward(R32.out, di, dw, db, p);
    vkr_ref_conv2d_backward(R32.dinp, R32.dw, R32.db, dd, di, dw, p);
    vkr_ref_conv2d_forward(R16.out, hi, hw, db, p);
    vkr_ref_conv2d_backward(R16.dinp, R16.dw, R16.db, hd, hi, hw, p);
    vkr_ref_conv2d_forward(S.out, ai, aw, NULL, p);
    vkr_ref_conv2d_backward(S.dinp, S.dw, S.db, ad, ai, aw, p);
    for (size_t v = 0; v < sizeof k_var / sizeof k_var[0] && !c->s; v++) {
        char lab[128];
        label(lab, sizeof lab, (int)v, kc);
        force((int)v);
        st_err f16 = {0, 0}, f32 = {0, 0}, g16 = {0, 0}, g32 = {0, 0}, eb = {0, 0};
        ST_RUN(c, NULL, k, rec(k, kc, 1, out, inp, w, b, NULL, NULL, NULL, NULL));
        uint32_t nd0 = 0, nd = 0; /* dispatches unsplit and split: the split must really run */
        if (kc->splits) {
            vkr__gemm_force_split(1);
            ST_RUN(c, &nd0, k, rec(k, kc, 0, NULL, inp, w, NULL, dout, dinp, dwb, dbb));
        }
        vkr__gemm_force_split(kc->splits);
        ST_RUN(c, &nd, k, rec(k, kc, 0, NULL, inp, w, NULL, dout, dinp, dwb, dbb));
        vkr__gemm_force_split(0);
        if (kc->splits) st_expect_split(c, "backward split-K ran", nd, nd0);
        down(c, out, go, no);
        down(c, dinp, gi, ni);
        down(c, dwb, gw, nw);
        down(c, dbb, gb, nb);
        if (c->s) break;
        st_cmp_host(go, R16.out, no, 0, &f16);
        st_cmp_host(go, R32.out, no, max_of(S.out, no), &f32);
        st_cmp_host(gi, R16.dinp, ni, 0, &g16);
        st_cmp_host(gw, R16.dw, nw, 0, &g16);
        st_cmp_host(gi, R32.dinp, ni, max_of(S.dinp, ni), &g32);
        st_cmp_host(gw, R32.dw, nw, max_of(S.dw, nw), &g32);
        st_cmp_host(gb, R32.db, nb, 0, &eb);
        double tol = is_bf16(c) ? TOL_GEMM_BF16 : TOL_GEMM_F16;
        st_report(c, "forward vs rounded-input ref", lab, f16, TOL_GEMM);
        st_report(c, "forward vs fp32 ref", lab, f32, tol);
        st_report(c, "backward vs rounded-input ref", lab, g16, TOL_GEMM);
        st_report(c, "backward vs fp32 ref", lab, g32, tol);
        st_report(c, "backward bias (fp32 sum)", lab, eb, TOL_GEMM);
    }
    force(-1);
}

/* One input of 1e5 (> 65504): the outputs whose sums include it are inf or NaN, the others finite
 * and right (against the fp16-input reference with that input left out). */
static void f16_overflow(st_case *c, const void *kase) {
    const f16_case *kc = kase;
    const vkr_conv2d_shape *p = &kc->p;
    size_t ni = (size_t)p->n * p->c * p->h * p->w, nw = (size_t)p->k * p->c * p->r * p->s;
    size_t no = (size_t)p->n * p->k * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    double *di = rand_away(c, ni), *dw = rand_away(c, nw);
    double *hi = st_doubles(c, ni), *hw = st_doubles(c, nw), *ref = st_doubles(c, no), *mark = st_doubles(c, no);
    double *one = st_doubles(c, ni), *aw = absd(c, dw, nw);
    if (c->s) return;
    di[ni / 2] = 1e5;
    vkr_ref_round_f16_array(hi, di, ni);
    vkr_ref_round_f16_array(hw, dw, nw);
    hi[ni / 2] = 0;
    vkr_ref_conv2d_forward(ref, hi, hw, NULL, p);
    one[ni / 2] = 1;
    vkr_ref_conv2d_forward(mark, one, aw, NULL, p); /* > 0 where the big input is used */
    vkr_buffer *inp = st_up(c, di, ni), *w = st_up(c, dw, nw), *out = st_fill(c, no, 0);
    for (size_t v = 0; v < sizeof k_var / sizeof k_var[0] && !c->s; v++) {
        char lab[128];
        label(lab, sizeof lab, (int)v, kc);
        force((int)v);
        ST_RUN(c, NULL, k, rec(k, kc, 1, out, inp, w, NULL, NULL, NULL, NULL, NULL));
        float *got = st_down(c, out, no);
        if (!got) break;
        size_t bad = 0, hit = 0;
        double err = 0, big = max_of(ref, no);
        for (size_t i = 0; i < no; i++) {
            if (mark[i] > 0) {
                hit++;
                bad += isfinite(got[i]) != 0;
            } else if (!isfinite(got[i])) {
                bad++;
            } else if (fabs(got[i] - ref[i]) > err) {
                err = fabs(got[i] - ref[i]);
            }
        }
        bad += hit == 0 || err > TOL_GEMM * big;
        st_report_bad(c, "input > 65504 gives inf/NaN", lab, (double)bad);
    }
    force(-1);
}

/* The fp16 rounding itself, value by value: a dense layer of one input and one output (weight 1,
 * no bias) over one image per value gives out[n] = round(x[n]) exactly (an fp16 value times 1 in
 * fp32).  Ties to even, fp16 subnormals and their ties, the largest finite value, 65520 -> inf;
 * exactly runtime/ref/half_ref.c's values (what every driver must give, gemm_conv.glsl). */
static void f16_values(st_case *c, const void *kase) {
    (void)kase;
    static const double x[] = {1 + 0x1p-11, 1 + 0x3p-11, -(1 + 0x1p-11), 1 + 0x1p-11 + 0x1p-20, 0x1.ffep-1,
                               0x1p-25, 0x3p-25, 0x1p-24 + 0x1p-26, 0x1.ffcp-15, 3e-7, -1e-9, 65504, 65519,
                               65520, -70000, 2049, 2051, 1e-3, 0.1, 3.14159265};
    enum { N = sizeof x / sizeof x[0] };
    const vkr_conv2d_shape p = {N, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    double one = 1, ref[N];
    for (int i = 0; i < N; i++) ref[i] = vkr_ref_round_f16((float)x[i]);
    vkr_buffer *inp = st_up(c, x, N), *w = st_up(c, &one, 1), *out = st_fill(c, N, 0);
    for (size_t v = 0; v < sizeof k_var / sizeof k_var[0] && !c->s; v++) {
        f16_case kc = {p, 1, 0};
        char lab[128];
        label(lab, sizeof lab, (int)v, &kc);
        force((int)v);
        ST_RUN(c, NULL, k, rec(k, &kc, 1, out, inp, w, NULL, NULL, NULL, NULL, NULL));
        float *got = st_down(c, out, N);
        if (!got) break;
        size_t bad = 0;
        for (int i = 0; i < N; i++) {
            float want = (float)ref[i];
            bad += !(got[i] == want); /* exact (an accumulation from +0 makes -0 +0) */
        }
        st_report_bad(c, "rounding of single values", lab, (double)bad);
    }
    force(-1);
}

static vkr_status check(vkr_context *ctx, vkr_selftest *st, vkr_precision prec) {
    /* n c h w k r s sh sw pt pb pl pr dh dw groups */
#define D(b, i, o, sk) {{b, i, 1, 1, o, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, 1, sk}
    static const f16_case cases[] = {
        {{2, 5, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0},   /* 3x3 pad 1, K = 45 */
        {{2, 16, 8, 8, 12, 3, 3, 2, 2, 1, 1, 1, 1, 1, 1, 1}, 0, 0}, /* stride 2: dgrad phases, K = 144 */
        {{2, 64, 6, 6, 20, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}, 0, 0}, /* pointwise, vec4 operands, K = 64 */
        {{2, 3, 23, 17, 8, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1}, 0, 0}, /* conv1-like 7x7/2 */
        {{3, 5, 9, 7, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 3}, /* split-K weight gradient, uneven */
        D(9, 512, 10, 0),                                        /* dense head, K = 512 */
        D(37, 20, 9, 0),
        D(37, 20, 9, 4),
    };
    static const f16_case over[] = {{{1, 4, 6, 6, 5, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}, 0, 0}, D(4, 16, 8, 0)};
#undef D
    vkr_precision was = vkr_context_precision(ctx);
    vkr_status s = vkr_context_set_precision(ctx, prec);
    if (s) return s;
    st_suite S;
    st_suite_init(&S, ctx, st, prec == VKR_PRECISION_BF16 ? "gemm_bf16" : "gemm_f16", 61);
    s = ST_EACH(&S, cases, f16_run);
    if (!s && prec == VKR_PRECISION_FP16) s = ST_EACH(&S, over, f16_overflow);
    if (!s && prec == VKR_PRECISION_FP16) s = ST_ONCE(&S, f16_values, NULL);
    vkr_context_set_precision(ctx, was);
    return s;
}

vkr_status vkr_check_gemm_f16(vkr_context *ctx, vkr_selftest *st) {
    if (!vkr_context_device(ctx)->fp16_arithmetic) {
        vkr_selftest_skip(st, "gemm_f16", "forward, backward", "SKIP: the device lacks shaderFloat16");
        return VKR_OK;
    }
    return check(ctx, st, VKR_PRECISION_FP16);
}

vkr_status vkr_check_gemm_bf16(vkr_context *ctx, vkr_selftest *st) { return check(ctx, st, VKR_PRECISION_BF16); }
