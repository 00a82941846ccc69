/* A run's options as JSON (the checkpoint's "options": its command), read back for resuming from
 * the checkpoint alone, and compared with the options a resumed run was given.  One table of
 * fields serves all three: a new vkr_fit_opts field that changes the results gets a row. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "train/fit_internal.h"

#include <limits.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef enum { F_STR, F_INT, F_DBL, F_U64, F_INTERP, F_OPTIM, F_AUGMENT, F_HEAD, F_PREC } field_kind;

typedef struct {
    const char *key;   /* JSON key */
    const char *flag;  /* the `vkrun train` flag */
    field_kind kind;
    size_t off;
    int same;          /* a resumed run must have the same value (else: the resumed run's choice) */
} field;

#define F(key, flag, kind, member, same) {key, flag, kind, offsetof(vkr_fit_opts, member), same}
static const field k_fields[] = {
    F("model", "--model", F_STR, model, 1),
    F("data", "--data", F_STR, data, 1),
    F("val", "--val", F_STR, val, 1),
    F("val_split", "--val-split", F_DBL, val_split, 1),
    F("val_every", "--val-every", F_INT, val_every, 1),
    F("out", "--out", F_STR, out, 0),
    F("plots", "--plots", F_STR, plots, 0),
    F("cache_dir", "--cache", F_STR, cache_dir, 0),
    F("device", "--device", F_STR, device, 0),
    F("height", "--size", F_INT, height, 1),
    F("width", "--size", F_INT, width, 1),
    F("interpolation", "--interpolation", F_INTERP, interp, 1),
    F("augment", "--augment", F_AUGMENT, augment, 1),
    F("keep_remainder", "--drop-remainder", F_INT, keep_remainder, 1),
    F("strict", "--strict", F_INT, strict, 0),
    F("seed", "--seed", F_U64, seed, 1),
    F("head", "--head", F_HEAD, nhead, 1),
    F("freeze", "--freeze", F_INT, freeze, 1),
    F("batch", "--batch", F_INT, batch, 1),
    F("micro_batch", "--micro-batch", F_INT, micro_batch, 0),
    F("recompute", "--recompute", F_INT, recompute, 0),
    F("bn_train", "--bn-train", F_INT, bn_train, 1),
    F("sync_bn", "--sync-bn", F_INT, sync_bn, 1),
    F("optimizer", "--optimizer", F_OPTIM, optimizer, 1),
    F("lr", "--lr", F_DBL, lr, 1),
    F("momentum", "--momentum", F_DBL, momentum, 1),
    F("epochs", "--epochs", F_INT, epochs, 1),
    F("fine_tune_epochs", "--fine-tune-epochs", F_INT, ft_epochs, 1),
    F("fine_tune_lr", "--fine-tune-lr", F_DBL, ft_lr, 1),
    F("fine_tune_from", "--fine-tune-from", F_INT, ft_from, 1),
    F("no_cache", "--no-cache", F_INT, no_cache, 0),
    F("augment_fine_tune_only", "--augment-fine-tune", F_INT, augment_fine_tune_only, 1),
    F("split_names_ok", "--split-folders-as-classes", F_INT, split_names_ok, 1),
    F("tensorboard", "--tensorboard", F_STR, tensorboard, 0),
    F("tensorboard_steps", "--tensorboard-steps", F_INT, tensorboard_steps, 0),
    /* callbacks, schedules, loss weighting, regularization (enums are stored as int) */
    F("early_stopping", "--early-stopping", F_INT, early_stopping, 1),
    F("monitor", "--monitor", F_INT, monitor, 1),
    F("save_best", "--save-best", F_INT, save_best, 1),
    F("lr_schedule", "--lr-schedule", F_INT, lr_schedule, 1),
    F("sched_epochs", "--lr-schedule", F_INT, sched_epochs, 1),
    F("sched_patience", "--lr-schedule", F_INT, sched_patience, 1),
    F("sched_factor", "--lr-schedule", F_DBL, sched_factor, 1),
    F("warmup_epochs", "--warmup-epochs", F_INT, warmup_epochs, 1),
    F("class_weight", "--class-weight", F_STR, class_weight, 1),
    F("label_smoothing", "--label-smoothing", F_DBL, label_smoothing, 1),
    F("weight_decay", "--weight-decay", F_DBL, weight_decay, 1),
    F("dropout", "--dropout", F_DBL, dropout, 1),
    F("precision", "--precision", F_PREC, precision, 1), /* fp16 GEMM inputs and loss scaling change results */
};
_Static_assert(sizeof(vkr_fit_monitor) == sizeof(int) && sizeof(vkr_fit_schedule) == sizeof(int),
               "enum options are read and written as int");

/* String options that are not paths (kept as given, compared as text). */
static int is_text(const field *f) { return !strcmp(f->key, "device") || !strcmp(f->key, "class_weight"); }
/* Paths a resumed run writes to: a checkpoint's are only trusted inside its own folder. */
static int is_write_target(const field *f) {
    return !strcmp(f->key, "out") || !strcmp(f->key, "plots") || !strcmp(f->key, "cache_dir") ||
           !strcmp(f->key, "tensorboard");
}
#undef F
#define NFIELDS (sizeof k_fields / sizeof k_fields[0])

#define AT(o, f, T) ((T *)((char *)(o) + (f)->off))
#define CAT(o, f, T) ((const T *)((const char *)(o) + (f)->off))

void vkr_fit_defaults(vkr_fit_opts *o) {
    memset(o, 0, sizeof *o);
    o->batch = 32;
    o->epochs = 5;
    o->lr = 1e-3;
    o->momentum = 0.9;
    o->ft_lr = 1e-5;
    o->seed = 1;
    o->optimizer = VKR_OPTIM_ADAM;
    o->interp = VKR_INTERP_BILINEAR;
    o->freeze = -1;
    o->val_every = 1;
    o->keep_remainder = 1; /* as Keras: the last partial batch is trained on */
    o->tensorboard_steps = 10;
    int def[] = {1024, 1024, 1024, 512};
    o->nhead = 4;
    memcpy(o->head, def, sizeof def);
}

/* The options' ranges (vkr_fit before any work, and the options a checkpoint records). */
vkr_status fit_check_opts(const vkr_fit_opts *a) {
    if (a->batch <= 0 || a->micro_batch < 0 || a->val_every <= 0 || a->freeze < -1 || a->epochs < 0 ||
        a->ft_epochs < 0 || a->ft_from < 0 || !(a->lr > 0) || !(a->ft_lr > 0) || !(a->val_split >= 0) ||
        a->val_split >= 1 || (a->val && a->val_split > 0) || a->nhead < 0 || a->nhead > VKR_FIT_MAX_HEAD ||
        a->height < 0 || a->width < 0 || a->tensorboard_steps < 0)
        return vkr_fail(VKR_ERR_INVALID, "invalid option values (batch > 0, epochs >= 0, lr > 0, freeze >= 0, "
                                         "val-every > 0, fine-tune-from >= 0, 0 <= val-split < 1, not both val and "
                                         "val-split, at most %d head layers)", VKR_FIT_MAX_HEAD);
    if (a->sync_bn && !a->bn_train)
        return vkr_fail(VKR_ERR_INVALID, "--sync-bn synchronizes the batch statistics of --bn-train: without "
                                         "--bn-train BatchNorm uses its running statistics and there is nothing to sync");
    if (a->sync_bn && (a->micro_batch > 0 || a->recompute > 0))
        return vkr_fail(VKR_ERR_UNSUPPORTED, "--sync-bn with %s is not supported (the statistics are exchanged once per "
                                             "BatchNorm over each rank's whole share of the step)",
                        a->micro_batch > 0 ? "--micro-batch" : "--recompute on");
    if (a->early_stopping < 0 || (a->monitor != VKR_MONITOR_VAL_LOSS && a->monitor != VKR_MONITOR_VAL_ACCURACY))
        return vkr_fail(VKR_ERR_INVALID, "--early-stopping wants a patience >= 0 epochs; --monitor val_loss or "
                                         "val_accuracy");
    if (a->lr_schedule < VKR_SCHED_CONSTANT || a->lr_schedule > VKR_SCHED_PLATEAU || a->warmup_epochs < 0 ||
        (a->lr_schedule == VKR_SCHED_STEP && (a->sched_epochs <= 0 || !(a->sched_factor > 0))) ||
        (a->lr_schedule == VKR_SCHED_PLATEAU && (a->sched_patience <= 0 || !(a->sched_factor > 0) ||
                                                 !(a->sched_factor < 1))))
        return vkr_fail(VKR_ERR_INVALID, "--lr-schedule: step:EPOCHS:FACTOR wants EPOCHS > 0 and FACTOR > 0, "
                                         "plateau:PATIENCE:FACTOR wants PATIENCE > 0 and 0 < FACTOR < 1; "
                                         "--warmup-epochs >= 0");
    if (!(a->label_smoothing >= 0 && a->label_smoothing < 1) || !(a->weight_decay >= 0) ||
        !(a->dropout >= 0 && a->dropout < 1))
        return vkr_fail(VKR_ERR_INVALID, "--label-smoothing wants 0 <= E < 1, --weight-decay W >= 0 and --dropout "
                                         "0 <= P < 1");
    const vkr_augment *g = &a->augment; /* the ranges of vkr_augment_parse */
    if (!(g->rotate >= 0 && g->rotate <= 180 && g->zoom >= 0 && g->zoom < 1 && g->shift >= 0 && g->shift <= 1 &&
          g->brightness >= 0 && g->brightness <= 1 && g->contrast >= 0 && g->contrast < 1))
        return vkr_fail(VKR_ERR_INVALID, "--augment: out of range (rotate in [0, 180], zoom in [0, 1), shift in "
                                         "[0, 1], brightness in [0, 1], contrast in [0, 1))");
    if (a->epochs + a->ft_epochs == 0)
        return vkr_fail(VKR_ERR_INVALID, "--epochs 0 and --fine-tune-epochs 0: nothing to train (an untrained model "
                                         "is not written); give --epochs E > 0 or --fine-tune-epochs E > 0");
    if (a->epochs + a->ft_epochs > VKR_FIT_MAX_EPOCHS)
        return vkr_fail(VKR_ERR_INVALID, "at most %d epochs in all", VKR_FIT_MAX_EPOCHS);
    return VKR_OK;
}

/* An absolute spelling of a path (the checkpoint may be resumed from another folder). */
static void absolute(const char *p, char *buf, size_t n) {
    char cwd[PATH_MAX];
    if (p[0] == '/' || !getcwd(cwd, sizeof cwd)) snprintf(buf, n, "%s", p);
    else snprintf(buf, n, "%s/%s", cwd, p);
}

/* The value of field f of o as text (for JSON strings and messages). */
static void value_text(const vkr_fit_opts *o, const field *f, char *buf, size_t n) {
    switch (f->kind) {
    case F_STR: snprintf(buf, n, "%s", *CAT(o, f, char *) ? *CAT(o, f, char *) : "(none)"); break;
    case F_INT: snprintf(buf, n, "%d", *CAT(o, f, int)); break;
    case F_DBL: snprintf(buf, n, "%.17g", *CAT(o, f, double)); break;
    case F_U64: snprintf(buf, n, "%llu", (unsigned long long)*CAT(o, f, uint64_t)); break;
    case F_INTERP: snprintf(buf, n, "%s", vkr_interp_name(*CAT(o, f, vkr_interp))); break;
    case F_OPTIM: snprintf(buf, n, "%s", *CAT(o, f, vkr_optimizer) == VKR_OPTIM_SGD ? "sgd" : "adam"); break;
    case F_AUGMENT: vkr_augment_format(CAT(o, f, vkr_augment), buf, n); break;
    case F_PREC: snprintf(buf, n, "%s", vkr_precision_name(*CAT(o, f, vkr_precision))); break;
    case F_HEAD: {
        size_t len = 0;
        buf[0] = 0;
        for (int i = 0; i < o->nhead && len < n; i++) len += (size_t)snprintf(buf + len, n - len, "%s%d", i ? "," : "", o->head[i]);
        if (!o->nhead) snprintf(buf, n, "none");
        break;
    }
    }
}

cJSON *fit_options_json(const vkr_fit_opts *o) {
    cJSON *j = cJSON_CreateObject();
    char buf[4400], abs[4400];
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &k_fields[i];
        if (f->kind == F_STR) {
            const char *s = *CAT(o, f, char *);
            if (!s) continue;
            absolute(s, abs, sizeof abs);
            cJSON_AddStringToObject(j, f->key, is_text(f) ? s : abs);
        } else if (f->kind == F_INT || f->kind == F_DBL) {
            cJSON_AddNumberToObject(j, f->key, f->kind == F_INT ? (double)*CAT(o, f, int) : *CAT(o, f, double));
        } else {
            value_text(o, f, buf, sizeof buf);
            cJSON_AddStringToObject(j, f->key, buf);
        }
    }
    return j;
}

/* Sets field f of o from JSON item v; strings are appended to *pool (offsets until the end). */
static int set_field(vkr_fit_opts *o, const field *f, const cJSON *v) {
    const char *s = cJSON_GetStringValue(v);
    switch (f->kind) {
    case F_STR: return 0; /* the caller places strings */
    case F_INT: /* whole and in int's range: (int)1e30 is undefined */
        if (!cJSON_IsNumber(v) || !(fabs(v->valuedouble) <= 1e9) || v->valuedouble != floor(v->valuedouble)) return -1;
        *AT(o, f, int) = (int)v->valuedouble;
        return 0;
    case F_DBL: if (!cJSON_IsNumber(v) || !isfinite(v->valuedouble)) return -1; *AT(o, f, double) = v->valuedouble; return 0;
    case F_U64: if (!s) return -1; *AT(o, f, uint64_t) = strtoull(s, NULL, 10); return 0;
    case F_INTERP: return s && vkr_interp_parse(s, AT(o, f, vkr_interp)) == VKR_OK ? 0 : -1;
    case F_OPTIM:
        if (!s || (strcmp(s, "sgd") && strcmp(s, "adam"))) return -1;
        *AT(o, f, vkr_optimizer) = !strcmp(s, "sgd") ? VKR_OPTIM_SGD : VKR_OPTIM_ADAM;
        return 0;
    case F_AUGMENT: return s && vkr_augment_parse(s, AT(o, f, vkr_augment)) == VKR_OK ? 0 : -1;
    case F_PREC: return s && vkr_precision_parse(s, AT(o, f, vkr_precision)) == VKR_OK ? 0 : -1;
    case F_HEAD:
        if (!s) return -1;
        o->nhead = 0;
        if (!strcmp(s, "none")) return 0;
        for (const char *p = s; *p && o->nhead < VKR_FIT_MAX_HEAD;) {
            char *end;
            long u = strtol(p, &end, 10);
            if (end == p || u <= 0 || u > 1 << 20) return -1; /* --head's range */
            o->head[o->nhead++] = (int)u;
            p = *end == ',' ? end + 1 : end;
        }
        return 0;
    }
    return -1;
}

/* The absolute folder of file `p` (no trailing slash, "/" for the root). */
static void folder_of(const char *p, char *buf, size_t n) {
    absolute(p, buf, n);
    char *slash = strrchr(buf, '/');
    if (slash == buf) slash[1] = 0;
    else if (slash) *slash = 0;
}

/* The part of `p` below folder `dir` ("" for dir itself, else "/..."), or NULL when p is not
 * below it or climbs out of it with "..". */
static const char *below(const char *p, const char *dir) {
    size_t n = strlen(dir);
    if (n == 1) n = 0; /* "/" */
    if (strncmp(p, dir, n) || (p[n] && p[n] != '/')) return NULL;
    const char *rest = p + n;
    for (const char *q = rest; (q = strstr(q, "/..")); q += 3)
        if (q[3] == 0 || q[3] == '/') return NULL;
    return rest;
}

/* A write target recorded in a checkpoint at `ck`: the same place relative to the checkpoint's
 * folder as it had to the recorded --out's folder `was` (a copied checkpoint writes beside the
 * copy), or the recorded text when it lies outside (vkr_fit_options_match refuses it then). */
static void rebase(const char *recorded, const char *was, const char *ck, char *buf, size_t n) {
    char dir[4400];
    const char *rest = *was ? below(recorded, was) : NULL;
    folder_of(ck, dir, sizeof dir);
    int root = !strcmp(dir, "/"), len;
    if (rest) len = snprintf(buf, n, "%s%s", root ? "" : dir, *rest || !root ? rest : "/");
    else len = snprintf(buf, n, "%s", recorded);
    if (len < 0 || (size_t)len >= n) buf[0] = 0; /* too long: refused as outside ("" is below nothing) */
}

vkr_status vkr_fit_checkpoint_options(const char *path, vkr_fit_opts *o, char **strings) {
    *strings = NULL;
    vkr_fit_defaults(o);
    vkr_model *m = NULL;
    vkr_status s = vkr_model_load(path, &m);
    if (s) return s;
    const char *meta = vkr_model_get_meta(m, "vkrun_checkpoint");
    cJSON *ck = meta ? cJSON_Parse(meta) : NULL;
    int had_meta = meta != NULL;
    vkr_model_free(m);
    const cJSON *opts = cJSON_GetObjectItem(ck, "options");
    if (!ck || !cJSON_IsObject(opts)) {
        cJSON_Delete(ck);
        return vkr_fail(VKR_ERR_FORMAT, cJSON_IsObject(ck) ? "%s was written by a vkrun that did not record its options "
                                                             "in checkpoints: resume it with the original flags and --resume"
                                      : had_meta ? "%s: its vkrun_checkpoint metadata is not a JSON object (damaged or edited)"
                                             : "%s is a model file but not a checkpoint (no vkrun_checkpoint metadata: vkrun "
                                               "train writes OUT.checkpoint when interrupted)", path);
    }
    /* --out is the checkpoint's name less ".checkpoint" (never the recorded one); the other write
     * targets keep their place relative to the recorded --out's folder */
    char was[4400] = "", buf[4400];
    const char *rec_out = cJSON_GetStringValue(cJSON_GetObjectItem(opts, "out"));
    if (rec_out && rec_out[0] == '/') folder_of(rec_out, was, sizeof was);
    size_t need = strlen(path) + 1, pl = strlen(path), sl = strlen(".checkpoint");
    for (size_t i = 0; i < NFIELDS; i++)
        if (k_fields[i].kind == F_STR) need += strlen(cJSON_GetStringValue(cJSON_GetObjectItem(opts, k_fields[i].key)) ?
                                                      cJSON_GetStringValue(cJSON_GetObjectItem(opts, k_fields[i].key)) : "") + 1;
    need += 4 * sizeof buf; /* the rebased write targets */
    char *pool = malloc(need), *p = pool;
    if (!pool) {
        cJSON_Delete(ck);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    }
    for (size_t i = 0; i < NFIELDS && !s; i++) {
        const field *f = &k_fields[i];
        const cJSON *v = cJSON_GetObjectItem(opts, f->key);
        if (!v) continue;
        if (f->kind == F_STR) {
            const char *str = cJSON_GetStringValue(v);
            if (str && !strcmp(f->key, "out")) { /* NULL when the checkpoint was renamed: the CLI asks for --out */
                str = NULL;
                if (pl > sl && !strcmp(path + pl - sl, ".checkpoint")) {
                    absolute(path, buf, sizeof buf);
                    buf[strlen(buf) - sl] = 0;
                    str = buf;
                }
                if (!str) continue;
            } else if (str && is_write_target(f)) {
                rebase(str, was, path, buf, sizeof buf);
                str = buf;
            }
            if (!str) s = VKR_ERR_FORMAT;
            else {
                strcpy(p, str);
                *AT(o, f, const char *) = p;
                p += strlen(str) + 1;
            }
        } else if (set_field(o, f, v)) {
            s = VKR_ERR_FORMAT;
        }
        if (s) s = vkr_fail(VKR_ERR_INVALID, "%s: its recorded option \"%s\" is malformed (the file was edited or "
                                             "damaged; start a new run without --resume)", path, f->key);
    }
    cJSON_Delete(ck);
    strcpy(p, path);
    o->resume = p;
    if (!s && (s = fit_check_opts(o))) /* recorded by no flag the user typed: blame the file */
        s = vkr_fail(VKR_ERR_INVALID, "%s: its recorded options are invalid (%s): the file was edited or damaged; start "
                                     "a new run without --resume", path, vkr_last_error());
    if (s) {
        free(pool);
        return s;
    }
    *strings = pool;
    return VKR_OK;
}

/* Whether two path options name the same file (both absent, equal, or the same resolved path). */
static int same_path(const char *a, const char *b) {
    if (!a || !b) return !a && !b;
    if (!strcmp(a, b)) return 1;
    char ra[PATH_MAX], rb[PATH_MAX];
    return realpath(a, ra) && realpath(b, rb) && !strcmp(ra, rb);
}

vkr_status vkr_fit_options_match(const vkr_fit_opts *given, const vkr_fit_opts *checkpoint) {
    char x[4400], y[4400];
    for (size_t i = 0; i < NFIELDS; i++) {
        const field *f = &k_fields[i];
        const char *mine = f->kind == F_STR ? *CAT(given, f, char *) : NULL;
        if (checkpoint->resume && is_write_target(f) && mine && mine == *CAT(checkpoint, f, char *)) {
            folder_of(checkpoint->resume, x, sizeof x);
            if (!below(mine, x))
                return vkr_fail(VKR_ERR_INVALID,
                                "%s records %s %s, outside the checkpoint's folder %s: a checkpoint's paths are data, "
                                "not places to write; resume with %s %s (or another) on the command line to write "
                                "there", checkpoint->resume, f->flag, mine, x, f->flag, mine);
        }
        if (!f->same) continue;
        if (f->kind == F_STR && is_text(f)) {
            const char *a = *CAT(given, f, char *), *b = *CAT(checkpoint, f, char *);
            if ((!a && !b) || (a && b && !strcmp(a, b))) continue;
        } else if (f->kind == F_STR) {
            if (same_path(*CAT(given, f, char *), *CAT(checkpoint, f, char *))) continue;
        } else {
            value_text(given, f, x, sizeof x);
            value_text(checkpoint, f, y, sizeof y);
            if (!strcmp(x, y)) continue;
        }
        value_text(given, f, x, sizeof x);
        value_text(checkpoint, f, y, sizeof y);
        return vkr_fail(VKR_ERR_INVALID,
                        "%s differs from the interrupted run (%s here, %s in the checkpoint): --resume continues "
                        "that run with its own options, so leave %s out (or start a new run without --resume)",
                        f->flag, x, y, f->flag);
    }
    return VKR_OK;
}
