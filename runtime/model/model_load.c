/* Model files: the safetensors container and its graph JSON, read and validated (then linked
 * and shaped, model_link.c). */
#include "model/model_internal.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "layers/layer.h"

#define MAX_HEADER (256ull << 20)

static vkr_status read_at(int fd, void *dst, uint64_t size, uint64_t off, const char *path) {
    char *p = dst;
    while (size) {
        ssize_t r = pread(fd, p, size > (1u << 30) ? (1u << 30) : size, (off_t)off);
        if (r < 0) {
            if (errno == EINTR) continue;
            return vkr_fail(VKR_ERR_IO, "%s: read failed: %s", path, strerror(errno));
        }
        if (r == 0) return vkr_fail(VKR_ERR_FORMAT, "%s: file is truncated (unexpected end of file)", path);
        p += r;
        size -= (uint64_t)r;
        off += (uint64_t)r;
    }
    return VKR_OK;
}

typedef struct {
    uint64_t begin, end;
    int idx;
} span;

static int span_cmp(const void *a, const void *b) {
    const span *x = a, *y = b;
    return x->begin < y->begin ? -1 : x->begin > y->begin ? 1 : (x->end < y->end ? -1 : x->end > y->end);
}

static vkr_status parse_tensor(const cJSON *item, vkr_tensor *T, uint64_t data_size, uint64_t *begin, uint64_t *end,
                               const char *path) {
    const char *nm = item->string;
    if (!cJSON_IsObject(item)) return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\": header entry is not an object", path, nm);
    const cJSON *dt = cJSON_GetObjectItemCaseSensitive(item, "dtype");
    const cJSON *sh = cJSON_GetObjectItemCaseSensitive(item, "shape");
    const cJSON *of = cJSON_GetObjectItemCaseSensitive(item, "data_offsets");
    if (!cJSON_IsString(dt)) return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\": missing \"dtype\"", path, nm);
    if (strcmp(dt->valuestring, "F32"))
        return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\": dtype %s is not supported (vkrun reads F32 only)", path, nm,
                        dt->valuestring);
    if (!cJSON_IsArray(sh) || cJSON_GetArraySize(sh) > VKR_MAX_DIMS)
        return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\": \"shape\" must be a list of at most %d integers", path, nm,
                        VKR_MAX_DIMS);
    T->ndim = cJSON_GetArraySize(sh);
    uint64_t count = 1;
    for (int d = 0; d < T->ndim; d++) {
        const cJSON *v = cJSON_GetArrayItem(sh, d);
        if (!cJSON_IsNumber(v) || v->valuedouble < 0 || v->valuedouble != floor(v->valuedouble) || v->valuedouble > 4e9)
            return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\": shape entries must be integers >= 0", path, nm);
        T->shape[d] = (int64_t)v->valuedouble;
    }
    if (!vkr__shape_count(T->shape, T->ndim, 1ull << 40, &count))
        return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\": shape has more than 2^40 elements", path, nm);
    T->count = count;
    if (!cJSON_IsArray(of) || cJSON_GetArraySize(of) != 2)
        return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\": \"data_offsets\" must be [begin, end]", path, nm);
    double b = cJSON_GetArrayItem(of, 0)->valuedouble, e = cJSON_GetArrayItem(of, 1)->valuedouble;
    if (!cJSON_IsNumber(cJSON_GetArrayItem(of, 0)) || !cJSON_IsNumber(cJSON_GetArrayItem(of, 1)) || b < 0 || e < b ||
        b != floor(b) || e != floor(e) || e > 9e15)
        return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\": data_offsets must be integers with 0 <= begin <= end", path, nm);
    *begin = (uint64_t)b;
    *end = (uint64_t)e;
    if (*end - *begin != 4 * count)
        return vkr_fail(VKR_ERR_FORMAT,
                        "%s: tensor \"%s\": data_offsets [%llu, %llu] span %llu bytes but shape needs %llu (4 bytes x %llu)",
                        path, nm, (unsigned long long)*begin, (unsigned long long)*end,
                        (unsigned long long)(*end - *begin), (unsigned long long)(4 * count), (unsigned long long)count);
    if (*end > data_size)
        return vkr_fail(VKR_ERR_FORMAT,
                        "%s: tensor \"%s\": data_offsets [%llu, %llu] run past the end of the data section (%llu bytes; "
                        "file truncated?)",
                        path, nm, (unsigned long long)*begin, (unsigned long long)*end, (unsigned long long)data_size);
    return VKR_OK;
}

static vkr_status parse_graph(vkr_model *m, const char *text, const char *path) {
    cJSON *g = cJSON_Parse(text);
    if (!g) return vkr_fail(VKR_ERR_FORMAT, "%s: __metadata__.vkrun_graph is not valid JSON (near \"%.40s\")", path,
                            cJSON_GetErrorPtr() ? cJSON_GetErrorPtr() : "?");
    vkr_status s = VKR_OK;
    char where[600];
    snprintf(where, sizeof where, "%s: graph", path);
    int version = 0;
    if (!cJSON_IsObject(g)) {
        s = vkr__json_fail(where, "must be a JSON object");
        goto done;
    }
    if ((s = vkr__json_int(g, "version", 0, 1, 0, 1 << 30, &version, where))) goto done;
    if (version != 1) {
        s = vkr__json_fail(where, "version %d is not supported (this vkrun reads version 1)", version);
        goto done;
    }
    const cJSON *v;
    if (((v = cJSON_GetObjectItemCaseSensitive(g, "name")) && cJSON_IsString(v) && !(m->name = vkr__strdup(v->valuestring))) ||
        ((v = cJSON_GetObjectItemCaseSensitive(g, "source")) && cJSON_IsString(v) &&
         !(m->source = vkr__strdup(v->valuestring))))
        goto oom;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(g, "input");
    if (!cJSON_IsObject(in)) {
        s = vkr__json_fail(where, "missing \"input\" object");
        goto done;
    }
    snprintf(where, sizeof where, "%s: graph input", path);
    if ((s = vkr__json_int(in, "channels", 0, 1, 1, 1 << 20, &m->in_c, where)) ||
        (s = vkr__json_int(in, "height", 0, 1, 1, 1 << 20, &m->in_h, where)) ||
        (s = vkr__json_int(in, "width", 0, 1, 1, 1 << 20, &m->in_w, where)))
        goto done;
    v = cJSON_GetObjectItemCaseSensitive(in, "name");
    if (!cJSON_IsString(v)) {
        s = vkr__json_fail(where, "missing \"name\"");
        goto done;
    }
    if (!(m->input_name = vkr__strdup(v->valuestring))) goto oom;
    v = cJSON_GetObjectItemCaseSensitive(in, "preprocess");
    if (v && !cJSON_IsString(v)) {
        s = vkr__json_fail(where, "\"preprocess\" must be a string");
        goto done;
    }
    if (!(m->preprocess = vkr__strdup(v ? v->valuestring : "none"))) goto oom;
    if (strcmp(m->preprocess, "caffe") && strcmp(m->preprocess, "torch") && strcmp(m->preprocess, "none")) {
        s = vkr__json_fail(where, "preprocess \"%s\" unknown (caffe, torch, none)", m->preprocess);
        goto done;
    }
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(g, "classes");
    if (cl) {
        snprintf(where, sizeof where, "%s: graph", path);
        if (!cJSON_IsArray(cl)) {
            s = vkr__json_fail(where, "\"classes\" must be a list of strings");
            goto done;
        }
        int n = cJSON_GetArraySize(cl);
        m->classes = calloc(n ? n : 1, sizeof *m->classes);
        if (!m->classes) goto oom;
        for (int i = 0; i < n; i++) {
            const cJSON *x = cJSON_GetArrayItem(cl, i);
            if (!cJSON_IsString(x)) {
                s = vkr__json_fail(where, "\"classes\" must be a list of strings");
                goto done;
            }
            if (!(m->classes[m->nclasses] = vkr__strdup(x->valuestring))) goto oom;
            m->nclasses++;
        }
    }
    const cJSON *ly = cJSON_GetObjectItemCaseSensitive(g, "layers");
    snprintf(where, sizeof where, "%s: graph", path);
    if (!cJSON_IsArray(ly) || cJSON_GetArraySize(ly) == 0) {
        s = vkr__json_fail(where, "missing \"layers\" list");
        goto done;
    }
    int n = cJSON_GetArraySize(ly);
    m->layers = calloc(n, sizeof *m->layers);
    if (!m->layers) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        snprintf(where, sizeof where, "%s: layer %d", path, i);
        s = vkr__parse_layer(cJSON_GetArrayItem(ly, i), &m->layers[i], where);
        m->nlayers = i + 1;
        if (s) goto done;
    }
    if (!vkr__layer_kind(m->layers[0].type)->graph_input) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: layers[0] (\"%s\") must be the input layer", path, m->layers[0].name);
        goto done;
    }
    if (strcmp(m->layers[0].name, m->input_name)) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: input.name \"%s\" differs from the input layer's name \"%s\"", path,
                     m->input_name, m->layers[0].name);
        goto done;
    }
done:
    cJSON_Delete(g);
    return s;
oom:
    s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    goto done;
}

/* The 8-byte length and the JSON header: *hdr (its text, kept for cJSON's error offsets), *root. */
static vkr_status read_header(int fd, uint64_t fsize, const char *path, char **hdr, cJSON **root, uint64_t *data_off) {
    if (fsize < 8)
        return vkr_fail(VKR_ERR_FORMAT, "%s: file is %llu bytes, too short for a model file (8-byte header length missing)",
                        path, (unsigned long long)fsize);
    unsigned char lenb[8];
    vkr_status s = read_at(fd, lenb, 8, 0, path);
    if (s) return s;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    const char *foreign = vkr__foreign_format(lenb, 8);
    if (foreign && (hlen < 2 || hlen > fsize - 8 || hlen > MAX_HEADER))
        return vkr_fail(VKR_ERR_FORMAT, "%s is not a vkrun model: it is %s", path, foreign);
    if (hlen < 2 || hlen > fsize - 8 || hlen > MAX_HEADER)
        return vkr_fail(VKR_ERR_FORMAT,
                        "%s: header length %llu is impossible for a file of %llu bytes (not a safetensors file, or truncated)",
                        path, (unsigned long long)hlen, (unsigned long long)fsize);
    char *h = *hdr = malloc(hlen + 1);
    if (!h) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    if ((s = read_at(fd, h, hlen, 8, path))) return s;
    h[hlen] = 0;
    const char *end = NULL;
    *root = cJSON_ParseWithLengthOpts(h, hlen, &end, 0);
    if (!*root) {
        const char *e = cJSON_GetErrorPtr();
        if (e && e >= h && e <= h + hlen)
            return vkr_fail(VKR_ERR_FORMAT, "%s: the header is not valid JSON (parse error at byte %lld)", path,
                            (long long)(e - h) + 8);
        return vkr_fail(VKR_ERR_FORMAT, "%s: the header is not valid JSON", path);
    }
    if (!cJSON_IsObject(*root))
        return vkr_fail(VKR_ERR_FORMAT, "%s: the header is JSON but not an object (a safetensors header maps tensor names "
                                        "to their dtype, shape and offsets)", path);
    for (const char *p = end; p && p < h + hlen; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p != 0)
            return vkr_fail(VKR_ERR_FORMAT, "%s: unexpected bytes after the header JSON (at byte %lld)", path,
                            (long long)(p - h) + 8);
    *data_off = 8 + hlen;
    return VKR_OK;
}

/* __metadata__: the format, the graph (parsed into m), the other entries (kept). */
static vkr_status read_meta(vkr_model *m, const cJSON *root, const char *path) {
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    if (!cJSON_IsObject(meta))
        return vkr_fail(VKR_ERR_FORMAT, "%s: no \"__metadata__\" object: not a vkrun model (plain safetensors?)", path);
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(meta, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "vkrun"))
        return vkr_fail(VKR_ERR_FORMAT, "%s: __metadata__.format is not \"vkrun\"", path);
    const cJSON *gr = cJSON_GetObjectItemCaseSensitive(meta, "vkrun_graph");
    if (!cJSON_IsString(gr))
        return vkr_fail(VKR_ERR_FORMAT, "%s: __metadata__.vkrun_graph (the graph JSON, as a string) is missing", path);
    int nmeta = 0;
    for (const cJSON *x = meta->child; x; x = x->next) nmeta++;
    m->meta = calloc(nmeta ? nmeta : 1, sizeof *m->meta);
    if (!m->meta) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    for (const cJSON *x = meta->child; x; x = x->next) {
        if (!cJSON_IsString(x))
            return vkr_fail(VKR_ERR_FORMAT, "%s: __metadata__ value \"%s\" is not a string", path, x->string);
        if (!strcmp(x->string, "format") || !strcmp(x->string, "vkrun_graph")) continue;
        vkr_meta *e = &m->meta[m->nmeta++]; /* counted now: vkr_model_free frees what was copied */
        e->key = vkr__strdup(x->string);
        e->value = vkr__strdup(x->valuestring);
        if (!e->key || !e->value) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    return parse_graph(m, gr->valuestring, path);
}

/* The tensor entries of the header: names, shapes and data spans (*spans, sorted, checked apart). */
static vkr_status read_tensor_headers(vkr_model *m, const cJSON *root, uint64_t data_size, span **spans_out,
                                      const char *path) {
    int nt = 0;
    for (const cJSON *x = root->child; x; x = x->next)
        if (strcmp(x->string, "__metadata__")) nt++;
    m->tensors = calloc(nt ? nt : 1, sizeof *m->tensors);
    span *spans = *spans_out = calloc(nt ? nt : 1, sizeof *spans);
    if (!m->tensors || !spans) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    vkr_status s;
    for (const cJSON *x = root->child; x; x = x->next) {
        if (!strcmp(x->string, "__metadata__")) continue;
        for (int j = 0; j < m->ntensors; j++)
            if (!strcmp(m->tensors[j].name, x->string))
                return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\" appears twice in the header", path, x->string);
        vkr_tensor *T = &m->tensors[m->ntensors];
        if (!(T->name = vkr__strdup(x->string))) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        m->ntensors++;
        span *sp = &spans[m->ntensors - 1];
        sp->idx = m->ntensors - 1;
        if ((s = parse_tensor(x, T, data_size, &sp->begin, &sp->end, path))) return s;
    }
    qsort(spans, m->ntensors, sizeof *spans, span_cmp);
    for (int i = 0, prev = -1; i < m->ntensors; i++) {
        if (spans[i].end == spans[i].begin) continue; /* empty tensors occupy nothing */
        if (prev >= 0 && spans[i].begin < spans[prev].end)
            return vkr_fail(VKR_ERR_FORMAT,
                            "%s: tensors \"%s\" [%llu, %llu) and \"%s\" [%llu, %llu) overlap in the data section", path,
                            m->tensors[spans[prev].idx].name, (unsigned long long)spans[prev].begin,
                            (unsigned long long)spans[prev].end, m->tensors[spans[i].idx].name,
                            (unsigned long long)spans[i].begin, (unsigned long long)spans[i].end);
        if (prev < 0 || spans[i].end > spans[prev].end) prev = i;
    }
    return VKR_OK;
}

/* The tensors' data, in file order; every value finite. */
static vkr_status read_tensor_data(vkr_model *m, int fd, const span *spans, uint64_t data_off, const char *path) {
    for (int i = 0; i < m->ntensors; i++) {
        vkr_tensor *T = &m->tensors[spans[i].idx];
        T->data = malloc(T->count ? T->count * 4 : 4);
        if (!T->data)
            return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory (tensor \"%s\", %llu bytes)", T->name,
                            (unsigned long long)T->count * 4);
        vkr_status s = read_at(fd, T->data, T->count * 4, data_off + spans[i].begin, path);
        if (s) return s;
        for (uint64_t k = 0; k < T->count; k++)
            if (!isfinite(T->data[k]))
                return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\" holds a non-finite value (%g at element %llu)", path,
                                T->name, (double)T->data[k], (unsigned long long)k);
    }
    return VKR_OK;
}

vkr_status vkr_model_load(const char *path, vkr_model **out) {
    *out = NULL;
    {
        const uint32_t one = 1;
        if (*(const unsigned char *)&one != 1) return vkr_fail(VKR_ERR_UNSUPPORTED, "model files need a little-endian host");
    }
    int fd = open(path, O_RDONLY);
    if (fd < 0) return vkr_fail(VKR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) || !S_ISREG(st.st_mode)) {
        close(fd);
        return vkr_fail(VKR_ERR_IO, "%s: not a regular file", path);
    }
    uint64_t fsize = (uint64_t)st.st_size, data_off = 0;
    vkr_status s = VKR_OK;
    char *hdr = NULL;
    cJSON *root = NULL;
    span *spans = NULL;
    vkr_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = vkr__strdup(path))) s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    if (!s) s = read_header(fd, fsize, path, &hdr, &root, &data_off);
    if (!s) s = read_meta(m, root, path);
    if (!s) s = read_tensor_headers(m, root, fsize - data_off, &spans, path);
    if (!s) s = vkr__model_link(m, m->nlayers + 1, 0); /* structure and shapes before reading the data */
    if (!s) s = read_tensor_data(m, fd, spans, data_off, path);
    free(spans);
    free(hdr);
    cJSON_Delete(root);
    close(fd);
    if (s) {
        vkr_model_free(m);
        return s;
    }
    *out = m;
    return VKR_OK;
}
