/* swish: y = x * sigmoid(x) (SiLU); no fields. */
#include "layers/act_kind.h"

static vkr_act_params act_params(const vkr_layer *L) {
    (void)L;
    vkr_act_params a = {VKR_ACT_SWISH, 0, 0};
    return a;
}

VKR__ACT_KIND(swish, NULL, NULL);
