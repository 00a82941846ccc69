# Extra compilations of one shader source with -D defines:
#   vkr_shader_variant(<embedded name> <source file> DEFINE[=VALUE]...)
vkr_shader_variant(add_backward2 add_backward.comp DUAL=1)
