/* optim_dump: test helper for tests/python/test_optim.py (vkrun's optimizer steps against
 * torch.optim).
 *
 *   optim_dump sgd|adam PARAM.npy GRADS.npy OUT.npy [--lr F] [--momentum F] [--nesterov]
 *              [--beta1 F] [--beta2 F] [--eps F] [--l2 F] [--weight-decay F]
 *
 * PARAM.npy: [n] initial parameters; GRADS.npy: [T, n], the gradient of each of T steps.
 * Runs T steps of vkr_sgd_step / vkr_adam_step on the default device (state starting at 0,
 * Adam's step t = 1..T) and writes the parameters after every step to OUT.npy ([T, n]).
 * Exit status: 0 on success; 1 on any error, including any message of the validation layer
 * (VKRUN_VALIDATION=1); 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkrun.h"
#include "vkrun_npy.h"
#include "vkrun_ops.h"

static int usage(void) {
    fprintf(stderr, "usage: optim_dump sgd|adam PARAM.npy GRADS.npy OUT.npy [--lr F] [--momentum F] [--nesterov] "
                    "[--beta1 F] [--beta2 F] [--eps F] [--l2 F] [--weight-decay F]\n");
    return 2;
}

int main(int argc, char **argv) {
    if (argc < 5 || (strcmp(argv[1], "sgd") && strcmp(argv[1], "adam"))) return usage();
    int adam = !strcmp(argv[1], "adam");
    vkr_optim_params o = {.lr = 0.01f, .beta1 = 0.9f, .beta2 = 0.999f, .eps = 1e-7f};
    for (int i = 5; i < argc; i++) {
        int has = i + 1 < argc;
        if (!strcmp(argv[i], "--nesterov")) o.nesterov = 1;
        else if (!strcmp(argv[i], "--lr") && has) o.lr = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--momentum") && has) o.momentum = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--beta1") && has) o.beta1 = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--beta2") && has) o.beta2 = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--eps") && has) o.eps = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--l2") && has) o.l2 = strtof(argv[++i], NULL);
        else if (!strcmp(argv[i], "--weight-decay") && has) o.weight_decay = strtof(argv[++i], NULL);
        else return usage();
    }
    int rc = 1;
    vkr_npy p = {0}, g = {0};
    vkr_context *ctx = NULL;
    vkr_buffer *bp = NULL, *bg = NULL, *s1 = NULL, *s2 = NULL;
    float *out = NULL;
    if (vkr_npy_read(argv[2], &p) || vkr_npy_read(argv[3], &g)) {
        fprintf(stderr, "optim_dump: %s\n", vkr_last_error());
        goto done;
    }
    uint64_t n = p.count;
    if (p.ndim != 1 || g.ndim != 2 || (uint64_t)g.shape[1] != n || g.shape[0] < 1) {
        fprintf(stderr, "optim_dump: PARAM must be [n] and GRADS [T, n]\n");
        goto done;
    }
    int T = (int)g.shape[0];
    vkr_context_opts co = {.validation = -1};
    if (vkr_context_create(&co, &ctx)) {
        fprintf(stderr, "optim_dump: create context: %s\n", vkr_last_error());
        goto done;
    }
    float *zeros = calloc(n, sizeof *zeros);
    out = malloc((size_t)T * n * sizeof *out);
    vkr_status s = !zeros || !out ? vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory") : VKR_OK;
    if (!s) s = vkr_buffer_from_floats(ctx, p.data, n, &bp);
    if (!s) s = vkr_buffer_from_floats(ctx, zeros, n, &bg);
    if (!s) s = vkr_buffer_from_floats(ctx, zeros, n, &s1);
    if (!s) s = vkr_buffer_from_floats(ctx, zeros, n, &s2);
    free(zeros);
    for (int t = 0; t < T && !s; t++) {
        s = vkr_buffer_upload(bg, 0, g.data + (size_t)t * n, n * 4);
        vkr_cmd *cmd = NULL;
        if (!s) s = vkr_cmd_begin(ctx, &cmd);
        o.step = (uint32_t)t + 1;
        if (!s) s = adam ? vkr_adam_step(cmd, n, &o, bp, bg, s1, s2) : vkr_sgd_step(cmd, n, &o, bp, bg, s1);
        if (!s) s = vkr_cmd_submit(cmd);
        if (cmd) vkr_cmd_free(cmd);
        if (!s) s = vkr_buffer_download(bp, 0, out + (size_t)t * n, n * 4);
    }
    if (s) {
        fprintf(stderr, "optim_dump: %s\n", vkr_last_error());
        goto done;
    }
    if (vkr_validation_errors(ctx) || vkr_validation_warnings(ctx)) {
        fprintf(stderr, "optim_dump: the validation layer reported %u errors, %u warnings\n", vkr_validation_errors(ctx),
                vkr_validation_warnings(ctx));
        goto done;
    }
    int64_t shape[2] = {T, (int64_t)n};
    if (vkr_npy_write(argv[4], out, 2, shape)) {
        fprintf(stderr, "optim_dump: %s\n", vkr_last_error());
        goto done;
    }
    rc = 0;
done:
    vkr_buffer_destroy(bp);
    vkr_buffer_destroy(bg);
    vkr_buffer_destroy(s1);
    vkr_buffer_destroy(s2);
    vkr_context_destroy(ctx);
    vkr_npy_free(&p);
    vkr_npy_free(&g);
    free(out);
    return rc;
}
