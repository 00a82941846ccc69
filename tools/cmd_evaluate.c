/* vkrun evaluate: loss, accuracy, confusion matrix, per-class precision/recall/F1, the
 * misclassified files. */
#include "cli.h"
#include "vkrun_data.h"
#include "vkrun_model.h"

#include <cJSON.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char usage_evaluate[] =
    "usage: vkrun evaluate MODEL [--data] DIR [--json] [--errors N] [--batch B] [--micro-batch N] [--interpolation I]\n"
    "                      [--strict] [--precision P] [--device D]\n\n"
    "Runs MODEL (a classifier written by vkrun train) on every image of DIR (one\n"
    "subfolder per class; the class names must be the model's) and prints the mean\n"
    "categorical cross-entropy, accuracy, the confusion matrix (rows: true class,\n"
    "columns: predicted), per-class precision, recall and F1 with their macro averages,\n"
    "and the misclassified files.\n\n"
    "  --json            print the same as JSON (every misclassified file, or N with --errors)\n"
    "  --errors N        list N misclassified files, most confident mistakes first (default 10; 0: none)\n"
    "  --batch B         images per call (default 32); run as micro-batches that fit the device\n"
    "  --micro-batch N   images per submission (default: the memory planner's choice, on stderr when it splits)\n"
    "  --interpolation   bilinear, nearest, nearest-pil (default: what the model was trained with)\n"
    "  --strict          a file that is not a decodable image is an error (default: skipped with a warning)\n"
    "  --split-folders-as-classes  accept class folders named like a split (train, val, test)\n"
    CLI_PRECISION_HELP;

typedef struct {
    const char *model_path, *data, *device, *interp_name, *precision;
    int json, batch, micro, strict, errors, split_names_ok;
} eval_args;

typedef struct {
    int image, truth, pred;
    float p; /* probability of the (wrong) prediction */
} mistake;

typedef struct {
    int K;
    long *conf; /* [K][K] */
    long seen, correct;
    double loss;
    mistake *err;
    int nerr, caperr;
} tally;

static int parse_args(int argc, char **argv, eval_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--data") && v) a->data = argv[++i];
        else if (!strcmp(o, "--device") && v) a->device = argv[++i];
        else if (!strcmp(o, "--precision") && v) a->precision = argv[++i];
        else if (!strcmp(o, "--batch") && v) a->batch = atoi(argv[++i]);
        else if (!strcmp(o, "--micro-batch") && v) a->micro = atoi(argv[++i]);
        else if (!strcmp(o, "--errors") && v) a->errors = atoi(argv[++i]);
        else if (!strcmp(o, "--interpolation") && v) a->interp_name = argv[++i];
        else if (!strcmp(o, "--json")) a->json = 1;
        else if (!strcmp(o, "--strict")) a->strict = 1;
        else if (!strcmp(o, "--split-folders-as-classes")) a->split_names_ok = 1;
        else if (o[0] != '-' && !a->model_path) a->model_path = o;
        else if (o[0] != '-' && !a->data) a->data = o;
        else {
            return cli_unknown_option("evaluate", o, usage_evaluate);
        }
    }
    if (!a->model_path || !a->data || a->batch <= 0 || a->micro < 0 || a->errors < -1) {
        fprintf(stderr, "%s", usage_evaluate);
        return 2;
    }
    return 0;
}

/* Class folders are matched to the model's classes by name (a subset is fine): cmap[c] = k. */
static int match_classes(const vkr_model *m, const vkr_dataset *ds, const char *data, int *cmap) {
    for (int c = 0; c < vkr_dataset_num_classes(ds); c++) {
        cmap[c] = -1;
        for (int k = 0; k < m->nclasses; k++)
            if (!strcmp(m->classes[k], vkr_dataset_class_name(ds, c))) cmap[c] = k;
        if (cmap[c] < 0) {
            fprintf(stderr, "vkrun evaluate: class folder \"%s\" of %s is not among the model's classes (",
                    cli_esc(vkr_dataset_class_name(ds, c)), data);
            for (int k = 0; k < m->nclasses; k++) fprintf(stderr, "%s%s", k ? ", " : "", cli_esc(m->classes[k]));
            fprintf(stderr, ")\n");
            return 1;
        }
    }
    return 0;
}

static int add_mistake(tally *t, mistake e) {
    if (t->nerr == t->caperr) {
        int cap = t->caperr ? 2 * t->caperr : 64;
        mistake *n = realloc(t->err, sizeof *n * (size_t)cap);
        if (!n) return 1;
        t->err = n;
        t->caperr = cap;
    }
    t->err[t->nerr++] = e;
    return 0;
}

/* Adds one batch's probabilities p [cnt][K] to the tally. */
static int count_batch(tally *t, const vkr_dataset *ds, const int *cmap, const int *idx, int cnt, const float *p) {
    int K = t->K;
    for (int j = 0; j < cnt; j++) {
        int y = cmap[vkr_dataset_label(ds, idx[j])], best = 0;
        const float *row = p + (size_t)j * K;
        for (int k = 1; k < K; k++)
            if (row[k] > row[best]) best = k;
        double py = row[y] > 1e-30f ? row[y] : 1e-30;
        t->loss -= log(py);
        t->conf[(size_t)y * K + best]++;
        t->correct += best == y;
        t->seen++;
        if (best != y && add_mistake(t, (mistake){idx[j], y, best, row[best]})) return 1;
    }
    return 0;
}

static int by_confidence(const void *a, const void *b) {
    const mistake *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : x->image - y->image;
}

typedef struct {
    long tp, row, col;
    double precision, recall, f1; /* NAN where undefined */
} class_stats;

static class_stats stats_of(const tally *t, int k) {
    class_stats c = {.tp = t->conf[(size_t)k * t->K + k]};
    for (int j = 0; j < t->K; j++) {
        c.col += t->conf[(size_t)j * t->K + k];
        c.row += t->conf[(size_t)k * t->K + j];
    }
    c.precision = c.col ? (double)c.tp / c.col : NAN;
    c.recall = c.row ? (double)c.tp / c.row : NAN;
    c.f1 = c.col && c.row ? (c.tp ? 2 * c.precision * c.recall / (c.precision + c.recall) : 0) : NAN;
    return c;
}

/* Macro averages over the classes present in the data (support > 0), as scikit-learn's
 * classification_report with labels = the classes seen; a class never predicted has precision 0. */
static void macro(const tally *t, double *p, double *r, double *f) {
    int n = 0;
    *p = *r = *f = 0;
    for (int k = 0; k < t->K; k++) {
        class_stats c = stats_of(t, k);
        if (!c.row) continue;
        n++;
        *p += c.col ? c.precision : 0;
        *r += c.recall;
        *f += c.col ? c.f1 : 0;
    }
    if (n) *p /= n, *r /= n, *f /= n;
}

static void json_num(cJSON *o, const char *key, double v) {
    if (isnan(v)) cJSON_AddNullToObject(o, key);
    else cJSON_AddNumberToObject(o, key, v);
}

static void print_json(const eval_args *a, const vkr_model *m, const vkr_dataset *ds, const tally *t, long skipped,
                       int nerr) {
    int K = t->K;
    cJSON *root = cJSON_CreateObject();
    cli_json_add_bytes(root, "model", a->model_path);
    cli_json_add_bytes(root, "data", a->data);
    cJSON_AddNumberToObject(root, "images", (double)t->seen);
    cJSON_AddNumberToObject(root, "skipped", (double)skipped);
    cJSON_AddNumberToObject(root, "loss", t->loss);
    cJSON_AddNumberToObject(root, "accuracy", (double)t->correct / (double)t->seen);
    double mp, mr, mf;
    macro(t, &mp, &mr, &mf);
    cJSON *ma = cJSON_AddObjectToObject(root, "macro_avg");
    json_num(ma, "precision", mp);
    json_num(ma, "recall", mr);
    json_num(ma, "f1", mf);
    cJSON *cls = cJSON_AddArrayToObject(root, "classes");
    cJSON *cm = cJSON_AddArrayToObject(root, "confusion");
    for (int k = 0; k < K; k++) {
        class_stats c = stats_of(t, k);
        cJSON *o = cJSON_CreateObject();
        cli_json_add_bytes(o, "name", m->classes[k]);
        cJSON_AddNumberToObject(o, "support", (double)c.row);
        json_num(o, "precision", c.precision);
        json_num(o, "recall", c.recall);
        json_num(o, "f1", c.f1);
        cJSON_AddItemToArray(cls, o);
        cJSON *r = cJSON_CreateArray();
        for (int j = 0; j < K; j++) cJSON_AddItemToArray(r, cJSON_CreateNumber((double)t->conf[(size_t)k * K + j]));
        cJSON_AddItemToArray(cm, r);
    }
    cJSON *mis = cJSON_AddArrayToObject(root, "misclassified");
    for (int i = 0; i < nerr; i++) {
        const mistake *e = &t->err[i];
        cJSON *o = cJSON_CreateObject();
        cli_json_add_bytes(o, "image", vkr_dataset_path(ds, e->image));
        cli_json_add_bytes(o, "true", m->classes[e->truth]);
        cli_json_add_bytes(o, "predicted", m->classes[e->pred]);
        cJSON_AddNumberToObject(o, "probability", e->p);
        cJSON_AddItemToArray(mis, o);
    }
    char *txt = cJSON_Print(root);
    if (txt) puts(txt);
    free(txt);
    cJSON_Delete(root);
}

static void print_f(double v, const char *fmt) {
    if (isnan(v)) printf("%9s ", "-");
    else printf(fmt, v);
}

static void print_text(const eval_args *a, const vkr_model *m, const vkr_dataset *ds, const tally *t, long skipped,
                       int nerr) {
    int K = t->K;
    printf("%s on %s: %ld images", a->model_path, a->data, t->seen);
    if (skipped) printf(" (%ld files skipped)", skipped);
    printf("\nloss %.4f  accuracy %.4f\n\nconfusion matrix (rows: true, columns: predicted)\n", t->loss,
           (double)t->correct / (double)t->seen);
    printf("%16s", "");
    for (int k = 0; k < K && k < 20; k++) printf(" %8.8s", cli_esc(m->classes[k]));
    printf("\n");
    for (int k = 0; k < K && k < 20; k++) {
        printf("%16.16s", cli_esc(m->classes[k]));
        for (int j = 0; j < K && j < 20; j++) printf(" %8ld", t->conf[(size_t)k * K + j]);
        printf("\n");
    }
    printf("\n%-16s %9s %9s %9s %8s\n", "class", "precision", "recall", "f1", "support");
    for (int k = 0; k < K; k++) {
        class_stats c = stats_of(t, k);
        if (!c.row && K > 20) continue;
        printf("%-16.16s ", cli_esc(m->classes[k]));
        print_f(c.precision, "%9.4f ");
        print_f(c.recall, "%9.4f ");
        print_f(c.f1, "%9.4f ");
        printf("%8ld\n", c.row);
    }
    double mp, mr, mf;
    macro(t, &mp, &mr, &mf);
    printf("%-16s %9.4f %9.4f %9.4f %8ld\n", "macro avg", mp, mr, mf, t->seen);
    if (nerr) {
        printf("\nmisclassified (%d of %d, most confident first):\n", nerr, t->nerr);
        for (int i = 0; i < nerr; i++) {
            const mistake *e = &t->err[i];
            printf("  %s  true %s, predicted %s (%.4f)\n", cli_esc(vkr_dataset_path(ds, e->image)),
                   cli_esc(m->classes[e->truth]), cli_esc(m->classes[e->pred]), e->p);
        }
    }
}

/* The model and the dataset, checked against each other. */
static int open_inputs(const eval_args *a, vkr_model **m, vkr_dataset **ds, int **cmap, vkr_interp *interp,
                       vkr_preprocess *pre) {
    vkr_status s;
    if ((s = vkr_model_load(a->model_path, m))) return cli_error("evaluate", s);
    const char *iname = a->interp_name ? a->interp_name : vkr_model_get_meta(*m, "vkrun_interpolation");
    if ((s = vkr_interp_parse(iname ? iname : "bilinear", interp))) return cli_error("evaluate", s);
    if ((*m)->nclasses < 1) {
        fprintf(stderr, "vkrun evaluate: %s has no class names: it is not a classifier (train one with vkrun train)\n",
                a->model_path);
        return 1;
    }
    if ((s = vkr_preprocess_parse((*m)->preprocess, pre))) return cli_error("evaluate", s);
    vkr_dataset_opts dopt = {.strict = a->strict, .allow_single_class = 1, .split_names_ok = a->split_names_ok};
    if ((s = vkr_dataset_open(a->data, &dopt, ds))) return cli_error("evaluate", s);
    int K = (*m)->nclasses, last = (*m)->nlayers - 1;
    if ((*m)->layers[last].out_rank != 2 || (*m)->layers[last].out_c != K) {
        fprintf(stderr, "vkrun evaluate: %s: the last layer \"%s\" does not output one probability per class (%d classes)\n",
                a->model_path, cli_esc((*m)->layers[last].name), K);
        return 1;
    }
    *cmap = malloc(sizeof(int) * (size_t)vkr_dataset_num_classes(*ds));
    if (!*cmap) return cli_error("evaluate", vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory"));
    return match_classes(*m, *ds, a->data, *cmap);
}

/* Runs every image through the model into t. */
static int run_all(const eval_args *a, const vkr_model *m, const vkr_dataset *ds, const int *cmap, vkr_interp interp,
                   vkr_preprocess pre, vkr_context **ctx, tally *t) {
    vkr_graph *g = NULL;
    vkr_loader *ld = NULL;
    float *x = NULL, *tg = NULL, *p = NULL;
    int rc = 1, cnt;
    vkr_status s;
    if ((s = cli_context_at(a->device, a->precision, ctx))) return cli_error("evaluate", s);
    vkr_graph_opts go = {.batch = a->batch, .micro_batch = a->micro, .height = m->in_h, .width = m->in_w};
    if ((s = vkr_graph_create(*ctx, (vkr_model *)m, &go, &g))) {
        rc = cli_error("evaluate", s);
        goto out;
    }
    cli_print_plan(g, stderr);
    vkr_loader_opts lo = {.batch = a->batch, .height = m->in_h, .width = m->in_w, .channels = m->in_c, .interp = interp,
                          .preprocess = pre, .epochs = 1, .flags = VKR_LOAD_KEEP_REMAINDER, .strict = a->strict};
    if ((s = vkr_loader_create_ex(ds, &lo, &ld))) {
        rc = cli_error("evaluate", s);
        goto out;
    }
    x = malloc(sizeof(float) * (size_t)a->batch * m->in_c * m->in_h * m->in_w);
    tg = malloc(sizeof(float) * (size_t)a->batch * vkr_dataset_num_classes(ds));
    p = malloc(sizeof(float) * (size_t)a->batch * t->K);
    if (!x || !tg || !p) {
        fprintf(stderr, "vkrun evaluate: out of host memory\n");
        goto out;
    }
    while (!(s = vkr_loader_next(ld, x, tg, &cnt)) && cnt > 0) {
        if ((s = vkr_graph_forward(g, x, cnt, NULL, p))) break;
        if (count_batch(t, ds, cmap, vkr_loader_batch_indices(ld), cnt, p)) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            break;
        }
    }
    if (s) rc = cli_error("evaluate", s);
    else rc = 0;
out:
    free(x);
    free(tg);
    free(p);
    vkr_loader_destroy(ld);
    vkr_graph_destroy(g);
    return rc;
}

int cmd_evaluate(int argc, char **argv) {
    eval_args a = {.batch = 32, .errors = -1};
    int rc = parse_args(argc, argv, &a);
    if (rc) return rc;
    vkr_interp interp;
    vkr_preprocess pre;
    vkr_model *m = NULL;
    vkr_dataset *ds = NULL;
    vkr_context *ctx = NULL;
    int *cmap = NULL;
    tally t = {0};
    rc = 1;
    if (open_inputs(&a, &m, &ds, &cmap, &interp, &pre)) goto out;
    t.K = m->nclasses;
    if (!(t.conf = calloc((size_t)t.K * t.K, sizeof(long)))) goto out;
    if (run_all(&a, m, ds, cmap, interp, pre, &ctx, &t)) goto out;
    if (t.seen == 0) {
        fprintf(stderr, "vkrun evaluate: no image of %s could be decoded\n", a.data);
        goto out;
    }
    t.loss /= (double)t.seen;
    if (t.nerr) qsort(t.err, (size_t)t.nerr, sizeof *t.err, by_confidence); /* none misclassified: t.err is NULL */
    long skipped = vkr_dataset_size(ds) - t.seen + vkr_dataset_num_warnings(ds);
    int limit = a.errors >= 0 ? a.errors : a.json ? t.nerr : 10;
    int nerr = t.nerr < limit ? t.nerr : limit;
    if (a.json) print_json(&a, m, ds, &t, skipped, nerr);
    else print_text(&a, m, ds, &t, skipped, nerr);
    rc = cli_check_validation(ctx);
out:
    free(t.conf);
    free(t.err);
    free(cmap);
    vkr_context_destroy(ctx);
    vkr_dataset_free(ds);
    vkr_model_free(m);
    return rc;
}
