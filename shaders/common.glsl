// Shared definitions for vkrun compute shaders.
// Layout convention: tensors are NCHW, fp32, densely packed.
#ifndef VKRUN_COMMON_GLSL
#define VKRUN_COMMON_GLSL

// Flat index of this invocation for 1-D work spread over a 2-D grid (the host
// splits large counts across gl_NumWorkGroups.y, see vkr_grid_1d).  A macro, so
// that gl_WorkGroupSize is read where it is used — after the shader's
// layout(local_size_x = ...) declaration, wherever this header is included.
#define vkr_flat_index() \
    (gl_GlobalInvocationID.x + gl_GlobalInvocationID.y * gl_NumWorkGroups.x * gl_WorkGroupSize.x)

#endif
