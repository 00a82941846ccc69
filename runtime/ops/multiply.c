/* Element-wise product with the squeeze-and-excitation broadcast (shaders/mul_*.comp).
 * Same shapes: chunked element-wise dispatches.  Broadcast (b [N*C] over planes of HW): ranges
 * of whole planes bound as sub-ranges (as gap.c); the gradient of b is a per-plane reduction,
 * one invocation per plane for HW <= MUL_SMALL_HW, else one workgroup per plane with a
 * shared-memory tree (no atomics). */
#include "elem_split.h"
#include "vkr_shader_ids.h"

#include <string.h>

#define MUL_SMALL_HW 256u

uint64_t vkr__bn_chunk_limit(const vkr_context *ctx); /* batchnorm.c (honours the test override) */
void vkr__bn_magic(uint32_t d, uint32_t mg[2]);

typedef struct { uint32_t mg[2], hw, planes, base_o, base_a, base_b; } mul_bcast_push;
typedef struct { uint32_t hw, planes, base_o, base_d, base_a; } mul_red_push;
VKR_PUSH_CHECK(uint32_t, mul_forward);
VKR_PUSH_CHECK(mul_bcast_push, mul_bcast);
VKR_PUSH_CHECK(mul_red_push, mul_bcast_reduce);
VKR_PUSH_CHECK(mul_red_push, mul_bcast_reduce_small);

static vkr_status check(vkr_cmd *cmd, const char *op, int n, int c, int hw, int bhw) {
    if (!cmd) return vkr_fail(VKR_ERR_INVALID, "%s: command stream is NULL", op);
    if (n <= 0 || c <= 0 || hw <= 0) return vkr_fail(VKR_ERR_INVALID, "%s: non-positive shape n=%d c=%d hw=%d", op, n, c, hw);
    if (bhw != hw && bhw != 1)
        return vkr_fail(VKR_ERR_INVALID, "%s: b must be [N, C, %d] or [N, C] (broadcast), not [N, C, %d]", op, hw, bhw);
    return VKR_OK;
}

static vkr_status same_shape(vkr_cmd *cmd, uint64_t n, vkr_buffer *out, vkr_buffer *a, vkr_buffer *b) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    vkr_pipeline *p;
    vkr_pipeline_desc d = {VKR_SHADER(mul_forward)};
    vkr_status s = vkr_pipeline_get(ctx, &d, &p);
    if (s) return s;
    vkr_buffer *bufs[3] = {out, a, b};
    uint32_t pc = 0;
    return vkr__dispatch_chunked(cmd, p, bufs, 3, 0x1, n, vkr__elem_chunk_floats(ctx), &pc);
}

/* Planes per chunk so that every binding fits maxStorageBufferRange after aligning down. */
static vkr_status plane_chunk(vkr_cmd *cmd, const char *op, uint64_t planes, int hw, uint64_t *per, uint64_t *af) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    *af = ctx->info.min_storage_buffer_offset_alignment / 4;
    if (*af < 1) *af = 1;
    uint64_t lim = vkr__bn_chunk_limit(ctx);
    if ((uint64_t)hw + *af - 1 > lim)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: one plane of %d floats exceeds the device's maxStorageBufferRange", op, hw);
    *per = (lim - (*af - 1)) / (uint64_t)hw;
    if (*per > planes) *per = planes;
    return VKR_OK;
}

static vkr_binding bind_at(vkr_buffer *b, uint64_t first, uint64_t count, uint64_t af, uint32_t *base) {
    uint64_t f0 = first / af * af;
    *base = (uint32_t)(first - f0);
    vkr_binding r = {b, f0 * 4, (count + *base) * 4};
    return r;
}

/* out = a * b[plane], plane by plane */
static vkr_status bcast(vkr_cmd *cmd, const char *op, uint64_t planes, int hw, vkr_buffer *out, vkr_buffer *a,
                        vkr_buffer *b) {
    uint64_t per = 0, af = 1;
    vkr_pipeline *pp;
    vkr_pipeline_desc d = {VKR_SHADER(mul_bcast)};
    vkr_status s;
    if ((s = plane_chunk(cmd, op, planes, hw, &per, &af)) || (s = vkr_pipeline_get(vkr__cmd_context(cmd), &d, &pp)))
        return s;
    for (uint64_t q0 = 0; q0 < planes; q0 += per) {
        uint64_t np = planes - q0 < per ? planes - q0 : per, ne = np * (uint64_t)hw;
        mul_bcast_push pc = {{0, 0}, (uint32_t)hw, (uint32_t)np, 0, 0, 0};
        vkr__bn_magic((uint32_t)hw, pc.mg);
        vkr_binding bd[3] = {bind_at(out, q0 * hw, ne, af, &pc.base_o), bind_at(a, q0 * hw, ne, af, &pc.base_a),
                             bind_at(b, q0, np, af, &pc.base_b)};
        uint32_t gx, gy;
        vkr_grid_1d(ne, 256, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, pp, bd, 3, 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}

/* db[q] = sum over plane q of dout * a */
static vkr_status reduce(vkr_cmd *cmd, const char *op, uint64_t planes, int hw, vkr_buffer *db, vkr_buffer *dout,
                         vkr_buffer *a) {
    uint64_t per = 0, af = 1;
    int small = (uint32_t)hw <= MUL_SMALL_HW;
    vkr_pipeline *pp;
    vkr_pipeline_desc d = small ? (vkr_pipeline_desc){VKR_SHADER(mul_bcast_reduce_small)}
                                : (vkr_pipeline_desc){VKR_SHADER(mul_bcast_reduce)};
    vkr_status s;
    if ((s = plane_chunk(cmd, op, planes, hw, &per, &af)) || (s = vkr_pipeline_get(vkr__cmd_context(cmd), &d, &pp)))
        return s;
    for (uint64_t q0 = 0; q0 < planes; q0 += per) {
        uint64_t np = planes - q0 < per ? planes - q0 : per, ne = np * (uint64_t)hw;
        mul_red_push pc = {(uint32_t)hw, (uint32_t)np, 0, 0, 0};
        vkr_binding bd[3] = {bind_at(db, q0, np, af, &pc.base_o), bind_at(dout, q0 * hw, ne, af, &pc.base_d),
                             bind_at(a, q0 * hw, ne, af, &pc.base_a)};
        uint32_t gx, gy;
        vkr_grid_1d(np, small ? 64 : 1, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, pp, bd, 3, 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}

vkr_status vkr_multiply_forward(vkr_cmd *cmd, int n, int c, int hw, int bhw, vkr_buffer *out, vkr_buffer *a,
                                vkr_buffer *b) {
    const char *op = "multiply_forward";
    vkr_status s;
    if ((s = check(cmd, op, n, c, hw, bhw))) return s;
    uint64_t planes = (uint64_t)n * c, ne = planes * (uint64_t)hw;
    if ((s = vkr__need(op, "out", out, ne)) || (s = vkr__need(op, "a", a, ne)) ||
        (s = vkr__need(op, "b", b, planes * (uint64_t)bhw)))
        return s;
    if (bhw == hw) return same_shape(cmd, ne, out, a, b);
    if (out == b) return vkr_fail(VKR_ERR_INVALID, "%s: out must not be the broadcast input b", op);
    return bcast(cmd, op, planes, hw, out, a, b);
}

vkr_status vkr_multiply_backward(vkr_cmd *cmd, int n, int c, int hw, int bhw, vkr_buffer *da, vkr_buffer *db,
                                 vkr_buffer *dout, vkr_buffer *a, vkr_buffer *b) {
    const char *op = "multiply_backward";
    vkr_status s;
    if ((s = check(cmd, op, n, c, hw, bhw))) return s;
    uint64_t planes = (uint64_t)n * c, ne = planes * (uint64_t)hw, nb = planes * (uint64_t)bhw;
    if ((s = vkr__need(op, "dout", dout, ne)) || (s = vkr__need(op, "a", a, ne)) || (s = vkr__need(op, "b", b, nb)))
        return s;
    if ((da && (s = vkr__need(op, "da", da, ne))) || (db && (s = vkr__need(op, "db", db, nb)))) return s;
    if ((da && (da == a || da == b || da == db)) || (db && (db == a || db == b)))
        return vkr_fail(VKR_ERR_INVALID, "%s: a gradient output must not be an input or the other gradient", op);
    if (db == dout && da) return vkr_fail(VKR_ERR_INVALID, "%s: db may be dout only when da is not computed", op);
    /* db first: da may overwrite dout */
    if (db) s = bhw == hw ? same_shape(cmd, ne, db, dout, a) : reduce(cmd, op, planes, hw, db, dout, a);
    if (!s && da) s = bhw == hw ? same_shape(cmd, ne, da, dout, b) : bcast(cmd, op, planes, hw, da, dout, b);
    return s;
}
