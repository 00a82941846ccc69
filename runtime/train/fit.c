/* vkr_fit: the whole training job (include/vkrun_train.h, docs/training.md).
 *
 * Stage 1 trains the head on a frozen base (on cached pooled features when nothing else needs
 * the base, runtime/train/fit_cache.c); stage 2 (fine-tuning) unfreezes the base from
 * opts.ft_from.  A callback's stop request finishes the current step and writes OUT.checkpoint
 * (model with optimizer state and position) plus the history so far; opts.resume continues. */
#include "train/fit_internal.h"
#include "train/tensorboard.h"
#include "vkrun_comm.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>



/* The training (and validation) folders, and the "data:" line. */
static vkr_status open_data(fit_run *r) {
    const vkr_fit_opts *a = r->a;
    vkr_dataset_opts dopt = {.strict = a->strict, .quiet = a->quiet_data, .split_names_ok = a->split_names_ok};
    vkr_dataset *all = NULL;
    vkr_status s;
    if ((s = vkr_dataset_open(a->data, &dopt, &all))) return fit_failed(r, "train data", s);
    if (a->val_split > 0) {
        s = vkr_dataset_split(all, a->val_split, a->seed, &r->train, &r->val);
        vkr_dataset_free(all);
        if (s) return fit_failed(r, "train data", s);
    } else {
        r->train = all;
        vkr_dataset_opts vopt = {.strict = a->strict, .allow_single_class = 1, .quiet = a->quiet_data,
                                 .split_names_ok = a->split_names_ok};
        if (a->val && ((s = vkr_dataset_open(a->val, &vopt, &r->val)) || (s = vkr_dataset_check_classes(r->train, r->val))))
            return fit_failed(r, "validation data", s);
    }
    int nc = vkr_dataset_num_classes(r->train);
    size_t cap = 128, len = 0;
    for (int c = 0; c < nc; c++) cap += strlen(vkr_dataset_class_name(r->train, c)) + 16;
    char *line = malloc(cap);
    if (!line) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    len += (size_t)snprintf(line + len, cap - len, "data: %d training images in %d classes (", vkr_dataset_size(r->train), nc);
    for (int c = 0; c < nc; c++)
        len += (size_t)snprintf(line + len, cap - len, "%s%s: %d", c ? ", " : "", vkr_dataset_class_name(r->train, c),
                                vkr_dataset_class_size(r->train, c));
    len += (size_t)snprintf(line + len, cap - len, ")");
    if (r->val) snprintf(line + len, cap - len, ", %d validation images", vkr_dataset_size(r->val));
    if (r->cb && r->cb->on_message) r->cb->on_message(r->cb->user, line);
    free(line);
    return VKR_OK;
}

/* A checkpoint's number `key`: an integer in [lo, hi] (whole: 1e30 or 2.5 is no count). */
static int ck_int(const cJSON *ck, const char *key, double lo, double hi, double *v) {
    const cJSON *x = cJSON_GetObjectItem(ck, key);
    *v = cJSON_IsNumber(x) ? x->valuedouble : NAN;
    return *v >= lo && *v <= hi && *v == floor(*v);
}

/* The running state of a checkpoint: stage, step, sums and history agree with each other and
 * with this data (a tampered or mismatched one is refused, naming the field). */
static vkr_status check_running_state(fit_run *r, const cJSON *ck) {
    const vkr_fit_opts *a = r->a;
    int ntrain = vkr_dataset_size(r->train), steps = vkr_steps_per_epoch(ntrain, a->batch, a->keep_remainder);
    double stage, step, seen, correct;
    const cJSON *ls = cJSON_GetObjectItem(ck, "loss_sum");
    int done1 = 0, done2 = 0;
    for (int i = 0; i < r->hist->n; i++) {
        if (r->hist->epochs[i].stage == VKR_FIT_FINE_TUNE) done2++;
        else if (done2) return vkr_fail(VKR_ERR_FORMAT, "checkpoint %s: its history has a head epoch after fine-tuning", a->resume);
        else done1++;
    }
    const char *bad = NULL;
    char why[160] = "";
    if (!ck_int(ck, "stage", 1, 2, &stage)) bad = "stage", snprintf(why, sizeof why, "1 or 2");
    else if (stage == 1 && (done2 || done1 >= a->epochs))
        bad = "stage", snprintf(why, sizeof why, "1 with %d of %d head epochs and %d fine-tuning epochs done", done1, a->epochs, done2);
    else if (stage == 2 && (done2 >= a->ft_epochs || (done1 < a->epochs && !a->early_stopping)))
        bad = "stage", snprintf(why, sizeof why, "2 with %d of %d head epochs and %d of %d fine-tuning epochs done", done1,
                                a->epochs, done2, a->ft_epochs);
    else if (!ck_int(ck, "step", 0, steps, &step))
        bad = "step", snprintf(why, sizeof why, "an integer in [0, %d] (the steps of an epoch of %d images at batch %d)", steps,
                               ntrain, a->batch);
    else if (!ck_int(ck, "seen", 0, ntrain, &seen) || seen != fmin(step * a->batch, ntrain))
        bad = "seen", snprintf(why, sizeof why, "the images of %.0f steps: %.0f", step, fmin(step * a->batch, ntrain));
    else if (!ck_int(ck, "correct_sum", 0, seen, &correct))
        bad = "correct_sum", snprintf(why, sizeof why, "a count in [0, %.0f] (seen)", seen);
    else if (!cJSON_IsNumber(ls) || !(ls->valuedouble >= 0) || !isfinite(ls->valuedouble) || (seen == 0 && ls->valuedouble != 0))
        bad = "loss_sum", snprintf(why, sizeof why, "a finite sum >= 0 (0 before the first step)");
    if (bad)
        return vkr_fail(VKR_ERR_FORMAT, "checkpoint %s: its running state \"%s\" is invalid (wants %s): the file was "
                                        "edited or damaged; start a new run without --resume", a->resume, bad, why);
    r->stage = (int)stage;
    r->step = (int)step;
    r->seen = (long)seen;
    r->correct_sum = correct;
    r->loss_sum = ls->valuedouble;
    const char *want = cJSON_GetStringValue(cJSON_GetObjectItem(ck, "data_hash")); /* absent: an older checkpoint */
    char now[17];
    fit_data_hash(r, now);
    if (want && strcmp(want, now))
        return vkr_fail(VKR_ERR_INVALID, "checkpoint %s: the images of --data %s%s%s are not those of the interrupted run "
                                         "(files added, removed or renamed; now %d training images): resuming would "
                                         "change its epochs; restore them, or start a new run without --resume",
                        a->resume, a->data, a->val ? " / --val " : "", a->val ? a->val : "", ntrain);
    return VKR_OK;
}

/* The classes of the model and of the data, "a, b, c" (at most 6, then "..."). */
static void class_list(const fit_run *r, int model, char *buf, size_t n) {
    int k = model ? r->model->nclasses : vkr_dataset_num_classes(r->train);
    size_t len = 0;
    buf[0] = 0;
    for (int c = 0; c < k && c < 6 && len < n; c++)
        len += (size_t)snprintf(buf + len, n - len, "%s%s", c ? ", " : "",
                                model ? r->model->classes[c] : vkr_dataset_class_name(r->train, c));
    if (k > 6 && len < n) snprintf(buf + len, n - len, ", ... (%d)", k);
}

/* The checkpoint of an interrupted run: its model, position and history (*resume: its metadata). */
static vkr_status load_checkpoint(fit_run *r, cJSON **resume) {
    const vkr_fit_opts *a = r->a;
    vkr_status s;
    if ((s = vkr_model_load(a->resume, &r->model))) return fit_failed(r, "resume", s);
    const char *meta = vkr_model_get_meta(r->model, "vkrun_checkpoint");
    *resume = meta ? cJSON_Parse(meta) : NULL;
    if (!cJSON_IsObject(*resume))
        return vkr_fail(VKR_ERR_FORMAT, meta ? "%s: its vkrun_checkpoint metadata is not a JSON object (damaged or edited)"
                                             : "%s is a model file but not a checkpoint (no vkrun_checkpoint metadata: "
                                               "vkrun train writes OUT.checkpoint when interrupted)", a->resume);
    double bl;
    int same = 1;
    char mine[400], theirs[400];
    if (!ck_int(*resume, "base_layers", 1, r->model->nlayers - 1, &bl) ||
        r->model->layers[(int)bl].type != VKR_LAYER_GAP)
        return vkr_fail(VKR_ERR_FORMAT, "checkpoint %s: its base_layers is not the index of the global average pooling "
                                        "its head starts with (the file was edited or damaged)", a->resume);
    r->base_layers = r->gap_layer = (int)bl;
    same = r->model->nclasses == vkr_dataset_num_classes(r->train);
    for (int c = 0; same && c < r->model->nclasses; c++)
        same = !strcmp(r->model->classes[c], vkr_dataset_class_name(r->train, c));
    if (!same) {
        class_list(r, 1, mine, sizeof mine);
        class_list(r, 0, theirs, sizeof theirs);
        return vkr_fail(VKR_ERR_FORMAT, "checkpoint %s was trained on the classes (%s), but --data %s has (%s)", a->resume,
                        mine, a->data, theirs);
    }
    if (fit_history_from_json(r->hist, cJSON_GetObjectItem(*resume, "history")))
        return vkr_fail(VKR_ERR_FORMAT, "checkpoint %s: its history is malformed or too long", a->resume);
    for (int i = 0; i < r->hist->n; i++) /* checkpoints written before the history had learning rates */
        if (isnan(r->hist->epochs[i].lr)) r->hist->epochs[i].lr = r->hist->epochs[i].stage == VKR_FIT_FINE_TUNE ? a->ft_lr : a->lr;
    vkr_model_set_meta(r->model, "vkrun_checkpoint", NULL);
    return check_running_state(r, *resume);
}

/* The model (base + new head, or the checkpoint's), its input size and preprocessing, checked
 * against the options. */
static vkr_status prepare_model(fit_run *r, cJSON **resume) {
    const vkr_fit_opts *a = r->a;
    vkr_status s;
    if (a->resume) {
        if ((s = load_checkpoint(r, resume))) return s;
    } else if ((s = vkr_model_open(a->model, a->seed, &r->model)) || (s = fit_build_model(r))) {
        return fit_failed(r, "model", s);
    }
    r->H = a->height ? a->height : r->model->in_h;
    r->W = a->width ? a->width : r->model->in_w;
    r->C = r->model->in_c;
    if (r->C != 1 && r->C != 3)
        return vkr_fail(VKR_ERR_INVALID, "the model wants %d input channels; images give 1 or 3", r->C);
    if ((s = vkr_preprocess_parse(r->model->preprocess, &r->pre)) || (s = vkr_model_infer_shapes(r->model, r->H, r->W)))
        return fit_failed(r, "model", s);
    /* --freeze and --fine-tune-from count layers of the base: past it they would freeze the new
     * head, and nothing would train */
    if (a->freeze > r->base_layers || a->ft_from > r->base_layers)
        return vkr_fail(VKR_ERR_INVALID, "--%s %d is past the base: the base has layers [0, %d) and the new head starts "
                                         "at %d (\"%s\"); use at most %d",
                        a->freeze > r->base_layers ? "freeze" : "fine-tune-from",
                        a->freeze > r->base_layers ? a->freeze : a->ft_from, r->base_layers, r->gap_layer,
                        r->model->layers[r->gap_layer].name, r->base_layers);
    r->freeze = a->freeze >= 0 ? a->freeze : r->base_layers;
    if (*resume) {
        char now[1024];
        const char *then = cJSON_GetStringValue(cJSON_GetObjectItem(*resume, "settings"));
        fit_settings_string(r, now, sizeof now);
        if (!then || strcmp(then, now))
            return vkr_fail(VKR_ERR_INVALID,
                            "--resume needs the options of the interrupted run\n  checkpoint: %s\n  now:        %s",
                            then ? then : "(none recorded)", now);
    }
    r->stage1_frozen = r->freeze >= r->base_layers;
    return VKR_OK;
}

static void opts_for(const fit_run *r, vkr_graph_opts *o, int training, int freeze, double lr) {
    memset(o, 0, sizeof *o);
    o->batch = r->a->batch;
    o->micro_batch = r->a->micro_batch;
    o->recompute = r->a->sync_bn ? -1 : r->a->recompute; /* a recomputed BatchNorm would exchange again */
    o->height = r->H;
    o->width = r->W;
    o->training = training;
    o->freeze = freeze;
    o->bn_train = r->a->bn_train;
    o->optimizer = r->a->optimizer;
    o->optim.lr = (float)lr;
    o->optim.momentum = (float)r->a->momentum;
    o->optim.beta1 = 0.9f;
    o->optim.beta2 = 0.999f;
    o->optim.eps = 1e-7f;
    o->optim.weight_decay = (float)r->a->weight_decay;
    o->dropout = r->a->dropout > 0; /* the head's dropout layers (not the base's own) */
    o->dropout_from = r->gap_layer;
    o->dropout_seed = r->a->seed;
    o->loss = VKR_LOSS_SOFTMAX_CE;
    o->loss_scaling = vkr_context_precision(r->ctx) == VKR_PRECISION_FP16; /* GradScaler defaults (graph_scale.c) */
}

/* Buffers of one run that outlive a stage. */
typedef struct {
    vkr_graph *g;
    vkr_model *hm;          /* head-only model of the cached path */
    float *feat, *labels, *vfeat, *vlabels;
    cJSON *resume;
    char optpath[4300];     /* the checkpoint's optimizer state */
} fit_bufs;

/* Pooled features of the training (and validation) images, and the head-only model over them. */
static vkr_status cache_features(fit_run *r, fit_bufs *b) {
    double t0 = fit_now();
    vkr_graph_opts go;
    opts_for(r, &go, 0, 0, r->a->lr);
    vkr_status s = vkr_graph_create(r->ctx, r->model, &go, &b->g);
    if (s) return fit_failed(r, "feature graph", s);
    fit_plan_msg(r, b->g, "features:");
    s = fit_cached_features(r, b->g, r->train, "train", &b->feat, &b->labels);
    /* data-parallel: the ranks agree on a stop request after both (a collective each) */
    if (!s && r->val && (r->ranks > 1 || !r->stop))
        s = fit_cached_features(r, b->g, r->val, "val", &b->vfeat, &b->vlabels);
    vkr_graph_destroy(b->g);
    b->g = NULL;
    if (!s && r->ranks > 1) s = fit_dp_stop(r); /* the ranks agree on a stop request */
    if (!s && r->stop) {
        r->res->interrupted_caching = 1;
        return vkr_fail(VKR_ERR_INTERRUPTED, "interrupted while caching features; nothing to save (the features are "
                                             "recomputed on the next run)");
    }
    if (s) return fit_failed(r, "feature cache", s);
    r->hist->cache_seconds += fit_now() - t0;
    fit_msg(r, "cached pooled features of %d images in %.1f s",
            vkr_dataset_size(r->train) + (r->val ? vkr_dataset_size(r->val) : 0), fit_now() - t0);
    if ((s = fit_head_model(r, &b->hm))) return fit_failed(r, "head model", s);
    return VKR_OK;
}

static void stage_cb(fit_run *r, vkr_fit_stage stage, int first, int epochs, int from, double lr, int cached) {
    vkr_fit_stage_begin sb = {stage, first, epochs, from, r->model->nlayers, lr, cached};
    if (r->cb && r->cb->on_stage && r->cb->on_stage(r->cb->user, &sb)) r->stop = 1;
}

/* With fp16 (dynamic loss scaling): the scale a stage ended with and the steps it skipped. */
static void scale_msg(fit_run *r, const vkr_graph *g) {
    if (vkr_context_precision(r->ctx) != VKR_PRECISION_FP16) return;
    vkr_loss_scale_state ls;
    vkr_graph_loss_scale(g, &ls);
    fit_msg(r, "loss scaling: scale %g at the end of the stage, %ld step(s) skipped for inf/NaN gradients", ls.scale,
            ls.skipped);
}

/* Stage 1: the head on a frozen base (or every layer from --freeze on). */
static vkr_status stage1(fit_run *r, fit_bufs *b, int use_cache, int done1) {
    const vkr_fit_opts *a = r->a;
    vkr_graph_opts go;
    vkr_model *gm = r->model;
    vkr_status s;
    if (use_cache) {
        if ((s = cache_features(r, b))) return s;
        gm = b->hm;
        opts_for(r, &go, 1, r->freeze > r->base_layers ? r->freeze - r->base_layers : 0, a->lr);
        go.height = go.width = 1;
        go.dropout_from = 0; /* the head-only model: all of it is head */
    } else {
        opts_for(r, &go, 1, r->freeze, a->lr);
    }
    if ((s = vkr_graph_create(r->ctx, gm, &go, &b->g))) return fit_failed(r, "training graph", s);
    fit_plan_msg(r, b->g, r->stage1_frozen ? "head:" : "training:");
    if (b->resume && (s = fit_resume_optimizer(b->g, b->optpath, b->resume))) return fit_failed(r, "resume", s);
    stage_cb(r, r->stage1_frozen ? VKR_FIT_HEAD : VKR_FIT_TRAIN, done1, a->epochs - done1, r->freeze, a->lr, use_cache);
    s = fit_train_stage(r, b->g, 1, done1, a->epochs - done1, b->feat, b->labels, b->vfeat, b->vlabels, gm);
    if (s) return s;
    if ((s = fit_dp_average_bn_stats(r, b->g, gm)) || (s = vkr_graph_download_weights(b->g))) return fit_failed(r, "train", s);
    scale_msg(r, b->g);
    if (gm != r->model) fit_copy_tensors(r->model, gm);
    vkr_graph_destroy(b->g);
    b->g = NULL;
    cJSON_Delete(b->resume);
    b->resume = NULL;
    return VKR_OK;
}

/* Stage 2: fine-tuning layers [ft_from, end), after `done2` epochs of it. */
static vkr_status stage2(fit_run *r, fit_bufs *b, int done2) {
    const vkr_fit_opts *a = r->a;
    vkr_graph_opts go;
    opts_for(r, &go, 1, a->ft_from, a->ft_lr);
    vkr_status s = vkr_graph_create(r->ctx, r->model, &go, &b->g);
    if (s) return fit_failed(r, "fine-tuning graph", s);
    fit_plan_msg(r, b->g, "fine-tuning:");
    if (b->resume && (s = fit_resume_optimizer(b->g, b->optpath, b->resume))) return fit_failed(r, "resume", s);
    fit_msg(r, "fine-tuning layers [%d, %d) with lr %g", a->ft_from, r->model->nlayers, a->ft_lr);
    int first = fit_stage_start(r, 2) + done2; /* stage 1 may have stopped early */
    stage_cb(r, VKR_FIT_FINE_TUNE, first, a->ft_epochs - done2, a->ft_from, a->ft_lr, 0);
    s = fit_train_stage(r, b->g, 2, first, a->ft_epochs - done2, NULL, NULL, NULL, NULL, r->model);
    if (s) return s;
    if ((s = fit_dp_average_bn_stats(r, b->g, r->model)) || (s = vkr_graph_download_weights(b->g)))
        return fit_failed(r, "fine-tune", s);
    scale_msg(r, b->g);
    return VKR_OK;
}

/* The device, and the "model:" and "device:" lines. */
static vkr_status open_device(fit_run *r, int use_cache) {
    const vkr_fit_opts *a = r->a;
    if (a->ctx) r->ctx = a->ctx;
    else {
        vkr_context_opts copt = {.device = a->device, .validation = -1};
        vkr_status s = vkr_context_create(&copt, &r->ctx);
        if (s) return fit_failed(r, "device", s);
        r->own_ctx = 1;
    }
    r->ctx_precision = vkr_context_precision(r->ctx);
    vkr_status ps = vkr_context_set_precision(r->ctx, a->precision);
    if (ps) return fit_failed(r, "precision", ps);
    vkr_precision got = vkr_context_precision(r->ctx);
    if (got == VKR_PRECISION_FP16 && r->ranks > 1)
        return fit_failed(r, "options", vkr_fail(VKR_ERR_INVALID, "--precision fp16 with data-parallel training (%d "
                                                   "processes) is not supported: its loss scaling skips steps per "
                                                   "process; use --precision bf16 (no loss scaling) or fp32", r->ranks));
    const char *what = got == VKR_PRECISION_FP16   ? " (fp16 GEMM inputs, fp32 accumulation, master weights and "
                                                     "optimizer state; dynamic loss scaling from 2^15)"
                       : got == VKR_PRECISION_BF16 ? " (bf16 GEMM inputs, fp32 accumulation, master weights and "
                                                     "optimizer state; no loss scaling: fp32's range)"
                                                   : " (no faster kernel verified on this device)";
    if (a->precision != VKR_PRECISION_FP32)
        fit_msg(r, "precision: %s%s%s", a->precision == VKR_PRECISION_AUTO ? "auto -> " : "", vkr_precision_name(got), what);
    uint64_t tot, tr, ntr;
    vkr_model_param_totals(r->model, &tot, &tr, &ntr);
    fit_msg(r, "model: %s, %d layers (base %d, head from %d), input %dx%dx%d, %s preprocessing, %llu parameters",
            r->model->name, r->model->nlayers, r->base_layers, r->gap_layer, r->C, r->H, r->W, r->model->preprocess,
            (unsigned long long)tot);
    fit_msg(r, "device: %s; batch %d; %s lr %g; layers [0, %d) frozen; feature cache: %s",
            vkr_context_device(r->ctx)->name, a->batch, a->optimizer == VKR_OPTIM_SGD ? "sgd" : "adam", a->lr,
            r->freeze, use_cache ? (a->cache_dir ? a->cache_dir : "in memory") : "off");
    return VKR_OK;
}

/* The trained model (remembering the input size and resize it was trained with), the history
 * and curves; the checkpoint of an interrupted run is removed. */

static vkr_status write_outputs(fit_run *r) {
    const vkr_fit_opts *a = r->a;
    vkr_status s;
    if (r->rank != 0) return VKR_OK; /* data-parallel: rank 0 writes */
    if (!r->best_saved && (s = fit_save_model(r))) return fit_failed(r, "save", s);
    if ((s = fit_write_history(r->hist, r->res->plots, a->out)))
        return vkr_fail(s, "wrote %s, but not all of the history and curves in %s: %s", a->out, r->res->plots,
                        vkr_last_error());
    remove(r->res->checkpoint);
    char opt[4300];
    snprintf(opt, sizeof opt, "%s.optimizer", r->res->checkpoint);
    remove(opt);
    if (r->hist->n) {
        const vkr_fit_epoch *e = &r->hist->epochs[r->hist->n - 1];
        char stem[256];
        fit_output_stem(a->out, stem, sizeof stem);
        if (r->best_saved)
            fit_msg(r, "history and curves (%s.history.json, %s.accuracy.png, %s.loss.png) in %s", stem, stem, stem,
                    r->res->plots);
        else
            fit_msg(r, "wrote %s; history and curves (%s.history.json, %s.accuracy.png, %s.loss.png) in %s", a->out,
                    stem, stem, stem, r->res->plots);
        if (!isnan(e->val_accuracy)) fit_msg(r, "final: val_loss %.4f, val_accuracy %.4f", e->val_loss, e->val_accuracy);
        if (r->best_saved) {
            const vkr_fit_epoch *b = &r->hist->epochs[r->best_saved - 1];
            fit_msg(r, "--save-best: %s is the model of epoch %d (best %s: val_loss %.4f, val_accuracy %.4f)", a->out,
                    r->best_saved, fit_monitor_name(r), b->val_loss, b->val_accuracy);
        }
    }
    return VKR_OK;
}

/* Where the history goes (created if missing) and the checkpoint's path; then the checks made
 * before any work: the outputs, the options. */
static vkr_status output_paths(fit_run *r) {
    vkr_fit_result *res = r->res;
    const vkr_fit_opts *a = r->a;
    if (a->plots) snprintf(res->plots, sizeof res->plots, "%s", a->plots);
    else {
        snprintf(res->plots, sizeof res->plots, "%s", a->out);
        char *slash = strrchr(res->plots, '/');
        if (slash) *slash = 0;
        else snprintf(res->plots, sizeof res->plots, ".");
    }
    struct stat st;
    snprintf(res->checkpoint, sizeof res->checkpoint, "%s.checkpoint", a->out);
    vkr_status s = fit_check_opts(a);
    if (s) {
        r->res->failed_at = "options";
        return s;
    }
    if (r->rank == 0) { /* data-parallel: rank 0 writes, the others need no such folder */
        if (stat(res->plots, &st) != 0 && mkdir(res->plots, 0755) != 0)
            return vkr_fail(VKR_ERR_IO, "cannot create %s: %s", res->plots, strerror(errno));
        if ((s = vkr_file_check_not_input(a->model, a->out)) || (s = vkr_file_check_not_input(a->resume, a->out)) ||
            (s = vkr_file_check_writable(a->out)))
            return s;
    }
    return VKR_OK;
}

static vkr_status fit_run_all(fit_run *r, fit_bufs *b) {
    const vkr_fit_opts *a = r->a;
    vkr_status s;
    if ((s = output_paths(r)) || (s = open_data(r)) || (s = fit_dp_check_data(r)) || (s = fit_class_weights(r)) ||
        (s = prepare_model(r, &b->resume)))
        return s;
    if (r->a->resume && r->a->save_best) {
        int best = fit_best_epoch(r); /* written before the interruption */
        r->best_saved = best >= 0 ? best + 1 : 0;
    }
    int aug1 = vkr_augment_any(&a->augment) && !a->augment_fine_tune_only; /* stage 1 augments */
    int use_cache = !a->no_cache && !aug1 && r->freeze >= r->base_layers;
    if (!a->no_cache && aug1 && r->freeze >= r->base_layers && a->epochs > 0) {
        char spec[256];
        fit_msg(r, "augmentation (%s) turns the feature cache off: the frozen base runs on every image of every step "
                   "(typically 10-30x slower). Faster: train the head without augmentation and fine-tune with it "
                   "(--augment-fine-tune with --fine-tune-epochs: the head trains on cached features first)",
                vkr_augment_format(&a->augment, spec, sizeof spec));
    }
    if ((s = open_device(r, use_cache))) return s;
    if ((s = fit_dp_hello(r))) return fit_failed(r, "data-parallel", s);
    if (a->tensorboard && r->rank == 0) {
        if ((s = tb_open(a->tensorboard, &r->tb))) return fit_failed(r, "tensorboard", s);
        fit_msg(r, "tensorboard: events in %s (view: tensorboard --logdir %s)", tb_path(r->tb), a->tensorboard);
    }
    int stage = b->resume ? r->stage : 1; /* checked by check_running_state */
    int done1 = 0;
    for (int i = 0; i < r->hist->n; i++) done1 += r->hist->epochs[i].stage != VKR_FIT_FINE_TUNE;
    snprintf(b->optpath, sizeof b->optpath, "%s.optimizer", a->resume ? a->resume : "");
    if (stage == 1 && done1 < a->epochs && (s = stage1(r, b, use_cache, done1))) return s;
    int done2 = r->hist->n - fit_stage_start(r, 2);
    if (a->ft_epochs > done2 && (s = stage2(r, b, done2))) return s;
    if ((s = write_outputs(r))) return s;
    if (r->own_ctx && vkr_validation_enabled(r->ctx) && (vkr_validation_errors(r->ctx) || vkr_validation_warnings(r->ctx)))
        return vkr_fail(VKR_ERR_VALIDATION, "the validation layer reported %u error(s) and %u warning(s)",
                        vkr_validation_errors(r->ctx), vkr_validation_warnings(r->ctx));
    return VKR_OK;
}

vkr_status vkr_fit(const vkr_fit_opts *opts, const vkr_fit_callbacks *cb, vkr_fit_result *res) {
    vkr_fit_result *own = NULL;
    if (!opts) return vkr_fail(VKR_ERR_INVALID, "vkr_fit: no options");
    if (!res && !(res = own = malloc(sizeof *own))) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    memset(res, 0, sizeof *res);
    res->failed_at = "";
    fit_run R = {.a = opts, .cb = cb, .res = res, .hist = &res->history, .rank = vkr_comm_rank(opts->comm),
                 .ranks = vkr_comm_size(opts->comm)};
    fit_bufs B = {0};
    vkr_status s = opts->data && opts->out && (opts->model || opts->resume)
                       ? fit_run_all(&R, &B)
                       : vkr_fail(VKR_ERR_INVALID, "vkr_fit: data, out and model (or resume) are required");
    char msg[1024]; /* the failure's message, kept across the clean-up */
    snprintf(msg, sizeof msg, "%s", s ? vkr_last_error() : "");
    if (s && s != VKR_ERR_INTERRUPTED) vkr_comm_abort(opts->comm, msg); /* the other ranks stop too */
    fit_dp_free(&R);
    cJSON_Delete(B.resume);
    if (B.g) vkr_graph_destroy(B.g);
    vkr_model_free(B.hm);
    free(B.feat);
    free(B.labels);
    free(B.vfeat);
    free(B.vlabels);
    vkr_model_free(R.model);
    free(R.class_w);
    tb_close(R.tb);
    if (R.own_ctx) vkr_context_destroy(R.ctx);
    else if (R.ctx) vkr_context_set_precision(R.ctx, R.ctx_precision); /* the caller's, as it was */
    vkr_dataset_free(R.train);
    vkr_dataset_free(R.val);
    free(own);
    return s ? vkr_fail(s, "%s", msg) : VKR_OK;
}
