/* input: the graph's input images [N, C, H, W] (layers[0] only; shape from the model). */
#include "layers/layer.h"

const vkr_layer_kind vkr_layer_input = {
    .name = "input",
    .min_inputs = 0,
    .max_inputs = 0,
    .graph_input = 1,
    .ref_forward = vkr__ref_copy_forward, /* in[0]: the images */
};
