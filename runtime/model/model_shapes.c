/* Shape inference (each layer through its kind), parameter shape checks, FLOP counts. */
#include "model/model_internal.h"

#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"

static vkr_status check_param(vkr_model *m, int li, int slot, int ndim, const int64_t *shape, uint64_t seed) {
    vkr_layer *L = &m->layers[li];
    if (L->param[slot] == -1) return VKR_OK;
    uint64_t count;
    if (!vkr__shape_count(shape, ndim, 1ull << 34, &count))
        return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\" (%s): its %s would have more than 2^34 elements",
                        vkr__model_label(m), li, L->name, vkr_layer_type_name(L->type), vkr_param_slot_name(L->type, slot));
    if (L->param[slot] == -2) return vkr__param_create(m, li, slot, ndim, shape, seed);
    vkr_tensor *T = &m->tensors[L->param[slot]];
    int ok = T->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = T->shape[d] == shape[d];
    if (ok) return VKR_OK;
    char want[128] = "", got[128] = "";
    for (int d = 0; d < ndim; d++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "", (long long)shape[d]);
    for (int d = 0; d < T->ndim; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)T->shape[d]);
    return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\" has shape [%s] but layer %d \"%s\" (%s) needs [%s]",
                    vkr__model_label(m), T->name, got, li, L->name, vkr_layer_type_name(L->type), want);
}

/* The kind's shape function for layer i, then its parameter shapes checked (or created). */
static vkr_status infer_layer(vkr_model *m, int i, int64_t *c, int64_t *h, int64_t *w, int *rank, uint64_t seed) {
    vkr_layer *L = &m->layers[i];
    const vkr_layer_kind *K = vkr__layer_kind(L->type);
    if (!K) return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\": bad type", vkr__model_label(m), i, L->name);
    vkr_layer_infer I = {0};
    char where[1024];
    snprintf(where, sizeof where, "%s: layer %d \"%s\" (%s)", vkr__model_label(m), i, L->name, K->name);
    I.where = where;
    I.layers = m->layers;
    I.x = L->ninputs ? &m->layers[L->input_idx[0]] : NULL;
    I.c = *c, I.h = *h, I.w = *w, I.rank = *rank;
    if (K->needs_rank4 && I.rank != 4)
        return vkr_fail(VKR_ERR_FORMAT, "%s needs an [N, C, H, W] input but \"%s\" outputs [N, %d]", where, I.x->name,
                        (int)I.c);
    vkr_status s;
    if (K->infer && (s = K->infer(L, &I))) return s;
    for (int k = 0; k < K->nparam; k++)
        if ((s = check_param(m, i, k, I.pndim[k], I.pshape[k], seed))) return s;
    *c = I.c, *h = I.h, *w = I.w, *rank = I.rank;
    return VKR_OK;
}

vkr_status vkr__infer(vkr_model *m, int height, int width, uint64_t seed) {
    const char *lab = vkr__model_label(m);
    if (height < 1 || width < 1 || height > (1 << 20) || width > (1 << 20))
        return vkr_fail(VKR_ERR_INVALID, "%s: input size %dx%d is invalid", lab, height, width);
    for (int i = 0; i < m->nlayers; i++) {
        vkr_layer *L = &m->layers[i];
        const vkr_layer *X = L->ninputs ? &m->layers[L->input_idx[0]] : NULL;
        if (X) {
            L->in_c = X->out_c;
            L->in_h = X->out_h;
            L->in_w = X->out_w;
        }
        /* 64-bit while inferring: paddings and concatenations cannot wrap; checked before storing */
        int64_t c = X ? X->out_c : m->in_c, h = X ? X->out_h : height, w = X ? X->out_w : width;
        int rank = X ? X->out_rank : 4;
        vkr_status s = infer_layer(m, i, &c, &h, &w, &rank, seed);
        if (s) return s;
        const int64_t dim_max = 1 << 30;
        if (c > dim_max || h > dim_max || w > dim_max || (uint64_t)c * (uint64_t)h * (uint64_t)w > (1ull << 34))
            return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\": output [N, %lld, %lld, %lld] is too large", lab, i, L->name,
                            (long long)c, (long long)h, (long long)w);
        L->out_c = (int)c, L->out_h = (int)h, L->out_w = (int)w, L->out_rank = rank;
    }
    m->shape_h = height;
    m->shape_w = width;
    return VKR_OK;
}

vkr_status vkr_model_infer_shapes(vkr_model *m, int height, int width) {
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i].nparam; k++)
            if (m->layers[i].param[k] == -2)
                return vkr_fail(VKR_ERR_INVALID, "%s: layer \"%s\" has unresolved parameters", vkr__model_label(m),
                                m->layers[i].name);
    return vkr__infer(m, height, width, 0);
}

double vkr_model_layer_flops(const vkr_model *m, int i) {
    if (i < 0 || i >= m->nlayers) return 0;
    const vkr_layer *L = &m->layers[i];
    const vkr_layer_kind *K = vkr__layer_kind(L->type);
    return K && K->flops ? K->flops(L) : 0;
}

uint64_t vkr_model_layer_out_floats(const vkr_model *m, int i) {
    if (i < 0 || i >= m->nlayers) return 0;
    const vkr_layer *L = &m->layers[i];
    return (uint64_t)L->out_c * L->out_h * L->out_w;
}

void vkr_model_shape_str(const vkr_model *m, int i, char *buf, size_t n) {
    if (i < 0 || i >= m->nlayers) {
        snprintf(buf, n, "?");
        return;
    }
    const vkr_layer *L = &m->layers[i];
    if (L->out_rank == 2) snprintf(buf, n, "(N, %d)", L->out_c);
    else snprintf(buf, n, "(N, %d, %d, %d)", L->out_c, L->out_h, L->out_w);
}
