/* Internal helpers of the model layer (runtime/model*.c, npy.c, graph*.c). */
#ifndef VKRUN_MODEL_INTERNAL_H
#define VKRUN_MODEL_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "core/util.h"
#include "vkrun_model.h"

typedef struct cJSON cJSON;


/* Element count of a shape, checked: 0 when a dimension is negative or the product exceeds
 * `limit` (never wraps), else 1 with *count set. */
static inline int vkr__shape_count(const int64_t *shape, int ndim, uint64_t limit, uint64_t *count) {
    uint64_t n = 1;
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return 0;
        uint64_t k = (uint64_t)shape[d];
        if (k && n > limit / k) return 0;
        n *= k;
    }
    if (n > limit) return 0;
    *count = n;
    return 1;
}
/* Label used in messages: the file path, or "model <name>". */
const char *vkr__model_label(const vkr_model *m);


/* Parses one layer object of the graph JSON into *L (zeroed first); `where`
 * prefixes messages ("file.vkr: layer 12"). */
vkr_status vkr__parse_layer(const cJSON *obj, vkr_layer *L, const char *where);
void vkr__layer_clear(vkr_layer *L);
/* The layer as a graph-JSON object (caller frees with cJSON_Delete). */
cJSON *vkr__layer_to_json(const vkr_layer *L);

/* Resolves inputs and tensors and infers shapes at m->shape_h x m->shape_w.
 * Layers with index >= create_from get missing parameter tensors created
 * (initialized from seed); below it a missing tensor is an error. */
vkr_status vkr__model_link(vkr_model *m, int create_from, uint64_t seed);
/* Shape inference; creates the tensors marked -2 in layer.param. */
vkr_status vkr__infer(vkr_model *m, int height, int width, uint64_t seed);

/* Deterministic RNG for initializers. */

/* What kind of foreign file (HDF5, zip, pickle, .npy, image, ONNX) starts with b, as a phrase
 * naming the converter to run; NULL when unknown (runtime/model/model_sniff.c). */
const char *vkr__foreign_format(const unsigned char *b, size_t n);

#endif
