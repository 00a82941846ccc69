/* Layers in the graph JSON: the fields every layer has (name, type, inputs, trainable), the
 * kind's own through its parse / to_json, and the field readers the kinds use. */
#include "layers/layer.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

vkr_status vkr__json_fail(const char *where, const char *fmt, ...) {
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

vkr_status vkr__json_int(const cJSON *o, const char *key, int def, int required, long long lo, long long hi, int *out,
                         const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        if (required) return vkr__json_fail(where, "missing field \"%s\"", key);
        *out = def;
        return VKR_OK;
    }
    if (!as_int(v, lo, hi, out))
        return vkr__json_fail(where, "field \"%s\" must be an integer in [%lld, %lld]", key, lo, hi);
    return VKR_OK;
}

vkr_status vkr__json_num(const cJSON *o, const char *key, double def, double lo, double hi, double *out,
                         const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = def;
        return VKR_OK;
    }
    if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble) || v->valuedouble < lo || v->valuedouble > hi)
        return vkr__json_fail(where, "field \"%s\" must be a number in [%g, %g]", key, lo, hi);
    *out = v->valuedouble;
    return VKR_OK;
}

vkr_status vkr__json_bool(const cJSON *o, const char *key, int def, int *out, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        *out = def;
        return VKR_OK;
    }
    if (!cJSON_IsBool(v)) return vkr__json_fail(where, "field \"%s\" must be true or false", key);
    *out = cJSON_IsTrue(v) ? 1 : 0;
    return VKR_OK;
}

vkr_status vkr__json_pair(const cJSON *o, const char *key, const int *def, int lo, int out[2], const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, key);
    if (!v) {
        if (!def) return vkr__json_fail(where, "missing field \"%s\"", key);
        out[0] = def[0];
        out[1] = def[1];
        return VKR_OK;
    }
    if (cJSON_IsNumber(v)) {
        if (!as_int(v, lo, 1 << 20, &out[0]))
            return vkr__json_fail(where, "field \"%s\" must be an integer >= %d", key, lo);
        out[1] = out[0];
        return VKR_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 2 || !as_int(cJSON_GetArrayItem(v, 0), lo, 1 << 20, &out[0]) ||
        !as_int(cJSON_GetArrayItem(v, 1), lo, 1 << 20, &out[1]))
        return vkr__json_fail(where, "field \"%s\" must be an integer or a list of 2 integers >= %d", key, lo);
    return VKR_OK;
}

vkr_status vkr__json_pad4(const cJSON *v, int out[4], const char *key, const char *where) {
    if (cJSON_IsNumber(v)) {
        if (!as_int(v, 0, 1 << 20, &out[0])) return vkr__json_fail(where, "field \"%s\" must be >= 0", key);
        out[1] = out[2] = out[3] = out[0];
        return VKR_OK;
    }
    if (!cJSON_IsArray(v) || cJSON_GetArraySize(v) != 4)
        return vkr__json_fail(where, "field \"%s\" must be [top, bottom, left, right]", key);
    for (int i = 0; i < 4; i++)
        if (!as_int(cJSON_GetArrayItem(v, i), 0, 1 << 20, &out[i]))
            return vkr__json_fail(where, "field \"%s\" must hold 4 integers >= 0", key);
    return VKR_OK;
}

vkr_status vkr__json_padding(const cJSON *o, vkr_layer *L, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "padding");
    L->pad_mode = VKR_PAD_VALID;
    if (!v) return VKR_OK;
    if (cJSON_IsString(v)) {
        if (!strcmp(v->valuestring, "valid")) L->pad_mode = VKR_PAD_VALID;
        else if (!strcmp(v->valuestring, "same")) L->pad_mode = VKR_PAD_SAME;
        else return vkr__json_fail(where, "padding \"%s\" unknown (valid, same or [t, b, l, r])", v->valuestring);
        return VKR_OK;
    }
    L->pad_mode = VKR_PAD_EXPLICIT;
    return vkr__json_pad4(v, L->pad, "padding", where);
}

vkr_status vkr__json_activation(const cJSON *o, vkr_layer *L, int allow_softmax, const char *where) {
    const cJSON *v = cJSON_GetObjectItemCaseSensitive(o, "activation");
    L->activation = VKR_ACT_LINEAR;
    if (!v) return VKR_OK;
    if (!cJSON_IsString(v)) return vkr__json_fail(where, "field \"activation\" must be a string");
    if (!strcmp(v->valuestring, "linear")) L->activation = VKR_ACT_LINEAR;
    else if (!strcmp(v->valuestring, "relu")) L->activation = VKR_ACT_RELU;
    else if (allow_softmax && !strcmp(v->valuestring, "softmax")) L->activation = VKR_ACT_SOFTMAX;
    else
        return vkr__json_fail(where, "activation \"%s\" not supported here (linear, relu%s)", v->valuestring,
                              allow_softmax ? ", softmax" : "");
    return VKR_OK;
}

void vkr__json_add_pair(cJSON *o, const char *key, const int v[2]) {
    int a[2] = {v[0], v[1]};
    cJSON_AddItemToObject(o, key, cJSON_CreateIntArray(a, 2));
}

void vkr__json_add_padding(cJSON *o, const vkr_layer *L) {
    cJSON *p = L->pad_mode == VKR_PAD_SAME    ? cJSON_CreateString("same")
               : L->pad_mode == VKR_PAD_VALID ? cJSON_CreateString("valid")
                                              : cJSON_CreateIntArray(L->pad, 4);
    cJSON_AddItemToObject(o, "padding", p);
}

void vkr__json_add_activation(cJSON *o, const vkr_layer *L) {
    static const char *acts[] = {"linear", "relu", "softmax"};
    cJSON_AddStringToObject(o, "activation", acts[L->activation]);
}

void vkr__layer_clear(vkr_layer *L) {
    free(L->name);
    for (int i = 0; i < L->ninputs; i++) free(L->inputs[i]);
    free(L->inputs);
    free(L->input_idx);
    memset(L, 0, sizeof *L);
}

static vkr_status parse_inputs(const cJSON *obj, vkr_layer *L, const vkr_layer_kind *K, const char *where) {
    const cJSON *ji = cJSON_GetObjectItemCaseSensitive(obj, "inputs");
    if (K->max_inputs == 0) {
        if (ji && !(cJSON_IsArray(ji) && cJSON_GetArraySize(ji) == 0))
            return vkr__json_fail(where, "an %s layer takes no \"inputs\"", K->name);
        return VKR_OK;
    }
    if (!cJSON_IsArray(ji) || cJSON_GetArraySize(ji) == 0) return vkr__json_fail(where, "missing \"inputs\" list");
    int n = cJSON_GetArraySize(ji);
    if (n < K->min_inputs || n > K->max_inputs) {
        if (K->min_inputs == K->max_inputs)
            return vkr__json_fail(where, "takes %d input%s, has %d", K->min_inputs, K->min_inputs > 1 ? "s" : "", n);
        return vkr__json_fail(where, "takes at least %d inputs, has %d", K->min_inputs, n);
    }
    L->inputs = calloc(n, sizeof *L->inputs);
    L->input_idx = calloc(n, sizeof *L->input_idx);
    if (!L->inputs || !L->input_idx) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    L->ninputs = n;
    for (int i = 0; i < n; i++) {
        const cJSON *x = cJSON_GetArrayItem(ji, i);
        if (!cJSON_IsString(x)) return vkr__json_fail(where, "\"inputs\" must hold layer names (strings)");
        if (!(L->inputs[i] = vkr__strdup(x->valuestring))) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        L->input_idx[i] = -1;
    }
    return VKR_OK;
}

vkr_status vkr__parse_layer(const cJSON *obj, vkr_layer *L, const char *where0) {
    memset(L, 0, sizeof *L);
    for (int i = 0; i < VKR_MAX_PARAMS; i++) L->param[i] = -1;
    char where[512];
    if (!cJSON_IsObject(obj)) return vkr__json_fail(where0, "a layer must be a JSON object");
    const cJSON *jn = cJSON_GetObjectItemCaseSensitive(obj, "name");
    if (!cJSON_IsString(jn) || !jn->valuestring[0]) return vkr__json_fail(where0, "layer without a \"name\" string");
    size_t nl = strlen(jn->valuestring);
    if (nl > VKR_MAX_NAME)
        return vkr__json_fail(where0, "layer name \"%.40s...\" is %zu bytes long; names may have at most %d",
                              jn->valuestring, nl, VKR_MAX_NAME);
    snprintf(where, sizeof where, "%s \"%s\"", where0, jn->valuestring);
    const cJSON *jt = cJSON_GetObjectItemCaseSensitive(obj, "type");
    if (!cJSON_IsString(jt)) return vkr__json_fail(where, "missing \"type\" string");
    vkr_layer_type type;
    const vkr_layer_kind *K = vkr__layer_kind_find(jt->valuestring, &type);
    if (!K) {
        char known[512] = "";
        for (int t = 0; t < VKR_LAYER_TYPE_COUNT; t++)
            snprintf(known + strlen(known), sizeof known - strlen(known), "%s%s", t ? " " : "",
                     vkr_layer_type_name((vkr_layer_type)t));
        return vkr__json_fail(where, "unknown layer type \"%s\" (known: %s)", jt->valuestring, known);
    }
    L->type = type;
    L->nparam = K->nparam;
    L->name = vkr__strdup(jn->valuestring);
    if (!L->name) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    snprintf(where, sizeof where, "%s \"%s\" (%s)", where0, L->name, K->name);
    vkr_status s;
    if ((s = vkr__json_bool(obj, "trainable", 1, &L->trainable, where))) return s;
    if ((s = parse_inputs(obj, L, K, where))) return s;
    return K->parse ? K->parse(obj, L, where) : VKR_OK;
}

cJSON *vkr__layer_to_json(const vkr_layer *L) {
    const vkr_layer_kind *K = vkr__layer_kind(L->type);
    cJSON *o = cJSON_CreateObject();
    if (!o) return NULL;
    cJSON_AddStringToObject(o, "name", L->name);
    cJSON_AddStringToObject(o, "type", vkr_layer_type_name(L->type));
    if (K && K->max_inputs > 0) {
        cJSON *in = cJSON_AddArrayToObject(o, "inputs");
        for (int i = 0; i < L->ninputs; i++) cJSON_AddItemToArray(in, cJSON_CreateString(L->inputs[i]));
    }
    cJSON_AddBoolToObject(o, "trainable", L->trainable);
    if (K && K->to_json) K->to_json(L, o);
    return o;
}
