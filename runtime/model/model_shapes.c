/* Shape inference, parameter shape checks, initializers, FLOP counts. */
#include "model/model_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static void same_pad(int in, int k, int s, int *before, int *after) {
    int out = (in + s - 1) / s;
    int total = (out - 1) * s + k - in;
    if (total < 0) total = 0;
    *before = total / 2;
    *after = total - *before;
}

/* Creates tensor "<layer>.<slot>" with the given shape, initialized for its role. */
static vkr_status create_param(vkr_model *m, int li, int slot, int ndim, const int64_t *shape, uint64_t seed) {
    vkr_layer *L = &m->layers[li];
    vkr_tensor *nt = realloc(m->tensors, (m->ntensors + 1) * sizeof *nt);
    if (!nt) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    m->tensors = nt;
    vkr_tensor *T = &nt[m->ntensors];
    memset(T, 0, sizeof *T);
    const char *pn = vkr_param_slot_name(L->type, slot);
    size_t len = strlen(L->name) + strlen(pn) + 2;
    T->name = malloc(len);
    if (!T->name) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    snprintf(T->name, len, "%s.%s", L->name, pn);
    T->ndim = ndim;
    T->count = 1;
    for (int d = 0; d < ndim; d++) {
        T->shape[d] = shape[d];
        T->count *= (uint64_t)shape[d];
    }
    T->data = calloc(T->count ? T->count : 1, sizeof(float));
    if (!T->data) {
        free(T->name);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    int is_weight = (L->type == VKR_LAYER_CONV2D || L->type == VKR_LAYER_DENSE) && slot == VKR_PARAM_WEIGHT;
    int is_one = L->type == VKR_LAYER_BATCHNORM && (slot == VKR_PARAM_GAMMA || slot == VKR_PARAM_VAR);
    if (is_weight) {
        /* Glorot uniform (Keras default): limit = sqrt(6 / (fan_in + fan_out)) */
        double rf = ndim == 4 ? (double)shape[2] * shape[3] : 1.0;
        double fan_out = shape[0] * rf, fan_in = shape[1] * rf;
        double lim = sqrt(6.0 / (fan_in + fan_out));
        vkr_rng r;
        vkr_rng_seed(&r, seed ^ (0x51ED2701ull * (uint64_t)(li + 1)));
        for (uint64_t i = 0; i < T->count; i++) T->data[i] = (float)((2 * vkr_rng_uniform(&r, 0, 1) - 1) * lim);
    } else if (is_one) {
        for (uint64_t i = 0; i < T->count; i++) T->data[i] = 1.0f;
    }
    L->param[slot] = m->ntensors;
    m->ntensors++;
    return VKR_OK;
}

static vkr_status check_param(vkr_model *m, int li, int slot, int ndim, const int64_t *shape, uint64_t seed) {
    vkr_layer *L = &m->layers[li];
    if (L->param[slot] == -1) return VKR_OK;
    uint64_t count;
    if (!vkr__shape_count(shape, ndim, 1ull << 34, &count))
        return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\" (%s): its %s would have more than 2^34 elements",
                        vkr__model_label(m), li, L->name, vkr_layer_type_name(L->type), vkr_param_slot_name(L->type, slot));
    if (L->param[slot] == -2) return create_param(m, li, slot, ndim, shape, seed);
    vkr_tensor *T = &m->tensors[L->param[slot]];
    int ok = T->ndim == ndim;
    for (int d = 0; ok && d < ndim; d++) ok = T->shape[d] == shape[d];
    if (ok) return VKR_OK;
    char want[128] = "", got[128] = "";
    for (int d = 0; d < ndim; d++)
        snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? ", " : "", (long long)shape[d]);
    for (int d = 0; d < T->ndim; d++)
        snprintf(got + strlen(got), sizeof got - strlen(got), "%s%lld", d ? ", " : "", (long long)T->shape[d]);
    return vkr_fail(VKR_ERR_FORMAT, "%s: tensor \"%s\" has shape [%s] but layer %d \"%s\" (%s) needs [%s]",
                    vkr__model_label(m), T->name, got, li, L->name, vkr_layer_type_name(L->type), want);
}

static vkr_status window(vkr_model *m, int li, vkr_layer *L, int64_t h, int64_t w, int64_t *oh, int64_t *ow) {
    int kh = L->kernel[0], kw = L->kernel[1], sh = L->strides[0], sw = L->strides[1];
    if (L->pad_mode == VKR_PAD_SAME) {
        same_pad(h, kh, sh, &L->rpad[0], &L->rpad[1]);
        same_pad(w, kw, sw, &L->rpad[2], &L->rpad[3]);
    } else if (L->pad_mode == VKR_PAD_EXPLICIT) {
        memcpy(L->rpad, L->pad, sizeof L->rpad);
    } else {
        memset(L->rpad, 0, sizeof L->rpad);
    }
    int64_t ph = h + L->rpad[0] + L->rpad[1], pw = w + L->rpad[2] + L->rpad[3];
    if (ph < kh || pw < kw)
        return vkr_fail(VKR_ERR_FORMAT,
                        "%s: layer %d \"%s\" (%s): window %dx%d larger than its padded input %lldx%lld (input %lldx%lld)",
                        vkr__model_label(m), li, L->name, vkr_layer_type_name(L->type), kh, kw, (long long)ph, (long long)pw,
                        (long long)h, (long long)w);
    *oh = (ph - kh) / sh + 1;
    *ow = (pw - kw) / sw + 1;
    return VKR_OK;
}

vkr_status vkr__infer(vkr_model *m, int height, int width, uint64_t seed) {
    const char *lab = vkr__model_label(m);
    if (height < 1 || width < 1 || height > (1 << 20) || width > (1 << 20))
        return vkr_fail(VKR_ERR_INVALID, "%s: input size %dx%d is invalid", lab, height, width);
    vkr_status s;
    for (int i = 0; i < m->nlayers; i++) {
        vkr_layer *L = &m->layers[i];
        const vkr_layer *X = L->ninputs ? &m->layers[L->input_idx[0]] : NULL;
        if (X) {
            L->in_c = X->out_c;
            L->in_h = X->out_h;
            L->in_w = X->out_w;
        }
        /* 64-bit while inferring: paddings and concatenations cannot wrap; checked before storing */
        int64_t c = X ? X->out_c : m->in_c, h = X ? X->out_h : height, w = X ? X->out_w : width;
        int rank = X ? X->out_rank : 4;
        int need4 = L->type == VKR_LAYER_CONV2D || L->type == VKR_LAYER_ZEROPAD || L->type == VKR_LAYER_MAXPOOL ||
                    L->type == VKR_LAYER_AVGPOOL || L->type == VKR_LAYER_GAP;
        if (need4 && rank != 4)
            return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\" (%s) needs an [N, C, H, W] input but \"%s\" outputs [N, %d]",
                            lab, i, L->name, vkr_layer_type_name(L->type), X->name, (int)c);
        int64_t sh[4];
        switch (L->type) {
        case VKR_LAYER_INPUT:
            c = m->in_c;
            h = height;
            w = width;
            rank = 4;
            break;
        case VKR_LAYER_CONV2D: {
            int64_t oh, ow;
            if ((s = window(m, i, L, h, w, &oh, &ow))) return s;
            sh[0] = L->filters, sh[1] = c, sh[2] = L->kernel[0], sh[3] = L->kernel[1];
            if ((s = check_param(m, i, VKR_PARAM_WEIGHT, 4, sh, seed))) return s;
            if ((s = check_param(m, i, VKR_PARAM_BIAS, 1, sh, seed))) return s;
            c = L->filters, h = oh, w = ow;
            break;
        }
        case VKR_LAYER_BATCHNORM:
            sh[0] = c;
            for (int k = 0; k < 4; k++)
                if ((s = check_param(m, i, k, 1, sh, seed))) return s;
            break;
        case VKR_LAYER_RELU:
        case VKR_LAYER_DROPOUT:
            break;
        case VKR_LAYER_SOFTMAX:
            if (h != 1 || w != 1)
                return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\" (softmax) needs an [N, K] input; \"%s\" outputs [N, %d, %d, %d]",
                                lab, i, L->name, X->name, (int)c, (int)h, (int)w);
            break;
        case VKR_LAYER_ADD:
        case VKR_LAYER_CONCAT: {
            int64_t csum = 0;
            for (int k = 0; k < L->ninputs; k++) {
                const vkr_layer *Y = &m->layers[L->input_idx[k]];
                int same = Y->out_h == h && Y->out_w == w && Y->out_rank == rank;
                if (L->type == VKR_LAYER_ADD) same = same && Y->out_c == c;
                if (!same)
                    return vkr_fail(VKR_ERR_FORMAT,
                                    "%s: layer %d \"%s\" (%s): input \"%s\" is [N, %d, %d, %d] but \"%s\" is [N, %d, %d, %d]",
                                    lab, i, L->name, vkr_layer_type_name(L->type), Y->name, Y->out_c, Y->out_h, Y->out_w,
                                    X->name, (int)c, (int)h, (int)w);
                csum += Y->out_c;
            }
            if (L->type == VKR_LAYER_CONCAT) c = csum;
            break;
        }
        case VKR_LAYER_ZEROPAD:
            memcpy(L->rpad, L->pad, sizeof L->rpad);
            h += L->pad[0] + L->pad[1];
            w += L->pad[2] + L->pad[3];
            break;
        case VKR_LAYER_MAXPOOL:
        case VKR_LAYER_AVGPOOL: {
            int64_t oh, ow;
            if ((s = window(m, i, L, h, w, &oh, &ow))) return s;
            if (L->rpad[0] >= L->kernel[0] || L->rpad[1] >= L->kernel[0] || L->rpad[2] >= L->kernel[1] ||
                L->rpad[3] >= L->kernel[1])
                return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\" (%s): padding (%d, %d, %d, %d) must be smaller than the pool %dx%d",
                                lab, i, L->name, vkr_layer_type_name(L->type), L->rpad[0], L->rpad[1], L->rpad[2],
                                L->rpad[3], L->kernel[0], L->kernel[1]);
            h = oh, w = ow;
            break;
        }
        case VKR_LAYER_GAP:
            h = w = 1;
            rank = 2;
            break;
        case VKR_LAYER_DENSE:
            if (h != 1 || w != 1)
                return vkr_fail(VKR_ERR_FORMAT,
                                "%s: layer %d \"%s\" (dense) needs an [N, F] input (e.g. after gap); \"%s\" outputs [N, %d, %d, %d]",
                                lab, i, L->name, X->name, (int)c, (int)h, (int)w);
            sh[0] = L->filters, sh[1] = c;
            if ((s = check_param(m, i, VKR_PARAM_WEIGHT, 2, sh, seed))) return s;
            if ((s = check_param(m, i, VKR_PARAM_BIAS, 1, sh, seed))) return s;
            c = L->filters;
            rank = 2;
            break;
        default:
            return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\": bad type", lab, i, L->name);
        }
        const int64_t dim_max = 1 << 30;
        if (c > dim_max || h > dim_max || w > dim_max || (uint64_t)c * (uint64_t)h * (uint64_t)w > (1ull << 34))
            return vkr_fail(VKR_ERR_FORMAT, "%s: layer %d \"%s\": output [N, %lld, %lld, %lld] is too large", lab, i, L->name,
                            (long long)c, (long long)h, (long long)w);
        L->out_c = (int)c, L->out_h = (int)h, L->out_w = (int)w, L->out_rank = rank;
    }
    m->shape_h = height;
    m->shape_w = width;
    return VKR_OK;
}

vkr_status vkr_model_infer_shapes(vkr_model *m, int height, int width) {
    for (int i = 0; i < m->nlayers; i++)
        for (int k = 0; k < m->layers[i].nparam; k++)
            if (m->layers[i].param[k] == -2)
                return vkr_fail(VKR_ERR_INVALID, "%s: layer \"%s\" has unresolved parameters", vkr__model_label(m),
                                m->layers[i].name);
    return vkr__infer(m, height, width, 0);
}

double vkr_model_layer_flops(const vkr_model *m, int i) {
    if (i < 0 || i >= m->nlayers) return 0;
    const vkr_layer *L = &m->layers[i];
    if (L->type == VKR_LAYER_CONV2D)
        return 2.0 * L->out_c * L->out_h * L->out_w * (double)L->in_c * L->kernel[0] * L->kernel[1];
    if (L->type == VKR_LAYER_DENSE) return 2.0 * L->out_c * (double)L->in_c;
    return 0;
}

uint64_t vkr_model_layer_out_floats(const vkr_model *m, int i) {
    if (i < 0 || i >= m->nlayers) return 0;
    const vkr_layer *L = &m->layers[i];
    return (uint64_t)L->out_c * L->out_h * L->out_w;
}

void vkr_model_shape_str(const vkr_model *m, int i, char *buf, size_t n) {
    if (i < 0 || i >= m->nlayers) {
        snprintf(buf, n, "?");
        return;
    }
    const vkr_layer *L = &m->layers[i];
    if (L->out_rank == 2) snprintf(buf, n, "(N, %d)", L->out_c);
    else snprintf(buf, n, "(N, %d, %d, %d)", L->out_c, L->out_h, L->out_w);
}
