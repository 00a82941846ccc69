/* Augmentation: the spec ("flip,rotate=15,…") and each image's random draws.  The pixels are
 * made in data_image.c (vkr__render). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "data/data_internal.h"

typedef struct {
    const char *name;
    size_t off;    /* of the double field; SIZE_MAX: an int switch */
    double lo, hi; /* allowed values: lo <= v <= hi (hi_open: < hi) */
    int hi_open;
    size_t ioff;   /* of the int field */
} item;

#define D(f) offsetof(vkr_augment, f)
static const item k_items[] = {
    {"flip", SIZE_MAX, 0, 0, 0, D(flip)},
    {"crop", SIZE_MAX, 0, 0, 0, D(crop)},
    {"rotate", D(rotate), 0, 180, 0, 0},
    {"zoom", D(zoom), 0, 1, 1, 0},
    {"shift", D(shift), 0, 1, 0, 0},
    {"brightness", D(brightness), 0, 1, 0, 0},
    {"contrast", D(contrast), 0, 1, 1, 0},
    {"resized-crop", SIZE_MAX, 0, 0, 0, D(resized_crop)},
};
#undef D
#define N_ITEMS ((int)(sizeof k_items / sizeof k_items[0]))
static const char k_usage[] = "flip, crop, rotate=DEG, zoom=F, shift=F, brightness=F, contrast=F, resized-crop";

static int in_range(const item *it, double v) { return v >= it->lo && (it->hi_open ? v < it->hi : v <= it->hi); }

vkr_status vkr__augment_check(const vkr_augment *a) {
    for (int k = 0; k < N_ITEMS; k++) {
        const item *it = &k_items[k];
        if (it->off == SIZE_MAX) continue;
        double v = *(const double *)((const char *)a + it->off);
        if (!in_range(it, v))
            return vkr_fail(VKR_ERR_INVALID, "augment: %s = %g is outside [%g, %g%c", it->name, v, it->lo, it->hi,
                            it->hi_open ? ')' : ']');
    }
    return VKR_OK;
}

static vkr_status parse_item(const char *tok, vkr_augment *a) {
    const char *eq = strchr(tok, '=');
    size_t nlen = eq ? (size_t)(eq - tok) : strlen(tok);
    for (int k = 0; k < N_ITEMS; k++) {
        const item *it = &k_items[k];
        if (strlen(it->name) != nlen || strncmp(tok, it->name, nlen)) continue;
        if (it->off == SIZE_MAX) {
            if (eq) return vkr_fail(VKR_ERR_INVALID, "augment: '%s' takes no value (got \"%s\")", it->name, tok);
            *(int *)((char *)a + it->ioff) = 1;
            return VKR_OK;
        }
        char *end = NULL;
        double v = eq ? strtod(eq + 1, &end) : NAN;
        if (!eq || end == eq + 1 || *end || !in_range(it, v))
            return vkr_fail(VKR_ERR_INVALID, "augment: '%s' needs a value in [%g, %g%c (got \"%s\")", it->name, it->lo,
                            it->hi, it->hi_open ? ')' : ']', tok);
        *(double *)((char *)a + it->off) = v;
        return VKR_OK;
    }
    return vkr_fail(VKR_ERR_INVALID, "augment: unknown item \"%s\" (expected %s)", tok, k_usage);
}

vkr_status vkr_augment_parse(const char *spec, vkr_augment *out) {
    if (!out) return vkr_fail(VKR_ERR_INVALID, "vkr_augment_parse: NULL output");
    vkr_augment a = {0};
    *out = a;
    if (!spec || !*spec || !strcmp(spec, "none")) return VKR_OK;
    char buf[512];
    if (strlen(spec) >= sizeof buf) return vkr_fail(VKR_ERR_INVALID, "augment: spec too long (%zu bytes)", strlen(spec));
    strcpy(buf, spec);
    char *save = NULL;
    for (char *tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        vkr_status s = parse_item(tok, &a);
        if (s) return s;
    }
    *out = a;
    return VKR_OK;
}

const char *vkr_augment_format(const vkr_augment *a, char *buf, size_t n) {
    if (!buf || !n) return "";
    buf[0] = 0;
    size_t len = 0;
    for (int k = 0; a && k < N_ITEMS; k++) {
        const item *it = &k_items[k];
        int on = it->off == SIZE_MAX ? *(const int *)((const char *)a + it->ioff) != 0
                                     : *(const double *)((const char *)a + it->off) > 0;
        if (!on || len >= n) continue;
        if (it->off == SIZE_MAX)
            len += (size_t)snprintf(buf + len, n - len, "%s%s", len ? "," : "", it->name);
        else
            len += (size_t)snprintf(buf + len, n - len, "%s%s=%.9g", len ? "," : "", it->name,
                                    *(const double *)((const char *)a + it->off));
    }
    if (!len) snprintf(buf, n, "none");
    return buf;
}

int vkr_augment_any(const vkr_augment *a) {
    return a && (a->flip || a->crop || a->rotate > 0 || a->zoom > 0 || a->shift > 0 || a->brightness > 0 ||
                 a->contrast > 0 || a->resized_crop);
}

static double uniform(vkr_rng *r, double lo, double hi) { return vkr_rng_uniform(r, lo, hi); }

/* torchvision RandomResizedCrop.get_params: 10 tries of area and aspect, then a centre crop. */
static void draw_resized_crop(vkr_rng *r, int w, int h, vkr__aug *g) {
    double area = (double)w * h, lr0 = log(3.0 / 4.0), lr1 = log(4.0 / 3.0);
    for (int t = 0; t < 10; t++) {
        double target = area * uniform(r, 0.08, 1.0), ar = exp(uniform(r, lr0, lr1));
        int cw = (int)lround(sqrt(target * ar)), ch = (int)lround(sqrt(target / ar));
        if (cw > 0 && ch > 0 && cw <= w && ch <= h) {
            g->cy = (int)vkr_rng_below(r, (uint64_t)(h - ch + 1));
            g->cx = (int)vkr_rng_below(r, (uint64_t)(w - cw + 1));
            g->cw = cw;
            g->ch = ch;
            return;
        }
    }
    double ratio = (double)w / h;
    int cw = w, ch = h;
    if (ratio < 3.0 / 4.0) ch = (int)lround(w / (3.0 / 4.0));
    else if (ratio > 4.0 / 3.0) cw = (int)lround(h * (4.0 / 3.0));
    g->cw = cw;
    g->ch = ch;
    g->cx = (w - cw) / 2;
    g->cy = (h - ch) / 2;
}

void vkr__augment_draw(const vkr_augment *a, uint64_t seed, int epoch, int i, int H, int W, int w, int h,
                       vkr__aug *g) {
    memset(g, 0, sizeof *g);
    g->scale = 1;
    g->contrast = 1;
    int ph = (H + 4) / 8, pw = (W + 4) / 8;
    vkr_rng r = vkr__data_rng(seed, TAG_AUG, (uint64_t)(int64_t)epoch, (uint64_t)i);
    /* always draw all values in the same order, so that enabling one augmentation does not
     * change the other's draws */
    int flip = (int)(vkr_rng_next(&r) >> 63);
    int dy = (int)vkr_rng_below(&r, (uint64_t)(2 * ph + 1));
    int dx = (int)vkr_rng_below(&r, (uint64_t)(2 * pw + 1));
    if (a->flip) g->flip = flip;
    if (a->crop) {
        g->ph = ph;
        g->pw = pw;
        g->dy = dy;
        g->dx = dx;
    }
    if (!(a->rotate > 0 || a->zoom > 0 || a->shift > 0 || a->brightness > 0 || a->contrast > 0 || a->resized_crop))
        return;
    g->general = 1;
    vkr_rng r2 = vkr__data_rng(seed, TAG_AUG2, (uint64_t)(int64_t)epoch, (uint64_t)i);
    double angle = uniform(&r2, -1, 1), scale = uniform(&r2, -1, 1), tx = uniform(&r2, -1, 1),
           ty = uniform(&r2, -1, 1), bright = uniform(&r2, -1, 1), contrast = uniform(&r2, -1, 1);
    g->angle = angle * a->rotate * (3.14159265358979323846 / 180.0);
    g->scale = 1 + scale * a->zoom;
    g->tx = tx * a->shift * W;
    g->ty = ty * a->shift * H;
    g->bright = bright * a->brightness * 255.0;
    g->contrast = 1 + contrast * a->contrast;
    g->photometric = a->brightness > 0 || a->contrast > 0;
    if (a->resized_crop) draw_resized_crop(&r2, w, h, g);
}
