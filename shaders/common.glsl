// Shared definitions for vkrun compute shaders.
// Layout convention: tensors are NCHW, fp32, densely packed.
#ifndef VKRUN_COMMON_GLSL
#define VKRUN_COMMON_GLSL

// Flat index of this invocation for 1-D work spread over a 2-D grid
// (the host splits large counts across gl_NumWorkGroups.y, see vkr_grid_1d).
uint vkr_flat_index() {
    return gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x;
}

#endif
