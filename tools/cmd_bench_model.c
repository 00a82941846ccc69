/* vkrun bench MODEL: per-layer GPU time of a model's forward (and backward). */
#include "cli.h"

#include <cJSON.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkrun_model.h"

const char usage_bench_model[] =
    "usage: vkrun bench MODEL [--batch B] [--backward] [--iters N] [--height H --width W]\n"
    "                  [--freeze F] [--recompute] [--precision P] [--device D] [--pipelines] [--json]\n\n"
    "Times a model on random input: per-layer GPU time from timestamps (forward, and with\n"
    "--backward the backward pass and the optimizer update of a training step), total ms\n"
    "per batch (wall clock, including upload and recording), images/s, and GFLOP/s of the\n"
    "conv2d/dense layers (FLOPs counted as 2 x multiply-adds).\n\n"
    "  --batch B        images per batch (default 8)\n"
    "  --backward       time training steps (SGD, lr 0: the weights do not change)\n"
    "  --iters N        timed iterations after one warm-up (default 3)\n"
    "  --height/--width input size (default: the model's)\n"
    "  --freeze F       with --backward: layers [0, F) frozen (default 0)\n"
    "  --recompute      with --backward: recompute activations inside blocks (docs/memory.md)\n"
    "  --device D       device index or name substring\n"
    "  --json           the same figures as one JSON object (per-layer \"layers\", totals, memory)\n"
    "  --pipelines      instead of times: creates every pipeline of one training step and prints,\n"
    "                   per pipeline, its workgroup size and what the driver reports of the code it\n"
    "                   compiled (VK_KHR_pipeline_executable_properties: registers, spills, shared\n"
    "                   memory, subgroup size), or says that the driver reports nothing; with --json\n"
    "                   {\"model\", \"device\", \"driver\", \"statistics_reported\", \"pipelines\": [{\"shader\",\n"
    "                   \"key\", \"local_size\", \"statistics\": {NAME: value}}]}\n"
    "  --precision P    fp32 (default), fp16 (with --backward: dynamic loss scaling too), bf16, auto\n";

typedef struct {
    const char *path, *device;
    int batch, gh, gw, backward, iters, timing;
    const vkr_model *m;
    const vkr_graph *g;
    const double *fsum, *bsum;
    double upd, wall;
} bm_report;

/* The figures: a table and totals, or with --json one object (null where the device has no
 * timestamps): {"model", "device", "batch", "height", "width", "backward", "iters", "layers": [{"index",
 * "name", "type", "output", "forward_ms", "backward_ms", "gflop", "gflops"}], "gpu_forward_ms", ...}. */
static void report(const bm_report *R, int json) {
    const char *path = R->path;
    int batch = R->batch, gh = R->gh, gw = R->gw, backward = R->backward, iters = R->iters, timing = R->timing;
    const vkr_model *m = R->m;
    const vkr_graph *g = R->g;
    const double *fsum = R->fsum, *bsum = R->bsum;
    double upd = R->upd, wall = R->wall;
    int nl = m->nlayers;
    cJSON *J = json ? cJSON_CreateObject() : NULL, *layers = NULL;
    if (J) {
        cJSON_AddStringToObject(J, "model", path);
        cJSON_AddStringToObject(J, "device", R->device);
        cJSON_AddNumberToObject(J, "batch", batch);
        cJSON_AddNumberToObject(J, "height", gh);
        cJSON_AddNumberToObject(J, "width", gw);
        cJSON_AddBoolToObject(J, "backward", backward);
        cJSON_AddNumberToObject(J, "iters", iters);
        layers = cJSON_AddArrayToObject(J, "layers");
    }
    uint32_t nd, nb;
    vkr_graph_last_counts(g, &nd, &nb);
    vkr_graph_memory mem;
    vkr_graph_memory_info(g, &mem);
    if (!J)
        printf("Model %s on \"%s\": batch %d, %dx%d, %s, %d timed iteration(s)\n", path, R->device, batch, gh, gw,
               backward ? "training step (forward + backward + SGD update)" : "forward", iters);
    double gflop_f = 0, gflop_b = 0, gpu_f = 0, gpu_b = 0;
    if (timing && !J) {
        printf(" %-4s %-32s %-10s %-20s %10s", "#", "layer", "type", "output", "fwd ms");
        if (backward) printf(" %10s", "bwd ms");
        printf(" %9s %9s\n", "GFLOP", "GFLOP/s");
    }
    for (int j = 0; j < nl; j++) {
        double bf, ff = vkr_graph_layer_flops(g, j, &bf) * batch;
        bf *= batch;
        double fm = fsum[j] / iters, bmv = bsum[j] / iters;
        gpu_f += fm;
        gpu_b += bmv;
        gflop_f += ff / 1e9;
        gflop_b += backward ? bf / 1e9 : 0;
        if (!timing || (fm == 0 && bmv == 0)) continue;
        char shape[64];
        int c, hh, ww, rk;
        vkr_graph_layer_shape(g, j, &c, &hh, &ww, &rk);
        if (rk == 2) snprintf(shape, sizeof shape, "(N, %d)", c);
        else snprintf(shape, sizeof shape, "(N, %d, %d, %d)", c, hh, ww);
        double fl = ff + (backward ? bf : 0), tm = fm + bmv;
        char gfs[32] = "", gfl[32] = "";
        if (fl > 0) {
            snprintf(gfl, sizeof gfl, "%.3f", fl / 1e9);
            if (tm > 0) snprintf(gfs, sizeof gfs, "%.2f", fl / 1e9 / (tm / 1e3));
        }
        if (J) {
            cJSON *l = cJSON_CreateObject();
            cJSON_AddNumberToObject(l, "index", j);
            cJSON_AddStringToObject(l, "name", m->layers[j].name);
            cJSON_AddStringToObject(l, "type", vkr_layer_type_name(m->layers[j].type));
            cJSON_AddStringToObject(l, "output", shape);
            cJSON_AddNumberToObject(l, "forward_ms", fm);
            if (backward) cJSON_AddNumberToObject(l, "backward_ms", bmv);
            cJSON_AddNumberToObject(l, "gflop", fl / 1e9);
            if (fl > 0 && tm > 0) cJSON_AddNumberToObject(l, "gflops", fl / 1e9 / (tm / 1e3));
            cJSON_AddItemToArray(layers, l);
            continue;
        }
        printf(" %-4d %-32.32s %-10s %-20s %10.3f", j, cli_esc(m->layers[j].name), vkr_layer_type_name(m->layers[j].type), shape,
               fm);
        if (backward) printf(" %10.3f", bmv);
        printf(" %9s %9s\n", gfl, gfs);
    }
    double ms = wall / iters, gflop = gflop_f + gflop_b;
    if (J) {
        cJSON_AddNumberToObject(J, "gpu_forward_ms", timing ? gpu_f : NAN);
        cJSON_AddNumberToObject(J, "gpu_backward_ms", timing && backward ? gpu_b : NAN);
        cJSON_AddNumberToObject(J, "gpu_update_ms", timing && backward ? upd / iters : NAN);
        cJSON_AddNumberToObject(J, "wall_ms", ms);
        cJSON_AddNumberToObject(J, "dispatches", nd);
        cJSON_AddNumberToObject(J, "barriers", nb);
        cJSON_AddNumberToObject(J, "images_per_s", batch / (ms / 1e3));
        cJSON_AddNumberToObject(J, "gflops", gflop / (ms / 1e3));
        cJSON_AddNumberToObject(J, "gflop_per_batch", gflop);
        cJSON_AddNumberToObject(J, "weights_mib", mem.weights / 1048576.0);
        cJSON_AddNumberToObject(J, "activations_mib", mem.activations / 1048576.0);
        cJSON_AddNumberToObject(J, "activations_naive_mib", mem.naive / 1048576.0);
        cJSON_AddNumberToObject(J, "training_state_mib", mem.train_state / 1048576.0);
        char *txt = cJSON_Print(J);
        if (txt) printf("%s\n", txt);
        free(txt);
        cJSON_Delete(J);
        return;
    }
    if (timing && backward)
        printf("GPU time per batch: forward %.2f ms, backward %.2f ms, update %.2f ms, sum %.2f ms\n", gpu_f, gpu_b,
               upd / iters, gpu_f + gpu_b + upd / iters);
    else if (timing)
        printf("GPU time per batch: forward %.2f ms\n", gpu_f);
    printf("Wall time per batch: %.2f ms (%u dispatches, %u barriers)\n", ms, nd, nb);
    printf("Throughput: %.2f images/s, %.2f GFLOP/s (conv2d/dense: %.3f GFLOP per batch)\n", batch / (ms / 1e3),
           gflop / (ms / 1e3), gflop);
    printf("Device memory: weights %.1f MiB, activations %.1f MiB planned (%.1f MiB without reuse), training state %.1f MiB\n",
           mem.weights / 1048576.0, mem.activations / 1048576.0, mem.naive / 1048576.0, mem.train_state / 1048576.0);
    if (!timing) printf("(the device has no timestamps: no per-layer times)\n");
}

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int pos_int(const char *s, int *out) {
    char *e;
    long v = strtol(s, &e, 10);
    if (!*s || *e || v < 0 || v > (1 << 24)) return 0;
    *out = (int)v;
    return 1;
}

int cmd_bench_model(int argc, char **argv) {
    const char *path = NULL, *device = NULL, *precision = NULL;
    int batch = 8, iters = 3, h = 0, w = 0, freeze = 0, backward = 0, recompute = -1, json = 0, pipelines = 0;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        int *dst = !strcmp(a, "--batch") ? &batch : !strcmp(a, "--iters") ? &iters : !strcmp(a, "--height") ? &h
                 : !strcmp(a, "--width") ? &w : !strcmp(a, "--freeze") ? &freeze : NULL;
        if (dst && has) {
            if (!pos_int(argv[++i], dst)) {
                fprintf(stderr, "vkrun bench: %s needs a non-negative integer\n", a);
                return 2;
            }
        } else if (!strcmp(a, "--backward")) backward = 1;
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--pipelines")) pipelines = 1;
        else if (!strcmp(a, "--recompute")) recompute = 1;
        else if (!strcmp(a, "--device") && has) device = argv[++i];
        else if (!strcmp(a, "--precision") && has) precision = argv[++i];
        else if (a[0] == '-') {
            char near[64]; /* a flag of this form of bench, else of another (bench --loaders -> --loader) */
            return cli_unknown_option("bench", a, cli_suggest_flag(a, usage_bench_model, near, sizeof near) ?
                                                      usage_bench_model : usage_bench);
        } else if (!path) path = a;
        else {
            fprintf(stderr, "vkrun bench: one model file expected\n");
            return 2;
        }
    }
    if (!path || batch < 1 || iters < 1) {
        fputs(usage_bench_model, stderr);
        return 2;
    }
    vkr_model *m = NULL;
    vkr_context *ctx = NULL;
    vkr_graph *g = NULL;
    float *x = NULL, *t = NULL, *y = NULL;
    double *fsum = NULL, *bsum = NULL, *fms = NULL, *bms = NULL;
    int rc = 1;
    vkr_status s = vkr_model_load(path, &m);
    if (s) return cli_error("bench", s);
    if ((s = cli_context_at(device, precision, &ctx))) {
        cli_error("bench", s);
        goto done;
    }
    int captured = 0;
    if (pipelines) { /* statistics from the first pipeline on; one training step creates them all */
        captured = vkr_context_capture_pipeline_stats(ctx) == VKR_OK;
        backward = 1;
        iters = 0;
    }
    int timing = vkr_context_device(ctx)->timestamps && !pipelines;
    /* the whole batch in one submission (per-layer times are those of one submission) */
    vkr_graph_opts o = {.batch = batch, .micro_batch = batch, .height = h, .width = w, .training = backward,
                        .freeze = freeze, .recompute = recompute, .optimizer = VKR_OPTIM_SGD, .timing = timing};
    o.optim.lr = 0.0f;
    o.loss_scaling = backward && vkr_context_precision(ctx) == VKR_PRECISION_FP16; /* as vkr_fit */
    if ((s = vkr_graph_create(ctx, m, &o, &g))) {
        cli_error("bench", s);
        goto done;
    }
    int nl = m->nlayers, T = nl - 1;
    int gh = h ? h : m->in_h, gw = w ? w : m->in_w;
    uint64_t nin = (uint64_t)batch * m->in_c * gh * gw, nout = (uint64_t)batch * vkr_graph_out_floats(g, NULL);
    int tc, th, tw, trank;
    vkr_graph_layer_shape(g, T, &tc, &th, &tw, &trank);
    const vkr_layer *TL = &m->layers[T];
    int softmax_out = TL->type == VKR_LAYER_SOFTMAX || (TL->type == VKR_LAYER_DENSE && TL->activation == VKR_ACT_SOFTMAX);
    x = malloc(nin * sizeof *x);
    t = calloc(nout, sizeof *t);
    y = malloc(nout * sizeof *y);
    fsum = calloc(nl, sizeof *fsum);
    bsum = calloc(nl, sizeof *bsum);
    fms = calloc(nl, sizeof *fms);
    bms = calloc(nl, sizeof *bms);
    if (!x || !t || !y || !fsum || !bsum || !fms || !bms) {
        fprintf(stderr, "vkrun bench: out of host memory\n");
        goto done;
    }
    uint64_t r = 12345;
    for (uint64_t i = 0; i < nin; i++) {
        r = r * 6364136223846793005ull + 1442695040888963407ull;
        x[i] = (float)((r >> 40) / 16777216.0 * 2 - 1);
    }
    if (softmax_out)
        for (int b = 0; b < batch; b++) t[(uint64_t)b * tc + (uint64_t)b % tc] = 1.0f;
    else
        for (uint64_t i = 0; i < nout; i++) t[i] = 1.0f / (float)nout;
    double wall = 0, upd = 0;
    for (int it = 0; it <= iters; it++) {
        double t0 = now_ms();
        if (backward) s = vkr_graph_train_step(g, x, t, batch, NULL, NULL);
        else s = vkr_graph_forward(g, x, batch, NULL, y);
        double t1 = now_ms();
        if (s) {
            cli_error("bench", s);
            goto done;
        }
        if (it == 0) continue; /* warm-up: pipeline creation */
        wall += t1 - t0;
        if (timing) {
            vkr_graph_layer_times(g, fms, bms);
            for (int j = 0; j < nl; j++) fsum[j] += fms[j], bsum[j] += bms[j];
            upd += vkr_graph_update_ms(g);
        }
    }
    bm_report R = {path, vkr_context_device(ctx)->name, batch, gh, gw, backward, iters, timing, m, g, fsum, bsum,
                   upd, wall};
    if (cli_check_validation(ctx)) goto done;
    if (pipelines) {
        rc = bench_pipelines_report(ctx, path, captured, json);
        goto done;
    }
    report(&R, json);
    rc = 0;
done:
    vkr_graph_destroy(g);
    if (ctx) vkr_context_destroy(ctx);
    vkr_model_free(m);
    free(x);
    free(t);
    free(y);
    free(fsum);
    free(bsum);
    free(fms);
    free(bms);
    return rc;
}
