// Workgroup reductions and index helpers shared by the batch-norm and
// global-average-pool shaders.  Include after declaring local_size_x = RED_WG
// (default 256, must be a power of two).  No float atomics anywhere: sums are
// per-invocation partials folded by a shared-memory tree (pairwise), so the
// result is deterministic.
#ifndef VKRUN_REDUCE_GLSL
#define VKRUN_REDUCE_GLSL

#ifndef RED_WG
#define RED_WG 256
#endif

shared vec4 red_s[RED_WG];

// Sum of v over the workgroup, returned to every invocation.
// Must be reached by all invocations of the workgroup (uniform control flow).
vec4 red_sum4(vec4 v) {
    uint t = gl_LocalInvocationIndex;
    red_s[t] = v;
    barrier();
    for (uint s = RED_WG / 2u; s > 0u; s >>= 1) {
        if (t < s) red_s[t] += red_s[t + s];
        barrier();
    }
    vec4 r = red_s[0];
    barrier();
    return r;
}
vec2 red_sum2(vec2 v) { return red_sum4(vec4(v, 0.0, 0.0)).xy; }
float red_sum(float v) { return red_sum4(vec4(v, 0.0, 0.0, 0.0)).x; }

// Chan et al. merge of (count, mean, M2) triples (M2 = sum of squared deviations).
vec3 red_chan_merge(vec3 a, vec3 b) {
    float n = a.x + b.x;
    if (b.x == 0.0) return a;
    if (a.x == 0.0) return b;
    float d = b.y - a.y;
    float f = b.x / n;
    return vec3(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}
// Workgroup merge of (count, mean, M2); result to every invocation.
vec3 red_chan3(vec3 v) {
    uint t = gl_LocalInvocationIndex;
    red_s[t] = vec4(v, 0.0);
    barrier();
    for (uint s = RED_WG / 2u; s > 0u; s >>= 1) {
        if (t < s) red_s[t] = vec4(red_chan_merge(red_s[t].xyz, red_s[t + s].xyz), 0.0);
        barrier();
    }
    vec3 r = red_s[0].xyz;
    barrier();
    return r;
}

// Exact x / d for x < 2^31 with a host-computed magic pair (see vkr__bn_magic):
// mg.x = ceil(2^(32+k) / d), mg.y = k; mg.x == 0 means d == 1.
uint red_udiv(uint x, uvec2 mg) {
    if (mg.x == 0u) return x;
    uint hi, lo;
    umulExtended(x, mg.x, hi, lo);
    return hi >> mg.y;
}

// Flat workgroup index over a 2-D grid of workgroups.
uint red_group_index() { return gl_WorkGroupID.x + gl_WorkGroupID.y * gl_NumWorkGroups.x; }

#endif
