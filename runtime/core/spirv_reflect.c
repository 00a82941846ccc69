/* SPIR-V reflection for compute shaders (see spirv_reflect.h). */
#include "core/spirv_reflect.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    OP_EXECUTION_MODE = 16, OP_TYPE_INT = 21, OP_TYPE_FLOAT = 22, OP_TYPE_VECTOR = 23, OP_TYPE_MATRIX = 24,
    OP_TYPE_IMAGE = 25, OP_TYPE_SAMPLED_IMAGE = 27, OP_TYPE_ARRAY = 28, OP_TYPE_STRUCT = 30, OP_TYPE_POINTER = 32,
    OP_CONSTANT = 43, OP_CONSTANT_COMPOSITE = 44, OP_SPEC_CONSTANT = 50, OP_SPEC_CONSTANT_COMPOSITE = 51,
    OP_VARIABLE = 59, OP_DECORATE = 71, OP_MEMBER_DECORATE = 72, OP_EXECUTION_MODE_ID = 331,
};
enum { DEC_SPEC_ID = 1, DEC_BLOCK = 2, DEC_BUFFER_BLOCK = 3, DEC_ARRAY_STRIDE = 6, DEC_MATRIX_STRIDE = 7,
       DEC_BUILTIN = 11, DEC_BINDING = 33, DEC_DESCRIPTOR_SET = 34, DEC_OFFSET = 35 };
enum { EM_LOCAL_SIZE = 17, EM_LOCAL_SIZE_ID = 38, BUILTIN_WORKGROUP_SIZE = 25 };
enum { SC_UNIFORM_CONSTANT = 0, SC_UNIFORM = 2, SC_PUSH_CONSTANT = 9, SC_STORAGE_BUFFER = 12 };
#define DIM_BUFFER 5
#define NONE 0xffffffffu

typedef struct {
    const uint32_t *def;   /* the instruction defining this id (type, constant, variable), or NULL */
    uint32_t binding, set, array_stride, block; /* decorations (NONE / 0 when absent) */
    uint32_t spec_id;                           /* SpecId decoration (NONE when absent) */
} id_info;

typedef struct {
    const uint32_t *w;
    size_t n;
    id_info *ids;
    uint32_t bound;
    char *err;
    size_t errsize;
} reflector;

static int fail(reflector *r, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    if (r->errsize) vsnprintf(r->err, r->errsize, fmt, ap);
    va_end(ap);
    return -1;
}

static const uint32_t *def_of(const reflector *r, uint32_t id) { return id < r->bound ? r->ids[id].def : NULL; }

/* Offset decoration of member m of struct id (NONE if absent). */
static uint32_t member_offset(const reflector *r, uint32_t id, uint32_t m) {
    for (size_t i = 5; i < r->n;) {
        uint32_t op = r->w[i] & 0xffff, len = r->w[i] >> 16;
        if (op == OP_MEMBER_DECORATE && len >= 5 && r->w[i + 1] == id && r->w[i + 2] == m && r->w[i + 3] == DEC_OFFSET)
            return r->w[i + 4];
        i += len;
    }
    return NONE;
}

/* Bytes a value of type id occupies in an explicitly laid-out block (0: unknown). */
static uint32_t type_size(const reflector *r, uint32_t id, int depth) {
    const uint32_t *d = def_of(r, id);
    if (!d || depth > 16) return 0;
    switch (d[0] & 0xffff) {
    case OP_TYPE_INT:
    case OP_TYPE_FLOAT: return d[2] / 8;
    case OP_TYPE_VECTOR: return d[3] * type_size(r, d[2], depth + 1);
    case OP_TYPE_MATRIX: return d[3] * type_size(r, d[2], depth + 1); /* column-major, tight columns */
    case OP_TYPE_ARRAY: {
        const uint32_t *len = def_of(r, d[3]);
        if (!len || (len[0] & 0xffff) != OP_CONSTANT) return 0;
        uint32_t stride = r->ids[id].array_stride ? r->ids[id].array_stride : type_size(r, d[2], depth + 1);
        return len[3] * stride;
    }
    case OP_TYPE_STRUCT: {
        uint32_t end = 0;
        for (uint32_t m = 0; m + 2 < (d[0] >> 16); m++) {
            uint32_t off = member_offset(r, id, m), sz = type_size(r, d[2 + m], depth + 1);
            if (off == NONE || sz == 0) return 0;
            if (off + sz > end) end = off + sz;
        }
        return end;
    }
    default: return 0;
    }
}

/* Kind of a variable of storage class sc whose pointee is type id. */
static char kind_of(const reflector *r, uint32_t sc, uint32_t id) {
    const uint32_t *d = def_of(r, id);
    if (!d) return '?';
    uint32_t op = d[0] & 0xffff;
    if (sc == SC_STORAGE_BUFFER) return 's';
    if (sc == SC_UNIFORM && op == OP_TYPE_STRUCT) return r->ids[id].block == DEC_BUFFER_BLOCK ? 's' : 'u';
    if (sc == SC_UNIFORM_CONSTANT && op == OP_TYPE_SAMPLED_IMAGE) d = def_of(r, d[2]);
    if (sc == SC_UNIFORM_CONSTANT && d && (d[0] & 0xffff) == OP_TYPE_IMAGE && d[3] == DIM_BUFFER)
        return d[7] == 2 ? 'i' : 't';
    return '?';
}

/* Dimension i of the workgroup size from the 32-bit (spec) constant id: its value, and its
 * SpecId when a specialization can change it. */
static int size_from_constant(const reflector *r, uint32_t id, vkr_spirv_info *out, int i) {
    const uint32_t *c = def_of(r, id);
    uint32_t op = c ? c[0] & 0xffff : 0;
    if ((op != OP_CONSTANT && op != OP_SPEC_CONSTANT) || (c[0] >> 16) != 4) return -1;
    out->local_size[i] = c[3];
    out->local_size_spec[i] = op == OP_SPEC_CONSTANT ? r->ids[id].spec_id : NONE;
    return 0;
}

int vkr__spirv_reflect(const uint32_t *words, size_t nwords, vkr_spirv_info *out, char *err, size_t errsize) {
    reflector r = {words, nwords, NULL, 0, err, errsize};
    memset(out, 0, sizeof *out);
    out->local_size[0] = out->local_size[1] = out->local_size[2] = 1;
    out->local_size_spec[0] = out->local_size_spec[1] = out->local_size_spec[2] = NONE;
    if (nwords < 5 || words[0] != 0x07230203u) return fail(&r, "not a SPIR-V module");
    r.bound = words[3];
    if (r.bound == 0 || r.bound > (1u << 22)) return fail(&r, "SPIR-V id bound %u out of range", r.bound);
    r.ids = calloc(r.bound, sizeof *r.ids);
    if (!r.ids) return fail(&r, "out of host memory");
    for (uint32_t i = 0; i < r.bound; i++) r.ids[i].binding = r.ids[i].set = r.ids[i].spec_id = NONE;
    int rc = 0;
    uint32_t wg_builtin = NONE;         /* the constant decorated BuiltIn WorkgroupSize */
    const uint32_t *size_ids = NULL; /* LocalSizeId's three constants */
    /* pass 1: definitions and decorations */
    for (size_t i = 5; i < nwords && !rc;) {
        uint32_t op = words[i] & 0xffff, len = words[i] >> 16;
        if (len == 0 || i + len > nwords) {
            rc = fail(&r, "truncated instruction at word %zu", i);
            break;
        }
        const uint32_t *w = words + i;
        if (op == OP_EXECUTION_MODE && len >= 6 && w[2] == EM_LOCAL_SIZE) memcpy(out->local_size, w + 3, 12);
        if (op == OP_EXECUTION_MODE_ID && len >= 6 && w[2] == EM_LOCAL_SIZE_ID) size_ids = w + 3;
        uint32_t id = NONE;
        if ((op >= OP_TYPE_INT && op <= OP_TYPE_POINTER) && len >= 2) id = w[1];
        if ((op == OP_CONSTANT || op == OP_CONSTANT_COMPOSITE || op == OP_SPEC_CONSTANT ||
             op == OP_SPEC_CONSTANT_COMPOSITE || op == OP_VARIABLE) && len >= 3)
            id = w[2];
        if (id < r.bound) r.ids[id].def = w;
        if (op == OP_DECORATE && len >= 3 && w[1] < r.bound) {
            id_info *t = &r.ids[w[1]];
            if (w[2] == DEC_BINDING && len >= 4) t->binding = w[3];
            if (w[2] == DEC_DESCRIPTOR_SET && len >= 4) t->set = w[3];
            if (w[2] == DEC_ARRAY_STRIDE && len >= 4) t->array_stride = w[3];
            if (w[2] == DEC_BLOCK || w[2] == DEC_BUFFER_BLOCK) t->block = w[2];
            if (w[2] == DEC_SPEC_ID && len >= 4) {
                t->spec_id = w[3];
                if (w[3] < 4096 && w[3] + 1 > out->nspec) out->nspec = w[3] + 1;
            }
            if (w[2] == DEC_BUILTIN && len >= 4 && w[3] == BUILTIN_WORKGROUP_SIZE) wg_builtin = w[1];
        }
        i += len;
    }
    /* The workgroup size: a WorkgroupSize built-in overrides the execution mode (glslang's
     * local_size_x_id gives a spec-constant composite whose defaults are the local_size_x
     * values, 1 where none is given), as does LocalSizeId. */
    const uint32_t *wg = def_of(&r, wg_builtin);
    if (!rc && wg && ((wg[0] & 0xffff) == OP_CONSTANT_COMPOSITE || (wg[0] & 0xffff) == OP_SPEC_CONSTANT_COMPOSITE) &&
        (wg[0] >> 16) == 6)
        size_ids = wg + 3;
    for (int d = 0; size_ids && d < 3 && !rc; d++)
        if (size_from_constant(&r, size_ids[d], out, d)) rc = fail(&r, "workgroup size %d: not a 32-bit constant", d);
    /* pass 2: the interface variables */
    memset(out->kinds, '-', VKR_SPIRV_MAX_BINDINGS);
    for (uint32_t id = 0; id < r.bound && !rc; id++) {
        const uint32_t *v = r.ids[id].def;
        if (!v || (v[0] & 0xffff) != OP_VARIABLE) continue;
        const uint32_t *ptr = def_of(&r, v[1]);
        if (!ptr || (ptr[0] & 0xffff) != OP_TYPE_POINTER) continue;
        uint32_t sc = v[3], pointee = ptr[3];
        if (sc == SC_PUSH_CONSTANT) {
            out->push_size = type_size(&r, pointee, 0);
            if (!out->push_size) rc = fail(&r, "push-constant block (id %u): a member of unknown size", id);
            continue;
        }
        if (sc != SC_UNIFORM && sc != SC_UNIFORM_CONSTANT && sc != SC_STORAGE_BUFFER) continue;
        uint32_t b = r.ids[id].binding, set = r.ids[id].set;
        if (b == NONE) continue;
        if (set != NONE && set != 0) rc = fail(&r, "binding %u in descriptor set %u (vkrun uses set 0 only)", b, set);
        else if (b >= VKR_SPIRV_MAX_BINDINGS) rc = fail(&r, "binding %u (at most %d)", b, VKR_SPIRV_MAX_BINDINGS);
        else if (out->kinds[b] != '-') rc = fail(&r, "binding %u declared twice", b);
        else if ((out->kinds[b] = kind_of(&r, sc, pointee)) == '?') rc = fail(&r, "binding %u: unsupported type", b);
        else if (b + 1 > out->nbind) out->nbind = b + 1;
    }
    out->kinds[out->nbind] = 0;
    free(r.ids);
    return rc;
}
