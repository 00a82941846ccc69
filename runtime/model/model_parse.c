/* Model files: safetensors container + graph JSON, parsed and validated. */
#include "model/model_internal.h"

#include <cJSON.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_HEADER (256ull << 20)

static const char *k_type_names[VKR_LAYER_TYPE_COUNT] = {
    "input", "conv2d", "batchnorm", "relu", "add", "zeropad", "maxpool",
    "avgpool", "gap", "dense", "concat", "softmax", "dropout"};

const char *vkr_layer_type_name(vkr_layer_type t) {
    return (unsigned)t < VKR_LAYER_TYPE_COUNT ? k_type_names[t] : "?";
}

/* ------------------------------------------------------------ JSON field helpers */

static vkr_status ferr(const char *where, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static vkr_status ferr(const char *where, const char *fmt, ...) {
    char msg[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return vkr_fail(VKR_ERR_FORMAT, "%s: %s", where, msg);
}

static int as_int(const cJSON *v, long long lo, long long hi, int *out) {
    if (!cJSON_IsNumber(v)) return 0;
    double d = v->valuedouble;
    if (!isfinite(d) || d != floor(d) || d < (double)lo || d > (double)hi) return 0;
    *out = (int)d;
    return 1;
}

/* Optional int field (default when absent). */
static vkr_status get_int(const cJSON *o, const char *key, int def, int required, long long lo, long long hi, int *out,
                          const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        if (required) return ferr(where, "missing field \"%s\"", key);
        *out = def;
        return VKR_OK;
    }
    if (!as_int(v, lo, hi, out)) return ferr(where, "field \"%s\" must be an integer in [%lld, %lld]", key, lo, hi);
    return VKR_OK;
}

static vkr_status get_num(const cJSON *o, const char *key, double def, double lo, double hi, double *out,
                          const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = def;
        return VKR_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return ferr(where, "field \"%s\" must be a number in [%g, %g]", key, lo, hi);
    *out = v->valuedouble;
    return VKR_OK;
}

static vkr_status get_bool(const cJSON *o, const char *key, int def, int *out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = def;
        return VKR_OK;
    }
    if (!cJSON_IsBool(v)) return ferr(where, "field \"%s\" must be true or false", key);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return VKR_OK;
}

/* int or [a, b] (both >= lo). */
static vkr_status get_pair(const cJSON *o, const char *key, const int *def, int lo, int out[2], const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        if (!def) return ferr(where, "missing field \"%s\"", key);
        out[0] = def[0];
        out[1] = def[1];
        return VKR_OK;
    }
    if (cJSON_IsNumber(v)) {
        if (!as_int(v, lo, 1 << 20, &out[0])) return ferr(where, "field \"%s\" must be an integer >= %d", key, lo);
        out[1] = out[0];
        return VKR_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !as_int(cJSON_GetArrayItem(v, 0), lo, 1 << 20, &out[0]) ||
        !as_int(cJSON_GetArrayItem(v, 1), lo, 1 << 20, &out[1]))
        return ferr(where, "field \"%s\" must be an integer or a list of 2 integers >= %d", key, lo);
    return VKR_OK;
}

static vkr_status get_pad4(const cJSON *v, int out[4], const char *key, const char *where) {
    if (cJSON_IsNumber(v)) {
        if (!as_int(v, 0, 1 << 20, &out[0])) return ferr(where, "field \"%s\" must be >= 0", key);
        out[1] = out[2] = out[3] = out[0];
        return VKR_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 4)
        return ferr(where, "field \"%s\" must be [top, bottom, left, right]", key);
    for (int i = 0; i < 4; i++)
        if (!as_int(cJSON_GetArrayItem(v, i), 0, 1 << 20, &out[i]))
            return ferr(where, "field \"%s\" must hold 4 integers >= 0", key);
    return VKR_OK;
}

static vkr_status get_padding(const cJSON *o, vkr_layer *L, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "padding");
    L->pad_mode = VKR_PAD_VALID;
    if (!v) return VKR_OK;
    if (cJSON_IsString(v)) {
        if (!strcmp(v->valuestring, "valid")) L->pad_mode = VKR_PAD_VALID;
        else if (!strcmp(v->valuestring, "same")) L->pad_mode = VKR_PAD_SAME;
        else return ferr(where, "padding \"%s\" unknown (valid, same or [t, b, l, r])", v->valuestring);
        return VKR_OK;
    }
    L->pad_mode = VKR_PAD_EXPLICIT;
    return get_pad4(v, L->pad, "padding", where);
}

static vkr_status get_activation(const cJSON *o, vkr_layer *L, int allow_softmax, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "activation");
    L->activation = VKR_ACT_LINEAR;
    if (!v) return VKR_OK;
    if (!cJSON_IsString(v)) return ferr(where, "field \"activation\" must be a string");
    if (!strcmp(v->valuestring, "linear")) L->activation = VKR_ACT_LINEAR;
    else if (!strcmp(v->valuestring, "relu")) L->activation = VKR_ACT_RELU;
    else if (allow_softmax && !strcmp(v->valuestring, "softmax")) L->activation = VKR_ACT_SOFTMAX;
    else
        return ferr(where, "activation \"%s\" not supported here (linear, relu%s)", v->valuestring,
                    allow_softmax ? ", softmax" : "");
    return VKR_OK;
}

void vkr__layer_clear(vkr_layer *L) {
    free(L->name);
    for (int i = 0; i < L->ninputs; i++) free(L->inputs[i]);
    free(L->inputs);
    free(L->input_idx);
    memset(L, 0, sizeof *L);
}

vkr_status vkr__parse_layer(const cJSON *obj, vkr_layer *L, const char *where0) {
    memset(L, 0, sizeof *L);
    for (int i = 0; i < VKR_MAX_PARAMS; i++) L->param[i] = -1;
    char where[512];
    if (!cJSON_IsObject(obj)) return ferr(where0, "a layer must be a JSON object");
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(obj, "name");
    if (!cJSON_IsString(jn) || !jn->valuestring[0]) return ferr(where0, "layer without a \"name\" string");
    size_t nl = strlen(jn->valuestring);
    if (nl > VKR_MAX_NAME)
        return ferr(where0, "layer name \"%.40s...\" is %zu bytes long; names may have at most %d", jn->valuestring, nl,
                    VKR_MAX_NAME);
    snprintf(where, sizeof where, "%s \"%s\"", where0, jn->valuestring);
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!cJSON_IsString(jt)) return ferr(where, "missing \"type\" string");
    int type = -1;
    for (int t = 0; t < VKR_LAYER_TYPE_COUNT; t++)
        if (!strcmp(jt->valuestring, k_type_names[t])) type = t;
    if (type < 0)
        return ferr(where, "unknown layer type \"%s\" (known: input conv2d batchnorm relu add zeropad maxpool avgpool "
                           "gap dense concat softmax dropout)",
                    jt->valuestring);
    L->type = (vkr_layer_type)type;
    L->name = vkr__strdup(jn->valuestring);
    if (!L->name) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    snprintf(where, sizeof where, "%s \"%s\" (%s)", where0, L->name, k_type_names[type]);
    vkr_status s;
    if ((s = get_bool(obj, "trainable", 1, &L->trainable, where))) return s;

    const cJSON *ji = cJSON_GetObjectItemCaseSensitive(obj, "inputs");
    if (L->type == VKR_LAYER_INPUT) {
        if (ji && !(cJSON_IsArray(ji) && cJSON_GetArraySize(ji) == 0))
            return ferr(where, "an input layer takes no \"inputs\"");
    } else {
        if (!cJSON_IsArray(ji) || cJSON_GetArraySize(ji) == 0) return ferr(where, "missing \"inputs\" list");
        int n = cJSON_GetArraySize(ji);
        int want_lo = 1, want_hi = 1;
        if (L->type == VKR_LAYER_ADD) want_lo = want_hi = 2;
        if (L->type == VKR_LAYER_CONCAT) want_lo = 2, want_hi = 1 << 16;
        if (n < want_lo || n > want_hi) {
            if (want_lo == want_hi) return ferr(where, "takes %d input%s, has %d", want_lo, want_lo > 1 ? "s" : "", n);
            return ferr(where, "takes at least %d inputs, has %d", want_lo, n);
        }
        L->inputs = calloc(n, sizeof *L->inputs);
        L->input_idx = calloc(n, sizeof *L->input_idx);
        if (!L->inputs || !L->input_idx) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        L->ninputs = n;
        for (int i = 0; i < n; i++) {
            const cJSON *x = cJSON_GetArrayItem(ji, i);
            if (!cJSON_IsString(x)) return ferr(where, "\"inputs\" must hold layer names (strings)");
            if (!(L->inputs[i] = vkr__strdup(x->valuestring))) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            L->input_idx[i] = -1;
        }
    }
    static const int one[2] = {1, 1};
    switch (L->type) {
    case VKR_LAYER_CONV2D:
        L->nparam = 2;
        if ((s = get_int(obj, "filters", 0, 1, 1, 1 << 20, &L->filters, where)) ||
            (s = get_pair(obj, "kernel", NULL, 1, L->kernel, where)) ||
            (s = get_pair(obj, "strides", one, 1, L->strides, where)) || (s = get_padding(obj, L, where)) ||
            (s = get_bool(obj, "use_bias", 1, &L->use_bias, where)) || (s = get_activation(obj, L, 0, where)))
            return s;
        break;
    case VKR_LAYER_DENSE:
        L->nparam = 2;
        if ((s = get_int(obj, "units", 0, 1, 1, 1 << 24, &L->filters, where)) ||
            (s = get_bool(obj, "use_bias", 1, &L->use_bias, where)) || (s = get_activation(obj, L, 1, where)))
            return s;
        break;
    case VKR_LAYER_BATCHNORM:
        L->nparam = 4;
        if ((s = get_num(obj, "epsilon", 1e-3, 0, 1, &L->epsilon, where)) ||
            (s = get_num(obj, "momentum", 0.99, 0, 1, &L->momentum, where)))
            return s;
        if (L->epsilon <= 0) return ferr(where, "epsilon must be > 0");
        break;
    case VKR_LAYER_ZEROPAD: {
        const cJSON *v = cJSON_GetObjectItemCaseSensitive(obj, "padding");
        if (!v) return ferr(where, "missing field \"padding\"");
        L->pad_mode = VKR_PAD_EXPLICIT;
        if ((s = get_pad4(v, L->pad, "padding", where))) return s;
        break;
    }
    case VKR_LAYER_MAXPOOL:
    case VKR_LAYER_AVGPOOL:
        if ((s = get_pair(obj, "pool", NULL, 1, L->kernel, where)) ||
            (s = get_pair(obj, "strides", L->kernel, 1, L->strides, where)) || (s = get_padding(obj, L, where)))
            return s;
        if (L->type == VKR_LAYER_AVGPOOL && (s = get_bool(obj, "count_include_pad", 0, &L->count_include_pad, where)))
            return s;
        break;
    case VKR_LAYER_DROPOUT:
        if ((s = get_num(obj, "rate", 0, 0, 1, &L->rate, where))) return s;
        if (L->rate >= 1) return ferr(where, "rate must be in [0, 1)");
        break;
    default:
        break;
    }
    return VKR_OK;
}

/* ------------------------------------------------------------ linking and checks */

static int find_tensor_from(const vkr_model *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}

vkr_status vkr__model_link(vkr_model *m, int create_from, uint64_t seed) {
    const char *lab = vkr__model_label(m);
    if (m->nlayers < 1 || m->layers[0].type != VKR_LAYER_INPUT)
        return vkr_fail(VKR_ERR_FORMAT, "%s: layers[0] must be the input layer", lab);
    for (int i = 0; i < m->nlayers; i++) {
        vkr_layer *L = &m->layers[i];
        if (i > 0 && L->type == VKR_LAYER_INPUT)
            return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\": only layers[0] may be an input layer", lab, i, L->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(m->layers[j].name, L->name))
                return vkr_fail(VKR_ERR_FORMAT, "%s: duplicate layer name \"%s\" (layers %d and %d)", lab, L->name, j, i);
    }
    for (int i = 0; i < m->nlayers; i++) {
        vkr_layer *L = &m->layers[i];
        for (int k = 0; k < L->ninputs; k++) {
            int found = -1;
            for (int j = 0; j < m->nlayers; j++)
                if (!strcmp(m->layers[j].name, L->inputs[k])) found = j;
            if (found < 0)
                return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\": input \"%s\" is not a layer of the model", lab, i,
                                L->name, L->inputs[k]);
            if (found == i)
                return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\" takes itself as input (cycle)", lab, i, L->name);
            if (found > i)
                return vkr_fail(VKR_ERR_FORMAT,
                                "%s: layer %d \"%s\": input \"%s\" is layer %d, defined later (layers must follow their "
                                "inputs; a cycle is not allowed)",
                                lab, i, L->name, L->inputs[k], found);
            L->input_idx[k] = found;
        }
    }
    /* parameters */
    int *used = calloc(m->ntensors + 1, sizeof *used);
    if (!used) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    vkr_status s = VKR_OK;
    for (int i = 0; i < m->nlayers && !s; i++) {
        vkr_layer *L = &m->layers[i];
        for (int k = 0; k < VKR_MAX_PARAMS; k++) L->param[k] = -1;
        for (int k = 0; k < L->nparam && !s; k++) {
            const char *pn = vkr_param_slot_name(L->type, k);
            char name[1024];
            snprintf(name, sizeof name, "%s.%s", L->name, pn);
            int t = find_tensor_from(m, name);
            int optional = k == VKR_PARAM_BIAS && (L->type == VKR_LAYER_CONV2D || L->type == VKR_LAYER_DENSE);
            int wanted = !optional || L->use_bias;
            if (!wanted) {
                if (t >= 0)
                    s = vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\" present but layer \"%s\" has use_bias false", lab,
                                 name, L->name);
                continue;
            }
            if (t < 0) {
                if (i >= create_from) L->param[k] = -2;
                else
                    s = vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\" (%s) needs tensor \"%s\", which is missing", lab, i,
                                 L->name, vkr_layer_type_name(L->type), name);
                continue;
            }
            L->param[k] = t;
            used[t]++;
        }
    }
    for (int t = 0; t < m->ntensors && !s; t++)
        if (!used[t])
            s = vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\" is not used by any layer (expected \"<layer>.<param>\")", lab,
                         m->tensors[t].name);
    free(used);
    if (s) return s;
    int h = m->shape_h ? m->shape_h : m->in_h, w = m->shape_w ? m->shape_w : m->in_w;
    return vkr__infer(m, h, w, seed);
}

/* ------------------------------------------------------------ file reading */

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
        s = ferr(where, "must be a JSON object");
        goto done;
    }
    if ((s = get_int(g, "version", 0, 1, 0, 1 << 30, &version, where))) goto done;
    if (version != 1) {
        s = ferr(where, "version %d is not supported (this vkrun reads version 1)", version);
        goto done;
    }
    const cJSON *v;
    if (((v = cJSON_GetObjectItemCaseSensitive(g, "name")) && cJSON_IsString(v) && !(m->name = vkr__strdup(v->valuestring))) ||
        ((v = cJSON_GetObjectItemCaseSensitive(g, "source")) && cJSON_IsString(v) && !(m->source = vkr__strdup(v->valuestring))))
        goto oom;
    const cJSON *in = cJSON_GetObjectItemCaseSensitive(g, "input");
    if (!cJSON_IsObject(in)) {
        s = ferr(where, "missing \"input\" object");
        goto done;
    }
    snprintf(where, sizeof where, "%s: graph input", path);
    if ((s = get_int(in, "channels", 0, 1, 1, 1 << 20, &m->in_c, where)) ||
        (s = get_int(in, "height", 0, 1, 1, 1 << 20, &m->in_h, where)) ||
        (s = get_int(in, "width", 0, 1, 1, 1 << 20, &m->in_w, where)))
        goto done;
    v = cJSON_GetObjectItemCaseSensitive(in, "name");
    if (!cJSON_IsString(v)) {
        s = ferr(where, "missing \"name\"");
        goto done;
    }
    if (!(m->input_name = vkr__strdup(v->valuestring))) goto oom;
    v = cJSON_GetObjectItemCaseSensitive(in, "preprocess");
    if (v && !cJSON_IsString(v)) {
        s = ferr(where, "\"preprocess\" must be a string");
        goto done;
    }
    if (!(m->preprocess = vkr__strdup(v ? v->valuestring : "none"))) goto oom;
    if (strcmp(m->preprocess, "caffe") && strcmp(m->preprocess, "torch") && strcmp(m->preprocess, "none")) {
        s = ferr(where, "preprocess \"%s\" unknown (caffe, torch, none)", m->preprocess);
        goto done;
    }
    const cJSON *cl = cJSON_GetObjectItemCaseSensitive(g, "classes");
    if (cl) {
        snprintf(where, sizeof where, "%s: graph", path);
        if (!cJSON_IsArray(cl)) {
            s = ferr(where, "\"classes\" must be a list of strings");
            goto done;
        }
        int n = cJSON_GetArraySize(cl);
        m->classes = calloc(n ? n : 1, sizeof *m->classes);
        if (!m->classes) goto oom;
        for (int i = 0; i < n; i++) {
            const cJSON *x = cJSON_GetArrayItem(cl, i);
            if (!cJSON_IsString(x)) {
                s = ferr(where, "\"classes\" must be a list of strings");
                goto done;
            }
            if (!(m->classes[m->nclasses] = vkr__strdup(x->valuestring))) goto oom;
            m->nclasses++;
        }
    }
    const cJSON *ly = cJSON_GetObjectItemCaseSensitive(g, "layers");
    snprintf(where, sizeof where, "%s: graph", path);
    if (!cJSON_IsArray(ly) || cJSON_GetArraySize(ly) == 0) {
        s = ferr(where, "missing \"layers\" list");
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
    if (m->layers[0].type != VKR_LAYER_INPUT) {
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
    uint64_t fsize = (uint64_t)st.st_size;
    vkr_status s = VKR_OK;
    char *hdr = NULL;
    cJSON *root = NULL;
    span *spans = NULL;
    vkr_model *m = calloc(1, sizeof *m);
    if (!m || !(m->path = vkr__strdup(path))) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    if (fsize < 8) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: file is %llu bytes, too short for a model file (8-byte header length missing)",
                     path, (unsigned long long)fsize);
        goto fail;
    }
    unsigned char lenb[8];
    if ((s = read_at(fd, lenb, 8, 0, path))) goto fail;
    uint64_t hlen = 0;
    for (int i = 7; i >= 0; i--) hlen = hlen << 8 | lenb[i];
    if (hlen < 2 || hlen > fsize - 8 || hlen > MAX_HEADER) {
        s = vkr_fail(VKR_ERR_FORMAT,
                     "%s: header length %llu is impossible for a file of %llu bytes (not a safetensors file, or truncated)",
                     path, (unsigned long long)hlen, (unsigned long long)fsize);
        goto fail;
    }
    hdr = malloc(hlen + 1);
    if (!hdr) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    if ((s = read_at(fd, hdr, hlen, 8, path))) goto fail;
    hdr[hlen] = 0;
    const char *end = NULL;
    root = cJSON_ParseWithLengthOpts(hdr, hlen, &end, 0);
    if (!root) {
        const char *e = cJSON_GetErrorPtr();
        if (e && e >= hdr && e <= hdr + hlen)
            s = vkr_fail(VKR_ERR_FORMAT, "%s: the header is not valid JSON (parse error at byte %lld)", path,
                         (long long)(e - hdr) + 8);
        else
            s = vkr_fail(VKR_ERR_FORMAT, "%s: the header is not valid JSON", path);
        goto fail;
    }
    if (!cJSON_IsObject(root)) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: the header is JSON but not an object (a safetensors header maps tensor names "
                                     "to their dtype, shape and offsets)", path);
        goto fail;
    }
    for (const char *p = end; p && p < hdr + hlen; p++)
        if (*p != ' ' && *p != '\n' && *p != '\r' && *p != '\t' && *p != 0) {
            s = vkr_fail(VKR_ERR_FORMAT, "%s: unexpected bytes after the header JSON (at byte %lld)", path,
                         (long long)(p - hdr) + 8);
            goto fail;
        }
    uint64_t data_off = 8 + hlen, data_size = fsize - data_off;
    /* metadata */
    const cJSON *meta = cJSON_GetObjectItemCaseSensitive(root, "__metadata__");
    if (!cJSON_IsObject(meta)) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: no \"__metadata__\" object: not a vkrun model (plain safetensors?)", path);
        goto fail;
    }
    const cJSON *fmt = cJSON_GetObjectItemCaseSensitive(meta, "format");
    if (!cJSON_IsString(fmt) || strcmp(fmt->valuestring, "vkrun")) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: __metadata__.format is not \"vkrun\"", path);
        goto fail;
    }
    const cJSON *gr = cJSON_GetObjectItemCaseSensitive(meta, "vkrun_graph");
    if (!cJSON_IsString(gr)) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: __metadata__.vkrun_graph (the graph JSON, as a string) is missing", path);
        goto fail;
    }
    int nmeta = 0;
    for (const cJSON *x = meta->child; x; x = x->next) nmeta++;
    m->meta = calloc(nmeta ? nmeta : 1, sizeof *m->meta);
    if (!m->meta) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    for (const cJSON *x = meta->child; x; x = x->next) {
        if (!cJSON_IsString(x)) {
            s = vkr_fail(VKR_ERR_FORMAT, "%s: __metadata__ value \"%s\" is not a string", path, x->string);
            goto fail;
        }
        if (!strcmp(x->string, "format") || !strcmp(x->string, "vkrun_graph")) continue;
        vkr_meta *e = &m->meta[m->nmeta++]; /* counted now: vkr_model_free frees what was copied */
        e->key = vkr__strdup(x->string);
        e->value = vkr__strdup(x->valuestring);
        if (!e->key || !e->value) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            goto fail;
        }
    }
    if ((s = parse_graph(m, gr->valuestring, path))) goto fail;
    /* tensors */
    int nt = 0;
    for (const cJSON *x = root->child; x; x = x->next)
        if (strcmp(x->string, "__metadata__")) nt++;
    m->tensors = calloc(nt ? nt : 1, sizeof *m->tensors);
    spans = calloc(nt ? nt : 1, sizeof *spans);
    if (!m->tensors || !spans) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        goto fail;
    }
    for (const cJSON *x = root->child; x; x = x->next) {
        if (!strcmp(x->string, "__metadata__")) continue;
        for (int j = 0; j < m->ntensors; j++)
            if (!strcmp(m->tensors[j].name, x->string)) {
                s = vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\" appears twice in the header", path, x->string);
                goto fail;
            }
        vkr_tensor *T = &m->tensors[m->ntensors];
        if (!(T->name = vkr__strdup(x->string))) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            goto fail;
        }
        m->ntensors++;
        span *sp = &spans[m->ntensors - 1];
        sp->idx = m->ntensors - 1;
        if ((s = parse_tensor(x, T, data_size, &sp->begin, &sp->end, path))) goto fail;
    }
    qsort(spans, m->ntensors, sizeof *spans, span_cmp);
    for (int i = 0, prev = -1; i < m->ntensors; i++) {
        if (spans[i].end == spans[i].begin) continue; /* empty tensors occupy nothing */
        if (prev >= 0 && spans[i].begin < spans[prev].end) {
            s = vkr_fail(VKR_ERR_FORMAT, "%s: tensors \"%s\" [%llu, %llu) and \"%s\" [%llu, %llu) overlap in the data section",
                         path, m->tensors[spans[prev].idx].name, (unsigned long long)spans[prev].begin,
                         (unsigned long long)spans[prev].end, m->tensors[spans[i].idx].name,
                         (unsigned long long)spans[i].begin, (unsigned long long)spans[i].end);
            goto fail;
        }
        if (prev < 0 || spans[i].end > spans[prev].end) prev = i;
    }
    /* structure and shapes before reading the data */
    if ((s = vkr__model_link(m, m->nlayers + 1, 0))) goto fail;
    for (int i = 0; i < m->ntensors; i++) {
        vkr_tensor *T = &m->tensors[spans[i].idx];
        T->data = malloc(T->count ? T->count * 4 : 4);
        if (!T->data) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory (tensor \"%s\", %llu bytes)", T->name,
                         (unsigned long long)T->count * 4);
            goto fail;
        }
        if ((s = read_at(fd, T->data, T->count * 4, data_off + spans[i].begin, path))) goto fail;
        for (uint64_t k = 0; k < T->count; k++)
            if (!isfinite(T->data[k])) {
                s = vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\" holds a non-finite value (%g at element %llu)", path,
                             T->name, (double)T->data[k], (unsigned long long)k);
                goto fail;
            }
    }
    free(spans);
    free(hdr);
    cJSON_Delete(root);
    close(fd);
    *out = m;
    return VKR_OK;
fail:
    free(spans);
    free(hdr);
    cJSON_Delete(root);
    close(fd);
    vkr_model_free(m);
    return s;
}
