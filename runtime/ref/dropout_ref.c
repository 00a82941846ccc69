#include "dropout_ref.h"

#include <math.h>

static uint32_t lowbias32(uint32_t v) {
    v ^= v >> 16;
    v *= 0x7feb352du;
    v ^= v >> 15;
    v *= 0x846ca68bu;
    v ^= v >> 16;
    return v;
}

int vkr_ref_dropout_keep(const vkr_dropout_key *key, uint64_t j) {
    uint32_t k0 = lowbias32((uint32_t)(key->seed & 0xffffffffu) ^ lowbias32((uint32_t)(key->seed >> 32) + 0x9e3779b9u));
    uint32_t k1 = lowbias32(k0 ^ lowbias32(key->salt + 0x85ebca6bu) ^ lowbias32(key->step * 0xc2b2ae35u + 1u));
    uint32_t h = lowbias32(lowbias32((uint32_t)(j & 0xffffffffu) ^ k1) ^ ((uint32_t)(j >> 32) + k0));
    return (double)(h >> 8) >= floor((double)key->rate * 16777216.0);
}

void vkr_ref_dropout(uint64_t n, uint64_t first, const vkr_dropout_key *key, double *out, const double *inp) {
    double scale = (double)(float)(1.0 / (1.0 - (double)key->rate));
    for (uint64_t i = 0; i < n; i++) out[i] = vkr_ref_dropout_keep(key, first + i) ? inp[i] * scale : 0.0;
}
