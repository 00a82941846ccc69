/* The self-test harness (internal): every op check in runtime/selftest/st_*.c is written
 * one way.
 *
 * A check is a table of cases and one function that runs a case (st_case_fn):
 *   inputs      st_rand / st_randf and the st_rand_* shapes of data (host values exactly
 *               representable as floats), st_up / st_upf (device copies), st_fill (a device
 *               output prefilled, e.g. with NaN, so that a value the op fails to write shows);
 *   device run  ST_RUN (records one op call into a fresh stream and submits it; optionally
 *               returns the dispatch count, for the checks that a split path really ran);
 *   reference   runtime/ref/<op>_ref.c in double, on the same inputs;
 *   comparison  st_cmp (device buffer vs reference), folded into an st_err: the error is
 *               max |got - ref| / max(max |ref|, floor), `floor` the scale the quantity's
 *               rounding is proportional to (0: max |ref| alone);
 *   report      st_report (direction, shape label, error, tolerance from tolerances.h), or
 *               st_report_bad for exact conditions (a count of what went wrong, tolerance 0);
 *               both go to vkr_selftest_add, the one report path;
 *   a reference backward against central finite differences: st_fd.
 * st_each is the one loop: per table entry a fresh case (an arena: every host array and
 * device buffer the case made is freed after it), stopping at the first failure.
 * Helpers take the case first and do nothing once c->s holds an error (the first one is
 * kept), so a case reads as straight-line code; reports are skipped after a failure. */
#ifndef VKRUN_ST_HARNESS_H
#define VKRUN_ST_HARNESS_H

#include "selftest/checks.h"
#include "selftest/tolerances.h"
#include "vkrun_ops.h"

#include <stddef.h>
#include <stdint.h>

#define ST_MAX_BUF 24
#define ST_MAX_HOST 48

/* One op's run: device, results, random stream (shared by the op's loops, in order). */
typedef struct {
    vkr_context *ctx;
    vkr_selftest *st;
    const char *op;
    vkr_rng rng;
} st_suite;

typedef struct {
    st_suite *S;
    vkr_context *ctx;
    vkr_rng *rng;
    const char *op; /* the report line's op: the suite's unless the case sets another */
    vkr_status s;   /* first failure */
    vkr_buffer *buf[ST_MAX_BUF];
    void *host[ST_MAX_HOST];
    int nbuf, nhost;
} st_case;

typedef struct {
    double abs, rel;
} st_err;

typedef void (*st_case_fn)(st_case *c, const void *kase);

void st_suite_init(st_suite *S, vkr_context *ctx, vkr_selftest *st, const char *op, uint64_t seed);
/* The loop: fn on each of the ncases entries (case_size bytes apart) of `cases`. */
vkr_status st_each(st_suite *S, const void *cases, size_t ncases, size_t case_size, st_case_fn fn);
#define ST_EACH(S, table, fn) st_each(S, table, sizeof(table) / sizeof((table)[0]), sizeof((table)[0]), fn)
/* One case without a table (kase = ud). */
#define ST_ONCE(S, fn, ud) st_each(S, ud, 1, 0, fn)

/* ---- inputs (host memory zeroed, freed with the case) ---- */
void *st_alloc(st_case *c, size_t bytes);
double *st_doubles(st_case *c, size_t n);
double *st_rand(st_case *c, size_t n, double lo, double hi);        /* (float) uniform, as doubles */
float *st_randf(st_case *c, size_t n, double lo, double hi);        /* the same values as floats */
double *st_rand_ties(st_case *c, size_t n);          /* integers in [-2, 2]: many exact ties */
double *st_rand_distinct(st_case *c, size_t n);      /* n distinct values in [-2, 2), >= 4/n apart */
double *st_rand_away_from_zero(st_case *c, size_t n); /* |x| in [0.1, 2), random sign */
double *st_to_double(st_case *c, const float *x, size_t n);
vkr_buffer *st_up(st_case *c, const double *x, size_t n);  /* device copy (as floats) */
vkr_buffer *st_upf(st_case *c, const float *x, size_t n);
vkr_buffer *st_fill(st_case *c, size_t n, float value);     /* n floats of `value` (NAN: garbage) */
vkr_buffer *st_keep(st_case *c, vkr_buffer *b);             /* freed with the case */
float *st_down(st_case *c, vkr_buffer *b, size_t n);        /* download n floats */

/* ---- device run ---- */
vkr_cmd *st_begin(st_case *c); /* NULL after a failure */
void st_submit(st_case *c, vkr_cmd *cmd, vkr_status recorded, uint32_t *ndispatch);
/* Records `call` (an op on stream `k`) into a fresh stream and submits it; *nd (if not NULL)
 * receives the dispatch count. */
#define ST_RUN(c, nd, k, call)                                                                     \
    do {                                                                                           \
        vkr_cmd *k = st_begin(c);                                                                  \
        if (k) st_submit(c, k, (call), nd);                                                        \
    } while (0)

/* Forces the split path of the element-wise and spatial ops (ops/elem_split.h): bindings of
 * about `per` planes of `max_plane` floats (the largest plane of the op's tensors).  Cases use
 * odd plane sizes and per = 3 so that sub-range starts fall between alignment boundaries and
 * the shaders' base offsets are exercised.  vkr__elem_force_chunk_floats(0) ends it. */
void st_force_elem_split(st_case *c, uint64_t per, uint64_t max_plane);

/* ---- comparison and report ---- */
void st_err_fold(st_err *e, double abs, double rel); /* max; NaN sticks */
void st_cmp_host(const float *got, const double *ref, size_t n, double floor, st_err *e);
void st_cmp_d(const double *got, const double *ref, size_t n, double floor, st_err *e);
void st_cmp(st_case *c, vkr_buffer *b, const double *ref, size_t n, double floor, st_err *e);
void st_report(st_case *c, const char *dir, const char *shape, st_err e, double tol);
void st_report_bad(st_case *c, const char *dir, const char *shape, double nbad);
/* A split case must have recorded more than `min` dispatches; reported only if it did not. */
void st_expect_split(st_case *c, const char *dir, uint32_t ndispatch, uint32_t min);

/* Central finite differences of L(x) = sum_i r[i] f(x)[i] (f writes nout doubles) at
 * `nsamples` coordinates of x spread evenly, against `analytic` = dL/dx from the reference
 * backward; folded into e relative to max |analytic| over the samples. */
typedef void (*st_fd_fn)(void *ud, const double *x, double *out);
void st_fd(st_case *c, st_fd_fn f, void *ud, double *x, size_t nx, size_t nout, const double *r,
           const double *analytic, int nsamples, double h, st_err *e);
#define ST_FD "backward ref vs finite diff"

#endif
