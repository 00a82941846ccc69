// Shared definitions of the conv/dense GEMM kernels (gemm_tiled.comp, gemm_texel.comp).
//
// Every conv2d / dense direction is one GEMM  C[m][n] (+)= sum_k A(m,k) * B(k,n)  whose
// operands are read in place from the NCHW / OIHW tensors (implicit GEMM, no im2col):
//
//   DIR_FWD   m = out channel ko, n = output pixel (img,oh,ow), k = (c,r,s)
//             A = weight[ko][c][r][s]            B = inp[img][c][oh*sh-pt+r*dh][ow*sw-pl+s*dw]
//             C = out[img][ko][oh][ow] (+ bias[ko])
//   DIR_DGRAD one stride phase (ph,pw): input pixels ih = ph + sh*i, iw = pw + sw*j; only the taps
//             r = r0 + sh*tr, s = s0 + sw*ts (r0 = (ph+pt) mod sh) reach them, and then
//             oh = (ih+pt-r)/sh exactly.  m = c, n = (img,i,j), k = (ko,tr,ts)
//             A = weight[ko][c][r][s]            B = dout[img][ko][oh][ow]   C = dinp[img][c][ih][iw]
//   DIR_WGRAD m = ko, n = (c,r,s), k = (img,oh,ow) (reduction over batch and space)
//             A = dout[img][ko][oh][ow]          B = inp[img][c][oh*sh-pt+r][ow*sw-pl+s]
//             C = dweight[ko][c][r][s] (beta = 1 accumulates the partial of a later batch chunk)
// A dense layer is the 1x1 conv with H = W = 1.  Out-of-image taps read as zero.
//
// Split-K (WGRAD, spec constant SPLITK = 1, klen > 0): workgroup z is the split index s; it reduces k in
// [s*klen, min((s+1)*klen, Kr)) and writes its partial product to C + s*M*N (scratch);
// gemm_splitk_reduce.comp then sums the partials in split order (deterministic).
// Without a split, z folds x blocks beyond the per-dimension workgroup limit.
#ifndef VKRUN_GEMM_CONV_GLSL
#define VKRUN_GEMM_CONV_GLSL

// Operand precision (the --precision variants in variants.cmake): GEMM_OPV is the type operand
// tiles are kept in, GEMM_OPS(x) the conversion into it, gemm_round_op(v) rounds fp32 operands
// to the nearest value of the format (as an fp32 vec4).  Accumulation is fp32 either way.
//   PREC_F16:  IEEE binary16 (needs shaderFloat16), tiles kept as f16vec4;
//   PREC_BF16: bfloat16 (8 significant bits, fp32's exponent range), rounded to nearest even on
//              the fp32 bit pattern (any device); tiles stay vec4 holding bf16 values.
// Both formats round in integer arithmetic on the fp32 bits, not with a float conversion: the
// Vulkan spec leaves the rounding of a conversion to a narrower float undefined (either
// neighbour; past the largest finite value the largest finite value or inf), and a compiler
// may drop a round trip fp32 -> fp16 -> fp32 that is not NoContraction (Mesa 25's NIR folds
// ~f2f32(f2f16(a)) to a, and glslang puts NoContraction on arithmetic only, not on
// OpFConvert).  So the values are runtime/ref/half_ref.c's on every driver: nearest even, inf
// from 65520 on, fp16 subnormals kept; the fp16 tiles then hold these values exactly.
#ifdef PREC_F16
#extension GL_EXT_shader_explicit_arithmetic_types_float16 : require
#define GEMM_OPV f16vec4
float gemm_round_f16(float x) {
    uint u = floatBitsToUint(x), a = u & 0x7FFFFFFFu;
    uint r = (a + 0xFFFu + ((a >> 13) & 1u)) & 0xFFFFE000u; // normal fp16 range: 10 bits kept
    if (a < 0x38800000u) // below 2^-14: multiples of 2^-24 (scaling by powers of 2 is exact)
        r = floatBitsToUint(roundEven(uintBitsToFloat(a) * 16777216.0) * (1.0 / 16777216.0));
    r = a >= 0x477FF000u ? 0x7F800000u : r; // from 65520 on (and inf): inf
    r = a > 0x7F800000u ? a : r;            // NaN stays NaN
    return uintBitsToFloat(r | (u & 0x80000000u));
}
#define GEMM_OPS(x) float16_t(gemm_round_f16(x)) // exact: the value is an fp16 already
vec4 gemm_round_op(vec4 v) {
    return vec4(gemm_round_f16(v.x), gemm_round_f16(v.y), gemm_round_f16(v.z), gemm_round_f16(v.w));
}
#elif defined(PREC_BF16)
#define GEMM_OPV vec4
float gemm_round_bf16(float x) { // NaN stays NaN; past bf16's largest value: inf
    uint u = floatBitsToUint(x);
    uint r = (u + 0x7FFFu + ((u >> 16) & 1u)) & 0xFFFF0000u;
    return isnan(x) ? x : uintBitsToFloat(r);
}
#define GEMM_OPS(x) gemm_round_bf16(x)
vec4 gemm_round_op(vec4 v) {
    return vec4(gemm_round_bf16(v.x), gemm_round_bf16(v.y), gemm_round_bf16(v.z), gemm_round_bf16(v.w));
}
#else
#define GEMM_OPV vec4
#define GEMM_OPS(x) (x)
vec4 gemm_round_op(vec4 v) { return v; }
#endif

#define DIR_FWD 0
#define DIR_DGRAD 1
#define DIR_WGRAD 2

layout(push_constant) uniform P {
    int M, N, Kr;        // GEMM sizes
    int nb, C, H, W;     // input (nb = images in this batch chunk)
    int K, R, S;         // output channels, kernel
    int sh, sw, pt, pl;  // stride, top/left padding
    int OH, OW;          // output size
    int offA, offB, offC; // element offsets of the tensors inside their bindings
    int klen;            // split-K (WGRAD): reduction indices per split, 0 = no split (see below)
    int beta;            // 1: C += result (accumulate), 0: C = result
    int hasBias;         // bit 0: add bias[m] (FWD); bit 2: then inference BN (bias planes 1..3); bit 1: then ReLU
    int ph, pw, r0, s0, rr, ss, hh, ww; // DGRAD phase (see above); hh x ww pixels, rr x ss taps
                                        // FWD: ph = element offset of the bias (a group's first channel),
                                        // pw = stride of the bias planes (0: M) -- grouped convolutions
    int dh, dw;                         // dilation (1: none)
} p;

// Dilation: the tap r reads input row oh*sh - pt + r*dh.  DGRAD: the taps reaching one stride
// phase are r0 + tstep*tr (tstep = sh / gcd(sh, dh)), and each step moves the output row by
// tdec = dh / gcd(sh, dh) (both 1-dilation values: sh and 1, the maps above).
int gemm_gcd(int a, int b) {
    while (b != 0) {
        int t = a % b;
        a = b;
        b = t;
    }
    return a;
}
ivec4 gemm_dgrad_steps() { // (tstep_h, tstep_w, tdec_h, tdec_w)
    int gh = gemm_gcd(p.sh, p.dh), gw = gemm_gcd(p.sw, p.dw);
    return ivec4(p.sh / gh, p.sw / gw, p.dh / gh, p.dw / gw);
}
// FWD epilogue: bias plane `plane` (0 the bias, 1..3 the BatchNorm) of output channel m
int gemm_bias_idx(int plane, int m) { return p.ph + plane * (p.pw != 0 ? p.pw : p.M) + m; }

// Element index of C(m,n).
int gemm_idx_c(int dir, int m, int n) {
    if (dir == DIR_FWD) {
        int ohw = p.OH * p.OW;
        int img = n / ohw;
        return p.offC + (img * p.K + m) * ohw + (n - img * ohw);
    }
    if (dir == DIR_DGRAD) {
        int hw = p.hh * p.ww;
        int img = n / hw;
        int q = n - img * hw;
        int i = q / p.ww;
        int j = q - i * p.ww;
        return p.offC + ((img * p.C + m) * p.H + p.ph + p.sh * i) * p.W + p.pw + p.sw * j;
    }
    return p.offC + m * p.N + n; // WGRAD: the split's partial adds s*M*N (gemm_split)
}

// This workgroup's split s and reduction range [kb, ke); x block index.  `split` is a
// specialization constant of the including kernel (1 only for split-K dispatches), so the
// unsplit kernels compile exactly as without split-K.
struct GemmSplit { int s, kb, ke, xblk; };
GemmSplit gemm_split(bool split) {
    GemmSplit g;
    if (split) {
        g.s = int(gl_WorkGroupID.z);
        g.kb = g.s * p.klen;
        g.ke = min(g.kb + p.klen, p.Kr);
        g.xblk = int(gl_WorkGroupID.x);
    } else {
        g.s = 0;
        g.kb = 0;
        g.ke = p.Kr;
        g.xblk = int(gl_WorkGroupID.x + gl_WorkGroupID.z * gl_NumWorkGroups.x);
    }
    return g;
}

#endif
