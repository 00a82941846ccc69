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
    struct tb_writer *tb;      /* --tensorboard (runtime/train/tensorboard.h) */
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

/* fit_options.c: the options as JSON (a checkpoint's "options") */
cJSON *fit_options_json(const vkr_fit_opts *o);

/* fit_state.c: history, checkpoints */
cJSON *fit_history_json(const vkr_fit_history *h);
int fit_history_from_json(vkr_fit_history *h, const cJSON *root);
vkr_status fit_write_history(const vkr_fit_history *h, const char *dir);
void fit_settings_string(const fit_run *r, char *buf, size_t n);
vkr_status fit_save_checkpoint(fit_run *r, vkr_graph *g, vkr_model *gm);
vkr_status fit_resume_optimizer(vkr_graph *g, const char *path, const cJSON *ck);

#endif
