/* vkr_fit's pieces (runtime/train/fit*.c): one run's state and the functions the files share. */
#ifndef VKRUN_FIT_INTERNAL_H
#define VKRUN_FIT_INTERNAL_H

#include "vkrun_train.h"

#include <cJSON.h>

typedef struct {
    const vkr_fit_opts *a;
    const vkr_fit_callbacks *cb;
    vkr_fit_result *res;
    vkr_context *ctx;
    int own_ctx;
    vkr_precision ctx_precision; /* the caller's context's precision, restored at the end */
    vkr_dataset *train, *val;
    vkr_model *model;          /* base + head */
    int base_layers;           /* layers [0, base_layers) are the base (incl. input) */
    int gap_layer;
    int H, W, C;
    vkr_preprocess pre;
    vkr_fit_history *hist;     /* res->history */
    /* position for checkpoints */
    int stage, epoch, step;
    int stage1_frozen;         /* stage 1 trains only the head (base frozen) */
    int freeze;
    double loss_sum, correct_sum;
    long seen;
    int stop;                  /* a callback asked to stop */
    int said_input_bound;      /* the loader-bottleneck message was given */
    /* callbacks, schedules, loss weighting (fit_sched.c) */
    double lr_now;             /* lr of the last step */
    float *class_w;            /* [K] class weights (NULL: all 1) */
    int best_saved;            /* --save-best wrote `out` at history index best_saved + 1 (0: not yet) */
    struct tb_writer *tb;      /* --tensorboard (runtime/train/tensorboard.h) */
    /* data-parallel (fit_dp.c) */
    int rank, ranks;           /* of opts.comm (0, 1 without) */
    float *dp_buf;             /* host copy of every gradient of the current graph */
    uint64_t dp_floats;
    double dp_comm_s;          /* seconds spent reading, summing and writing gradients after the backward */
    long dp_steps;
    long dp_buckets, dp_early;  /* buckets summed, those started while the backward pass ran */
} fit_run;

double fit_now(void);
/* on_message with a formatted line. */
void fit_msg(fit_run *r, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/* "<what> <the graph's memory plan>" through on_message. */
void fit_plan_msg(fit_run *r, const vkr_graph *g, const char *what);
/* Calls on_step; a nonzero answer sets r->stop. */
void fit_step_cb(fit_run *r, const vkr_fit_step *s);
/* Sets res->failed_at and returns s. */
vkr_status fit_failed(fit_run *r, const char *what, vkr_status s);

/* fit_head.c */
vkr_status fit_build_model(fit_run *r);
vkr_status fit_head_model(const fit_run *r, vkr_model **out);
void fit_copy_tensors(vkr_model *to, const vkr_model *from);

/* fit_cache.c: pooled base features of every image of ds, in dataset order (from memory, or from
 * opts.cache_dir when there), and their one-hot labels. */
vkr_status fit_open_loader(const fit_run *r, const vkr_dataset *ds, int epoch, int shuffle, int keep_rem,
                           vkr_loader **ld);
vkr_status fit_cached_features(fit_run *r, vkr_graph *g, const vkr_dataset *ds, const char *what, float **feat,
                               float **labels);

/* fit_stage.c: `epochs` epochs of one stage on graph g (head-only on features when feat != NULL;
 * gm is the model g was built from). */
vkr_status fit_train_stage(fit_run *r, vkr_graph *g, int stage, int first_epoch, int epochs, const float *feat,
                           const float *labels, const float *vfeat, const float *vlabels, vkr_model *gm);

/* fit_sched.c: the lr of step `step` (0-based) of epoch `epoch_in_stage` of a stage (1 or 2) of
 * `steps` steps per epoch; early stopping (after an epoch: 1 = stop the stage, with its message);
 * the best validated epoch of the history by the monitor (-1: none). */
double fit_lr_at(const fit_run *r, int stage, int epoch_in_stage, int step, int steps);
int fit_stage_start(const fit_run *r, int stage);
int fit_early_stop(fit_run *r, int stage);
int fit_best_epoch(const fit_run *r);
double fit_monitor_value(const fit_run *r, int i);
const char *fit_monitor_name(const fit_run *r);
vkr_status fit_class_weights(fit_run *r);
/* fit.c: writes the trained model to opts.out (with the input size and resize it was trained at). */
vkr_status fit_save_model(fit_run *r);
/* fit_options.c: the options' ranges; the options as JSON (a checkpoint's "options") */
vkr_status fit_check_opts(const vkr_fit_opts *a);
cJSON *fit_options_json(const vkr_fit_opts *o);

/* fit_dp.c: data-parallel training over opts.comm (single process: ranks == 1, no-ops) */
void fit_share(const fit_run *r, int c, int *lo, int *hi); /* this rank's images [lo, hi) of a batch of c */
vkr_status fit_dp_sum(fit_run *r, double *v, int n);      /* in-place sum over the ranks */
vkr_status fit_dp_check_data(fit_run *r);                 /* every rank sees the same data */
vkr_status fit_dp_hello(fit_run *r);                      /* "data-parallel: N processes" and each rank's device */
vkr_status fit_dp_stop(fit_run *r);                       /* r->stop agreed by the ranks */
/* One training step of this rank's n images (first: its first image's index in the global
 * batch); *l, *c: this rank's mean loss and correct count. */
vkr_status fit_dp_step(fit_run *r, vkr_graph *g, const float *x, const float *t, int n, int first, float *l, int *c,
                       double sums[3]);
vkr_status fit_dp_average_bn_stats(fit_run *r, vkr_graph *g, vkr_model *gm); /* --bn-train: running statistics averaged */
void fit_dp_free(fit_run *r);

/* fit_state.c: history, checkpoints */
cJSON *fit_history_json(const vkr_fit_history *h);
int fit_history_from_json(vkr_fit_history *h, const cJSON *root);
vkr_status fit_write_history(const vkr_fit_history *h, const char *dir, const char *out);
void fit_output_stem(const char *out, char *stem, size_t n);
void fit_settings_string(const fit_run *r, char *buf, size_t n);
vkr_status fit_save_checkpoint(fit_run *r, vkr_graph *g, vkr_model *gm);
/* 16 hex digits: FNV-1a of the training and validation images' paths (below their folders) and labels. */
void fit_data_hash(const fit_run *r, char out[17]);
vkr_status fit_resume_optimizer(vkr_graph *g, const char *path, const cJSON *ck);

#endif
