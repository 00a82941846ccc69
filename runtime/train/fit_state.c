/* What a run leaves behind: STEM.history.json / .history.csv and the curves, and the checkpoint an
 * interrupted run writes (the model with its "vkrun_checkpoint" metadata: settings, position,
 * running sums and history; the optimizer state in OUT.checkpoint.optimizer). */
#include "train/fit_internal.h"
#include "vkrun_plot.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *vkr_fit_stage_name(vkr_fit_stage stage) {
    return stage == VKR_FIT_FINE_TUNE ? "fine-tune" : stage == VKR_FIT_HEAD ? "head" : "train";
}

/* Keras's History.history: one list per key, an epoch per element (null: not validated). */
cJSON *fit_history_json(const vkr_fit_history *h) {
    static const char *const keys[] = {"loss", "accuracy", "val_loss", "val_accuracy", "lr", "stage", "epoch_seconds"};
    cJSON *root = cJSON_CreateObject();
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
        cJSON *arr = cJSON_AddArrayToObject(root, keys[k]);
        for (int i = 0; i < h->n; i++) {
            const vkr_fit_epoch *e = &h->epochs[i];
            double v = k == 0 ? e->loss : k == 1 ? e->accuracy : k == 2 ? e->val_loss : k == 3 ? e->val_accuracy
                     : k == 4 ? e->lr : e->seconds;
            cJSON_AddItemToArray(arr, k == 5 ? cJSON_CreateString(vkr_fit_stage_name(e->stage))
                                             : isfinite(v) ? cJSON_CreateNumber(v) : cJSON_CreateNull());
        }
    }
    return root;
}

static double num_or_nan(const cJSON *o, const char *key) {
    const cJSON *v = cJSON_GetObjectItem(o, key);
    return cJSON_IsNumber(v) ? cJSON_GetNumberValue(v) : NAN;
}

static vkr_fit_stage stage_of(const char *st) {
    return st && !strcmp(st, "fine-tune") ? VKR_FIT_FINE_TUNE : st && !strcmp(st, "head") ? VKR_FIT_HEAD : VKR_FIT_TRAIN;
}

/* The list form (history.json since issue 13): every list as long as "loss". */
static int history_from_lists(vkr_fit_history *h, const cJSON *root) {
    const cJSON *loss = cJSON_GetObjectItem(root, "loss");
    int n = cJSON_GetArraySize(loss);
    if (!cJSON_IsArray(loss) || n > VKR_FIT_MAX_EPOCHS) return -1;
    static const char *const keys[] = {"accuracy", "val_loss", "val_accuracy", "lr", "stage", "epoch_seconds"};
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++)
        if (cJSON_GetArraySize(cJSON_GetObjectItem(root, keys[k])) != n) return -1;
    const cJSON *ips = cJSON_GetObjectItem(root, "images_per_s"); /* checkpoints only */
    const cJSON *wait = cJSON_GetObjectItem(root, "input_wait_seconds"); /* checkpoints only, null: cached */
    for (int i = 0; i < n; i++) {
        vkr_fit_epoch *e = &h->epochs[i];
#define AT(key) cJSON_GetArrayItem(cJSON_GetObjectItem(root, key), i)
        e->loss = cJSON_IsNumber(AT("loss")) ? AT("loss")->valuedouble : NAN;
        e->accuracy = cJSON_IsNumber(AT("accuracy")) ? AT("accuracy")->valuedouble : NAN;
        e->val_loss = cJSON_IsNumber(AT("val_loss")) ? AT("val_loss")->valuedouble : NAN;
        e->val_accuracy = cJSON_IsNumber(AT("val_accuracy")) ? AT("val_accuracy")->valuedouble : NAN;
        e->lr = cJSON_IsNumber(AT("lr")) ? AT("lr")->valuedouble : NAN;
        e->seconds = cJSON_IsNumber(AT("epoch_seconds")) ? AT("epoch_seconds")->valuedouble : NAN;
        e->stage = stage_of(cJSON_GetStringValue(AT("stage")));
#undef AT
        const cJSON *v = cJSON_GetArrayItem(ips, i), *w = cJSON_GetArrayItem(wait, i);
        e->images_per_s = cJSON_IsNumber(v) ? v->valuedouble : 0;
        e->input_wait_seconds = cJSON_IsNumber(w) ? w->valuedouble : NAN;
    }
    h->n = n;
    return 0;
}

/* Both forms: Keras's lists, or the list of epoch records of checkpoints written before (their
 * learning rates are unknown: NaN, filled in by the caller). */
int fit_history_from_json(vkr_fit_history *h, const cJSON *root) {
    const cJSON *arr = cJSON_GetObjectItem(root, "epochs"), *o;
    h->n = 0;
    h->cache_seconds = num_or_nan(root, "feature_cache_seconds");
    if (isnan(h->cache_seconds)) h->cache_seconds = 0;
    if (!arr) return history_from_lists(h, root);
    cJSON_ArrayForEach(o, arr) {
        if (h->n >= VKR_FIT_MAX_EPOCHS) return -1;
        vkr_fit_epoch *e = &h->epochs[h->n++];
        e->stage = stage_of(cJSON_GetStringValue(cJSON_GetObjectItem(o, "stage")));
        e->loss = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "loss"));
        e->accuracy = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "accuracy"));
        e->val_loss = num_or_nan(o, "val_loss");
        e->val_accuracy = num_or_nan(o, "val_accuracy");
        e->seconds = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "seconds"));
        e->images_per_s = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "images_per_s"));
        e->lr = num_or_nan(o, "lr");
        e->input_wait_seconds = NAN;
    }
    return 0;
}

/* The checkpoint's history: the list form plus what only a resumed run needs. */
static cJSON *checkpoint_history_json(const vkr_fit_history *h) {
    cJSON *root = fit_history_json(h), *ips = cJSON_AddArrayToObject(root, "images_per_s");
    cJSON *wait = cJSON_AddArrayToObject(root, "input_wait_seconds");
    for (int i = 0; i < h->n; i++) {
        double w = h->epochs[i].input_wait_seconds;
        cJSON_AddItemToArray(ips, cJSON_CreateNumber(h->epochs[i].images_per_s));
        cJSON_AddItemToArray(wait, isnan(w) ? cJSON_CreateNull() : cJSON_CreateNumber(w));
    }
    cJSON_AddNumberToObject(root, "feature_cache_seconds", h->cache_seconds);
    return root;
}

/* Writes text to dir/name atomically; keeps the first failure's message in err. */
static void write_text(const char *dir, const char *name, const char *text, char *err, size_t n) {
    char path[4400];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    vkr_status s = text ? vkr_file_write_atomic(path, text, strlen(text))
                        : vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory writing %s", path);
    if (s && !*err) snprintf(err, n, "cannot write %s: %s", path, vkr_last_error());
}

static char *history_csv(const vkr_fit_history *h) {
    size_t cap = 128 + (size_t)h->n * 160;
    char *csv = malloc(cap);
    if (!csv) return NULL;
    size_t len = (size_t)snprintf(csv, cap, "epoch,stage,loss,accuracy,val_loss,val_accuracy,seconds,lr\n");
    for (int i = 0; i < h->n; i++) {
        const vkr_fit_epoch *e = &h->epochs[i];
        len += (size_t)snprintf(csv + len, cap - len, "%d,%s,%.6f,%.6f,%.6f,%.6f,%.3f,%.9g\n", i + 1,
                                vkr_fit_stage_name(e->stage), e->loss, e->accuracy, e->val_loss, e->val_accuracy,
                                e->seconds, e->lr);
    }
    return csv;
}

/* The name the history and curves of the model `out` start with: its file name less the extension
 * ("runs/cd.safetensors" -> "cd"), so that two models of one folder keep their own. */
void fit_output_stem(const char *out, char *stem, size_t n) {
    const char *base = strrchr(out, '/');
    base = base ? base + 1 : out;
    const char *dot = strrchr(base, '.');
    size_t len = dot && dot > base ? (size_t)(dot - base) : strlen(base);
    snprintf(stem, n, "%.*s", (int)len, base);
}

static vkr_status plot_history(const vkr_fit_history *h, const char *dir, const char *stem) {
    double *y = malloc(sizeof(double) * 4 * (size_t)h->n);
    if (!y) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int i = 0; i < h->n; i++) {
        y[i] = h->epochs[i].accuracy;
        y[h->n + i] = h->epochs[i].val_accuracy;
        y[2 * h->n + i] = h->epochs[i].loss;
        y[3 * h->n + i] = h->epochs[i].val_loss;
    }
    int has_val = !isnan(h->epochs[h->n - 1].val_accuracy);
    vkr_plot_series acc[2] = {{"train", NULL, y, h->n, 0}, {"val", NULL, y + h->n, h->n, 0}};
    vkr_plot_series loss[2] = {{"train", NULL, y + 2 * h->n, h->n, 0}, {"val", NULL, y + 3 * h->n, h->n, 0}};
    /* where fine-tuning starts: between the last epoch before it and its first (epochs count from 1) */
    vkr_plot_marker mk = {0, "fine-tuning"};
    int nmk = 0;
    for (int i = 1; i < h->n && !nmk; i++)
        if (h->epochs[i].stage == VKR_FIT_FINE_TUNE && h->epochs[i - 1].stage != VKR_FIT_FINE_TUNE) {
            mk.x = i + 0.5;
            nmk = 1;
        }
    char path[4400];
    snprintf(path, sizeof path, "%s/%s.accuracy.png", dir, stem);
    vkr_status s = vkr_plot_lines_marked(path, "Model accuracy", "epoch", "accuracy", acc, has_val ? 2 : 1, &mk, nmk);
    if (!s) {
        snprintf(path, sizeof path, "%s/%s.loss.png", dir, stem);
        s = vkr_plot_lines_marked(path, "Model loss", "epoch", "loss", loss, has_val ? 2 : 1, &mk, nmk);
    }
    free(y);
    return s;
}

/* STEM.history.json, STEM.history.csv, STEM.accuracy.png and STEM.loss.png in dir (STEM: the
 * model's name, fit_output_stem); tries them all, fails (VKR_ERR_IO) with the first problem. */
vkr_status fit_write_history(const vkr_fit_history *h, const char *dir, const char *out) {
    char err[5600] = "", stem[256], name[300];
    fit_output_stem(out, stem, sizeof stem);
    cJSON *root = fit_history_json(h);
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    snprintf(name, sizeof name, "%s.history.json", stem);
    write_text(dir, name, txt, err, sizeof err);
    free(txt);
    char *csv = history_csv(h);
    snprintf(name, sizeof name, "%s.history.csv", stem);
    write_text(dir, name, csv, err, sizeof err);
    free(csv);
    if (h->n && plot_history(h, dir, stem) && !*err) snprintf(err, sizeof err, "plot: %s", vkr_last_error());
    return *err ? vkr_fail(VKR_ERR_IO, "%s", err) : VKR_OK;
}

/* The options a resumed run must share with the interrupted one (data order, sizes, schedule,
 * optimizer); resuming refuses anything else. */
void fit_settings_string(const fit_run *r, char *buf, size_t n) {
    const vkr_fit_opts *a = r->a;
    /* augmentation: flip/crop alone as the bits checkpoints have always recorded (VKR_LOAD_FLIP |
     * VKR_LOAD_CROP), anything more as its canonical spec */
    const vkr_augment *g = &a->augment;
    char aug[300];
    if (!g->rotate && !g->zoom && !g->shift && !g->brightness && !g->contrast && !g->resized_crop)
        snprintf(aug, sizeof aug, "%u", (a->augment.flip ? VKR_LOAD_FLIP : 0u) | (a->augment.crop ? VKR_LOAD_CROP : 0u));
    else vkr_augment_format(&a->augment, aug, sizeof aug);
    if (a->augment_fine_tune_only) snprintf(aug + strlen(aug), sizeof aug - strlen(aug), " augment_fine_tune_only=1");
    snprintf(buf, n,
             "size=%dx%d batch=%d seed=%llu keep_remainder=%d augment=%s interpolation=%s optimizer=%s lr=%.9g "
             "momentum=%.9g epochs=%d freeze=%d bn_train=%d fine_tune_epochs=%d fine_tune_lr=%.9g fine_tune_from=%d "
             "val_every=%d",
             r->H, r->W, a->batch, (unsigned long long)a->seed, a->keep_remainder, aug,
             vkr_interp_name(a->interp), a->optimizer == VKR_OPTIM_SGD ? "sgd" : "adam", a->lr, a->momentum,
             a->epochs, r->freeze, a->bn_train, a->ft_epochs, a->ft_lr, a->ft_from, a->val_every);
    /* the options of docs/training.md "Callbacks and schedules", when used */
    size_t len = strlen(buf);
    if (len < n && (a->early_stopping || a->save_best || a->lr_schedule || a->warmup_epochs || a->class_weight ||
                    a->label_smoothing != 0 || a->weight_decay != 0 || a->dropout != 0))
        snprintf(buf + len, n - len, " early_stopping=%d monitor=%d save_best=%d lr_schedule=%d:%d:%d:%.9g warmup=%d "
                 "class_weight=%s label_smoothing=%.9g weight_decay=%.9g dropout=%.9g", a->early_stopping, (int)a->monitor,
                 a->save_best, (int)a->lr_schedule, a->sched_epochs, a->sched_patience, a->sched_factor,
                 a->warmup_epochs, a->class_weight ? a->class_weight : "", a->label_smoothing, a->weight_decay,
                 a->dropout);
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

void fit_data_hash(const fit_run *r, char out[17]) {
    uint64_t h = 14695981039346656037ull;
    const vkr_dataset *sets[2] = {r->train, r->val};
    for (int k = 0; k < 2; k++) {
        if (!sets[k]) continue;
        size_t root = strlen(vkr_dataset_root(sets[k]));
        for (int i = 0; i < vkr_dataset_size(sets[k]); i++) {
            const char *p = vkr_dataset_path(sets[k], i);
            int32_t label = vkr_dataset_label(sets[k], i);
            p += strncmp(p, vkr_dataset_root(sets[k]), root) ? 0 : root;
            h = fnv(fnv(h, p, strlen(p) + 1), &label, sizeof label);
        }
        h = fnv(h, "|", 1);
    }
    snprintf(out, 17, "%016llx", (unsigned long long)h);
}

vkr_status fit_save_checkpoint(fit_run *r, vkr_graph *g, vkr_model *gm) {
    vkr_status s = vkr_graph_download_weights(g);
    if (s) return s;
    if (gm != r->model) fit_copy_tensors(r->model, gm);
    /* the optimizer state first: the model file (renamed into place last) names its step */
    char opt[4300];
    snprintf(opt, sizeof opt, "%s.optimizer", r->res->checkpoint);
    if ((s = vkr_graph_save_optimizer(g, opt))) return s;
    char settings[1024];
    fit_settings_string(r, settings, sizeof settings);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "settings", settings);
    cJSON_AddItemToObject(c, "options", fit_options_json(r->a)); /* the command: resume from the checkpoint alone */
    cJSON_AddNumberToObject(c, "optimizer_step", vkr_graph_step(g));
    cJSON_AddNumberToObject(c, "stage", r->stage);
    cJSON_AddNumberToObject(c, "epoch", r->epoch);
    cJSON_AddNumberToObject(c, "step", r->step);
    cJSON_AddNumberToObject(c, "loss_sum", r->loss_sum);
    cJSON_AddNumberToObject(c, "correct_sum", r->correct_sum);
    cJSON_AddNumberToObject(c, "seen", (double)r->seen);
    cJSON_AddNumberToObject(c, "base_layers", r->base_layers);
    char hash[17];
    fit_data_hash(r, hash);
    cJSON_AddStringToObject(c, "data_hash", hash); /* the images the epochs were drawn from */
    cJSON_AddItemToObject(c, "history", checkpoint_history_json(r->hist));
    char *txt = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!txt) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    s = vkr_model_set_meta(r->model, "vkrun_checkpoint", txt);
    free(txt);
    int h = r->model->in_h, w = r->model->in_w;
    r->model->in_h = r->H; /* the checkpoint remembers the training size */
    r->model->in_w = r->W;
    if (!s) s = vkr_model_save(r->model, r->res->checkpoint);
    r->model->in_h = h;
    r->model->in_w = w;
    vkr_model_set_meta(r->model, "vkrun_checkpoint", NULL);
    return s;
}

/* Loads the optimizer state saved beside a checkpoint and checks it is the one the
 * checkpoint was written with (same optimizer step). */
vkr_status fit_resume_optimizer(vkr_graph *g, const char *path, const cJSON *ck) {
    vkr_status s = vkr_graph_load_optimizer(g, path);
    if (s) return s;
    double want = cJSON_GetNumberValue(cJSON_GetObjectItem(ck, "optimizer_step"));
    if (want != (double)vkr_graph_step(g))
        return vkr_fail(VKR_ERR_FORMAT, "%s holds the optimizer state of step %u, the checkpoint was written at step %.0f",
                        path, vkr_graph_step(g), want);
    return VKR_OK;
}

/* The trained model, with the input size and resize it was trained at. */
vkr_status fit_save_model(fit_run *r) {
    r->model->in_h = r->H;
    r->model->in_w = r->W;
    vkr_status s = vkr_model_set_meta(r->model, "vkrun_interpolation", vkr_interp_name(r->a->interp));
    return s ? s : vkr_model_save(r->model, r->a->out);
}
