/* vkrun forward: run a model on a batch stored as .npy, write the output as .npy. */
#include "cli.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "vkrun_model.h"
#include "vkrun_npy.h"

const char usage_forward[] =
    "usage: vkrun forward MODEL --input X.npy --output Y.npy [--layout nchw|nhwc] [--layer NAME]\n"
    "                    [--batch B] [--micro-batch N] [--precision P] [--device D]\n\n"
    "Runs the model (inference: BatchNorm with running statistics, dropout off) on the images\n"
    "of X and writes the output of the last layer, or of --layer NAME, to Y (written atomically).\n"
    "X is a float32 .npy array already preprocessed as the model expects (see the model's\n"
    "\"preprocess\"): [N, C, H, W] with --layout nchw (the default) or [N, H, W, C] with\n"
    "--layout nhwc.  H and W may differ from the model's default size when the graph allows.\n"
    "Y is [N, C] for vector outputs, else [N, C, H, W] (nchw) or [N, H, W, C] (nhwc).\n\n"
    "  --layer NAME  output of this layer instead of the last one (e.g. features before the head)\n"
    "  --batch B     images per call (default 64); the memory planner runs them as micro-batches\n"
    "                that fit the device, and prints its plan to stderr when it splits them\n"
    "  --micro-batch N  images per submission (default: the planner's choice)\n"
    "  --device D    device index or name substring (default: VKRUN_DEVICE, else the best device)\n"
    CLI_PRECISION_HELP;

static double now_ms(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

/* [N, A, B, C] -> [N, C, A, B] (to_nchw) or [N, C, A, B] -> [N, A, B, C] */
static void transpose(const float *src, float *dst, int64_t n, int64_t c, int64_t hw, int to_nchw) {
    for (int64_t i = 0; i < n; i++)
        for (int64_t k = 0; k < c; k++)
            for (int64_t p = 0; p < hw; p++) {
                if (to_nchw) dst[(i * c + k) * hw + p] = src[(i * hw + p) * c + k];
                else dst[(i * hw + p) * c + k] = src[(i * c + k) * hw + p];
            }
}

typedef struct {
    const char *path, *inpath, *outpath, *layer, *device, *layout, *precision;
    int batch, micro, nhwc;
} fwd_args;

static int parse_args(int argc, char **argv, fwd_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(o, "--input") && has) a->inpath = argv[++i];
        else if (!strcmp(o, "--output") && has) a->outpath = argv[++i];
        else if (!strcmp(o, "--layer") && has) a->layer = argv[++i];
        else if (!strcmp(o, "--device") && has) a->device = argv[++i];
        else if (!strcmp(o, "--precision") && has) a->precision = argv[++i];
        else if (!strcmp(o, "--layout") && has) a->layout = argv[++i];
        else if ((!strcmp(o, "--batch") || !strcmp(o, "--micro-batch")) && has) {
            int v = atoi(argv[++i]);
            if (v < 1) {
                fprintf(stderr, "vkrun forward: %s needs a positive integer\n", o);
                return 2;
            }
            *(o[2] == 'b' ? &a->batch : &a->micro) = v;
        } else if (o[0] == '-') {
            return cli_unknown_option("forward", o, usage_forward);
        } else if (!a->path) a->path = o;
        else {
            fprintf(stderr, "vkrun forward: one model file expected\n");
            return 2;
        }
    }
    if (!a->path || !a->inpath || !a->outpath) {
        fputs(usage_forward, stderr);
        return 2;
    }
    if (cli_output_is_input("forward", a->inpath, a->outpath) || cli_output_is_input("forward", a->path, a->outpath) ||
        cli_output_unwritable("forward", a->outpath))
        return 1;
    if (!strcmp(a->layout, "nhwc")) a->nhwc = 1;
    else if (strcmp(a->layout, "nchw")) {
        fprintf(stderr, "vkrun forward: --layout must be nchw or nhwc\n");
        return 2;
    }
    return 0;
}

/* The input's N, C, H, W checked against the model; 0, or 1 after a message. */
static int check_input(const fwd_args *a, const vkr_model *m, const vkr_npy *x, int64_t d[4]) {
    if (x->ndim != 4) {
        fprintf(stderr, "vkrun forward: %s has %d dimensions; expected [N, %s] (4)\n", a->inpath, x->ndim,
                a->nhwc ? "H, W, C" : "C, H, W");
        return 1;
    }
    int64_t N = x->shape[0], C = a->nhwc ? x->shape[3] : x->shape[1], H = a->nhwc ? x->shape[1] : x->shape[2],
            W = a->nhwc ? x->shape[2] : x->shape[3];
    const char *why = N < 1                                  ? "holds no image (N = 0)"
                      : C != m->in_c                         ? NULL
                      : H < 1 || W < 1                       ? "has an empty image size"
                      : H > (1 << 20) || W > (1 << 20)       ? "has an image size over 2^20"
                                                             : "";
    if (!why || *why) {
        char shape[160];
        snprintf(shape, sizeof shape, "[%lld, %lld, %lld, %lld] (%s)", (long long)x->shape[0], (long long)x->shape[1],
                 (long long)x->shape[2], (long long)x->shape[3], a->layout);
        if (why) fprintf(stderr, "vkrun forward: %s is %s: it %s\n", a->inpath, shape, why);
        else fprintf(stderr, "vkrun forward: %s is %s with %lld channels, but the model takes %d\n", a->inpath, shape,
                     (long long)C, m->in_c);
        return 1;
    }
    d[0] = N, d[1] = C, d[2] = H, d[3] = W;
    return 0;
}

/* Writes y [N][per] as [N, C] or [N, C, H, W] / [N, H, W, C]; 0, or 1 after a message. */
static int write_output(const fwd_args *a, const float *y, int64_t N, uint64_t per, int oc, int oh, int ow, int orank) {
    int64_t shape[4];
    int ndim = 4;
    float *yt = NULL;
    const float *yout = y;
    if (orank == 2) {
        ndim = 2;
        shape[0] = N, shape[1] = oc;
    } else if (a->nhwc) {
        shape[0] = N, shape[1] = oh, shape[2] = ow, shape[3] = oc;
        if (!(yt = malloc((size_t)N * per * sizeof(float)))) {
            fprintf(stderr, "vkrun forward: out of host memory\n");
            return 1;
        }
        transpose(y, yt, N, oc, (int64_t)oh * ow, 0);
        yout = yt;
    } else {
        shape[0] = N, shape[1] = oc, shape[2] = oh, shape[3] = ow;
    }
    vkr_status s = vkr_npy_write(a->outpath, yout, ndim, shape);
    free(yt);
    return s ? cli_error("forward", s) : 0;
}

int cmd_forward(int argc, char **argv) {
    fwd_args a = {.layout = "nchw", .batch = 64};
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    vkr_model *m = NULL;
    vkr_context *ctx = NULL;
    vkr_graph *g = NULL;
    vkr_npy x = {0};
    float *xin = NULL, *y = NULL;
    int64_t d[4];
    rc = 1;
    vkr_status s = vkr_model_load(a.path, &m);
    if (s) return cli_error("forward", s);
    if (a.layer && vkr_model_find_layer(m, a.layer) < 0) {
        fprintf(stderr, "vkrun forward: %s has no layer named \"%s\"\n", a.path, cli_esc(a.layer));
        goto done;
    }
    if ((s = vkr_npy_read(a.inpath, &x))) {
        cli_error("forward", s);
        goto done;
    }
    if (check_input(&a, m, &x, d)) goto done;
    int64_t N = d[0], C = d[1], H = d[2], W = d[3];
    if (a.nhwc) {
        if (!(xin = malloc(x.count * sizeof(float)))) {
            fprintf(stderr, "vkrun forward: out of host memory\n");
            goto done;
        }
        transpose(x.data, xin, N, C, H * W, 1);
    }
    const float *xnchw = a.nhwc ? xin : x.data;
    if ((s = vkr_model_infer_shapes(m, (int)H, (int)W)) || (s = cli_context_at(a.device, a.precision, &ctx))) {
        cli_error("forward", s);
        goto done;
    }
    vkr_graph_opts o = {.batch = a.batch > N ? (int)N : a.batch, .micro_batch = a.micro, .height = (int)H,
                        .width = (int)W, .output = a.layer};
    if ((s = vkr_graph_create(ctx, m, &o, &g))) {
        cli_error("forward", s);
        goto done;
    }
    cli_print_plan(g, stderr);
    int tl = a.layer ? vkr_model_find_layer(m, a.layer) : m->nlayers - 1;
    int oc, oh, ow, orank;
    vkr_graph_layer_shape(g, tl, &oc, &oh, &ow, &orank);
    uint64_t per = vkr_graph_out_floats(g, a.layer), in_per = (uint64_t)C * H * W;
    if (!(y = malloc((size_t)N * per * sizeof(float)))) {
        fprintf(stderr, "vkrun forward: out of host memory\n");
        goto done;
    }
    double t0 = now_ms();
    for (int64_t i = 0; i < N; i += o.batch) {
        int n = (int)(N - i < o.batch ? N - i : o.batch);
        if ((s = vkr_graph_forward(g, xnchw + i * in_per, n, a.layer, y + i * per))) {
            cli_error("forward", s);
            goto done;
        }
    }
    double t1 = now_ms();
    if (write_output(&a, y, N, per, oc, oh, ow, orank) || cli_check_validation(ctx)) goto done;
    vkr_graph_memory mem;
    vkr_graph_memory_info(g, &mem);
    fprintf(stderr, "forward: %lld image(s) %lldx%lld, batch %d, output \"%s\" %s -> %s, %.1f ms (%.1f images/s), "
                    "activations %.1f MiB planned (%.1f MiB without reuse)\n",
            (long long)N, (long long)H, (long long)W, o.batch, cli_esc(m->layers[tl].name), orank == 2 ? "[N, C]" : a.layout,
            a.outpath, t1 - t0, N / ((t1 - t0) / 1e3), mem.activations / 1048576.0, mem.naive / 1048576.0);
    rc = 0;
done:
    vkr_graph_destroy(g);
    if (ctx) vkr_context_destroy(ctx);
    vkr_model_free(m);
    vkr_npy_free(&x);
    free(xin);
    free(y);
    return rc;
}
