/* The GEMM layer behind conv2d and dense (internal).
 *
 * Every direction of a convolution is recorded as an implicit GEMM over the
 * NCHW / OIHW tensors (shaders/gemm_conv.glsl describes the index maps):
 *   forward          out    = W · im2col(inp)                (+ bias)
 *   backward-data    dinp   = W^T · dout, one dispatch per stride phase
 *   backward-weight  dW     = dout · im2col(inp)^T, reduced over batch and space
 *   d-bias           dbias  = sum of dout over batch and space (workgroup reduction)
 * with two kernel variants (VKR_GEMM_TILED, VKR_GEMM_TEXEL, see vkrun_ops.h).
 * Tensors larger than maxStorageBufferRange are split by batch chunks bound as
 * sub-ranges; the backward-weight / d-bias partials of later chunks are
 * accumulated into the outputs (beta = 1), with the barriers the command
 * stream inserts between writers of the same buffer.
 * backward-weight and d-bias may split their reduction over workgroups (split-K,
 * partials in the command stream's scratch buffer, summed in a fixed order).
 * A dense layer is the 1x1 convolution over [B, IN, 1, 1]. */
#ifndef VKRUN_GEMM_CONV_H
#define VKRUN_GEMM_CONV_H

#include "op_util.h"

/* Validates a conv shape (positive sizes, output >= 1) for `op`. */
vkr_status vkr__conv_check_shape(const char *op, const vkr_conv2d_shape *p);

vkr_status vkr__conv_forward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out,
                             vkr_buffer *inp, vkr_buffer *weight, vkr_buffer *bias);
/* The same with the ReLU in the GEMM epilogue: out = max(conv + bias, 0), one dispatch. */
vkr_status vkr__conv_forward_relu(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out,
                                  vkr_buffer *inp, vkr_buffer *weight, vkr_buffer *bias);
/* Epilogue flags (VKR__EPI_BN: `bias` holds [4][k]: bias, mean, gamma / sqrt(var + eps), beta;
 * out = ((conv + bias) - mean) * g + beta, as conv then inference BatchNorm; then the ReLU). */
#define VKR__EPI_RELU 2
#define VKR__EPI_BN 4
vkr_status vkr__conv_forward_epi(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out,
                                 vkr_buffer *inp, vkr_buffer *weight, vkr_buffer *bias, int epi);
vkr_status vkr__conv_backward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *dinp,
                              vkr_buffer *dweight, vkr_buffer *dbias, vkr_buffer *dout, vkr_buffer *inp,
                              vkr_buffer *weight);

/* Batch chunks and their bindings, shared with the depthwise kernels (depthwise.c): images per
 * chunk so that a per-image tensor of `per` floats fits one binding (honours the chunk-limit
 * hook below); the binding of floats [first, first+count) of b from an aligned offset, *elem_off
 * = first's index in it. */
vkr_status vkr__gemm_plan_chunk(const char *op, const vkr_context *ctx, uint64_t per, int n, int *nb);
vkr_binding vkr__gemm_sub_binding(const vkr_context *ctx, vkr_buffer *b, uint64_t first, uint64_t count,
                                  int32_t *elem_off);

/* Depthwise convolution (groups == c == k; depthwise.c, shaders/dw_*.comp): direct kernels, any
 * kernel size, stride, dilation and padding.  epi as vkr__conv_forward_epi (bias may be NULL).
 * conv2d.c chooses them (vkr__conv_* above handle groups > 1 as one GEMM per image and group);
 * the backward leaves the bias gradient to vkr__conv_backward. */
vkr_status vkr__dw_forward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *out, vkr_buffer *inp,
                           vkr_buffer *weight, vkr_buffer *bias, int epi);
vkr_status vkr__dw_backward(vkr_cmd *cmd, const char *op, const vkr_conv2d_shape *p, vkr_buffer *dinp,
                            vkr_buffer *dweight, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *weight);

/* Bytes of scratch (vkr_cmd_reserve_scratch) the backward of this shape uses on ctx for the
 * split-K partials of its weight (dweight != 0) and bias (dbias != 0) gradients; 0 = none. */
uint64_t vkr__conv_backward_scratch(const vkr_context *ctx, const vkr_conv2d_shape *p, int dweight, int dbias);

/* ---- test and tuning hooks (thread-local, for selftest and bench) ---- */
/* Caps the bytes of one batch chunk's binding (0 = the device limit) so the
 * split path runs on small tensors. */
void vkr__gemm_set_chunk_limit(uint64_t bytes);
/* TEXEL block shapes: index into the table below (-1 = the built-in choice). */
typedef struct {
    const char *shader; /* embedded shader name */
    const char *shader_f16; /* its fp16-input variant (PREC_F16, --precision fp16) */
    const char *shader_bf16; /* its bf16-input variant (PREC_BF16, --precision bf16) */
    int tm, tn;         /* outputs per invocation (rows of A x columns of B) */
    int lx, ly;         /* workgroup size */
} vkr__texel_config;
int vkr__texel_config_count(void);
const vkr__texel_config *vkr__texel_config_at(int i);
void vkr__gemm_force_texel_config(int i);
/* Split-K of the weight / bias gradients: force `splits` (0 = automatic choice; the
 * count is capped by the reduction length and the scratch limit, the last split may be
 * shorter), or set the target workgroup count the automatic choice aims at (0 = per device
 * type; CPU devices: no split). */
void vkr__gemm_force_split(int splits);
void vkr__gemm_set_split_target(int workgroups);
/* TILED tile shapes: index into the table (-1 = the default, 64x64). */
typedef struct {
    const char *shader; /* embedded shader name */
    const char *shader_f16; /* its fp16-input variant (PREC_F16, --precision fp16) */
    const char *shader_bf16; /* its bf16-input variant (PREC_BF16, --precision bf16) */
    int bm, bn;         /* output tile */
    int tm, tn;         /* outputs per invocation (16x16 invocations) */
} vkr__tiled_config;
int vkr__tiled_config_count(void);
const vkr__tiled_config *vkr__tiled_config_at(int i);
void vkr__gemm_force_tiled_config(int i);
/* vkrun tune's measured TILED pick, per device and driver next to the pipeline cache
 * (tune-VENDOR-DEVICE-DRIVER.txt); loaded when a context is created (default 64x64). */
int vkr__gemm_tune_path(const vkr_context *ctx, char *buf, size_t n);
void vkr__gemm_tune_load(vkr_context *ctx);
int vkr__gemm_tuned_tile(const vkr_context *ctx); /* the tile TILED uses unless forced (reads the cache once) */
vkr_status vkr__gemm_tune_save(vkr_context *ctx, int tile);
/* Runs depthwise convolutions through the grouped-GEMM path (one GEMM per image and group) instead
 * of the depthwise kernels (conv2d.c): vkrun bench --op depthwise compares the two. */
void vkr__conv_force_gemm_depthwise(int on);
/* Disables the RGBA32F (vec4) operand modes of TEXEL: every operand gathered as R32F. */
void vkr__gemm_force_gather(int on);

#endif
