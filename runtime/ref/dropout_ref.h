#ifndef VKRUN_DROPOUT_REF_H
#define VKRUN_DROPOUT_REF_H
/* Plain-C reference of vkr_dropout (runtime/ops/dropout.c, shaders/dropout.comp), written from
 * its definition: h(j) = mix(mix(j_lo ^ k1) ^ (j_hi + k0)) with the lowbias32 finalizer mix,
 * k0 = mix(seed_lo ^ mix(seed_hi + 0x9e3779b9)), k1 = mix(k0 ^ mix(salt + 0x85ebca6b) ^
 * mix(step * 0xc2b2ae35 + 1)); element j is kept when (h >> 8) >= floor(rate * 2^24), and then
 * scaled by (float)(1 / (1 - rate)). */
#include <stdint.h>

#include "vkrun_ops.h"

int vkr_ref_dropout_keep(const vkr_dropout_key *key, uint64_t j);
/* out[i] = keep(first + i) ? inp[i] * scale : 0 (forward; the backward is the same map on dout) */
void vkr_ref_dropout(uint64_t n, uint64_t first, const vkr_dropout_key *key, double *out, const double *inp);
#endif
