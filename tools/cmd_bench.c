/* vkrun bench --op conv2d|dense|depthwise: GPU-timestamp timings of the GEMM-path ops and of the
 * depthwise kernels (against the grouped-GEMM path on the same shapes). */
#include "cli.h"
#include "vkrun_ops.h"

#include <cJSON.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char usage_bench[] =
    "usage: vkrun bench --op conv2d|dense|depthwise [--device D] [--batch B] [--variant auto|tiled|texel|all]\n"
    "                   [--iters N] [--tile I|all] [--split S] [--precision P|all] [--json]\n"
    "       vkrun bench MODEL [--batch B] [--backward] [--iters N] [--height H --width W]\n"
    "                   [--freeze F] [--device D] [--pipelines] [--json]\n"
    "       vkrun bench --loader DIR [--augment SPEC] [--size HxW] [--batch B] [--epochs E]\n"
    "                   [--threads N] [--json]\n"
    "       mpirun -np N vkrun bench --allreduce MB [--iters N]\n\n"
    "With --op: times one op on the device with GPU timestamps (the sum of the op's\n"
    "dispatches), after a warm-up run, and prints per shape, batch, kernel variant and\n"
    "direction (forward, backward-data, backward-weight) the median milliseconds and\n"
    "GFLOP/s (2 x the multiply-adds of the forward convolution, for every direction).\n"
    "Shapes: conv2d: ResNet50 3x3 256->256 at 14x14, 1x1 1024->256 at 14x14,\n"
    "7x7/2 3->64 at 224x224 (pad 3), 1x1 64->256 at 56x56; dense: 2048->1024, 1024->1024;\n"
    "depthwise: MobileNetV2 3x3 96 at 56x56, 3x3/2 144 at 56x56, 5x5 240 at 14x14, 3x3 dilation 2\n"
    "384 at 14x14, each by the depthwise kernels and by the grouped-GEMM path (--variant ignored).\n"
    "On a CPU device (llvmpipe) other processes on the machine stretch GPU timestamps:\n"
    "compare variants side by side in one run.\n\n"
    "  --op OP         conv2d, dense or depthwise\n"
    "  --device D      device index or name substring (default: VKRUN_DEVICE, else best)\n"
    "  --batch B       batch size (default: runs 1 and 32)\n"
    "  --variant V     GEMM kernel variant: auto (the device's choice, default), tiled, texel, all\n"
    "  --iters N       timed runs per direction (default 3)\n"
    "  --tile I|all    block shape (tuning): index into the variant's built-in table (texel: block\n"
    "                  per invocation; tiled: 64x64, 128x64, 128x128 tiles), or all of them\n"
    "  --split S       split-K of backward-weight (tuning): S partial sums (1 = none; default:\n"
    "                  the device's choice)\n"
    "  --precision P   GEMM precision: fp32 (default), fp16 (inputs rounded to fp16, fp32\n"
    "                  accumulation; the variant column gets \"+fp16\"), bf16 (\"+bf16\"), auto, or\n"
    "                  all: fp32, fp16 and bf16 side by side in one run (fp16 where the device has\n"
    "                  shaderFloat16; --op depthwise: the first only, its depthwise kernels are fp32)\n"
    "  --json          the same figures as JSON: {\"device\", \"device_type\", \"iters\", \"results\": [{\"op\",\n"
    "                  \"shape\", \"batch\", \"variant\", \"direction\", \"ms\", \"gflops\"}]}\n\n"
    "Without --op: per-layer GPU time of a whole model (forward, with --backward a training\n"
    "step), images/s and GFLOP/s; --batch defaults to 8 there.\n\n"
    "With --loader DIR (a folder of class subfolders, as for train): images/s of the data loader\n"
    "alone (decoding, resizing, caffe preprocessing; no device) over E epochs (default 2), without\n"
    "and with the augmentation SPEC (default flip,rotate=15,zoom=0.1,shift=0.1,brightness=0.2,\n"
    "contrast=0.2; the syntax of train --augment), for 1 to N threads (default: the CPU cores, as\n"
    "train uses), side by side. Compare with train's img/s: the loader keeps up while it is faster\n"
    "(train also prints the seconds each epoch waited for images).\n\n"
    "With --allreduce MB (under mpirun, vkrun built with MPI): the median time of summing MB megabytes\n"
    "of fp32 over the processes through vkrun's communicator (the gradient sum of data-parallel\n"
    "training; ResNet50: 94), in one call and in 25 MiB buckets, with the bus bandwidth\n"
    "2(N-1)/N x size / time (docs/scaling.md).\n";

typedef struct {
    const char *name;
    vkr_conv2d_shape p; /* n is set per run */
} bench_shape;

static const bench_shape k_conv[] = {
    {"3x3 256->256 14x14", {0, 256, 14, 14, 256, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 1}},
    {"1x1 1024->256 14x14", {0, 1024, 14, 14, 256, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
    {"7x7/2 3->64 224x224", {0, 3, 224, 224, 64, 7, 7, 2, 2, 3, 3, 3, 3, 1, 1, 1}},
    {"1x1 64->256 56x56", {0, 64, 56, 56, 256, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
};
static const bench_shape k_dw[] = {
    {"dw3x3 96 56x56", {0, 96, 56, 56, 96, 3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 96}},
    {"dw3x3/2 144 56x56", {0, 144, 56, 56, 144, 3, 3, 2, 2, 0, 1, 0, 1, 1, 1, 144}},
    {"dw5x5 240 14x14", {0, 240, 14, 14, 240, 5, 5, 1, 1, 2, 2, 2, 2, 1, 1, 240}},
    {"dw3x3 dil2 384 14x14", {0, 384, 14, 14, 384, 3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 384}},
};
static const bench_shape k_dense[] = {
    {"2048->1024", {0, 2048, 1, 1, 1024, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
    {"1024->1024", {0, 1024, 1, 1, 1024, 1, 1, 1, 1, 0, 0, 0, 0, 1, 1, 1}},
};

enum { D_FWD, D_BWD_DATA, D_BWD_WEIGHT, D_COUNT };
static const char *k_dir_names[D_COUNT] = {"forward", "backward-data", "backward-weight"};

typedef struct {
    vkr_buffer *inp, *w, *b, *out, *dout, *dinp, *dw;
} bench_bufs;

static void bufs_free(bench_bufs *B) {
    vkr_buffer_destroy(B->inp);
    vkr_buffer_destroy(B->w);
    vkr_buffer_destroy(B->b);
    vkr_buffer_destroy(B->out);
    vkr_buffer_destroy(B->dout);
    vkr_buffer_destroy(B->dinp);
    vkr_buffer_destroy(B->dw);
}

static vkr_status new_zero(vkr_context *ctx, uint64_t floats, vkr_buffer **b) {
    vkr_status s = vkr_buffer_create(ctx, floats * 4, b);
    return s ? s : vkr_buffer_fill_zero(*b);
}

static vkr_status record(vkr_cmd *cmd, int dense, int dir, const vkr_conv2d_shape *p, bench_bufs *B) {
    if (dense) {
        if (dir == D_FWD) return vkr_dense_forward(cmd, p->n, p->c, p->k, B->out, B->inp, B->w, B->b);
        return vkr_dense_backward(cmd, p->n, p->c, p->k, dir == D_BWD_DATA ? B->dinp : NULL,
                                  dir == D_BWD_WEIGHT ? B->dw : NULL, NULL, B->dout, B->inp, B->w);
    }
    if (dir == D_FWD) return vkr_conv2d_forward(cmd, p, B->out, B->inp, B->w, B->b);
    return vkr_conv2d_backward(cmd, p, dir == D_BWD_DATA ? B->dinp : NULL, dir == D_BWD_WEIGHT ? B->dw : NULL, NULL,
                               B->dout, B->inp, B->w);
}

static int cmp_double(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median GPU milliseconds of one op run (the sum of its dispatches), after a warm-up run. */
static vkr_status time_op(vkr_context *ctx, int dense, int dir, const vkr_conv2d_shape *p, bench_bufs *B, int iters,
                          double *ms) {
    vkr_cmd *cmd = NULL;
    vkr_status s = vkr_cmd_begin(ctx, &cmd);
    if (!s) s = record(cmd, dense, dir, p, B); /* warm-up: compiles the pipelines */
    if (!s) s = vkr_cmd_submit(cmd);
    uint32_t per = s ? 0 : vkr_cmd_dispatch_count(cmd);
    vkr_cmd_free(cmd);
    cmd = NULL;
    double *t = calloc((size_t)iters, sizeof *t);
    if (!s && !t) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    if (!s) s = vkr_cmd_begin(ctx, &cmd);
    if (!s) s = vkr_cmd_enable_timestamps(cmd, per * (uint32_t)iters + 1);
    for (int i = 0; !s && i < iters; i++) s = record(cmd, dense, dir, p, B);
    if (!s) s = vkr_cmd_submit(cmd);
    for (uint32_t i = 0; !s && i < vkr_cmd_timing_count(cmd) && per; i++) {
        double d;
        if (!(s = vkr_cmd_timing(cmd, i, &d, NULL)) && i / per < (uint32_t)iters) t[i / per] += d;
    }
    vkr_cmd_free(cmd);
    if (!s) {
        qsort(t, (size_t)iters, sizeof *t, cmp_double);
        *ms = iters % 2 ? t[iters / 2] : 0.5 * (t[iters / 2 - 1] + t[iters / 2]);
    }
    free(t);
    return s;
}

typedef struct {
    const char *op;
    int dense, nv, nt, nbatch, iters, split;
    vkr_gemm_variant vlist[VKR_GEMM_VARIANT_COUNT];
    int tiles[64], batches[2];
    vkr_precision precs[3];
    int np;
} bench_cfg;

/* Prints one row (or adds it to rows, with --json). */
static void bench_row(cJSON *rows, const char *op, const char *shape, int batch, const char *variant, int d,
                      double ms, double gflops) {
    if (!rows) {
        printf("%-7s %-22s %5d %-18s %-16s %10.3f %9.2f\n", op, shape, batch, variant, k_dir_names[d], ms, gflops);
        fflush(stdout);
        return;
    }
    cJSON *r = cJSON_CreateObject();
    cJSON_AddStringToObject(r, "op", op);
    cJSON_AddStringToObject(r, "shape", shape);
    cJSON_AddNumberToObject(r, "batch", batch);
    cJSON_AddStringToObject(r, "variant", variant);
    cJSON_AddStringToObject(r, "direction", k_dir_names[d]);
    cJSON_AddNumberToObject(r, "ms", ms);
    cJSON_AddNumberToObject(r, "gflops", gflops);
    cJSON_AddItemToArray(rows, r);
}

/* Every shape x batch x variant x tile x direction of the op; 1 after a failure (reported). */
static int bench_shapes(vkr_context *ctx, const bench_cfg *c, cJSON *rows) {
    const char *op = c->op;
    int dense = c->dense, nv = c->nv, nt = c->nt, nbatch = c->nbatch, iters = c->iters, split = c->split;
    const vkr_gemm_variant *vlist = c->vlist;
    const int *tiles = c->tiles, *batches = c->batches;
    vkr_status s;
    const bench_shape *shapes = dense ? k_dense : k_conv;
    int nshapes = dense ? (int)(sizeof k_dense / sizeof k_dense[0]) : (int)(sizeof k_conv / sizeof k_conv[0]);
    int failed = 0;
    for (int si = 0; si < nshapes && !failed; si++)
        for (int bi = 0; bi < nbatch && !failed; bi++) {
            vkr_conv2d_shape p = shapes[si].p;
            p.n = batches[bi];
            uint64_t oh = vkr_conv2d_out_h(&p), ow = vkr_conv2d_out_w(&p);
            uint64_t ni = (uint64_t)p.n * p.c * p.h * p.w, no = (uint64_t)p.n * p.k * oh * ow;
            uint64_t nw = (uint64_t)p.k * p.c * p.r * p.s;
            double flops = 2.0 * (double)no * p.c * p.r * p.s;
            bench_bufs B = {0};
            if ((s = new_zero(ctx, ni, &B.inp)) || (s = new_zero(ctx, nw, &B.w)) || (s = new_zero(ctx, p.k, &B.b)) ||
                (s = new_zero(ctx, no, &B.out)) || (s = new_zero(ctx, no, &B.dout)) || (s = new_zero(ctx, ni, &B.dinp)) ||
                (s = new_zero(ctx, nw, &B.dw))) {
                failed = cli_error("bench: allocating the tensors", s);
                bufs_free(&B);
                break;
            }
            for (int pi = 0; pi < c->np && !failed; pi++)
            for (int vi = 0; vi < nv && !failed; vi++)
                for (int ti = 0; ti < nt && !failed; ti++) {
                    if ((s = vkr_context_set_precision(ctx, c->precs[pi]))) {
                        failed = cli_error("bench", s);
                        break;
                    }
                    vkr_gemm_force_variant(vlist[vi]);
                    vkr_gemm_variant used = vkr_gemm_pick(ctx);
                    if (tiles[ti] >= vkr_gemm_tile_count(used)) continue; /* past this variant's table */
                    vkr_gemm_force_tile(VKR_GEMM_TEXEL, used == VKR_GEMM_TEXEL ? tiles[ti] : -1);
                    vkr_gemm_force_tile(VKR_GEMM_TILED, used == VKR_GEMM_TILED ? tiles[ti] : -1);
                    char vname[32];
                    vkr_gemm_tile tc;
                    int tt = tiles[ti] >= 0 ? tiles[ti] : vkr_gemm_tuned_tile(ctx);
                    if (used == VKR_GEMM_TEXEL && !vkr_gemm_tile_at(VKR_GEMM_TEXEL, tiles[ti], &tc))
                        snprintf(vname, sizeof vname, "texel%dx%d/%dx%d", tc.tm, tc.tn, tc.lx, tc.ly);
                    else if (used == VKR_GEMM_TILED && !vkr_gemm_tile_at(VKR_GEMM_TILED, tt, &tc))
                        snprintf(vname, sizeof vname, "tiled%dx%d/%dx%d", tc.bm, tc.bn, tc.tm, tc.tn);
                    else snprintf(vname, sizeof vname, "%s", vkr_gemm_variant_name(used));
                    if (split) {
                        size_t l = strlen(vname);
                        snprintf(vname + l, sizeof vname - l, "/S%d", split);
                    }
                    if (vkr_context_precision(ctx) != VKR_PRECISION_FP32) {
                        size_t l = strlen(vname);
                        snprintf(vname + l, sizeof vname - l, "+%s", vkr_precision_name(vkr_context_precision(ctx)));
                    }
                    vkr_gemm_force_split(split);
                    for (int d = 0; d < D_COUNT && !failed; d++) {
                        double ms;
                        if ((s = time_op(ctx, dense, d, &p, &B, iters, &ms))) {
                            failed = cli_error("bench", s);
                            break;
                        }
                        bench_row(rows, op, shapes[si].name, p.n, vname, d, ms, ms > 0 ? flops / (ms * 1e6) : 0.0);
                    }
                }
            vkr_gemm_force_variant(VKR_GEMM_AUTO);
            vkr_gemm_force_tile(VKR_GEMM_TEXEL, -1);
            vkr_gemm_force_tile(VKR_GEMM_TILED, -1);
            vkr_gemm_force_split(0);
            bufs_free(&B);
        }
    return failed;
}

/* --op depthwise: each shape by the depthwise kernels and by the grouped-GEMM path. */
static int bench_depthwise(vkr_context *ctx, const bench_cfg *c, cJSON *rows) {
    int failed = 0;
    for (int si = 0; si < (int)(sizeof k_dw / sizeof k_dw[0]) && !failed; si++)
        for (int bi = 0; bi < c->nbatch && !failed; bi++) {
            vkr_conv2d_shape p = k_dw[si].p;
            p.n = c->batches[bi];
            uint64_t ni = (uint64_t)p.n * p.c * p.h * p.w, nw = vkr_conv2d_weight_floats(&p);
            uint64_t no = (uint64_t)p.n * p.k * vkr_conv2d_out_h(&p) * vkr_conv2d_out_w(&p);
            double flops = 2.0 * (double)no * (p.c / p.groups) * p.r * p.s;
            bench_bufs B = {0};
            vkr_status s;
            if ((s = new_zero(ctx, ni, &B.inp)) || (s = new_zero(ctx, nw, &B.w)) || (s = new_zero(ctx, p.k, &B.b)) ||
                (s = new_zero(ctx, no, &B.out)) || (s = new_zero(ctx, no, &B.dout)) || (s = new_zero(ctx, ni, &B.dinp)) ||
                (s = new_zero(ctx, nw, &B.dw)))
                failed = cli_error("bench: allocating the tensors", s);
            for (int gemm = 0; gemm < 2 && !failed; gemm++) {
                vkr_conv_force_gemm_depthwise(gemm);
                for (int d = 0; d < D_COUNT && !failed; d++) {
                    double ms;
                    if ((s = time_op(ctx, 0, d, &p, &B, c->iters, &ms))) {
                        failed = cli_error("bench", s);
                        break;
                    }
                    /* the depthwise kernels are fp32; the grouped-GEMM path runs at the context's precision */
                    char vn[32];
                    vkr_precision pr = vkr_context_precision(ctx);
                    int lab = gemm && pr != VKR_PRECISION_FP32;
                    snprintf(vn, sizeof vn, "%s%s%s", gemm ? "group-gemm" : "depthwise", lab ? "+" : "",
                             lab ? vkr_precision_name(pr) : "");
                    bench_row(rows, "depthwise", k_dw[si].name, p.n, vn, d, ms, ms > 0 ? flops / (ms * 1e6) : 0.0);
                }
            }
            vkr_conv_force_gemm_depthwise(0);
            bufs_free(&B);
        }
    return failed;
}

static int parse_int(const char *s, int *out) {
    char *end;
    long v = strtol(s, &end, 10);
    if (*s == 0 || *end || v <= 0 || v > 1 << 20) return 0;
    *out = (int)v;
    return 1;
}

int cmd_bench(int argc, char **argv) {
    const char *device = NULL, *op = NULL, *variant = "auto", *tile = NULL, *precision = NULL;
    int batch = 0, iters = 3, split = 0, json = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(usage_bench, stdout);
        return 0;
    }
    int with_op = 0, with_loader = 0;
    for (int i = 1; i < argc; i++) with_op |= !strcmp(argv[i], "--op"), with_loader |= !strcmp(argv[i], "--loader");
    if (with_loader) return cmd_bench_loader(argc, argv);
    for (int i = 1; i < argc; i++)
        if (!strcmp(argv[i], "--allreduce")) return cmd_bench_allreduce(argc, argv); /* cmd_bench_comm.c */
    if (!with_op) return cmd_bench_model(argc, argv); /* vkrun bench MODEL ... */
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--device") && has) device = argv[++i];
        else if (!strcmp(a, "--op") && has) op = argv[++i];
        else if (!strcmp(a, "--variant") && has) variant = argv[++i];
        else if (!strcmp(a, "--tile") && has) tile = argv[++i];
        else if (!strcmp(a, "--precision") && has) precision = argv[++i];
        else if (!strcmp(a, "--json")) json = 1;
        else if (!strcmp(a, "--batch") && has) {
            if (!parse_int(argv[++i], &batch)) {
                fprintf(stderr, "vkrun bench: --batch needs a positive integer, got \"%s\"\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--split") && has) {
            if (!parse_int(argv[++i], &split)) {
                fprintf(stderr, "vkrun bench: --split needs a positive integer, got \"%s\"\n", argv[i]);
                return 2;
            }
        } else if (!strcmp(a, "--iters") && has) {
            if (!parse_int(argv[++i], &iters)) {
                fprintf(stderr, "vkrun bench: --iters needs a positive integer, got \"%s\"\n", argv[i]);
                return 2;
            }
        } else {
            return cli_unknown_option("bench", a, usage_bench);
        }
    }
    if (!op) return 2;
    bench_cfg cfg = {.op = op, .dense = !strcmp(op, "dense"), .iters = iters, .split = split};
    int dense = cfg.dense;
    int dwise = !strcmp(op, "depthwise");
    if (!dense && !dwise && strcmp(op, "conv2d")) {
        fprintf(stderr, "vkrun bench: --op must be conv2d, dense or depthwise, got \"%s\"\n", op);
        return 2;
    }
    vkr_gemm_variant *vlist = cfg.vlist;
    int nv = 0;
    if (!strcmp(variant, "all")) {
        vlist[nv++] = VKR_GEMM_TILED;
        vlist[nv++] = VKR_GEMM_TEXEL;
    } else if (!strcmp(variant, "auto")) vlist[nv++] = VKR_GEMM_AUTO;
    else if (!strcmp(variant, "tiled")) vlist[nv++] = VKR_GEMM_TILED;
    else if (!strcmp(variant, "texel")) vlist[nv++] = VKR_GEMM_TEXEL;
    else {
        fprintf(stderr, "vkrun bench: --variant must be auto, tiled, texel or all, got \"%s\"\n", variant);
        return 2;
    }
    int *tiles = cfg.tiles, nt = 0;
    if (!tile) tiles[nt++] = -1;
    else if (!strcmp(tile, "all")) {
        for (int i = 0; i < vkr_gemm_tile_count(VKR_GEMM_TEXEL) || i < vkr_gemm_tile_count(VKR_GEMM_TILED); i++)
            if (nt < 64) tiles[nt++] = i;
    }
    else {
        char *end;
        long t = strtol(tile, &end, 10);
        int most = vkr_gemm_tile_count(VKR_GEMM_TEXEL) > vkr_gemm_tile_count(VKR_GEMM_TILED)
                       ? vkr_gemm_tile_count(VKR_GEMM_TEXEL)
                       : vkr_gemm_tile_count(VKR_GEMM_TILED);
        if (*tile == 0 || *end || t < 0 || t >= most) {
            fprintf(stderr, "vkrun bench: --tile must be all or 0..%d\n", most - 1);
            return 2;
        }
        tiles[nt++] = (int)t;
    }
    int *batches = cfg.batches, nbatch = 0;
    if (batch) batches[nbatch++] = batch;
    else {
        batches[nbatch++] = 1;
        batches[nbatch++] = 32;
    }

    cfg.nv = nv;
    cfg.nt = nt;
    cfg.nbatch = nbatch;
    int all_prec = precision && !strcmp(precision, "all");
    vkr_context *ctx;
    vkr_status s = cli_context_at(device, all_prec ? NULL : precision, &ctx);
    if (s) return cli_error("bench", s);
    const vkr_device_info *I = vkr_context_device(ctx);
    cfg.precs[cfg.np++] = vkr_context_precision(ctx);
    if (all_prec && I->fp16_arithmetic) cfg.precs[cfg.np++] = VKR_PRECISION_FP16;
    if (all_prec) cfg.precs[cfg.np++] = VKR_PRECISION_BF16;
    if (!I->timestamps) {
        fprintf(stderr, "vkrun bench: device \"%s\" has no timestamps on its compute queue\n", I->name);
        vkr_context_destroy(ctx);
        return 1;
    }
    if (!json) {
        printf("device: %s (%s), %d timed run%s after a warm-up\n", I->name, I->type_name, iters, iters == 1 ? "" : "s");
        printf("%-7s %-22s %5s %-18s %-16s %10s %9s\n", "op", "shape", "batch", "variant", "direction", "ms", "GFLOP/s");
    }
    cJSON *rows = json ? cJSON_CreateArray() : NULL;
    int failed = dwise ? bench_depthwise(ctx, &cfg, rows) : bench_shapes(ctx, &cfg, rows);
    if (!failed) failed = cli_check_validation(ctx);
    if (json && !failed) { /* the same figures: {"device", "device_type", "iters", "results": [rows]} */
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "device", I->name);
        cJSON_AddStringToObject(root, "device_type", I->type_name);
        cJSON_AddNumberToObject(root, "iters", iters);
        cJSON_AddItemToObject(root, "results", rows);
        rows = NULL;
        char *txt = cJSON_Print(root);
        if (txt) printf("%s\n", txt);
        free(txt);
        cJSON_Delete(root);
    }
    cJSON_Delete(rows);
    vkr_context_destroy(ctx);
    return failed;
}

/* ------------------------------------------------------------ vkrun tune */

const char usage_tune[] =
    "usage: vkrun tune [--device D] [--batch B] [--iters N] [--force]\n\n"
    "Measures the tiled GEMM's tile shapes (64x64, 128x64, 128x128) on this device: every\n"
    "conv2d shape of `vkrun bench --op conv2d`, forward, backward-data and backward-weight,\n"
    "GPU timestamps; the shape with the least total time is kept for this device and\n"
    "driver next to the pipeline cache (tune-VENDOR-DEVICE-DRIVER.txt) and used from then\n"
    "on (untuned: 64x64).  CPU devices use the texel variant, which has no tiles to tune:\n"
    "tune says so and stops unless --force.\n\n"
    "  --device D      device index or name substring (default: VKRUN_DEVICE, else best)\n"
    "  --batch B       batch size (default 32)\n"
    "  --iters N       timed runs per direction (default 3)\n"
    "  --force         measure even where the device's choice is the texel variant\n";

int cmd_tune(int argc, char **argv) {
    const char *device = NULL;
    int batch = 32, iters = 3, force = 0;
    if (cli_wants_help(argc, argv)) {
        fputs(usage_tune, stdout);
        return 0;
    }
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        int has = i + 1 < argc;
        if (!strcmp(a, "--device") && has) device = argv[++i];
        else if (!strcmp(a, "--force")) force = 1;
        else if (!strcmp(a, "--batch") && has && parse_int(argv[i + 1], &batch)) i++;
        else if (!strcmp(a, "--iters") && has && parse_int(argv[i + 1], &iters)) i++;
        else {
            return cli_unknown_option("tune", a, usage_tune);
        }
    }
    vkr_context *ctx;
    vkr_status s = cli_context(device, &ctx);
    if (s) return cli_error("tune", s);
    const vkr_device_info *I = vkr_context_device(ctx);
    if (vkr_gemm_pick(ctx) != VKR_GEMM_TILED && !force) {
        printf("device: %s (%s) uses the texel variant: no tiles to tune (--force measures them anyway)\n", I->name,
               I->type_name);
        vkr_context_destroy(ctx);
        return 0;
    }
    if (!I->timestamps) {
        fprintf(stderr, "vkrun tune: device \"%s\" has no timestamps on its compute queue\n", I->name);
        vkr_context_destroy(ctx);
        return 1;
    }
    printf("device: %s (%s), batch %d, %d timed run%s per direction\n", I->name, I->type_name, batch, iters,
           iters == 1 ? "" : "s");
    int nt = vkr_gemm_tile_count(VKR_GEMM_TILED), best = -1, failed = 0;
    double tot[16] = {0};
    vkr_gemm_force_variant(VKR_GEMM_TILED);
    for (int si = 0; si < (int)(sizeof k_conv / sizeof k_conv[0]) && !failed; si++) {
        vkr_conv2d_shape p = k_conv[si].p;
        p.n = batch;
        uint64_t no = (uint64_t)p.n * p.k * vkr_conv2d_out_h(&p) * vkr_conv2d_out_w(&p);
        uint64_t ni = (uint64_t)p.n * p.c * p.h * p.w, nw = (uint64_t)p.k * p.c * p.r * p.s;
        bench_bufs B = {0};
        if ((s = new_zero(ctx, ni, &B.inp)) || (s = new_zero(ctx, nw, &B.w)) || (s = new_zero(ctx, p.k, &B.b)) ||
            (s = new_zero(ctx, no, &B.out)) || (s = new_zero(ctx, no, &B.dout)) || (s = new_zero(ctx, ni, &B.dinp)) ||
            (s = new_zero(ctx, nw, &B.dw)))
            failed = cli_error("tune: allocating the tensors", s);
        for (int t = 0; t < nt && t < 16 && !failed; t++) {
            vkr_gemm_force_tile(VKR_GEMM_TILED, t);
            vkr_gemm_tile tc;
            vkr_gemm_tile_at(VKR_GEMM_TILED, t, &tc);
            for (int d = 0; d < D_COUNT && !failed; d++) {
                double ms;
                if ((s = time_op(ctx, 0, d, &p, &B, iters, &ms))) failed = cli_error("tune", s);
                else {
                    tot[t] += ms;
                    printf("%-22s tiled%dx%d %-16s %10.3f ms\n", k_conv[si].name, tc.bm, tc.bn, k_dir_names[d], ms);
                    fflush(stdout);
                }
            }
        }
        bufs_free(&B);
    }
    vkr_gemm_force_tile(VKR_GEMM_TILED, -1);
    vkr_gemm_force_variant(VKR_GEMM_AUTO);
    for (int t = 0; t < nt && t < 16 && !failed; t++)
        if (best < 0 || tot[t] < tot[best]) best = t;
    if (!failed && best >= 0) {
        s = vkr_gemm_tune_save(ctx, best);
        char path[1100] = "";
        vkr_gemm_tune_path(ctx, path, sizeof path);
        vkr_gemm_tile tc;
        vkr_gemm_tile_at(VKR_GEMM_TILED, best, &tc);
        if (s) failed = cli_error("tune", s);
        else printf("picked tiled%dx%d (%.1f ms in all), saved to %s\n", tc.bm, tc.bn, tot[best], path);
    }
    if (!failed) failed = cli_check_validation(ctx);
    vkr_context_destroy(ctx);
    return failed;
}
