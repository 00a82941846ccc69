/* Models: lifetime, queries, editing helpers, atomic save. */
#include "model/model_internal.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char *vkr__strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

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
    m->layers[0].type = VKR_LAYER_INPUT;
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

vkr_status vkr_model_validate(vkr_model *m) { return vkr__model_link(m, m->nlayers + 1, 0); }

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

const char *vkr_param_slot_name(vkr_layer_type t, int slot) {
    static const char *wb[] = {"weight", "bias"};
    static const char *bn[] = {"gamma", "beta", "running_mean", "running_var"};
    if ((t == VKR_LAYER_CONV2D || t == VKR_LAYER_DENSE) && slot >= 0 && slot < 2) return wb[slot];
    if (t == VKR_LAYER_BATCHNORM && slot >= 0 && slot < 4) return bn[slot];
    return NULL;
}

int vkr_param_slot_trainable(vkr_layer_type t, int slot) {
    if (t == VKR_LAYER_CONV2D || t == VKR_LAYER_DENSE) return slot == VKR_PARAM_WEIGHT || slot == VKR_PARAM_BIAS;
    if (t == VKR_LAYER_BATCHNORM) return slot == VKR_PARAM_GAMMA || slot == VKR_PARAM_BETA;
    return 0;
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

/* ------------------------------------------------------------ editing */

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
    if (L.type == VKR_LAYER_INPUT) {
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

/* ------------------------------------------------------------ serialization */

/* cJSON's adders return NULL / false when an allocation fails: OK() records that in the
 * function's `bad`, so that a model is never written with a field missing. */
#define OK(x) (bad |= !(x))
#define put vkr__json_put
int vkr__json_put(cJSON *o, const char *key, cJSON *item) {
    if (key ? cJSON_AddItemToObject(o, key, item) : cJSON_AddItemToArray(o, item)) return 1;
    cJSON_Delete(item);
    return 0;
}

static cJSON *int_pair(const int v[2]) {
    int a[2] = {v[0], v[1]};
    return cJSON_CreateIntArray(a, 2);
}

static cJSON *padding_json(const vkr_layer *L) {
    if (L->pad_mode == VKR_PAD_SAME) return cJSON_CreateString("same");
    if (L->pad_mode == VKR_PAD_VALID) return cJSON_CreateString("valid");
    return cJSON_CreateIntArray(L->pad, 4);
}

cJSON *vkr__layer_to_json(const vkr_layer *L) {
    static const char *acts[] = {"linear", "relu", "softmax"};
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    int bad = 0;
    OK(cJSON_AddStringToObject(o, "name", L->name));
    OK(cJSON_AddStringToObject(o, "type", vkr_layer_type_name(L->type)));
    if (L->type != VKR_LAYER_INPUT) {
        cJSON *in;
        OK(in = cJSON_AddArrayToObject(o, "inputs"));
        for (int i = 0; i < L->ninputs; i++) OK(put(in, NULL, cJSON_CreateString(L->inputs[i])));
    }
    OK(cJSON_AddBoolToObject(o, "trainable", L->trainable));
    switch (L->type) {
    case VKR_LAYER_CONV2D:
        OK(cJSON_AddNumberToObject(o, "filters", L->filters));
        OK(put(o, "kernel", int_pair(L->kernel)));
        OK(put(o, "strides", int_pair(L->strides)));
        OK(put(o, "padding", padding_json(L)));
        OK(cJSON_AddBoolToObject(o, "use_bias", L->use_bias));
        OK(cJSON_AddStringToObject(o, "activation", acts[L->activation]));
        break;
    case VKR_LAYER_DENSE:
        OK(cJSON_AddNumberToObject(o, "units", L->filters));
        OK(cJSON_AddBoolToObject(o, "use_bias", L->use_bias));
        OK(cJSON_AddStringToObject(o, "activation", acts[L->activation]));
        break;
    case VKR_LAYER_BATCHNORM:
        OK(cJSON_AddNumberToObject(o, "epsilon", L->epsilon));
        OK(cJSON_AddNumberToObject(o, "momentum", L->momentum));
        break;
    case VKR_LAYER_ZEROPAD:
        OK(put(o, "padding", cJSON_CreateIntArray(L->pad, 4)));
        break;
    case VKR_LAYER_MAXPOOL:
    case VKR_LAYER_AVGPOOL:
        OK(put(o, "pool", int_pair(L->kernel)));
        OK(put(o, "strides", int_pair(L->strides)));
        OK(put(o, "padding", padding_json(L)));
        if (L->type == VKR_LAYER_AVGPOOL) OK(cJSON_AddBoolToObject(o, "count_include_pad", L->count_include_pad));
        break;
    case VKR_LAYER_DROPOUT:
        OK(cJSON_AddNumberToObject(o, "rate", L->rate));
        break;
    default:
        break;
    }
    if (bad) {
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}

static char *graph_json(const vkr_model *m) {
    cJSON *g = cJSON_CreateObject();
    if (!g) return NULL;
    int bad = 0;
    OK(cJSON_AddNumberToObject(g, "version", 1));
    OK(cJSON_AddStringToObject(g, "name", m->name ? m->name : ""));
    OK(cJSON_AddStringToObject(g, "source", m->source ? m->source : ""));
    cJSON *in;
    OK(in = cJSON_AddObjectToObject(g, "input"));
    OK(cJSON_AddStringToObject(in, "name", m->layers[0].name));
    OK(cJSON_AddNumberToObject(in, "channels", m->in_c));
    OK(cJSON_AddNumberToObject(in, "height", m->in_h));
    OK(cJSON_AddNumberToObject(in, "width", m->in_w));
    OK(cJSON_AddStringToObject(in, "preprocess", m->preprocess ? m->preprocess : "none"));
    if (m->nclasses) {
        cJSON *c;
        OK(c = cJSON_AddArrayToObject(g, "classes"));
        for (int i = 0; i < m->nclasses; i++) OK(put(c, NULL, cJSON_CreateString(m->classes[i])));
    }
    cJSON *ly;
    OK(ly = cJSON_AddArrayToObject(g, "layers"));
    for (int i = 0; i < m->nlayers; i++) OK(put(ly, NULL, vkr__layer_to_json(&m->layers[i])));
    char *txt = bad ? NULL : cJSON_PrintUnformatted(g);
    cJSON_Delete(g);
    return txt;
}

typedef struct {
    const vkr_model *m;
    const char *header;
    uint64_t hlen, padded;
    const int *order;
} save_ctx;

static vkr_status write_model(FILE *f, void *ud) {
    save_ctx *c = ud;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(c->padded >> (8 * i));
    if (fwrite(lb, 1, 8, f) != 8 || fwrite(c->header, 1, c->hlen, f) != c->hlen) goto io;
    for (uint64_t i = c->hlen; i < c->padded; i++)
        if (fputc(' ', f) == EOF) goto io;
    for (int k = 0; k < c->m->ntensors; k++) {
        const vkr_tensor *T = &c->m->tensors[c->order[k]];
        if (T->count && fwrite(T->data, 4, T->count, f) != T->count) goto io;
    }
    return VKR_OK;
io:
    return vkr_fail(VKR_ERR_IO, "writing the model failed: %s", strerror(errno));
}

vkr_status vkr_model_save(const vkr_model *m, const char *path) {
    if (!path || !path[0]) return vkr_fail(VKR_ERR_INVALID, "vkr_model_save: no path");
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i].nparam; k++)
            if (m->layers[i].param[k] == -2)
                return vkr_fail(VKR_ERR_INVALID, "%s: layer \"%s\" has unresolved parameters", vkr__model_label(m),
                                m->layers[i].name);
    char *graph = graph_json(m);
    if (!graph) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    int *order = malloc((m->ntensors + 1) * sizeof *order);
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = h ? cJSON_AddObjectToObject(h, "__metadata__") : NULL;
    if (!order || !meta) {
        free(graph);
        free(order);
        cJSON_Delete(h);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    int bad = 0;
    OK(cJSON_AddStringToObject(meta, "format", "vkrun"));
    OK(cJSON_AddStringToObject(meta, "vkrun_graph", graph));
    free(graph);
    for (int i = 0; i < m->nmeta; i++) OK(cJSON_AddStringToObject(meta, m->meta[i].key, m->meta[i].value));
    /* tensors in layer order */
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i].nparam; k++)
            if (m->layers[i].param[k] >= 0) order[n++] = m->layers[i].param[k];
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const vkr_tensor *T = &m->tensors[order[k]];
        cJSON *t;
        OK(t = cJSON_AddObjectToObject(h, T->name));
        OK(cJSON_AddStringToObject(t, "dtype", "F32"));
        cJSON *sh;
        OK(sh = cJSON_AddArrayToObject(t, "shape"));
        for (int d = 0; d < T->ndim; d++) OK(put(sh, NULL, cJSON_CreateNumber((double)T->shape[d])));
        cJSON *of;
        OK(of = cJSON_AddArrayToObject(t, "data_offsets"));
        OK(put(of, NULL, cJSON_CreateNumber((double)off)));
        OK(put(of, NULL, cJSON_CreateNumber((double)(off + 4 * T->count))));
        off += 4 * T->count;
    }
    char *hdr = bad ? NULL : cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!hdr) {
        free(order);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    save_ctx c = {m, hdr, strlen(hdr), 0, order};
    c.padded = (c.hlen + 8 + 7) / 8 * 8 - 8; /* data section starts 8-aligned */
    vkr_status s = n == m->ntensors ? vkr__atomic_write(path, write_model, &c)
                                    : vkr_fail(VKR_ERR_INVALID, "%s: tensors not owned by a layer", vkr__model_label(m));
    free(hdr);
    free(order);
    return s;
}

