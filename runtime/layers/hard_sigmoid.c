/* hard_sigmoid: y = max(0, min(1, alpha*x + beta)); "alpha" (default 1/6, torch) and "beta"
 * (default 0.5). */
#include "layers/act_kind.h"

#include <cJSON.h>

static vkr_act_params act_params(const vkr_layer *L) {
    vkr_act_params a = {VKR_ACT_HARD_SIGMOID, (float)L->alpha, (float)L->beta};
    return a;
}

static vkr_status parse(const cJSON *obj, vkr_layer *L, const char *where) {
    vkr_status s;
    if ((s = vkr__json_num(obj, "alpha", 1.0 / 6.0, -1e30, 1e30, &L->alpha, where)) ||
        (s = vkr__json_num(obj, "beta", 0.5, -1e30, 1e30, &L->beta, where)))
        return s;
    if (L->alpha == 0) return vkr__json_fail(where, "hard_sigmoid \"alpha\" must not be 0");
    return VKR_OK;
}

static int to_json(const vkr_layer *L, cJSON *o) {
    return vkr__json_add_num(o, "alpha", L->alpha) | vkr__json_add_num(o, "beta", L->beta);
}

VKR__ACT_KIND(hard_sigmoid, parse, to_json);
