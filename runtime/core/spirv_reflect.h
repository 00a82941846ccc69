/* Reflection of a compute shader's SPIR-V words: workgroup size, the kind of each
 * descriptor binding (set 0) and the size of the push-constant block.  Used by
 * pipeline creation (runtime/core/pipeline.c) and, at build time, by the generator of
 * the shader table (cmake/shader_reflect.c), so both read the shaders the same way.
 * Plain C, no Vulkan: the generator links it alone. */
#ifndef VKRUN_SPIRV_REFLECT_H
#define VKRUN_SPIRV_REFLECT_H

#include <stddef.h>
#include <stdint.h>

#define VKR_SPIRV_MAX_BINDINGS 31

/* Binding kinds, one character per binding (the alphabet of vkr_pipeline_desc.bindings):
 *   's' storage buffer, 't' uniform texel buffer (a pipeline binds it as 't' RGBA32F or
 *   'r' R32F), 'u' uniform buffer, 'i' storage texel buffer, '-' binding number unused. */
typedef struct {
    uint32_t local_size[3];      /* the workgroup size without specialization (1,1,1 if undeclared) */
    uint32_t local_size_spec[3]; /* the SpecId that sets each dimension (local_size_x_id), or ~0u */
    uint32_t nspec;              /* highest SpecId + 1 (0: no specialization constant) */
    uint32_t nbind;              /* highest binding number + 1 */
    char kinds[VKR_SPIRV_MAX_BINDINGS + 1];
    uint32_t push_size;     /* bytes of the push-constant block (end of its last member), 0 if none */
} vkr_spirv_info;

/* Returns 0, or -1 with a message in err when the module is malformed or uses what vkrun
 * does not (a descriptor set other than 0, more than 31 bindings, an unsized push member). */
int vkr__spirv_reflect(const uint32_t *words, size_t nwords, vkr_spirv_info *out, char *err, size_t errsize);

#endif
