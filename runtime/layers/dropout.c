/* dropout: identity in inference and in vkrun's training (its value is its input's; the rate is
 * kept in the file for the record). */
#include "layers/layer.h"

#include <cJSON.h>

static vkr_status parse(const cJSON *obj, vkr_layer *L, const char *where) {
    vkr_status s = vkr__json_num(obj, "rate", 0, 0, 1, &L->rate, where);
    if (s) return s;
    if (L->rate >= 1) return vkr__json_fail(where, "rate must be in [0, 1)");
    return VKR_OK;
}

static int to_json(const vkr_layer *L, cJSON *o) { return vkr__json_add_num(o, "rate", L->rate); }

const vkr_layer_kind vkr_layer_dropout = {
    .name = "dropout",
    .min_inputs = 1,
    .max_inputs = 1,
    .alias_input = 1,
    .pass_grad = 1,
    .parse = parse,
    .to_json = to_json,
    .backward = vkr__pass_grad,
    .ref_forward = vkr__ref_copy_forward,
    .ref_backward = vkr__ref_pass_backward,
};
