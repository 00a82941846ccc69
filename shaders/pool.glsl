// Shared by the pooling shaders (maxpool_*, avgpool_*): push constants
// (runtime/ops/elem_split.h vkr__pool_push, keep in sync) and window ranges.
#ifndef VKRUN_POOL_GLSL
#define VKRUN_POOL_GLSL

layout(push_constant) uniform PoolParams {
    uint total;          // invocations in this dispatch
    uint H, W, OH, OW;
    uint KH, KW, SH, SW;
    uint PT, PL;
    uint include_pad;    // avg pool: 1 = divide by KH*KW, 0 = by the valid count, 2 = by the cells inside the
                         // padded input (ceil_mode with padding counted: the overhang past it does not)
    uint base0, base1, base2; // float offset of the first plane in bindings 0..2
    uint EH, EW;         // end of the padded input: H + pad_b, W + pad_r
} pp;

// Cells of the window of output o inside the padded input [-P, E) (include_pad 2).
int pool_span(uint o, uint K, uint S, uint P, uint E) {
    int start = int(o * S) - int(P);
    return min(start + int(K), int(E)) - start;
}

// Output rows [lo, hi) whose window (rows o*S - P .. o*S - P + K - 1) covers input row i.
void pool_covering(uint i, uint K, uint S, uint P, uint O, out uint lo, out uint hi) {
    uint t = i + P;                      // position in the padded input
    lo = t + 1 > K ? (t + 1 - K + S - 1) / S : 0u;
    hi = min(t / S + 1u, O);
}

// Valid input rows [lo, hi) of the window of output row o.
void pool_window(uint o, uint K, uint S, uint P, uint N, out int lo, out int hi) {
    int start = int(o * S) - int(P);
    lo = max(start, 0);
    hi = min(start + int(K), int(N));
}

#endif
