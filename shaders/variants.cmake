# Extra compilations of one shader source with -D defines:
#   vkr_shader_variant(<embedded name> <source file> DEFINE[=VALUE]...)
vkr_shader_variant(add_backward2 add_backward.comp DUAL=1)
vkr_shader_variant(add_relu_forward add_forward.comp RELU=1)
vkr_shader_variant(sgd_plain sgd.comp PLAIN=1)
vkr_shader_variant(gap_forward_small gap_forward.comp SMALL=1)
vkr_shader_variant(gemm_texel_8x4 gemm_texel.comp TM=8 TN=4)
vkr_shader_variant(gemm_texel_8x8 gemm_texel.comp TM=8 TN=8)
vkr_shader_variant(gemm_texel_4x8 gemm_texel.comp TM=4 TN=8)
