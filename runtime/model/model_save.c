/* Model files: written atomically (safetensors container, graph JSON in its metadata). */
#include "model/model_internal.h"

#include <cJSON.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"

#define PUT(o, key, item) (bad |= !vkr__json_put(o, key, item))

/* The graph JSON; NULL when an allocation failed (never a graph with a field missing). */
static char *graph_json(const vkr_model *m) {
    cJSON *g = cJSON_CreateObject(), *in = cJSON_CreateObject(), *ly = cJSON_CreateArray();
    int bad = !g;
    PUT(g, "version", cJSON_CreateNumber(1));
    PUT(g, "name", cJSON_CreateString(m->name ? m->name : ""));
    PUT(g, "source", cJSON_CreateString(m->source ? m->source : ""));
    PUT(in, "name", cJSON_CreateString(m->layers[0].name));
    PUT(in, "channels", cJSON_CreateNumber(m->in_c));
    PUT(in, "height", cJSON_CreateNumber(m->in_h));
    PUT(in, "width", cJSON_CreateNumber(m->in_w));
    PUT(in, "preprocess", cJSON_CreateString(m->preprocess ? m->preprocess : "none"));
    PUT(g, "input", in);
    if (m->nclasses) {
        cJSON *c = cJSON_CreateArray();
        for (int i = 0; c && i < m->nclasses; i++) PUT(c, NULL, cJSON_CreateString(m->classes[i]));
        PUT(g, "classes", c);
    }
    for (int i = 0; ly && i < m->nlayers; i++) PUT(ly, NULL, vkr__layer_to_json(&m->layers[i]));
    PUT(g, "layers", ly);
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
    PUT(meta, "format", cJSON_CreateString("vkrun"));
    PUT(meta, "vkrun_graph", cJSON_CreateString(graph));
    free(graph);
    for (int i = 0; i < m->nmeta; i++) PUT(meta, m->meta[i].key, cJSON_CreateString(m->meta[i].value));
    /* tensors in layer order */
    int n = 0;
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i].nparam; k++)
            if (m->layers[i].param[k] >= 0) order[n++] = m->layers[i].param[k];
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        const vkr_tensor *T = &m->tensors[order[k]];
        cJSON *t = cJSON_CreateObject(), *sh = cJSON_CreateArray(), *of = cJSON_CreateArray();
        PUT(t, "dtype", cJSON_CreateString("F32"));
        for (int d = 0; sh && d < T->ndim; d++) PUT(sh, NULL, cJSON_CreateNumber((double)T->shape[d]));
        PUT(t, "shape", sh);
        PUT(of, NULL, cJSON_CreateNumber((double)off));
        PUT(of, NULL, cJSON_CreateNumber((double)(off + 4 * T->count)));
        PUT(t, "data_offsets", of);
        PUT(h, T->name, t);
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

