/* The epochs of one stage: steps over the loader (or the cached features), the running loss and
 * accuracy, validation, the history record, and the checkpoint when a callback asks to stop. */
#include "train/fit_internal.h"
#include "train/tensorboard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One image batch source: cached features or the loader. */
typedef struct {
    vkr_loader *ld;       /* uncached */
    const float *feat;    /* cached: [n][C] in dataset order */
    const float *labels;  /* cached: one-hot [n][K] */
    int *perm, n, pos, steps, step, batch, dim, K;
    int rank, ranks;      /* data-parallel: this rank's share of each batch (ranks 0: all of it) */
    int first;            /* the last batch's first image of this rank's share, in the batch */
} batch_src;

static vkr_status src_next(batch_src *b, float *x, float *t, int *n) {
    if (b->ld) return vkr_loader_next(b->ld, x, t, n);
    if (b->step >= b->steps) {
        *n = 0;
        return VKR_OK;
    }
    int cnt = b->n - b->pos < b->batch ? b->n - b->pos : b->batch, lo = 0, hi = cnt;
    if (b->ranks > 1) {
        lo = (int)((int64_t)cnt * b->rank / b->ranks);
        hi = (int)((int64_t)cnt * (b->rank + 1) / b->ranks);
    }
    for (int j = lo; j < hi; j++) {
        int i = b->perm ? b->perm[b->pos + j] : b->pos + j;
        memcpy(x + (size_t)(j - lo) * b->dim, b->feat + (size_t)i * b->dim, sizeof(float) * b->dim);
        memcpy(t + (size_t)(j - lo) * b->K, b->labels + (size_t)i * b->K, sizeof(float) * b->K);
    }
    b->pos += cnt;
    b->step++;
    b->first = lo;
    *n = hi - lo;
    return VKR_OK;
}

/* Training targets of n one-hot rows: label smoothing y * (1 - E) + E / K, then each row times its
 * class's weight (Keras class_weight: the sample's loss times the weight; the loss op's gradient
 * is (sum(t) p - t) / batch, that of the weighted loss). */
static void weigh_targets(const fit_run *r, float *t, int n, int K, int training) {
    double E = r->a->label_smoothing;
    if (E == 0 && (!training || !r->class_w)) return;
    for (int i = 0; i < n; i++) {
        float *row = t + (size_t)i * K;
        int c = 0;
        for (int k = 1; k < K; k++)
            if (row[k] > row[c]) c = k;
        float w = training && r->class_w ? r->class_w[c] : 1.0f;
        for (int k = 0; k < K; k++) row[k] = w * (float)(row[k] * (1.0 - E) + E / K);
    }
}

/* Loss/accuracy over a whole set (inference mode). */
static vkr_status evaluate_set(fit_run *r, vkr_graph *g, batch_src *b, double *loss, double *acc) {
    int K = vkr_dataset_num_classes(r->train);
    size_t xdim = b->ld ? (size_t)r->C * r->H * r->W : (size_t)b->dim;
    float *x = malloc(sizeof(float) * (size_t)r->a->batch * xdim), *t = malloc(sizeof(float) * (size_t)r->a->batch * K);
    if (!x || !t) {
        free(x);
        free(t);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    double ls = 0;
    long correct = 0, seen = 0;
    int n, dp = r->ranks > 1;
    int steps = b->ld ? vkr_loader_steps_per_epoch(b->ld) : b->steps;
    vkr_status s;
    for (int step = 0; !dp || step < steps; step++) { /* sharded: every step, an empty share too */
        if ((s = src_next(b, x, t, &n)) || (n == 0 && !dp)) break;
        if (n == 0) continue;
        float l;
        int c;
        weigh_targets(r, t, n, K, 0);
        if ((s = vkr_graph_eval_batch(g, x, t, n, &l, &c))) break;
        ls += (double)l * n;
        correct += c;
        seen += n;
    }
    free(x);
    free(t);
    double v[3] = {ls, (double)correct, (double)seen};
    if (!s && dp && !(s = fit_dp_sum(r, v, 3))) { /* validation is sharded: its sums over the ranks */
        ls = v[0];
        correct = (long)v[1];
        seen = (long)v[2];
    }
    *loss = seen ? ls / seen : NAN;
    *acc = seen ? (double)correct / seen : NAN;
    return s;
}

/* Validation of the epoch just trained, on the cached features or the loader. */
static vkr_status validate(fit_run *r, vkr_graph *g, vkr_model *gm, const float *vfeat, const float *vlabels, int dim,
                           vkr_fit_epoch *er) {
    batch_src vb = {0};
    vkr_status s;
    if ((s = fit_dp_average_bn_stats(r, g, gm))) return s; /* --bn-train: the ranks' running statistics averaged */
    if (vfeat) {
        int nv = vkr_dataset_size(r->val);
        vb = (batch_src){.feat = vfeat, .labels = vlabels, .n = nv, .steps = vkr_steps_per_epoch(nv, r->a->batch, 1),
                         .batch = r->a->batch, .dim = dim, .K = vkr_dataset_num_classes(r->train), .rank = r->rank,
                         .ranks = r->ranks};
    } else if ((s = fit_open_loader(r, r->val, 0, 0, 1, &vb.ld))) {
        return s;
    }
    s = evaluate_set(r, g, &vb, &er->val_loss, &er->val_accuracy);
    vkr_loader_destroy(vb.ld);
    return s;
}

/* Writes the checkpoint and the history so far; the result says where the run stopped. */
static vkr_status interrupted(fit_run *r, vkr_graph *g, vkr_model *gm, const char *what, int step, int steps) {
    vkr_fit_result *res = r->res;
    res->checkpoint_status = fit_dp_average_bn_stats(r, g, gm);
    if (!res->checkpoint_status && r->rank == 0) res->checkpoint_status = fit_save_checkpoint(r, g, gm); /* rank 0 writes */
    if (res->checkpoint_status) snprintf(res->checkpoint_error, sizeof res->checkpoint_error, "%s", vkr_last_error());
    else if (r->rank == 0) fit_write_history(r->hist, res->plots, r->a->out);
    snprintf(res->interrupted_at, sizeof res->interrupted_at, "%s", what);
    res->step = step;
    res->steps = steps;
    return vkr_fail(VKR_ERR_INTERRUPTED, "interrupted at %s step %d/%d; checkpoint %s %s", what, step, steps,
                    res->checkpoint, res->checkpoint_status ? "could NOT be written" : "written");
}

/* The steps of one epoch (a resumed epoch skips those it already took); *images gets the
 * images trained on.  The lr of each step follows the schedule (fit_sched.c). */
static vkr_status run_epoch(fit_run *r, vkr_graph *g, batch_src *b, float *x, float *t, const char *what, int steps,
                            int stage, int epoch_in_stage, long *images) {
    int sched = r->a->lr_schedule != VKR_SCHED_CONSTANT || r->a->warmup_epochs > 0;
    int skip = r->step, n, step = 0, dp = r->ranks > 1, ntrain = vkr_dataset_size(r->train);
    if (skip == 0) {
        r->loss_sum = r->correct_sum = 0;
        r->seen = 0;
    }
    double t0 = fit_now();
    vkr_status s = VKR_OK;
    *images = 0;
    /* data-parallel: every rank takes every step (an empty share too) and agrees on stopping */
    for (;;) {
        if (dp && (s = fit_dp_stop(r))) return s;
        if (r->stop || (dp && step >= steps) || (s = src_next(b, x, t, &n)) || (n == 0 && !dp)) break;
        if (step < skip) {
            step++;
            continue;
        }
        float l;
        int c, rec = vkr_graph_recoveries(g), lo = b->first, hi;
        double sums[3];
        if (b->ld) fit_share(r, ntrain - step * r->a->batch < r->a->batch ? ntrain - step * r->a->batch : r->a->batch,
                             &lo, &hi);
        r->lr_now = fit_lr_at(r, stage, epoch_in_stage, step, steps);
        if (sched) vkr_graph_set_lr(g, (float)r->lr_now);
        weigh_targets(r, t, n, b->ld ? vkr_dataset_num_classes(r->train) : b->K, 1);
        if ((s = fit_dp_step(r, g, x, t, n, lo, &l, &c, sums))) return s;
        if (!isfinite(sums[0])) { /* diverged (the sums are every rank's: all stop here) */
            r->loss_sum = sums[0];
            r->seen += (long)sums[2];
            break;
        }
        if (vkr_graph_recoveries(g) != rec) fit_plan_msg(r, g, "out of device memory: re-planned;");
        r->loss_sum += sums[0]; /* over every rank's images */
        r->correct_sum += sums[1];
        r->seen += (long)sums[2];
        *images += (long)sums[2];
        r->step = ++step;
        vkr_fit_step st = {what, 0, step, steps, r->loss_sum / r->seen, r->correct_sum / r->seen, *images,
                           fit_now() - t0, r->lr_now};
        fit_step_cb(r, &st);
        /* every N steps counted over the whole run, as Keras's TensorBoard(update_freq=N): with 7 steps
         * an epoch and N = 10, steps 10, 20, ... (step 3 of epoch 2, ...) */
        int every = r->a->tensorboard_steps;
        int64_t global = (int64_t)r->hist->n * steps + step;
        if (r->tb && every > 0 && global % every == 0) {
            static const char *const tags[] = {"batch_loss", "batch_accuracy"};
            double v[2] = {st.loss, st.accuracy};
            if ((s = tb_scalars(r->tb, global, 2, tags, v))) return s;
        }
    }
    return r->stop ? VKR_OK : s;
}

/* --save-best: the model of an epoch that beats every validated one before it goes to `out`. */
static vkr_status keep_best(fit_run *r, vkr_graph *g, vkr_model *gm) {
    if (!r->a->save_best || fit_best_epoch(r) != r->hist->n - 1) return VKR_OK;
    vkr_status s = vkr_graph_download_weights(g);
    if (s) return s;
    if (gm != r->model) fit_copy_tensors(r->model, gm);
    if (r->rank == 0 && (s = fit_save_model(r))) return s; /* rank 0 writes */
    r->best_saved = r->hist->n;
    fit_msg(r, "%s improved to %.6g: saved %s (epoch %d)", fit_monitor_name(r), fit_monitor_value(r, r->hist->n - 1),
            r->a->out, r->hist->n);
    return VKR_OK;
}

static const char *nonfinite_name(double v) { return isnan(v) ? "NaN" : v > 0 ? "inf" : "-inf"; }

/* The first tensor of m holding a non-finite value (NULL: none). */
static const vkr_tensor *nonfinite_tensor(const vkr_model *m) {
    for (int i = 0; i < m->ntensors; i++)
        for (uint64_t k = 0; k < m->tensors[i].count; k++)
            if (!isfinite(m->tensors[i].data[k])) return &m->tensors[i];
    return NULL;
}

/* The weights of gm at the end of the last epoch with finite loss and weights (*snap, malloc'ed
 * once per stage): what is written when training diverges. */
static vkr_status keep_finite(const vkr_model *gm, float **snap) {
    uint64_t n = 0;
    for (int i = 0; i < gm->ntensors; i++) n += gm->tensors[i].count;
    if (!*snap && !(*snap = malloc(sizeof(float) * (n ? n : 1)))) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    n = 0;
    for (int i = 0; i < gm->ntensors; i++) {
        memcpy(*snap + n, gm->tensors[i].data, sizeof(float) * gm->tensors[i].count);
        n += gm->tensors[i].count;
    }
    return VKR_OK;
}

/* Training diverged in epoch `what` (Keras's TerminateOnNaN, and more: vkrun never reports success
 * for such a run, nor writes a model it would refuse to load): the model of the last finite epoch
 * (when there is one, and --save-best did not keep a better one) and the history go out, and the
 * run fails naming the epoch. */
static vkr_status diverged(fit_run *r, vkr_model *gm, const float *snap, const char *what, const char *why) {
    const vkr_fit_opts *a = r->a;
    char kept[4600];
    uint64_t n = 0;
    for (int i = 0; i < gm->ntensors; i++) {
        memcpy(gm->tensors[i].data, snap + n, sizeof(float) * gm->tensors[i].count);
        n += gm->tensors[i].count;
    }
    if (gm != r->model) fit_copy_tensors(r->model, gm);
    vkr_status s = VKR_OK;
    if (r->best_saved) snprintf(kept, sizeof kept, "%s is the best epoch's (--save-best: epoch %d)", a->out, r->best_saved);
    else if (!r->hist->n) snprintf(kept, sizeof kept, "no epoch finished with a finite loss, so %s was not written", a->out);
    else {
        if (r->rank == 0) s = fit_save_model(r);
        snprintf(kept, sizeof kept, "%s %s the weights of epoch %d (the last with a finite loss)", a->out,
                 s ? "could NOT be written with" : "holds", r->hist->n);
    }
    if (r->rank == 0 && r->hist->n) fit_write_history(r->hist, r->res->plots, r->a->out);
    return fit_failed(r, "train", vkr_fail(VKR_ERR_INVALID, "training diverged in %s: %s; %s. Try a smaller --lr%s "
                                                            "(or check --weight-decay and --class-weight)", what, why,
                                           kept, r->stage == 2 ? " / --fine-tune-lr" : ""));
}

vkr_status fit_train_stage(fit_run *r, vkr_graph *g, int stage, int first_epoch, int epochs, const float *feat,
                           const float *labels, const float *vfeat, const float *vlabels, vkr_model *gm) {
    const vkr_fit_opts *a = r->a;
    int K = vkr_dataset_num_classes(r->train), ntrain = vkr_dataset_size(r->train);
    int dim = feat ? r->model->layers[r->gap_layer].out_c : r->C * r->H * r->W;
    float *x = malloc(sizeof(float) * (size_t)a->batch * dim), *t = malloc(sizeof(float) * (size_t)a->batch * K);
    int *perm = malloc(sizeof(int) * (size_t)ntrain);
    float *snap = NULL; /* the weights after the last finite epoch */
    vkr_status s = x && t && perm ? keep_finite(gm, &snap)
                                  : fit_failed(r, "train", vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory"));
    int total_epochs = first_epoch + epochs, stage_start = fit_stage_start(r, stage);
    for (int e = first_epoch; e < total_epochs && !s; e++) {
        r->stage = stage;
        r->epoch = e;
        batch_src b = {0};
        int steps = vkr_steps_per_epoch(ntrain, a->batch, a->keep_remainder);
        if (steps == 0) {
            s = fit_failed(r, "train", vkr_fail(VKR_ERR_INVALID, "%d training images make no batch of %d (use a smaller "
                                                                 "--batch, or leave out --drop-remainder)", ntrain, a->batch));
            break;
        }
        if (r->hist->n >= VKR_FIT_MAX_EPOCHS) {
            s = fit_failed(r, "train", vkr_fail(VKR_ERR_INVALID, "more than %d epochs in the history", VKR_FIT_MAX_EPOCHS));
            break;
        }
        int global_epoch = r->hist->n; /* epochs finished before this one */
        if (feat) {
            vkr_epoch_permutation(ntrain, a->seed, global_epoch, perm);
            b = (batch_src){.feat = feat, .labels = labels, .perm = perm, .n = ntrain, .steps = steps, .batch = a->batch,
                            .dim = dim, .K = K, .rank = r->rank, .ranks = r->ranks};
        } else if ((s = fit_open_loader(r, r->train, global_epoch, 1, a->keep_remainder, &b.ld))) {
            s = fit_failed(r, "train", s);
            break;
        }
        char what[64];
        snprintf(what, sizeof what, "%sepoch %d/%d", stage == 2 ? "fine-tune " : r->stage1_frozen ? "head " : "", e + 1,
                 total_epochs);
        double t0 = fit_now();
        long images;
        s = run_epoch(r, g, &b, x, t, what, steps, stage, global_epoch - stage_start, &images);
        double waited = b.ld ? vkr_loader_wait_seconds(b.ld) : NAN;
        vkr_loader_destroy(b.ld);
        if (s) {
            s = fit_failed(r, "train", s);
            break;
        }
        if (r->stop) {
            s = interrupted(r, g, gm, what, r->step, steps);
            break;
        }
        double secs = fit_now() - t0;
        if (r->ranks > 1 && r->dp_steps) { /* what summing the gradients cost this epoch */
            fit_msg(r, "data-parallel: %ld of %ld gradient bucket sums started during the backward pass; after it, "
                       "read-back + all-reduce + write-back %.1f ms per step (%.0f%% of the epoch's %.2f s)",
                    r->dp_early, r->dp_buckets, r->dp_comm_s * 1e3 / r->dp_steps,
                    100 * r->dp_comm_s / (secs > 0 ? secs : 1), secs);
            r->dp_comm_s = 0;
            r->dp_steps = r->dp_buckets = r->dp_early = 0;
        }
        vkr_fit_epoch *er = &r->hist->epochs[r->hist->n];
        er->stage = stage == 2 ? VKR_FIT_FINE_TUNE : r->stage1_frozen ? VKR_FIT_HEAD : VKR_FIT_TRAIN;
        er->loss = r->seen ? r->loss_sum / r->seen : NAN;
        er->accuracy = r->seen ? r->correct_sum / r->seen : NAN;
        er->seconds = secs;
        er->images_per_s = secs > 0 ? images / secs : 0;
        er->val_loss = er->val_accuracy = NAN;
        er->lr = r->lr_now;
        er->input_wait_seconds = waited;
        if (waited > 0.25 * secs && !r->said_input_bound) {
            fit_msg(r, "%s waited %.1f s of %.1f s for images: the loader (decoding, resizing, augmentation on %d "
                    "threads, one per core) is the bottleneck", what, waited, secs, vkr_cpu_count());
            r->said_input_bound = 1;
        }
        int val = r->val && ((r->hist->n + 1) % a->val_every == 0 || e == total_epochs - 1);
        if (!isfinite(er->loss)) {
            char why[96];
            snprintf(why, sizeof why, "the training loss is %s after %ld images", nonfinite_name(er->loss), r->seen);
            s = diverged(r, gm, snap, what, why);
            break;
        }
        const vkr_tensor *bad = NULL;
        if ((s = vkr_graph_download_weights(g))) {
            s = fit_failed(r, "train", s);
            break;
        }
        if ((bad = nonfinite_tensor(gm))) {
            char why[700];
            snprintf(why, sizeof why, "its last steps left a non-finite value in \"%s\"", bad->name);
            s = diverged(r, gm, snap, what, why);
            break;
        }
        if (val && (s = validate(r, g, gm, vfeat, vlabels, dim, er))) {
            s = fit_failed(r, "validation", s);
            break;
        }
        if (val && !isfinite(er->val_loss)) {
            char why[96];
            snprintf(why, sizeof why, "the validation loss is %s", nonfinite_name(er->val_loss));
            s = diverged(r, gm, snap, what, why);
            break;
        }
        if ((s = keep_finite(gm, &snap))) {
            s = fit_failed(r, "train", s);
            break;
        }
        r->hist->n++;
        r->step = 0;
        if (r->tb) {
            static const char *const tags[] = {"loss", "accuracy", "lr", "val_loss", "val_accuracy"};
            double v[5] = {er->loss, er->accuracy, er->lr, er->val_loss, er->val_accuracy};
            if ((s = tb_scalars(r->tb, r->hist->n - 1, val ? 5 : 3, tags, v))) {
                s = fit_failed(r, "tensorboard", s);
                break;
            }
        }
        vkr_fit_epoch_end ee = {what, r->hist->n - 1, er, val};
        if (r->cb && r->cb->on_epoch && r->cb->on_epoch(r->cb->user, &ee)) r->stop = 1;
        if (val && (s = keep_best(r, g, gm))) {
            s = fit_failed(r, "save", s);
            break;
        }
        if (fit_early_stop(r, stage)) break;
    }
    free(x);
    free(t);
    free(perm);
    free(snap);
    return s;
}
