/* The training driver behind `vkrun train`.
 *
 * Stage 1 trains the head on a frozen base.  When every base layer is frozen
 * and augmentation is off, each image's pooled base features are computed once
 * (one base pass) and every epoch trains a head-only graph on them; the batches
 * are exactly those of the uncached path (same permutation, same features), so
 * both give the same losses.  Stage 2 (fine-tuning) unfreezes the base.
 * Ctrl-C finishes the current step and writes OUT.checkpoint (model with
 * optimizer state and position) plus the history so far; --resume continues. */
#include "train.h"
#include "cli.h"
#include "vkrun_data.h"
#include "vkrun_model.h"
#include "vkrun_npy.h"
#include "vkrun_plot.h"

#include <cJSON.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

void train_args_defaults(train_args *a) {
    memset(a, 0, sizeof *a);
    a->batch = 32;
    a->epochs = 5;
    a->lr = 1e-3;
    a->momentum = 0.9;
    a->ft_lr = 1e-5;
    a->seed = 1;
    a->optimizer = "adam";
    a->interp = "bilinear";
    a->freeze = -1;
    a->val_every = 1;
    int def[] = {1024, 1024, 1024, 512};
    a->nhead = 4;
    memcpy(a->head, def, sizeof def);
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* ------------------------------------------------------------------ history */

typedef struct {
    int stage; /* 0 all layers (from scratch), 1 head on a frozen base, 2 fine-tune */
    double loss, acc, val_loss, val_acc, seconds, images_per_s;
} epoch_rec;

#define MAX_EPOCHS 1024
typedef struct {
    epoch_rec e[MAX_EPOCHS];
    int n;
    double cache_seconds;
} history;

static const char *stage_name(int stage) { return stage == 2 ? "fine-tune" : stage == 1 ? "head" : "train"; }

static cJSON *history_json(const history *h) {
    cJSON *root = cJSON_CreateObject();
    cJSON *arr = cJSON_AddArrayToObject(root, "epochs");
    for (int i = 0; i < h->n; i++) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddNumberToObject(o, "epoch", i + 1);
        cJSON_AddStringToObject(o, "stage", stage_name(h->e[i].stage));
        cJSON_AddNumberToObject(o, "loss", h->e[i].loss);
        cJSON_AddNumberToObject(o, "accuracy", h->e[i].acc);
        if (!isnan(h->e[i].val_loss)) {
            cJSON_AddNumberToObject(o, "val_loss", h->e[i].val_loss);
            cJSON_AddNumberToObject(o, "val_accuracy", h->e[i].val_acc);
        }
        cJSON_AddNumberToObject(o, "seconds", h->e[i].seconds);
        cJSON_AddNumberToObject(o, "images_per_s", h->e[i].images_per_s);
        cJSON_AddItemToArray(arr, o);
    }
    cJSON_AddNumberToObject(root, "feature_cache_seconds", h->cache_seconds);
    return root;
}

static int history_from_json(history *h, const cJSON *root) {
    const cJSON *arr = cJSON_GetObjectItem(root, "epochs"), *o;
    h->n = 0;
    h->cache_seconds = cJSON_GetNumberValue(cJSON_GetObjectItem(root, "feature_cache_seconds"));
    if (isnan(h->cache_seconds)) h->cache_seconds = 0;
    cJSON_ArrayForEach(o, arr) {
        if (h->n >= MAX_EPOCHS) return -1;
        epoch_rec *e = &h->e[h->n++];
        const char *st = cJSON_GetStringValue(cJSON_GetObjectItem(o, "stage"));
        e->stage = st && !strcmp(st, "fine-tune") ? 2 : st && !strcmp(st, "head") ? 1 : 0;
        e->loss = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "loss"));
        e->acc = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "accuracy"));
        e->val_loss = cJSON_GetObjectItem(o, "val_loss") ? cJSON_GetNumberValue(cJSON_GetObjectItem(o, "val_loss")) : NAN;
        e->val_acc = cJSON_GetObjectItem(o, "val_accuracy") ? cJSON_GetNumberValue(cJSON_GetObjectItem(o, "val_accuracy")) : NAN;
        e->seconds = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "seconds"));
        e->images_per_s = cJSON_GetNumberValue(cJSON_GetObjectItem(o, "images_per_s"));
    }
    return 0;
}

/* Writes text to path atomically (vkr_file_write_atomic); -1 after a message on failure. */
static int write_atomic(const char *path, const char *text) {
    if (vkr_file_write_atomic(path, text, strlen(text)) == VKR_OK) return 0;
    fprintf(stderr, "vkrun train: cannot write %s: %s\n", path, vkr_last_error());
    return -1;
}

static int write_history(const history *h, const char *dir) {
    char path[4096];
    cJSON *root = history_json(h);
    char *txt = cJSON_Print(root);
    cJSON_Delete(root);
    snprintf(path, sizeof path, "%s/history.json", dir);
    if (!txt) fprintf(stderr, "vkrun train: out of memory writing %s\n", path);
    int rc = txt ? write_atomic(path, txt) : -1;
    free(txt);
    size_t cap = 128 + (size_t)h->n * 160;
    char *csv = malloc(cap);
    if (!csv) return -1;
    size_t len = (size_t)snprintf(csv, cap, "epoch,stage,loss,accuracy,val_loss,val_accuracy,seconds\n");
    for (int i = 0; i < h->n; i++)
        len += (size_t)snprintf(csv + len, cap - len, "%d,%s,%.6f,%.6f,%.6f,%.6f,%.3f\n", i + 1,
                                stage_name(h->e[i].stage), h->e[i].loss, h->e[i].acc, h->e[i].val_loss,
                                h->e[i].val_acc, h->e[i].seconds);
    snprintf(path, sizeof path, "%s/history.csv", dir);
    rc |= write_atomic(path, csv);
    free(csv);
    if (h->n == 0) return rc;
    static double y[4][MAX_EPOCHS];
    for (int i = 0; i < h->n; i++) {
        y[0][i] = h->e[i].acc;
        y[1][i] = h->e[i].val_acc;
        y[2][i] = h->e[i].loss;
        y[3][i] = h->e[i].val_loss;
    }
    int has_val = !isnan(h->e[h->n - 1].val_acc);
    vkr_plot_series acc[2] = {{"train", NULL, y[0], h->n, 0}, {"val", NULL, y[1], h->n, 0}};
    vkr_plot_series loss[2] = {{"train", NULL, y[2], h->n, 0}, {"val", NULL, y[3], h->n, 0}};
    snprintf(path, sizeof path, "%s/accuracy.png", dir);
    vkr_status s = vkr_plot_lines(path, "Model accuracy", "epoch", "accuracy", acc, has_val ? 2 : 1);
    if (!s) {
        snprintf(path, sizeof path, "%s/loss.png", dir);
        s = vkr_plot_lines(path, "Model loss", "epoch", "loss", loss, has_val ? 2 : 1);
    }
    if (s) {
        fprintf(stderr, "vkrun train: plot: %s\n", vkr_last_error());
        rc = -1;
    }
    return rc;
}

/* ------------------------------------------------------------------ progress */

typedef struct {
    int tty, quiet;
    double t0, last;
} progress;

static void progress_step(progress *p, const char *what, int step, int steps, double loss, double acc, int images) {
    if (p->quiet || !p->tty) return;
    double t = now_s();
    if (step < steps && t - p->last < 0.2) return;
    p->last = t;
    double el = t - p->t0, ips = el > 0 ? images / el : 0;
    double eta = step > 0 ? el / step * (steps - step) : 0;
    char bar[31];
    int fill = steps ? step * 30 / steps : 30;
    for (int i = 0; i < 30; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : '.');
    bar[30] = 0;
    printf("\r%s [%s] %d/%d  loss %.4f  acc %.4f  %.1f img/s  ETA %d:%02d   ", what, bar, step, steps, loss, acc, ips,
           (int)eta / 60, (int)eta % 60);
    fflush(stdout);
}

static void progress_end(progress *p) {
    if (!p->quiet && p->tty) printf("\r%*s\r", 110, "");
}

/* ------------------------------------------------------------------ the run */

typedef struct {
    const train_args *a;
    vkr_context *ctx;
    vkr_dataset *train, *val;
    vkr_model *model;          /* base + head */
    int base_layers;           /* layers [0, base_layers) are the base (incl. input) */
    int gap_layer;
    int H, W, C;
    vkr_interp interp;
    vkr_preprocess pre;
    unsigned aug;
    history hist;
    char plots[4096];
    char ckpt[4096];
    progress prog;
    /* position for checkpoints */
    int stage, epoch, step;
    int stage1_frozen; /* stage 1 trains only the head (base frozen) */
    int freeze;
    double loss_sum, correct_sum;
    long seen;
} run;

static int fail(const char *what, vkr_status s) {
    return cli_error(what, s);
}

static vkr_status build_model(run *r) {
    const train_args *a = r->a;
    vkr_model *m = r->model;
    /* the base's last feature map: the last layer with a rank-4 output */
    int last = -1;
    for (int i = 0; i < m->nlayers; i++)
        if (m->layers[i].out_rank == 4) last = i;
    if (last < 1) return vkr_fail(VKR_ERR_INVALID, "%s: no feature-map layer to put a head on", a->model);
    vkr_status s;
    if (last != m->nlayers - 1 && (s = vkr_model_truncate_after(m, m->layers[last].name))) return s;
    r->base_layers = m->nlayers;
    if ((s = vkr_model_append_gap(m, "global_average_pooling2d"))) return s;
    r->gap_layer = m->nlayers - 1;
    char name[64];
    int k = 0;
    for (int i = 0; i < a->nhead; i++, k++) {
        if (k == 0) snprintf(name, sizeof name, "dense");
        else snprintf(name, sizeof name, "dense_%d", k);
        if ((s = vkr_model_append_dense(m, name, a->head[i], VKR_ACT_RELU, a->seed * 1000003u + (uint64_t)k))) return s;
    }
    if (k == 0) snprintf(name, sizeof name, "dense");
    else snprintf(name, sizeof name, "dense_%d", k);
    int nc = vkr_dataset_num_classes(r->train);
    if ((s = vkr_model_append_dense(m, name, nc, VKR_ACT_SOFTMAX, a->seed * 1000003u + (uint64_t)k))) return s;
    const char **names = malloc(sizeof *names * (size_t)nc);
    if (!names) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int c = 0; c < nc; c++) names[c] = vkr_dataset_class_name(r->train, c);
    s = vkr_model_set_classes(m, nc, names);
    free(names);
    return s;
}

static void opts_for(const run *r, vkr_graph_opts *o, int training, int freeze, double lr) {
    memset(o, 0, sizeof *o);
    o->batch = r->a->batch;
    o->micro_batch = r->a->micro_batch;
    o->recompute = r->a->recompute;
    o->height = r->H;
    o->width = r->W;
    o->training = training;
    o->freeze = freeze;
    o->bn_train = r->a->bn_train;
    o->optimizer = !strcmp(r->a->optimizer, "sgd") ? VKR_OPTIM_SGD : VKR_OPTIM_ADAM;
    o->optim.lr = (float)lr;
    o->optim.momentum = (float)r->a->momentum;
    o->optim.beta1 = 0.9f;
    o->optim.beta2 = 0.999f;
    o->optim.eps = 1e-7f;
    o->loss = VKR_LOSS_SOFTMAX_CE;
}

/* One image batch source: cached features or the loader. */
typedef struct {
    vkr_loader *ld;       /* uncached */
    const float *feat;    /* cached: [n][C] in dataset order */
    const float *labels;  /* cached: one-hot [n][K] */
    int *perm, n, pos, steps, step, batch, dim, K;
} batch_src;

static vkr_status src_next(batch_src *b, float *x, float *t, int *n) {
    if (b->ld) return vkr_loader_next(b->ld, x, t, n);
    if (b->step >= b->steps) {
        *n = 0;
        return VKR_OK;
    }
    int cnt = b->n - b->pos < b->batch ? b->n - b->pos : b->batch;
    for (int j = 0; j < cnt; j++) {
        int i = b->perm ? b->perm[b->pos + j] : b->pos + j;
        memcpy(x + (size_t)j * b->dim, b->feat + (size_t)i * b->dim, sizeof(float) * b->dim);
        memcpy(t + (size_t)j * b->K, b->labels + (size_t)i * b->K, sizeof(float) * b->K);
    }
    b->pos += cnt;
    b->step++;
    *n = cnt;
    return VKR_OK;
}

static vkr_status open_loader(const run *r, const vkr_dataset *ds, int epoch, int shuffle, int keep_rem, vkr_loader **ld) {
    vkr_loader_opts o;
    memset(&o, 0, sizeof o);
    o.batch = r->a->batch;
    o.height = r->H;
    o.width = r->W;
    o.channels = r->C;
    o.interp = r->interp;
    o.preprocess = r->pre;
    o.epoch = epoch;
    o.epochs = 1;
    o.seed = r->a->seed;
    o.flags = (shuffle ? VKR_LOAD_SHUFFLE | r->aug : 0) | (keep_rem ? VKR_LOAD_KEEP_REMAINDER : 0);
    o.strict = r->a->strict;
    o.quiet = 0;
    return vkr_loader_create_ex(ds, &o, ld);
}

static void test_interrupt_caching_hook(void);

/* Pooled base features of every image of ds, in dataset order. */
static vkr_status extract_features(run *r, vkr_graph *g, const vkr_dataset *ds, const char *what, float **feat,
                                   float **labels) {
    int n = vkr_dataset_size(ds), K = vkr_dataset_num_classes(ds);
    int dim = r->model->layers[r->gap_layer].out_c;
    *feat = malloc(sizeof(float) * (size_t)n * dim);
    *labels = calloc((size_t)n * K, sizeof(float));
    float *x = malloc(sizeof(float) * (size_t)r->a->batch * r->C * r->H * r->W);
    float *t = malloc(sizeof(float) * (size_t)r->a->batch * K);
    if (!*feat || !*labels || !x || !t) {
        free(x);
        free(t);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory for %d cached features", n);
    }
    vkr_loader *ld = NULL;
    vkr_status s = open_loader(r, ds, 0, 0, 1, &ld);
    int done = 0, cnt;
    progress p = r->prog;
    p.t0 = p.last = now_s();
    while (!s && !(s = vkr_loader_next(ld, x, t, &cnt)) && cnt > 0) {
        if (r->a->stop_flag && *r->a->stop_flag) break; /* Ctrl-C: the cache is a pure function of the images */
        const int *idx = vkr_loader_batch_indices(ld);
        float *out = malloc(sizeof(float) * (size_t)cnt * dim);
        if (!out) {
            s = vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            break;
        }
        s = vkr_graph_forward(g, x, cnt, r->model->layers[r->gap_layer].name, out);
        for (int j = 0; !s && j < cnt; j++) {
            memcpy(*feat + (size_t)idx[j] * dim, out + (size_t)j * dim, sizeof(float) * dim);
            memcpy(*labels + (size_t)idx[j] * K, t + (size_t)j * K, sizeof(float) * K);
        }
        free(out);
        done += cnt;
        test_interrupt_caching_hook();
        char label[96];
        snprintf(label, sizeof label, "features %s", what);
        progress_step(&p, label, done, n, NAN, NAN, done);
    }
    progress_end(&p);
    if (!s && done != n && !(r->a->stop_flag && *r->a->stop_flag))
        s = vkr_fail(VKR_ERR_FORMAT, "%d of %d images of %s could not be decoded while caching", n - done, n,
                     vkr_dataset_root(ds));
    vkr_loader_destroy(ld);
    free(x);
    free(t);
    return s;
}

/* Loss/accuracy over a whole set (inference mode). */
static vkr_status evaluate_set(run *r, vkr_graph *g, batch_src *b, double *loss, double *acc) {
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
    int n;
    vkr_status s;
    while (!(s = src_next(b, x, t, &n)) && n > 0) {
        float l;
        int c;
        if ((s = vkr_graph_eval_batch(g, x, t, n, &l, &c))) break;
        ls += (double)l * n;
        correct += c;
        seen += n;
    }
    free(x);
    free(t);
    *loss = seen ? ls / seen : NAN;
    *acc = seen ? (double)correct / seen : NAN;
    return s;
}

typedef vkr_status (*extract_fn)(run *r, vkr_graph *g, const vkr_dataset *ds, const char *what, float **feat,
                                  float **labels);

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* Features from memory (computed now) or from DIR, keyed by everything they depend on:
 * the base's tensors, the input size, resize and preprocessing, and each file's path,
 * size and modification time. */
static vkr_status cached_features(run *r, vkr_graph *g, const char *dir, const vkr_dataset *ds, const char *what,
                                  float **feat, float **labels, extract_fn extract) {
    if (!dir) return extract(r, g, ds, what, feat, labels);
    const vkr_model *m = r->model;
    uint64_t h = 0xcbf29ce484222325ull;
    for (int i = 0; i < m->ntensors; i++) {
        int owner = -1;
        for (int l = 0; l < r->base_layers && owner < 0; l++)
            for (int k = 0; k < m->layers[l].nparam; k++)
                if (m->layers[l].param[k] == i) owner = l;
        if (owner < 0) continue;
        h = fnv(h, m->tensors[i].name, strlen(m->tensors[i].name));
        h = fnv(h, m->tensors[i].data, sizeof(float) * m->tensors[i].count);
    }
    int key[5] = {r->H, r->W, r->C, (int)r->interp, (int)r->pre};
    h = fnv(h, key, sizeof key);
    int n = vkr_dataset_size(ds), K = vkr_dataset_num_classes(ds);
    for (int i = 0; i < n; i++) {
        struct stat st;
        const char *p = vkr_dataset_path(ds, i);
        h = fnv(h, p, strlen(p) + 1);
        if (stat(p, &st) == 0) {
            int64_t meta[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
            h = fnv(h, meta, sizeof meta);
        }
    }
    char path[4400];
    snprintf(path, sizeof path, "%s/features-%s-%016llx.npy", dir, what, (unsigned long long)h);
    int dim = m->layers[r->gap_layer].out_c;
    vkr_npy arr;
    if (vkr_npy_read(path, &arr) == VKR_OK) {
        if (arr.ndim == 2 && arr.shape[0] == n && arr.shape[1] == dim) {
            *feat = arr.data;
            *labels = calloc((size_t)n * K, sizeof(float));
            if (!*labels) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            for (int i = 0; i < n; i++) (*labels)[(size_t)i * K + vkr_dataset_label(ds, i)] = 1.0f;
            if (!r->a->quiet) printf("features %s: read from %s\n", what, path);
            return VKR_OK;
        }
        vkr_npy_free(&arr);
    }
    vkr_status s = extract(r, g, ds, what, feat, labels);
    if (s) return s;
    if (r->a->stop_flag && *r->a->stop_flag) return VKR_OK; /* interrupted: never cache a partial result */
    struct stat st;
    if (stat(dir, &st) != 0 && mkdir(dir, 0755) != 0)
        return vkr_fail(VKR_ERR_IO, "cannot create the feature cache folder %s: %s", dir, strerror(errno));
    int64_t shape[2] = {n, dim};
    return vkr_npy_write(path, *feat, 2, shape);
}

/* Tests of Ctrl-C: VKRUN_TEST_SIGINT_AFTER=N raises a real SIGINT after N training steps,
 * VKRUN_TEST_SIGINT_CACHING=N after N batches of feature caching. */
static void test_interrupt_hook(void) {
    static long steps;
    const char *e = getenv("VKRUN_TEST_SIGINT_AFTER");
    if (e && *e && ++steps == atol(e)) raise(SIGINT);
}

static void test_interrupt_caching_hook(void) {
    static long batches;
    const char *e = getenv("VKRUN_TEST_SIGINT_CACHING");
    if (e && *e && ++batches == atol(e)) raise(SIGINT);
}

static vkr_status save_checkpoint(run *r, vkr_graph *g, vkr_model *trained_from);

/* The graph's memory plan, one line. */
static void print_plan(const run *r, const vkr_graph *g, const char *what) {
    if (r->a->quiet) return;
    char line[1024];
    vkr_graph_plan_line(g, line, sizeof line);
    printf("%s %s\n", what, line);
}

/* Trains `epochs` epochs of one stage on graph g (head-only when feat != NULL). */
static int train_stage(run *r, vkr_graph *g, int stage, int first_epoch, int epochs, const float *feat,
                       const float *labels, const float *vfeat, const float *vlabels, vkr_model *gm) {
    const train_args *a = r->a;
    int K = vkr_dataset_num_classes(r->train), ntrain = vkr_dataset_size(r->train);
    int dim = feat ? r->model->layers[r->gap_layer].out_c : r->C * r->H * r->W;
    float *x = malloc(sizeof(float) * (size_t)a->batch * dim), *t = malloc(sizeof(float) * (size_t)a->batch * K);
    int *perm = malloc(sizeof(int) * (size_t)ntrain);
    if (!x || !t || !perm) {
        free(x);
        free(t);
        free(perm);
        return fail("train", vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory"));
    }
    int rc = 0;
    int total_epochs = first_epoch + epochs;
    for (int e = first_epoch; e < total_epochs && !rc; e++) {
        r->stage = stage;
        r->epoch = e;
        batch_src b = {0};
        vkr_status s = VKR_OK;
        int steps = vkr_steps_per_epoch(ntrain, a->batch, a->keep_remainder);
        if (steps == 0) {
            rc = fail("train", vkr_fail(VKR_ERR_INVALID, "%d training images make no batch of %d (use a smaller --batch or "
                                                         "--keep-remainder)", ntrain, a->batch));
            break;
        }
        if (r->hist.n >= MAX_EPOCHS) {
            rc = fail("train", vkr_fail(VKR_ERR_INVALID, "more than %d epochs in the history", MAX_EPOCHS));
            break;
        }
        int global_epoch = r->hist.n; /* epochs finished before this one */
        if (feat) {
            vkr_epoch_permutation(ntrain, a->seed, global_epoch, perm);
            b = (batch_src){.feat = feat, .labels = labels, .perm = perm, .n = ntrain, .steps = steps, .batch = a->batch,
                            .dim = dim, .K = K};
        } else {
            s = open_loader(r, r->train, global_epoch, 1, a->keep_remainder, &b.ld);
            if (s) {
                rc = fail("train", s);
                break;
            }
        }
        /* a resumed epoch skips the steps it already took */
        int skip = r->step;
        if (skip == 0) {
            r->loss_sum = r->correct_sum = 0;
            r->seen = 0;
        }
        double t0 = now_s();
        r->prog.t0 = r->prog.last = t0;
        char what[64];
        snprintf(what, sizeof what, "%sepoch %d/%d", stage == 2 ? "fine-tune " : r->stage1_frozen ? "head " : "", e + 1,
                 total_epochs);
        int n, step = 0;
        long images = 0;
        while (!(s = src_next(&b, x, t, &n)) && n > 0) {
            if (step < skip) {
                step++;
                continue;
            }
            float l;
            int c, rec = vkr_graph_recoveries(g);
            if ((s = vkr_graph_train_step(g, x, t, n, &l, &c))) break;
            if (vkr_graph_recoveries(g) != rec) {
                progress_end(&r->prog);
                print_plan(r, g, "out of device memory: re-planned;");
            }
            r->loss_sum += (double)l * n;
            r->correct_sum += c;
            r->seen += n;
            images += n;
            step++;
            r->step = step;
            progress_step(&r->prog, what, step, steps, r->loss_sum / r->seen, r->correct_sum / r->seen, (int)images);
            test_interrupt_hook();
            if (a->stop_flag && *a->stop_flag) break;
        }
        vkr_loader_destroy(b.ld);
        progress_end(&r->prog);
        if (s) {
            rc = fail("train", s);
            break;
        }
        if (a->stop_flag && *a->stop_flag) {
            s = save_checkpoint(r, g, gm);
            if (!s) write_history(&r->hist, r->plots);
            fprintf(stderr, "\nvkrun train: interrupted at %s step %d/%d; checkpoint %s%s\n", what, step, steps, r->ckpt,
                    s ? " could NOT be written" : " written; continue with --resume");
            if (s) fprintf(stderr, "vkrun train: %s\n", vkr_last_error());
            rc = 130;
            break;
        }
        double secs = now_s() - t0;
        epoch_rec *er = &r->hist.e[r->hist.n];
        er->stage = stage == 2 ? 2 : r->stage1_frozen ? 1 : 0;
        er->loss = r->seen ? r->loss_sum / r->seen : NAN;
        er->acc = r->seen ? r->correct_sum / r->seen : NAN;
        er->seconds = secs;
        er->images_per_s = secs > 0 ? images / secs : 0;
        er->val_loss = er->val_acc = NAN;
        int validate = r->val && ((r->hist.n + 1) % a->val_every == 0 || e == total_epochs - 1);
        if (validate) {
            batch_src vb = {0};
            if (vfeat) {
                int nv = vkr_dataset_size(r->val);
                vb = (batch_src){.feat = vfeat, .labels = vlabels, .n = nv,
                                 .steps = vkr_steps_per_epoch(nv, a->batch, 1), .batch = a->batch, .dim = dim, .K = K};
            } else if ((s = open_loader(r, r->val, 0, 0, 1, &vb.ld))) {
                rc = fail("validation", s);
                break;
            }
            s = evaluate_set(r, g, &vb, &er->val_loss, &er->val_acc);
            vkr_loader_destroy(vb.ld);
            if (s) {
                rc = fail("validation", s);
                break;
            }
        }
        r->hist.n++;
        r->step = 0;
        if (!a->quiet) {
            printf("%s: loss %.4f - accuracy %.4f", what, er->loss, er->acc);
            if (validate) printf(" - val_loss %.4f - val_accuracy %.4f", er->val_loss, er->val_acc);
            printf(" - %.1f s (%.1f img/s)\n", er->seconds, er->images_per_s);
            fflush(stdout);
        }
    }
    free(x);
    free(t);
    free(perm);
    return rc;
}

/* Copies the tensors of `from` whose names exist in `to`. */
static void copy_tensors(vkr_model *to, const vkr_model *from) {
    for (int i = 0; i < from->ntensors; i++) {
        int j = vkr_model_find_tensor(to, from->tensors[i].name);
        if (j >= 0 && to->tensors[j].count == from->tensors[i].count)
            memcpy(to->tensors[j].data, from->tensors[i].data, sizeof(float) * from->tensors[i].count);
    }
}

/* Head-only model over pooled features, with the full model's head tensors. */
static vkr_status head_model(run *r, vkr_model **out) {
    vkr_model *m = r->model, *h = NULL;
    int dim = m->layers[r->gap_layer].out_c;
    vkr_status s = vkr_model_new("head", "features", dim, 1, 1, "none", &h);
    for (int i = r->gap_layer + 1; !s && i < m->nlayers; i++)
        s = vkr_model_append_dense(h, m->layers[i].name, m->layers[i].filters, m->layers[i].activation, 0);
    if (!s) {
        copy_tensors(h, m);
        *out = h;
    } else {
        vkr_model_free(h);
    }
    return s;
}

/* The options a resumed run must share with the interrupted one (data order,
 * sizes, schedule, optimizer); --resume refuses anything else. */
static void settings_string(const run *r, char *buf, size_t n) {
    const train_args *a = r->a;
    snprintf(buf, n,
             "size=%dx%d batch=%d seed=%llu keep_remainder=%d augment=%u interpolation=%s optimizer=%s lr=%.9g "
             "momentum=%.9g epochs=%d freeze=%d bn_train=%d fine_tune_epochs=%d fine_tune_lr=%.9g fine_tune_from=%d "
             "val_every=%d",
             r->H, r->W, a->batch, (unsigned long long)a->seed, a->keep_remainder, r->aug, vkr_interp_name(r->interp),
             a->optimizer, a->lr, a->momentum, a->epochs, r->freeze, a->bn_train, a->ft_epochs, a->ft_lr, a->ft_from,
             a->val_every);
}

static vkr_status save_checkpoint(run *r, vkr_graph *g, vkr_model *gm) {
    vkr_status s = vkr_graph_download_weights(g);
    if (s) return s;
    if (gm != r->model) copy_tensors(r->model, gm);
    /* the optimizer state first: the model file (renamed into place last) names its step */
    char opt[4200];
    snprintf(opt, sizeof opt, "%s.optimizer", r->ckpt);
    if ((s = vkr_graph_save_optimizer(g, opt))) return s;
    char settings[1024];
    settings_string(r, settings, sizeof settings);
    cJSON *c = cJSON_CreateObject();
    cJSON_AddStringToObject(c, "settings", settings);
    cJSON_AddNumberToObject(c, "optimizer_step", vkr_graph_step(g));
    cJSON_AddNumberToObject(c, "stage", r->stage);
    cJSON_AddNumberToObject(c, "epoch", r->epoch);
    cJSON_AddNumberToObject(c, "step", r->step);
    cJSON_AddNumberToObject(c, "loss_sum", r->loss_sum);
    cJSON_AddNumberToObject(c, "correct_sum", r->correct_sum);
    cJSON_AddNumberToObject(c, "seen", (double)r->seen);
    cJSON_AddNumberToObject(c, "base_layers", r->base_layers);
    cJSON_AddItemToObject(c, "history", history_json(&r->hist));
    char *txt = cJSON_PrintUnformatted(c);
    cJSON_Delete(c);
    if (!txt) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    s = vkr_model_set_meta(r->model, "vkrun_checkpoint", txt);
    free(txt);
    int h = r->model->in_h, w = r->model->in_w;
    r->model->in_h = r->H; /* the checkpoint remembers the training size */
    r->model->in_w = r->W;
    if (!s) s = vkr_model_save(r->model, r->ckpt);
    r->model->in_h = h;
    r->model->in_w = w;
    vkr_model_set_meta(r->model, "vkrun_checkpoint", NULL);
    return s;
}

/* Loads the optimizer state saved beside a checkpoint and checks it is the one the
 * checkpoint was written with (same optimizer step). */
static vkr_status resume_optimizer(vkr_graph *g, const char *path, const cJSON *ck) {
    vkr_status s = vkr_graph_load_optimizer(g, path);
    if (s) return s;
    double want = cJSON_GetNumberValue(cJSON_GetObjectItem(ck, "optimizer_step"));
    if (want != (double)vkr_graph_step(g))
        return vkr_fail(VKR_ERR_FORMAT, "%s holds the optimizer state of step %u, the checkpoint was written at step %.0f",
                        path, vkr_graph_step(g), want);
    return VKR_OK;
}

int train_run(const train_args *a) {
    run R;
    memset(&R, 0, sizeof R);
    run *r = &R;
    r->a = a;
    r->prog.quiet = a->quiet;
    r->prog.tty = isatty(STDOUT_FILENO);
    int rc = 1;
    vkr_status s;
    vkr_graph *g = NULL;
    vkr_model *hm = NULL;
    float *feat = NULL, *labels = NULL, *vfeat = NULL, *vlabels = NULL;
    cJSON *resume = NULL;

    /* output locations */
    if (a->plots) snprintf(r->plots, sizeof r->plots, "%s", a->plots);
    else {
        snprintf(r->plots, sizeof r->plots, "%s", a->out);
        char *slash = strrchr(r->plots, '/');
        if (slash) *slash = 0;
        else snprintf(r->plots, sizeof r->plots, ".");
    }
    struct stat st;
    if (stat(r->plots, &st) != 0 && mkdir(r->plots, 0755) != 0) {
        fprintf(stderr, "vkrun train: cannot create %s: %s\n", r->plots, strerror(errno));
        return 1;
    }
    if (cli_output_is_input("train", a->model, a->out) || cli_output_is_input("train", a->resume, a->out) ||
        cli_output_unwritable("train", a->out))
        return 1;
    snprintf(r->ckpt, sizeof r->ckpt, "%s.checkpoint", a->out);

    if ((s = vkr_interp_parse(a->interp, &r->interp))) return fail("train", s);
    if (a->augment) {
        char buf[256];
        snprintf(buf, sizeof buf, "%s", a->augment);
        for (char *tok = strtok(buf, ","); tok; tok = strtok(NULL, ",")) {
            if (!strcmp(tok, "flip")) r->aug |= VKR_LOAD_FLIP;
            else if (!strcmp(tok, "crop")) r->aug |= VKR_LOAD_CROP;
            else if (strcmp(tok, "none")) {
                fprintf(stderr, "vkrun train: --augment takes flip, crop (got \"%s\")\n", tok);
                return 2;
            }
        }
    }
    if (a->epochs + a->ft_epochs > MAX_EPOCHS) {
        fprintf(stderr, "vkrun train: at most %d epochs in all\n", MAX_EPOCHS);
        return 2;
    }
    if (strcmp(a->optimizer, "adam") && strcmp(a->optimizer, "sgd")) {
        fprintf(stderr, "vkrun train: --optimizer is adam or sgd\n");
        return 2;
    }

    /* data */
    vkr_dataset_opts dopt = {.strict = a->strict};
    vkr_dataset *all = NULL;
    if ((s = vkr_dataset_open(a->data, &dopt, &all))) return fail("train data", s);
    if (a->val_split > 0) {
        s = vkr_dataset_split(all, a->val_split, a->seed, &r->train, &r->val);
        vkr_dataset_free(all);
        if (s) return fail("train data", s);
    } else {
        r->train = all;
        if (a->val) {
            vkr_dataset_opts vopt = {.strict = a->strict, .allow_single_class = 1};
            if ((s = vkr_dataset_open(a->val, &vopt, &r->val)) || (s = vkr_dataset_check_classes(r->train, r->val))) {
                rc = fail("validation data", s);
                goto out;
            }
        }
    }
    if (!a->quiet) {
        printf("data: %d training images in %d classes (", vkr_dataset_size(r->train), vkr_dataset_num_classes(r->train));
        for (int c = 0; c < vkr_dataset_num_classes(r->train); c++)
            printf("%s%s: %d", c ? ", " : "", vkr_dataset_class_name(r->train, c), vkr_dataset_class_size(r->train, c));
        printf(")");
        if (r->val) printf(", %d validation images", vkr_dataset_size(r->val));
        printf("\n");
    }

    /* model */
    if (a->resume) {
        if ((s = vkr_model_load(a->resume, &r->model))) {
            rc = fail("resume", s);
            goto out;
        }
        const char *meta = vkr_model_get_meta(r->model, "vkrun_checkpoint");
        resume = meta ? cJSON_Parse(meta) : NULL;
        if (!resume) {
            fprintf(stderr, "vkrun train: %s is not a vkrun checkpoint (no vkrun_checkpoint metadata)\n", a->resume);
            goto out;
        }
        r->base_layers = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(resume, "base_layers"));
        r->gap_layer = r->base_layers;
        int same = r->base_layers > 0 && r->base_layers < r->model->nlayers &&
                   r->model->layers[r->gap_layer].type == VKR_LAYER_GAP &&
                   r->model->nclasses == vkr_dataset_num_classes(r->train);
        for (int c = 0; same && c < r->model->nclasses; c++)
            same = !strcmp(r->model->classes[c], vkr_dataset_class_name(r->train, c));
        if (!same) {
            fprintf(stderr, "vkrun train: checkpoint %s does not match this data (its classes or layers differ)\n",
                    a->resume);
            goto out;
        }
        if (history_from_json(&r->hist, cJSON_GetObjectItem(resume, "history"))) {
            fprintf(stderr, "vkrun train: checkpoint %s: its history is malformed or too long\n", a->resume);
            goto out;
        }
        vkr_model_set_meta(r->model, "vkrun_checkpoint", NULL);
    } else {
        if ((s = vkr_model_open(a->model, a->seed, &r->model))) {
            rc = fail("model", s);
            goto out;
        }
        if ((s = build_model(r))) {
            rc = fail("model", s);
            goto out;
        }
    }
    r->H = a->height ? a->height : r->model->in_h;
    r->W = a->width ? a->width : r->model->in_w;
    r->C = r->model->in_c;
    if (r->C != 1 && r->C != 3) {
        fprintf(stderr, "vkrun train: the model wants %d input channels; images give 1 or 3\n", r->C);
        goto out;
    }
    if ((s = vkr_preprocess_parse(r->model->preprocess, &r->pre))) {
        rc = fail("model", s);
        goto out;
    }
    if ((s = vkr_model_infer_shapes(r->model, r->H, r->W))) {
        rc = fail("model", s);
        goto out;
    }
    /* --freeze and --fine-tune-from count layers of the base: past it they would freeze the new
     * head, and nothing would train */
    if (a->freeze > r->base_layers || a->ft_from > r->base_layers) {
        fprintf(stderr, "vkrun train: --%s %d is past the base: the base has layers [0, %d) and the new head starts "
                        "at %d (\"%s\"); use at most %d\n",
                a->freeze > r->base_layers ? "freeze" : "fine-tune-from",
                a->freeze > r->base_layers ? a->freeze : a->ft_from, r->base_layers, r->gap_layer,
                r->model->layers[r->gap_layer].name, r->base_layers);
        goto out;
    }
    int freeze = a->freeze >= 0 ? a->freeze : r->base_layers;
    r->freeze = freeze;
    if (resume) {
        char now[1024];
        const char *then = cJSON_GetStringValue(cJSON_GetObjectItem(resume, "settings"));
        settings_string(r, now, sizeof now);
        if (!then || strcmp(then, now)) {
            fprintf(stderr,
                    "vkrun train: --resume needs the options of the interrupted run\n  checkpoint: %s\n  now:        %s\n",
                    then ? then : "(none recorded)", now);
            goto out;
        }
    }
    int use_cache = !a->no_cache && !r->aug && freeze >= r->base_layers;
    r->stage1_frozen = freeze >= r->base_layers;

    vkr_context_opts copt = {.device = a->device, .validation = -1};
    if ((s = vkr_context_create(&copt, &r->ctx))) {
        rc = fail("device", s);
        goto out;
    }
    if (!a->quiet) {
        uint64_t tot, tr, ntr;
        vkr_model_param_totals(r->model, &tot, &tr, &ntr);
        printf("model: %s, %d layers (base %d, head from %d), input %dx%dx%d, %s preprocessing, %llu parameters\n",
               r->model->name, r->model->nlayers, r->base_layers, r->gap_layer, r->C, r->H, r->W, r->model->preprocess,
               (unsigned long long)tot);
        printf("device: %s; batch %d; %s lr %g; layers [0, %d) frozen; feature cache: %s\n",
               vkr_context_device(r->ctx)->name, a->batch, a->optimizer, a->lr, freeze,
               use_cache ? (a->cache_dir ? a->cache_dir : "in memory") : "off");
    }

    int stage = resume ? (int)cJSON_GetNumberValue(cJSON_GetObjectItem(resume, "stage")) : 1;
    int done1 = 0;
    for (int i = 0; i < r->hist.n; i++) done1 += r->hist.e[i].stage != 2;
    if (resume) {
        r->step = (int)cJSON_GetNumberValue(cJSON_GetObjectItem(resume, "step"));
        r->loss_sum = cJSON_GetNumberValue(cJSON_GetObjectItem(resume, "loss_sum"));
        r->correct_sum = cJSON_GetNumberValue(cJSON_GetObjectItem(resume, "correct_sum"));
        r->seen = (long)cJSON_GetNumberValue(cJSON_GetObjectItem(resume, "seen"));
    }
    char optpath[4200];
    snprintf(optpath, sizeof optpath, "%s.optimizer", a->resume ? a->resume : "");

    /* ---- stage 1: the head on a frozen base */
    if (stage == 1 && done1 < a->epochs) {
        vkr_graph_opts go;
        vkr_model *gm = r->model;
        if (use_cache) {
            double t0 = now_s();
            opts_for(r, &go, 0, 0, a->lr);
            if ((s = vkr_graph_create(r->ctx, r->model, &go, &g))) {
                rc = fail("feature graph", s);
                goto out;
            }
            print_plan(r, g, "features:");
            s = cached_features(r, g, a->cache_dir, r->train, "train", &feat, &labels, extract_features);
            int stop = a->stop_flag && *a->stop_flag;
            if (!s && r->val && !stop)
                s = cached_features(r, g, a->cache_dir, r->val, "val", &vfeat, &vlabels, extract_features);
            vkr_graph_destroy(g);
            g = NULL;
            if (!s && a->stop_flag && *a->stop_flag) {
                fprintf(stderr, "\nvkrun train: interrupted while caching features; nothing to save (the features are "
                                "recomputed on the next run)\n");
                rc = 130;
                goto out;
            }
            if (s) {
                rc = fail("feature cache", s);
                goto out;
            }
            r->hist.cache_seconds += now_s() - t0;
            if (!a->quiet)
                printf("cached pooled features of %d images in %.1f s\n",
                       vkr_dataset_size(r->train) + (r->val ? vkr_dataset_size(r->val) : 0), now_s() - t0);
            if ((s = head_model(r, &hm))) {
                rc = fail("head model", s);
                goto out;
            }
            gm = hm;
            opts_for(r, &go, 1, freeze > r->base_layers ? freeze - r->base_layers : 0, a->lr);
            go.height = go.width = 1;
        } else {
            opts_for(r, &go, 1, freeze, a->lr);
        }
        if ((s = vkr_graph_create(r->ctx, gm, &go, &g))) {
            rc = fail("training graph", s);
            goto out;
        }
        print_plan(r, g, r->stage1_frozen ? "head:" : "training:");
        if (resume && (s = resume_optimizer(g, optpath, resume))) {
            rc = fail("resume", s);
            goto out;
        }
        rc = train_stage(r, g, 1, done1, a->epochs - done1, feat, labels, vfeat, vlabels, gm);
        if (rc) goto out;
        if ((s = vkr_graph_download_weights(g))) {
            rc = fail("train", s);
            goto out;
        }
        if (gm != r->model) copy_tensors(r->model, gm);
        vkr_graph_destroy(g);
        g = NULL;
        resume = (cJSON_Delete(resume), NULL);
        stage = 2;
    }
    /* ---- stage 2: fine-tuning */
    int done2 = r->hist.n - (a->epochs < done1 ? done1 : a->epochs);
    if (done2 < 0) done2 = 0;
    if (a->ft_epochs > done2) {
        vkr_graph_opts go;
        opts_for(r, &go, 1, a->ft_from, a->ft_lr);
        if ((s = vkr_graph_create(r->ctx, r->model, &go, &g))) {
            rc = fail("fine-tuning graph", s);
            goto out;
        }
        print_plan(r, g, "fine-tuning:");
        if (resume && (s = resume_optimizer(g, optpath, resume))) {
            rc = fail("resume", s);
            goto out;
        }
        if (!a->quiet) printf("fine-tuning layers [%d, %d) with lr %g\n", a->ft_from, r->model->nlayers, a->ft_lr);
        rc = train_stage(r, g, 2, a->epochs + done2, a->ft_epochs - done2, NULL, NULL, NULL, NULL, r->model);
        if (rc) goto out;
        if ((s = vkr_graph_download_weights(g))) {
            rc = fail("fine-tune", s);
            goto out;
        }
    }
    /* ---- outputs: the model remembers the input size and resize it was trained with */
    r->model->in_h = r->H;
    r->model->in_w = r->W;
    if ((s = vkr_model_set_meta(r->model, "vkrun_interpolation", vkr_interp_name(r->interp))) ||
        (s = vkr_model_save(r->model, a->out))) {
        rc = fail("save", s);
        goto out;
    }
    rc = write_history(&r->hist, r->plots) ? 1 : 0;
    if (!rc) {
        remove(r->ckpt);
        char opt[4200];
        snprintf(opt, sizeof opt, "%s.optimizer", r->ckpt);
        remove(opt);
    }
    if (rc) fprintf(stderr, "vkrun train: wrote %s, but not all of the history and curves in %s (see above)\n", a->out,
                    r->plots);
    if (!a->quiet && r->hist.n && !rc) {
        const epoch_rec *e = &r->hist.e[r->hist.n - 1];
        printf("wrote %s; history and curves (accuracy.png, loss.png) in %s\n", a->out, r->plots);
        if (!isnan(e->val_acc)) printf("final: val_loss %.4f, val_accuracy %.4f\n", e->val_loss, e->val_acc);
    }
out:
    cJSON_Delete(resume);
    if (g) vkr_graph_destroy(g);
    vkr_model_free(hm);
    free(feat);
    free(labels);
    free(vfeat);
    free(vlabels);
    if (r->ctx && rc == 0 && cli_check_validation(r->ctx)) rc = 1;
    vkr_model_free(r->model);
    vkr_context_destroy(r->ctx);
    vkr_dataset_free(r->train);
    vkr_dataset_free(r->val);
    return rc;
}
