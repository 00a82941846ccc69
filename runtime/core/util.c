/* Small utilities every floor uses, written once.
 *
 * The one random number generator of vkrun (splitmix64): weight initializers, dataset splits
 * and shuffles, augmentation, the self-checks' inputs.  Small, fast, and the same sequence on
 * every platform, so that a seed reproduces a run exactly. */
#include "core/util.h"

#include <cJSON.h>
#include <stdlib.h>
#include <string.h>

#define GOLDEN 0x9E3779B97F4A7C15ull

uint64_t vkr_mix64(uint64_t z) {
    z += GOLDEN;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

void vkr_rng_seed(vkr_rng *r, uint64_t seed) { r->s = seed * GOLDEN + 0x632BE59BD9B4E019ull; }

uint64_t vkr_rng_next(vkr_rng *r) {
    uint64_t v = vkr_mix64(r->s);
    r->s += GOLDEN;
    return v;
}

double vkr_rng_uniform(vkr_rng *r, double lo, double hi) { return lo + (hi - lo) * ((vkr_rng_next(r) >> 11) * 0x1.0p-53); }

uint64_t vkr_rng_below(vkr_rng *r, uint64_t n) { /* rejection sampling: exactly uniform */
    uint64_t lim = UINT64_MAX - UINT64_MAX % n, v;
    do v = vkr_rng_next(r);
    while (v >= lim);
    return v % n;
}

void vkr_rng_fill(vkr_rng *r, float *x, size_t n, double lo, double hi) {
    for (size_t i = 0; i < n; i++) x[i] = (float)vkr_rng_uniform(r, lo, hi);
}

char *vkr__strdup(const char *s) {
    if (!s) return NULL;
    size_t n = strlen(s) + 1;
    char *d = malloc(n);
    if (d) memcpy(d, s, n);
    return d;
}

int vkr__json_put(cJSON *o, const char *key, cJSON *item) {
    if (o && item && (key ? cJSON_AddItemToObject(o, key, item) : cJSON_AddItemToArray(o, item))) return 1;
    cJSON_Delete(item);
    return 0;
}
