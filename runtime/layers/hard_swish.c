/* hard_swish: y = x * max(0, min(1, x/6 + 1/2)) (torch Hardswish); no fields. */
#include "layers/act_kind.h"

static vkr_act_params act_params(const vkr_layer *L) {
    (void)L;
    vkr_act_params a = {VKR_ACT_HARD_SWISH, 0, 0};
    return a;
}

VKR__ACT_KIND(hard_swish, NULL, NULL);
