/* grad_dump: test helper for the gradient parity test (tests/python/test_parity.py).
 *
 *   grad_dump MODEL --input X.npy --targets T.npy --out DIR [--freeze N] [--bn-train]
 *
 * Loads MODEL, builds a training graph (batch = N of X, size = H x W of X, layers [0, freeze)
 * frozen, loss softmax_ce, BatchNorm in inference mode unless --bn-train), runs one
 * vkr_graph_backward_only on X ([N, C, H, W] float32, preprocessed) and T ([N, K] one-hot), and
 * writes into DIR (which must exist):
 *   g<i>.npy      the gradient of the i-th trainable tensor (shape of the tensor), i = 0, 1, ...
 *   grads.tsv     one line per gradient: "g<i>.npy<TAB><tensor name>" (names may hold '/')
 *   loss.txt      the mean loss ("%.9g") and the number of correct rows
 * Exit status: 0 on success; 1 on any error, including any message of the validation layer
 * (VKRUN_VALIDATION=1); 2 on bad usage. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vkrun.h"
#include "vkrun_model.h"
#include "vkrun_npy.h"

static int fail(const char *what) {
    fprintf(stderr, "grad_dump: %s: %s\n", what, vkr_last_error());
    return 1;
}

int main(int argc, char **argv) {
    const char *model = NULL, *xin = NULL, *tin = NULL, *out = NULL;
    int freeze = 0, bn_train = 0;
    for (int i = 1; i < argc; i++) {
        int has = i + 1 < argc;
        if (!strcmp(argv[i], "--input") && has) xin = argv[++i];
        else if (!strcmp(argv[i], "--targets") && has) tin = argv[++i];
        else if (!strcmp(argv[i], "--out") && has) out = argv[++i];
        else if (!strcmp(argv[i], "--freeze") && has) freeze = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--bn-train")) bn_train = 1;
        else if (argv[i][0] != '-' && !model) model = argv[i];
        else {
            fprintf(stderr, "grad_dump: unexpected argument %s\n", argv[i]);
            return 2;
        }
    }
    if (!model || !xin || !tin || !out || freeze < 0) {
        fprintf(stderr, "usage: grad_dump MODEL --input X.npy --targets T.npy --out DIR [--freeze N] [--bn-train]\n");
        return 2;
    }
    int rc = 1;
    vkr_model *m = NULL;
    vkr_context *ctx = NULL;
    vkr_graph *g = NULL;
    vkr_npy x = {0}, t = {0};
    float *grad = NULL;
    FILE *tsv = NULL;
    char path[4096];

    if (vkr_model_load(model, &m)) {
        rc = fail("load model");
        goto done;
    }
    if (vkr_npy_read(xin, &x) || vkr_npy_read(tin, &t)) {
        rc = fail("read input");
        goto done;
    }
    if (x.ndim != 4 || t.ndim != 2 || x.shape[0] != t.shape[0] || x.shape[0] < 1 || x.shape[1] != m->in_c) {
        fprintf(stderr, "grad_dump: X must be [N, %d, H, W] and T [N, K]\n", m->in_c);
        goto done;
    }
    vkr_context_opts co = {.validation = -1};
    if (vkr_context_create(&co, &ctx)) {
        rc = fail("create context");
        goto done;
    }
    vkr_graph_opts o = {.batch = (int)x.shape[0],
                        .height = (int)x.shape[2],
                        .width = (int)x.shape[3],
                        .training = 1,
                        .freeze = freeze,
                        .bn_train = bn_train,
                        .optimizer = VKR_OPTIM_SGD,
                        .loss = VKR_LOSS_SOFTMAX_CE};
    o.optim.lr = 0.01f;
    if (vkr_graph_create(ctx, m, &o, &g)) {
        rc = fail("create training graph");
        goto done;
    }
    if ((int64_t)vkr_graph_out_floats(g, NULL) != t.shape[1]) {
        fprintf(stderr, "grad_dump: targets have %lld classes, the model outputs %llu\n", (long long)t.shape[1],
                (unsigned long long)vkr_graph_out_floats(g, NULL));
        goto done;
    }
    float loss = 0;
    int correct = 0;
    if (vkr_graph_backward_only(g, x.data, t.data, (int)x.shape[0], &loss, &correct)) {
        rc = fail("backward");
        goto done;
    }
    snprintf(path, sizeof path, "%s/grads.tsv", out);
    if (!(tsv = fopen(path, "w"))) {
        fprintf(stderr, "grad_dump: cannot write %s\n", path);
        goto done;
    }
    int ng = 0;
    for (int j = freeze > 0 ? freeze : 1; j < m->nlayers; j++) {
        const vkr_layer *L = &m->layers[j];
        if (!L->trainable) continue;
        for (int k = 0; k < L->nparam; k++) {
            const vkr_tensor *T = vkr_model_param(m, j, k);
            if (!T || !vkr_param_slot_trainable(L->type, k)) continue;
            free(grad);
            if (!(grad = malloc(T->count * sizeof *grad))) {
                fprintf(stderr, "grad_dump: out of host memory\n");
                goto done;
            }
            if (vkr_graph_download_grad(g, T->name, grad)) {
                rc = fail(T->name);
                goto done;
            }
            char file[32];
            snprintf(file, sizeof file, "g%d.npy", ng++);
            snprintf(path, sizeof path, "%s/%s", out, file);
            if (vkr_npy_write(path, grad, T->ndim, T->shape)) {
                rc = fail("write gradient");
                goto done;
            }
            fprintf(tsv, "%s\t%s\n", file, T->name);
        }
    }
    if (fclose(tsv)) {
        tsv = NULL;
        fprintf(stderr, "grad_dump: cannot write grads.tsv\n");
        goto done;
    }
    tsv = NULL;
    snprintf(path, sizeof path, "%s/loss.txt", out);
    FILE *lf = fopen(path, "w");
    if (!lf || fprintf(lf, "%.9g %d\n", loss, correct) < 0 || fclose(lf)) {
        fprintf(stderr, "grad_dump: cannot write %s\n", path);
        goto done;
    }
    printf("grad_dump: %d gradients, loss %.9g, %d correct\n", ng, loss, correct);
    rc = 0;
done:
    if (tsv) fclose(tsv);
    free(grad);
    vkr_graph_destroy(g);
    if (ctx && vkr_validation_enabled(ctx) && (vkr_validation_errors(ctx) || vkr_validation_warnings(ctx))) {
        fprintf(stderr, "grad_dump: the validation layer reported %u error(s) and %u warning(s)\n",
                vkr_validation_errors(ctx), vkr_validation_warnings(ctx));
        rc = 1;
    }
    vkr_context_destroy(ctx);
    vkr_npy_free(&x);
    vkr_npy_free(&t);
    vkr_model_free(m);
    return rc;
}
