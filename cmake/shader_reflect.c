/* Build-time generator: reflects every embedded SPIR-V module (the generated shader table)
 * and writes vkr_shader_ids.h, the compile-time contract between the ops and the shaders:
 *
 *   VKR_SHADER_ID_<name>        enum index of the module in the table (vkr_shader_at)
 *   VKR_SHADER_<name>_NAME      "<name>"
 *   VKR_SHADER_<name>_BINDINGS  binding kinds, one character per binding (core/spirv_reflect.h)
 *   VKR_SHADER_<name>_PUSH_SIZE bytes of the push-constant block
 *   VKR_SHADER(name)            designated initializers of a vkr_pipeline_desc for the shader
 *   VKR_PUSH_CHECK(type, name)  static assertion that sizeof(type) is the shader's push size
 *
 * A misspelt shader name is then an undeclared identifier, and a push-constant struct out of
 * step with its GLSL block a failed static assertion.  The header is rewritten only when its
 * content changes, so editing a shader's code recompiles only what embeds it.
 * usage: vkr_shader_reflect OUT.h */
#include "core/spirv_reflect.h"
#include "vkrun.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#include <stdarg.h>
static int append(char **buf, size_t *len, size_t *cap, const char *fmt, ...) {
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int n = vsnprintf(*buf + *len, *cap - *len, fmt, ap);
        va_end(ap);
        if (n < 0) return -1;
        if (*len + (size_t)n < *cap) {
            *len += (size_t)n;
            return 0;
        }
        size_t cap2 = (*cap + (size_t)n) * 2;
        char *b = realloc(*buf, cap2);
        if (!b) return -1;
        *buf = b, *cap = cap2;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUT.h\n", argv[0]);
        return 2;
    }
    size_t cap = 1 << 16, len = 0;
    char *h = malloc(cap);
    if (!h) return 1;
    h[0] = 0;
    int bad = append(&h, &len, &cap,
                     "/* generated at build time by cmake/shader_reflect.c from the embedded SPIR-V (docs/shaders.md): "
                     "do not edit */\n#ifndef VKRUN_SHADER_IDS_H\n#define VKRUN_SHADER_IDS_H\n\n"
                     "/* vkr_pipeline_desc initializers of an embedded shader: a misspelt name does not compile. */\n"
                     "#define VKR_SHADER(name) .shader = VKR_SHADER_##name##_NAME, .bindings = VKR_SHADER_##name##_BINDINGS, "
                     ".push_size = VKR_SHADER_##name##_PUSH_SIZE\n"
                     "/* The push-constant struct `type` of an op matches the push_constant block of shader `name`. */\n"
                     "#define VKR_PUSH_CHECK(type, name) _Static_assert(sizeof(type) == VKR_SHADER_##name##_PUSH_SIZE, "
                     "\"push-constant struct \" #type \" is not the size of the push_constant block of shaders/\" #name)\n\n"
                     "typedef enum {\n");
    for (size_t i = 0; i < vkr_shader_count(); i++) bad |= append(&h, &len, &cap, "    VKR_SHADER_ID_%s,\n", vkr_shader_at(i)->name);
    bad |= append(&h, &len, &cap, "    VKR_SHADER_COUNT\n} vkr_shader_id;\n\n");
    for (size_t i = 0; i < vkr_shader_count(); i++) {
        const vkr_spirv *m = vkr_shader_at(i);
        vkr_spirv_info info;
        char err[256];
        if (vkr__spirv_reflect(m->words, m->size_bytes / 4, &info, err, sizeof err)) {
            fprintf(stderr, "shader_reflect: shader %s: %s\n", m->name, err);
            free(h);
            return 1;
        }
        bad |= append(&h, &len, &cap,
                      "#define VKR_SHADER_%s_NAME \"%s\"\n#define VKR_SHADER_%s_BINDINGS \"%s\"\n"
                      "#define VKR_SHADER_%s_PUSH_SIZE %uu\n",
                      m->name, m->name, m->name, info.kinds, m->name, info.push_size);
    }
    bad |= append(&h, &len, &cap, "\n#endif\n");
    if (bad) {
        fprintf(stderr, "shader_reflect: out of memory\n");
        free(h);
        return 1;
    }
    /* rewrite only on change */
    FILE *f = fopen(argv[1], "rb");
    if (f) {
        char *old = malloc(len + 1);
        size_t got = old ? fread(old, 1, len + 1, f) : 0;
        int same = old && got == len && memcmp(old, h, len) == 0;
        free(old);
        fclose(f);
        if (same) {
            free(h);
            return 0;
        }
    }
    f = fopen(argv[1], "wb");
    int ok = f && fwrite(h, 1, len, f) == len;
    if (f && fclose(f)) ok = 0;
    free(h);
    if (!ok) {
        fprintf(stderr, "shader_reflect: cannot write %s\n", argv[1]);
        return 1;
    }
    return 0;
}
