/* Inverted dropout with a counter-based mask: shaders/dropout.comp (forward and backward are
 * the same masked scaling).  Chunked so that no binding exceeds maxStorageBufferRange; element i
 * of a chunk is element first + chunk start + i of the mask. */
#include "elem_split.h"
#include "vkr_shader_ids.h"

#include <math.h>

typedef struct { uint32_t n, first_lo, first_hi, k0, k1, threshold; float scale; } dropout_push;
VKR_PUSH_CHECK(dropout_push, dropout);

static uint32_t mix32(uint32_t v) {
    v ^= v >> 16;
    v *= 0x7feb352du;
    v ^= v >> 15;
    v *= 0x846ca68bu;
    v ^= v >> 16;
    return v;
}

vkr_status vkr_dropout(vkr_cmd *cmd, uint64_t n, uint64_t first, const vkr_dropout_key *key, vkr_buffer *out,
                       vkr_buffer *inp) {
    static const char *op = "dropout";
    vkr_status s;
    if (!cmd || !key) return vkr_fail(VKR_ERR_INVALID, "%s: cmd or key is NULL", op);
    if (n == 0) return vkr_fail(VKR_ERR_INVALID, "%s: n must be positive", op);
    if (!(key->rate >= 0 && key->rate < 1)) return vkr_fail(VKR_ERR_INVALID, "%s: rate %g not in [0, 1)", op, key->rate);
    if (!out) return VKR_OK;
    if ((s = vkr__need(op, "out", out, n)) || (s = vkr__need(op, "inp", inp, n))) return s;
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline_desc d = {VKR_SHADER(dropout)};
    vkr_pipeline *p;
    if ((s = vkr_pipeline_get(ctx, &d, &p))) return s;
    uint32_t k0 = mix32((uint32_t)key->seed ^ mix32((uint32_t)(key->seed >> 32) + 0x9e3779b9u));
    uint32_t k1 = mix32(k0 ^ mix32(key->salt + 0x85ebca6bu) ^ mix32(key->step * 0xc2b2ae35u + 1u));
    uint64_t chunk = vkr__elem_chunk_floats(ctx);
    for (uint64_t c0 = 0; c0 < n; c0 += chunk) {
        uint64_t cnt = n - c0 < chunk ? n - c0 : chunk, f = first + c0;
        dropout_push pc = {(uint32_t)cnt, (uint32_t)f, (uint32_t)(f >> 32), k0, k1,
                           (uint32_t)floor((double)key->rate * 16777216.0), vkr_dropout_scale(key->rate)};
        vkr_binding bind[2] = {vkr__range(out, c0, cnt), vkr__range(inp, c0, cnt)};
        uint32_t gx, gy;
        vkr_grid_1d(cnt, 256, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, p, bind, 2, 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}

float vkr_dropout_scale(float rate) { return (float)(1.0 / (1.0 - (double)rate)); }
