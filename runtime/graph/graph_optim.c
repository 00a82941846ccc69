/* Graph runtime: optimizer state to and from a safetensors file (for resuming training). */
#include "graph/graph_internal.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char name[600];
    vkr_buffer *buf;
    uint64_t count;
} opt_entry;

/* Every optimizer state buffer of the graph, named "<tensor>/<state>". */
static vkr_status collect(vkr_graph *g, opt_entry **out, int *n) {
    int cap = 0, k = 0;
    for (int j = 0; j < g->nlayers; j++)
        for (int s = 0; s < VKR_MAX_PARAMS; s++) cap += (g->moment1 && g->moment1[j][s] ? 1 : 0) + (g->moment2 && g->moment2[j][s] ? 1 : 0);
    opt_entry *e = calloc(cap ? cap : 1, sizeof *e);
    if (!e) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    int adam = g->o.optimizer == VKR_OPTIM_ADAM;
    for (int j = 0; j < g->nlayers; j++)
        for (int s = 0; s < VKR_MAX_PARAMS; s++) {
            const vkr_tensor *T = vkr_model_param(g->m, j, s);
            if (!T) continue;
            vkr_buffer *b[2] = {g->moment1 ? g->moment1[j][s] : NULL, g->moment2 ? g->moment2[j][s] : NULL};
            const char *nm[2] = {adam ? "m" : "velocity", "v"};
            for (int q = 0; q < 2; q++)
                if (b[q]) {
                    snprintf(e[k].name, sizeof e[k].name, "%s/%s", T->name, nm[q]);
                    e[k].buf = b[q];
                    e[k].count = T->count;
                    k++;
                }
        }
    *out = e;
    *n = k;
    return VKR_OK;
}

typedef struct {
    const char *hdr;
    uint64_t hlen, padded;
    opt_entry *e;
    int n;
} opt_w;

static vkr_status write_opt(FILE *f, void *ud) {
    opt_w *w = ud;
    unsigned char lb[8];
    for (int i = 0; i < 8; i++) lb[i] = (unsigned char)(w->padded >> (8 * i));
    if (fwrite(lb, 1, 8, f) != 8 || fwrite(w->hdr, 1, w->hlen, f) != w->hlen) goto io;
    for (uint64_t i = w->hlen; i < w->padded; i++)
        if (fputc(' ', f) == EOF) goto io;
    for (int k = 0; k < w->n; k++) {
        float *d = malloc(w->e[k].count * sizeof(float));
        if (!d) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        vkr_status s = vkr_buffer_download(w->e[k].buf, 0, d, w->e[k].count * 4);
        size_t wr = s ? 0 : fwrite(d, 4, w->e[k].count, f);
        free(d);
        if (s) return s;
        if (wr != w->e[k].count) goto io;
    }
    return VKR_OK;
io:
    return vkr_fail(VKR_ERR_IO, "writing the optimizer state failed: %s", strerror(errno));
}

vkr_status vkr_graph_save_optimizer(vkr_graph *g, const char *path) {
    if (!g->o.training) return vkr_fail(VKR_ERR_INVALID, "save_optimizer: the graph is not a training graph");
    opt_entry *e;
    int n;
    vkr_status s = collect(g, &e, &n);
    if (s) return s;
    cJSON *h = cJSON_CreateObject();
    cJSON *meta = h ? cJSON_AddObjectToObject(h, "__metadata__") : NULL;
    if (!meta) {
        free(e);
        cJSON_Delete(h);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    char step[32];
    snprintf(step, sizeof step, "%u", g->step);
    int bad = 0; /* an adder failed (out of memory): no file with a field missing */
#define OK(x) (bad |= !(x))
    OK(cJSON_AddStringToObject(meta, "format", "vkrun-optimizer"));
    OK(cJSON_AddStringToObject(meta, "optimizer", g->o.optimizer == VKR_OPTIM_ADAM ? "adam" : "sgd"));
    OK(cJSON_AddStringToObject(meta, "step", step));
    uint64_t off = 0;
    for (int k = 0; k < n; k++) {
        cJSON *t, *sh, *of;
        OK(t = cJSON_AddObjectToObject(h, e[k].name));
        OK(cJSON_AddStringToObject(t, "dtype", "F32"));
        OK(sh = cJSON_AddArrayToObject(t, "shape"));
        OK(vkr__json_put(sh, NULL, cJSON_CreateNumber((double)e[k].count)));
        OK(of = cJSON_AddArrayToObject(t, "data_offsets"));
        OK(vkr__json_put(of, NULL, cJSON_CreateNumber((double)off)));
        OK(vkr__json_put(of, NULL, cJSON_CreateNumber((double)(off + 4 * e[k].count))));
        off += 4 * e[k].count;
    }
#undef OK
    char *txt = bad ? NULL : cJSON_PrintUnformatted(h);
    cJSON_Delete(h);
    if (!txt) {
        free(e);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    opt_w w = {txt, strlen(txt), 0, e, n};
    w.padded = (w.hlen + 8 + 7) / 8 * 8 - 8;
    s = vkr__atomic_write(path, write_opt, &w);
    free(txt);
    free(e);
    return s;
}

vkr_status vkr_graph_load_optimizer(vkr_graph *g, const char *path) {
    if (!g->o.training) return vkr_fail(VKR_ERR_INVALID, "load_optimizer: the graph is not a training graph");
    FILE *f = fopen(path, "rb");
    if (!f) return vkr_fail(VKR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    vkr_status s = VKR_OK;
    char *buf = NULL;
    cJSON *h = NULL;
    opt_entry *e = NULL;
    int n = 0;
    if (fseek(f, 0, SEEK_END)) {
        s = vkr_fail(VKR_ERR_IO, "%s: seek failed", path);
        goto done;
    }
    long sz = ftell(f);
    rewind(f);
    if (sz < 8) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: too short for an optimizer state file", path);
        goto done;
    }
    buf = malloc((size_t)sz + 1);
    if (!buf || fread(buf, 1, (size_t)sz, f) != (size_t)sz) {
        s = vkr_fail(VKR_ERR_IO, "%s: read failed", path);
        goto done;
    }
    uint64_t hl = 0;
    for (int i = 7; i >= 0; i--) hl = hl << 8 | (unsigned char)buf[i];
    if (hl < 2 || hl > (uint64_t)sz - 8) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: header length %llu impossible for %ld bytes", path, (unsigned long long)hl, sz);
        goto done;
    }
    h = cJSON_ParseWithLengthOpts(buf + 8, hl, NULL, 0);
    const cJSON *meta = h ? cJSON_GetObjectItemCaseSensitive(h, "__metadata__") : NULL;
    const cJSON *fmt = meta ? cJSON_GetObjectItemCaseSensitive(meta, "format") : NULL;
    const cJSON *opt = meta ? cJSON_GetObjectItemCaseSensitive(meta, "optimizer") : NULL;
    const cJSON *stp = meta ? cJSON_GetObjectItemCaseSensitive(meta, "step") : NULL;
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "vkrun-optimizer") || !cJSON_IsString(opt) ||
        !cJSON_IsString(stp)) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: not a vkrun optimizer state file", path);
        goto done;
    }
    const char *want = g->o.optimizer == VKR_OPTIM_ADAM ? "adam" : "sgd";
    if (strcmp(opt->valuestring, want)) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: state of optimizer %s, but this graph uses %s", path, opt->valuestring, want);
        goto done;
    }
    if ((s = collect(g, &e, &n))) goto done;
    int nfile = 0;
    for (const cJSON *x = h->child; x; x = x->next)
        if (strcmp(x->string, "__metadata__")) nfile++;
    if (nfile != n) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: holds %d state tensors but this graph trains %d (different model or freeze?)",
                     path, nfile, n);
        goto done;
    }
    uint64_t data0 = 8 + hl, dsize = (uint64_t)sz - data0, at = 0;
    char *end;
    errno = 0;
    unsigned long step = strtoul(stp->valuestring, &end, 10);
    if (*stp->valuestring < '0' || *stp->valuestring > '9' || *end || errno || step > UINT32_MAX) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: its step \"%.40s\" is not a count of optimizer steps", path, stp->valuestring);
        goto done;
    }
    for (int k = 0; k < n && !s; k++) {
        const cJSON *t = cJSON_GetObjectItemCaseSensitive(h, e[k].name);
        const cJSON *dt = t ? cJSON_GetObjectItemCaseSensitive(t, "dtype") : NULL;
        const cJSON *of = t ? cJSON_GetObjectItemCaseSensitive(t, "data_offsets") : NULL;
        if (!cJSON_IsString(dt) || strcmp(dt->valuestring, "F32") || !cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2) {
            s = vkr_fail(VKR_ERR_FORMAT, "%s: state \"%s\" missing or malformed", path, e[k].name);
            break;
        }
        double b = cJSON_GetArrayItem(of, 0)->valuedouble, en = cJSON_GetArrayItem(of, 1)->valuedouble;
        if (b < 0 || en < b || en - b != 4.0 * e[k].count || en > (double)dsize) {
            s = vkr_fail(VKR_ERR_FORMAT, "%s: state \"%s\" has the wrong size or lies outside the file", path, e[k].name);
            break;
        }
        if (b != (double)at) { /* written in the graph's order, back to back: anything else was moved (swapped) */
            s = vkr_fail(VKR_ERR_FORMAT, "%s: state \"%s\" lies at byte %.0f, where the file's layout has it at %llu "
                                         "(tensors swapped or moved: the file was edited)", path, e[k].name, b,
                         (unsigned long long)at);
            break;
        }
        at += 4 * e[k].count;
        float *d = malloc(e[k].count * sizeof(float));
        if (!d) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            break;
        }
        memcpy(d, buf + data0 + (uint64_t)b, e[k].count * 4);
        /* finite, and Adam's second moment (a mean of squares) >= 0: else the first step is NaN */
        int second = strlen(e[k].name) > 2 && !strcmp(e[k].name + strlen(e[k].name) - 2, "/v");
        for (uint64_t i = 0; i < e[k].count && !s; i++)
            if (!isfinite(d[i]) || (second && d[i] < 0))
                s = vkr_fail(VKR_ERR_FORMAT, "%s: state \"%s\" holds %g at element %llu (%s): the file is damaged or "
                                             "was edited", path, e[k].name, (double)d[i], (unsigned long long)i,
                             second ? "a second moment is finite and >= 0" : "optimizer state is finite");
        if (!s) s = vkr_buffer_upload(e[k].buf, 0, d, e[k].count * 4);
        free(d);
    }
    if (!s) g->step = (uint32_t)step;
done:
    free(e);
    cJSON_Delete(h);
    free(buf);
    fclose(f);
    return s;
}
