/* vkrun evaluate: loss, accuracy, confusion matrix, per-class precision/recall. */
#include "cli.h"
#include "vkrun_data.h"
#include "vkrun_model.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char usage_evaluate[] =
    "usage: vkrun evaluate MODEL --data DIR [--json] [--batch B] [--micro-batch N] [--interpolation I] [--strict] [--device D]\n\n"
    "Runs MODEL (a classifier written by vkrun train) on every image of DIR (one\n"
    "subfolder per class; the class names must be the model's) and prints the mean\n"
    "categorical cross-entropy, accuracy, the confusion matrix (rows: true class,\n"
    "columns: predicted) and per-class precision and recall.\n\n"
    "  --json            print the same as JSON\n"
    "  --batch B         images per call (default 32); run as micro-batches that fit the device\n"
    "  --micro-batch N   images per submission (default: the memory planner's choice, on stderr when it splits)\n"
    "  --interpolation   bilinear, nearest, nearest-pil (default: what the model was trained with)\n"
    "  --strict          a file that is not a decodable image is an error (default: skipped with a warning)\n";

int cmd_evaluate(int argc, char **argv) {
    const char *model_path = NULL, *data = NULL, *device = NULL, *interp_name = NULL;
    int json = 0, batch = 32, micro = 0, strict = 0;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--data") && v) data = argv[++i];
        else if (!strcmp(o, "--device") && v) device = argv[++i];
        else if (!strcmp(o, "--batch") && v) batch = atoi(argv[++i]);
        else if (!strcmp(o, "--micro-batch") && v) micro = atoi(argv[++i]);
        else if (!strcmp(o, "--interpolation") && v) interp_name = argv[++i];
        else if (!strcmp(o, "--json")) json = 1;
        else if (!strcmp(o, "--strict")) strict = 1;
        else if (o[0] != '-' && !model_path) model_path = o;
        else {
            fprintf(stderr, "vkrun evaluate: unknown or incomplete option %s\n%s", o, usage_evaluate);
            return 2;
        }
    }
    if (!model_path || !data || batch <= 0 || micro < 0) {
        fprintf(stderr, "%s", usage_evaluate);
        return 2;
    }
    vkr_interp interp;
    vkr_preprocess pre;
    vkr_model *m = NULL;
    vkr_dataset *ds = NULL;
    vkr_context *ctx = NULL;
    vkr_graph *g = NULL;
    vkr_loader *ld = NULL;
    float *x = NULL, *t = NULL, *p = NULL;
    long *conf = NULL;
    int *cmap = NULL;
    int rc = 1;
    vkr_status s;
    if ((s = vkr_model_load(model_path, &m))) return cli_error("evaluate", s);
    if (!interp_name) interp_name = vkr_model_get_meta(m, "vkrun_interpolation");
    if ((s = vkr_interp_parse(interp_name ? interp_name : "bilinear", &interp))) {
        vkr_model_free(m);
        return cli_error("evaluate", s);
    }
    if (m->nclasses < 1) {
        fprintf(stderr, "vkrun evaluate: %s has no class names: it is not a classifier (train one with vkrun train)\n",
                model_path);
        goto out;
    }
    if ((s = vkr_preprocess_parse(m->preprocess, &pre))) {
        rc = cli_error("evaluate", s);
        goto out;
    }
    vkr_dataset_opts dopt = {.strict = strict, .allow_single_class = 1};
    if ((s = vkr_dataset_open(data, &dopt, &ds))) {
        rc = cli_error("evaluate", s);
        goto out;
    }
    int K = m->nclasses, n = vkr_dataset_size(ds), last = m->nlayers - 1;
    if (m->layers[last].out_rank != 2 || m->layers[last].out_c != K) {
        fprintf(stderr, "vkrun evaluate: %s: the last layer \"%s\" does not output one probability per class (%d classes)\n",
                model_path, m->layers[last].name, K);
        goto out;
    }
    /* class folders are matched to the model's classes by name (a subset is fine) */
    cmap = malloc(sizeof(int) * (size_t)vkr_dataset_num_classes(ds));
    if (!cmap) goto out;
    for (int c = 0; c < vkr_dataset_num_classes(ds); c++) {
        cmap[c] = -1;
        for (int k = 0; k < K; k++)
            if (!strcmp(m->classes[k], vkr_dataset_class_name(ds, c))) cmap[c] = k;
        if (cmap[c] < 0) {
            fprintf(stderr, "vkrun evaluate: class folder \"%s\" of %s is not among the model's classes (",
                    vkr_dataset_class_name(ds, c), data);
            for (int k = 0; k < K; k++) fprintf(stderr, "%s%s", k ? ", " : "", m->classes[k]);
            fprintf(stderr, ")\n");
            goto out;
        }
    }
    if ((s = cli_context(device, &ctx))) {
        rc = cli_error("evaluate", s);
        goto out;
    }
    vkr_graph_opts go = {.batch = batch, .micro_batch = micro, .height = m->in_h, .width = m->in_w};
    if ((s = vkr_graph_create(ctx, m, &go, &g))) {
        rc = cli_error("evaluate", s);
        goto out;
    }
    cli_print_plan(g, stderr);
    vkr_loader_opts lo = {.batch = batch, .height = m->in_h, .width = m->in_w, .channels = m->in_c, .interp = interp,
                          .preprocess = pre, .epochs = 1, .flags = VKR_LOAD_KEEP_REMAINDER, .strict = strict};
    if ((s = vkr_loader_create_ex(ds, &lo, &ld))) {
        rc = cli_error("evaluate", s);
        goto out;
    }
    x = malloc(sizeof(float) * (size_t)batch * m->in_c * m->in_h * m->in_w);
    t = malloc(sizeof(float) * (size_t)batch * vkr_dataset_num_classes(ds));
    p = malloc(sizeof(float) * (size_t)batch * K);
    conf = calloc((size_t)K * K, sizeof(long));
    if (!x || !t || !p || !conf) {
        fprintf(stderr, "vkrun evaluate: out of host memory\n");
        goto out;
    }
    double loss = 0;
    long seen = 0, correct = 0;
    int cnt;
    while (!(s = vkr_loader_next(ld, x, t, &cnt)) && cnt > 0) {
        if ((s = vkr_graph_forward(g, x, cnt, NULL, p))) break;
        const int *idx = vkr_loader_batch_indices(ld);
        for (int j = 0; j < cnt; j++) {
            int y = cmap[vkr_dataset_label(ds, idx[j])], best = 0;
            const float *row = p + (size_t)j * K;
            for (int k = 1; k < K; k++)
                if (row[k] > row[best]) best = k;
            double py = row[y] > 1e-30f ? row[y] : 1e-30;
            loss -= log(py);
            conf[(size_t)y * K + best]++;
            correct += best == y;
            seen++;
        }
    }
    if (s) {
        rc = cli_error("evaluate", s);
        goto out;
    }
    if (seen == 0) {
        fprintf(stderr, "vkrun evaluate: no image of %s could be decoded\n", data);
        goto out;
    }
    loss /= (double)seen;
    double acc = (double)correct / (double)seen;
    if (json) {
        cJSON *root = cJSON_CreateObject();
        cJSON_AddStringToObject(root, "model", model_path);
        cJSON_AddStringToObject(root, "data", data);
        cJSON_AddNumberToObject(root, "images", (double)seen);
        cJSON_AddNumberToObject(root, "skipped", n - seen + vkr_dataset_num_warnings(ds));
        cJSON_AddNumberToObject(root, "loss", loss);
        cJSON_AddNumberToObject(root, "accuracy", acc);
        cJSON *cls = cJSON_AddArrayToObject(root, "classes");
        cJSON *cm = cJSON_AddArrayToObject(root, "confusion");
        for (int k = 0; k < K; k++) {
            long tp = conf[(size_t)k * K + k], col = 0, row = 0;
            for (int j = 0; j < K; j++) {
                col += conf[(size_t)j * K + k];
                row += conf[(size_t)k * K + j];
            }
            cJSON *o = cJSON_CreateObject();
            cJSON_AddStringToObject(o, "name", m->classes[k]);
            cJSON_AddNumberToObject(o, "support", (double)row);
            if (col) cJSON_AddNumberToObject(o, "precision", (double)tp / col);
            else cJSON_AddNullToObject(o, "precision");
            if (row) cJSON_AddNumberToObject(o, "recall", (double)tp / row);
            else cJSON_AddNullToObject(o, "recall");
            cJSON_AddItemToArray(cls, o);
            cJSON *r = cJSON_CreateArray();
            for (int j = 0; j < K; j++) cJSON_AddItemToArray(r, cJSON_CreateNumber((double)conf[(size_t)k * K + j]));
            cJSON_AddItemToArray(cm, r);
        }
        char *txt = cJSON_Print(root);
        if (txt) puts(txt);
        free(txt);
        cJSON_Delete(root);
    } else {
        printf("%s on %s: %ld images", model_path, data, seen);
        if (n - seen + vkr_dataset_num_warnings(ds))
            printf(" (%ld files skipped)", n - seen + vkr_dataset_num_warnings(ds));
        printf("\nloss %.4f  accuracy %.4f\n\nconfusion matrix (rows: true, columns: predicted)\n", loss, acc);
        printf("%16s", "");
        for (int k = 0; k < K && k < 20; k++) printf(" %8.8s", m->classes[k]);
        printf("\n");
        for (int k = 0; k < K && k < 20; k++) {
            printf("%16.16s", m->classes[k]);
            for (int j = 0; j < K && j < 20; j++) printf(" %8ld", conf[(size_t)k * K + j]);
            printf("\n");
        }
        printf("\n%-16s %9s %9s %8s\n", "class", "precision", "recall", "support");
        for (int k = 0; k < K; k++) {
            long tp = conf[(size_t)k * K + k], col = 0, row = 0;
            for (int j = 0; j < K; j++) {
                col += conf[(size_t)j * K + k];
                row += conf[(size_t)k * K + j];
            }
            if (!row && K > 20) continue;
            printf("%-16.16s ", m->classes[k]);
            if (col) printf("%9.4f ", (double)tp / col);
            else printf("%9s ", "-");
            if (row) printf("%9.4f", (double)tp / row);
            else printf("%9s", "-");
            printf(" %8ld\n", row);
        }
    }
    rc = cli_check_validation(ctx);
out:
    free(x);
    free(t);
    free(p);
    free(conf);
    free(cmap);
    vkr_loader_destroy(ld);
    vkr_graph_destroy(g);
    vkr_context_destroy(ctx);
    vkr_dataset_free(ds);
    vkr_model_free(m);
    return rc;
}
