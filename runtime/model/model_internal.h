/* Internal helpers of the model layer (runtime/model*.c, npy.c, graph*.c). */
#ifndef VKRUN_MODEL_INTERNAL_H
#define VKRUN_MODEL_INTERNAL_H

#include <stdint.h>
#include <stdio.h>

#include "vkrun_model.h"

typedef struct cJSON cJSON;

char *vkr__strdup(const char *s);

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

/* Writes `path` atomically: fn writes to a temporary file in the same
 * directory, which is flushed, fsync'ed and renamed over `path`. */
typedef vkr_status (*vkr__writer_fn)(FILE *f, void *ud);
vkr_status vkr__atomic_write(const char *path, vkr__writer_fn fn, void *ud);

/* Parses one layer object of the graph JSON into *L (zeroed first); `where`
 * prefixes messages ("file.vkr: layer 12"). */
vkr_status vkr__parse_layer(const cJSON *obj, vkr_layer *L, const char *where);
void vkr__layer_clear(vkr_layer *L);
/* The layer as a graph-JSON object (caller frees with cJSON_Delete); NULL when out of memory. */
cJSON *vkr__layer_to_json(const vkr_layer *L);
/* Attaches item to object o under key (key NULL: appends to the array o); returns 0 and
 * deletes item when that fails (an allocation failed, or o or item is NULL).  Writers of
 * JSON check every adder with it, so that no file is written with a field missing. */
int vkr__json_put(cJSON *o, const char *key, cJSON *item);

/* Resolves inputs and tensors and infers shapes at m->shape_h x m->shape_w.
 * Layers with index >= create_from get missing parameter tensors created
 * (initialized from seed); below it a missing tensor is an error. */
vkr_status vkr__model_link(vkr_model *m, int create_from, uint64_t seed);
/* Shape inference; creates the tensors marked -2 in layer.param. */
vkr_status vkr__infer(vkr_model *m, int height, int width, uint64_t seed);

/* Deterministic RNG for initializers. */
typedef struct { uint64_t s; } vkr__rng;
void vkr__rng_seed(vkr__rng *r, uint64_t seed);
double vkr__rng_uniform(vkr__rng *r); /* [0, 1) */

#endif
