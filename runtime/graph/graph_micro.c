/* Graph runtime: the memory planner and micro-batches.
 *
 * A graph is created for calls of up to opts.batch images.  Its buffers are sized
 * for a micro-batch mb <= batch: the largest that fits the device budget with a
 * safety margin (or opts.micro_batch).  A call of n images runs as ceil(n / mb)
 * submissions.  Training accumulates the weight gradients of the micro-batches
 * (each weighted by its share of the call's images, so the sum is the gradient of
 * the mean loss over all n) and applies one optimizer update per call.  When a
 * submission or allocation runs out of memory, the graph re-plans with half the
 * micro-batch and runs the call again from its start. */
#include "graph/graph_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#define SAFETY 0.90 /* the planner uses 90% of the available budget */
#define USEFUL 8     /* below this micro-batch, recomputation is tried (opts.recompute == 0) */

static uint64_t out_floats(const vkr_layer *L) { return (uint64_t)L->out_c * L->out_h * L->out_w; }
static double mib(uint64_t b) { return b / 1048576.0; }

static vkr_status fits(vkr_graph *g, int mb, int *ok, vkr_graph_memory *mem) {
    uint64_t largest;
    vkr_status s = vkr__graph_measure(g, mb, mem, &largest);
    if (s) return s;
    uint64_t maxalloc = vkr_context_device(g->ctx)->max_memory_allocation_size;
    *ok = mem->total <= g->usable && (!maxalloc || largest <= maxalloc);
    return VKR_OK;
}

static vkr_status too_big(vkr_graph *g, int mb, const vkr_graph_memory *m) {
    const vkr_memory_budget *B = &g->budget;
    return vkr_fail(VKR_ERR_OUT_OF_MEMORY,
                    "%s: micro-batch %d (of batch %d) at %dx%d needs %.1f MiB of device memory (weights %.1f, activations "
                    "%.1f planned, training state %.1f, input %.1f) but the planner may use %.1f MiB (device heap %.1f MiB, "
                    "budget %.1f, %.1f in use, %.0f%% of what is free); use a smaller input size (or, training, freeze more layers)",
                    vkr__model_label(g->m), mb, g->step_batch, g->h, g->w, mib(m->total), mib(m->weights),
                    mib(m->activations), mib(m->train_state), mib(m->input), mib(g->usable), mib(B->heap),
                    mib(B->budget), mib(B->usage), SAFETY * 100);
}

/* *mb = the largest micro-batch that fits (memory grows with it), 0 if none. */
static vkr_status largest_fit(vkr_graph *g, int *mb, vkr_graph_memory *mem) {
    int ok, lo = 1, hi = g->step_batch;
    vkr_status s = fits(g, hi, &ok, mem);
    if (s || ok) {
        *mb = hi;
        return s;
    }
    if ((s = fits(g, 1, &ok, mem))) return s;
    if (!ok) {
        *mb = 0;
        return VKR_OK;
    }
    while (lo < hi - 1) {
        int mid = (lo + hi) / 2;
        if ((s = fits(g, mid, &ok, mem))) return s;
        if (ok) lo = mid;
        else hi = mid;
    }
    *mb = lo;
    return VKR_OK;
}

vkr_status vkr__graph_choose(vkr_graph *g, int *mb_out) {
    const vkr_device_info *I = vkr_context_device(g->ctx);
    vkr_device_memory_budget(g->ctx, &g->budget);
    g->usable = (uint64_t)(g->budget.available * SAFETY);
    if (!g->budget.heap) g->usable = UINT64_MAX; /* no device-local heap reported: nothing to plan against */
    /* kernels split tensors at image boundaries: one image must fit one binding */
    for (int j = 0; j < g->nlayers; j++)
        if (out_floats(&g->layers[j]) * 4 > I->max_storage_buffer_range)
            return vkr_fail(VKR_ERR_UNSUPPORTED,
                            "%s: layer %d \"%s\" outputs %.1f MiB per image at %dx%d, over the device's "
                            "maxStorageBufferRange (%.1f MiB); use a smaller input size",
                            vkr__model_label(g->m), j, g->layers[j].name, mib(out_floats(&g->layers[j]) * 4), g->h, g->w,
                            mib(I->max_storage_buffer_range));
    vkr_graph_memory mem;
    int ok, mb = g->step_batch;
    vkr_status s;
    g->recompute = g->o.training && g->o.recompute > 0;
    if (g->o.micro_batch > 0) {
        if (mb > g->o.micro_batch) mb = g->o.micro_batch;
        if ((s = fits(g, mb, &ok, &mem))) return s;
        if (!ok) return too_big(g, mb, &mem);
        *mb_out = mb;
        return VKR_OK;
    }
    if ((s = largest_fit(g, &mb, &mem))) return s;
    /* recomputation when micro-batches alone would go below a useful size */
    if (g->o.training && g->o.recompute == 0 && mb < (g->step_batch < USEFUL ? g->step_batch : USEFUL)) {
        int mr = 0;
        g->recompute = 1;
        if ((s = largest_fit(g, &mr, &mem))) return s;
        if (mr > mb) mb = mr;
        else g->recompute = 0;
    }
    if (mb == 0) {
        (void)vkr__graph_measure(g, 1, &mem, NULL);
        return too_big(g, 1, &mem);
    }
    int k = (g->step_batch + mb - 1) / mb;
    *mb_out = (g->step_batch + k - 1) / k; /* as few micro-batches, as even as they go */
    return VKR_OK;
}

int vkr_graph_micro_batch(const vkr_graph *g) { return g->batch; }
int vkr_graph_recoveries(const vkr_graph *g) { return g->recoveries; }

void vkr_graph_plan_line(const vkr_graph *g, char *buf, size_t n) {
    const vkr_graph_memory *m = &g->mem;
    int mb = g->batch, k = (g->step_batch + mb - 1) / mb, last = g->step_batch - (k - 1) * mb;
    char split[160], state[64] = "";
    if (k == 1) snprintf(split, sizeof split, "batch %d in one pass", g->step_batch);
    else
        snprintf(split, sizeof split, "batch %d as %d micro-batches of %d%s%.0d%s", g->step_batch, k, mb,
                 last != mb ? " (last " : "", last != mb ? last : 0, last != mb ? ")" : "");
    if (g->o.training) snprintf(state, sizeof state, " + gradients and optimizer state %.1f", mib(m->train_state));
    const vkr_memory_budget *B = &g->budget;
    char rec[64] = "";
    if (g->recoveries) snprintf(rec, sizeof rec, ", re-planned %d time%s after out-of-memory", g->recoveries,
                                g->recoveries == 1 ? "" : "s");
    snprintf(buf, n,
             "memory plan: %s%s%s%s%s%s: weights %.1f MiB + activations %.1f%s + input %.1f = %.1f MiB; device heap %.1f "
             "MiB, budget %.1f%s, planner uses %.1f (%.0f%% of free)",
             split, g->o.micro_batch > 0 ? " (--micro-batch)" : " (auto)", rec,
             k > 1 && g->o.training ? ", gradients accumulated, one update per batch" : "",
             k > 1 && g->o.training && g->o.bn_train ? ", BatchNorm statistics per micro-batch" : "",
             g->recompute ? (g->o.recompute > 0 ? ", activations recomputed inside blocks (--recompute)"
                                                : ", activations recomputed inside blocks (auto)")
                          : "",
             mib(m->weights),
             mib(m->activations), state, mib(m->input), mib(m->total), mib(B->heap), mib(B->budget),
             B->from_env ? " (VKRUN_MEMORY_BUDGET)" : B->from_ext ? " (VK_EXT_memory_budget)" : " (heap size)", mib(g->usable), SAFETY * 100);
}

static vkr_status need_loss_plan(vkr_graph *g, vkr__plan **P) {
    if (g->o.training) {
        *P = &g->main;
        return VKR_OK;
    }
    /* inference graph: a loss plan without backward (lazily) */
    *P = &g->infer;
    if (g->infer.built && g->infer.with_loss) return VKR_OK;
    vkr_status s = vkr__plan_build(g, &g->infer, g->target, 1, 0);
    if (!s) s = vkr__plan_alloc(g, &g->infer);
    if (s) vkr__plan_free(&g->infer);
    return s;
}

static vkr_status forward_plan(vkr_graph *g, int j, vkr__plan **P) {
    if (!g->o.training && g->main.built && g->main.target == j) {
        *P = &g->main;
        return VKR_OK;
    }
    *P = &g->infer;
    if (g->infer.built && g->infer.target == j && !g->infer.with_loss) return VKR_OK;
    vkr_status s = vkr__plan_build(g, &g->infer, j, 0, 0);
    if (!s) s = vkr__plan_alloc(g, &g->infer);
    if (s) vkr__plan_free(&g->infer);
    return s;
}

/* One call as micro-batches; mode as vkr__graph_run (VKR__RUN_STEP: the update with the last one). */
static vkr_status run_call(vkr_graph *g, int j, const float *input, const float *targets, int n, vkr__run_mode mode, float *loss,
                           int *correct, float *out) {
    vkr__plan *P;
    vkr_status s = mode == VKR__RUN_INFER ? forward_plan(g, j, &P) : mode == VKR__RUN_EVAL ? need_loss_plan(g, &P) : VKR_OK;
    if (mode >= VKR__RUN_GRADS) P = &g->main;
    if (s) return s;
    uint64_t xin = (uint64_t)g->m->in_c * g->h * g->w;
    uint64_t tf = g->loss == VKR_LOSS_SOFTMAX_CE ? (uint64_t)g->classes : g->target_floats;
    uint64_t of = mode == VKR__RUN_INFER ? out_floats(&g->layers[j]) : 0;
    uint32_t step0 = g->step;
    double lsum = 0;
    int csum = 0;
    g->call_n = n;
    for (int i0 = 0; i0 < n && !s; i0 += g->batch) {
        int m = n - i0 < g->batch ? n - i0 : g->batch, c = 0;
        float l = NAN;
        g->mb_n = m;
        g->mb_rest = n - i0 - m;
        g->accumulate = i0 > 0;
        vkr__run_mode md = mode == VKR__RUN_STEP && g->mb_rest > 0 ? VKR__RUN_GRADS : mode;
        s = vkr__graph_run(g, P, input + i0 * xin, targets ? targets + i0 * tf : NULL, m, md, &l, &c,
                           out ? out + i0 * of : NULL);
        lsum += (double)l * m;
        csum += c;
    }
    g->accumulate = 0;
    g->call_n = 0;
    if (s) {
        g->step = step0; /* the update was not applied */
        return s;
    }
    if (loss) *loss = (float)(lsum / n);
    if (correct) *correct = csum;
    return VKR_OK;
}

/* run_call, re-planned with half the micro-batch while it runs out of memory. */
static vkr_status call(vkr_graph *g, int j, const float *input, const float *targets, int n, vkr__run_mode mode, float *loss,
                       int *correct, float *out) {
    if (n < 1 || n > g->step_batch)
        return vkr_fail(VKR_ERR_INVALID, "graph: n = %d outside [1, batch %d]", n, g->step_batch);
    if (!input) return vkr_fail(VKR_ERR_INVALID, "graph: no input");
    if (mode >= VKR__RUN_EVAL && !targets) return vkr_fail(VKR_ERR_INVALID, "graph: no targets");
    for (;;) {
        vkr_status s = run_call(g, j, input, targets, n, mode, loss, correct, out);
        if (s != VKR_ERR_OUT_OF_MEMORY || g->batch <= 1) return s;
        char why[768];
        snprintf(why, sizeof why, "%s", vkr_last_error());
        int mb = g->batch;
        do {
            mb = (mb + 1) / 2;
            g->recoveries++;
            s = vkr__graph_size(g, mb);
        } while (s == VKR_ERR_OUT_OF_MEMORY && mb > 1);
        if (s) return vkr_fail(s, "%s; re-planning at micro-batch %d after \"%s\" failed too", vkr_last_error(), mb, why);
    }
}

vkr_status vkr_graph_forward(vkr_graph *g, const float *input, int n, const char *layer, float *out) {
    int j = layer ? vkr_model_find_layer(g->m, layer) : g->target;
    if (j < 0) return vkr_fail(VKR_ERR_NOT_FOUND, "%s: no layer named \"%s\"", vkr__model_label(g->m), layer);
    if (n < 1 || n > g->step_batch)
        return vkr_fail(VKR_ERR_INVALID, "graph forward: n = %d outside [1, batch %d]", n, g->step_batch);
    if (j == 0) { /* the input itself */
        memcpy(out, input, (size_t)n * out_floats(&g->layers[0]) * sizeof(float));
        return VKR_OK;
    }
    return call(g, j, input, NULL, n, VKR__RUN_INFER, NULL, NULL, out);
}

static vkr_status grads_call(vkr_graph *g, const float *input, const float *targets, int n, float *loss, int *correct) {
    return call(g, g->target, input, targets, n, VKR__RUN_GRADS, loss, correct, NULL);
}

vkr_status vkr_graph_train_step(vkr_graph *g, const float *input, const float *targets, int n, float *loss,
                                int *correct) {
    if (!g->o.training) return vkr_fail(VKR_ERR_INVALID, "train_step on a graph created without training");
    if (g->o.loss_scaling) return vkr__graph_scaled_step(g, grads_call, input, targets, n, loss, correct);
    return call(g, g->target, input, targets, n, VKR__RUN_STEP, loss, correct, NULL);
}

vkr_status vkr_graph_backward_only(vkr_graph *g, const float *input, const float *targets, int n, float *loss,
                                   int *correct) {
    if (!g->o.training) return vkr_fail(VKR_ERR_INVALID, "backward on a graph created without training");
    return call(g, g->target, input, targets, n, VKR__RUN_GRADS, loss, correct, NULL);
}

vkr_status vkr_graph_eval_batch(vkr_graph *g, const float *input, const float *targets, int n, float *loss,
                                int *correct) {
    return call(g, g->target, input, targets, n, VKR__RUN_EVAL, loss, correct, NULL);
}
