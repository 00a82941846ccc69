/* Layers in the graph JSON: the fields every layer has (name, type, inputs, trainable) here,
 * the kind's own through its parse / to_json (field readers: layer_fields.c). */
#include "layers/layer.h"

#include <cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

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
    int bad = !vkr__json_put(o, "name", cJSON_CreateString(L->name));
    bad |= !vkr__json_put(o, "type", cJSON_CreateString(vkr_layer_type_name(L->type)));
    if (K && K->max_inputs > 0) {
        cJSON *in = cJSON_CreateArray();
        for (int i = 0; in && i < L->ninputs; i++) bad |= !vkr__json_put(in, NULL, cJSON_CreateString(L->inputs[i]));
        bad |= !vkr__json_put(o, "inputs", in);
    }
    bad |= vkr__json_add_bool(o, "trainable", L->trainable);
    if (K && K->to_json) bad |= K->to_json(L, o);
    if (bad) { /* an allocation failed: no layer with a field missing */
        cJSON_Delete(o);
        return NULL;
    }
    return o;
}
