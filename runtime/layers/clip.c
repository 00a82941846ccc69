/* clip: y = min(max(x, min), max) (ReLU6 is clip 0..6); fields "min" and "max", both required. */
#include "layers/act_kind.h"

#include <cJSON.h>
#include <float.h>

static vkr_act_params act_params(const vkr_layer *L) {
    vkr_act_params a = {VKR_ACT_CLIP, (float)L->alpha, (float)L->beta};
    return a;
}

static vkr_status parse(const cJSON *obj, vkr_layer *L, const char *where) {
    if (!cJSON_GetObjectItemCaseSensitive(obj, "min") || !cJSON_GetObjectItemCaseSensitive(obj, "max"))
        return vkr__json_fail(where, "clip needs the fields \"min\" and \"max\"");
    vkr_status s;
    if ((s = vkr__json_num(obj, "min", 0, -FLT_MAX, FLT_MAX, &L->alpha, where)) ||
        (s = vkr__json_num(obj, "max", 0, -FLT_MAX, FLT_MAX, &L->beta, where)))
        return s;
    if (L->alpha > L->beta) return vkr__json_fail(where, "clip \"min\" %g is above \"max\" %g", L->alpha, L->beta);
    return VKR_OK;
}

static int to_json(const vkr_layer *L, cJSON *o) {
    return vkr__json_add_num(o, "min", L->alpha) | vkr__json_add_num(o, "max", L->beta);
}

VKR__ACT_KIND(clip, parse, to_json);
