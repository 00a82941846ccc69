/* vkrun train: transfer learning on a folder of images (the Keras tutorial as
 * one command): base -> global average pooling -> Dense+ReLU head -> softmax,
 * frozen base, Adam, categorical cross-entropy; optional fine-tuning stage. */
#define _XOPEN_SOURCE 700 /* realpath */
#include "cli.h"
#include "vkrun_comm.h"
#include "vkrun_train.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

const char usage_train[] =
    "usage: vkrun train --model BASE --data DIR --out MODEL.safetensors [options]\n\n"
    "Builds BASE (up to its last feature map) -> global average pooling -> Dense+ReLU head\n"
    "-> Dense(classes, softmax), freezes the base, and trains with categorical\n"
    "cross-entropy.  Classes are DIR's subfolders sorted by name.  Writes the model\n"
    "(base + head, class names, preprocessing) atomically, and next to it (or in --plots) its\n"
    "history and curves named after it: M.history.json, M.history.csv, M.accuracy.png, M.loss.png\n"
    "for --out M.safetensors.\n\n"
    "data:\n"
    "  --data DIR              one subfolder per class (JPEG, PNG, BMP, GIF, TGA, PNM)\n"
    "  --val DIR | --val-split F   validation folder, or a stratified fraction of DIR\n"
    "  --val-every K           validate every K epochs and after the last (default 1)\n"
    "  --batch B               batch size (default 32): images per optimizer step\n"
    "  --micro-batch N         images per submission (default: the largest that fits the device, printed as the\n"
    "                          memory plan); gradients of the micro-batches add up to the batch's, one update per batch\n"
    "  --recompute             keep only block-boundary activations, recompute inside a block on the backward pass\n"
    "                          (less memory, more time; default: when micro-batches alone would hold < 8 images)\n"
    "  --no-recompute          never recompute\n"
    "  --size HxW              input size (default: the model's)\n"
    "  --interpolation bilinear|nearest|nearest-pil   resize (default bilinear)\n"
    "  --augment SPEC          random transforms of training images, comma-separated: flip, crop (shift by up to\n"
    "                          1/8 in whole pixels), rotate=DEG, zoom=F, shift=F, brightness=F, contrast=F,\n"
    "                          resized-crop (e.g. flip,rotate=15,zoom=0.1); turns the feature cache off\n"
    "  --augment-fine-tune     augment in the fine-tuning stage only: the head trains on cached features first\n"
    "  --split-folders-as-classes  accept class folders named like a split (train, val, test): by default\n"
    "                          --data DIR holding train/ and val/ is refused (use --data DIR/train --val DIR/val)\n"
    "  --drop-remainder        drop the last partial batch of each epoch (n // batch steps); by default it is\n"
    "                          trained on, as in Keras (ceil(n / batch) steps; --keep-remainder says so)\n"
    "  --strict                a file that is not a decodable image is an error (default: skipped)\n"
    "  --seed S                shuffling, split, head initialization (default 1)\n"
    "model:\n"
    "  --head 1024,1024,1024,512   Dense+ReLU units before the classifier (default: the tutorial's)\n"
    "  --freeze N              freeze layers [0, N) by index (default: the whole base)\n"
    "  --optimizer adam|sgd    (default adam: Keras defaults lr 1e-3, b1 .9, b2 .999, eps 1e-7)\n"
    "  --lr LR  --momentum M   learning rate; SGD momentum (default 0.9)\n"
    "  --epochs E              (default 5)\n"
    "  --fine-tune-epochs E    then unfreeze the base and continue E epochs (default 0)\n"
    "  --fine-tune-lr LR       (default 1e-5)\n"
    "  --fine-tune-from N      unfreeze layers >= N only (default 0: everything)\n"
    "  --bn-train              trainable BatchNorm uses batch statistics (default: inference mode)\n"
    "callbacks, schedules, regularization (docs/training.md \"Callbacks and schedules\"):\n"
    "  --early-stopping P      stop a stage when --monitor has not improved for P validated epochs\n"
    "                          (Keras EarlyStopping, min_delta 0; says which epoch was best)\n"
    "  --monitor val_loss|val_accuracy   what early stopping, --save-best and plateau watch (default val_loss)\n"
    "  --save-best             --out is the model of the best validated epoch (ModelCheckpoint save_best_only),\n"
    "                          written whenever the monitor improves; the history keeps every epoch\n"
    "  --lr-schedule S         per step, in each stage from its lr (--lr, --fine-tune-lr):\n"
    "                          cosine: lr * (1 + cos(pi * s / S)) / 2 over the S steps after warmup (to 0)\n"
    "                          step:EPOCHS:FACTOR: lr * FACTOR^floor(epoch / EPOCHS) (StepLR)\n"
    "                          plateau:PATIENCE:FACTOR: lr *= FACTOR after PATIENCE validated epochs without\n"
    "                          improvement by 1e-4 (ReduceLROnPlateau)\n"
    "  --warmup-epochs N       linear warmup: step s < W = N * steps/epoch takes lr * (s + 1) / W\n"
    "  --class-weight auto|NAME=W,...   each sample's loss times its class weight (Keras class_weight; auto:\n"
    "                          n / (classes * n_class), scikit-learn's \"balanced\"; unnamed classes 1)\n"
    "  --label-smoothing E     targets y * (1 - E) + E / classes (also in val_loss, as in Keras)\n"
    "  --weight-decay W        decoupled weight decay p -= lr * W * p each step (AdamW / Keras 3 weight_decay;\n"
    "                          with --optimizer sgd: SGDW, not torch SGD's L2 term)\n"
    "  --dropout P             Keras Dropout(P) before each Dense of the head (after the pooling and after\n"
    "                          each Dense+ReLU): in training only, kept values scaled by 1/(1-P); the mask is\n"
    "                          a hash of (--seed, layer, step, element): reruns and resumed runs identical\n"
    "caching:\n"
    "  --cache DIR             keep the base's pooled features on disk in DIR (default: in memory)\n"
    "  --no-cache              run the frozen base every step instead of caching its features\n"
    "output:\n"
    "  --out FILE              trained model (.safetensors)\n"
    "  --plots DIR             where history and curves go (default: next to --out)\n"
    "  --quiet                 no progress output\n"
    "  --tensorboard DIR       TensorBoard event files in DIR: per epoch loss, accuracy, lr, val_loss,\n"
    "                          val_accuracy (step = epoch from 0); batch_loss, batch_accuracy every N steps\n"
    "  --tensorboard-steps N   N for those (default 10; 0: per epoch only)\n"
    "  --resume CHECKPOINT     continue an interrupted run (Ctrl-C writes OUT.checkpoint, which records the\n"
    "                          command: --resume alone is enough; other flags given must match it)\n"
    "  --precision P           fp32 (default); fp16: conv / dense GEMM inputs rounded to fp16, fp32\n"
    "                          accumulation, fp32 master weights, optimizer state, batch-norm, softmax and\n"
    "                          loss, dynamic loss scaling (from 2^15, x2 after 2000 clean steps, x0.5 and the\n"
    "                          step skipped on inf/NaN gradients; Keras mixed_float16); bf16: the same with\n"
    "                          bfloat16 GEMM inputs, no loss scaling (Keras mixed_bfloat16); auto: the\n"
    "                          fastest verified (fp32 on every device so far)\n"
    "  --device D              device index or name substring\n"
    "several GPUs, several machines (data-parallel; docs/scaling.md):\n"
    "  mpirun -np N vkrun train ...   one process per GPU (vkrun built with MPI): each takes its share of\n"
    "                          every batch (--batch is the global batch), gradients are summed with MPI_Allreduce,\n"
    "                          rank 0 writes every file; rank r uses device (local rank mod devices), or entry\n"
    "                          (local rank mod count) of VKRUN_DEVICES=0,1,...; e.g. on two machines:\n"
    "                          mpirun -np 4 -H host1:2,host2:2 vkrun train --data DIR ...\n"
    "                          Ctrl-C ends an mpirun job without a checkpoint; kill -USR1 <mpirun's pid> stops it\n"
    "                          as Ctrl-C stops one process (mpirun forwards SIGUSR1; rank 0 writes OUT.checkpoint)\n"
    "  --devices 0,1           one process, one thread and context per listed device (an index may repeat),\n"
    "                          gradients summed on the host: the same results as mpirun -np 2\n"
    "  --bucket-mb MB          gradients are summed in buckets of MB MiB, each started as soon as the backward\n"
    "                          pass has produced it (default 25)\n"
    "  --sync-bn               with --bn-train: BatchNorm normalizes with the statistics of the global batch,\n"
    "                          reduced across the ranks (the results of one process at --batch; two host round\n"
    "                          trips per BatchNorm layer per step); without it each rank uses its own share's\n"
    "                          statistics.  Not with --micro-batch or --recompute on\n";

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig) {
    (void)sig;
    g_stop = 1;
}

/* ------------------------------------------------------------------ printing: vkr_fit's callbacks */

typedef struct {
    int tty, quiet;
    int bar;                 /* a progress line is on the terminal */
    char what[64];           /* its label, and the phase-relative time it was last drawn */
    double last;
    /* test hooks: a real SIGINT after N training steps / N batches of feature caching
     * (VKRUN_TEST_SIGINT_AFTER, VKRUN_TEST_SIGINT_CACHING) */
    long sigint_after, sigint_caching, steps, batches;
    /* test hook VKRUN_TEST_RANK_SIGNAL=RANK:STEPS:kill|stop: that rank of an MPI run sends itself SIGKILL
     * (dies) or SIGSTOP (hangs) after STEPS training steps (tests/mpi_train.py's fault checks) */
    long die_after;
    int die_signal;
    int show_lr;             /* a schedule or warmup: the epoch line shows the lr */
    FILE *lr_log;            /* test hook VKRUN_TEST_LR_LOG=FILE: "what step lr" of every training step */
} train_ui;

static void ui_clear(train_ui *u) {
    if (u->bar) printf("\r%*s\r", 110, "");
    u->bar = 0;
}

static void ui_progress(train_ui *u, const vkr_fit_step *s) {
    if (u->quiet || !u->tty) return;
    if (strcmp(u->what, s->what) || s->seconds < u->last) { /* a new epoch or caching pass */
        snprintf(u->what, sizeof u->what, "%s", s->what);
        u->last = 0;
    }
    if (s->step < s->steps && s->seconds - u->last < 0.2) return;
    u->last = s->seconds;
    double el = s->seconds, ips = el > 0 ? s->images / el : 0;
    double eta = s->step > 0 ? el / s->step * (s->steps - s->step) : 0;
    char bar[31];
    int fill = s->steps ? s->step * 30 / s->steps : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : '.');
    bar[30] = 0;
    if (s->caching) /* no loss yet: the images done and the speed */
        printf("\r%s [%s] %d/%d images  %.1f img/s  ETA %d:%02d   ", s->what, bar, s->step, s->steps, ips,
               (int)eta / 60, (int)eta % 60);
    else
        printf("\r%s [%s] %d/%d  loss %.4f  acc %.4f  %.1f img/s  ETA %d:%02d   ", s->what, bar, s->step, s->steps,
               s->loss, s->accuracy, ips, (int)eta / 60, (int)eta % 60);
    fflush(stdout);
    u->bar = 1;
}

static int on_step(void *user, const vkr_fit_step *s) {
    train_ui *u = user;
    ui_progress(u, s);
    if (u->lr_log && !s->caching) fprintf(u->lr_log, "%s\t%d\t%.17g\n", s->what, s->step, s->lr);
    if (s->caching ? u->sigint_caching && ++u->batches == u->sigint_caching
                   : u->sigint_after && ++u->steps == u->sigint_after)
        raise(SIGINT);
    if (!s->caching && u->die_after && --u->die_after == 0) raise(u->die_signal);
    return g_stop;
}

static int on_epoch(void *user, const vkr_fit_epoch_end *e) {
    train_ui *u = user;
    ui_clear(u);
    if (!u->quiet) {
        printf("%s: loss %.4f - accuracy %.4f", e->what, e->epoch->loss, e->epoch->accuracy);
        if (e->validated) printf(" - val_loss %.4f - val_accuracy %.4f", e->epoch->val_loss, e->epoch->val_accuracy);
        if (u->show_lr) printf(" - lr %.4g", e->epoch->lr);
        printf(" - %.1f s (%.1f img/s", e->epoch->seconds, e->epoch->images_per_s);
        if (!isnan(e->epoch->input_wait_seconds)) printf(", %.1f s waiting for images", e->epoch->input_wait_seconds);
        printf(")\n");
        fflush(stdout);
    }
    return g_stop;
}

static int on_stage(void *user, const vkr_fit_stage_begin *s) {
    (void)user;
    (void)s;
    return g_stop;
}

static void on_message(void *user, const char *line) {
    train_ui *u = user;
    ui_clear(u);
    if (!u->quiet) printf("%s\n", cli_esc_msg(line)); /* class and model names from files */
}

/* s as one shell word: as is when plain, else in single quotes ('\'' for a quote). */
static const char *shell_quote(const char *s, char *buf, size_t n) {
    if (*s && strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_./-+=:,@%") == strlen(s))
        return s;
    size_t o = 0;
    buf[o++] = '\'';
    for (; *s && o + 5 < n; s++) {
        if (*s == '\'') {
            memcpy(buf + o, "'\\''", 4);
            o += 4;
        } else buf[o++] = *s;
    }
    buf[o++] = '\'';
    buf[o] = 0;
    return buf;
}

/* " --plots DIR --cache DIR --tensorboard DIR" for those given (absolute, shell-quoted): a resumed
 * run trusts no write target of a checkpoint outside its folder, so the resume command names them. */
static void resume_flags(const vkr_fit_opts *o, char *buf, size_t n) {
    const char *flag[3] = {"--plots", "--cache", "--tensorboard"}, *dir[3] = {o->plots, o->cache_dir, o->tensorboard};
    size_t len = 0;
    buf[0] = 0;
    for (int i = 0; i < 3; i++) {
        char abs[4200], q[8600];
        if (!dir[i] || len >= n) continue;
        if (!realpath(dir[i], abs)) snprintf(abs, sizeof abs, "%s", dir[i]);
        len += (size_t)snprintf(buf + len, n - len, " %s %s", flag[i], shell_quote(abs, q, sizeof q));
    }
}

/* The exit status of a run, after its message: 0, 1 (error), 2 (invalid options), 130 (interrupted). */
static int report(train_ui *u, vkr_status s, const vkr_fit_result *res, const vkr_fit_opts *o) {
    ui_clear(u);
    if (s == VKR_OK) return 0;
    if (s == VKR_ERR_INTERRUPTED) {
        if (res->interrupted_caching) fprintf(stderr, "\nvkrun train: %s\n", cli_esc_msg(vkr_last_error()));
        else {
            char q[8600], more[27000];
            resume_flags(o, more, sizeof more);
            fprintf(stderr, "\nvkrun train: interrupted at %s step %d/%d; checkpoint %s%s\n", res->interrupted_at,
                    res->step, res->steps, res->checkpoint, res->checkpoint_status ? " could NOT be written" : " written");
            if (!res->checkpoint_status)
                fprintf(stderr, "vkrun train: continue with: vkrun train --resume %s%s\n",
                        shell_quote(res->checkpoint, q, sizeof q), more);
        }
        if (res->checkpoint_status) fprintf(stderr, "vkrun train: %s\n", cli_esc_msg(res->checkpoint_error));
        return 130;
    }
    if (*res->failed_at && strcmp(res->failed_at, "options")) return cli_error(res->failed_at, s);
    fprintf(stderr, s == VKR_ERR_VALIDATION ? "vkrun: %s\n" : "vkrun train: %s\n", cli_esc_msg(vkr_last_error()));
    return strcmp(res->failed_at, "options") ? 1 : 2;
}

/* ------------------------------------------------------------------ parsing */

static int parse_head(const char *s, int *units, int max) {
    int n = 0;
    if (!strcmp(s, "") || !strcmp(s, "none")) return 0;
    while (*s) {
        if (n == max) return -1;
        char *end;
        long v = strtol(s, &end, 10);
        if (end == s || v <= 0 || v > 1 << 20) return -1;
        units[n++] = (int)v;
        s = end;
        if (*s == ',') s++;
        else if (*s) return -1;
    }
    return n;
}

/* Strict numbers: the whole argument must parse. */
static int num_int(const char *opt, const char *v, int *out) {
    char *end;
    long x = strtol(v, &end, 10);
    if (end == v || *end || x < -1000000000L || x > 1000000000L) {
        fprintf(stderr, "vkrun train: %s wants an integer, got \"%s\"\n", opt, v);
        return 0;
    }
    *out = (int)x;
    return 1;
}

static int num_double(const char *opt, const char *v, double *out) {
    char *end;
    double x = strtod(v, &end);
    if (end == v || *end || x != x) {
        fprintf(stderr, "vkrun train: %s wants a number, got \"%s\"\n", opt, v);
        return 0;
    }
    *out = x;
    return 1;
}

typedef struct {
    vkr_fit_opts o;
    const char *devices;                      /* --devices LIST: ranks as threads */
    const char *interp, *augment, *optimizer; /* named values, checked after the outputs */
    const char *monitor, *schedule;
    int quiet;
    char resume_err[1024]; /* why --resume's checkpoint carries no options ("" when it does) */
} train_args;

/* Returns -1 when the arguments parse, else the exit status (after a message). */
static int parse_args(int argc, char **argv, train_args *t) {
    vkr_fit_opts *a = &t->o;
    for (int i = 1; i < argc; i++) {
        const char *o = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
#define ARG(name) (!strcmp(o, name) && v && (i++, 1))
        if (ARG("--model")) a->model = v;
        else if (ARG("--data")) a->data = v;
        else if (ARG("--val")) a->val = v;
        else if (ARG("--val-split")) { if (!num_double(o, v, &a->val_split)) return 2; }
        else if (ARG("--out")) a->out = v;
        else if (ARG("--plots")) a->plots = v;
        else if (ARG("--batch")) { if (!num_int(o, v, &a->batch)) return 2; }
        else if (ARG("--micro-batch")) { if (!num_int(o, v, &a->micro_batch)) return 2; }
        else if (ARG("--epochs")) { if (!num_int(o, v, &a->epochs)) return 2; }
        else if (ARG("--val-every")) { if (!num_int(o, v, &a->val_every)) return 2; }
        else if (ARG("--size")) {
            if (sscanf(v, "%dx%d", &a->height, &a->width) != 2 || a->height <= 0 || a->width <= 0) {
                fprintf(stderr, "vkrun train: --size wants HxW, e.g. 224x224\n");
                return 2;
            }
        } else if (ARG("--interpolation")) t->interp = v;
        else if (ARG("--augment")) t->augment = v;
        else if (ARG("--seed")) {
            int sd;
            if (!num_int(o, v, &sd)) return 2;
            if (sd < 0) {
                fprintf(stderr, "vkrun train: --seed wants a non-negative integer\n");
                return 2;
            }
            a->seed = (uint64_t)sd;
        }
        else if (ARG("--head")) {
            a->nhead = parse_head(v, a->head, VKR_FIT_MAX_HEAD);
            if (a->nhead < 0) {
                fprintf(stderr, "vkrun train: --head wants up to %d comma-separated positive units, e.g. 1024,512\n",
                        VKR_FIT_MAX_HEAD);
                return 2;
            }
        } else if (ARG("--freeze")) {
            if (!num_int(o, v, &a->freeze)) return 2;
            if (a->freeze < 0) {
                fprintf(stderr, "vkrun train: --freeze %d: a layer count must be >= 0\n", a->freeze);
                return 2;
            }
        }
        else if (ARG("--optimizer")) t->optimizer = v;
        else if (ARG("--lr")) { if (!num_double(o, v, &a->lr)) return 2; }
        else if (ARG("--momentum")) { if (!num_double(o, v, &a->momentum)) return 2; }
        else if (ARG("--fine-tune-epochs")) { if (!num_int(o, v, &a->ft_epochs)) return 2; }
        else if (ARG("--fine-tune-lr")) { if (!num_double(o, v, &a->ft_lr)) return 2; }
        else if (ARG("--fine-tune-from")) { if (!num_int(o, v, &a->ft_from)) return 2; }
        else if (ARG("--early-stopping")) {
            if (!num_int(o, v, &a->early_stopping)) return 2;
            if (a->early_stopping <= 0) {
                fprintf(stderr, "vkrun train: --early-stopping wants a patience of at least 1 epoch\n");
                return 2;
            }
        } else if (ARG("--monitor")) t->monitor = v;
        else if (ARG("--lr-schedule")) t->schedule = v;
        else if (ARG("--warmup-epochs")) { if (!num_int(o, v, &a->warmup_epochs)) return 2; }
        else if (ARG("--class-weight")) a->class_weight = v;
        else if (ARG("--label-smoothing")) { if (!num_double(o, v, &a->label_smoothing)) return 2; }
        else if (ARG("--weight-decay")) { if (!num_double(o, v, &a->weight_decay)) return 2; }
        else if (ARG("--dropout")) { if (!num_double(o, v, &a->dropout)) return 2; }
        else if (!strcmp(o, "--save-best")) a->save_best = 1;
        else if (ARG("--cache")) a->cache_dir = v;
        else if (ARG("--tensorboard")) a->tensorboard = v; /* issue 13, data/logs/CLI half */
        else if (ARG("--tensorboard-steps")) {
            if (!num_int(o, v, &a->tensorboard_steps)) return 2;
            if (a->tensorboard_steps < 0) {
                fprintf(stderr, "vkrun train: --tensorboard-steps wants a count >= 0\n");
                return 2;
            }
        }
        else if (ARG("--resume")) a->resume = v;
        else if (ARG("--device")) a->device = v;
        else if (ARG("--devices")) t->devices = v;
        else if (ARG("--bucket-mb")) {
            if (!num_double(o, v, &a->bucket_mb)) return 2;
            if (!(a->bucket_mb > 0 && a->bucket_mb <= 4096)) {
                fprintf(stderr, "vkrun train: --bucket-mb wants a size in MiB in (0, 4096]\n");
                return 2;
            }
        }
        else if (ARG("--precision")) {
            if (vkr_precision_parse(v, &a->precision)) {
                fprintf(stderr, "vkrun train: --precision: %s\n", cli_esc_msg(vkr_last_error()));
                return 2;
            }
        }
        else if (!strcmp(o, "--no-cache")) a->no_cache = 1;
        else if (!strcmp(o, "--bn-train")) a->bn_train = 1;
        else if (!strcmp(o, "--sync-bn")) a->sync_bn = 1;
        else if (!strcmp(o, "--recompute")) a->recompute = 1;
        else if (!strcmp(o, "--no-recompute")) a->recompute = -1;
        else if (!strcmp(o, "--keep-remainder")) a->keep_remainder = 1;
        else if (!strcmp(o, "--drop-remainder")) a->keep_remainder = 0;
        /* issue 13, data/logs/CLI half */
        else if (!strcmp(o, "--augment-fine-tune")) a->augment_fine_tune_only = 1;
        else if (!strcmp(o, "--split-folders-as-classes")) a->split_names_ok = 1;
        else if (!strcmp(o, "--strict")) a->strict = 1;
        else if (!strcmp(o, "--quiet")) t->quiet = 1;
        else {
            return cli_unknown_option("train", o, usage_train);
        }
#undef ARG
    }
    if (!a->model || !a->data || !a->out) {
        if (*t->resume_err) fprintf(stderr, "vkrun train: %s\n", t->resume_err);
        else if (a->resume && a->data && a->model && !a->out)
            fprintf(stderr, "vkrun train: %s is not named OUT.checkpoint, so where its model goes is not known: give "
                            "--out FILE\n", a->resume);
        else fprintf(stderr, "vkrun train: --model, --data and --out are required (see vkrun train --help)\n");
        return 2;
    }
    if (a->batch <= 0 || a->micro_batch < 0 || a->val_every <= 0 || a->freeze < -1 || a->epochs < 0 || a->ft_epochs < 0 || a->ft_from < 0 || !(a->lr > 0) || !(a->ft_lr > 0) || a->val_split < 0 ||
        a->val_split >= 1 || (a->val && a->val_split > 0)) {
        fprintf(stderr, "vkrun train: invalid option values (batch > 0, epochs >= 0, lr > 0, freeze >= 0, val-every > 0, "
                        "fine-tune-from >= 0, 0 <= val-split < 1, "
                        "not both --val and --val-split)\n");
        return 2;
    }
    return -1;
}

/* "PREFIX:K:F" with K an integer in [1, 10^9] and F a finite number (the whole text). */
static int sched_args(const char *v, const char *prefix, int *k, double *f) {
    size_t n = strlen(prefix);
    if (strncmp(v, prefix, n)) return 0;
    char *end;
    long x = strtol(v + n, &end, 10);
    if (end == v + n || *end != ':' || x < 1 || x > 1000000000L) return 0;
    const char *p = end + 1;
    *f = strtod(p, &end);
    *k = (int)x;
    return end != p && !*end && isfinite(*f);
}

/* --lr-schedule cosine | step:EPOCHS:FACTOR | plateau:PATIENCE:FACTOR; -1 when fine, else 2. */
static int parse_schedule(const char *v, vkr_fit_opts *a) {
    int k;
    double f;
    if (!strcmp(v, "cosine")) a->lr_schedule = VKR_SCHED_COSINE;
    else if (!strcmp(v, "constant") || !strcmp(v, "none")) a->lr_schedule = VKR_SCHED_CONSTANT;
    else if (sched_args(v, "step:", &k, &f) && f > 0) {
        a->lr_schedule = VKR_SCHED_STEP;
        a->sched_epochs = k;
        a->sched_factor = f;
    } else if (sched_args(v, "plateau:", &k, &f) && f > 0 && f < 1) {
        a->lr_schedule = VKR_SCHED_PLATEAU;
        a->sched_patience = k;
        a->sched_factor = f;
    } else {
        fprintf(stderr, "vkrun train: --lr-schedule is cosine, step:EPOCHS:FACTOR (EPOCHS an integer in [1, 10^9], FACTOR "
                        "> 0) or plateau:PATIENCE:FACTOR (PATIENCE in [1, 10^9], 0 < FACTOR < 1); got \"%s\"\n", v);
        return 2;
    }
    return -1;
}

/* D,D,...: 1 to 64 non-empty selectors (--devices, VKRUN_DEVICES). */
static int device_list_ok(const char *list) {
    int n = 1, empty = !*list || *list == ',' || list[strlen(list) - 1] == ',';
    for (const char *p = list; *p; p++) {
        n += *p == ',';
        empty |= p[0] == ',' && p[1] == ',';
    }
    return !empty && n <= 64 && strlen(list) <= 500;
}

/* The named values (interpolation, augmentation, optimizer); -1 when all are fine, else the exit
 * status.  vkr_fit checks the outputs before any work. */
static int check_args(train_args *t) {
    vkr_fit_opts *a = &t->o;
    vkr_status s = vkr_interp_parse(t->interp, &a->interp);
    if (s) return cli_error("train", s);
    if (t->augment && (s = vkr_augment_parse(t->augment, &a->augment))) {
        fprintf(stderr, "vkrun train: --augment %s: %s\n", t->augment, cli_esc_msg(vkr_last_error()));
        return 2;
    }
    if (strcmp(t->optimizer, "adam") && strcmp(t->optimizer, "sgd")) {
        fprintf(stderr, "vkrun train: --optimizer is adam or sgd\n");
        return 2;
    }
    a->optimizer = !strcmp(t->optimizer, "sgd") ? VKR_OPTIM_SGD : VKR_OPTIM_ADAM;
    if (t->monitor && strcmp(t->monitor, "val_loss") && strcmp(t->monitor, "val_accuracy")) {
        fprintf(stderr, "vkrun train: --monitor is val_loss or val_accuracy (got \"%s\")\n", t->monitor);
        return 2;
    }
    a->monitor = t->monitor && !strcmp(t->monitor, "val_accuracy") ? VKR_MONITOR_VAL_ACCURACY : VKR_MONITOR_VAL_LOSS;
    if (t->devices && (!device_list_ok(t->devices) || (t->o.device && *t->o.device))) {
        fprintf(stderr, "vkrun train: --devices wants 1 to 64 comma-separated devices (indices or name substrings, "
                        "e.g. 0,1), and no --device with it; got \"%s\"\n", t->devices);
        return 2;
    }
    const char *env = getenv("VKRUN_DEVICES"); /* the devices of mpirun's ranks: checked in every run */
    if (env && *env && !device_list_ok(env)) {
        fprintf(stderr, "vkrun train: VKRUN_DEVICES wants 1 to 64 comma-separated devices (indices or name substrings, "
                        "e.g. 0,1); got \"%s\"\n", env);
        return 2;
    }

    return t->schedule ? parse_schedule(t->schedule, a) : -1;
}

/* --resume CHECKPOINT: the checkpoint's options are the defaults (it records its command), and the
 * flags given with it must agree with them.  -1 to go on, else the exit status.  *ck_strings
 * holds the checkpoint's strings (free it after the run). */
static int resume_options(int argc, char **argv, train_args *t, vkr_fit_opts *ck, int *have_ck, char **ck_strings) {
    const char *path = NULL;
    for (int i = 1; i + 1 < argc; i++)
        if (!strcmp(argv[i], "--resume")) path = argv[i + 1];
    *have_ck = 0;
    if (!path) return -1;
    vkr_status s = vkr_fit_checkpoint_options(path, ck, ck_strings);
    if (s == VKR_ERR_FORMAT) { /* an older checkpoint: the flags must say everything, as before */
        snprintf(t->resume_err, sizeof t->resume_err, "%s", vkr_last_error());
        return -1;
    }
    if (s) return cli_error("resume", s);
    t->o = *ck;
    t->interp = vkr_interp_name(ck->interp);
    t->optimizer = ck->optimizer == VKR_OPTIM_SGD ? "sgd" : "adam";
    *have_ck = 1;
    return -1;
}

/* ------------------------------------------------------------------ data-parallel */

/* Processes of this launch and this one's rank on its machine, from the launcher's environment
 * (Open MPI's mpirun, MPICH's Hydra); 1 when not launched by one. */
static int launched_ranks(int *local_rank) {
    const char *v = getenv("OMPI_COMM_WORLD_SIZE"), *l = getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (!v) v = getenv("PMI_SIZE");
    if (!l) l = getenv("MPI_LOCALRANKID");
    *local_rank = l ? atoi(l) : 0;
    int n = v ? atoi(v) : 1;
    return n > 1 ? n : 1;
}

/* The device of local rank lr: entry lr mod count of VKRUN_DEVICES (comma-separated selectors),
 * else --device for every rank, else device lr mod (the devices of this machine). */
static const char *rank_device(const char *given, int lr, char *buf, size_t n) {
    const char *list = getenv("VKRUN_DEVICES");
    if (list && *list) {
        int cnt = 1;
        for (const char *p = list; *p; p++) cnt += *p == ',';
        int want = lr % cnt;
        const char *p = list;
        for (int k = 0; k < want; k++) p = strchr(p, ',') + 1;
        size_t len = strcspn(p, ",");
        snprintf(buf, n, "%.*s", (int)len, p);
        return buf;
    }
    if (given) return given;
    vkr_device_info *infos = NULL;
    int cnt = 0;
    if (vkr_enumerate_devices(&infos, &cnt) || cnt < 1) return NULL; /* vkr_fit says what is wrong */
    free(infos);
    snprintf(buf, n, "%d", lr % cnt);
    return buf;
}

typedef struct {
    vkr_fit_opts o;
    vkr_fit_callbacks cb;
    vkr_fit_result *res;
    vkr_status s;
    char err[1024];
} rank_job;

static void *rank_thread(void *arg) {
    rank_job *j = arg;
    j->s = vkr_fit(&j->o, &j->cb, j->res);
    snprintf(j->err, sizeof j->err, "%s", j->s ? vkr_last_error() : "");
    return NULL;
}

/* --devices LIST: one thread per listed device, rank 0 (the first) in this one with the UI. */
static vkr_status run_devices(const train_args *t, const vkr_fit_callbacks *cb, vkr_fit_result *res, char *err,
                              size_t errn) {
    char list[512];
    snprintf(list, sizeof list, "%s", t->devices);
    int n = 1;
    for (const char *p = list; *p; p++) n += *p == ',';
    rank_job *jobs = calloc((size_t)n, sizeof *jobs);
    vkr_comm **comms = calloc((size_t)n, sizeof *comms);
    pthread_t *th = calloc((size_t)n, sizeof *th);
    vkr_status s = jobs && comms && th ? vkr_comm_local_create(n, comms) : vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    const char *tmo = getenv("VKRUN_COMM_TIMEOUT"); /* seconds a rank waits for the others (default 300) */
    for (int r = 0; !s && tmo && atof(tmo) > 0 && r < n; r++) vkr_comm_set_timeout(comms[r], atof(tmo));
    char *save = NULL, *tok = strtok_r(list, ",", &save);
    for (int r = 0; r < n && !s; r++, tok = strtok_r(NULL, ",", &save)) {
        jobs[r].o = t->o;
        jobs[r].o.device = tok;
        jobs[r].o.comm = comms[r];
        jobs[r].cb = r == 0 ? *cb : (vkr_fit_callbacks){0};
        jobs[r].res = r == 0 ? res : malloc(sizeof *res);
        if (!jobs[r].res || !tok) s = vkr_fail(VKR_ERR_INVALID, "--devices wants a comma-separated list of devices");
    }
    int started = 1;
    for (; !s && started < n; started++)
        if (pthread_create(&th[started], NULL, rank_thread, &jobs[started])) {
            vkr_comm_abort(comms[0], "could not start a thread");
            break;
        }
    if (!s) {
        rank_thread(&jobs[0]);
        for (int r = 1; r < started; r++) pthread_join(th[r], NULL);
        s = jobs[0].s;
        snprintf(err, errn, "%s", jobs[0].err);
        for (int r = 1; r < n && !s; r++) /* rank 0 finished, another failed (after rank 0's last collective) */
            if (jobs[r].s) {
                s = jobs[r].s;
                snprintf(err, errn, "rank %d (device %s): %s", r, jobs[r].o.device, jobs[r].err);
            }
    } else snprintf(err, errn, "%s", vkr_last_error());
    for (int r = 0; jobs && comms && r < n; r++) {
        if (r) free(jobs[r].res);
        vkr_comm_free(comms[r]);
    }
    free(jobs);
    free(comms);
    free(th);
    return s;
}

int cmd_train(int argc, char **argv) {
    train_args t = {.interp = "bilinear", .optimizer = "adam"};
    vkr_fit_defaults(&t.o);
    vkr_fit_opts ck;
    char *ck_strings = NULL;
    int have_ck = 0;
    int rc = resume_options(argc, argv, &t, &ck, &have_ck, &ck_strings);
    if (rc < 0) rc = parse_args(argc, argv, &t);
    if (rc < 0) rc = check_args(&t);
    if (rc < 0 && have_ck && vkr_fit_options_match(&t.o, &ck)) {
        fprintf(stderr, "vkrun train: %s\n", cli_esc_msg(vkr_last_error()));
        rc = 2;
    }
    int local_rank, nproc = launched_ranks(&local_rank);
    if (rc < 0 && nproc > 1 && !vkr_comm_mpi_available()) { /* N processes would train N identical copies */
        fprintf(stderr, "vkrun train: started by mpirun as one of %d processes, but this vkrun was built without MPI, so "
                        "each process would train its own identical copy. Rebuild with MPI (apt-get install openmpi-bin "
                        "libopenmpi-dev; cmake -DVKRUN_MPI=ON), or run one vkrun without mpirun (--devices 0,1 uses "
                        "several GPUs in one process)\n", nproc);
        rc = 2;
    }
    if (rc < 0 && nproc > 1 && t.devices) {
        fprintf(stderr, "vkrun train: --devices runs several devices in one process; under mpirun each process uses "
                        "one (VKRUN_DEVICES=0,1,... picks them by local rank)\n");
        rc = 2;
    }
    if (rc >= 0) {
        free(ck_strings);
        return rc;
    }
    vkr_comm *comm = NULL;
    char devbuf[256];
    if (nproc > 1) {
        vkr_status s = vkr_comm_mpi_init(&argc, &argv, &comm);
        if (s) {
            free(ck_strings);
            return cli_error("MPI", s);
        }
        t.o.comm = comm;
        t.o.device = rank_device(t.o.device, local_rank, devbuf, sizeof devbuf);
    }
    int rank = vkr_comm_rank(comm);
    /* the progress bar only on a terminal of the user's: under mpirun rank 0's stdout is the launcher's
     * pseudo-terminal even when mpirun's own output goes to a pipe or a file (carriage returns there) */
    int under_launcher = getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE");
    train_ui u = {.tty = isatty(STDOUT_FILENO) && rank == 0 && !under_launcher, .quiet = t.quiet || rank != 0};
    const char *e = getenv("VKRUN_TEST_SIGINT_AFTER");
    u.sigint_after = e && *e ? atol(e) : 0;
    e = getenv("VKRUN_TEST_SIGINT_CACHING");
    u.sigint_caching = e && *e ? atol(e) : 0;
    e = getenv("VKRUN_TEST_RANK_SIGNAL");
    int die_rank;
    long die_steps;
    char die_sig[8];
    if (comm && e && sscanf(e, "%d:%ld:%7s", &die_rank, &die_steps, die_sig) == 3 && die_rank == rank && die_steps > 0) {
        u.die_after = die_steps;
        u.die_signal = !strcmp(die_sig, "stop") ? SIGSTOP : SIGKILL;
    }
    e = getenv("VKRUN_COMM_TIMEOUT"); /* seconds a rank waits for the others (default 300) */
    if (comm && e && atof(e) > 0) vkr_comm_set_timeout(comm, atof(e));
    u.show_lr = t.o.lr_schedule != VKR_SCHED_CONSTANT || t.o.warmup_epochs > 0;
    e = getenv("VKRUN_TEST_LR_LOG");
    if (e && *e && !(u.lr_log = fopen(e, "w"))) {
        fprintf(stderr, "vkrun train: cannot write VKRUN_TEST_LR_LOG=%s\n", e);
        return 1;
    }
    vkr_fit_callbacks cb = {&u, on_step, on_epoch, on_stage, on_message};
    vkr_fit_result *res = malloc(sizeof *res);
    if (!res) return cli_error("train", vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory"));
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sa.sa_flags = SA_RESTART;
    sigaction(SIGINT, &sa, NULL);
    if (comm) sigaction(SIGUSR1, &sa, NULL); /* mpirun forwards SIGUSR1 to every rank (Ctrl-C ends the job) */
    char err[1400];
    vkr_status s = t.devices ? run_devices(&t, &cb, res, err, sizeof err) : vkr_fit(&t.o, &cb, res);
    signal(SIGINT, SIG_DFL);
    if (comm) signal(SIGUSR1, SIG_DFL);
    if (t.devices && s && s != VKR_ERR_INTERRUPTED) vkr_fail(s, "%s", err);
    if (rank != 0 && s == VKR_ERR_INTERRUPTED) rc = 130; /* rank 0 says where the checkpoint is */
    else if (rank != 0 && s) { /* the failing rank names itself */
        fprintf(stderr, "vkrun train: rank %d of %d (%s, device %s): %s\n", rank, vkr_comm_size(comm),
                vkr_comm_host(comm), t.o.device ? t.o.device : "default", cli_esc_msg(vkr_last_error()));
        rc = 1;
    } else {
        rc = report(&u, s, res, &t.o);
    }
    if (u.lr_log) fclose(u.lr_log);
    free(res);
    free(ck_strings);
    /* MPI: finalize after a run every rank finished; after a failure exit without it: mpirun then
     * ends the other ranks (which may be waiting for this one in a collective) */
    if (comm && (rc == 0 || rc == 130)) vkr_comm_free(comm);
    return rc;
}
