/* vkrun ops: every layer as GLSL compute shaders, recorded into a vkr_cmd.
 *
 * Conventions (kept everywhere):
 *  - tensors are fp32, NCHW, densely packed; a dense layer's activations are
 *    [N, F] (= NCHW with H = W = 1);
 *  - conv weights are OIHW [K][C][R][S]; dense weights are [OUT][IN] (torch);
 *  - argument order follows llm.c: forward(out..., inp..., params...),
 *    backward(dinp, dparams..., dout, saved inputs...);
 *  - backward ops OVERWRITE their gradient outputs (no accumulation); a NULL
 *    gradient output is not computed;
 *  - every op validates buffer sizes against its shape and returns
 *    VKR_ERR_INVALID naming the op and the buffer;
 *  - each op has a plain-C reference runtime/ref/<op>_ref.c with the same
 *    argument order (double host arrays instead of buffers), declared in
 *    runtime/ref/<op>_ref.h as vkr_ref_<op>_forward / vkr_ref_<op>_backward.
 */
#ifndef VKRUN_OPS_H
#define VKRUN_OPS_H

#include "vkrun.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------- utilities */
/* y = a*x + b*y over n floats. */
vkr_status vkr_axpby(vkr_cmd *cmd, uint64_t n, float a, vkr_buffer *x, float b, vkr_buffer *y);
/* flag |= 1 (a uint at offset 0 of `flag`) if x[0..n) holds an inf or NaN; unchanged otherwise
 * (the gradient check of dynamic loss scaling: zero the flag, check every gradient, read it). */
vkr_status vkr_nonfinite(vkr_cmd *cmd, uint64_t n, vkr_buffer *x, vkr_buffer *flag);

/* --------------------------------------------------------------- conv2d */
typedef struct {
    int n, c, h, w;                 /* input */
    int k;                          /* output channels */
    int r, s;                       /* kernel height, width */
    int stride_h, stride_w;
    int pad_t, pad_b, pad_l, pad_r; /* explicit, may be asymmetric */
    int dil_h, dil_w;               /* dilation (0 or 1: none); the window spans (r-1)*dil_h+1 rows */
    int groups;                     /* 0 or 1: none; else c and k divisible by it, weight [k][c/groups][r][s];
                                       groups == c == k: the depthwise kernels (shaders/dw_*.comp) */
} vkr_conv2d_shape;

static inline int vkr_conv2d_dil_h(const vkr_conv2d_shape *p) { return p->dil_h > 1 ? p->dil_h : 1; }
static inline int vkr_conv2d_dil_w(const vkr_conv2d_shape *p) { return p->dil_w > 1 ? p->dil_w : 1; }
static inline int vkr_conv2d_groups(const vkr_conv2d_shape *p) { return p->groups > 1 ? p->groups : 1; }
/* effective (dilated) window */
static inline int vkr_conv2d_eff_r(const vkr_conv2d_shape *p) { return (p->r - 1) * vkr_conv2d_dil_h(p) + 1; }
static inline int vkr_conv2d_eff_s(const vkr_conv2d_shape *p) { return (p->s - 1) * vkr_conv2d_dil_w(p) + 1; }
static inline int vkr_conv2d_out_h(const vkr_conv2d_shape *p) {
    return (p->h + p->pad_t + p->pad_b - vkr_conv2d_eff_r(p)) / p->stride_h + 1;
}
static inline int vkr_conv2d_out_w(const vkr_conv2d_shape *p) {
    return (p->w + p->pad_l + p->pad_r - vkr_conv2d_eff_s(p)) / p->stride_w + 1;
}
/* weight floats: k * (c / groups) * r * s */
static inline uint64_t vkr_conv2d_weight_floats(const vkr_conv2d_shape *p) {
    return (uint64_t)p->k * (uint64_t)(p->c / vkr_conv2d_groups(p)) * (uint64_t)p->r * (uint64_t)p->s;
}

/* GEMM kernel variants behind conv2d / dense. AUTO picks per device. */
typedef enum {
    VKR_GEMM_AUTO = 0,
    VKR_GEMM_TILED = 1, /* shared-memory tiles + register blocking (real GPUs) */
    VKR_GEMM_TEXEL = 2, /* texel-buffer reads + register blocking, no shared memory (CPU devices) */
    VKR_GEMM_VARIANT_COUNT
} vkr_gemm_variant;
const char *vkr_gemm_variant_name(vkr_gemm_variant v);
/* Forces a variant for subsequent conv2d/dense calls on this thread (AUTO = device choice). */
void vkr_gemm_force_variant(vkr_gemm_variant v);
vkr_gemm_variant vkr_gemm_pick(const vkr_context *ctx);

/* Tuning hooks of `vkrun bench` and `vkrun tune` (thread-local, like vkr_gemm_force_variant).
 * Each variant has a built-in table of block shapes; index -1 means the default choice. */
typedef struct {
    const char *shader; /* embedded shader name */
    int bm, bn;         /* TILED: output tile of a workgroup (0 for TEXEL) */
    int tm, tn;         /* outputs per invocation */
    int lx, ly;         /* workgroup size */
} vkr_gemm_tile;
/* Entries in the table of `v` (TILED or TEXEL; 0 for AUTO). */
int vkr_gemm_tile_count(vkr_gemm_variant v);
/* Entry i of the table of `v`; VKR_ERR_INVALID when i is out of range. */
vkr_status vkr_gemm_tile_at(vkr_gemm_variant v, int i, vkr_gemm_tile *out);
/* Forces entry i of `v`'s table for later conv2d/dense calls (-1: the default). */
void vkr_gemm_force_tile(vkr_gemm_variant v, int i);
/* Forces the split-K count of the weight / bias gradients (0: automatic). */
void vkr_gemm_force_split(int splits);
/* The TILED entry `vkrun tune` measured for ctx's device (the default unless forced). */
int vkr_gemm_tuned_tile(const vkr_context *ctx);
/* Keeps TILED entry `tile` for this device and driver, in the file *path names
 * (tune-VENDOR-DEVICE-DRIVER.txt next to the pipeline cache); read by a context's first GEMM. */
vkr_status vkr_gemm_tune_save(vkr_context *ctx, int tile);
/* Writes that file's path to buf; 0 when there is no cache folder. */
int vkr_gemm_tune_path(const vkr_context *ctx, char *buf, size_t n);
/* Runs depthwise convolutions (groups == C == K) through the grouped GEMM instead of their own
 * kernels, for `vkrun bench --op depthwise` (thread-local; 0: the depthwise kernels). */
void vkr_conv_force_gemm_depthwise(int on);

/* out[N,K,OH,OW] = conv(inp[N,C,H,W], weight[K,C,R,S]) + bias[K] (bias may be NULL) */
vkr_status vkr_conv2d_forward(vkr_cmd *cmd, const vkr_conv2d_shape *p, vkr_buffer *out, vkr_buffer *inp,
                              vkr_buffer *weight, vkr_buffer *bias);
/* The same followed by out = max(out, 0), done in the GEMM epilogue (one dispatch) */
vkr_status vkr_conv2d_relu_forward(vkr_cmd *cmd, const vkr_conv2d_shape *p, vkr_buffer *out, vkr_buffer *inp,
                                   vkr_buffer *weight, vkr_buffer *bias);
/* conv2d then inference BatchNorm (then ReLU when relu != 0) in one dispatch: affine holds
 * [4][k]: the conv bias (0 without), running mean, gamma / sqrt(var + eps), beta;
 * out = ((conv + bias) - mean) * g + beta, the unfused ops' arithmetic in the GEMM epilogue */
vkr_status vkr_conv2d_bn_forward(vkr_cmd *cmd, const vkr_conv2d_shape *p, vkr_buffer *out, vkr_buffer *inp,
                                 vkr_buffer *weight, vkr_buffer *affine, int relu);
vkr_status vkr_conv2d_backward(vkr_cmd *cmd, const vkr_conv2d_shape *p, vkr_buffer *dinp, vkr_buffer *dweight,
                               vkr_buffer *dbias, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *weight);

/* ---------------------------------------------------------------- dense */
/* out[B,OUT] = inp[B,IN] · weight[OUT,IN]^T + bias[OUT] (bias may be NULL); same GEMM path as conv2d */
vkr_status vkr_dense_forward(vkr_cmd *cmd, int batch, int in, int outf, vkr_buffer *out, vkr_buffer *inp,
                             vkr_buffer *weight, vkr_buffer *bias);
/* The same followed by out = max(out, 0) in the GEMM epilogue */
vkr_status vkr_dense_relu_forward(vkr_cmd *cmd, int batch, int in, int outf, vkr_buffer *out, vkr_buffer *inp,
                                  vkr_buffer *weight, vkr_buffer *bias);
vkr_status vkr_dense_backward(vkr_cmd *cmd, int batch, int in, int outf, vkr_buffer *dinp, vkr_buffer *dweight,
                              vkr_buffer *dbias, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *weight);

/* ------------------------------------------------------------ batchnorm */
typedef struct {
    int n, c, h, w;
    float eps;
    /* running = momentum * running + (1 - momentum) * batch_stat.
     * Keras: momentum 0.99; torch: momentum=0.1 there means 0.9 here. */
    float momentum;
    int unbiased_running_var; /* 1: running var uses n/(n-1) (torch), 0: biased */
} vkr_bn_shape;

/* Inference: y = gamma * (x - mean) / sqrt(var + eps) + beta with running stats. */
vkr_status vkr_batchnorm_infer_forward(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *out, vkr_buffer *inp,
                                       vkr_buffer *gamma, vkr_buffer *beta, vkr_buffer *mean, vkr_buffer *var);
vkr_status vkr_batchnorm_infer_backward(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *dinp, vkr_buffer *dgamma,
                                        vkr_buffer *dbeta, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *gamma,
                                        vkr_buffer *mean, vkr_buffer *var);
/* Training: batch statistics; saves mean[C] and invstd[C] for backward and
 * updates running_mean / running_var in place. */
vkr_status vkr_batchnorm_train_forward(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *out, vkr_buffer *save_mean,
                                       vkr_buffer *save_invstd, vkr_buffer *inp, vkr_buffer *gamma, vkr_buffer *beta,
                                       vkr_buffer *running_mean, vkr_buffer *running_var);
vkr_status vkr_batchnorm_train_backward(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *dinp, vkr_buffer *dgamma,
                                        vkr_buffer *dbeta, vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *gamma,
                                        vkr_buffer *save_mean, vkr_buffer *save_invstd);
/* The training passes in two halves, for statistics combined over several batches (synchronized
 * BatchNorm under data-parallel training, docs/scaling.md).  Forward: train_stats leaves this
 * batch's per-channel mean in save_mean and M2 (sum of squared deviations) in save_m2 (`out` holds
 * partials); the caller may replace them with those of a larger batch of `count` elements per
 * channel; train_finish turns M2 into invstd over `count`, updates the running statistics and
 * writes out.  train_stats + train_finish with count = n*h*w is train_forward.  Backward:
 * train_bwd_sums writes sum(dout) and sum(dout*xhat) per channel (dinp, when given, holds
 * partials); train_bwd_dinp computes dinp = gamma*invstd*(dout - sum_dout/count -
 * xhat*sum_dout_xhat/count) from the sums given. */
vkr_status vkr_batchnorm_train_stats(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *out, vkr_buffer *save_mean,
                                     vkr_buffer *save_m2, vkr_buffer *inp);
vkr_status vkr_batchnorm_train_finish(vkr_cmd *cmd, const vkr_bn_shape *p, double count, vkr_buffer *out,
                                      vkr_buffer *save_mean, vkr_buffer *save_invstd, vkr_buffer *inp, vkr_buffer *gamma,
                                      vkr_buffer *beta, vkr_buffer *running_mean, vkr_buffer *running_var);
/* The first step of train_finish alone (M2 -> invstd over count, running statistics; no
 * element-wise pass): for a rank without images in a synchronized step (p->n: any n > 0, unused). */
vkr_status vkr_batchnorm_train_running(vkr_cmd *cmd, const vkr_bn_shape *p, double count, vkr_buffer *save_mean,
                                       vkr_buffer *save_invstd, vkr_buffer *running_mean, vkr_buffer *running_var);
vkr_status vkr_batchnorm_train_bwd_sums(vkr_cmd *cmd, const vkr_bn_shape *p, vkr_buffer *dinp, vkr_buffer *sum_dout,
                                        vkr_buffer *sum_dout_xhat, vkr_buffer *dout, vkr_buffer *inp,
                                        vkr_buffer *save_mean, vkr_buffer *save_invstd);
vkr_status vkr_batchnorm_train_bwd_dinp(vkr_cmd *cmd, const vkr_bn_shape *p, double count, vkr_buffer *dinp,
                                        vkr_buffer *dout, vkr_buffer *inp, vkr_buffer *gamma, vkr_buffer *save_mean,
                                        vkr_buffer *save_invstd, vkr_buffer *sum_dout, vkr_buffer *sum_dout_xhat);

/* ----------------------------------------------------------- elementwise */
vkr_status vkr_relu_forward(vkr_cmd *cmd, uint64_t n, vkr_buffer *out, vkr_buffer *inp);
/* dinp = dout * (out > 0); `out` is the forward output (in-place safe: dinp may be dout) */
vkr_status vkr_relu_backward(vkr_cmd *cmd, uint64_t n, vkr_buffer *dinp, vkr_buffer *dout, vkr_buffer *out);
vkr_status vkr_add_forward(vkr_cmd *cmd, uint64_t n, vkr_buffer *out, vkr_buffer *a, vkr_buffer *b);
/* out = max(a + b, 0) in one pass (residual add followed by ReLU) */
vkr_status vkr_add_relu_forward(vkr_cmd *cmd, uint64_t n, vkr_buffer *out, vkr_buffer *a, vkr_buffer *b);
/* da = dout, db = dout (either may be NULL) */
vkr_status vkr_add_backward(vkr_cmd *cmd, uint64_t n, vkr_buffer *da, vkr_buffer *db, vkr_buffer *dout);

/* Element-wise activations, one shader family (shaders/act.glsl) with a mode:
 *   CLIP          y = min(max(x, a), b)                    (ReLU6: a = 0, b = 6)
 *   SIGMOID       y = 1 / (1 + exp(-x))
 *   HARD_SIGMOID  y = max(0, min(1, a*x + b))              (torch: a = 1/6, b = 1/2)
 *   HARD_SWISH    y = x * max(0, min(1, x/6 + 1/2))        (a, b unused)
 *   SWISH         y = x * sigmoid(x)                       (SiLU; a, b unused)
 * Backward reads the forward INPUT: dinp = dout * f'(inp), with torch's slope on a kink
 * (clip / hard_sigmoid: 0 at either end; hard_swish: 0 at -3, 3/3 + 1/2 at 3).  In-place
 * safe: out may be inp, dinp may be dout. */
typedef enum {
    VKR_ACT_CLIP = 0,
    VKR_ACT_SIGMOID = 1,
    VKR_ACT_HARD_SIGMOID = 2,
    VKR_ACT_HARD_SWISH = 3,
    VKR_ACT_SWISH = 4,
    VKR_ACT_MODE_COUNT
} vkr_act_mode;
typedef struct {
    vkr_act_mode mode;
    float a, b; /* clip: min, max; hard_sigmoid: alpha, beta */
} vkr_act_params;
const char *vkr_act_name(vkr_act_mode m); /* "clip", "sigmoid", ... */
vkr_status vkr_act_forward(vkr_cmd *cmd, const vkr_act_params *a, uint64_t n, vkr_buffer *out, vkr_buffer *inp);
vkr_status vkr_act_backward(vkr_cmd *cmd, const vkr_act_params *a, uint64_t n, vkr_buffer *dinp, vkr_buffer *dout,
                            vkr_buffer *inp);

/* out[N,C,HW] = a[N,C,HW] * b, with b [N,C,HW] (bhw = hw) or [N,C] broadcast over HW (bhw = 1:
 * squeeze-and-excitation).  Backward: da = dout * b (broadcast alike), db = dout * a, or
 * db[n,c] = sum over HW of dout * a (a per-plane reduction, no atomics).  Either gradient may be
 * NULL; da may be dout (computed after db); a gradient must not be a or b. */
vkr_status vkr_multiply_forward(vkr_cmd *cmd, int n, int c, int hw, int bhw, vkr_buffer *out, vkr_buffer *a,
                                vkr_buffer *b);
vkr_status vkr_multiply_backward(vkr_cmd *cmd, int n, int c, int hw, int bhw, vkr_buffer *da, vkr_buffer *db,
                                 vkr_buffer *dout, vkr_buffer *a, vkr_buffer *b);

/* --------------------------------------------------------- zero padding */
typedef struct {
    int n, c, h, w;
    int pad_t, pad_b, pad_l, pad_r;
} vkr_pad_shape;
vkr_status vkr_zeropad_forward(vkr_cmd *cmd, const vkr_pad_shape *p, vkr_buffer *out, vkr_buffer *inp);
vkr_status vkr_zeropad_backward(vkr_cmd *cmd, const vkr_pad_shape *p, vkr_buffer *dinp, vkr_buffer *dout);

/* -------------------------------------------------------------- pooling */
typedef struct {
    int n, c, h, w;
    int kh, kw;
    int stride_h, stride_w;
    int pad_t, pad_b, pad_l, pad_r;
    int count_include_pad; /* avg pool: 1 = divide by kh*kw (torch default), 0 = by the valid count (Keras) */
    int ceil_mode;         /* output size rounds up (torch / ONNX): the last window may run past the padded
                              input but starts inside the input or its top / left padding; cells past the
                              padding never count (max: never win; avg: not in either divisor) */
} vkr_pool_shape;
/* output size of one dimension: in + pads - k over stride s, rounded down or (ceil) up */
static inline int vkr_pool_out_dim(int in, int before, int after, int k, int s, int ceil_mode) {
    int o = (in + before + after - k) / s + 1;
    if (ceil_mode) {
        o = (in + before + after - k + s - 1) / s + 1;
        if ((o - 1) * s >= in + before) o--;
    }
    return o;
}
static inline int vkr_pool_out_h(const vkr_pool_shape *p) {
    return vkr_pool_out_dim(p->h, p->pad_t, p->pad_b, p->kh, p->stride_h, p->ceil_mode);
}
static inline int vkr_pool_out_w(const vkr_pool_shape *p) {
    return vkr_pool_out_dim(p->w, p->pad_l, p->pad_r, p->kw, p->stride_w, p->ceil_mode);
}

/* argmax[N,C,OH,OW] (int32, flat index into the input image plane h*W+w) is saved for backward.
 * Padding never wins (it is -inf, as in Keras and torch). */
vkr_status vkr_maxpool_forward(vkr_cmd *cmd, const vkr_pool_shape *p, vkr_buffer *out, vkr_buffer *argmax, vkr_buffer *inp);
vkr_status vkr_maxpool_backward(vkr_cmd *cmd, const vkr_pool_shape *p, vkr_buffer *dinp, vkr_buffer *dout, vkr_buffer *argmax);
vkr_status vkr_avgpool_forward(vkr_cmd *cmd, const vkr_pool_shape *p, vkr_buffer *out, vkr_buffer *inp);
vkr_status vkr_avgpool_backward(vkr_cmd *cmd, const vkr_pool_shape *p, vkr_buffer *dinp, vkr_buffer *dout);
/* out[N,C] = mean over H*W of inp[N,C,H,W] */
vkr_status vkr_gap_forward(vkr_cmd *cmd, int n, int c, int hw, vkr_buffer *out, vkr_buffer *inp);
vkr_status vkr_gap_backward(vkr_cmd *cmd, int n, int c, int hw, vkr_buffer *dinp, vkr_buffer *dout);

/* --------------------------------------------------------------- concat */
/* out[N, ca+cb, HW] = [a[N,ca,HW], b[N,cb,HW]] along channels */
vkr_status vkr_concat_forward(vkr_cmd *cmd, int n, int ca, int cb, int hw, vkr_buffer *out, vkr_buffer *a, vkr_buffer *b);
vkr_status vkr_concat_backward(vkr_cmd *cmd, int n, int ca, int cb, int hw, vkr_buffer *da, vkr_buffer *db, vkr_buffer *dout);

/* -------------------------------------------------------- softmax / loss */
/* out[B,K] = softmax over K of inp[B,K] (max-subtracted) */
vkr_status vkr_softmax_forward(vkr_cmd *cmd, int batch, int classes, vkr_buffer *out, vkr_buffer *inp);
/* Fused softmax + categorical cross-entropy with targets[B,K] (one-hot or soft).
 * probs[B,K] = softmax(logits); result[0] = mean loss over the batch,
 * result[1] = number of rows whose argmax(logits) == argmax(targets). */
vkr_status vkr_softmax_ce_forward(vkr_cmd *cmd, int batch, int classes, vkr_buffer *result, vkr_buffer *probs,
                                  vkr_buffer *logits, vkr_buffer *targets);
/* dlogits = (probs * rowsum(targets) - targets) / batch: the gradient of the mean loss for any non-negative
 * targets (one-hot or smoothed rows sum to 1: (probs - targets) / batch; a row scaled by its class weight w
 * sums to w: the class-weighted loss of Keras class_weight) */
vkr_status vkr_softmax_ce_backward(vkr_cmd *cmd, int batch, int classes, vkr_buffer *dlogits, vkr_buffer *probs,
                                   vkr_buffer *targets);

/* -------------------------------------------------------------- dropout */
/* The mask of one dropout application: the same key gives the same mask (forward, backward and a
 * recomputation of one step; a rerun or a resumed run). */
typedef struct {
    float rate;      /* P in [0, 1): the fraction of elements dropped */
    uint64_t seed;   /* the run's seed */
    uint32_t salt;   /* the layer (a hash of its name) */
    uint32_t step;   /* the optimizer step */
} vkr_dropout_key;
/* Inverted dropout: out[i] = keep(first + i) ? inp[i] * vkr_dropout_scale(rate) : 0, the mask a
 * counter-based hash of (key, element index first + i) -- no mask buffer: the backward is the
 * same call on the gradient (din = mask(dout)).  keep(j) holds with probability
 * 1 - floor(rate * 2^24) / 2^24 (runtime/ref/dropout_ref.c spells the hash out).  In-place safe. */
vkr_status vkr_dropout(vkr_cmd *cmd, uint64_t n, uint64_t first, const vkr_dropout_key *key, vkr_buffer *out,
                       vkr_buffer *inp);
float vkr_dropout_scale(float rate); /* (float)(1 / (1 - rate)) */

/* ----------------------------------------------------------- optimizers */
typedef struct {
    float lr;
    float momentum;      /* SGD */
    int nesterov;        /* SGD */
    float beta1, beta2;  /* Adam (Keras: .9, .999) */
    float eps;           /* Adam (Keras: 1e-7) */
    float l2;            /* L2 penalty: grad += l2 * param (coupled) */
    float weight_decay;  /* decoupled: param -= lr * weight_decay * param */
    uint32_t step;       /* Adam: 1-based step number t of this update */
} vkr_optim_params;
/* Keras SGD: v = momentum*v - lr*g; p += v (nesterov: p += momentum*v - lr*g) */
vkr_status vkr_sgd_step(vkr_cmd *cmd, uint64_t n, const vkr_optim_params *o, vkr_buffer *param, vkr_buffer *grad,
                        vkr_buffer *velocity);
/* Keras Adam: lr_t = lr*sqrt(1-b2^t)/(1-b1^t); m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
 * p -= lr_t * m / (sqrt(v) + eps) */
vkr_status vkr_adam_step(vkr_cmd *cmd, uint64_t n, const vkr_optim_params *o, vkr_buffer *param, vkr_buffer *grad,
                         vkr_buffer *m, vkr_buffer *v);

#ifdef __cplusplus
}
#endif
#endif
