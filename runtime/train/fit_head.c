/* The Keras head on a base cut (vkr_fit_add_head) and the head-only model that trains on cached
 * pooled features. */
#include "train/fit_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* The base's last feature map: the last layer with a rank-4 output (-1 if none). */
static int last_feature_map(const vkr_model *m) {
    int last = -1;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].out_rank == 4) last = i;
    return last;
}

static void dense_name(char *name, size_t n, int k) {
    if (k == 0) snprintf(name, n, "dense");
    else snprintf(name, n, "dense_%d", k);
}

/* Dropout(rate) before the k-th Dense (none when rate is 0): "dropout", "dropout_1", ... */
static vkr_status add_dropout(vkr_model *m, double rate, int k) {
    if (rate <= 0) return VKR_OK;
    char name[64];
    if (k == 0) snprintf(name, sizeof name, "dropout");
    else snprintf(name, sizeof name, "dropout_%d", k);
    return vkr_model_append_dropout(m, name, (float)rate);
}

static vkr_status add_head(vkr_model *m, const int *units, int nunits, int nclasses, const char *const *classes,
                           uint64_t seed, double dropout, int *base_layers) {
    int last = last_feature_map(m);
    if (last < 1)
        return vkr_fail(VKR_ERR_INVALID, "%s: no feature-map layer to put a head on",
                        m->path && *m->path ? m->path : m->name);
    if (nunits < 0 || nunits > VKR_FIT_MAX_HEAD || nclasses < 2)
        return vkr_fail(VKR_ERR_INVALID, "a head takes 0 to %d hidden layers and at least 2 classes (got %d, %d)",
                        VKR_FIT_MAX_HEAD, nunits, nclasses);
    vkr_status s;
    if (last != m->nlayers - 1 && (s = vkr_model_truncate_after(m, m->layers[last].name))) return s;
    *base_layers = m->nlayers;
    if ((s = vkr_model_append_gap(m, "global_average_pooling2d"))) return s;
    char name[64];
    int k = 0;
    for (; k < nunits; k++) {
        dense_name(name, sizeof name, k);
        if ((s = add_dropout(m, dropout, k)) ||
            (s = vkr_model_append_dense(m, name, units[k], VKR_ACT_RELU, seed * 1000003u + (uint64_t)k)))
            return s;
    }
    dense_name(name, sizeof name, k);
    if ((s = add_dropout(m, dropout, k)) ||
        (s = vkr_model_append_dense(m, name, nclasses, VKR_ACT_SOFTMAX, seed * 1000003u + (uint64_t)k)))
        return s;
    return vkr_model_set_classes(m, nclasses, classes);
}

vkr_status vkr_fit_add_head(vkr_model *m, const int *units, int nunits, int nclasses, const char *const *classes,
                            uint64_t seed, int *base_layers) {
    return add_head(m, units, nunits, nclasses, classes, seed, 0, base_layers);
}

vkr_status fit_build_model(fit_run *r) {
    if (last_feature_map(r->model) < 1)
        return vkr_fail(VKR_ERR_INVALID, "%s: no feature-map layer to put a head on", r->a->model);
    int nc = vkr_dataset_num_classes(r->train);
    const char **names = malloc(sizeof *names * (size_t)nc);
    if (!names) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int c = 0; c < nc; c++) names[c] = vkr_dataset_class_name(r->train, c);
    vkr_status s = add_head(r->model, r->a->head, r->a->nhead, nc, names, r->a->seed, r->a->dropout, &r->base_layers);
    free(names);
    r->gap_layer = r->base_layers;
    return s;
}

void fit_copy_tensors(vkr_model *to, const vkr_model *from) {
    for (int i = 0; i < from->ntensors; i++) {
        int j = vkr_model_find_tensor(to, from->tensors[i].name);
        if (j >= 0 && to->tensors[j].count == from->tensors[i].count)
            memcpy(to->tensors[j].data, from->tensors[i].data, sizeof(float) * from->tensors[i].count);
    }
}

/* Head-only model over pooled features, with the full model's head tensors. */
vkr_status fit_head_model(const fit_run *r, vkr_model **out) {
    vkr_model *m = r->model, *h = NULL;
    int dim = m->layers[r->gap_layer].out_c;
    vkr_status s = vkr_model_new("head", "features", dim, 1, 1, "none", &h);
    for (int i = r->gap_layer + 1; !s && i < m->nlayers; i++)
        s = m->layers[i].type == VKR_LAYER_DROPOUT
                ? vkr_model_append_dropout(h, m->layers[i].name, (float)m->layers[i].rate)
                : vkr_model_append_dense(h, m->layers[i].name, m->layers[i].filters, m->layers[i].activation, 0);
    if (!s) {
        fit_copy_tensors(h, m);
        *out = h;
    } else {
        vkr_model_free(h);
    }
    return s;
}
