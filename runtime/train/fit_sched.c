/* Callbacks and schedules of vkr_fit (docs/training.md "Callbacks and schedules"): the learning
 * rate of every step, early stopping and keep-best.  Every decision is a function of the history
 * (and the position), so that a resumed run takes the same ones. */
#include "train/fit_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef M_PI
#define M_PI 3.14159265358979323846
#endif

static double monitored(const fit_run *r, const vkr_fit_epoch *e) {
    return r->a->monitor == VKR_MONITOR_VAL_ACCURACY ? e->val_accuracy : e->val_loss;
}

const char *fit_monitor_name(const fit_run *r) {
    return r->a->monitor == VKR_MONITOR_VAL_ACCURACY ? "val_accuracy" : "val_loss";
}

/* v improves on best by more than min_delta (best NaN: the first value always does). */
static int improves(const fit_run *r, double v, double best, double min_delta) {
    if (isnan(best)) return 1;
    return r->a->monitor == VKR_MONITOR_VAL_ACCURACY ? v > best + min_delta : v < best - min_delta;
}

int fit_stage_start(const fit_run *r, int stage) {
    if (stage == 1) return 0;
    for (int i = 0; i < r->hist->n; i++)
        if (r->hist->epochs[i].stage == VKR_FIT_FINE_TUNE) return i;
    return r->hist->n;
}

/* Keras's wait counters over the validated epochs [from, to) of the history: EarlyStopping
 * (min_delta 0: *stop when `patience` epochs passed without a new best) and ReduceLROnPlateau
 * (min_delta 1e-4: *scale gets factor each time `patience` epochs passed without one; its
 * counter restarts after a reduction). */
static void replay(const fit_run *r, int from, int to, int *best_idx, int *stop, double *scale) {
    double best = NAN, pbest = NAN;
    int wait = 0, pwait = 0;
    *best_idx = -1;
    *stop = 0;
    *scale = 1;
    for (int i = from; i < to; i++) {
        double v = monitored(r, &r->hist->epochs[i]);
        if (isnan(v)) continue;
        wait++;
        if (improves(r, v, best, 0)) {
            best = v;
            *best_idx = i;
            wait = 0;
        } else if (r->a->early_stopping > 0 && wait >= r->a->early_stopping) {
            *stop = 1;
        }
        if (improves(r, v, pbest, 1e-4)) {
            pbest = v;
            pwait = 0;
        } else if (++pwait >= r->a->sched_patience && r->a->sched_patience > 0) {
            *scale *= r->a->sched_factor;
            pwait = 0;
        }
    }
}

double fit_lr_at(const fit_run *r, int stage, int epoch_in_stage, int step, int steps) {
    const vkr_fit_opts *a = r->a;
    double base = stage == 2 ? a->ft_lr : a->lr;
    if (a->lr_schedule == VKR_SCHED_CONSTANT && a->warmup_epochs <= 0) return base;
    int stage_epochs = stage == 2 ? a->ft_epochs : a->epochs;
    int wep = a->warmup_epochs < stage_epochs ? a->warmup_epochs : stage_epochs;
    long s = (long)epoch_in_stage * steps + step, W = (long)wep * steps, T = (long)stage_epochs * steps;
    double warm = s < W ? (double)(s + 1) / (double)W : 1.0;
    switch (a->lr_schedule) {
    case VKR_SCHED_COSINE:
        if (s < W) return base * warm;
        return base * 0.5 * (1.0 + cos(M_PI * (double)(s - W) / (double)(T - W)));
    case VKR_SCHED_STEP:
        return base * warm * pow(a->sched_factor, (double)(epoch_in_stage / a->sched_epochs));
    case VKR_SCHED_PLATEAU: {
        int best, stop, from = fit_stage_start(r, stage);
        double scale;
        replay(r, from, from + epoch_in_stage < r->hist->n ? from + epoch_in_stage : r->hist->n, &best, &stop,
               &scale);
        return base * warm * scale;
    }
    default:
        return base * warm;
    }
}

int fit_early_stop(fit_run *r, int stage) {
    if (r->a->early_stopping <= 0) return 0;
    int best, stop, from = fit_stage_start(r, stage);
    double scale;
    replay(r, from, r->hist->n, &best, &stop, &scale);
    if (!stop) return 0;
    const vkr_fit_epoch *b = &r->hist->epochs[best];
    fit_msg(r, "early stopping: %s has not improved for %d epochs since epoch %d (%s %.6g); stopped after epoch %d",
            fit_monitor_name(r), r->a->early_stopping, best + 1, fit_monitor_name(r), monitored(r, b), r->hist->n);
    return 1;
}

int fit_best_epoch(const fit_run *r) {
    int best = -1;
    for (int i = 0; i < r->hist->n; i++) {
        double v = monitored(r, &r->hist->epochs[i]);
        if (!isnan(v) && (best < 0 || improves(r, v, monitored(r, &r->hist->epochs[best]), 0))) best = i;
    }
    return best;
}

double fit_monitor_value(const fit_run *r, int i) { return monitored(r, &r->hist->epochs[i]); }

/* --class-weight (after the data are open: it names classes) and the options that need a
 * validation set. */
vkr_status fit_class_weights(fit_run *r) {
    const vkr_fit_opts *a = r->a;
    if (!r->val && (a->early_stopping > 0 || a->save_best || a->lr_schedule == VKR_SCHED_PLATEAU)) {
        r->res->failed_at = "options";
        return vkr_fail(VKR_ERR_INVALID, "%s monitors %s: it needs validation data (--val DIR or --val-split F)",
                        a->early_stopping > 0 ? "--early-stopping" : a->save_best ? "--save-best"
                                                                                  : "--lr-schedule plateau",
                        fit_monitor_name(r));
    }
    if (!a->class_weight || !*a->class_weight) return VKR_OK;
    int K = vkr_dataset_num_classes(r->train), n = vkr_dataset_size(r->train);
    if (!(r->class_w = malloc(sizeof(float) * (size_t)K))) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int c = 0; c < K; c++)
        r->class_w[c] = !strcmp(a->class_weight, "auto") ? (float)((double)n / ((double)K * vkr_dataset_class_size(r->train, c)))
                                                         : 1.0f;
    const char *p = !strcmp(a->class_weight, "auto") ? "" : a->class_weight;
    while (*p) {
        const char *eq = strchr(p, '='), *end = strchr(p, ',');
        if (!end) end = p + strlen(p);
        int c = -1;
        for (int k = 0; eq && eq < end && k < K; k++) {
            const char *name = vkr_dataset_class_name(r->train, k);
            if (strlen(name) == (size_t)(eq - p) && !strncmp(name, p, (size_t)(eq - p))) c = k;
        }
        char *num_end = NULL;
        double w = eq && eq < end ? strtod(eq + 1, &num_end) : -1;
        if (c < 0 || num_end != end || !(w > 0) || isinf(w)) {
            r->res->failed_at = "options";
            return vkr_fail(VKR_ERR_INVALID, "--class-weight \"%s\": wants auto or CLASS=WEIGHT,... with weights > 0 "
                                             "and the classes of %s (\"%.*s\" is not one)",
                            a->class_weight, a->data, (int)(end - p), p);
        }
        r->class_w[c] = (float)w;
        p = *end ? end + 1 : end;
    }
    char line[512];
    int len = 0;
    for (int c = 0; c < K && len < (int)sizeof line - 80; c++)
        len += snprintf(line + len, sizeof line - (size_t)len, "%s%s %.4g", c ? ", " : "", vkr_dataset_class_name(r->train, c),
                        r->class_w[c]);
    fit_msg(r, "class weights (%s): %s%s", a->class_weight, line, len >= (int)sizeof line - 80 ? ", ..." : "");
    return VKR_OK;
}
