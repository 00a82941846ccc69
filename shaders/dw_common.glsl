// Depthwise convolution (groups == C == K): push constants shared by dw_forward, dw_bwd_data and
// dw_bwd_weight (runtime/ops/depthwise.c).  NCHW, weight [C][1][R][S], any stride, dilation and
// (asymmetric) padding; nb images of this batch chunk; offI / offO: element offsets of the input
// and of the output-shaped tensor inside their bindings.
#ifndef VKRUN_DW_COMMON_GLSL
#define VKRUN_DW_COMMON_GLSL
layout(push_constant) uniform P {
    int nb, C, H, W, OH, OW, R, S;
    int sh, sw, pt, pl, dh, dw;
    int offI, offO;
    int flags; // forward: bit 0 bias, bit 1 ReLU (after), bit 2 inference BN (bias planes 1..3); wgrad: bit 3 beta
    int pad_;
    uvec2 mg_a, mg_h, mg_c; // magic divisors (vkr__bn_magic) of the invocation index: blocks per row, rows, C
} p;

// Exact x / d for x < 2^31 from the host's magic pair (reduce.glsl's red_udiv): integer division by
// a push constant is a per-lane scalar loop on llvmpipe, this a multiply and a shift.
uint dw_udiv(uint x, uvec2 mg) {
    if (mg.x == 0u) return x;
    uint hi, lo;
    umulExtended(x, mg.x, hi, lo);
    return hi >> mg.y;
}
// Invocation t -> (plane = img*C + c ... as img, c), row, block: t = ((img*C + c)*rows + row)*blocks + blk
void dw_split(uint t, int blocks, int rows, out int img, out int c, out int row, out int blk) {
    uint q = dw_udiv(t, p.mg_a);
    blk = int(t - q * uint(blocks));
    uint pl = dw_udiv(q, p.mg_h);
    row = int(q - pl * uint(rows));
    uint im = dw_udiv(pl, p.mg_c);
    c = int(pl - im * uint(p.C));
    img = int(im);
}
#define DW_RUN 8 // consecutive outputs along W per invocation (forward, data gradient)
#define DW_MAXS 7 // row reuse (unit stride and dilation along W, S <= DW_MAXS): one load per input
                  // column of the DW_RUN + S - 1 the outputs need, not S per output
#endif
