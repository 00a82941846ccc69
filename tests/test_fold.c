/* Tests of "less work per step" (runtime/graph/graph_fold.c): the ReLU epilogues of the GEMM and
 * add ops against the plain-C references (conv2d + BN + ReLU: selftest "fused"), and graphs
 * with inference BatchNorm folded into the epilogue of the frozen conv before it and ReLUs
 * fused into their producer against the same graphs run unfolded (opts.no_fuse = 1, itself
 * checked against double references in test_model): inference outputs (final, intermediate,
 * a folded conv's own output), eval loss, weight upload / download, dispatch counts, and
 * training with a frozen base + trained head and with a partially frozen base (frozen conv + BN
 * between trained layers: left unfolded as their backward runs, ReLU epilogues still fused), in
 * BN inference and batch-statistics mode: losses, every gradient and the weights after SGD
 * steps; and a step's transfers recorded into its one
 * submission (graph_stage.c) against plain memcpys.  Prints PASS/FAIL lines and "N passed, N failed". */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "graph/graph_internal.h"
#include "ref/add_ref.h"
#include "ref/conv2d_ref.h"
#include "ref/dense_ref.h"
#include "ref/relu_ref.h"
#include "test_util.h"
#include "vkrun_model.h"
#include "test_rng.h"


/* max |a - b| / max |b| (error relative to the largest reference magnitude) */
static double rel_f(const float *a, const float *b, uint64_t n) {
    double d = 0, m = 0;
    for (uint64_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)b[i]));
    }
    return m > 0 ? d / m : d;
}

static double rel_d(const float *a, const double *b, uint64_t n) {
    double d = 0, m = 0;
    for (uint64_t i = 0; i < n; i++) {
        d = fmax(d, fabs(a[i] - b[i]));
        m = fmax(m, fabs(b[i]));
    }
    return m > 0 ? d / m : d;
}

static float *rand_f(uint64_t n, double *dcopy) {
    float *v = malloc(n * sizeof *v);
    for (uint64_t i = 0; i < n; i++) {
        v[i] = (float)(2 * urand() - 1);
        if (dcopy) dcopy[i] = v[i];
    }
    return v;
}

/* ------------------------------------------------------------ ops */

/* conv2d (dense when dense != 0) with the ReLU epilogue vs reference conv + ReLU. */
static void check_gemm_relu(vkr_context *ctx, const vkr_conv2d_shape *p, int dense, int with_bias, const char *what) {
    uint64_t oh = vkr_conv2d_out_h(p), ow = vkr_conv2d_out_w(p);
    uint64_t ni = (uint64_t)p->n * p->c * p->h * p->w, nw = (uint64_t)p->k * p->c * p->r * p->s, no = p->n * p->k * oh * ow;
    double *di = malloc(ni * 8), *dw = malloc(nw * 8), *db = malloc(p->k * 8), *dr = malloc(no * 8), *dref = malloc(no * 8);
    float *fi = rand_f(ni, di), *fw = rand_f(nw, dw), *fb = rand_f(p->k, db), *fo = malloc(no * 4);
    if (dense) vkr_ref_dense_forward(p->n, p->c, p->k, dr, di, dw, with_bias ? db : NULL);
    else vkr_ref_conv2d_forward(dr, di, dw, with_bias ? db : NULL, p);
    vkr_ref_relu_forward(no, dref, dr);
    vkr_buffer *bi = NULL, *bw = NULL, *bb = NULL, *bo = NULL;
    vkr_cmd *c = NULL;
    vkr_status s = vkr_buffer_from_floats(ctx, fi, ni, &bi);
    if (!s) s = vkr_buffer_from_floats(ctx, fw, nw, &bw);
    if (!s) s = vkr_buffer_from_floats(ctx, fb, p->k, &bb);
    if (!s) s = vkr_buffer_create(ctx, no * 4, &bo);
    if (!s) s = vkr_cmd_begin(ctx, &c);
    if (!s && dense) s = vkr_dense_relu_forward(c, p->n, p->c, p->k, bo, bi, bw, with_bias ? bb : NULL);
    else if (!s) s = vkr_conv2d_relu_forward(c, p, bo, bi, bw, with_bias ? bb : NULL);
    if (!s) s = vkr_cmd_submit(c);
    if (!s) s = vkr_buffer_download(bo, 0, fo, no * 4);
    uint64_t zeros = 0, neg = 0;
    for (uint64_t i = 0; !s && i < no; i++) zeros += fo[i] == 0.0f, neg += fo[i] < 0.0f;
    double e = s ? 1 : rel_d(fo, dref, no);
    CHECK(!s && e < 1e-5 && neg == 0 && zeros > 0, "%s (%s): max rel %.2e, %llu of %llu outputs clamped to 0 %s", what,
          vkr_gemm_variant_name(vkr_gemm_pick(ctx)), e, (unsigned long long)zeros, (unsigned long long)no,
          s ? vkr_last_error() : "");
    if (c) vkr_cmd_free(c);
    vkr_buffer_destroy(bi), vkr_buffer_destroy(bw), vkr_buffer_destroy(bb), vkr_buffer_destroy(bo);
    free(di), free(dw), free(db), free(dr), free(dref), free(fi), free(fw), free(fb), free(fo);
}

static void check_add_relu(vkr_context *ctx, uint64_t n) {
    double *da = malloc(n * 8), *db = malloc(n * 8), *dsum = malloc(n * 8), *dref = malloc(n * 8);
    float *fa = rand_f(n, da), *fb = rand_f(n, db), *fo = malloc(n * 4);
    vkr_ref_add_forward(n, dsum, da, db);
    vkr_ref_relu_forward(n, dref, dsum);
    vkr_buffer *ba = NULL, *bb = NULL;
    vkr_cmd *c = NULL;
    vkr_status s = vkr_buffer_from_floats(ctx, fa, n, &ba);
    if (!s) s = vkr_buffer_from_floats(ctx, fb, n, &bb);
    if (!s) s = vkr_cmd_begin(ctx, &c);
    if (!s) s = vkr_add_relu_forward(c, n, ba, ba, bb); /* in place, as the graph runs it */
    if (!s) s = vkr_cmd_submit(c);
    if (!s) s = vkr_buffer_download(ba, 0, fo, n * 4);
    double e = s ? 1 : rel_d(fo, dref, n);
    CHECK(!s && e < 1.2e-7, "add_relu_forward (in place, n = %llu) vs reference add + relu (one fp32 rounding): max rel %.2e %s",
          (unsigned long long)n, e, s ? vkr_last_error() : "");
    if (c) vkr_cmd_free(c);
    vkr_buffer_destroy(ba), vkr_buffer_destroy(bb);
    free(da), free(db), free(dsum), free(dref), free(fa), free(fb), free(fo);
}

static void test_ops(vkr_context *ctx) {
    /* output layouts of the texel epilogue: scalar stores (7x6 pixels), vec4 along pixels
     * (4x4), vec4 along channels (dense, 8 units); the tiled kernel stores scalars */
    vkr_conv2d_shape c3 = {2, 5, 7, 6, 6, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1};
    vkr_conv2d_shape c1 = {2, 8, 4, 4, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    vkr_conv2d_shape s2 = {1, 3, 9, 9, 5, 3, 3, 2, 2, 1, 0, 1, 0, 1, 1, 1};
    vkr_conv2d_shape d8 = {3, 12, 1, 1, 8, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    vkr_conv2d_shape d7 = {3, 5, 1, 1, 7, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1};
    vkr_gemm_variant vs[2] = {VKR_GEMM_TEXEL, VKR_GEMM_TILED};
    for (int v = 0; v < 2; v++) {
        vkr_gemm_force_variant(vs[v]);
        check_gemm_relu(ctx, &c3, 0, 1, "conv2d_relu_forward 3x3 5->6 at 7x6, bias");
        check_gemm_relu(ctx, &c1, 0, 0, "conv2d_relu_forward 1x1 8->8 at 4x4, no bias");
        check_gemm_relu(ctx, &s2, 0, 1, "conv2d_relu_forward 3x3/2 3->5 at 9x9, asymmetric pad");
        check_gemm_relu(ctx, &d8, 1, 1, "dense_relu_forward 12->8, batch 3");
        check_gemm_relu(ctx, &d7, 1, 0, "dense_relu_forward 5->7, batch 3, no bias");
    }
    vkr_gemm_force_variant(VKR_GEMM_AUTO);
    check_add_relu(ctx, 1000);
}

/* ------------------------------------------------------------ graphs */

/* conv + BN + ReLU blocks, a bias-less conv + BN, a residual add + ReLU, a dense + ReLU layer. */
enum { L_C1 = 1, L_BN1, L_R1, L_C2, L_BN2, L_R2, L_C3, L_BN3, L_SC, L_BN4, L_ADD, L_RADD, L_GAP, L_FC1, L_RFC, L_FC2 };
static vkr_status build_model(const char *path) {
    vkr_model *m;
    vkr_status s = vkr_model_new("fold", "in", 3, 10, 9, "none", &m);
    if (s) return s;
    const char *layers[] = {
        "{\"name\":\"c1\",\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,\"padding\":\"same\"}",
        "{\"name\":\"bn1\",\"type\":\"batchnorm\",\"epsilon\":0.001,\"momentum\":0.9}",
        "{\"name\":\"r1\",\"type\":\"relu\"}",
        "{\"name\":\"c2\",\"type\":\"conv2d\",\"filters\":8,\"kernel\":1,\"use_bias\":false}",
        "{\"name\":\"bn2\",\"type\":\"batchnorm\",\"epsilon\":0.00001}",
        "{\"name\":\"r2\",\"type\":\"relu\"}",
        "{\"name\":\"c3\",\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,\"strides\":2,\"padding\":\"same\"}",
        "{\"name\":\"bn3\",\"type\":\"batchnorm\",\"epsilon\":0.001}",
        "{\"name\":\"sc\",\"type\":\"conv2d\",\"filters\":8,\"kernel\":1,\"strides\":2,\"use_bias\":false,\"inputs\":[\"r1\"]}",
        "{\"name\":\"bn4\",\"type\":\"batchnorm\",\"epsilon\":0.001}",
        "{\"name\":\"add\",\"type\":\"add\",\"inputs\":[\"bn3\",\"bn4\"]}",
        "{\"name\":\"radd\",\"type\":\"relu\"}",
        "{\"name\":\"gap\",\"type\":\"gap\"}",
        "{\"name\":\"fc1\",\"type\":\"dense\",\"units\":16}",
        "{\"name\":\"rfc\",\"type\":\"relu\"}",
        "{\"name\":\"fc2\",\"type\":\"dense\",\"units\":4,\"activation\":\"softmax\"}",
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0] && !s; i++) s = vkr_model_append_json(m, layers[i], 7 + i);
    for (int j = 0; j < m->nlayers && !s; j++) { /* random statistics (some gamma < 0) and biases */
        vkr_layer *L = &m->layers[j];
        for (int k = 0; k < L->nparam; k++) {
            vkr_tensor *T = vkr_model_param(m, j, k);
            for (uint64_t i = 0; T && i < T->count; i++) {
                double u = urand();
                if (L->type == VKR_LAYER_BATCHNORM)
                    T->data[i] = (float)(k == VKR_PARAM_VAR     ? 0.2 + 2 * u
                                         : k == VKR_PARAM_GAMMA ? (urand() < 0.2 ? -1 : 1) * (0.5 + u)
                                                                : 2 * u - 1);
                else if (k == VKR_PARAM_BIAS) /* fc1: mostly positive, so that its ReLUs pass gradients */
                    T->data[i] = (float)(j == L_FC1 ? 0.5 * u : 0.4 * (u - 0.5));
            }
        }
    }
    if (!s) s = vkr_model_save(m, path);
    vkr_model_free(m);
    return s;
}

enum { N = 3, K = 4 };
static float g_x[N * 3 * 10 * 9], g_t[N * K];

/* One model + graph per side: [0] folded / fused, [1] unfolded (no_fuse). */
typedef struct {
    vkr_model *m[2];
    vkr_graph *g[2];
} pair;

static vkr_status pair_open(vkr_context *ctx, const char *path, const vkr_graph_opts *o, const int (*frozen)[2],
                            int nfrozen, pair *P) {
    memset(P, 0, sizeof *P);
    vkr_status s = VKR_OK;
    for (int i = 0; i < 2 && !s; i++) {
        s = vkr_model_load(path, &P->m[i]);
        for (int f = 0; f < nfrozen && !s; f++) vkr_model_set_trainable(P->m[i], frozen[f][0], frozen[f][1], 0);
        vkr_graph_opts oi = *o;
        oi.no_fuse = i;
        if (!s) s = vkr_graph_create(ctx, P->m[i], &oi, &P->g[i]);
    }
    return s;
}

static void pair_close(pair *P) {
    for (int i = 0; i < 2; i++) {
        vkr_graph_destroy(P->g[i]);
        vkr_model_free(P->m[i]);
    }
}

/* forward of `layer` on both sides: relative difference and dispatch counts */
static double cmp_forward(pair *P, const char *layer, uint32_t *d) {
    uint64_t n = N * vkr_graph_out_floats(P->g[0], layer);
    float *y0 = malloc(n * 4), *y1 = malloc(n * 4);
    vkr_status s = vkr_graph_forward(P->g[0], g_x, N, layer, y0);
    if (!s && d) vkr_graph_last_counts(P->g[0], &d[0], NULL);
    if (!s) s = vkr_graph_forward(P->g[1], g_x, N, layer, y1);
    if (!s && d) vkr_graph_last_counts(P->g[1], &d[1], NULL);
    double e = s ? 1 : rel_f(y0, y1, n);
    if (s) printf("  error: %s\n", vkr_last_error());
    free(y0), free(y1);
    return e;
}

static void test_inference(vkr_context *ctx, const char *path) {
    pair P;
    vkr_graph_opts o = {.batch = 4};
    vkr_status s = pair_open(ctx, path, &o, NULL, 0, &P);
    CHECK_OK(s, "inference graphs, folded and unfolded");
    if (s) return pair_close(&P);
    uint32_t d[2] = {0, 0};
    double e = cmp_forward(&P, NULL, d);
    /* 4 BatchNorms folded, 4 ReLUs fused (after bn1, bn2, the add, fc1): 8 dispatches fewer */
    CHECK(e < 1e-5 && d[1] - d[0] == 8, "forward (softmax): max rel %.2e; dispatches %u folded vs %u unfolded", e, d[0], d[1]);
    const char *layers[] = {"c1", "bn1", "r2", "sc", "add", "radd", "fc1", "rfc"};
    for (int i = 0; i < 8; i++) {
        e = cmp_forward(&P, layers[i], NULL);
        CHECK(e < 1e-5, "output of \"%s\"%s: max rel %.2e", layers[i], i ? "" : " (a folded conv's own output: runs unfolded)", e);
    }
    float l0 = 0, l1 = 0;
    s = vkr_graph_eval_batch(P.g[0], g_x, g_t, N, &l0, NULL);
    if (!s) s = vkr_graph_eval_batch(P.g[1], g_x, g_t, N, &l1, NULL);
    CHECK(!s && fabs(l0 - l1) <= 1e-5 * fabs(l1), "eval_batch loss %.7f vs %.7f", l0, l1);
    /* download keeps the unfolded host weights; upload refolds from edited ones */
    int tw = vkr_model_find_tensor(P.m[0], "c2.weight");
    uint64_t cnt = P.m[0]->tensors[tw].count;
    float *keep = malloc(cnt * 4);
    memcpy(keep, P.m[0]->tensors[tw].data, cnt * 4);
    s = vkr_graph_download_weights(P.g[0]);
    CHECK(!s && !memcmp(keep, P.m[0]->tensors[tw].data, cnt * 4), "download_weights leaves folded convs' host weights as they were");
    free(keep);
    for (int i = 0; i < 2; i++) {
        vkr_model *m = P.m[i];
        vkr_tensor *v = vkr_model_param(m, L_BN2, VKR_PARAM_VAR), *w = vkr_model_param(m, L_C2, VKR_PARAM_WEIGHT);
        vkr_tensor *b = vkr_model_param(m, L_C1, VKR_PARAM_BIAS);
        for (uint64_t k = 0; k < v->count; k++) v->data[k] *= 3.0f;
        for (uint64_t k = 0; k < w->count; k++) w->data[k] = -w->data[k];
        for (uint64_t k = 0; k < b->count; k++) b->data[k] += 0.5f;
        if (!s) s = vkr_graph_upload_weights(P.g[i]);
    }
    e = s ? 1 : cmp_forward(&P, NULL, NULL);
    double e2 = s ? 1 : cmp_forward(&P, "c1", NULL);
    CHECK(!s && e < 1e-5 && e2 < 1e-6, "after editing weights and statistics + upload_weights: max rel %.2e (c1 output %.2e)", e, e2);
    pair_close(&P);
}

/* loss of each step, then every gradient of a backward_only, then the weights after `steps` SGD steps */
static void train_compare(vkr_context *ctx, const char *path, const vkr_graph_opts *o, const int (*frozen)[2],
                          int nfrozen, const char *name) {
    pair P;
    vkr_status s = pair_open(ctx, path, o, frozen, nfrozen, &P);
    if (s) {
        CHECK_OK(s, "%s: graphs", name);
        return pair_close(&P);
    }
    float l[2];
    double el = 0, eg = 0, ew = 0;
    int ng = 0, nz = 0; /* gradients compared, of which not all zero */
    uint32_t d[2];
    char worst[128] = "";
    for (int i = 0; i < 2 && !s; i++) s = vkr_graph_backward_only(P.g[i], g_x, g_t, N, &l[i], NULL);
    for (int i = 0; i < 2 && !s; i++) vkr_graph_last_counts(P.g[i], &d[i], NULL);
    el = fabs(l[0] - l[1]) / fabs(l[1]);
    for (int t = 0; t < P.m[0]->ntensors && !s; t++) {
        const vkr_tensor *T = &P.m[0]->tensors[t];
        float *g0 = malloc(T->count * 4), *g1 = malloc(T->count * 4);
        vkr_status s0 = vkr_graph_download_grad(P.g[0], T->name, g0), s1 = vkr_graph_download_grad(P.g[1], T->name, g1);
        if (s0 != s1) s = VKR_ERR_INVALID, snprintf(worst, sizeof worst, "%s trained on one side only", T->name);
        if (!s0 && !s1) {
            double e = rel_f(g0, g1, T->count), mx = 0, mx0 = 0;
            for (uint64_t i = 0; i < T->count; i++) mx = fmax(mx, fabs(g1[i])), mx0 = fmax(mx0, fabs(g0[i]));
            /* zero in theory (a conv bias before batch-statistics BN): both sides only rounding noise */
            if (mx < 1e-6) e = mx0 < 1e-6 ? 0 : 1;
            ng++;
            nz += mx >= 1e-6;
            if (!strcmp(T->name, "c1.weight") && mx < 1e-6) nz = -1000; /* must flow through the folded convs */
            if (e > eg) eg = e, snprintf(worst, sizeof worst, "%s", T->name);
        }
        free(g0), free(g1);
    }
    CHECK(!s && el < 1e-5 && eg < 1e-4 && ng > 0 && nz >= ng - 1 && nz > 0 && d[0] < d[1],
          "%s: loss %.7f vs %.7f, %d gradients (%d not all zero) max rel %.2e (%s); dispatches %u folded vs %u unfolded",
          name, l[0], l[1], ng, nz, eg, worst, d[0], d[1]);
    for (int step = 0; step < 3 && !s; step++)
        for (int i = 0; i < 2 && !s; i++) s = vkr_graph_train_step(P.g[i], g_x, g_t, N, &l[i], NULL);
    for (int i = 0; i < 2 && !s; i++) s = vkr_graph_download_weights(P.g[i]);
    for (int t = 0; t < P.m[0]->ntensors && !s; t++) {
        double e = rel_f(P.m[0]->tensors[t].data, P.m[1]->tensors[t].data, P.m[0]->tensors[t].count);
        if (e > ew) ew = e, snprintf(worst, sizeof worst, "%s", P.m[0]->tensors[t].name);
    }
    CHECK(!s && ew < 1e-5 && fabs(l[0] - l[1]) <= 1e-5 * fabs(l[1]),
          "%s: after 3 SGD steps every tensor max rel %.2e (%s), last loss %.7f vs %.7f %s", name, ew, worst, l[0], l[1],
          s ? vkr_last_error() : "");
    pair_close(&P);
}

static void test_training(vkr_context *ctx, const char *path) {
    vkr_graph_opts o = {.batch = N, .training = 1, .optimizer = VKR_OPTIM_SGD};
    o.optim.lr = 0.05f, o.optim.momentum = 0.9f;
    o.freeze = L_GAP;
    train_compare(ctx, path, &o, NULL, 0, "frozen base + trained head");
    /* trained c1 + bn1, frozen c2 + bn2 and c3 + bn3 / sc + bn4 after it, trained head: c1's
     * gradient flows through the folded convs' backward-data */
    const int frozen[2][2] = {{L_C2, L_BN2 + 1}, {L_C3, L_BN4 + 1}};
    o.freeze = 0;
    train_compare(ctx, path, &o, frozen, 2, "partially frozen base, BN inference mode");
    o.bn_train = 1;
    train_compare(ctx, path, &o, frozen, 2, "partially frozen base, trained BN in batch mode");
}

/* The step's input / targets / loss as copies recorded into its one submission (what devices
 * without host-visible device memory do) vs plain memcpys into mapped memory: identical. */
static void test_staging(vkr_context *ctx, const char *path) {
    vkr_graph_opts o = {.batch = N, .training = 1, .optimizer = VKR_OPTIM_SGD, .freeze = L_GAP};
    o.optim.lr = 0.05f, o.optim.momentum = 0.9f;
    vkr_model *m[2] = {NULL, NULL};
    vkr_graph *g[2] = {NULL, NULL};
    float l[2][3] = {{0}}, y[2][N * K];
    int c[2][3] = {{0}};
    uint32_t d[2] = {0, 0};
    vkr_status s = VKR_OK;
    for (int i = 0; i < 2 && !s; i++) {
        s = vkr_model_load(path, &m[i]);
        vkr__graph_force_staging(i);
        if (!s) s = vkr_graph_create(ctx, m[i], &o, &g[i]);
        vkr__graph_force_staging(0);
        for (int k = 0; k < 2 && !s; k++) s = vkr_graph_train_step(g[i], g_x, g_t, N, &l[i][k], &c[i][k]);
        if (!s) vkr_graph_last_counts(g[i], &d[i], NULL);
        if (!s) s = vkr_graph_eval_batch(g[i], g_x, g_t, N, &l[i][2], &c[i][2]);
        if (!s) s = vkr_graph_forward(g[i], g_x, N, NULL, y[i]);
        if (!s) s = vkr_graph_download_weights(g[i]);
    }
    int same = !s && !memcmp(l[0], l[1], sizeof l[0]) && !memcmp(c[0], c[1], sizeof c[0]) && !memcmp(y[0], y[1], sizeof y[0]);
    for (int t = 0; same && t < m[0]->ntensors; t++)
        same = !memcmp(m[0]->tensors[t].data, m[1]->tensors[t].data, m[0]->tensors[t].count * 4);
    CHECK(!s && same && g[1]->staged && !g[0]->staged && d[0] == d[1],
          "transfers recorded into the step's submission == mapped memcpys: losses %.7f %.7f %.7f, weights, output "
          "identical (%u dispatches) %s", l[1][0], l[1][1], l[1][2], d[1], s ? vkr_last_error() : "");
    for (int i = 0; i < 2; i++) vkr_graph_destroy(g[i]), vkr_model_free(m[i]);
}

int main(void) {
    g_test_rng = 0x9E3779B97F4A7C15ull; /* this test's own sequence */
    vkr_context *ctx = test_context(NULL, 0);
    if (!ctx) return test_finish();
    char path[64];
    snprintf(path, sizeof path, "/tmp/vkrun_test_fold_%d.vkr", (int)getpid());
    for (size_t i = 0; i < sizeof g_x / sizeof g_x[0]; i++) g_x[i] = (float)(4 * urand() - 2);
    for (int b = 0; b < N; b++) g_t[b * K + (b * 3 + 1) % K] = 1;
    test_ops(ctx);
    vkr_status s = build_model(path);
    CHECK_OK(s, "build the test model");
    if (!s) {
        test_inference(ctx, path);
        test_training(ctx, path);
        test_staging(ctx, path);
    }
    unlink(path);
    test_no_validation_messages(ctx, "fold tests");
    vkr_context_destroy(ctx);
    return test_finish();
}
