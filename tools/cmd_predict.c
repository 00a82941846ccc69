/* vkrun predict: class probabilities of images under a trained classifier. */
#include "cli.h"
#include "vkrun_data.h"
#include "vkrun_model.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char usage_predict[] =
    "usage: vkrun predict MODEL IMAGE... [--top K] [--json] [--interpolation I] [--device D]\n\n"
    "Prints, per image, the class probabilities as an array (as Keras' model.predict,\n"
    "e.g. [[0.035 0.965]]) and the top K classes with their names.  For a 1000-class\n"
    "ImageNet model the default is the top 5; otherwise every class.\n\n"
    "  --top K           how many classes to list (default: all, or 5 for > 20 classes)\n"
    "  --json            print the same as JSON\n"
    "  --interpolation   bilinear, nearest, nearest-pil (default: what the model was trained with)\n";

typedef struct {
    int k;
    float p;
} kp;

static int by_prob(const void *a, const void *b) {
    const kp *x = a, *y = b;
    return x->p < y->p ? 1 : x->p > y->p ? -1 : x->k - y->k;
}

int cmd_predict(int argc, char **argv) {
    const char *model_path = NULL, *device = NULL, *interp_name = NULL;
    const char **images = calloc((size_t)argc, sizeof *images);
    int nimg = 0, json = 0, top = -1;
    if (!images) return 1;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(o, "--device") && v) device = argv[++i];
        else if (!strcmp(o, "--top") && v) top = atoi(argv[++i]);
        else if (!strcmp(o, "--interpolation") && v) interp_name = argv[++i];
        else if (!strcmp(o, "--json")) json = 1;
        else if (o[0] == '-' && o[1]) {
            fprintf(stderr, "vkrun predict: unknown or incomplete option %s\n%s", o, usage_predict);
            free(images);
            return 2;
        } else if (!model_path) model_path = o;
        else images[nimg++] = o;
    }
    if (!model_path || nimg == 0) {
        fprintf(stderr, "%s", usage_predict);
        free(images);
        return 2;
    }
    vkr_interp interp;
    vkr_preprocess pre;
    vkr_model *m = NULL;
    vkr_context *ctx = NULL;
    vkr_graph *g = NULL;
    float *x = NULL, *p = NULL;
    kp *order = NULL;
    cJSON *root = NULL;
    int rc = 1, bad = 0;
    vkr_status s;
    if ((s = vkr_model_load(model_path, &m))) {
        rc = cli_error("predict", s);
        goto out;
    }
    if (!interp_name) interp_name = vkr_model_get_meta(m, "vkrun_interpolation");
    if ((s = vkr_interp_parse(interp_name ? interp_name : "bilinear", &interp))) {
        rc = cli_error("predict", s);
        goto out;
    }
    if ((s = vkr_preprocess_parse(m->preprocess, &pre))) {
        rc = cli_error("predict", s);
        goto out;
    }
    int last = m->nlayers - 1;
    int K = m->layers[last].out_c;
    if (m->layers[last].out_rank != 2 || (m->nclasses && m->nclasses != K)) {
        fprintf(stderr, "vkrun predict: %s does not end in a classifier (last layer %s has shape ", model_path,
                m->layers[last].name);
        char sh[64];
        vkr_model_shape_str(m, last, sh, sizeof sh);
        fprintf(stderr, "%s)\n", sh);
        goto out;
    }
    if (top < 0) top = K > 20 ? 5 : K;
    if (top > K) top = K;
    if ((s = cli_context(device, &ctx))) {
        rc = cli_error("predict", s);
        goto out;
    }
    vkr_graph_opts go = {.batch = 1, .height = m->in_h, .width = m->in_w};
    if ((s = vkr_graph_create(ctx, m, &go, &g))) {
        rc = cli_error("predict", s);
        goto out;
    }
    x = malloc(sizeof(float) * (size_t)m->in_c * m->in_h * m->in_w);
    p = malloc(sizeof(float) * (size_t)K);
    order = malloc(sizeof(kp) * (size_t)K);
    if (!x || !p || !order) goto out;
    if (json) root = cJSON_CreateArray();
    for (int i = 0; i < nimg; i++) {
        s = vkr_image_load_ex(images[i], m->in_h, m->in_w, m->in_c, interp, pre, x);
        if (!s) s = vkr_graph_forward(g, x, 1, NULL, p);
        if (s) {
            fprintf(stderr, "vkrun predict: %s\n", vkr_last_error());
            bad++;
            continue;
        }
        for (int k = 0; k < K; k++) order[k] = (kp){k, p[k]};
        qsort(order, (size_t)K, sizeof *order, by_prob);
        if (json) {
            cJSON *o = cJSON_CreateObject();
            cli_json_add_bytes(o, "image", images[i]);
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
        } else {
            printf("%s\n", images[i]);
            if (K <= 20) {
                printf("  [[");
                for (int k = 0; k < K; k++) printf("%s%.3f", k ? " " : "", p[k]);
                printf("]]\n");
            }
            for (int k = 0; k < top; k++) {
                char idx[32];
                snprintf(idx, sizeof idx, "%d", order[k].k);
                printf("  %-24s %.4f\n", m->nclasses ? m->classes[order[k].k] : idx, order[k].p);
            }
        }
    }
    if (json) {
        char *txt = cJSON_Print(root);
        if (txt) puts(txt);
        free(txt);
    }
    rc = bad ? 1 : cli_check_validation(ctx);
out:
    cJSON_Delete(root);
    free(x);
    free(p);
    free(order);
    free(images);
    vkr_graph_destroy(g);
    vkr_context_destroy(ctx);
    vkr_model_free(m);
    return rc;
}
