// Push constants and addressing shared by the batch-norm shaders.
//
// A "chunk" is a range of whole samples [n0, n0 + nb) bound as a sub-range of
// each NCHW tensor; `base` is the float offset of the chunk inside the binding
// (binding offsets are aligned down to the device's storage alignment).
// Element j of channel c inside a chunk (j = n_local * HW + hw) lives at
// base + (n_local * C + c) * HW + hw.
#ifndef VKRUN_REDUCE_BN_GLSL
#define VKRUN_REDUCE_BN_GLSL

#define BN_PARAM_VAR 1u    // per-channel parameter 5 is a variance (inference), else invstd
#define BN_W0 2u           // write accumulator 0 (sum dout -> dbeta)
#define BN_W1 4u           // write accumulator 1 (sum dout*xhat -> dgamma)
#define BN_SLOT 8u         // accumulators live in dinp "slots" (see batchnorm.c)
#define BN_FIRST 16u       // first chunk: accumulators hold nothing yet
#define BN_UNBIASED 32u    // running variance uses n/(n-1)
#define BN_TRAIN 64u       // backward through batch statistics
#define BN_DINP 128u       // dinp is written
#define BN_RUN 4u          // consecutive elements per invocation in element-wise passes

layout(push_constant) uniform BnPush {
    uint C, HW, nb, base;  // channels, plane size, samples in this chunk, chunk offset in the bindings
    uint B, P, jp0, flags; // block size and blocks per channel (two-pass scheme), partials start, flags
    float cnt_prev;        // elements per channel in earlier chunks
    float cnt_total;       // N * HW
    float eps, momentum;
    uvec2 mg_hw, mg_c;     // magic divisors for HW and C (red_udiv)
} pc;

// Float offset (chunk-relative, without base) of element j of channel c.
uint bn_addr(uint c, uint j) {
    uint n = j / pc.HW;
    return (n * pc.C + c) * pc.HW + (j - n * pc.HW);
}
// Accumulator k (0: sum dout, 1: sum dout*xhat) of channel c: either plain [c]
// or the slot = global element k of channel c (binding starts at element 0).
uint bn_acc_addr(uint c, uint k) {
    if ((pc.flags & BN_SLOT) == 0u) return c;
    return pc.HW >= 2u ? c * pc.HW + k : k * pc.C + c;
}

// Iteration over elements j = j0 + t, j0 + t + RED_WG, ... of one channel:
// (n, hw) advance without divisions.
struct BnIt { uint n, hw, dn, dhw; };
BnIt bn_it(uint j) {
    BnIt it;
    it.n = j / pc.HW;
    it.hw = j - it.n * pc.HW;
    it.dn = uint(RED_WG) / pc.HW;
    it.dhw = uint(RED_WG) - it.dn * pc.HW;
    return it;
}
uint bn_it_addr(BnIt it, uint c) { return pc.base + (it.n * pc.C + c) * pc.HW + it.hw; }
void bn_it_next(inout BnIt it) {
    it.hw += it.dhw;
    it.n += it.dn;
    if (it.hw >= pc.HW) {
        it.hw -= pc.HW;
        it.n++;
    }
}

#endif
