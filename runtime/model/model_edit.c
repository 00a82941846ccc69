/* Models built and edited in memory: a new model, layers appended (parameters initialized) or
 * truncated, classes and metadata.  Every edit re-links the model (model_link.c). */
#include "model/model_internal.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"

vkr_status vkr_model_new(const char *name, const char *input_name, int channels, int height, int width,
                         const char *preprocess, vkr_model **out) {
    *out = NULL;
    if (!input_name || !input_name[0] || channels < 1 || height < 1 || width < 1)
        return vkr_fail(VKR_ERR_INVALID, "vkr_model_new: needs an input name and positive channels/height/width");
    if (!preprocess) preprocess = "none";
    if (strcmp(preprocess, "caffe") && strcmp(preprocess, "torch") && strcmp(preprocess, "none"))
        return vkr_fail(VKR_ERR_INVALID, "vkr_model_new: preprocess \"%s\" unknown (caffe, torch, none)", preprocess);
    vkr_model *m = calloc(1, sizeof *m);
    if (!m) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    m->path = vkr__strdup("");
    m->name = vkr__strdup(name ? name : "");
    m->source = vkr__strdup("vkrun");
    m->input_name = vkr__strdup(input_name);
    m->preprocess = vkr__strdup(preprocess);
    m->in_c = channels, m->in_h = height, m->in_w = width;
    m->layers = calloc(1, sizeof *m->layers);
    if (!m->path || !m->name || !m->source || !m->input_name || !m->preprocess || !m->layers ||
        !(m->layers[0].name = vkr__strdup(input_name))) {
        vkr_model_free(m);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    m->nlayers = 1;
    m->layers[0].type = VKR_LAYER_INPUT; /* a new model is its input layer */
    m->layers[0].trainable = 1;
    for (int k = 0; k < VKR_MAX_PARAMS; k++) m->layers[0].param[k] = -1;
    vkr_status s = vkr__model_link(m, 1, 0);
    if (s) {
        vkr_model_free(m);
        return s;
    }
    *out = m;
    return VKR_OK;
}

vkr_status vkr_model_append_json(vkr_model *m, const char *layer_json, uint64_t seed) {
    cJSON *o = cJSON_Parse(layer_json ? layer_json : "");
    if (!o || !cJSON_IsObject(o)) {
        cJSON_Delete(o);
        return vkr_fail(VKR_ERR_INVALID, "%s: append: the layer is not a JSON object", vkr__model_label(m));
    }
    if (!cJSON_GetObjectItemCaseSensitive(o, "inputs")) {
        cJSON *arr = cJSON_AddArrayToObject(o, "inputs");
        if (arr) cJSON_AddItemToArray(arr, cJSON_CreateString(m->layers[m->nlayers - 1].name));
    }
    char where[400];
    snprintf(where, sizeof where, "%s: appended layer %d", vkr__model_label(m), m->nlayers);
    vkr_layer L;
    vkr_status s = vkr__parse_layer(o, &L, where);
    cJSON_Delete(o);
    if (s) {
        vkr__layer_clear(&L);
        return s;
    }
    if (vkr__layer_kind(L.type)->graph_input) {
        vkr__layer_clear(&L);
        return vkr_fail(VKR_ERR_INVALID, "%s: cannot append an input layer", vkr__model_label(m));
    }
    vkr_layer *nl = realloc(m->layers, (m->nlayers + 1) * sizeof *nl);
    if (!nl) {
        vkr__layer_clear(&L);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    m->layers = nl;
    m->layers[m->nlayers++] = L;
    int ntensors0 = m->ntensors;
    s = vkr__model_link(m, m->nlayers - 1, seed);
    if (s) { /* roll back */
        for (int t = ntensors0; t < m->ntensors; t++) {
            free(m->tensors[t].name);
            free(m->tensors[t].data);
        }
        m->ntensors = ntensors0;
        vkr__layer_clear(&m->layers[--m->nlayers]);
        vkr_status s2 = vkr__model_link(m, m->nlayers + 1, 0);
        (void)s2;
        return s;
    }
    return VKR_OK;
}

vkr_status vkr_model_append_gap(vkr_model *m, const char *name) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "type", "gap");
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    vkr_status s = vkr_model_append_json(m, txt, 0);
    free(txt);
    return s;
}

vkr_status vkr_model_append_dense(vkr_model *m, const char *name, int units, vkr_activation act, uint64_t seed) {
    static const char *acts[] = {"linear", "relu", "softmax"};
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "type", "dense");
    cJSON_AddNumberToObject(o, "units", units);
    cJSON_AddBoolToObject(o, "use_bias", 1);
    cJSON_AddStringToObject(o, "activation", (unsigned)act < 3 ? acts[act] : "?");
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    vkr_status s = vkr_model_append_json(m, txt, seed);
    free(txt);
    return s;
}

vkr_status vkr_model_append_dropout(vkr_model *m, const char *name, float rate) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "name", name);
    cJSON_AddStringToObject(o, "type", "dropout");
    cJSON_AddNumberToObject(o, "rate", rate);
    char *txt = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    if (!txt) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    vkr_status s = vkr_model_append_json(m, txt, 0);
    free(txt);
    return s;
}

vkr_status vkr_model_truncate_after(vkr_model *m, const char *layer) {
    int li = vkr_model_find_layer(m, layer);
    if (li < 0) return vkr_fail(VKR_ERR_NOT_FOUND, "%s: no layer named \"%s\"", vkr__model_label(m), layer ? layer : "");
    /* drop the tensors of removed layers, compacting the array */
    int *keep = calloc(m->ntensors + 1, sizeof *keep);
    if (!keep) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; i <= li; i++)
        for (int k = 0; k < m->layers[i].nparam; k++)
            if (m->layers[i].param[k] >= 0) keep[m->layers[i].param[k]] = 1;
    int nt = 0;
    for (int t = 0; t < m->ntensors; t++) {
        if (keep[t]) {
            m->tensors[nt++] = m->tensors[t];
        } else {
            free(m->tensors[t].name);
            free(m->tensors[t].data);
        }
    }
    free(keep);
    m->ntensors = nt;
    for (int i = li + 1; i < m->nlayers; i++) vkr__layer_clear(&m->layers[i]);
    m->nlayers = li + 1;
    return vkr__model_link(m, m->nlayers + 1, 0);
}

vkr_status vkr_model_set_classes(vkr_model *m, int n, const char *const *names) {
    if (n < 0 || (n > 0 && !names)) return vkr_fail(VKR_ERR_INVALID, "set_classes: bad arguments");
    char **c = calloc(n ? n : 1, sizeof *c);
    if (!c) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; i < n; i++)
        if (!names[i] || !(c[i] = vkr__strdup(names[i]))) {
            for (int j = 0; j < i; j++) free(c[j]);
            free(c);
            return vkr_fail(VKR_ERR_INVALID, "set_classes: class %d has no name", i);
        }
    for (int i = 0; i < m->nclasses; i++) free(m->classes[i]);
    free(m->classes);
    m->classes = c;
    m->nclasses = n;
    return VKR_OK;
}

vkr_status vkr_model_set_meta(vkr_model *m, const char *key, const char *value) {
    if (!key || !key[0] || !strcmp(key, "format") || !strcmp(key, "vkrun_graph"))
        return vkr_fail(VKR_ERR_INVALID, "set_meta: key \"%s\" is reserved or empty", key ? key : "");
    for (int i = 0; i < m->nmeta; i++)
        if (!strcmp(m->meta[i].key, key)) {
            if (!value) {
                free(m->meta[i].key);
                free(m->meta[i].value);
                m->meta[i] = m->meta[--m->nmeta];
                return VKR_OK;
            }
            char *v = vkr__strdup(value);
            if (!v) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            free(m->meta[i].value);
            m->meta[i].value = v;
            return VKR_OK;
        }
    if (!value) return VKR_OK;
    vkr_meta *nm = realloc(m->meta, (m->nmeta + 1) * sizeof *nm);
    if (!nm) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    m->meta = nm;
    nm[m->nmeta].key = vkr__strdup(key);
    nm[m->nmeta].value = vkr__strdup(value);
    if (!nm[m->nmeta].key || !nm[m->nmeta].value) {
        free(nm[m->nmeta].key);
        free(nm[m->nmeta].value);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    m->nmeta++;
    return VKR_OK;
}

const char *vkr_model_get_meta(const vkr_model *m, const char *key) {
    for (int i = 0; key && i < m->nmeta; i++)
        if (!strcmp(m->meta[i].key, key)) return m->meta[i].value;
    return NULL;
}

void vkr_model_set_trainable(vkr_model *m, int first, int last, int trainable) {
    if (first < 0) first = 0;
    if (last > m->nlayers) last = m->nlayers;
    for (int i = first; i < last; i++) m->layers[i].trainable = trainable ? 1 : 0;
}

