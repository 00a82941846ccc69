/* The table of layer kinds, generated from VKR_LAYER_LIST (include/vkrun_model.h), and the
 * public queries answered from it. */
#include "layers/layer.h"

#include <string.h>

#define DECLARE(NAME, name) extern const vkr_layer_kind vkr_layer_##name;
VKR_LAYER_LIST(DECLARE)
#undef DECLARE

#define ENTRY(NAME, name) [VKR_LAYER_##NAME] = &vkr_layer_##name,
static const vkr_layer_kind *const k_kinds[] = {VKR_LAYER_LIST(ENTRY)};
#undef ENTRY

_Static_assert(sizeof k_kinds / sizeof k_kinds[0] == VKR_LAYER_TYPE_COUNT, "one kind per layer type");
/* the values are in files and in the CLI's users' code: the list only grows at its end */
_Static_assert(VKR_LAYER_INPUT == 0 && VKR_LAYER_CONV2D == 1 && VKR_LAYER_BATCHNORM == 2 && VKR_LAYER_DENSE == 9 &&
                   VKR_LAYER_DROPOUT == 12,
               "layer type values are stable");

const vkr_layer_kind *vkr__layer_kind(vkr_layer_type t) {
    return (unsigned)t < VKR_LAYER_TYPE_COUNT ? k_kinds[t] : NULL;
}

const vkr_layer_kind *vkr__layer_kind_find(const char *name, vkr_layer_type *type) {
    for (int t = 0; name && t < VKR_LAYER_TYPE_COUNT; t++)
        if (!strcmp(name, k_kinds[t]->name)) {
            if (type) *type = (vkr_layer_type)t;
            return k_kinds[t];
        }
    return NULL;
}

int vkr__layer_is_softmax(const vkr_layer *L) {
    const vkr_layer_kind *K = vkr__layer_kind(L->type);
    return (K && K->softmax) || L->activation == VKR_ACT_SOFTMAX;
}

const char *vkr_layer_type_name(vkr_layer_type t) {
    const vkr_layer_kind *K = vkr__layer_kind(t);
    return K ? K->name : "?";
}

const char *vkr_param_slot_name(vkr_layer_type t, int slot) {
    const vkr_layer_kind *K = vkr__layer_kind(t);
    return K && slot >= 0 && slot < K->nparam ? K->param_names[slot] : NULL;
}

int vkr_param_slot_trainable(vkr_layer_type t, int slot) {
    const vkr_layer_kind *K = vkr__layer_kind(t);
    return K && slot >= 0 && slot < K->nparam && (K->trainable_slots >> slot & 1);
}
