/* Result collection for vkrun selftest. */
#include "vkrun_selftest.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct vkr_selftest {
    vkr_selftest_result *r;
    size_t n, cap;
};

vkr_selftest *vkr_selftest_new(void) { return calloc(1, sizeof(vkr_selftest)); }

void vkr_selftest_free(vkr_selftest *st) {
    if (!st) return;
    free(st->r);
    free(st);
}

void vkr_selftest_add(vkr_selftest *st, const char *op, const char *dir, const char *shape, double max_abs,
                      double max_rel, double tol) {
    vkr_selftest_result *e = NULL;
    for (size_t i = 0; i < st->n; i++)
        if (!strcmp(st->r[i].op, op) && !strcmp(st->r[i].direction, dir)) e = &st->r[i];
    if (!e) {
        if (st->n == st->cap) {
            size_t cap = st->cap ? st->cap * 2 : 32;
            vkr_selftest_result *r = realloc(st->r, cap * sizeof *r);
            if (!r) return;
            st->r = r;
            st->cap = cap;
        }
        e = &st->r[st->n++];
        memset(e, 0, sizeof *e);
        snprintf(e->op, sizeof e->op, "%s", op);
        snprintf(e->direction, sizeof e->direction, "%s", dir);
        e->pass = 1;
    }
    int ok = max_rel <= tol && max_rel == max_rel; /* NaN fails */
    size_t len = strlen(e->shapes);
    if (len + 2 < sizeof e->shapes)
        snprintf(e->shapes + len, sizeof e->shapes - len, "%s%s%s", len ? "; " : "", shape, ok ? "" : " (FAIL)");
    if (max_abs > e->max_abs || max_abs != max_abs) e->max_abs = max_abs;
    if (max_rel > e->max_rel || max_rel != max_rel) e->max_rel = max_rel;
    if (tol > e->tol) e->tol = tol;
    e->checks++;
    if (!ok) e->pass = 0;
}

void vkr_selftest_skip(vkr_selftest *st, const char *op, const char *dir, const char *reason) {
    if (st->n == st->cap) {
        size_t cap = st->cap ? st->cap * 2 : 32;
        vkr_selftest_result *r = realloc(st->r, cap * sizeof *r);
        if (!r) return;
        st->r = r;
        st->cap = cap;
    }
    vkr_selftest_result *e = &st->r[st->n++];
    memset(e, 0, sizeof *e);
    snprintf(e->op, sizeof e->op, "%s", op);
    snprintf(e->direction, sizeof e->direction, "%s", dir);
    snprintf(e->shapes, sizeof e->shapes, "%s", reason);
    e->pass = 1;
    e->skipped = 1;
}

int vkr_selftest_all_skipped(const vkr_selftest *st) {
    for (size_t i = 0; i < st->n; i++)
        if (!st->r[i].skipped) return 0;
    return st->n > 0;
}

size_t vkr_selftest_count(const vkr_selftest *st) { return st->n; }
const vkr_selftest_result *vkr_selftest_get(const vkr_selftest *st, size_t i) { return i < st->n ? &st->r[i] : NULL; }

int vkr_selftest_all_pass(const vkr_selftest *st) {
    for (size_t i = 0; i < st->n; i++)
        if (!st->r[i].pass) return 0;
    return st->n > 0;
}
