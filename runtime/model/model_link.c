/* Linking a model: layer names and inputs resolved to indices, parameter tensors to layer
 * slots (missing ones created for new layers), then shape inference (model_shapes.c). */
#include "model/model_internal.h"

#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"

static int is_input(const vkr_layer *L) {
    const vkr_layer_kind *K = vkr__layer_kind(L->type);
    return K && K->graph_input;
}

static int find_tensor_from(const vkr_model *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (!strcmp(m->tensors[i].name, name)) return i;
    return -1;
}

vkr_status vkr__model_link(vkr_model *m, int create_from, uint64_t seed) {
    const char *lab = vkr__model_label(m);
    if (m->nlayers < 1 || !is_input(&m->layers[0]))
        return vkr_fail(VKR_ERR_FORMAT, "%s: layers[0] must be the input layer", lab);
    for (int i = 0; i < m->nlayers; i++) {
        vkr_layer *L = &m->layers[i];
        if (i > 0 && is_input(L))
            return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\": only layers[0] may be an input layer", lab, i, L->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(m->layers[j].name, L->name))
                return vkr_fail(VKR_ERR_FORMAT, "%s: duplicate layer name \"%s\" (layers %d and %d)", lab, L->name, j, i);
    }
    for (int i = 0; i < m->nlayers; i++) {
        vkr_layer *L = &m->layers[i];
        for (int k = 0; k < L->ninputs; k++) {
            int found = -1;
            for (int j = 0; j < m->nlayers; j++)
                if (!strcmp(m->layers[j].name, L->inputs[k])) found = j;
            if (found < 0)
                return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\": input \"%s\" is not a layer of the model", lab, i,
                                L->name, L->inputs[k]);
            if (found == i)
                return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\" takes itself as input (cycle)", lab, i, L->name);
            if (found > i)
                return vkr_fail(VKR_ERR_FORMAT,
                                "%s: layer %d \"%s\": input \"%s\" is layer %d, defined later (layers must follow their "
                                "inputs; a cycle is not allowed)",
                                lab, i, L->name, L->inputs[k], found);
            L->input_idx[k] = found;
        }
    }
    /* parameters */
    int *used = calloc(m->ntensors + 1, sizeof *used);
    if (!used) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    vkr_status s = VKR_OK;
    for (int i = 0; i < m->nlayers && !s; i++) {
        vkr_layer *L = &m->layers[i];
        for (int k = 0; k < VKR_MAX_PARAMS; k++) L->param[k] = -1;
        for (int k = 0; k < L->nparam && !s; k++) {
            const char *pn = vkr_param_slot_name(L->type, k);
            char name[1024];
            snprintf(name, sizeof name, "%s.%s", L->name, pn);
            int t = find_tensor_from(m, name);
            int optional = k == VKR_PARAM_BIAS && vkr__layer_kind(L->type)->has_bias_slot;
            int wanted = !optional || L->use_bias;
            if (!wanted) {
                if (t >= 0)
                    s = vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\" present but layer \"%s\" has use_bias false", lab,
                                 name, L->name);
                continue;
            }
            if (t < 0) {
                if (i >= create_from) L->param[k] = -2;
                else
                    s = vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\" (%s) needs tensor \"%s\", which is missing", lab, i,
                                 L->name, vkr_layer_type_name(L->type), name);
                continue;
            }
            L->param[k] = t;
            used[t]++;
        }
    }
    for (int t = 0; t < m->ntensors && !s; t++)
        if (!used[t])
            s = vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\" is not used by any layer (expected \"<layer>.<param>\")", lab,
                         m->tensors[t].name);
    free(used);
    if (s) return s;
    int h = m->shape_h ? m->shape_h : m->in_h, w = m->shape_w ? m->shape_w : m->in_w;
    return vkr__infer(m, h, w, seed);
}

vkr_status vkr_model_validate(vkr_model *m) { return vkr__model_link(m, m->nlayers + 1, 0); }
