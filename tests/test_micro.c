/* Micro-batches: a training step split into micro-batches equals the whole-batch
 * step (BatchNorm in inference mode) up to summation order; the BN running mean
 * with batch statistics matches too; out-of-memory at run time and at creation
 * (injected limits) is recovered with the same weights as an unforced run. */
#include "test_util.h"
#include "vkrun_model.h"
#include "test_rng.h"

#include <math.h>
#include <string.h>

enum { B = 8, C = 3, H = 12, W = 12, K = 5, STEPS = 3 };


/* conv-BN-relu twice (the second strided, with a residual add), GAP, dense-relu, dense-softmax;
 * random BN statistics so that inference-mode BN is not the identity. */
static vkr_status build(vkr_model **out) {
    vkr_model *m;
    vkr_status s = vkr_model_new("micro", "in", C, H, W, "none", &m);
    if (s) return s;
    const char *layers[] = {
        "{\"name\":\"c1\",\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,\"padding\":\"same\"}",
        "{\"name\":\"bn1\",\"type\":\"batchnorm\",\"epsilon\":0.001,\"momentum\":0.9}",
        "{\"name\":\"r1\",\"type\":\"relu\"}",
        "{\"name\":\"c2\",\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,\"padding\":\"same\",\"use_bias\":false}",
        "{\"name\":\"bn2\",\"type\":\"batchnorm\",\"epsilon\":0.001,\"momentum\":0.9}",
        "{\"name\":\"add\",\"type\":\"add\",\"inputs\":[\"r1\",\"bn2\"]}",
        "{\"name\":\"r2\",\"type\":\"relu\"}",
        "{\"name\":\"c3\",\"type\":\"conv2d\",\"filters\":12,\"kernel\":3,\"strides\":2,\"padding\":\"same\"}",
        "{\"name\":\"gap\",\"type\":\"gap\"}",
        "{\"name\":\"fc1\",\"type\":\"dense\",\"units\":16,\"activation\":\"relu\"}",
        "{\"name\":\"fc2\",\"type\":\"dense\",\"units\":5,\"activation\":\"softmax\"}",
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0] && !s; i++) s = vkr_model_append_json(m, layers[i], 7 + i);
    uint64_t keep = g_test_rng;
    g_test_rng = 12345;
    for (int j = 0; j < m->nlayers && !s; j++) {
        vkr_layer *L = &m->layers[j];
        for (int k = 0; k < L->nparam; k++) {
            vkr_tensor *T = vkr_model_param(m, j, k);
            if (!T) continue;
            for (uint64_t i = 0; i < T->count; i++) {
                if (L->type == VKR_LAYER_BATCHNORM)
                    T->data[i] = (float)(k == VKR_PARAM_VAR || k == VKR_PARAM_GAMMA ? 0.5 + urand() : urand() - 0.5);
                else if (k == VKR_PARAM_BIAS)
                    T->data[i] = (float)(0.2 * (urand() - 0.5));
            }
        }
    }
    g_test_rng = keep;
    if (s) vkr_model_free(m);
    else *out = m;
    return s;
}

typedef struct {
    int micro, bn_train, sgd, backward_only, one_step, recompute;
} run_opts;

static float g_x[STEPS][B * C * H * W], g_t[STEPS][B * K];

/* Trains STEPS steps (or one backward) on a fresh model; returns it with the trained
 * weights (or, backward_only, the gradients in place of the weights). */
static vkr_status train(vkr_context *ctx, const run_opts *ro, vkr_model **out, int *mb_used, float *loss0,
                        uint64_t limit_after_first) {
    vkr_model *m = NULL;
    vkr_graph *g = NULL;
    vkr_status s = build(&m);
    vkr_graph_opts o = {.batch = B, .micro_batch = ro->micro, .training = 1, .bn_train = ro->bn_train,
                        .recompute = ro->recompute ? ro->recompute : -1, .loss = VKR_LOSS_SOFTMAX_CE};
    o.optimizer = ro->sgd ? VKR_OPTIM_SGD : VKR_OPTIM_ADAM;
    o.optim = (vkr_optim_params){.lr = ro->sgd ? 0.05f : 1e-3f, .momentum = 0.9f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-7f};
    if (!s) s = vkr_graph_create(ctx, m, &o, &g);
    for (int st = 0; st < (ro->backward_only || ro->one_step ? 1 : STEPS) && !s; st++) {
        float l;
        int c;
        int n = st == STEPS - 1 ? B - 1 : B; /* the last call is short: micro-batches 3, 3, 1 */
        s = ro->backward_only ? vkr_graph_backward_only(g, g_x[st], g_t[st], n, &l, &c)
                              : vkr_graph_train_step(g, g_x[st], g_t[st], n, &l, &c);
        if (st == 0 && loss0) *loss0 = l;
        if (st == 0 && limit_after_first) vkr_context_set_memory_limit(ctx, limit_after_first);
    }
    vkr_context_set_memory_limit(ctx, 0);
    if (!s && ro->backward_only) {
        for (int t = 0; t < m->ntensors && !s; t++)
            if (vkr_graph_download_grad(g, m->tensors[t].name, m->tensors[t].data) != VKR_OK)
                memset(m->tensors[t].data, 0, m->tensors[t].count * 4);
    } else if (!s) {
        s = vkr_graph_download_weights(g);
    }
    if (mb_used) *mb_used = g ? vkr_graph_micro_batch(g) : 0;
    vkr_graph_destroy(g);
    if (s) vkr_model_free(m);
    else *out = m;
    return s;
}

/* Worst over the tensors whose name contains `filter` (NULL: all) of max|a-b| / max|a|. */
static double max_rel(const vkr_model *a, const vkr_model *b, const char *filter, const char **worst) {
    double w = 0;
    for (int t = 0; t < a->ntensors; t++) {
        if (filter && !strstr(a->tensors[t].name, filter)) continue;
        double d = 0, r = 0;
        for (uint64_t i = 0; i < a->tensors[t].count; i++) {
            d = fmax(d, fabs((double)a->tensors[t].data[i] - b->tensors[t].data[i]));
            r = fmax(r, fabs((double)a->tensors[t].data[i]));
        }
        double q = r > 0 ? d / r : d;
        if (q >= w) {
            w = q;
            if (worst) *worst = a->tensors[t].name;
        }
    }
    return w;
}

static void compare(vkr_context *ctx, const char *what, run_opts whole, run_opts split, double tol) {
    vkr_model *a = NULL, *b = NULL, *init = NULL;
    int mba = 0, mbb = 0;
    float la = NAN, lb = NAN;
    vkr_status s = train(ctx, &whole, &a, &mba, &la, 0);
    if (!s) s = train(ctx, &split, &b, &mbb, &lb, 0);
    if (!s) s = build(&init);
    CHECK_OK(s, "%s: both runs", what);
    if (s) goto out;
    const char *wt = "";
    double d = max_rel(a, b, NULL, &wt), moved = max_rel(a, init, NULL, NULL);
    if (whole.backward_only) { /* the gradients are not all zero */
        moved = 0;
        for (int t = 0; t < a->ntensors; t++)
            for (uint64_t i = 0; i < a->tensors[t].count; i++) moved = fmax(moved, fabs(a->tensors[t].data[i]));
    }
    CHECK(mba == whole.micro && mbb == split.micro, "%s: micro-batch %d vs %d", what, mba, mbb);
    CHECK(fabs(la - lb) <= 1e-5 * fabs(la), "%s: first loss %.7f (whole) vs %.7f (micro-batches)", what, la, lb);
    CHECK(d <= tol && moved > 10 * tol,
          "%s: max relative difference of every tensor, micro-batches of %d vs whole batch %d: %.3g (worst %s; "
          "bound %.0e; largest change or gradient %.3g)",
          what, split.micro, B, d, wt, tol, moved);
out:
    vkr_model_free(a);
    vkr_model_free(b);
    vkr_model_free(init);
}

/* Recomputation: the same gradients and steps with less activation memory. */
static void recompute(vkr_context *ctx) {
    compare(ctx, "recompute, gradients", (run_opts){.micro = B, .backward_only = 1},
            (run_opts){.micro = B, .backward_only = 1, .recompute = 1}, 1e-6);
    compare(ctx, "recompute + micro-batches of 3, adam", (run_opts){.micro = B},
            (run_opts){.micro = 3, .recompute = 1}, 1e-5);
    vkr_model *m = NULL;
    vkr_graph_memory a = {0}, b = {0};
    vkr_graph_opts o = {.batch = B, .training = 1, .recompute = -1, .loss = VKR_LOSS_SOFTMAX_CE};
    vkr_status s = build(&m);
    if (!s) s = vkr_graph_plan(m, &o, &a);
    o.recompute = 1;
    if (!s) s = vkr_graph_plan(m, &o, &b);
    CHECK(!s && b.activations < a.activations, "recompute: activations %.1f KiB instead of %.1f KiB", b.activations / 1024.0,
          a.activations / 1024.0);
    vkr_model_free(m);
}

/* BN with batch statistics: the running mean after a step is that of the whole batch:
 * exactly for the first BN (later BNs see inputs normalized with micro-batch statistics,
 * and after a step the gradients differ for the same reason). */
static void bn_train(vkr_context *ctx) {
    run_opts whole = {.micro = B, .bn_train = 1, .one_step = 1}, split = {.micro = 3, .bn_train = 1, .one_step = 1};
    vkr_model *a = NULL, *b = NULL, *init = NULL;
    vkr_status s = train(ctx, &whole, &a, NULL, NULL, 0);
    if (!s) s = train(ctx, &split, &b, NULL, NULL, 0);
    if (!s) s = build(&init);
    CHECK_OK(s, "bn_train runs");
    if (!s) {
        double dm = max_rel(a, b, "bn1.running_mean", NULL), dv = max_rel(a, b, "bn1.running_var", NULL);
        double moved = max_rel(a, init, "bn1.running_mean", NULL);
        CHECK(dm < 1e-5 && moved > 1e-3,
              "bn_train: first BN's running mean after a step, micro-batches of 3 vs whole: max rel %.3g (moved %.3g); running "
              "variance (mean of the micro-batch variances): %.3g",
              dm, moved, dv);
    }
    vkr_model_free(a);
    vkr_model_free(b);
    vkr_model_free(init);
}

/* Out of memory: at a submission after the first step (the live buffers exceed a limit
 * lowered under them) and at creation (a limit that the whole batch's buffers exceed). */
static void oom(vkr_context *ctx) {
    run_opts whole = {.micro = B, .sgd = 0}, autop = {.micro = 0, .sgd = 0};
    vkr_model *a = NULL, *b = NULL, *c = NULL, *m = NULL;
    int mbb = 0, mbc = 0;
    vkr_status s = train(ctx, &whole, &a, NULL, NULL, 0);
    uint64_t base = vkr_device_bytes_in_use(ctx);
    /* the graph's buffers at micro-batch B, then a limit just under them */
    vkr_graph_memory m8 = {0}, m2 = {0};
    vkr_graph_opts o = {.batch = B, .micro_batch = B, .training = 1, .optimizer = VKR_OPTIM_ADAM,
                        .loss = VKR_LOSS_SOFTMAX_CE};
    if (!s) s = build(&m);
    if (!s) s = vkr_graph_plan(m, &o, &m8);
    o.micro_batch = 2;
    if (!s) s = vkr_graph_plan(m, &o, &m2);
    vkr_model_free(m);
    if (!s) s = train(ctx, &autop, &b, &mbb, NULL, base + m8.total - m8.activations / 4);
    CHECK_OK(s, "run with an injected out-of-memory at the second step's submission");
    if (!s) {
        double d = max_rel(a, b, NULL, NULL);
        CHECK(mbb < B && d < 1e-5, "re-planned from micro-batch %d to %d and continued: weights vs unforced run: max rel %.3g",
              B, mbb, d);
    }
    uint64_t lim = base + m2.total + (1u << 16);
    vkr_context_set_memory_limit(ctx, lim);
    s = s ? s : train(ctx, &autop, &c, &mbc, NULL, 0);
    vkr_context_set_memory_limit(ctx, 0);
    CHECK_OK(s, "run with an injected allocation limit of %.2f MiB at creation (whole batch needs %.2f)",
             (lim - base) / 1048576.0, m8.total / 1048576.0);
    if (!s) {
        double d = max_rel(a, c, NULL, NULL);
        CHECK(mbc < B && d < 1e-5, "creation re-planned to micro-batch %d: weights vs unforced run: max rel %.3g", mbc, d);
    }
    vkr_model_free(a);
    vkr_model_free(b);
    vkr_model_free(c);
}

int main(void) {
    vkr_context *ctx = NULL;
    vkr_context_opts co = {.validation = -1};
    if (vkr_context_create(&co, &ctx)) {
        printf("SKIP no Vulkan device: %s\n", vkr_last_error());
        return 77;
    }
    for (int st = 0; st < STEPS; st++) {
        for (int i = 0; i < B * C * H * W; i++) g_x[st][i] = (float)(2 * urand() - 1);
        for (int b = 0; b < B; b++) g_t[st][b * K + (int)(urand() * K) % K] = 1;
    }
    compare(ctx, "gradients (backward only)", (run_opts){.micro = B, .backward_only = 1},
            (run_opts){.micro = 3, .backward_only = 1}, 1e-5);
    compare(ctx, "sgd+momentum", (run_opts){.micro = B, .sgd = 1}, (run_opts){.micro = 3, .sgd = 1}, 1e-5);
    compare(ctx, "adam", (run_opts){.micro = B}, (run_opts){.micro = 3}, 1e-5);
    compare(ctx, "adam, micro-batch 1", (run_opts){.micro = B}, (run_opts){.micro = 1}, 1e-5);
    bn_train(ctx);
    recompute(ctx);
    oom(ctx);
    test_no_validation_messages(ctx, "micro-batches");
    vkr_context_destroy(ctx);
    return test_finish();
}
