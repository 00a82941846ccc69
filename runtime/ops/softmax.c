/* Row-wise softmax (shaders/softmax.comp), plus the row-chunking helpers shared
 * by the loss / optimizer recorders of this group (softmax_ce.c, sgd.c, adam.c). */
#include "op_util.h"
#include "vkr_shader_ids.h"

/* ---- shared by softmax.c, softmax_ce.c, sgd.c, adam.c (declared in each) ---- */
uint64_t vkr__loss_chunk_floats(const vkr_context *ctx);
vkr_status vkr__loss_row_chunking(const char *op, const vkr_context *ctx, int classes, uint64_t *rows_per_chunk,
                                  uint64_t *align_floats);
vkr_status vkr__softmax_record(vkr_cmd *cmd, const char *op, int batch, int classes, vkr_buffer *out,
                               vkr_buffer *inp);

/* Test hook: a thread-local cap on the chunk size, so the self-checks can force
 * the multi-chunk paths on small tensors (0 = off). */
static _Thread_local uint64_t g_chunk_override;

void vkr__loss_force_chunk(uint64_t floats) { g_chunk_override = floats; }

static uint64_t align_floats_of(const vkr_context *ctx) {
    uint64_t a = ctx->info.min_storage_buffer_offset_alignment;
    return a > 4 ? a / 4 : 1;
}

uint64_t vkr__loss_chunk_floats(const vkr_context *ctx) {
    uint64_t c = vkr__chunk_floats(ctx);
    if (g_chunk_override && g_chunk_override < c) {
        uint64_t a = align_floats_of(ctx);
        uint64_t o = g_chunk_override / a * a;
        c = o ? o : a;
    }
    return c;
}

/* Rows of `classes` floats per dispatch so that a row chunk, bound from its
 * offset rounded down to the storage offset alignment (at most align_floats-1
 * floats of lead-in, passed to the shader as `base`), fits one binding. */
vkr_status vkr__loss_row_chunking(const char *op, const vkr_context *ctx, int classes, uint64_t *rows_per_chunk,
                                  uint64_t *align_floats) {
    uint64_t chunk = vkr__loss_chunk_floats(ctx), a = align_floats_of(ctx);
    if ((uint64_t)classes + a > chunk)
        return vkr_fail(VKR_ERR_UNSUPPORTED, "%s: a row of %d classes exceeds maxStorageBufferRange", op, classes);
    *rows_per_chunk = (chunk - a) / (uint64_t)classes;
    *align_floats = a;
    return VKR_OK;
}

typedef struct { uint32_t rows, classes, base; } softmax_push;
VKR_PUSH_CHECK(softmax_push, softmax);

/* Small class counts: one invocation per row; otherwise one workgroup per row. */
#define SOFTMAX_ROWWISE_MAX 32

vkr_status vkr__softmax_record(vkr_cmd *cmd, const char *op, int batch, int classes, vkr_buffer *out,
                               vkr_buffer *inp) {
    vkr_context *ctx = vkr__cmd_context(cmd);
    uint32_t rowwise = classes <= SOFTMAX_ROWWISE_MAX;
    vkr_pipeline_desc d = {VKR_SHADER(softmax), .spec_count = 1, .spec = &rowwise};
    vkr_pipeline *p;
    uint64_t rpc = 1, a = 1;
    vkr_status s;
    if ((s = vkr__loss_row_chunking(op, ctx, classes, &rpc, &a))) return s;
    if ((s = vkr_pipeline_get(ctx, &d, &p))) return s;
    for (uint64_t r0 = 0; r0 < (uint64_t)batch; r0 += rpc) {
        uint64_t rows = (uint64_t)batch - r0 < rpc ? (uint64_t)batch - r0 : rpc;
        uint64_t off = r0 * (uint64_t)classes, aoff = off - off % a, span = off - aoff + rows * (uint64_t)classes;
        softmax_push pc = {(uint32_t)rows, (uint32_t)classes, (uint32_t)(off - aoff)};
        vkr_binding bind[2] = {vkr__range(out, aoff, span), vkr__range(inp, aoff, span)};
        uint32_t gx, gy;
        vkr_grid_1d(rows, rowwise ? 64 : 1, &gx, &gy);
        if ((s = vkr_cmd_dispatch(cmd, p, bind, 2, 0x1, &pc, gx, gy, 1))) return s;
    }
    return VKR_OK;
}

vkr_status vkr_softmax_forward(vkr_cmd *cmd, int batch, int classes, vkr_buffer *out, vkr_buffer *inp) {
    vkr_status s;
    if (!cmd) return vkr_fail(VKR_ERR_INVALID, "softmax: cmd is NULL");
    if (batch <= 0 || classes <= 0)
        return vkr_fail(VKR_ERR_INVALID, "softmax: batch (%d) and classes (%d) must be positive", batch, classes);
    uint64_t n = (uint64_t)batch * (uint64_t)classes;
    if ((s = vkr__need("softmax", "out", out, n)) || (s = vkr__need("softmax", "inp", inp, n))) return s;
    return vkr__softmax_record(cmd, "softmax", batch, classes, out, inp);
}
