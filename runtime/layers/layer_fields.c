/* Graph-JSON field readers and writers for the layer kinds' parse / to_json (messages name the
 * file, the layer and the field). */
#include "layers/layer.h"

#include <cJSON.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

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

int vkr__json_add_pair(cJSON *o, const char *key, const int v[2]) {
    int a[2] = {v[0], v[1]};
    return !vkr__json_put(o, key, cJSON_CreateIntArray(a, 2));
}

int vkr__json_add_padding(cJSON *o, const vkr_layer *L) {
    cJSON *p = L->pad_mode == VKR_PAD_SAME    ? cJSON_CreateString("same")
               : L->pad_mode == VKR_PAD_VALID ? cJSON_CreateString("valid")
                                              : cJSON_CreateIntArray(L->pad, 4);
    return !vkr__json_put(o, "padding", p);
}

int vkr__json_add_activation(cJSON *o, const vkr_layer *L) {
    static const char *acts[] = {"linear", "relu", "softmax"};
    return !vkr__json_put(o, "activation", cJSON_CreateString(acts[L->activation]));
}

int vkr__json_add_num(cJSON *o, const char *key, double v) { return !vkr__json_put(o, key, cJSON_CreateNumber(v)); }

int vkr__json_add_bool(cJSON *o, const char *key, int v) { return !vkr__json_put(o, key, cJSON_CreateBool(v)); }
