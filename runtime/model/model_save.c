/* Model files: written atomically (safetensors container, graph JSON in its metadata). */
#include "model/model_internal.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"

static char *graph_json(const vkr_model *m) {
    cJSON *g = cJSON_CreateObject();
    if (!g) return NULL;
    cJSON_AddNumberToObject(g, "version", 1);
    cJSON_AddStringToObject(g, "name", m->name ? m->name : "");
    cJSON_AddStringToObject(g, "source", m->source ? m->source : "");
    cJSON *in = cJSON_AddObjectToObject(g, "input");
    cJSON_AddStringToObject(in, "name", m->layers[0].name);
    cJSON_AddNumberToObject(in, "channels", m->in_c);
    cJSON_AddNumberToObject(in, "height", m->in_h);
    cJSON_AddNumberToObject(in, "width", m->in_w);
    cJSON_AddStringToObject(in, "preprocess", m->preprocess ? m->preprocess : "none");
    if (m->nclasses) {
        cJSON *c = cJSON_AddArrayToObject(g, "classes");
        for (int i = 0; i < m->nclasses; i++) cJSON_AddItemToArray(c, cJSON_CreateString(m->classes[i]));
    }
    cJSON *ly = cJSON_AddArrayToObject(g, "layers");
    for (int i = 0; i < m->nlayers; i++) cJSON_AddItemToArray(ly, vkr__layer_to_json(&m->layers[i]));
    char *txt = cJSON_PrintUnformatted(g);
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
    cJSON_AddStringToObject(meta, "format", "vkrun");
    cJSON_AddStringToObject(meta, "vkrun_graph", graph);
    free(graph);
    for (int i = 0; i < m->nmeta; i++) cJSON_AddStringToObject(meta, m->meta[i].key, m->meta[i].value);
    /* tensors in layer order */
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i].nparam; k++)
            if (m->layers[i].param[k] >= 0) order[n++] = m->layers[i].param[k];
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const vkr_tensor *T = &m->tensors[order[k]];
        cJSON *t = cJSON_AddObjectToObject(h, T->name);
        cJSON_AddStringToObject(t, "dtype", "F32");
        cJSON *sh = cJSON_AddArrayToObject(t, "shape");
        for (int d = 0; d < T->ndim; d++) cJSON_AddItemToArray(sh, cJSON_CreateNumber((double)T->shape[d]));
        cJSON *of = cJSON_AddArrayToObject(t, "data_offsets");
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)off));
        cJSON_AddItemToArray(of, cJSON_CreateNumber((double)(off + 4 * T->count)));
        off += 4 * T->count;
    }
    char *hdr = cJSON_PrintUnformatted(h);
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

