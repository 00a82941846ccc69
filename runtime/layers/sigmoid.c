/* sigmoid: y = 1 / (1 + exp(-x)); no fields. */
#include "layers/act_kind.h"

static vkr_act_params act_params(const vkr_layer *L) {
    (void)L;
    vkr_act_params a = {VKR_ACT_SIGMOID, 0, 0};
    return a;
}

VKR__ACT_KIND(sigmoid, NULL, NULL);
