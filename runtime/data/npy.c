/* Float32 .npy reader/writer with strict header validation. */
#include "vkrun_npy.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "model/model_internal.h"

void vkr_npy_free(vkr_npy *a) {
    if (!a) return;
    free(a->data);
    a->data = NULL;
}

static void skip_ws(const char **p, const char *e) {
    while (*p < e && (**p == ' ' || **p == '\t' || **p == '\n' || **p == '\r')) (*p)++;
}

/* 'text' or "text" */
static int parse_str(const char **p, const char *e, char *out, size_t n) {
    skip_ws(p, e);
    if (*p >= e || (**p != '\'' && **p != '"')) return 0;
    char q = *(*p)++;
    size_t k = 0;
    while (*p < e && **p != q) {
        if (k + 1 >= n) return 0;
        out[k++] = *(*p)++;
    }
    if (*p >= e) return 0;
    (*p)++;
    out[k] = 0;
    return 1;
}

static int expect(const char **p, const char *e, char c) {
    skip_ws(p, e);
    if (*p < e && **p == c) {
        (*p)++;
        return 1;
    }
    return 0;
}

static vkr_status parse_header(const char *h, size_t len, vkr_npy *a, const char *path) {
    const char *p = h, *e = h + len;
    int have_descr = 0, have_fo = 0, have_shape = 0;
    if (!expect(&p, e, '{')) goto bad;
    for (;;) {
        skip_ws(&p, e);
        if (p < e && *p == '}') {
            p++;
            break;
        }
        char key[32];
        if (!parse_str(&p, e, key, sizeof key) || !expect(&p, e, ':')) goto bad;
        if (!strcmp(key, "descr")) {
            char d[32];
            if (have_descr++ || !parse_str(&p, e, d, sizeof d)) goto bad;
            if (strcmp(d, "<f4"))
                return vkr_fail(VKR_ERR_FORMAT, "%s: dtype '%s' is not float32 ('<f4'); convert with .astype(np.float32)",
                                path, d);
        } else if (!strcmp(key, "fortran_order")) {
            skip_ws(&p, e);
            if (have_fo++) goto bad;
            if (e - p >= 5 && !memcmp(p, "False", 5)) p += 5;
            else if (e - p >= 4 && !memcmp(p, "True", 4))
                return vkr_fail(VKR_ERR_FORMAT, "%s: Fortran-order array; save a C-order array (np.ascontiguousarray)",
                                path);
            else goto bad;
        } else if (!strcmp(key, "shape")) {
            if (have_shape++ || !expect(&p, e, '(')) goto bad;
            a->ndim = 0;
            for (;;) {
                skip_ws(&p, e);
                if (p < e && *p == ')') {
                    p++;
                    break;
                }
                if (p >= e || !isdigit((unsigned char)*p)) goto bad;
                unsigned long long v = 0;
                while (p < e && isdigit((unsigned char)*p)) {
                    v = v * 10 + (unsigned)(*p++ - '0');
                    if (v > (1ull << 40)) goto bad;
                }
                if (a->ndim >= VKR_NPY_MAX_DIMS)
                    return vkr_fail(VKR_ERR_FORMAT, "%s: more than %d dimensions", path, VKR_NPY_MAX_DIMS);
                a->shape[a->ndim++] = (int64_t)v;
                skip_ws(&p, e);
                if (p < e && *p == ',') p++;
                else if (!(p < e && *p == ')')) goto bad;
            }
        } else {
            return vkr_fail(VKR_ERR_FORMAT, "%s: unexpected key '%s' in the .npy header", path, key);
        }
        skip_ws(&p, e);
        if (p < e && *p == ',') p++;
        else if (!(p < e && *p == '}')) goto bad;
    }
    skip_ws(&p, e);
    if (p != e || !have_descr || !have_fo || !have_shape) goto bad;
    return VKR_OK;
bad : {
    char shown[201];
    size_t k = 0;
    for (size_t i = 0; i < len && k < 200; i++) shown[k++] = isprint((unsigned char)h[i]) ? h[i] : ' ';
    while (k && shown[k - 1] == ' ') k--;
    shown[k] = 0;
    return vkr_fail(VKR_ERR_FORMAT, "%s: malformed .npy header \"%s\"", path, shown);
}
}

vkr_status vkr_npy_read(const char *path, vkr_npy *a) {
    memset(a, 0, sizeof *a);
    FILE *f = fopen(path, "rb");
    if (!f) return vkr_fail(VKR_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    vkr_status s = VKR_OK;
    char *hdr = NULL;
    struct stat st;
    unsigned char pre[12];
    if (fstat(fileno(f), &st) || fread(pre, 1, 10, f) != 10 || memcmp(pre, "\x93NUMPY", 6)) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
        goto done;
    }
    uint64_t hlen, pos;
    if (pre[6] == 1) {
        hlen = pre[8] | (uint64_t)pre[9] << 8;
        pos = 10;
    } else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, f) != 2) {
            s = vkr_fail(VKR_ERR_FORMAT, "%s: truncated .npy header", path);
            goto done;
        }
        hlen = pre[8] | (uint64_t)pre[9] << 8 | (uint64_t)pre[10] << 16 | (uint64_t)pre[11] << 24;
        pos = 12;
    } else {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: .npy version %d.%d is not supported", path, pre[6], pre[7]);
        goto done;
    }
    if (hlen > (1u << 20) || pos + hlen > (uint64_t)st.st_size) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: .npy header length %llu is impossible", path, (unsigned long long)hlen);
        goto done;
    }
    hdr = malloc(hlen + 1);
    if (!hdr || fread(hdr, 1, hlen, f) != hlen) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: truncated .npy header", path);
        goto done;
    }
    if ((s = parse_header(hdr, hlen, a, path))) goto done;
    if (!vkr__shape_count(a->shape, a->ndim, 1ull << 38, &a->count)) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: array shape has more than 2^38 elements", path);
        goto done;
    }
    uint64_t want = pos + hlen + 4 * a->count;
    if ((uint64_t)st.st_size != want) {
        s = vkr_fail(VKR_ERR_FORMAT, "%s: file is %llu bytes but its header describes %llu (%llu floats): %s", path,
                     (unsigned long long)st.st_size, (unsigned long long)want, (unsigned long long)a->count,
                     (uint64_t)st.st_size < want ? "truncated" : "trailing bytes");
        goto done;
    }
    a->data = malloc(a->count ? a->count * 4 : 4);
    if (!a->data) {
        s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "%s: out of host memory", path);
        goto done;
    }
    if (a->count && fread(a->data, 4, a->count, f) != a->count) {
        s = vkr_fail(VKR_ERR_IO, "%s: read failed", path);
        goto done;
    }
done:
    free(hdr);
    fclose(f);
    if (s) vkr_npy_free(a);
    return s;
}

typedef struct {
    const float *data;
    uint64_t count;
    char header[512];
    size_t hlen;
} npy_w;

static vkr_status write_npy(FILE *f, void *ud) {
    npy_w *w = ud;
    if (fwrite(w->header, 1, w->hlen, f) != w->hlen) goto io;
    if (w->count && fwrite(w->data, 4, w->count, f) != w->count) goto io;
    return VKR_OK;
io:
    return vkr_fail(VKR_ERR_IO, "writing .npy failed: %s", strerror(errno));
}

vkr_status vkr_npy_write(const char *path, const float *data, int ndim, const int64_t *shape) {
    if (ndim < 0 || ndim > VKR_NPY_MAX_DIMS) return vkr_fail(VKR_ERR_INVALID, "npy_write: %d dimensions", ndim);
    npy_w w = {.data = data, .count = 1};
    char dict[400];
    int k = snprintf(dict, sizeof dict, "{'descr': '<f4', 'fortran_order': False, 'shape': (");
    for (int d = 0; d < ndim; d++) {
        if (shape[d] < 0) return vkr_fail(VKR_ERR_INVALID, "npy_write: negative dimension");
        k += snprintf(dict + k, sizeof dict - k, "%lld,%s", (long long)shape[d], d + 1 < ndim ? " " : "");
        w.count *= (uint64_t)shape[d];
    }
    if (ndim > 1) k--; /* "(2, 3)" rather than "(2, 3,)"; a 1-tuple keeps its comma */
    snprintf(dict + k, sizeof dict - k, "), }");
    size_t dl = strlen(dict);
    size_t total = (10 + dl + 1 + 63) / 64 * 64; /* magic+len, dict, '\n', aligned to 64 */
    memcpy(w.header, "\x93NUMPY\x01\x00", 8);
    uint16_t hl = (uint16_t)(total - 10);
    w.header[8] = (char)(hl & 0xff);
    w.header[9] = (char)(hl >> 8);
    memcpy(w.header + 10, dict, dl);
    memset(w.header + 10 + dl, ' ', total - 10 - dl - 1);
    w.header[total - 1] = '\n';
    w.hlen = total;
    return vkr__atomic_write(path, write_npy, &w);
}
