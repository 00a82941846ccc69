/* Self-test: each op checked on the device against its plain-C reference
 * (double), and each reference backward against central finite differences. */
#ifndef VKRUN_SELFTEST_H
#define VKRUN_SELFTEST_H

#include "vkrun.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char op[32];
    char direction[64];  /* "forward", "backward", "backward ref vs finite diff", "step" */
    char shapes[512];    /* shapes (and variants) tried */
    int checks;          /* number of shape/variant cases folded into this line */
    double max_abs, max_rel, tol;
    int pass;
    int skipped;         /* 1: not run on this device; shapes holds the reason (pass stays 1) */
} vkr_selftest_result;

typedef struct vkr_selftest vkr_selftest;

typedef vkr_status (*vkr_selftest_fn)(vkr_context *ctx, vkr_selftest *st);
typedef struct {
    const char *name;
    vkr_selftest_fn fn;
} vkr_selftest_op;

/* The registered ops (runtime/selftest/registry.c). */
const vkr_selftest_op *vkr_selftest_ops(size_t *count);

vkr_selftest *vkr_selftest_new(void);
void vkr_selftest_free(vkr_selftest *st);
/* Folds one case into the line (op, direction): errors are maxed, shapes appended (the op checks
 * report through the harness, runtime/selftest/harness.h).
 * A case passes when max_rel <= tol (max_rel = max|got-ref| / max(max|ref|, 1e-30)). */
void vkr_selftest_add(vkr_selftest *st, const char *op, const char *direction, const char *shape, double max_abs,
                      double max_rel, double tol);
/* Records that (op, direction) was not run on this device, and why (e.g. a missing feature). */
void vkr_selftest_skip(vkr_selftest *st, const char *op, const char *direction, const char *reason);
/* 1 if every line recorded is a skip (and there is at least one). */
int vkr_selftest_all_skipped(const vkr_selftest *st);
size_t vkr_selftest_count(const vkr_selftest *st);
const vkr_selftest_result *vkr_selftest_get(const vkr_selftest *st, size_t i);
int vkr_selftest_all_pass(const vkr_selftest *st);

#ifdef __cplusplus
}
#endif
#endif
