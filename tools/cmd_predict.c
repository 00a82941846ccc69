/* vkrun predict: class probabilities of images under a trained classifier. */
#include "cli.h"
#include "vkrun_data.h"
#include "vkrun_model.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

const char usage_predict[] =
    "usage: vkrun predict MODEL IMAGE|FOLDER... [--top K] [--json] [--batch B] [--interpolation I]\n"
    "                     [--precision P] [--device D]\n\n"
    "Prints, per image, the class probabilities as an array (as Keras' model.predict,\n"
    "e.g. [[0.035 0.965]]) and the top K classes with their names.  For a 1000-class\n"
    "ImageNet model the default is the top 5; otherwise every class.  A FOLDER stands for\n"
    "the images below it (recursively, by extension; other files are ignored), printed one\n"
    "line per file: PATH  CLASS PROB[, CLASS PROB...].\n\n"
    "  --top K           how many classes to list (default: all, or 5 for > 20 classes)\n"
    "  --json            print the same as JSON\n"
    "  --batch B         images per call (default 32)\n"
    "  --interpolation   bilinear, nearest, nearest-pil (default: what the model was trained with)\n"
    CLI_PRECISION_HELP;

typedef struct {
    int k;
    float p;
} kp;

static int by_prob(const void *a, const void *b) {
    const kp *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : x->k - y->k;
}

typedef struct {
    char **path;
    unsigned char *line; /* from a folder: one line per file */
    int n, cap;
} inputs;

static int add_input(inputs *in, const char *path, int line) {
    if (in->n == in->cap) {
        int cap = in->cap ? 2 * in->cap : 16;
        char **p = realloc(in->path, sizeof *p * (size_t)cap);
        unsigned char *l = p ? realloc(in->line, (size_t)cap) : NULL;
        if (p) in->path = p;
        if (!p || !l) return 1;
        in->line = l;
        in->cap = cap;
    }
    char *d = malloc(strlen(path) + 1);
    if (!d) return 1;
    strcpy(d, path);
    in->path[in->n] = d;
    in->line[in->n++] = (unsigned char)line;
    return 0;
}

static void free_inputs(inputs *in) {
    for (int i = 0; i < in->n; i++) free(in->path[i]);
    free(in->path);
    free(in->line);
}

/* A file stays itself; a folder becomes its images (an empty one is an error). */
static int expand(inputs *in, const char *arg) {
    struct stat st;
    if (stat(arg, &st) != 0 || !S_ISDIR(st.st_mode)) /* a file, or an error later naming it */
        return add_input(in, arg, 0) ? cli_error("predict", vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory")) : 0;
    char **files = NULL;
    int n = 0;
    vkr_status s = vkr_find_images(arg, &files, &n);
    if (s) return cli_error("predict", s);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (!rc && add_input(in, files[i], 1))
            rc = cli_error("predict", vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory"));
        free(files[i]);
    }
    free(files);
    if (!rc && n == 0) {
        fprintf(stderr, "vkrun predict: no images in folder %s\n", arg);
        rc = 1;
    }
    return rc;
}

static void print_one(const vkr_model *m, const char *path, int line, const float *p, const kp *order, int K, int top) {
    char idx[32];
    if (line) {
        printf("%s ", cli_esc(path));
        for (int k = 0; k < top; k++) {
            snprintf(idx, sizeof idx, "%d", order[k].k);
            printf("%s %s %.4f", k ? "," : "", cli_esc(m->nclasses ? m->classes[order[k].k] : idx), order[k].p);
        }
        printf("\n");
        return;
    }
    printf("%s\n", cli_esc(path));
    if (K <= 20) {
        printf("  [[");
        for (int k = 0; k < K; k++) printf("%s%.3f", k ? " " : "", p[k]);
        printf("]]\n");
    }
    for (int k = 0; k < top; k++) {
        snprintf(idx, sizeof idx, "%d", order[k].k);
        printf("  %-24s %.4f\n", cli_esc(m->nclasses ? m->classes[order[k].k] : idx), order[k].p);
    }
}

static void json_one(cJSON *root, const vkr_model *m, const char *path, const float *p, const kp *order, int K, int top) {
    cJSON *o = cJSON_CreateObject();
    cli_json_add_bytes(o, "image", path);
    cJSON *probs = cJSON_AddArrayToObject(o, "probabilities");
    for (int k = 0; k < K; k++) cJSON_AddItemToArray(probs, cJSON_CreateNumber(p[k]));
    cJSON *t = cJSON_AddArrayToObject(o, "top");
    for (int k = 0; k < top; k++) {
        cJSON *e = cJSON_CreateObject();
        cli_json_add_bytes(e, "class", m->nclasses ? m->classes[order[k].k] : "");
        cJSON_AddNumberToObject(e, "index", order[k].k);
        cJSON_AddNumberToObject(e, "probability", order[k].p);
        cJSON_AddItemToArray(t, e);
    }
    cJSON_AddItemToArray(root, o);
}

/* Loads the images of one batch; an image that fails is reported and left out (*ok = 0). */
static int load_batch(const vkr_model *m, const inputs *in, int first, int cnt, vkr_interp interp,
                      vkr_preprocess pre, float *x, unsigned char *ok) {
    size_t chw = (size_t)m->in_c * m->in_h * m->in_w;
    int good = 0, bad = 0;
    for (int j = 0; j < cnt; j++) {
        vkr_status s = vkr_image_load_ex(in->path[first + j], m->in_h, m->in_w, m->in_c, interp, pre, x + good * chw);
        ok[j] = !s;
        if (s) {
            fprintf(stderr, "vkrun predict: %s\n", cli_esc_msg(vkr_last_error()));
            bad++;
        } else {
            good++;
        }
    }
    return bad;
}

typedef struct {
    const char *model_path, *device, *interp_name, *precision;
    int json, top, batch;
    inputs in;
} predict_args;

static int parse_args(int argc, char **argv, predict_args *a) {
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--device") && v) a->device = argv[++i];
        else if (!strcmp(o, "--precision") && v) a->precision = argv[++i];
        else if (!strcmp(o, "--top") && v) a->top = atoi(argv[++i]);
        else if (!strcmp(o, "--batch") && v) a->batch = atoi(argv[++i]);
        else if (!strcmp(o, "--interpolation") && v) a->interp_name = argv[++i];
        else if (!strcmp(o, "--json")) a->json = 1;
        else if (o[0] == '-' && o[1]) {
            return cli_unknown_option("predict", o, usage_predict);
        } else if (!a->model_path) a->model_path = o;
        else if (expand(&a->in, o)) return 1;
    }
    if (!a->model_path || a->in.n == 0 || a->batch <= 0) {
        fprintf(stderr, "%s", usage_predict);
        return 2;
    }
    return 0;
}

/* The model, checked to end in a classifier; its interpolation and preprocessing. */
static int open_model(const predict_args *a, vkr_model **m, vkr_interp *interp, vkr_preprocess *pre) {
    vkr_status s;
    if ((s = vkr_model_load(a->model_path, m))) return cli_error("predict", s);
    const char *iname = a->interp_name ? a->interp_name : vkr_model_get_meta(*m, "vkrun_interpolation");
    if ((s = vkr_interp_parse(iname ? iname : "bilinear", interp))) return cli_error("predict", s);
    if ((s = vkr_preprocess_parse((*m)->preprocess, pre))) return cli_error("predict", s);
    int last = (*m)->nlayers - 1, K = (*m)->layers[last].out_c;
    if ((*m)->layers[last].out_rank != 2 || ((*m)->nclasses && (*m)->nclasses != K)) {
        char sh[64];
        vkr_model_shape_str(*m, last, sh, sizeof sh);
        fprintf(stderr, "vkrun predict: %s does not end in a classifier (last layer %s has shape %s)\n", a->model_path,
                cli_esc((*m)->layers[last].name), sh);
        return 1;
    }
    return 0;
}

int cmd_predict(int argc, char **argv) {
    predict_args a = {.top = -1, .batch = 32};
    int rc = parse_args(argc, argv, &a);
    if (rc) {
        free_inputs(&a.in);
        return rc;
    }
    vkr_interp interp;
    vkr_preprocess pre;
    vkr_model *m = NULL;
    vkr_context *ctx = NULL;
    vkr_graph *g = NULL;
    float *x = NULL, *p = NULL;
    unsigned char *ok = NULL;
    kp *order = NULL;
    cJSON *root = NULL;
    int bad = 0;
    vkr_status s;
    rc = 1;
    if (open_model(&a, &m, &interp, &pre)) goto out;
    int K = m->layers[m->nlayers - 1].out_c, B = a.batch < a.in.n ? a.batch : a.in.n;
    int top = a.top < 0 ? (K > 20 ? 5 : K) : a.top > K ? K : a.top;
    if ((s = cli_context_at(a.device, a.precision, &ctx))) {
        rc = cli_error("predict", s);
        goto out;
    }
    vkr_graph_opts go = {.batch = B, .height = m->in_h, .width = m->in_w};
    if ((s = vkr_graph_create(ctx, m, &go, &g))) {
        rc = cli_error("predict", s);
        goto out;
    }
    x = malloc(sizeof(float) * (size_t)B * m->in_c * m->in_h * m->in_w);
    p = malloc(sizeof(float) * (size_t)B * K);
    ok = malloc((size_t)B);
    order = malloc(sizeof(kp) * (size_t)K);
    if (!x || !p || !ok || !order) goto out;
    if (a.json) root = cJSON_CreateArray();
    for (int first = 0; first < a.in.n; first += B) {
        int cnt = a.in.n - first < B ? a.in.n - first : B;
        bad += load_batch(m, &a.in, first, cnt, interp, pre, x, ok);
        int good = 0;
        for (int j = 0; j < cnt; j++) good += ok[j];
        if (good && (s = vkr_graph_forward(g, x, good, NULL, p))) {
            rc = cli_error("predict", s);
            goto out;
        }
        for (int j = 0, r = 0; j < cnt; j++) {
            if (!ok[j]) continue;
            const float *pr = p + (size_t)r++ * K;
            for (int k = 0; k < K; k++) order[k] = (kp){k, pr[k]};
            qsort(order, (size_t)K, sizeof *order, by_prob);
            if (root) json_one(root, m, a.in.path[first + j], pr, order, K, top);
            else print_one(m, a.in.path[first + j], a.in.line[first + j], pr, order, K, top);
        }
    }
    if (root) {
        char *txt = cJSON_Print(root);
        if (txt) puts(txt);
        free(txt);
    }
    rc = bad ? 1 : cli_check_validation(ctx);
out:
    cJSON_Delete(root);
    free(x);
    free(p);
    free(ok);
    free(order);
    free_inputs(&a.in);
    vkr_graph_destroy(g);
    vkr_context_destroy(ctx);
    vkr_model_free(m);
    return rc;
}
