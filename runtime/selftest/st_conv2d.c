/* conv2d and dense on the device (both GEMM variants) vs runtime/ref/conv2d_ref.c and
 * runtime/ref/dense_ref.c; the references' backward vs central finite differences. */
#include "ops/gemm_conv.h"
#include "ref/conv2d_ref.h"
#include "ref/dense_ref.h"
#include "vkrun_ops.h"
#include "vkrun_selftest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define TOL_GPU 2e-5 /* fp32 sums of up to a few thousand products, relative to max |ref| */
#define TOL_FD 1e-6

/* Every kernel under test: each TILED tile shape (vkr__tiled_config) and TEXEL. */
static const struct {
    vkr_gemm_variant v;
    int tile; /* TILED: index into the tile table */
} k_variants[] = {{VKR_GEMM_TILED, 0}, {VKR_GEMM_TILED, 1}, {VKR_GEMM_TILED, 2}, {VKR_GEMM_TEXEL, -1}};

/* Forces variant i of k_variants (-1: back to the device's choice). */
static void force_variant(int i) {
    vkr_gemm_force_variant(i < 0 ? VKR_GEMM_AUTO : k_variants[i].v);
    vkr__gemm_force_tiled_config(i < 0 ? -1 : k_variants[i].tile);
}

typedef struct {
    int n, c, h, w, k, r, s, sh, sw, pt, pb, pl, pr;
    int bias;
    int split; /* > 0: force batch chunks of this many images */
} conv_case;

static vkr_conv2d_shape to_shape(const conv_case *c) {
    vkr_conv2d_shape p = {c->n, c->c, c->h, c->w, c->k, c->r, c->s, c->sh, c->sw, c->pt, c->pb, c->pl, c->pr};
    return p;
}

static void shape_str(char *buf, size_t size, int vi, const vkr_conv2d_shape *p, int dense, int bias,
                      int split, const char *extra) {
    char vname[40] = "";
    if (vi >= 0 && k_variants[vi].tile > 0)
        snprintf(vname, sizeof vname, "tiled%dx%d", vkr__tiled_config_at(k_variants[vi].tile)->bm,
                 vkr__tiled_config_at(k_variants[vi].tile)->bn);
    else if (vi >= 0)
        snprintf(vname, sizeof vname, "%s", vkr_gemm_variant_name(k_variants[vi].v));
    const char *vn = vname, *sp = vi < 0 ? "" : " ";
    if (dense)
        snprintf(buf, size, "%s%s%dx%d->%d%s%s%s", vn, sp, p->n, p->c, p->k, bias ? "" : " nobias",
                 split ? " split" : "", extra);
    else
    {
        char st[32];
        if (p->stride_w == p->stride_h) snprintf(st, sizeof st, "%d", p->stride_h);
        else snprintf(st, sizeof st, "%dx%d", p->stride_h, p->stride_w);
        snprintf(buf, size, "%s%sn%d c%d %dx%d k%d %dx%d/%s pad(%d,%d,%d,%d)%s%s%s", vn, sp, p->n, p->c, p->h, p->w,
                 p->k, p->r, p->s, st, p->pad_t, p->pad_b, p->pad_l, p->pad_r, bias ? "" : " nobias",
                 split ? " split" : "", extra);
    }
}

/* Rel error of got vs ref folded into *rel / *abs (max). */
static void fold(const float *got, const double *ref, size_t n, double *abs_, double *rel) {
    double a, r;
    vkr_compare(got, ref, n, &a, &r);
    if (a > *abs_ || a != a) *abs_ = a;
    if (r > *rel || r != r) *rel = r;
}

/* Bytes of a chunk limit that gives `images` images per chunk (see plan_chunk in gemm_conv.c). */
uint64_t vkr_st_conv_chunk_limit(const vkr_context *ctx, const vkr_conv2d_shape *p, int images);
uint64_t vkr_st_conv_chunk_limit(const vkr_context *ctx, const vkr_conv2d_shape *p, int images) {
    const vkr_device_info *I = vkr_context_device(ctx);
    uint64_t a = I->min_storage_buffer_offset_alignment;
    if (I->min_texel_buffer_offset_alignment > a) a = I->min_texel_buffer_offset_alignment;
    if (a < 16) a = 16;
    uint64_t chw = (uint64_t)p->c * p->h * p->w, kohw = (uint64_t)p->k * vkr_conv2d_out_h(p) * vkr_conv2d_out_w(p);
    uint64_t per = (chw > kohw ? chw : kohw) * 4;
    return a + 16 + per * images + per / 2;
}

typedef struct {
    vkr_buffer *inp, *w, *b, *out, *dout, *dinp, *dw, *db;
} bufs;

static void bufs_free(bufs *B) {
    vkr_buffer_destroy(B->inp);
    vkr_buffer_destroy(B->w);
    vkr_buffer_destroy(B->b);
    vkr_buffer_destroy(B->out);
    vkr_buffer_destroy(B->dout);
    vkr_buffer_destroy(B->dinp);
    vkr_buffer_destroy(B->dw);
    vkr_buffer_destroy(B->db);
    memset(B, 0, sizeof *B);
}

static vkr_status record(vkr_cmd *cmd, int dense, int fwd, const vkr_conv2d_shape *p, bufs *B, int use_bias,
                         int want_dinp, int want_dw, int want_db) {
    if (dense) {
        if (fwd) return vkr_dense_forward(cmd, p->n, p->c, p->k, B->out, B->inp, B->w, use_bias ? B->b : NULL);
        return vkr_dense_backward(cmd, p->n, p->c, p->k, want_dinp ? B->dinp : NULL, want_dw ? B->dw : NULL,
                                  want_db ? B->db : NULL, B->dout, B->inp, B->w);
    }
    if (fwd) return vkr_conv2d_forward(cmd, p, B->out, B->inp, B->w, use_bias ? B->b : NULL);
    return vkr_conv2d_backward(cmd, p, want_dinp ? B->dinp : NULL, want_dw ? B->dw : NULL, want_db ? B->db : NULL,
                               B->dout, B->inp, B->w);
}

static vkr_status run1(vkr_context *ctx, int dense, int fwd, const vkr_conv2d_shape *p, bufs *B, int use_bias,
                       int want_dinp, int want_dw, int want_db, uint32_t *dispatches) {
    vkr_cmd *cmd;
    vkr_status s = vkr_cmd_begin(ctx, &cmd);
    if (s) return s;
    s = record(cmd, dense, fwd, p, B, use_bias, want_dinp, want_dw, want_db);
    if (dispatches) *dispatches = vkr_cmd_dispatch_count(cmd);
    if (!s) s = vkr_cmd_submit(cmd);
    vkr_cmd_free(cmd);
    return s;
}

/* One shape: reference once, then every variant; forward and backward lines. */
static vkr_status check_case(vkr_context *ctx, vkr_selftest *st, const char *op, int dense, const conv_case *cc,
                             vkr_rng *rng) {
    vkr_conv2d_shape p = to_shape(cc);
    int OH = vkr_conv2d_out_h(&p), OW = vkr_conv2d_out_w(&p);
    size_t ni = (size_t)p.n * p.c * p.h * p.w, nw = (size_t)p.k * p.c * p.r * p.s, nb = (size_t)p.k,
           no = (size_t)p.n * p.k * OH * OW;
    float *hi = malloc(ni * 4), *hw = malloc(nw * 4), *hb = malloc(nb * 4), *hd = malloc(no * 4);
    float *junk = malloc((ni > nw ? (ni > no ? ni : no) : (nw > no ? nw : no)) * 4);
    double *di = NULL, *dw = NULL, *db = NULL, *dd = NULL;
    double *rout = malloc(no * 8), *rdi = malloc(ni * 8), *rdw = malloc(nw * 8), *rdb = malloc(nb * 8);
    float *got = NULL;
    bufs B = {0};
    vkr_status s = VKR_OK;
    if (!hi || !hw || !hb || !hd || !junk || !rout || !rdi || !rdw || !rdb) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    vkr_rng_fill(rng, hi, ni, -1, 1);
    vkr_rng_fill(rng, hw, nw, -1, 1);
    vkr_rng_fill(rng, hb, nb, -1, 1);
    vkr_rng_fill(rng, hd, no, -1, 1);
    for (size_t i = 0; i < (ni > nw ? (ni > no ? ni : no) : (nw > no ? nw : no)); i++) junk[i] = 1e3f; /* stale values */
    di = vkr_to_double(hi, ni);
    dw = vkr_to_double(hw, nw);
    db = vkr_to_double(hb, nb);
    dd = vkr_to_double(hd, no);
    if (!di || !dw || !db || !dd) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    if (dense) {
        vkr_ref_dense_forward(p.n, p.c, p.k, rout, di, dw, cc->bias ? db : NULL);
        vkr_ref_dense_backward(p.n, p.c, p.k, rdi, rdw, rdb, dd, di, dw);
    } else {
        vkr_ref_conv2d_forward(rout, di, dw, cc->bias ? db : NULL, &p);
        vkr_ref_conv2d_backward(rdi, rdw, rdb, dd, di, dw, &p);
    }
    if ((s = vkr_upload_new(ctx, hi, ni, &B.inp)) || (s = vkr_upload_new(ctx, hw, nw, &B.w)) ||
        (s = vkr_upload_new(ctx, hb, nb, &B.b)) || (s = vkr_upload_new(ctx, hd, no, &B.dout)) ||
        (s = vkr_upload_new(ctx, junk, no, &B.out)) || (s = vkr_upload_new(ctx, junk, ni, &B.dinp)) ||
        (s = vkr_upload_new(ctx, junk, nw, &B.dw)) || (s = vkr_upload_new(ctx, junk, nb, &B.db)))
        goto done;
    if (cc->split) vkr__gemm_set_chunk_limit(vkr_st_conv_chunk_limit(ctx, &p, cc->split));
    for (size_t v = 0; v < sizeof k_variants / sizeof k_variants[0]; v++) {
        char shape[160];
        double fa = 0, fr = 0, ba = 0, br = 0;
        force_variant((int)v);
        /* forward (one dispatch per batch chunk: the split cases must really split) */
        uint32_t nd = 0;
        if ((s = run1(ctx, dense, 1, &p, &B, cc->bias, 0, 0, 0, &nd))) goto done;
        if ((s = vkr_download_new(B.out, no, &got))) goto done;
        fold(got, rout, no, &fa, &fr);
        if (cc->split && nd < (uint32_t)((p.n + cc->split - 1) / cc->split)) fa = fr = INFINITY;
        free(got);
        got = NULL;
        shape_str(shape, sizeof shape, (int)v, &p, dense, cc->bias, cc->split, "");
        vkr_selftest_add(st, op, "forward", shape, fa, fr, TOL_GPU);
        /* backward: all three gradients (overwriting stale values) */
        if ((s = run1(ctx, dense, 0, &p, &B, 1, 1, 1, 1, NULL))) goto done;
        if ((s = vkr_download_new(B.dinp, ni, &got))) goto done;
        fold(got, rdi, ni, &ba, &br);
        free(got);
        if ((s = vkr_download_new(B.dw, nw, &got))) goto done;
        fold(got, rdw, nw, &ba, &br);
        free(got);
        if ((s = vkr_download_new(B.db, nb, &got))) goto done;
        fold(got, rdb, nb, &ba, &br);
        free(got);
        got = NULL;
        vkr_selftest_add(st, op, "backward", shape, ba, br, TOL_GPU);
    }
done:
    force_variant(-1);
    vkr__gemm_set_chunk_limit(0);
    bufs_free(&B);
    free(hi); free(hw); free(hb); free(hd); free(junk); free(got);
    free(di); free(dw); free(db); free(dd);
    free(rout); free(rdi); free(rdw); free(rdb);
    return s;
}

/* Backward with some gradients NULL: the others must still be right, the NULL ones untouched. */
static vkr_status check_partial(vkr_context *ctx, vkr_selftest *st, const char *op, int dense, const conv_case *cc,
                                vkr_rng *rng) {
    vkr_conv2d_shape p = to_shape(cc);
    size_t ni = (size_t)p.n * p.c * p.h * p.w, nw = (size_t)p.k * p.c * p.r * p.s;
    size_t no = (size_t)p.n * p.k * vkr_conv2d_out_h(&p) * vkr_conv2d_out_w(&p);
    float *hi = malloc(ni * 4), *hw = malloc(nw * 4), *hd = malloc(no * 4), *got = NULL;
    double *di = NULL, *dw = NULL, *dd = NULL, *rdi = malloc(ni * 8), *rdw = malloc(nw * 8);
    bufs B = {0};
    vkr_status s = VKR_OK;
    if (!hi || !hw || !hd || !rdi || !rdw) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    vkr_rng_fill(rng, hi, ni, -1, 1);
    vkr_rng_fill(rng, hw, nw, -1, 1);
    vkr_rng_fill(rng, hd, no, -1, 1);
    di = vkr_to_double(hi, ni);
    dw = vkr_to_double(hw, nw);
    dd = vkr_to_double(hd, no);
    if (!di || !dw || !dd) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    if (dense) vkr_ref_dense_backward(p.n, p.c, p.k, rdi, rdw, NULL, dd, di, dw);
    else vkr_ref_conv2d_backward(rdi, rdw, NULL, dd, di, dw, &p);
    if ((s = vkr_upload_new(ctx, hi, ni, &B.inp)) || (s = vkr_upload_new(ctx, hw, nw, &B.w)) ||
        (s = vkr_upload_new(ctx, hd, no, &B.dout)) || (s = vkr_upload_new(ctx, NULL, ni, &B.dinp)) ||
        (s = vkr_upload_new(ctx, NULL, nw, &B.dw)))
        goto done;
    for (size_t v = 0; v < sizeof k_variants / sizeof k_variants[0]; v++) {
        double a = 0, r = 0;
        char shape[200];
        force_variant((int)v);
        for (int which = 0; which < 2; which++) {
            /* which 0: only dweight (dinp must keep its marker); 1: only dinp */
            float *mark = malloc((which ? nw : ni) * 4);
            if (!mark) {
                s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
                goto done;
            }
            for (size_t i = 0; i < (which ? nw : ni); i++) mark[i] = 7.0f;
            s = vkr_buffer_upload(which ? B.dw : B.dinp, 0, mark, (which ? nw : ni) * 4);
            if (!s) s = run1(ctx, dense, 0, &p, &B, 0, which == 1, which == 0, 0, NULL);
            if (!s) s = vkr_download_new(which ? B.dinp : B.dw, which ? ni : nw, &got);
            if (!s) {
                fold(got, which ? rdi : rdw, which ? ni : nw, &a, &r);
                free(got);
                got = NULL;
                s = vkr_download_new(which ? B.dw : B.dinp, which ? nw : ni, &got);
            }
            if (!s)
                for (size_t i = 0; i < (which ? nw : ni); i++)
                    if (got[i] != 7.0f) r = a = INFINITY; /* a NULL gradient was written */
            free(mark);
            free(got);
            got = NULL;
            if (s) goto done;
        }
        shape_str(shape, sizeof shape, (int)v, &p, dense, 0, 0, " only-dw/only-dx");
        vkr_selftest_add(st, op, "backward", shape, a, r, TOL_GPU);
    }
done:
    force_variant(-1);
    bufs_free(&B);
    free(hi); free(hw); free(hd); free(got);
    free(di); free(dw); free(dd); free(rdi); free(rdw);
    return s;
}

/* ------------------------------------------------------------ finite differences */

typedef struct {
    vkr_conv2d_shape p;
    int dense;
    int which; /* 0: x = inp, 1: x = weight, 2: x = bias */
    const double *inp, *w, *b;
} fd_ud;

static void fd_fn(void *u, const double *x, double *out) {
    fd_ud *d = u;
    const double *inp = d->which == 0 ? x : d->inp, *w = d->which == 1 ? x : d->w, *b = d->which == 2 ? x : d->b;
    if (d->dense) vkr_ref_dense_forward(d->p.n, d->p.c, d->p.k, out, inp, w, b);
    else vkr_ref_conv2d_forward(out, inp, w, b, &d->p);
}

static vkr_status check_fd(vkr_selftest *st, const char *op, int dense, const conv_case *cc, vkr_rng *rng) {
    vkr_conv2d_shape p = to_shape(cc);
    size_t n[3] = {(size_t)p.n * p.c * p.h * p.w, (size_t)p.k * p.c * p.r * p.s, (size_t)p.k};
    size_t no = (size_t)p.n * p.k * vkr_conv2d_out_h(&p) * vkr_conv2d_out_w(&p);
    double *x[3], *g[3], *r = malloc(no * 8);
    int ok = r != NULL;
    for (int i = 0; i < 3; i++) {
        x[i] = malloc(n[i] * 8);
        g[i] = malloc(n[i] * 8);
        ok = ok && x[i] && g[i];
    }
    if (ok) {
        for (int i = 0; i < 3; i++)
            for (size_t j = 0; j < n[i]; j++) x[i][j] = vkr_rng_uniform(rng, -1, 1);
        for (size_t j = 0; j < no; j++) r[j] = vkr_rng_uniform(rng, -1, 1);
        /* dL/d* of L = sum r * out: the backward of dout = r */
        if (dense) vkr_ref_dense_backward(p.n, p.c, p.k, g[0], g[1], g[2], r, x[0], x[1]);
        else vkr_ref_conv2d_backward(g[0], g[1], g[2], r, x[0], x[1], &p);
        static const char *names[3] = {" d-inp", " d-weight", " d-bias"};
        for (int i = 0; i < 3; i++) {
            fd_ud u = {p, dense, i, x[0], x[1], x[2]};
            double a, rel;
            vkr_fd_check(fd_fn, &u, x[i], n[i], no, r, g[i], 40, 1e-3, &a, &rel);
            char shape[200];
            shape_str(shape, sizeof shape, -1, &p, dense, 1, 0, names[i]);
            vkr_selftest_add(st, op, "backward ref vs finite diff", shape, a, rel, TOL_FD);
        }
    }
    for (int i = 0; i < 3; i++) {
        free(x[i]);
        free(g[i]);
    }
    free(r);
    return ok ? VKR_OK : vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
}

/* Bad arguments are refused with VKR_ERR_INVALID, good ones accepted. */
static vkr_status check_invalid(vkr_context *ctx, vkr_selftest *st, const char *op, int dense) {
    vkr_buffer *b = NULL, *o = NULL; /* 16 floats each */
    vkr_cmd *cmd = NULL;
    vkr_status s = vkr_buffer_create(ctx, 64, &b);
    if (!s) s = vkr_buffer_create(ctx, 64, &o);
    if (!s) s = vkr_cmd_begin(ctx, &cmd);
    int bad = 0;
    if (!s && dense) {
        bad += vkr_dense_forward(cmd, 0, 4, 4, o, b, b, NULL) != VKR_ERR_INVALID;
        bad += vkr_dense_forward(cmd, 4, 5, 4, o, b, b, NULL) != VKR_ERR_INVALID; /* inp: 20 > 16 floats */
        bad += vkr_dense_forward(cmd, 4, 4, 4, o, b, b, b) != VKR_OK;
        bad += vkr_dense_backward(cmd, 4, 4, 4, o, NULL, NULL, NULL, b, b) != VKR_ERR_INVALID; /* no dout */
        bad += vkr_dense_backward(cmd, 4, 4, 5, o, NULL, NULL, b, b, b) != VKR_ERR_INVALID;    /* weight 20 */
    } else if (!s) {
        vkr_conv2d_shape p = {1, 1, 4, 4, 1, 3, 3, 1, 1, 0, 0, 0, 0};
        bad += vkr_conv2d_forward(cmd, &p, o, b, b, NULL) != VKR_OK;
        vkr_conv2d_shape q = p;
        q.r = 5; /* larger than the input */
        bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
        q = p;
        q.stride_h = 0;
        bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
        q = p;
        q.pad_l = -1;
        bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
        q = p;
        q.c = 2; /* inp needs 32 floats */
        bad += vkr_conv2d_forward(cmd, &q, o, b, b, NULL) != VKR_ERR_INVALID;
        bad += vkr_conv2d_backward(cmd, &p, o, NULL, NULL, NULL, b, b) != VKR_ERR_INVALID; /* no dout */
        bad += vkr_conv2d_forward(cmd, NULL, o, b, b, NULL) != VKR_ERR_INVALID;
    }
    if (!s) s = vkr_cmd_submit(cmd);
    vkr_cmd_free(cmd);
    vkr_buffer_destroy(b);
    vkr_buffer_destroy(o);
    if (!s) vkr_selftest_add(st, op, "argument checks", "bad shapes/buffers refused", bad, bad, 0.5);
    return s;
}

vkr_status vkr_check_splitk(vkr_context *ctx, vkr_selftest *st, int dense); /* st_splitk.c */

vkr_status vkr_check_conv2d(vkr_context *ctx, vkr_selftest *st) {
    /* n c h w  k r s  sh sw  pt pb pl pr  bias split */
    static const conv_case cases[] = {
        {1, 1, 5, 5, 1, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},
        {3, 7, 13, 11, 5, 3, 3, 2, 2, 1, 2, 0, 1, 1, 0},
        {1, 3, 23, 17, 13, 7, 7, 2, 2, 3, 3, 3, 3, 1, 0},   /* conv1-like 7x7/2 pad 3 */
        {3, 13, 8, 8, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 0},     /* pointwise, HW % 4 == 0 */
        {1, 127, 7, 7, 13, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0},   /* pointwise, HW = 49 */
        {3, 8, 6, 10, 12, 1, 1, 2, 2, 0, 0, 0, 0, 1, 0},    /* 1x1/2 downsampling */
        {1, 7, 9, 12, 3, 1, 3, 1, 1, 0, 0, 1, 1, 1, 0},     /* 1x3 */
        {3, 3, 10, 7, 7, 3, 3, 1, 1, 2, 2, 2, 2, 1, 0},     /* padding > kernel/2 */
        {1, 16, 8, 8, 12, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},    /* C*R*S % 4 == 0 */
        {3, 127, 5, 6, 3, 3, 3, 2, 1, 0, 1, 1, 0, 0, 0},    /* asymmetric stride and pad */
        {1, 4, 9, 9, 5, 3, 3, 3, 3, 4, 2, 2, 4, 1, 0},      /* stride 3, pad > kernel */
        {3, 5, 6, 7, 4, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1},      /* batch chunks of 1 image */
        {3, 8, 4, 4, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 2},      /* chunks, vec4 operands */
        {1, 16, 2, 2, 64, 3, 3, 1, 1, 1, 1, 1, 1, 1, 0},    /* few pixels, many rows */
    };
    static const conv_case fd[] = {
        {2, 2, 5, 4, 3, 3, 3, 2, 2, 1, 0, 1, 2, 1, 0},
        {1, 3, 4, 5, 2, 2, 3, 1, 1, 0, 1, 2, 0, 1, 0},
    };
    vkr_rng rng;
    vkr_rng_seed(&rng, 2024);
    vkr_status s;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if ((s = check_case(ctx, st, "conv2d", 0, &cases[i], &rng))) return s;
    if ((s = check_partial(ctx, st, "conv2d", 0, &cases[1], &rng))) return s;
    for (size_t i = 0; i < sizeof fd / sizeof fd[0]; i++)
        if ((s = check_fd(st, "conv2d", 0, &fd[i], &rng))) return s;
    if ((s = vkr_check_splitk(ctx, st, 0))) return s;
    return check_invalid(ctx, st, "conv2d", 0);
}

vkr_status vkr_check_dense(vkr_context *ctx, vkr_selftest *st) {
    /* dense: n = batch, c = in, k = out (the rest is the 1x1 conv) */
#define D(b, i, o, bias, split) {b, i, 1, 1, o, 1, 1, 1, 1, 0, 0, 0, 0, bias, split}
    static const conv_case cases[] = {
        D(3, 13, 7, 1, 0), D(5, 127, 1000, 1, 0), D(4, 64, 32, 1, 0), D(1, 7, 3, 0, 0),
        D(32, 512, 256, 1, 0), D(5, 12, 8, 1, 2),
    };
    static const conv_case fd[] = {D(3, 5, 4, 1, 0)};
#undef D
    vkr_rng rng;
    vkr_rng_seed(&rng, 77);
    vkr_status s;
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        if ((s = check_case(ctx, st, "dense", 1, &cases[i], &rng))) return s;
    if ((s = check_partial(ctx, st, "dense", 1, &cases[0], &rng))) return s;
    for (size_t i = 0; i < sizeof fd / sizeof fd[0]; i++)
        if ((s = check_fd(st, "dense", 1, &fd[i], &rng))) return s;
    if ((s = vkr_check_splitk(ctx, st, 1))) return s;
    return check_invalid(ctx, st, "dense", 1);
}
