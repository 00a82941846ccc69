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
} p;
#define DW_RUN 8 // consecutive outputs along W per invocation (forward, data gradient)
#define DW_MAXS 7 // row reuse (unit stride and dilation along W, S <= DW_MAXS): one load per input
                  // column of the DW_RUN + S - 1 the outputs need, not S per output
#endif
