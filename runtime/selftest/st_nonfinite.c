/* nonfinite on the device vs runtime/ref/nonfinite_ref.c: finite data leaves the flag as it was
 * (0, or a 1 set before: the flag accumulates over calls), one inf, -inf or NaN anywhere (first,
 * last, in the middle, past a 256-wide workgroup) sets it; the flag is compared exactly. */
#include "ref/nonfinite_ref.h"
#include "selftest/harness.h"

#include <math.h>
#include <stdio.h>

typedef struct {
    uint64_t n;
    int64_t at;    /* index of the special value (-1: none) */
    float special; /* inf, -inf or NaN */
    uint32_t flag0; /* the flag before the call */
} nonfinite_case;

static void nonfinite_run(st_case *c, const void *kase) {
    const nonfinite_case *q = kase;
    float *x = st_randf(c, q->n, -3e38, 3e38); /* large but finite */
    vkr_buffer *bx = NULL, *bf = st_fill(c, 1, 0);
    if (c->s) return;
    if (q->at >= 0) x[q->at] = q->special;
    bx = st_upf(c, x, q->n);
    if (!c->s) c->s = vkr_buffer_upload(bf, 0, &q->flag0, 4);
    ST_RUN(c, NULL, k, vkr_nonfinite(k, q->n, bx, bf));
    uint32_t got = 7, want = q->flag0;
    if (!c->s) c->s = vkr_buffer_download(bf, 0, &got, 4);
    if (c->s) return;
    vkr_ref_nonfinite(q->n, x, &want);
    char shape[96];
    snprintf(shape, sizeof shape, "n=%llu special %g at %lld flag0 %u", (unsigned long long)q->n, q->special,
             (long long)q->at, q->flag0);
    st_report_bad(c, "forward", shape, got != want);
}

vkr_status vkr_check_nonfinite(vkr_context *ctx, vkr_selftest *st) {
    static const nonfinite_case cases[] = {
        {1, -1, 0, 0},          {1, 0, INFINITY, 0},       {257, -1, 0, 0},         {257, 256, NAN, 0},
        {1000, 0, -INFINITY, 0}, {100003, 70001, NAN, 0}, {100003, -1, 0, 0},      {100003, -1, 0, 1},
        {100003, 99999, INFINITY, 1},
    };
    st_suite S;
    st_suite_init(&S, ctx, st, "nonfinite", 2);
    return ST_EACH(&S, cases, nonfinite_run);
}
