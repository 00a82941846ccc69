/* Parameter initializers: a new tensor for a layer's slot, filled as its layer kind says
 * (Glorot-uniform weights from the seed, as Keras; zeros; ones). */
#include "model/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "layers/layer.h"

/* Glorot uniform (Keras default): limit = sqrt(6 / (fan_in + fan_out)); each layer its own stream. */
static void glorot(vkr_tensor *T, int li, uint64_t seed) {
    double rf = T->ndim == 4 ? (double)T->shape[2] * T->shape[3] : 1.0;
    double fan_out = T->shape[0] * rf, fan_in = T->shape[1] * rf;
    double lim = sqrt(6.0 / (fan_in + fan_out));
    vkr_rng r;
    vkr_rng_seed(&r, seed ^ (0x51ED2701ull * (uint64_t)(li + 1)));
    for (uint64_t i = 0; i < T->count; i++) T->data[i] = (float)((2 * vkr_rng_uniform(&r, 0, 1) - 1) * lim);
}

vkr_status vkr__param_create(vkr_model *m, int li, int slot, int ndim, const int64_t *shape, uint64_t seed) {
    vkr_layer *L = &m->layers[li];
    const vkr_layer_kind *K = vkr__layer_kind(L->type);
    vkr_tensor *nt = realloc(m->tensors, (m->ntensors + 1) * sizeof *nt);
    if (!nt) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    m->tensors = nt;
    vkr_tensor *T = &nt[m->ntensors];
    memset(T, 0, sizeof *T);
    const char *pn = K->param_names[slot];
    size_t len = strlen(L->name) + strlen(pn) + 2;
    T->name = malloc(len);
    if (!T->name) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    snprintf(T->name, len, "%s.%s", L->name, pn);
    T->ndim = ndim;
    T->count = 1;
    for (int d = 0; d < ndim; d++) {
        T->shape[d] = shape[d];
        T->count *= (uint64_t)shape[d];
    }
    T->data = calloc(T->count ? T->count : 1, sizeof(float));
    if (!T->data) {
        free(T->name);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    if (K->param_init[slot] == VKR_INIT_GLOROT) glorot(T, li, seed);
    else if (K->param_init[slot] == VKR_INIT_ONE)
        for (uint64_t i = 0; i < T->count; i++) T->data[i] = 1.0f;
    L->param[slot] = m->ntensors;
    m->ntensors++;
    return VKR_OK;
}
