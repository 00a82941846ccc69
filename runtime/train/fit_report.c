/* How a vkr_fit run reports: informational lines, steps and failures through the callbacks. */
#include "train/fit_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <time.h>

double fit_now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

void fit_msg(fit_run *r, const char *fmt, ...) {
    if (!r->cb || !r->cb->on_message) return;
    char line[4400];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(line, sizeof line, fmt, ap);
    va_end(ap);
    r->cb->on_message(r->cb->user, line);
}

void fit_plan_msg(fit_run *r, const vkr_graph *g, const char *what) {
    char line[1024];
    vkr_graph_plan_line(g, line, sizeof line);
    fit_msg(r, "%s %s", what, line);
}

void fit_step_cb(fit_run *r, const vkr_fit_step *s) {
    if (r->cb && r->cb->on_step && r->cb->on_step(r->cb->user, s)) r->stop = 1;
}

vkr_status fit_failed(fit_run *r, const char *what, vkr_status s) {
    r->res->failed_at = what;
    return s;
}
