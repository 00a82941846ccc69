/* A model built from a graph JSON file alone (an architecture without weights):
 * every parameter tensor is initialized as vkr_model_append_json does
 * (Glorot-uniform weights from the seed, zero biases and BN beta/running mean,
 * unit BN gamma/running var), so vkrun can train a network from scratch. */
#include "vkrun_model.h"

#include <cJSON.h>
#include <errno.h>
#include <stdio.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

static char *read_text(const char *path, vkr_status *s) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        *s = vkr_fail(VKR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0 && (n = ftell(f)) >= 0 && n < (64l << 20) && fseek(f, 0, SEEK_SET) == 0 &&
        (buf = malloc((size_t)n + 1)) && fread(buf, 1, (size_t)n, f) == (size_t)n) {
        buf[n] = 0;
    } else {
        free(buf);
        buf = NULL;
        *s = vkr_fail(VKR_ERR_IO, "%s: cannot read (or larger than 64 MiB)", path);
    }
    fclose(f);
    return buf;
}

/* A positive whole number below 2^30, else -1 (2.7 channels is an error, not 2). */
static int whole(const cJSON *v) {
    if (!cJSON_IsNumber(v) || v->valuedouble != floor(v->valuedouble) || v->valuedouble < 1 || v->valuedouble > (1 << 30))
        return -1;
    return (int)v->valuedouble;
}

vkr_status vkr_model_from_graph_file(const char *path, uint64_t seed, vkr_model **out) {
    *out = NULL;
    vkr_status s = VKR_OK;
    char *text = read_text(path, &s);
    if (!text) return s;
    cJSON *g = cJSON_Parse(text);
    if (!g) { /* cJSON_GetErrorPtr points into text: report before freeing it */
        const char *at = cJSON_GetErrorPtr();
        s = vkr_fail(VKR_ERR_FORMAT, "%s: not valid JSON (at byte %lld, near \"%.40s\")", path,
                     at ? (long long)(at - text) : -1LL, at && *at ? at : "the end of the file");
        free(text);
        return s;
    }
    free(text);
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(g, "input");
    const cJSON *layers = cJSON_GetObjectItemCaseSensitive(g, "layers");
    const cJSON *ver = cJSON_GetObjectItemCaseSensitive(g, "version");
    const cJSON *name = cJSON_GetObjectItemCaseSensitive(g, "name");
    const cJSON *iname = cJSON_GetObjectItemCaseSensitive(in, "name");
    const cJSON *pre = cJSON_GetObjectItemCaseSensitive(in, "preprocess");
    int c = whole(cJSON_GetObjectItemCaseSensitive(in, "channels"));
    int h = whole(cJSON_GetObjectItemCaseSensitive(in, "height"));
    int w = whole(cJSON_GetObjectItemCaseSensitive(in, "width"));
    vkr_model *m = NULL;
    if (!cJSON_IsNumber(ver) || ver->valuedouble != 1)
        s = vkr_fail(VKR_ERR_FORMAT, "%s: graph \"version\" must be 1", path);
    else if (!cJSON_IsObject(in) || !cJSON_IsString(iname) || c < 1 || h < 1 || w < 1)
        s = vkr_fail(VKR_ERR_FORMAT, "%s: graph \"input\" needs name and positive whole channels, height, width", path);
    else if (!cJSON_IsArray(layers) || cJSON_GetArraySize(layers) < 2)
        s = vkr_fail(VKR_ERR_FORMAT, "%s: graph \"layers\" must list the input layer and at least one more", path);
    else
        s = vkr_model_new(cJSON_IsString(name) ? name->valuestring : "", iname->valuestring, c, h, w,
                          cJSON_IsString(pre) ? pre->valuestring : "none", &m);
    int i = 0;
    const cJSON *L;
    cJSON_ArrayForEach(L, layers) {
        if (s) break;
        const cJSON *ty = cJSON_GetObjectItemCaseSensitive(L, "type");
        if (i++ == 0) {
            if (!cJSON_IsString(ty) || strcmp(ty->valuestring, "input"))
                s = vkr_fail(VKR_ERR_FORMAT, "%s: layers[0] must be the input layer", path);
            continue;
        }
        char *txt = cJSON_PrintUnformatted(L);
        if (!txt) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            break;
        }
        s = vkr_model_append_json(m, txt, seed * 7919u + (uint64_t)i);
        free(txt);
        if (s) s = vkr_fail(s, "%s: layer %d: %s", path, i - 1, vkr_last_error());
    }
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(g, "classes");
    if (!s && cJSON_IsArray(cl)) {
        int n = cJSON_GetArraySize(cl);
        const char **names = calloc(n ? n : 1, sizeof *names);
        if (!names) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        for (int k = 0; !s && k < n; k++) {
            const cJSON *x = cJSON_GetArrayItem(cl, k);
            if (!cJSON_IsString(x)) s = vkr_fail(VKR_ERR_FORMAT, "%s: \"classes\" must be strings", path);
            else names[k] = x->valuestring;
        }
        if (!s) s = vkr_model_set_classes(m, n, names);
        free(names);
    }
    cJSON_Delete(g);
    if (s) {
        vkr_model_free(m);
        return s;
    }
    *out = m;
    return VKR_OK;
}

vkr_status vkr_model_open(const char *path, uint64_t seed, vkr_model **out) {
    size_t n = strlen(path);
    if (n > 5 && !strcmp(path + n - 5, ".json")) return vkr_model_from_graph_file(path, seed, out);
    return vkr_model_load(path, out);
}
