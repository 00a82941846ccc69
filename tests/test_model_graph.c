/* Tests of the graph runtime against a plain-C double evaluation built from the op references
 * through the layer table (runtime/layers/, each kind's ref_forward / ref_backward): forward,
 * gradients of one training step with and without batch-statistics BatchNorm, frozen prefixes,
 * split-K, one SGD update, optimizer state, checkpoint metadata, memory limits.
 * Prints PASS/FAIL lines and "N passed, N failed[, N skipped]". */
#include <math.h>

#include "layers/layer.h"
#include "test_model.h"
#include "test_rng.h"
#include "vkrun_model.h"
#include "ref/batchnorm_ref.h"
#include "ref/softmax_ce_ref.h"
#include "ref/softmax_ref.h"

void vkr__gemm_force_split(int splits); /* runtime/ops/gemm_conv.h: split-K test hook */

/* absolute bound on a float gradient whose exact value is 0 (sums of O(1) terms cancelling) */
#define TINY_GRAD_ABS 3e-7 /* measured 7.5e-8 on llvmpipe */

/* ------------------------------------------------------------ reference evaluation (double) */

typedef struct {
    int nl;
    double **val, **grad, **pgrad[VKR_MAX_PARAMS];
    int32_t **argmax;
    double *probs, loss;
} refnet;

static double *dcopy_param(const vkr_model *m, int j, int k) {
    const vkr_tensor *T = vkr_model_param(m, j, k);
    if (!T) return NULL;
    double *d = malloc(T->count * sizeof *d);
    for (uint64_t i = 0; i < T->count; i++) d[i] = T->data[i];
    return d;
}

static uint64_t outf(const vkr_layer *L) { return (uint64_t)L->out_c * L->out_h * L->out_w; }

/* bm[j]: BN in batch-statistics mode.  Each layer through its kind's ref_forward. */
static void ref_forward(const vkr_model *m, const float *x, int n, const char *bm, refnet *R) {
    R->nl = m->nlayers;
    R->val = calloc(m->nlayers, sizeof *R->val);
    R->argmax = calloc(m->nlayers, sizeof *R->argmax);
    uint64_t nx = (uint64_t)n * outf(&m->layers[0]);
    double *xd = malloc(nx * sizeof *xd);
    for (uint64_t i = 0; i < nx; i++) xd[i] = x[i];
    for (int j = 0; j < m->nlayers; j++) {
        const vkr_layer *L = &m->layers[j];
        const vkr_layer_kind *K = vkr__layer_kind(L->type);
        uint64_t no = (uint64_t)n * outf(L);
        R->val[j] = calloc(no, sizeof(double));
        if (K->argmax) R->argmax[j] = calloc(no, sizeof(int32_t));
        double *P[VKR_MAX_PARAMS] = {0};
        for (int k = 0; k < L->nparam; k++) P[k] = dcopy_param(m, j, k);
        const double **in = calloc(L->ninputs + 1, sizeof *in);
        in[0] = xd; /* the input layer's */
        for (int k = 0; k < L->ninputs; k++) in[k] = R->val[L->input_idx[k]];
        vkr_layer_ref r = {.L = L, .layers = m->layers, .n = n, .batch_stats = bm && bm[j], .param = P, .in = in,
                           .out = R->val[j], .argmax = R->argmax[j]};
        if (K->ref_forward) K->ref_forward(&r);
        free(in);
        for (int k = 0; k < VKR_MAX_PARAMS; k++) free(P[k]);
    }
    free(xd);
}

static void acc(double *dst, const double *src, uint64_t n) {
    for (uint64_t i = 0; i < n; i++) dst[i] += src[i];
}

/* Backward of softmax_ce on the last layer (dense + softmax), gradients of every layer from `stop` on,
 * each layer through its kind's ref_backward. */
static void ref_backward(const vkr_model *m, const float *targets, int n, const char *bm, int stop, refnet *R) {
    int T = m->nlayers - 1;
    const vkr_layer *LT = &m->layers[T];
    int K = LT->out_c;
    R->grad = calloc(m->nlayers, sizeof *R->grad);
    for (int k = 0; k < VKR_MAX_PARAMS; k++) R->pgrad[k] = calloc(m->nlayers, sizeof *R->pgrad[k]);
    for (int j = 0; j < m->nlayers; j++) R->grad[j] = calloc((uint64_t)n * outf(&m->layers[j]), sizeof(double));
    double *tg = malloc((size_t)n * K * sizeof *tg), res[2];
    for (int i = 0; i < n * K; i++) tg[i] = targets[i];
    R->probs = malloc((size_t)n * K * sizeof(double));
    vkr_ref_softmax_ce_forward(n, K, res, R->probs, R->val[T], tg);
    R->loss = res[0];
    vkr_ref_softmax_ce_backward(n, K, R->grad[T], R->probs, tg);
    free(tg);
    for (int j = T; j >= stop && j > 0; j--) {
        const vkr_layer *L = &m->layers[j];
        const vkr_layer_kind *Kd = vkr__layer_kind(L->type);
        double *P[VKR_MAX_PARAMS] = {0}, *pg[VKR_MAX_PARAMS] = {0};
        for (int k = 0; k < L->nparam; k++) {
            P[k] = dcopy_param(m, j, k);
            const vkr_tensor *Tt = vkr_model_param(m, j, k);
            if (Tt) pg[k] = R->pgrad[k][j] = calloc(Tt->count, sizeof(double));
        }
        const double **in = calloc(L->ninputs + 1, sizeof *in);
        double **din = calloc(L->ninputs + 1, sizeof *din);
        for (int k = 0; k < L->ninputs; k++) {
            in[k] = R->val[L->input_idx[k]];
            din[k] = calloc((uint64_t)n * outf(&m->layers[L->input_idx[k]]), sizeof(double));
        }
        vkr_layer_ref r = {.L = L, .layers = m->layers, .n = n, .batch_stats = bm && bm[j], .param = P, .in = in,
                           .out = R->val[j], .argmax = R->argmax[j], .dout = R->grad[j], .din = din, .dparam = pg};
        if (Kd->ref_backward) Kd->ref_backward(&r);
        for (int k = 0; k < L->ninputs; k++) {
            acc(R->grad[L->input_idx[k]], din[k], (uint64_t)n * outf(&m->layers[L->input_idx[k]]));
            free(din[k]);
        }
        free(in);
        free(din);
        for (int k = 0; k < VKR_MAX_PARAMS; k++) free(P[k]);
    }
}

static void ref_free(refnet *R) {
    for (int j = 0; j < R->nl; j++) {
        if (R->val) free(R->val[j]);
        if (R->grad) free(R->grad[j]);
        if (R->argmax) free(R->argmax[j]);
        for (int k = 0; k < 4; k++)
            if (R->pgrad[k]) free(R->pgrad[k][j]);
    }
    free(R->val);
    free(R->grad);
    free(R->argmax);
    for (int k = 0; k < 4; k++) free(R->pgrad[k]);
    free(R->probs);
    memset(R, 0, sizeof *R);
}

static double max_rel(const float *got, const double *ref, uint64_t n, double *max_abs_out) {
    double ma = 0, mr = 0;
    for (uint64_t i = 0; i < n; i++) {
        double e = fabs(got[i] - ref[i]);
        if (!(e <= ma)) ma = e; /* NaN propagates */
        if (fabs(ref[i]) > mr) mr = fabs(ref[i]);
    }
    if (max_abs_out) *max_abs_out = ma;
    return ma / (mr > 1e-30 ? mr : 1e-30);
}

/* ------------------------------------------------------------ device tests */


/* The end-to-end model: residual fan-out, fused activations, in-place relu,
 * odd sizes, asymmetric padding, 3-input concat with a repeated input, add(x, x), dropout. */
static vkr_status build_e2e(const char *path) {
    vkr_model *m;
    vkr_status s = vkr_model_new("e2e", "in", 3, 9, 7, "none", &m);
    if (s) return s;
    const char *layers[] = {
        "{\"name\":\"c1\",\"type\":\"conv2d\",\"filters\":6,\"kernel\":3,\"padding\":\"same\"}",
        "{\"name\":\"bn1\",\"type\":\"batchnorm\",\"epsilon\":0.001,\"momentum\":0.9}",
        "{\"name\":\"r1\",\"type\":\"relu\"}",
        "{\"name\":\"mp\",\"type\":\"maxpool\",\"pool\":2,\"strides\":2,\"ceil_mode\":true}",
        "{\"name\":\"c2\",\"type\":\"conv2d\",\"filters\":6,\"kernel\":1,\"activation\":\"relu\"}",
        "{\"name\":\"add\",\"type\":\"add\",\"inputs\":[\"mp\",\"c2\"]}",
        "{\"name\":\"hsw\",\"type\":\"hard_swish\"}",
        "{\"name\":\"clp\",\"type\":\"clip\",\"min\":-0.5,\"max\":0.75}",
        "{\"name\":\"dw\",\"type\":\"conv2d\",\"filters\":6,\"kernel\":3,\"groups\":6,\"padding\":\"same\"}",
        "{\"name\":\"gc\",\"type\":\"conv2d\",\"filters\":6,\"kernel\":3,\"groups\":3,\"dilation\":2,"
        "\"padding\":\"same\",\"use_bias\":false}",
        "{\"name\":\"zp\",\"type\":\"zeropad\",\"padding\":[1,0,0,1]}",
        "{\"name\":\"ap\",\"type\":\"avgpool\",\"pool\":3,\"strides\":1,\"count_include_pad\":false}",
        "{\"name\":\"apc\",\"type\":\"avgpool\",\"pool\":3,\"strides\":2,\"padding\":[1,1,1,1],"
        "\"count_include_pad\":true,\"ceil_mode\":true}",
        "{\"name\":\"c3\",\"type\":\"conv2d\",\"filters\":4,\"kernel\":[3,2],\"strides\":2,\"padding\":[1,1,0,1],\"use_bias\":false}",
        "{\"name\":\"bn2\",\"type\":\"batchnorm\",\"epsilon\":0.01}",
        "{\"name\":\"cat\",\"type\":\"concat\",\"inputs\":[\"bn2\",\"c3\",\"bn2\"]}",
        "{\"name\":\"twice\",\"type\":\"add\",\"inputs\":[\"cat\",\"cat\"]}",
        "{\"name\":\"sw\",\"type\":\"swish\"}",
        "{\"name\":\"hsg\",\"type\":\"hard_sigmoid\",\"alpha\":0.2,\"beta\":0.5}",
        "{\"name\":\"sg\",\"type\":\"sigmoid\"}",
        "{\"name\":\"se_g\",\"type\":\"gap\"}",
        "{\"name\":\"se_fc\",\"type\":\"dense\",\"units\":12}",
        "{\"name\":\"se_s\",\"type\":\"hard_sigmoid\"}",
        "{\"name\":\"se_m\",\"type\":\"multiply\",\"inputs\":[\"sg\",\"se_s\"]}",
        "{\"name\":\"sq\",\"type\":\"multiply\",\"inputs\":[\"se_m\",\"twice\"]}",
        "{\"name\":\"gap\",\"type\":\"gap\"}",
        "{\"name\":\"drop\",\"type\":\"dropout\",\"rate\":0.5}",
        "{\"name\":\"fc1\",\"type\":\"dense\",\"units\":7,\"activation\":\"relu\"}",
        "{\"name\":\"fl\",\"type\":\"flatten\",\"inputs\":[\"drop\"]}", /* flat: passes through (4-D: python_parity) */
        "{\"name\":\"fcf\",\"type\":\"dense\",\"units\":7}",
        "{\"name\":\"sum\",\"type\":\"add\",\"inputs\":[\"fc1\",\"fcf\"]}",
        "{\"name\":\"fc2\",\"type\":\"dense\",\"units\":5,\"activation\":\"softmax\"}",
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0] && !s; i++) s = vkr_model_append_json(m, layers[i], 100 + i);
    if (!s) {
        /* random BN statistics and affine parameters, random biases */
        for (int j = 0; j < m->nlayers; j++) {
            vkr_layer *L = &m->layers[j];
            for (int k = 0; k < L->nparam; k++) {
                vkr_tensor *T = vkr_model_param(m, j, k);
                if (!T) continue;
                for (uint64_t i = 0; i < T->count; i++) {
                    if (L->type == VKR_LAYER_BATCHNORM) /* test data: plausible statistics */
                        T->data[i] = (float)(k == VKR_PARAM_VAR ? 0.5 + urand() : k == VKR_PARAM_GAMMA ? 0.5 + urand()
                                                                                   : urand() - 0.5);
                    else if (k == VKR_PARAM_BIAS)
                        T->data[i] = (float)(0.2 * (urand() - 0.5));
                }
            }
        }
        s = vkr_model_save(m, path);
    }
    vkr_model_free(m);
    return s;
}

/* The end-to-end model on a device, its input and one-hot targets. */
typedef struct {
    vkr_context *ctx;
    vkr_model *m;
    const char *path; /* the model file: pristine weights */
    float *x, tg[3 * 5];
} e2e;
enum { N = 3 }; /* images */

/* The model's tensors back to the file's values. */
static void restore_weights(vkr_model *m, const vkr_model *m2) {
    for (int t = 0; t < m->ntensors; t++) {
        int u = vkr_model_find_tensor(m2, m->tensors[t].name);
        memcpy(m->tensors[t].data, m2->tensors[u].data, m->tensors[t].count * 4);
    }
}

static void test_inference(const e2e *E) {
    vkr_model *m = E->m;
    vkr_context *ctx = E->ctx;
    const float *x = E->x, *tg = E->tg;
    const int NL = m->nlayers, T = NL - 1;
    vkr_status s;
    /* --- inference */
    vkr_graph *g = NULL;
    vkr_graph_opts o = {.batch = 4};
    s = vkr_graph_create(ctx, m, &o, &g);
    result(!s, "graph create (inference)", "%s", s ? vkr_last_error() : "");
    refnet R = {0};
    ref_forward(m, x, N, NULL, &R);
    if (!s) {
        float y[3 * 5];
        s = vkr_graph_forward(g, x, N, NULL, y);
        double *p = malloc(N * 5 * sizeof *p);
        vkr_ref_softmax_forward(N, 5, p, R.val[T]);
        double ma, e = s ? 1 : max_rel(y, p, N * 5, &ma);
        result(!s && e < 1e-5, "forward vs double reference (softmax output)", "max rel %.2e %s", e,
               s ? vkr_last_error() : "");
        free(p);
        int gi = vkr_model_find_layer(m, "gap");
        float feat[3 * 12];
        s = vkr_graph_forward(g, x, N, "gap", feat);
        e = s ? 1 : max_rel(feat, R.val[gi], N * 12, &ma);
        result(!s && e < 1e-5, "intermediate layer output (gap features)", "max rel %.2e %s", e, s ? vkr_last_error() : "");
        int ci = vkr_model_find_layer(m, "add");
        float *fa = malloc((size_t)N * outf(&m->layers[ci]) * sizeof(float));
        s = vkr_graph_forward(g, x, 2, "add", fa);
        e = s ? 1 : max_rel(fa, R.val[ci], 2 * outf(&m->layers[ci]), &ma);
        result(!s && e < 1e-5, "intermediate 4-D output at n < batch", "max rel %.2e %s", e, s ? vkr_last_error() : "");
        free(fa);
        vkr_graph_memory mem;
        vkr_graph_memory_info(g, &mem);
        result(mem.activations < mem.naive, "liveness planning reuses buffers", "planned %llu bytes, naive %llu",
               (unsigned long long)mem.activations, (unsigned long long)mem.naive);
        float loss;
        int correct;
        s = vkr_graph_eval_batch(g, x, tg, N, &loss, &correct);
        refnet R2 = {0};
        ref_forward(m, x, N, NULL, &R2);
        ref_backward(m, tg, N, NULL, NL, &R2);
        result(!s && fabs(loss - R2.loss) < 1e-5 * fmax(1, fabs(R2.loss)), "eval_batch loss", "%.6f vs %.6f %s", loss,
               R2.loss, s ? vkr_last_error() : "");
        ref_free(&R2);
        s = vkr_graph_forward(g, x, 5, NULL, y);
        result(s == VKR_ERR_INVALID, "n > batch rejected", "%s", vkr_last_error());
        vkr_graph_destroy(g);
        g = NULL;
    }
    ref_free(&R);
}

/* One SGD step: w' = w - lr * grad (Rt: the reference gradients); the model restored after. */
static void check_sgd_step(const e2e *E, vkr_graph *g, const refnet *Rt) {
    vkr_model *m = E->m;
    const char *mp = E->path;
    const float *x = E->x, *tg = E->tg;
    const int NL = m->nlayers;
    float loss;
    int correct;
    vkr_status s;
    /* one SGD step: w' = w - lr * grad */
    s = vkr_graph_train_step(g, x, tg, N, &loss, &correct);
    vkr_model *m2 = NULL;
    vkr_status s2 = vkr_model_load(mp, &m2); /* pristine copy */
    if (!s) s = vkr_graph_download_weights(g);
    double we = 0;
    for (int j = 1; j < NL && !s && !s2; j++)
        for (int k = 0; k < m->layers[j].nparam; k++) {
            const vkr_tensor *A = vkr_model_param(m, j, k), *B = vkr_model_param(m2, j, k);
            if (!A) continue;
            int tr = vkr_param_slot_trainable(m->layers[j].type, k);
            for (uint64_t i = 0; i < A->count; i++) {
                double want = tr ? B->data[i] - 0.1 * Rt->pgrad[k][j][i] : B->data[i];
                double e = fabs(A->data[i] - want) / fmax(1e-3, fabs(want));
                if (e > we) we = e;
            }
        }
    result(!s && !s2 && we < 1e-4 && vkr_graph_step(g) == 1, "SGD step updates the weights", "max rel %.2e %s", we,
           s ? vkr_last_error() : "");
    /* restore the model's weights */
    if (m2) restore_weights(m, m2);
    vkr_model_free(m2);
}

/* BN running statistics move in batch mode: running = m*running + (1-m)*batch. */
static void check_bn_running(const e2e *E, vkr_graph *g, const refnet *Rt) {
    vkr_model *m = E->m;
    const char *mp = E->path;
    vkr_status s;
    /* BN running statistics move in batch mode: running = m*running + (1-m)*batch */
    s = vkr_graph_download_weights(g);
    int bi = vkr_model_find_layer(m, "bn1");
    const vkr_tensor *rm = vkr_model_param(m, bi, VKR_PARAM_MEAN);
    vkr_model *m2 = NULL;
    vkr_status s2 = vkr_model_load(mp, &m2);
    double e = 0;
    if (!s && !s2) {
        const vkr_layer *L = &m->layers[bi];
        vkr_bn_shape p = {N, L->in_c, L->in_h, L->in_w, (float)L->epsilon, (float)L->momentum, 1};
        double *rmean = dcopy_param(m2, bi, VKR_PARAM_MEAN), *rvar = dcopy_param(m2, bi, VKR_PARAM_VAR);
        double *sm = calloc(L->in_c, 8), *si = calloc(L->in_c, 8), *o2 = calloc(N * outf(L), 8);
        double *gm = dcopy_param(m2, bi, 0), *bt = dcopy_param(m2, bi, 1);
        vkr_ref_batchnorm_train_forward(o2, sm, si, Rt->val[L->input_idx[0]], gm, bt, rmean, rvar, &p);
        e = max_rel(rm->data, rmean, rm->count, NULL);
        free(rmean), free(rvar), free(sm), free(si), free(o2), free(gm), free(bt);
    }
    result(!s && !s2 && e < 1e-5, "BN running mean updated in batch mode (downloaded)", "max rel %.2e", e);
    if (m2) restore_weights(m, m2);
    vkr_model_free(m2);
}

static void test_training(const e2e *E) {
    vkr_model *m = E->m;
    vkr_context *ctx = E->ctx;
    const float *x = E->x, *tg = E->tg;
    const int NL = m->nlayers;
    vkr_graph *g = NULL;
    vkr_status s;
    /* --- training gradients: BN in inference mode (bn_train 0) and batch mode (bn_train 1), freeze 0 and 6 */
    /* split: weight / bias gradients forced into 3 split-K partials (vkr__gemm_force_split):
     * the graph must size and lend the scratch (mem.scratch > 0) and get the same gradients */
    struct {
        int bn_train, freeze, split;
    } cases[] = {{0, 0, 0}, {1, 0, 0}, {1, 6, 0}, {1, 0, 3}};
    for (int ci = 0; ci < 4; ci++) {
        vkr_graph_opts to = {.batch = N, .training = 1, .bn_train = cases[ci].bn_train, .freeze = cases[ci].freeze,
                             .optimizer = VKR_OPTIM_SGD};
        to.optim.lr = 0.1f;
        vkr__gemm_force_split(cases[ci].split);
        s = vkr_graph_create(ctx, m, &to, &g);
        char name[160];
        snprintf(name, sizeof name, "training graph bn_train=%d freeze=%d%s", cases[ci].bn_train, cases[ci].freeze,
                 cases[ci].split ? " split-K 3" : "");
        if (!s && cases[ci].split) {
            vkr_graph_memory mem;
            vkr_graph_memory_info(g, &mem);
            result(mem.scratch > 0, "graph plans split-K scratch", "%llu bytes", (unsigned long long)mem.scratch);
        }
        if (s) {
            result(0, name, "%s", vkr_last_error());
            continue;
        }
        char bm[64] = {0};
        for (int j = 0; j < NL; j++)
            bm[j] = cases[ci].bn_train && j >= cases[ci].freeze && vkr__layer_kind(m->layers[j].type)->batch_stats;
        refnet Rt = {0};
        ref_forward(m, x, N, bm, &Rt);
        ref_backward(m, tg, N, bm, 1, &Rt);
        float loss = 0;
        int correct = -1;
        s = vkr_graph_backward_only(g, x, tg, N, &loss, &correct);
        double worst = 0;
        char worst_name[128] = "";
        int ngrads = 0, frozen_ok = 1;
        for (int j = 1; j < NL && !s; j++) {
            const vkr_layer *L = &m->layers[j];
            for (int k = 0; k < L->nparam; k++) {
                const vkr_tensor *Tt = vkr_model_param(m, j, k);
                if (!Tt || !vkr_param_slot_trainable(L->type, k)) continue;
                float *gg = malloc(Tt->count * sizeof *gg);
                vkr_status sg = vkr_graph_download_grad(g, Tt->name, gg);
                if (j < cases[ci].freeze) {
                    frozen_ok &= sg == VKR_ERR_INVALID;
                } else if (sg) {
                    worst = 1;
                    snprintf(worst_name, sizeof worst_name, "%s: %s", Tt->name, vkr_last_error());
                } else {
                    double ma, e = max_rel(gg, Rt.pgrad[k][j], Tt->count, &ma), mref = 0;
                    for (uint64_t q = 0; q < Tt->count; q++)
                        if (fabs(Rt.pgrad[k][j][q]) > mref) mref = fabs(Rt.pgrad[k][j][q]);
                    /* a reference that is 0 in theory (a conv bias before batch-statistics BN) has no
                     * scale to be relative to: its float result is rounding noise, bounded absolutely */
                    if (mref < 1e-9) {
                        printf("  %s: reference ~0 (max %.1e), max|got| %.2e\n", Tt->name, mref, ma);
                        e = ma <= TINY_GRAD_ABS ? 0 : 1;
                    }
                    ngrads++;
                    if (!(e <= worst)) {
                        worst = e;
                        snprintf(worst_name, sizeof worst_name, "%s", Tt->name);
                    }
                }
                free(gg);
            }
        }
        result(!s && worst < 2e-4 && ngrads > 0 && frozen_ok && fabs(loss - Rt.loss) < 1e-5,
               name, "%d parameter gradients vs double reference, max rel %.2e (%s), loss %.6f vs %.6f %s", ngrads,
               worst, worst_name, loss, Rt.loss, s ? vkr_last_error() : "");
        if (ci == 0 && !s) check_sgd_step(E, g, &Rt);
        if (ci == 1 && !s) check_bn_running(E, g, &Rt);
        ref_free(&Rt);
        vkr_graph_destroy(g);
        g = NULL;
    }
    vkr__gemm_force_split(0);
}

/* Optimizer state save/load: two Adam steps in one graph == one step, save, new graph, load, one step;
 * checkpoint metadata. */
static void test_optimizer_state(const e2e *E) {
    vkr_model *m = E->m;
    vkr_context *ctx = E->ctx;
    const float *x = E->x, *tg = E->tg;
    vkr_status s;
    vkr_graph_opts ao = {.batch = N, .training = 1, .bn_train = 1, .optimizer = VKR_OPTIM_ADAM};
    ao.optim.lr = 0.01f, ao.optim.beta1 = 0.9f, ao.optim.beta2 = 0.999f, ao.optim.eps = 1e-7f;
    vkr_graph *ga = NULL, *gb = NULL;
    const char *op = tmp_path("opt.safetensors");
    float l1, l2;
    int c1, c2;
    s = vkr_graph_create(ctx, m, &ao, &ga);
    if (!s) s = vkr_graph_train_step(ga, x, tg, N, &l1, &c1);
    if (!s) s = vkr_graph_save_optimizer(ga, op);
    if (!s) s = vkr_graph_download_weights(ga);
    if (!s) s = vkr_graph_create(ctx, m, &ao, &gb);
    if (!s) s = vkr_graph_load_optimizer(gb, op);
    if (!s) s = vkr_graph_train_step(ga, x, tg, N, &l1, &c1);
    if (!s) s = vkr_graph_train_step(gb, x, tg, N, &l2, &c2);
    float *wa = NULL;
    double e = 1;
    int t0 = vkr_model_find_tensor(m, "c1.weight");
    if (!s) s = vkr_graph_download_weights(ga);
    if (!s) {
        wa = malloc(m->tensors[t0].count * 4);
        memcpy(wa, m->tensors[t0].data, m->tensors[t0].count * 4);
        s = vkr_graph_download_weights(gb);
    }
    if (!s) {
        e = 0;
        for (uint64_t i = 0; i < m->tensors[t0].count; i++) e = fmax(e, fabs(wa[i] - m->tensors[t0].data[i]));
    }
    result(!s && e == 0 && l1 == l2 && vkr_graph_step(gb) == 2, "optimizer state save + load resumes exactly",
           "max diff %.3g, loss %.6f vs %.6f %s", e, l1, l2, s ? vkr_last_error() : "");
    free(wa);
    ao.optimizer = VKR_OPTIM_SGD;
    vkr_graph_destroy(gb);
    gb = NULL;
    s = vkr_graph_create(ctx, m, &ao, &gb);
    if (!s) s = vkr_graph_load_optimizer(gb, op);
    result(s == VKR_ERR_FORMAT && strstr(vkr_last_error(), "adam"), "optimizer state of another optimizer rejected",
           "%s", vkr_last_error());
    vkr_graph_destroy(ga);
    vkr_graph_destroy(gb);
    /* checkpoint metadata travels with the model file */
    s = vkr_model_set_meta(m, "vkrun_checkpoint", "{\"epoch\":3}");
    const char *cp = tmp_path("ckpt.vkr");
    if (!s) s = vkr_model_save(m, cp);
    vkr_model *m3 = NULL;
    if (!s) s = vkr_model_load(cp, &m3);
    const char *v = m3 ? vkr_model_get_meta(m3, "vkrun_checkpoint") : NULL;
    result(!s && v && !strcmp(v, "{\"epoch\":3}") && vkr_model_set_meta(m, "format", "x") == VKR_ERR_INVALID,
           "metadata set/get/save/load", "%s", s ? vkr_last_error() : "");
    if (m3) {
        vkr_model_set_meta(m3, "vkrun_checkpoint", NULL);
        result(vkr_model_get_meta(m3, "vkrun_checkpoint") == NULL, "metadata removal", NULL);
    }
    vkr_model_free(m3);
}

/* Memory that does not fit fails clearly; a batch that does not fit whole is split. */
static void test_memory_limits(const e2e *E) {
    vkr_model *m = E->m;
    vkr_context *ctx = E->ctx;
    vkr_graph *g = NULL;
    vkr_status s;
    vkr_graph_opts big = {.batch = 1 << 20, .micro_batch = 1 << 20, .height = 512, .width = 512};
    s = vkr_graph_create(ctx, m, &big, &g);
    result(s == VKR_ERR_OUT_OF_MEMORY && strstr(vkr_last_error(), "MiB"),
           "too large a forced micro-batch fails naming the memory", "%s", vkr_last_error());
    vkr_graph_destroy(g);
    g = NULL;
    vkr_graph_opts huge = {.batch = 2, .height = 20000, .width = 20000};
    s = vkr_graph_create(ctx, m, &huge, &g);
    result(s == VKR_ERR_UNSUPPORTED && strstr(vkr_last_error(), "maxStorageBufferRange"),
           "an image too large for one binding fails naming the limit", "%s", vkr_last_error());
    vkr_graph_destroy(g);
    g = NULL;
    /* a batch that does not fit whole is planned as micro-batches */
    vkr_graph_opts auto_mb = {.batch = 1 << 20, .height = 64, .width = 64};
    s = vkr_graph_create(ctx, m, &auto_mb, &g);
    int mb = s ? 0 : vkr_graph_micro_batch(g);
    result(!s && mb > 1 && mb < (1 << 20), "a batch of 2^20 images is planned as micro-batches", "micro-batch %d %s",
           mb, s ? vkr_last_error() : "");
    vkr_graph_destroy(g);
}

static void test_device(void) {
    vkr_context *ctx = NULL;
    vkr_context_opts co = {.validation = -1};
    vkr_status s = vkr_context_create(&co, &ctx);
    if (s) {
        printf("SKIP device tests: no Vulkan device (%s)\n", vkr_last_error());
        g_skip++;
        return;
    }
    const char *mp = tmp_path("e2e.vkr");
    s = build_e2e(mp);
    vkr_model *m = NULL;
    if (!s) s = vkr_model_load(mp, &m);
    result(!s, "build, save and load the end-to-end model", "%s", s ? vkr_last_error() : "");
    if (s) {
        vkr_context_destroy(ctx);
        return;
    }
    e2e E = {.ctx = ctx, .m = m, .path = mp};
    uint64_t nin = (uint64_t)N * 3 * 9 * 7;
    E.x = malloc(nin * sizeof *E.x);
    for (uint64_t i = 0; i < nin; i++) E.x[i] = (float)(2 * urand() - 1);
    for (int b = 0; b < N; b++) E.tg[b * 5 + (b * 2 + 1) % 5] = 1;
    test_inference(&E);
    test_training(&E);
    test_optimizer_state(&E);
    test_memory_limits(&E);
    int verr = vkr_validation_enabled(ctx) ? (int)(vkr_validation_errors(ctx) + vkr_validation_warnings(ctx)) : 0;
    result(verr == 0, "no validation messages", "%d (validation %s)", verr, vkr_validation_enabled(ctx) ? "on" : "off");
    free(E.x);
    vkr_model_free(m);
    vkr_context_destroy(ctx);
}

int main(void) {
    test_dir_create("model-graph");
    test_device();
    test_dir_remove();
    return test_finish();
}
