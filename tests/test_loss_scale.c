/* Dynamic loss scaling (vkr_graph_opts.loss_scaling, runtime/graph/graph_scale.c) with fp16 GEMM
 * inputs (vkr_context_set_precision): a small conv net, SGD with momentum (linear in the gradients,
 * so weight differences are gradient differences; Adam would magnify noise in near-zero gradients).
 *   overflow: an initial scale of 2^40 makes the scaled loss gradient (|p - t| / B >= ~0.1 for
 *     near-uniform predictions) exceed fp16's 65504, so the fp16 GEMM inputs of the backward turn
 *     inf: the step is skipped (weights bit for bit unchanged) and the scale halves, twice;
 *   schedule: from 16 with a growth interval of 2, five clean steps; after each step the scale,
 *     skipped count and clean run equal a reference of the documented rule (GradScaler's: backoff
 *     0.5 on inf/NaN, growth 2 after `interval` clean steps) computed here;
 *   the five loss-scaled fp16 steps give the weights of five unscaled fp16 steps (the scales are
 *     powers of two, so scaling changes no fp16 mantissa, only which tiny gradients fall into fp16's
 *     subnormals) within 1e-3 of the change, and stay within 5e-2 of the change of five fp32 steps
 *     (fp16 input rounding, 2^-11 relative per value; measured 0.021 on lavapipe);
 *   an invalid precision is refused and the context keeps its precision.
 * SKIP without a Vulkan device or without shaderFloat16. */
#include "test_rng.h"
#include "test_util.h"
#include "vkrun_model.h"

#include <math.h>
#include <string.h>

enum { B = 8, C = 3, H = 10, W = 10, K = 5, STEPS = 5 };

static float g_x[STEPS][B * C * H * W], g_t[STEPS][B * K];

static vkr_status build(vkr_model **out) {
    vkr_model *m;
    vkr_status s = vkr_model_new("ls", "in", C, H, W, "none", &m);
    if (s) return s;
    const char *layers[] = {
        "{\"name\":\"c1\",\"type\":\"conv2d\",\"filters\":8,\"kernel\":3,\"padding\":\"same\",\"activation\":\"relu\"}",
        "{\"name\":\"c2\",\"type\":\"conv2d\",\"filters\":12,\"kernel\":3,\"strides\":2,\"padding\":\"same\"}",
        "{\"name\":\"gap\",\"type\":\"gap\"}",
        "{\"name\":\"fc1\",\"type\":\"dense\",\"units\":16,\"activation\":\"relu\"}",
        "{\"name\":\"fc2\",\"type\":\"dense\",\"units\":5,\"activation\":\"softmax\"}",
    };
    for (size_t i = 0; i < sizeof layers / sizeof layers[0] && !s; i++) s = vkr_model_append_json(m, layers[i], 11 + i);
    if (s) vkr_model_free(m);
    else *out = m;
    return s;
}

typedef struct {
    double scale;
    long skipped;
    int clean;
} ls_ref;

/* The documented rule, for the reference: a step with inf/NaN gradients halves the scale and ends
 * the clean run; a clean step extends it, and `interval` of them double the scale. */
static void rule(ls_ref *r, int bad, int interval) {
    if (bad) {
        r->scale *= 0.5;
        r->skipped++;
        r->clean = 0;
    } else if (++r->clean == interval) {
        r->scale *= 2;
        r->clean = 0;
    }
}

/* Trains `steps` steps at `prec`; loss scaling from `init` (0: off) with growth interval 2;
 * checks the scaler's state after every step against rule(), each step expected clean unless
 * `expect_bad`.  Returns the trained model. */
static vkr_status run(vkr_context *ctx, vkr_precision prec, double init, int steps, int expect_bad, const char *what,
                      vkr_model **out) {
    vkr_model *m = NULL;
    vkr_graph *g = NULL;
    vkr_status s = vkr_context_set_precision(ctx, prec);
    if (!s) s = build(&m);
    vkr_graph_opts o = {.batch = B, .training = 1, .loss = VKR_LOSS_SOFTMAX_CE, .optimizer = VKR_OPTIM_SGD,
                        .loss_scaling = init > 0, .loss_scale_init = init, .loss_scale_interval = 2};
    o.optim = (vkr_optim_params){.lr = 0.05f, .momentum = 0.9f};
    if (!s) s = vkr_graph_create(ctx, m, &o, &g);
    ls_ref ref = {init, 0, 0};
    int state_ok = 1;
    for (int st = 0; st < steps && !s; st++) {
        float l;
        int c;
        s = vkr_graph_train_step(g, g_x[st], g_t[st], B, &l, &c);
        if (s || init <= 0) continue;
        rule(&ref, expect_bad, 2);
        vkr_loss_scale_state ls;
        vkr_graph_loss_scale(g, &ls);
        int ok = ls.scale == ref.scale && ls.skipped == ref.skipped && ls.clean == ref.clean;
        if (!ok)
            printf("  step %d: scale %g skipped %ld clean %d, reference %g %ld %d\n", st + 1, ls.scale, ls.skipped,
                   ls.clean, ref.scale, ref.skipped, ref.clean);
        state_ok &= ok;
    }
    if (init > 0 && !s)
        CHECK(state_ok, "%s: scale, skipped steps, clean run after each of %d steps equal the reference rule (last: "
              "scale %g, skipped %ld)", what, steps, ref.scale, ref.skipped);
    if (!s) s = vkr_graph_download_weights(g);
    vkr_graph_destroy(g);
    vkr_context_set_precision(ctx, VKR_PRECISION_FP32);
    if (s) vkr_model_free(m);
    else *out = m;
    return s;
}

/* max over tensors of max |a - b| / max |b - init| (difference relative to the change) */
static double rel_change(const vkr_model *a, const vkr_model *b, const vkr_model *init) {
    double w = 0;
    for (int t = 0; t < a->ntensors; t++) {
        double d = 0, r = 0;
        for (uint64_t i = 0; i < a->tensors[t].count; i++) {
            d = fmax(d, fabs((double)a->tensors[t].data[i] - b->tensors[t].data[i]));
            r = fmax(r, fabs((double)b->tensors[t].data[i] - init->tensors[t].data[i]));
        }
        w = fmax(w, r > 0 ? d / r : d);
    }
    return w;
}

static int same_bits(const vkr_model *a, const vkr_model *b) {
    for (int t = 0; t < a->ntensors; t++)
        if (memcmp(a->tensors[t].data, b->tensors[t].data, a->tensors[t].count * 4)) return 0;
    return 1;
}

int main(void) {
    vkr_context *ctx = NULL;
    vkr_context_opts co = {.validation = -1};
    if (vkr_context_create(&co, &ctx)) {
        printf("SKIP no Vulkan device: %s\n", vkr_last_error());
        return 77;
    }
    if (!vkr_context_device(ctx)->fp16_arithmetic) {
        SKIP_CHECK("loss scaling with fp16 GEMMs: device \"%s\" lacks shaderFloat16", vkr_context_device(ctx)->name);
        vkr_context_destroy(ctx);
        return test_finish();
    }
    for (int st = 0; st < STEPS; st++) {
        for (int i = 0; i < B * C * H * W; i++) g_x[st][i] = (float)(2 * urand() - 1);
        for (int b = 0; b < B; b++) g_t[st][b * K + (int)(urand() * K) % K] = 1;
    }
    vkr_model *init = NULL, *over = NULL, *scaled = NULL, *plain16 = NULL, *fp32 = NULL;
    vkr_status s = build(&init);
    if (!s) s = run(ctx, VKR_PRECISION_FP16, 0x1p40, 2, 1, "overflow from 2^40", &over);
    CHECK_OK(s, "fp16 training from scale 2^40 runs");
    if (!s) CHECK(same_bits(over, init), "overflow: both skipped steps left every weight bit for bit unchanged");
    if (!s) s = run(ctx, VKR_PRECISION_FP16, 16, STEPS, 0, "schedule from 16", &scaled);
    if (!s) s = run(ctx, VKR_PRECISION_FP16, 0, STEPS, 0, "fp16 unscaled", &plain16);
    if (!s) s = run(ctx, VKR_PRECISION_FP32, 0, STEPS, 0, "fp32", &fp32);
    CHECK_OK(s, "loss-scaled fp16, unscaled fp16 and fp32 training run");
    if (!s) {
        double d16 = rel_change(scaled, plain16, init), d32 = rel_change(scaled, fp32, init);
        printf("  unscaled fp16 vs fp32: %.3g\n", rel_change(plain16, fp32, init));
        double moved = rel_change(init, fp32, init);
        /* equal up to fp16 subnormals: unscaled, gradients below 2^-14 keep only a 2^-24 quantum
         * (~1e-4 of gradients ~1e-3 here); a wrong unscaling factor would be O(1) */
        CHECK(d16 <= 1e-3 && moved > 0.5, "loss-scaled fp16 vs unscaled fp16 weights after %d steps: %.3g of the change "
              "(bound 1e-3)", STEPS, d16);
        CHECK(d32 <= 5e-2, "loss-scaled fp16 vs fp32 weights after %d SGD steps: %.3g of the change (bound 5e-2)",
              STEPS, d32);
    }
    vkr_precision was = vkr_context_precision(ctx);
    CHECK(vkr_context_set_precision(ctx, (vkr_precision)42) == VKR_ERR_INVALID && vkr_context_precision(ctx) == was,
          "an invalid precision is refused (%s), precision kept", vkr_last_error());
    vkr_model_free(init);
    vkr_model_free(over);
    vkr_model_free(scaled);
    vkr_model_free(plain16);
    vkr_model_free(fp32);
    test_no_validation_messages(ctx, "loss scaling");
    vkr_context_destroy(ctx);
    return test_finish();
}
