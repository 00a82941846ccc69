/* Tolerances of the self-test, one named constant per op and direction, each with where it
 * comes from.  Errors are relative: max |got - ref| / max(max |ref|, floor) (harness.h), the
 * reference computed in double on the very inputs the device got (floats), so a tolerance
 * bounds the device's fp32 rounding only.  u = 2^-24 (fp32 unit roundoff, 6.0e-8); Vulkan
 * lets a division and sqrt be off by 2.5 ulp, exp / log by 3 ulp + a few u.
 * "measured" = the worst error on Mesa lavapipe over every case (vkrun selftest), for scale;
 * the constants are bounds, not fits to one device (the H200 batchnorm case failed once at
 * a tolerance fitted to lavapipe). */
#ifndef VKRUN_ST_TOLERANCES_H
#define VKRUN_ST_TOLERANCES_H

#define ST_U32 0x1p-24 /* fp32 unit roundoff */

/* ---- exact: data movement, selection, sign tests (no arithmetic on the values) ---- */
#define TOL_RELU_FWD 0      /* max(x, 0) */
#define TOL_RELU_BWD 0      /* dout or 0 */
#define TOL_ADD_BWD 0       /* copies of dout */
#define TOL_ZEROPAD 0       /* copies and zeros, forward and backward */
#define TOL_MAXPOOL_FWD 0   /* a copy of the window's maximum (argmax compared exactly) */
#define TOL_CONCAT 0        /* copies, forward and backward */
#define TOL_BN_CONSTANT 0   /* constant channels: out = beta, dgamma = 0 exactly (st_batchnorm.c) */
#define TOL_ACT_EXACT 0     /* clip: a selection; its backward dout or 0 */
#define TOL_NONFINITE 0     /* nonfinite: a flag, compared exactly */

/* ---- one or a few roundings ---- */
/* a*x + b*y: two products and a sum, 3 u relative to |a x| + |b y|, which exceeds max |ref|
 * by up to ~5x over these cases (|a| <= 3, |x|, |y| < 2): 15 u = 9e-7.  measured 4.8e-8. */
#define TOL_AXPBY 1e-6
/* dropout: x * scale with float x and scale, one rounding (the double reference's product is
 * exact): u relative = 6e-8.  (st_dropout.c also checks it bit for bit against the host's float
 * product.) */
#define TOL_DROPOUT 1e-7
/* a + b: one rounding, u relative to |a + b| <= max |ref|: 6e-8 (1.7 u of margin for the
 * device's flush of denormals).  measured 4.0e-8.  Also add + ReLU (the ReLU is exact). */
#define TOL_ADD_FWD 1e-7
/* maxpool backward: dinp sums dout over the windows whose argmax a position is, at most
 * ceil(kh/sh) * ceil(kw/sw) <= 9 terms here: <= 8 roundings, 8 u relative to the sum of |dout|,
 * which is within a few max |dout| <= max |ref| here: 1e-6 = 17 u.  measured 1.3e-7. */
#define TOL_MAXPOOL_BWD 1e-6
/* avgpool: a sum of <= kh*kw = 49 terms (7x7) and one division: (49 + 3) u = 3.1e-6 relative
 * to max |x| (forward) / max |dout| (backward); 1e-5 leaves 3x.  measured 1.9e-7. */
#define TOL_AVGPOOL 1e-5
/* softmax: exp (3 ulp + u), a sum of <= 1001 terms in a tree of <= 10 levels (+ a serial run
 * of <= 4 per invocation), a division: (3 + 14 + 3) u ~ 1.2e-6 relative to max p; 1e-5 covers
 * exp's looser bound on some GPUs (ulp of 2^x at |x| <= 80 scaled logits).  measured 2.0e-7.
 * Also softmax_ce forward (probs; the loss is checked relative to max(|loss|, 1): log adds
 * 3 ulp, the sum over the batch <= 1000 terms in a tree, 10 levels). measured 2.2e-7. */
#define TOL_SOFTMAX 1e-5
#define TOL_SOFTMAX_CE_FWD 1e-5
/* softmax_ce backward: (p - t) / batch, two roundings on |p - t| <= 1: 2 u = 1.2e-7 relative
 * to max |ref| >= 1/batch * (largest |p - t|); 1e-6 = 17 u.  measured 8.7e-8. */
#define TOL_SOFTMAX_CE_BWD 1e-6
/* gap: forward a mean of <= 12544 terms (per-invocation serial runs + a 256-wide tree, so
 * ~ 49 + 8 roundings) and a division: ~ 60 u = 3.6e-6 relative to the data scale (floor
 * max |x| = 3: a mean can be ~0); 1e-5.  measured 2.0e-7.  backward dout / HW: one division,
 * 2.5 ulp = 1.5e-7; 1e-6.  measured 4.9e-8. */
#define TOL_GAP_FWD 1e-5
#define TOL_GAP_FLOOR 3.0 /* max |x| of the gap inputs ([-1, 3)) */
#define TOL_GAP_BWD 1e-6
/* sgd / adam, 5 steps: param (relative to max |param|), displacement param - param0
 * (relative to max(max |displacement|, step * lr)) and state.  A step rounds the update's
 * ~6 operations (sqrt and division for adam) and the param once: ~ 8 u of the update plus
 * u of |param| per step, 5 steps: 40 u + 5 u |param| / |displacement| (<= 10 with the
 * params chosen, st_optim.c) ~ 9e-6; 1e-5.  measured 3.6e-6 (sgd), 7.0e-7 (adam). */
#define TOL_OPTIM_STEP 1e-5

/* act (sigmoid, hard_sigmoid, hard_swish, swish), inputs |x| < 8.  Forward: sigmoid's exp has
 * Vulkan's bound 3 + 2|x| ulp <= 19 ulp, then 1 + e and the division (2.5 ulp): ~ 23 u of the
 * value; swish's product one more; the hard ones 3 roundings.  <= 24 u of max |ref| = 1.4e-6;
 * 1e-5 leaves 7x.  measured 1.1e-7.  Backward: the slope s (1 - s) or s + x s (1 - s) from that s
 * (error ~ 24 u of s, times |x| < 8 in swish's second term) times dout: <= ~ 200 u max |dout|
 * = 1.2e-5 absolute, and max |ref| >= max |dout| / 4 (sigmoid's largest slope) on these inputs:
 * 5e-5 relative.  measured 5.4e-7.  clip is a selection: TOL_ACT_EXACT. */
#define TOL_ACT_FWD 1e-5
#define TOL_ACT_BWD 5e-5

/* multiply: one product, u relative to |a b| <= max |ref|: 6e-8 (and da = dout * b alike);
 * 1e-7 as TOL_ADD_FWD.  The broadcast's db is a sum over a plane of HW products: per-invocation
 * serial runs (<= 256 terms for HW <= 256, else ceil(HW / 256) <= 49) and an 8-level tree:
 * <= 257 roundings, 257 u = 1.5e-5 relative to the plane's sum of |dout a| (the floor st_cmp
 * gets); 2e-5.  measured 4.1e-8 (forward), 5.0e-8 (da), 7.8e-8 (db). */
#define TOL_MUL 1e-7
#define TOL_MUL_REDUCE 2e-5

/* ---- long accumulations ---- */
/* conv2d / dense (every GEMM kernel, split or not, with fused ReLU / BatchNorm epilogues):
 * fp32 sums of K = C*R*S (forward, <= 16*9 and 512 here), K*R*S (dinp) or N*OH*OW (dweight,
 * <= 3*11*12) products, in K/4-long vec4 chains: error <= K u max |a b| ~ 512 u = 3e-5 in
 * the worst order, ~ sqrt(K) u (1.4e-6) for random signs.  2e-5 relative to max |ref|, with
 * max |ref| ~ sqrt(K) max |a b| for these random inputs.  measured 9.0e-7. */
#define TOL_GEMM 2e-5
/* fp16-input GEMMs (--precision fp16, st_gemm_f16.c).  Against the reference on the inputs
 * rounded to fp16 (runtime/ref/half_ref.c) only the fp32 accumulation differs: TOL_GEMM.
 * Against the plain fp32 reference: each input rounding is within u16 = 2^-11 relative (no
 * subnormals: the inputs are >= 0.1 in magnitude), so a product is within (2 u16 + u16^2)
 * |a b| and an output within (2 u16 + u16^2) sum |a b| + the fp32 accumulation: relative to
 * max sum |a b| (the floor st_gemm_f16.c passes) 2^-10 (1 + 2^-11) + TOL_GEMM = 1.0e-3.  For
 * random signs the typical error is ~ sqrt(K) u16 |a b|, well inside; a kernel without the
 * rounding fails the first check (its error is ~ u16 sqrt(K) / sqrt(K), >> TOL_GEMM). */
#define ST_U16 0x1p-11 /* fp16 unit roundoff */
#define TOL_GEMM_F16 (2 * ST_U16 * (1 + ST_U16) + TOL_GEMM)
/* bf16 inputs (--precision bf16): the same bound with bf16's unit roundoff 2^-8 (8 significant
 * bits): 2^-7 (1 + 2^-8) + TOL_GEMM = 7.9e-3 relative to max sum |a b|. */
#define ST_UBF16 0x1p-8 /* bf16 unit roundoff */
#define TOL_GEMM_BF16 (2 * ST_UBF16 * (1 + ST_UBF16) + TOL_GEMM)
/* batchnorm (the derivation of the former BN_FWD_TOL / BN_BWD_TOL): the longest
 * accumulation chain is a serial per-invocation sum of <= ceil(20000 / 256) = 79 terms, 8 tree
 * levels over 256 invocations and a few merges of block / chunk partials: <= 96 roundings.
 * Forward (out, saved mean / invstd, running stats): mean and M2 carry <= 96 u relative to
 * their scale; xhat adds the subtraction, the sqrt and the division (2.5 ulp), the output's
 * fma one more: 4 * 96 u = 2.3e-5.  measured 2.3e-7.  Backward: dinp = gamma invstd (dout -
 * S1/n - xhat S2/n) combines two such sums, xhat's error times S2/n, and the cancellation of
 * three terms of size max |dout|: 16 * 96 u = 9.2e-5.  measured 2.7e-7. */
#define TOL_BN_ACC_LEN 96
#define TOL_BN_FWD (4 * TOL_BN_ACC_LEN * ST_U32)
#define TOL_BN_BWD (16 * TOL_BN_ACC_LEN * ST_U32)

/* ---- references against central finite differences (all in double) ---- */
/* (L(x + h) - L(x - h)) / 2h has truncation error h^2 |f'''| / 6 and rounding error
 * ~ eps_64 |L| / h.  Piecewise-linear ops (relu, add, pools, pad, concat): no truncation
 * error, h = 1e-6 gives ~ 1e-16 * 10 / 1e-6 = 1e-9 (measured <= 1.4e-9).  Smooth ops: h = 1e-5
 * (batchnorm, gap, softmax_ce: truncation ~ 1e-10 * |f'''|, measured <= 7e-8), 1e-3 for
 * conv2d / dense (linear in each input: no truncation; a large h keeps rounding at 1e-13).
 * 1e-6 relative to max |analytic| is far below any real mistake (a wrong term is O(1)). */
#define TOL_FD 1e-6
#define FD_H_PIECEWISE 1e-6
#define FD_H_SMOOTH 1e-5
#define FD_H_LINEAR 1e-3

#endif
