# Extra compilations of one shader source with -D defines:
#   vkr_shader_variant(<embedded name> <source file> DEFINE[=VALUE]...)
