/* Models: lifetime and queries. */
#include "model/model_internal.h"

#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"

const char *vkr__model_label(const vkr_model *m) {
    static _Thread_local char buf[300];
    if (m->path && m->path[0]) return m->path;
    snprintf(buf, sizeof buf, "model \"%s\"", m->name ? m->name : "");
    return buf;
}

void vkr_model_free(vkr_model *m) {
    if (!m) return;
    for (int i = 0; i < m->nlayers; i++) vkr__layer_clear(&m->layers[i]);
    free(m->layers);
    for (int i = 0; i < m->ntensors; i++) {
        free(m->tensors[i].name);
        free(m->tensors[i].data);
    }
    free(m->tensors);
    for (int i = 0; i < m->nclasses; i++) free(m->classes[i]);
    free(m->classes);
    for (int i = 0; i < m->nmeta; i++) {
        free(m->meta[i].key);
        free(m->meta[i].value);
    }
    free(m->meta);
    free(m->path);
    free(m->name);
    free(m->source);
    free(m->input_name);
    free(m->preprocess);
    free(m);
}


int vkr_model_find_layer(const vkr_model *m, const char *name) {
    if (!name) return -1;
    for (int i = 0; i < m->nlayers; i++)
        if (!strcmp(m->layers[i].name, name)) return i;
    return -1;
}

int vkr_model_find_tensor(const vkr_model *m, const char *name) {
    if (!name) return -1;
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}

vkr_tensor *vkr_model_param(const vkr_model *m, int layer, int slot) {
    if (layer < 0 || layer >= m->nlayers || slot < 0 || slot >= VKR_MAX_PARAMS) return NULL;
    int t = m->layers[layer].param[slot];
    return t >= 0 && t < m->ntensors ? &m->tensors[t] : NULL;
}

uint64_t vkr_model_layer_params(const vkr_model *m, int i, uint64_t *trainable) {
    uint64_t tot = 0, tr = 0;
    if (i >= 0 && i < m->nlayers) {
        const vkr_layer *L = &m->layers[i];
        for (int k = 0; k < L->nparam; k++) {
            const vkr_tensor *T = vkr_model_param(m, i, k);
            if (!T) continue;
            tot += T->count;
            if (L->trainable && vkr_param_slot_trainable(L->type, k)) tr += T->count;
        }
    }
    if (trainable) *trainable = tr;
    return tot;
}

void vkr_model_param_totals(const vkr_model *m, uint64_t *total, uint64_t *trainable, uint64_t *non_trainable) {
    uint64_t tot = 0, tr = 0;
    for (int i = 0; i < m->nlayers; i++) {
        uint64_t t;
        tot += vkr_model_layer_params(m, i, &t);
        tr += t;
    }
    if (total) *total = tot;
    if (trainable) *trainable = tr;
    if (non_trainable) *non_trainable = tot - tr;
}

