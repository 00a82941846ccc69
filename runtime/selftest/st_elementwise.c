/* relu, add, zeropad, maxpool, avgpool, concat on the device vs their
 * references (runtime/ref/<op>_ref.c), and each reference backward vs
 * central finite differences.  Each op also runs once with the per-binding
 * chunk forced small (vkr__elem_force_chunk_floats) so the split path that
 * tensors over maxStorageBufferRange take is exercised. */
#include "ops/elem_split.h"
#include "ref/add_ref.h"
#include "ref/avgpool_ref.h"
#include "ref/concat_ref.h"
#include "ref/maxpool_ref.h"
#include "ref/relu_ref.h"
#include "ref/zeropad_ref.h"
#include "vkrun_ops.h"
#include "vkrun_selftest.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------ helpers */

#define MAXBUF 8
#define MAXHOST 24

/* Buffers and host arrays of one case, freed together. */
typedef struct {
    vkr_context *ctx;
    vkr_buffer *buf[MAXBUF];
    int nbuf;
    void *host[MAXHOST];
    int nhost;
    vkr_status s;
} arena;

static void arena_free(arena *a) {
    for (int i = 0; i < a->nbuf; i++) vkr_buffer_destroy(a->buf[i]);
    for (int i = 0; i < a->nhost; i++) free(a->host[i]);
    a->nbuf = a->nhost = 0;
}

static void *halloc(arena *a, size_t bytes) {
    if (a->s) return NULL;
    void *p = a->nhost < MAXHOST ? calloc(1, bytes ? bytes : 1) : NULL;
    if (!p) {
        a->s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        return NULL;
    }
    a->host[a->nhost++] = p;
    return p;
}
static double *dalloc(arena *a, size_t n) { return halloc(a, n * sizeof(double)); }

/* Random doubles that are exactly representable as floats. */
static double *rand_d(arena *a, vkr_rng *r, size_t n, double lo, double hi) {
    double *x = dalloc(a, n);
    if (x)
        for (size_t i = 0; i < n; i++) x[i] = (float)vkr_rng_uniform(r, lo, hi);
    return x;
}

/* Small integers in [-2, 2]: many exact ties (maxpool tie-breaking). */
static double *rand_ties(arena *a, vkr_rng *r, size_t n) {
    double *x = dalloc(a, n);
    if (x)
        for (size_t i = 0; i < n; i++) x[i] = floor(vkr_rng_uniform(r, -2, 3));
    return x;
}

/* n distinct values in [-2, 2), spaced >= 4/n apart, shuffled (finite differences of max). */
static double *rand_distinct(arena *a, vkr_rng *r, size_t n) {
    double *x = dalloc(a, n);
    if (!x) return NULL;
    for (size_t i = 0; i < n; i++) x[i] = -2.0 + 4.0 * (double)i / (double)n;
    for (size_t i = n; i > 1; i--) {
        size_t j = (size_t)vkr_rng_uniform(r, 0, (double)i);
        if (j >= i) j = i - 1;
        double t = x[i - 1];
        x[i - 1] = x[j];
        x[j] = t;
    }
    return x;
}

/* Values with |x| in [0.1, 2) (finite differences of relu away from the kink). */
static double *rand_away_from_zero(arena *a, vkr_rng *r, size_t n) {
    double *x = dalloc(a, n);
    if (x)
        for (size_t i = 0; i < n; i++) {
            double v = vkr_rng_uniform(r, 0.1, 2);
            x[i] = vkr_rng_uniform(r, 0, 1) < 0.5 ? -v : v;
        }
    return x;
}

static vkr_buffer *keep(arena *a, vkr_buffer *b) {
    if (b) a->buf[a->nbuf++] = b;
    return b;
}

/* Device buffer holding x (as floats). */
static vkr_buffer *up(arena *a, const double *x, size_t n) {
    if (a->s || a->nbuf >= MAXBUF) {
        if (!a->s) a->s = vkr_fail(VKR_ERR_INVALID, "selftest arena full");
        return NULL;
    }
    float *f = vkr_to_float(x, n);
    vkr_buffer *b = NULL;
    if (!f) a->s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    else a->s = vkr_upload_new(a->ctx, f, n, &b);
    free(f);
    return keep(a, b);
}

/* Device buffer of n floats filled with NaN, so a value the op fails to write shows. */
static vkr_buffer *garbage(arena *a, size_t n) {
    if (a->s || a->nbuf >= MAXBUF) {
        if (!a->s) a->s = vkr_fail(VKR_ERR_INVALID, "selftest arena full");
        return NULL;
    }
    float *f = malloc((n ? n : 1) * sizeof *f);
    vkr_buffer *b = NULL;
    if (!f) a->s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    else {
        for (size_t i = 0; i < n; i++) f[i] = NAN;
        a->s = vkr_upload_new(a->ctx, f, n, &b);
    }
    free(f);
    return keep(a, b);
}

/* Compares buffer contents with ref; errors maxed into *ma / *mr. */
static void cmp(arena *a, vkr_buffer *b, const double *ref, size_t n, double *ma, double *mr) {
    if (a->s) return;
    float *got = NULL;
    a->s = vkr_download_new(b, n, &got);
    if (a->s) return;
    double ea, er;
    vkr_compare(got, ref, n, &ea, &er);
    free(got);
    if (ea > *ma || ea != ea) *ma = ea;
    if (er > *mr || er != er) *mr = er;
}

/* Command stream helpers: begin, then submit+free (dispatch count optional). */
static vkr_cmd *begin(arena *a) {
    vkr_cmd *c = NULL;
    if (!a->s) a->s = vkr_cmd_begin(a->ctx, &c);
    return c;
}
static void submit(arena *a, vkr_cmd *c, vkr_status rec, uint32_t *ndispatch) {
    if (!a->s) a->s = rec;
    if (ndispatch) *ndispatch = c ? vkr_cmd_dispatch_count(c) : 0;
    if (!a->s) a->s = vkr_cmd_submit(c);
    vkr_cmd_free(c);
}

/* A split case must have recorded more than `min` dispatches; else record a failure. */
static void expect_split(vkr_selftest *st, const char *op, const char *dir, uint32_t nd, uint32_t min) {
    if (nd <= min) {
        char s[64];
        snprintf(s, sizeof s, "split path not taken (%u dispatches)", nd);
        vkr_selftest_add(st, op, dir, s, 1, 1, 0);
    }
}

#define FD "backward ref vs finite diff"
#define FD_H 1e-6
#define FD_TOL 1e-6

/* Forces the split path: bindings of about `per` planes of `max_plane` floats
 * (the largest plane of the op's tensors).  Cases use odd plane sizes and
 * per = 3 so that sub-range starts fall between alignment boundaries and the
 * shaders' base offsets are exercised. */
static void force_split(vkr_context *ctx, uint64_t per, uint64_t max_plane) {
    vkr__elem_force_chunk_floats(per * max_plane + 2 * vkr__elem_align_floats(ctx));
}

/* ---------------------------------------------------------------- relu */

/* Hash values in [-2, 2) (large cases without RNG cost). */
static float big_val(uint64_t i) {
    uint32_t h = (uint32_t)(i * 2654435761u) ^ (uint32_t)(i >> 13);
    h *= 0x85EBCA6Bu;
    return (float)((int32_t)(h >> 8) - (1 << 23)) / (float)(1 << 22);
}

typedef struct { uint64_t n; } relu_ud;
static void relu_f(void *ud, const double *x, double *out) { vkr_ref_relu_forward(((relu_ud *)ud)->n, out, x); }

vkr_status vkr_check_relu(vkr_context *ctx, vkr_selftest *st) {
    static const uint64_t sizes[] = {1, 7, 255, 256, 257, 100003, 2503};
    const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
    vkr_rng rng;
    vkr_rng_seed(&rng, 11);
    /* case k: in place (dinp == dout) for odd k; the last one forces the split path */
    for (int k = 0; k < nsizes; k++) {
        uint64_t n = sizes[k];
        int split = k == nsizes - 1, inplace = k & 1;
        arena a = {.ctx = ctx};
        double *x = rand_d(&a, &rng, n, -2, 2), *dout = rand_d(&a, &rng, n, -2, 2);
        double *out = dalloc(&a, n), *dinp = dalloc(&a, n);
        vkr_buffer *bx = up(&a, x, n), *bo = garbage(&a, n), *bd = up(&a, dout, n);
        vkr_buffer *bdi = inplace ? bd : garbage(&a, n);
        if (split) vkr__elem_force_chunk_floats(1000);
        uint32_t nd1 = 0, nd2 = 0;
        vkr_cmd *c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_relu_forward(c, n, bo, bx), &nd1);
        c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_relu_backward(c, n, bdi, bd, bo), &nd2);
        vkr__elem_force_chunk_floats(0);
        if (!a.s) {
            vkr_ref_relu_forward(n, out, x);
            vkr_ref_relu_backward(n, dinp, dout, out);
            char shape[64];
            snprintf(shape, sizeof shape, "n=%llu%s%s", (unsigned long long)n, split ? " split" : "",
                     inplace ? " inplace" : "");
            double ma = 0, mr = 0;
            cmp(&a, bo, out, n, &ma, &mr);
            if (!a.s) vkr_selftest_add(st, "relu", "forward", shape, ma, mr, 0);
            ma = mr = 0;
            cmp(&a, bdi, dinp, n, &ma, &mr);
            if (!a.s) vkr_selftest_add(st, "relu", "backward", shape, ma, mr, 0);
            if (split) {
                expect_split(st, "relu", "forward", nd1, 1);
                expect_split(st, "relu", "backward", nd2, 1);
            }
        }
        arena_free(&a);
        if (a.s) return a.s;
    }
    {
        /* over 65535 workgroups of 256: the 2-D grid (vkr_grid_1d / vkr_flat_index) with gy > 1.
         * In place, data from a hash (cheap under ASan), compared block by block. */
        uint64_t n = 65535ull * 256 + 4099;
        arena a = {.ctx = ctx};
        float *f = halloc(&a, n * sizeof(float));
        double *xd = dalloc(&a, 4096), *rd = dalloc(&a, 4096);
        vkr_buffer *b = NULL;
        if (!a.s) {
            for (uint64_t i = 0; i < n; i++) f[i] = big_val(i);
            a.s = vkr_upload_new(ctx, f, n, &b);
            keep(&a, b);
        }
        vkr_cmd *c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_relu_forward(c, n, b, b), NULL);
        if (!a.s) a.s = vkr_buffer_download(b, 0, f, n * sizeof(float));
        if (!a.s) {
            double ma = 0, mr = 0;
            for (uint64_t i0 = 0; i0 < n; i0 += 4096) {
                size_t m = n - i0 < 4096 ? (size_t)(n - i0) : 4096;
                for (size_t j = 0; j < m; j++) xd[j] = big_val(i0 + j);
                vkr_ref_relu_forward(m, rd, xd);
                double ea, er;
                vkr_compare(f + i0, rd, m, &ea, &er);
                if (ea > ma || ea != ea) ma = ea;
                if (er > mr || er != er) mr = er;
            }
            vkr_selftest_add(st, "relu", "forward", "n=16.8M inplace (2-D grid)", ma, mr, 0);
        }
        arena_free(&a);
        if (a.s) return a.s;
    }
    /* reference backward vs finite differences, away from the kink */
    static const uint64_t fd_sizes[] = {1, 37, 200};
    for (int k = 0; k < 3; k++) {
        uint64_t n = fd_sizes[k];
        arena a = {.ctx = ctx};
        double *x = rand_away_from_zero(&a, &rng, n), *r = rand_d(&a, &rng, n, -1, 1);
        double *out = dalloc(&a, n), *g = dalloc(&a, n);
        if (!a.s) {
            relu_ud ud = {n};
            vkr_ref_relu_forward(n, out, x);
            vkr_ref_relu_backward(n, g, r, out);
            double ma, mr;
            vkr_fd_check(relu_f, &ud, x, n, n, r, g, (int)n, FD_H, &ma, &mr);
            char shape[32];
            snprintf(shape, sizeof shape, "n=%llu", (unsigned long long)n);
            vkr_selftest_add(st, "relu", FD, shape, ma, mr, FD_TOL);
        }
        arena_free(&a);
        if (a.s) return a.s;
    }
    return VKR_OK;
}

/* ----------------------------------------------------------------- add */

typedef struct { uint64_t n; const double *b; } add_ud;
static void add_f(void *ud, const double *x, double *out) {
    add_ud *u = ud;
    vkr_ref_add_forward(u->n, out, x, u->b);
}

vkr_status vkr_check_add(vkr_context *ctx, vkr_selftest *st) {
    static const uint64_t sizes[] = {1, 7, 255, 256, 257, 100003, 2503};
    const int nsizes = (int)(sizeof sizes / sizeof sizes[0]);
    vkr_rng rng;
    vkr_rng_seed(&rng, 12);
    for (int k = 0; k < nsizes; k++) {
        uint64_t n = sizes[k];
        int split = k == nsizes - 1;
        int which = k % 3; /* backward: 0 both, 1 da only, 2 db only */
        arena a = {.ctx = ctx};
        double *x = rand_d(&a, &rng, n, -2, 2), *y = rand_d(&a, &rng, n, -2, 2), *dout = rand_d(&a, &rng, n, -2, 2);
        double *out = dalloc(&a, n), *da = dalloc(&a, n), *db = dalloc(&a, n);
        vkr_buffer *bx = up(&a, x, n), *by = up(&a, y, n), *bo = garbage(&a, n), *bd = up(&a, dout, n);
        vkr_buffer *bda = which != 2 ? garbage(&a, n) : NULL, *bdb = which != 1 ? garbage(&a, n) : NULL;
        if (split) vkr__elem_force_chunk_floats(1000);
        uint32_t nd1 = 0, nd2 = 0;
        vkr_cmd *c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_add_forward(c, n, bo, bx, by), &nd1);
        c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_add_backward(c, n, bda, bdb, bd), &nd2);
        vkr__elem_force_chunk_floats(0);
        if (!a.s) {
            vkr_ref_add_forward(n, out, x, y);
            vkr_ref_add_backward(n, bda ? da : NULL, bdb ? db : NULL, dout);
            char shape[64];
            snprintf(shape, sizeof shape, "n=%llu%s%s", (unsigned long long)n, split ? " split" : "",
                     which == 0 ? "" : which == 1 ? " da" : " db");
            double ma = 0, mr = 0;
            cmp(&a, bo, out, n, &ma, &mr);
            if (!a.s) vkr_selftest_add(st, "add", "forward", shape, ma, mr, 1e-7);
            ma = mr = 0;
            if (bda) cmp(&a, bda, da, n, &ma, &mr);
            if (bdb) cmp(&a, bdb, db, n, &ma, &mr);
            if (!a.s) vkr_selftest_add(st, "add", "backward", shape, ma, mr, 0);
            if (split) {
                expect_split(st, "add", "forward", nd1, 1);
                expect_split(st, "add", "backward", nd2, 1);
            }
        }
        arena_free(&a);
        if (a.s) return a.s;
    }
    for (int k = 0; k < 2; k++) {
        uint64_t n = k ? 50 : 3;
        arena a = {.ctx = ctx};
        double *x = rand_d(&a, &rng, n, -2, 2), *y = rand_d(&a, &rng, n, -2, 2), *r = rand_d(&a, &rng, n, -1, 1);
        double *ga = dalloc(&a, n), *gb = dalloc(&a, n);
        if (!a.s) {
            vkr_ref_add_backward(n, ga, gb, r);
            double ma, mr, ma2, mr2;
            add_ud ua = {n, y}, ub = {n, x}; /* a + b is symmetric: d/db checked by swapping */
            vkr_fd_check(add_f, &ua, x, n, n, r, ga, (int)n, FD_H, &ma, &mr);
            vkr_fd_check(add_f, &ub, y, n, n, r, gb, (int)n, FD_H, &ma2, &mr2);
            char shape[32];
            snprintf(shape, sizeof shape, "n=%llu", (unsigned long long)n);
            vkr_selftest_add(st, "add", FD, shape, ma > ma2 ? ma : ma2, mr > mr2 ? mr : mr2, FD_TOL);
        }
        arena_free(&a);
        if (a.s) return a.s;
    }
    return VKR_OK;
}

/* ------------------------------------------------------------- zeropad */

typedef struct { const vkr_pad_shape *p; } pad_ud;
static void pad_f(void *ud, const double *x, double *out) { vkr_ref_zeropad_forward(out, x, ((pad_ud *)ud)->p); }

vkr_status vkr_check_zeropad(vkr_context *ctx, vkr_selftest *st) {
    static const vkr_pad_shape cases[] = {
        {1, 3, 5, 4, 1, 1, 1, 1},   {3, 7, 6, 9, 0, 2, 3, 1}, {1, 1, 1, 1, 2, 0, 0, 3}, {1, 127, 4, 4, 1, 1, 1, 1},
        {3, 13, 7, 5, 3, 3, 0, 0},  {1, 3, 8, 8, 0, 0, 0, 0}, {3, 3, 224, 17, 3, 3, 3, 3},
        {3, 13, 9, 7, 1, 1, 1, 1}, /* last: split */
    };
    const int ncases = (int)(sizeof cases / sizeof cases[0]);
    vkr_rng rng;
    vkr_rng_seed(&rng, 13);
    for (int k = 0; k < ncases; k++) {
        const vkr_pad_shape *p = &cases[k];
        int split = k == ncases - 1;
        size_t ni = (size_t)p->n * p->c * p->h * p->w;
        size_t no = (size_t)p->n * p->c * (p->h + p->pad_t + p->pad_b) * (p->w + p->pad_l + p->pad_r);
        arena a = {.ctx = ctx};
        double *x = rand_d(&a, &rng, ni, -2, 2), *dout = rand_d(&a, &rng, no, -2, 2);
        double *out = dalloc(&a, no), *dinp = dalloc(&a, ni);
        vkr_buffer *bx = up(&a, x, ni), *bo = garbage(&a, no), *bd = up(&a, dout, no), *bdi = garbage(&a, ni);
        if (split) force_split(ctx, 3, no / ((size_t)p->n * p->c));
        uint32_t nd1 = 0, nd2 = 0;
        vkr_cmd *c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_zeropad_forward(c, p, bo, bx), &nd1);
        c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_zeropad_backward(c, p, bdi, bd), &nd2);
        vkr__elem_force_chunk_floats(0);
        if (!a.s) {
            vkr_ref_zeropad_forward(out, x, p);
            vkr_ref_zeropad_backward(dinp, dout, p);
            char shape[80];
            snprintf(shape, sizeof shape, "%dx%dx%dx%d p%d,%d,%d,%d%s", p->n, p->c, p->h, p->w, p->pad_t, p->pad_b,
                     p->pad_l, p->pad_r, split ? " split" : "");
            double ma = 0, mr = 0;
            cmp(&a, bo, out, no, &ma, &mr);
            if (!a.s) vkr_selftest_add(st, "zeropad", "forward", shape, ma, mr, 0);
            ma = mr = 0;
            cmp(&a, bdi, dinp, ni, &ma, &mr);
            if (!a.s) vkr_selftest_add(st, "zeropad", "backward", shape, ma, mr, 0);
            if (split) {
                expect_split(st, "zeropad", "forward", nd1, 1);
                expect_split(st, "zeropad", "backward", nd2, 1);
            }
        }
        arena_free(&a);
        if (a.s) return a.s;
    }
    static const vkr_pad_shape fd_cases[] = {{1, 2, 3, 4, 1, 2, 0, 1}, {2, 1, 5, 2, 0, 0, 2, 2}};
    for (int k = 0; k < 2; k++) {
        const vkr_pad_shape *p = &fd_cases[k];
        size_t ni = (size_t)p->n * p->c * p->h * p->w;
        size_t no = (size_t)p->n * p->c * (p->h + p->pad_t + p->pad_b) * (p->w + p->pad_l + p->pad_r);
        arena a = {.ctx = ctx};
        double *x = rand_d(&a, &rng, ni, -2, 2), *r = rand_d(&a, &rng, no, -1, 1), *g = dalloc(&a, ni);
        if (!a.s) {
            pad_ud ud = {p};
            vkr_ref_zeropad_backward(g, r, p);
            double ma, mr;
            vkr_fd_check(pad_f, &ud, x, ni, no, r, g, (int)ni, FD_H, &ma, &mr);
            char shape[64];
            snprintf(shape, sizeof shape, "%dx%dx%dx%d p%d,%d,%d,%d", p->n, p->c, p->h, p->w, p->pad_t, p->pad_b,
                     p->pad_l, p->pad_r);
            vkr_selftest_add(st, "zeropad", FD, shape, ma, mr, FD_TOL);
        }
        arena_free(&a);
        if (a.s) return a.s;
    }
    return VKR_OK;
}

/* ------------------------------------------------------------- pooling */

/* n c h w kh kw sh sw pt pb pl pr (count_include_pad set per run) */
static const vkr_pool_shape k_pool_cases[] = {
    {1, 3, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 0},     /* ResNet stem 3x3/2 pad 1 */
    {3, 7, 11, 8, 3, 3, 2, 2, 0, 0, 0, 0, 0},    /* 3x3/2 valid, non-square */
    {1, 13, 8, 6, 2, 2, 2, 2, 0, 0, 0, 0, 0},    /* 2x2/2 */
    {1, 3, 5, 4, 1, 1, 1, 1, 0, 0, 0, 0, 0},     /* 1x1/1 */
    {3, 1, 7, 5, 1, 1, 2, 2, 0, 0, 0, 0, 0},     /* 1x1/2 */
    {3, 127, 7, 7, 7, 7, 7, 7, 0, 0, 0, 0, 0},   /* 7x7 global-like */
    {1, 7, 8, 10, 3, 3, 2, 2, 0, 1, 0, 1, 0},    /* Keras 'same' 3x3/2 on even sizes: asymmetric */
    {3, 3, 6, 13, 3, 3, 1, 1, 1, 1, 1, 1, 0},    /* Keras 'same' 3x3/1 */
    {1, 7, 9, 7, 3, 2, 2, 1, 0, 0, 0, 0, 0},     /* non-square kernel and stride */
    {1, 3, 9, 10, 3, 3, 2, 2, 2, 1, 2, 0, 0},    /* padding > kernel/2 */
    {3, 13, 12, 9, 2, 2, 1, 1, 1, 0, 0, 1, 0},   /* 2x2/1 asymmetric */
    {1, 1, 6, 6, 5, 5, 1, 1, 4, 4, 2, 3, 0},     /* pad up to kernel-1 */
    {1, 3, 57, 41, 3, 3, 2, 2, 1, 1, 1, 1, 0},   /* larger plane */
    {2, 2, 5, 5, 3, 3, 3, 3, 1, 1, 1, 1, 0},     /* stride == kernel with pad */
};
#define NPOOL ((int)(sizeof k_pool_cases / sizeof k_pool_cases[0]))
static const vkr_pool_shape k_pool_split = {3, 13, 9, 9, 3, 3, 2, 2, 1, 1, 1, 1, 0}; /* planes 81 -> 25 */
static const vkr_pool_shape k_pool_fd[] = {
    {1, 2, 5, 6, 3, 3, 2, 2, 1, 1, 1, 1, 0},
    {2, 1, 4, 4, 2, 2, 2, 2, 0, 0, 0, 0, 0},
    {1, 1, 6, 5, 3, 3, 1, 1, 0, 1, 2, 0, 0},
    {1, 1, 5, 5, 3, 2, 2, 1, 2, 2, 1, 1, 0},
};
#define NPOOLFD ((int)(sizeof k_pool_fd / sizeof k_pool_fd[0]))

static void pool_str(char *s, size_t n, const vkr_pool_shape *p, const char *extra) {
    snprintf(s, n, "%dx%dx%dx%d k%dx%d/%d,%d p%d%d%d%d%s", p->n, p->c, p->h, p->w, p->kh, p->kw, p->stride_h,
             p->stride_w, p->pad_t, p->pad_b, p->pad_l, p->pad_r, extra);
}

typedef struct {
    const vkr_pool_shape *p;
    int32_t *arg;
} pool_ud;
static void maxpool_f(void *ud, const double *x, double *out) {
    pool_ud *u = ud;
    vkr_ref_maxpool_forward(out, u->arg, x, u->p);
}
static void avgpool_f(void *ud, const double *x, double *out) { vkr_ref_avgpool_forward(out, x, ((pool_ud *)ud)->p); }

/* One maxpool case: forward, argmax, backward. */
static vkr_status maxpool_case(vkr_context *ctx, vkr_selftest *st, vkr_rng *rng, const vkr_pool_shape *p, int ties,
                               int split) {
    size_t ni = (size_t)p->n * p->c * p->h * p->w;
    size_t no = (size_t)p->n * p->c * vkr_pool_out_h(p) * vkr_pool_out_w(p);
    arena a = {.ctx = ctx};
    double *x = ties ? rand_ties(&a, rng, ni) : rand_d(&a, rng, ni, -2, 2), *dout = rand_d(&a, rng, no, -2, 2);
    double *out = dalloc(&a, no), *dinp = dalloc(&a, ni);
    int32_t *arg = halloc(&a, no * sizeof(int32_t)), *garg = halloc(&a, no * sizeof(int32_t));
    vkr_buffer *bx = up(&a, x, ni), *bo = garbage(&a, no), *barg = garbage(&a, no), *bd = up(&a, dout, no);
    vkr_buffer *bdi = garbage(&a, ni);
    if (split) force_split(ctx, 3, (uint64_t)p->h * p->w);
    uint32_t nd1 = 0, nd2 = 0;
    vkr_cmd *c = begin(&a);
    submit(&a, c, a.s ? a.s : vkr_maxpool_forward(c, p, bo, barg, bx), &nd1);
    c = begin(&a);
    submit(&a, c, a.s ? a.s : vkr_maxpool_backward(c, p, bdi, bd, barg), &nd2);
    vkr__elem_force_chunk_floats(0);
    if (!a.s) a.s = vkr_buffer_download(barg, 0, garg, no * sizeof(int32_t));
    if (!a.s) {
        vkr_ref_maxpool_forward(out, arg, x, p);
        vkr_ref_maxpool_backward(dinp, dout, arg, p);
        char shape[96];
        pool_str(shape, sizeof shape, p, split ? " split" : ties ? " ties" : "");
        double ma = 0, mr = 0;
        cmp(&a, bo, out, no, &ma, &mr);
        if (!a.s) vkr_selftest_add(st, "maxpool", "forward", shape, ma, mr, 0);
        /* backward: the GPU argmax must equal the reference's, then the gradients */
        size_t bad = 0;
        for (size_t i = 0; i < no; i++) bad += garg[i] != arg[i];
        if (bad) {
            char s2[192];
            snprintf(s2, sizeof s2, "argmax %zu/%zu differ: %s", bad, no, shape);
            vkr_selftest_add(st, "maxpool", "backward", s2, (double)bad, (double)bad, 0);
        }
        ma = mr = 0;
        cmp(&a, bdi, dinp, ni, &ma, &mr);
        if (!a.s) vkr_selftest_add(st, "maxpool", "backward", shape, ma, mr, 1e-6);
        if (split) {
            expect_split(st, "maxpool", "forward", nd1, 1);
            expect_split(st, "maxpool", "backward", nd2, 1);
        }
    }
    arena_free(&a);
    return a.s;
}

vkr_status vkr_check_maxpool(vkr_context *ctx, vkr_selftest *st) {
    vkr_rng rng;
    vkr_rng_seed(&rng, 14);
    vkr_status s;
    for (int k = 0; k < NPOOL; k++)
        if ((s = maxpool_case(ctx, st, &rng, &k_pool_cases[k], k & 1, 0))) return s;
    if ((s = maxpool_case(ctx, st, &rng, &k_pool_split, 1, 1))) return s;
    for (int k = 0; k < NPOOLFD; k++) {
        const vkr_pool_shape *p = &k_pool_fd[k];
        size_t ni = (size_t)p->n * p->c * p->h * p->w;
        size_t no = (size_t)p->n * p->c * vkr_pool_out_h(p) * vkr_pool_out_w(p);
        arena a = {.ctx = ctx};
        double *x = rand_distinct(&a, &rng, ni), *r = rand_d(&a, &rng, no, -1, 1);
        double *out = dalloc(&a, no), *g = dalloc(&a, ni);
        int32_t *arg = halloc(&a, no * sizeof(int32_t));
        if (!a.s) {
            pool_ud ud = {p, arg};
            vkr_ref_maxpool_forward(out, arg, x, p);
            vkr_ref_maxpool_backward(g, r, arg, p);
            double ma, mr;
            vkr_fd_check(maxpool_f, &ud, x, ni, no, r, g, (int)ni, FD_H, &ma, &mr);
            char shape[96];
            pool_str(shape, sizeof shape, p, "");
            vkr_selftest_add(st, "maxpool", FD, shape, ma, mr, FD_TOL);
        }
        arena_free(&a);
        if (a.s) return a.s;
    }
    return VKR_OK;
}

/* One avgpool case in both divisor modes (errors folded into one entry). */
static vkr_status avgpool_case(vkr_context *ctx, vkr_selftest *st, vkr_rng *rng, const vkr_pool_shape *shape_in,
                               int split) {
    size_t ni = (size_t)shape_in->n * shape_in->c * shape_in->h * shape_in->w;
    size_t no = (size_t)shape_in->n * shape_in->c * vkr_pool_out_h(shape_in) * vkr_pool_out_w(shape_in);
    double fa = 0, fr = 0, ba = 0, br = 0;
    vkr_status s = VKR_OK;
    for (int mode = 0; mode < 2 && !s; mode++) {
        vkr_pool_shape p = *shape_in;
        p.count_include_pad = mode;
        arena a = {.ctx = ctx};
        double *x = rand_d(&a, rng, ni, -2, 2), *dout = rand_d(&a, rng, no, -2, 2);
        double *out = dalloc(&a, no), *dinp = dalloc(&a, ni);
        vkr_buffer *bx = up(&a, x, ni), *bo = garbage(&a, no), *bd = up(&a, dout, no), *bdi = garbage(&a, ni);
        if (split) force_split(ctx, 3, (uint64_t)p.h * p.w);
        uint32_t nd1 = 0, nd2 = 0;
        vkr_cmd *c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_avgpool_forward(c, &p, bo, bx), &nd1);
        c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_avgpool_backward(c, &p, bdi, bd), &nd2);
        vkr__elem_force_chunk_floats(0);
        if (!a.s) {
            vkr_ref_avgpool_forward(out, x, &p);
            vkr_ref_avgpool_backward(dinp, dout, &p);
            cmp(&a, bo, out, no, &fa, &fr);
            cmp(&a, bdi, dinp, ni, &ba, &br);
            if (split) {
                expect_split(st, "avgpool", "forward", nd1, 1);
                expect_split(st, "avgpool", "backward", nd2, 1);
            }
        }
        arena_free(&a);
        s = a.s;
    }
    if (!s) {
        char shape[96];
        pool_str(shape, sizeof shape, shape_in, split ? " split" : "");
        vkr_selftest_add(st, "avgpool", "forward", shape, fa, fr, 1e-5);
        vkr_selftest_add(st, "avgpool", "backward", shape, ba, br, 1e-5);
    }
    return s;
}

vkr_status vkr_check_avgpool(vkr_context *ctx, vkr_selftest *st) {
    vkr_rng rng;
    vkr_rng_seed(&rng, 15);
    vkr_status s;
    for (int k = 0; k < NPOOL; k++)
        if ((s = avgpool_case(ctx, st, &rng, &k_pool_cases[k], 0))) return s;
    if ((s = avgpool_case(ctx, st, &rng, &k_pool_split, 1))) return s;
    for (int k = 0; k < NPOOLFD; k++) {
        double ma = 0, mr = 0;
        for (int mode = 0; mode < 2; mode++) {
            vkr_pool_shape p = k_pool_fd[k];
            p.count_include_pad = mode;
            size_t ni = (size_t)p.n * p.c * p.h * p.w;
            size_t no = (size_t)p.n * p.c * vkr_pool_out_h(&p) * vkr_pool_out_w(&p);
            arena a = {.ctx = ctx};
            double *x = rand_d(&a, &rng, ni, -2, 2), *r = rand_d(&a, &rng, no, -1, 1), *g = dalloc(&a, ni);
            if (!a.s) {
                pool_ud ud = {&p, NULL};
                vkr_ref_avgpool_backward(g, r, &p);
                double ea, er;
                vkr_fd_check(avgpool_f, &ud, x, ni, no, r, g, (int)ni, FD_H, &ea, &er);
                if (ea > ma || ea != ea) ma = ea;
                if (er > mr || er != er) mr = er;
            }
            arena_free(&a);
            if (a.s) return a.s;
        }
        char shape[96];
        pool_str(shape, sizeof shape, &k_pool_fd[k], "");
        vkr_selftest_add(st, "avgpool", FD, shape, ma, mr, FD_TOL);
    }
    return VKR_OK;
}

/* -------------------------------------------------------------- concat */

typedef struct { int n, ca, cb, hw; const double *other; int which; } concat_ud;
static void concat_f(void *ud, const double *x, double *out) {
    concat_ud *u = ud;
    if (u->which == 0) vkr_ref_concat_forward(u->n, u->ca, u->cb, u->hw, out, x, u->other);
    else vkr_ref_concat_forward(u->n, u->ca, u->cb, u->hw, out, u->other, x);
}

vkr_status vkr_check_concat(vkr_context *ctx, vkr_selftest *st) {
    static const int cases[][4] = {/* n, ca, cb, hw */
                                   {1, 1, 1, 1},   {3, 3, 7, 20},  {1, 13, 127, 9}, {3, 127, 1, 49},
                                   {1, 64, 64, 3}, {3, 7, 13, 35},
                                   {7, 1, 5, 13}, /* split by images */
                                   {2, 5, 3, 37} /* split inside images */};
    const int ncases = (int)(sizeof cases / sizeof cases[0]);
    vkr_rng rng;
    vkr_rng_seed(&rng, 16);
    for (int k = 0; k < ncases; k++) {
        int n = cases[k][0], ca = cases[k][1], cb = cases[k][2], hw = cases[k][3];
        int split = k >= ncases - 2 ? k - (ncases - 3) : 0, which = split ? 0 : k % 3; /* backward: 0 both, 1 da only, 2 db only */
        size_t na = (size_t)n * ca * hw, nb = (size_t)n * cb * hw, no = na + nb;
        arena a = {.ctx = ctx};
        double *xa = rand_d(&a, &rng, na, -2, 2), *xb = rand_d(&a, &rng, nb, -2, 2), *dout = rand_d(&a, &rng, no, -2, 2);
        double *out = dalloc(&a, no), *da = dalloc(&a, na), *db = dalloc(&a, nb);
        vkr_buffer *ba = up(&a, xa, na), *bb = up(&a, xb, nb), *bo = garbage(&a, no), *bd = up(&a, dout, no);
        vkr_buffer *bda = which != 2 ? garbage(&a, na) : NULL, *bdb = which != 1 ? garbage(&a, nb) : NULL;
        if (split == 1) force_split(ctx, 3, (uint64_t)(ca + cb) * hw);
        if (split == 2) vkr__elem_force_chunk_floats(100);
        uint32_t nd1 = 0, nd2 = 0;
        vkr_cmd *c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_concat_forward(c, n, ca, cb, hw, bo, ba, bb), &nd1);
        c = begin(&a);
        submit(&a, c, a.s ? a.s : vkr_concat_backward(c, n, ca, cb, hw, bda, bdb, bd), &nd2);
        vkr__elem_force_chunk_floats(0);
        if (!a.s) {
            vkr_ref_concat_forward(n, ca, cb, hw, out, xa, xb);
            vkr_ref_concat_backward(n, ca, cb, hw, bda ? da : NULL, bdb ? db : NULL, dout);
            char shape[80];
            snprintf(shape, sizeof shape, "n%d ca%d cb%d hw%d%s%s", n, ca, cb, hw,
                     split == 1 ? " split" : split == 2 ? " split-image" : "",
                     which == 0 ? "" : which == 1 ? " da" : " db");
            double ma = 0, mr = 0;
            cmp(&a, bo, out, no, &ma, &mr);
            if (!a.s) vkr_selftest_add(st, "concat", "forward", shape, ma, mr, 0);
            ma = mr = 0;
            if (bda) cmp(&a, bda, da, na, &ma, &mr);
            if (bdb) cmp(&a, bdb, db, nb, &ma, &mr);
            if (!a.s) vkr_selftest_add(st, "concat", "backward", shape, ma, mr, 0);
            if (split) {
                expect_split(st, "concat", "forward", nd1, 2);
                expect_split(st, "concat", "backward", nd2, 1);
            }
        }
        arena_free(&a);
        if (a.s) return a.s;
    }
    static const int fd_cases[][4] = {{1, 2, 3, 4}, {2, 1, 2, 5}};
    for (int k = 0; k < 2; k++) {
        int n = fd_cases[k][0], ca = fd_cases[k][1], cb = fd_cases[k][2], hw = fd_cases[k][3];
        size_t na = (size_t)n * ca * hw, nb = (size_t)n * cb * hw, no = na + nb;
        arena a = {.ctx = ctx};
        double *xa = rand_d(&a, &rng, na, -2, 2), *xb = rand_d(&a, &rng, nb, -2, 2), *r = rand_d(&a, &rng, no, -1, 1);
        double *ga = dalloc(&a, na), *gb = dalloc(&a, nb);
        if (!a.s) {
            vkr_ref_concat_backward(n, ca, cb, hw, ga, gb, r);
            concat_ud ua = {n, ca, cb, hw, xb, 0}, ub = {n, ca, cb, hw, xa, 1};
            double ma, mr, ma2, mr2;
            vkr_fd_check(concat_f, &ua, xa, na, no, r, ga, (int)na, FD_H, &ma, &mr);
            vkr_fd_check(concat_f, &ub, xb, nb, no, r, gb, (int)nb, FD_H, &ma2, &mr2);
            char shape[64];
            snprintf(shape, sizeof shape, "n%d ca%d cb%d hw%d", n, ca, cb, hw);
            vkr_selftest_add(st, "concat", FD, shape, ma > ma2 ? ma : ma2, mr > mr2 ? mr : mr2, FD_TOL);
        }
        arena_free(&a);
        if (a.s) return a.s;
    }
    return VKR_OK;
}
