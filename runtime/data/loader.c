/* The multi-threaded, deterministic batch loader over a dataset (runtime/data/dataset.c):
 * decoding, resizing, augmentation and preprocessing on worker threads, batches handed out in
 * order.  See include/vkrun_data.h. */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "data/data_internal.h"

typedef struct {
    int64_t seq; /* global batch number held, -1: none */
    int count;   /* images planned */
    int done;    /* images finished */
    int *idx;    /* dataset indices [batch] */
    unsigned char *ok;
    char **err;  /* message per failed image */
    int *errkind;
    float *img;  /* [batch][C][H][W] */
} slot;

struct vkr_loader {
    const vkr_dataset *ds;
    vkr_loader_opts o;
    int C;
    size_t chw;
    int steps;
    int64_t total; /* batches to produce */
    int S;
    slot *slots;
    pthread_t th[MAX_THREADS];
    int nthreads;
    pthread_mutex_t mu;
    pthread_cond_t work_cv, ready_cv;
    int64_t next_g; /* next batch to hand out */
    int next_j;     /* next image of it */
    int64_t consumed;
    int stop;
    int perm_epoch; /* epoch of perm[] */
    int *perm;
    int *last_idx;
    int last_n;
    int dropped;
    double wait_s; /* consumer time blocked on batches not yet ready */
};

static int64_t batch_epoch(const vkr_loader *ld, int64_t g) { return ld->o.epoch + g / ld->steps; }

/* Images of batch g (this loader's shard of them), from *first in the epoch's order. */
static int batch_count(const vkr_loader *ld, int64_t g, int *first) {
    int step = (int)(g % ld->steps);
    int start = step * ld->o.batch;
    int c = ld->ds->n - start;
    if (c > ld->o.batch) c = ld->o.batch;
    int k = ld->o.shards, r = ld->o.shard;
    int lo = (int)((int64_t)c * r / k), hi = (int)((int64_t)c * (r + 1) / k);
    if (first) *first = start + lo;
    return hi - lo;
}

void vkr_epoch_permutation(int n, uint64_t seed, int epoch, int *perm) {
    for (int i = 0; i < n; i++) perm[i] = i;
    vkr_rng r = vkr__data_rng(seed, TAG_PERM, (uint64_t)(int64_t)epoch, 0);
    vkr__shuffle_ints(perm, n, &r);
}

static void make_perm(const vkr_loader *ld, int epoch, int *perm) {
    int n = ld->ds->n;
    if (ld->o.flags & VKR_LOAD_SHUFFLE) {
        vkr_epoch_permutation(n, ld->o.seed, epoch, perm);
    } else {
        for (int i = 0; i < n; i++) perm[i] = i;
    }
}

/* Called with the mutex held when the first image of batch g is handed out. */
static void setup_slot(vkr_loader *ld, int64_t g) {
    slot *s = &ld->slots[g % ld->S];
    int epoch = (int)batch_epoch(ld, g);
    if (epoch != ld->perm_epoch) {
        make_perm(ld, epoch, ld->perm);
        ld->perm_epoch = epoch;
    }
    s->seq = g;
    int start;
    s->count = batch_count(ld, g, &start);
    s->done = 0;
    for (int j = 0; j < s->count; j++) {
        s->idx[j] = ld->perm[start + j];
        s->ok[j] = 0;
        free(s->err[j]);
        s->err[j] = NULL;
        s->errkind[j] = 0;
    }
}

static void process_image(vkr_loader *ld, slot *s, int j, int64_t g) {
    int i = s->idx[j];
    const char *path = ld->ds->paths[i];
    char err[1024];
    uint8_t *rgb = NULL;
    int w = 0, h = 0;
    int r = vkr__decode_file(path, 1, &rgb, &w, &h, err, sizeof err);
    if (r == VKR__DECODE_OK) {
        vkr__aug aug, *pa = NULL;
        if (vkr_augment_any(&ld->o.augment)) {
            vkr__augment_draw(&ld->o.augment, ld->o.seed, (int)batch_epoch(ld, g), i, ld->o.height, ld->o.width, w, h,
                              &aug);
            pa = &aug;
        }
        if (vkr__render(rgb, w, h, ld->o.height, ld->o.width, ld->C, ld->o.interp, ld->o.preprocess, pa,
                        s->img + (size_t)j * ld->chw)) {
            r = VKR__DECODE_NOMEM;
            snprintf(err, sizeof err, "'%s': out of memory resizing", path);
        }
        free(rgb);
    }
    if (r == VKR__DECODE_OK) {
        s->ok[j] = 1;
    } else {
        s->ok[j] = 0;
        s->errkind[j] = r;
        s->err[j] = vkr__strdup(err); /* NULL on OOM: the path is reported instead */
    }
}

static void *loader_worker(void *arg) {
    vkr_loader *ld = arg;
    pthread_mutex_lock(&ld->mu);
    for (;;) {
        while (!ld->stop && !(ld->next_g < ld->total && ld->next_g < ld->consumed + ld->S))
            pthread_cond_wait(&ld->work_cv, &ld->mu);
        if (ld->stop) break;
        int64_t g = ld->next_g;
        int j = ld->next_j;
        if (j == 0) setup_slot(ld, g);
        slot *s = &ld->slots[g % ld->S];
        if (s->count == 0) { /* an empty share (sharded loader): ready as it is */
            ld->next_g++;
            pthread_cond_broadcast(&ld->ready_cv);
            continue;
        }
        if (++ld->next_j == s->count) {
            ld->next_g++;
            ld->next_j = 0;
        }
        pthread_mutex_unlock(&ld->mu);
        process_image(ld, s, j, g);
        pthread_mutex_lock(&ld->mu);
        if (++s->done == s->count) pthread_cond_broadcast(&ld->ready_cv);
    }
    pthread_mutex_unlock(&ld->mu);
    return NULL;
}

static void free_slots(vkr_loader *ld) {
    if (!ld->slots) return;
    for (int k = 0; k < ld->S; k++) {
        slot *s = &ld->slots[k];
        if (s->err)
            for (int j = 0; j < ld->o.batch; j++) free(s->err[j]);
        free(s->err);
        free(s->errkind);
        free(s->idx);
        free(s->ok);
        free(s->img);
    }
    free(ld->slots);
    ld->slots = NULL;
}

void vkr_loader_destroy(vkr_loader *ld) {
    if (!ld) return;
    pthread_mutex_lock(&ld->mu);
    ld->stop = 1;
    pthread_cond_broadcast(&ld->work_cv);
    pthread_mutex_unlock(&ld->mu);
    for (int t = 0; t < ld->nthreads; t++) pthread_join(ld->th[t], NULL);
    pthread_cond_destroy(&ld->work_cv);
    pthread_cond_destroy(&ld->ready_cv);
    pthread_mutex_destroy(&ld->mu);
    free_slots(ld);
    free(ld->perm);
    free(ld->last_idx);
    free(ld);
}

vkr_status vkr_loader_create_ex(const vkr_dataset *ds, const vkr_loader_opts *opts, vkr_loader **out) {
    if (!out) return vkr_fail(VKR_ERR_INVALID, "vkr_loader_create: NULL output");
    *out = NULL;
    if (!ds || !opts) return vkr_fail(VKR_ERR_INVALID, "vkr_loader_create: NULL dataset or options");
    vkr_loader_opts o = *opts;
    if (o.channels == 0) o.channels = 3;
    if (o.batch <= 0) return vkr_fail(VKR_ERR_INVALID, "loader: batch size must be > 0, not %d", o.batch);
    if (o.height <= 0 || o.width <= 0 || o.height > VKR_IMAGE_MAX_SIDE || o.width > VKR_IMAGE_MAX_SIDE)
        return vkr_fail(VKR_ERR_INVALID, "loader: bad image size %dx%d", o.width, o.height);
    if (o.channels != 1 && o.channels != 3)
        return vkr_fail(VKR_ERR_INVALID, "loader: channels must be 1 or 3, not %d", o.channels);
    if ((unsigned)o.interp > VKR_INTERP_NEAREST_PIL || (unsigned)o.preprocess > VKR_PREPROC_UNIT)
        return vkr_fail(VKR_ERR_INVALID, "loader: bad interpolation or preprocessing value");
    if (o.flags & VKR_LOAD_FLIP) o.augment.flip = 1;
    if (o.flags & VKR_LOAD_CROP) o.augment.crop = 1;
    vkr_status s = vkr__augment_check(&o.augment);
    if (s) return vkr_fail(s, "loader: %s", vkr_last_error());
    if (ds->n <= 0) return vkr_fail(VKR_ERR_INVALID, "loader: dataset '%s' is empty", ds->root);
    if (o.shards <= 0) o.shards = 1, o.shard = 0;
    if (o.shard < 0 || o.shard >= o.shards)
        return vkr_fail(VKR_ERR_INVALID, "loader: shard %d of %d", o.shard, o.shards);
    int steps = vkr_steps_per_epoch(ds->n, o.batch, (o.flags & VKR_LOAD_KEEP_REMAINDER) != 0);
    if (steps == 0)
        return vkr_fail(VKR_ERR_INVALID,
                        "loader: dataset '%s' has %d images, fewer than one batch of %d "
                        "(use a smaller batch or keep the remainder)",
                        ds->root, ds->n, o.batch);
    size_t chw = (size_t)o.channels * (size_t)o.height * (size_t)o.width;
    if (chw * (size_t)o.batch > ((size_t)1 << 34))
        return vkr_fail(VKR_ERR_INVALID, "loader: batch of %d x %zu floats is too large", o.batch, chw);
    int threads = o.threads > 0 ? o.threads : vkr_cpu_count();
    if (threads > MAX_THREADS) threads = MAX_THREADS;
    int S = o.prefetch > 0 ? o.prefetch : 2;
    if (o.prefetch <= 0 && threads > 2 * o.batch) S = (threads + o.batch - 1) / o.batch + 1;
    if (S < 2) S = 2;
    if (S > 64) S = 64;

    vkr_loader *ld = calloc(1, sizeof *ld);
    if (!ld) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of memory");
    ld->ds = ds;
    ld->o = o;
    ld->C = o.channels;
    ld->chw = chw;
    ld->steps = steps;
    ld->total = o.epochs > 0 ? (int64_t)o.epochs * steps : INT64_MAX;
    ld->S = S;
    ld->perm_epoch = o.epoch - 1; /* forces computing the first permutation */
    pthread_mutex_init(&ld->mu, NULL);
    pthread_cond_init(&ld->work_cv, NULL);
    pthread_cond_init(&ld->ready_cv, NULL);
    ld->perm = malloc(sizeof(int) * (size_t)ds->n);
    ld->last_idx = malloc(sizeof(int) * (size_t)o.batch);
    ld->slots = calloc((size_t)S, sizeof(slot));
    int ok = ld->perm && ld->last_idx && ld->slots;
    for (int k = 0; ok && k < S; k++) {
        slot *s = &ld->slots[k];
        s->seq = -1;
        s->idx = calloc((size_t)o.batch, sizeof(int));
        s->ok = calloc((size_t)o.batch, 1);
        s->err = calloc((size_t)o.batch, sizeof(char *));
        s->errkind = calloc((size_t)o.batch, sizeof(int));
        s->img = malloc(sizeof(float) * chw * (size_t)o.batch);
        ok = s->idx && s->ok && s->err && s->errkind && s->img;
    }
    if (!ok) {
        vkr_loader_destroy(ld);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "loader: out of memory for %d prefetch batches of %d x %zu floats",
                        S, o.batch, chw);
    }
    for (int t = 0; t < threads; t++) {
        if (pthread_create(&ld->th[ld->nthreads], NULL, loader_worker, ld) != 0) break;
        ld->nthreads++;
    }
    if (ld->nthreads == 0) {
        vkr_loader_destroy(ld);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "loader: cannot start any worker thread");
    }
    *out = ld;
    return VKR_OK;
}

vkr_status vkr_loader_create(const vkr_dataset *ds, int batch, int H, int W, vkr_preprocess pre, int epoch,
                             uint64_t seed, unsigned flags, vkr_loader **out) {
    vkr_loader_opts o = {.batch = batch, .height = H, .width = W, .channels = 3, .preprocess = pre,
                         .epoch = epoch, .epochs = 1, .seed = seed, .flags = flags};
    return vkr_loader_create_ex(ds, &o, out);
}

vkr_status vkr_loader_next(vkr_loader *ld, float *images, float *targets, int *n) {
    if (!ld || !n) return vkr_fail(VKR_ERR_INVALID, "vkr_loader_next: NULL argument");
    *n = 0;
    ld->last_n = 0;
    const int K = ld->ds->nclasses;
    for (;;) {
        pthread_mutex_lock(&ld->mu);
        if (ld->consumed >= ld->total) {
            pthread_mutex_unlock(&ld->mu);
            return VKR_OK;
        }
        int64_t g = ld->consumed;
        slot *s = &ld->slots[g % ld->S];
        if (!(s->seq == g && s->done == s->count)) {
            struct timespec t0, t1;
            clock_gettime(CLOCK_MONOTONIC, &t0);
            while (!(s->seq == g && s->done == s->count)) pthread_cond_wait(&ld->ready_cv, &ld->mu);
            clock_gettime(CLOCK_MONOTONIC, &t1);
            ld->wait_s += (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec);
        }
        pthread_mutex_unlock(&ld->mu);

        /* the slot is ours until `consumed` moves on */
        vkr_status st = VKR_OK;
        int k = 0;
        for (int j = 0; j < s->count; j++) {
            if (!s->ok[j]) {
                const char *m = s->err[j] ? s->err[j] : ld->ds->paths[s->idx[j]];
                if (ld->o.strict && st == VKR_OK) {
                    st = vkr_fail(s->errkind[j] == VKR__DECODE_NOMEM ? VKR_ERR_OUT_OF_MEMORY
                                  : s->errkind[j] == VKR__DECODE_IO  ? VKR_ERR_IO
                                                                     : VKR_ERR_FORMAT,
                                  "%s", m);
                } else if (!ld->o.strict) {
                    if (!ld->o.quiet) vkr_log(VKR_LOG_WARNING, "dropping from batch: %s", m);
                    ld->dropped++;
                }
                continue;
            }
            if (images)
                memcpy(images + (size_t)k * ld->chw, s->img + (size_t)j * ld->chw, sizeof(float) * ld->chw);
            if (targets) {
                float *t = targets + (size_t)k * (size_t)K;
                for (int c = 0; c < K; c++) t[c] = 0.0f;
                t[ld->ds->labels[s->idx[j]]] = 1.0f;
            }
            ld->last_idx[k] = s->idx[j];
            k++;
        }
        pthread_mutex_lock(&ld->mu);
        ld->consumed++;
        pthread_cond_broadcast(&ld->work_cv);
        pthread_mutex_unlock(&ld->mu);
        if (st) return st;
        if (k > 0 || ld->o.shards > 1) { /* sharded: an empty share keeps its place */
            *n = k;
            ld->last_n = k;
            return VKR_OK;
        }
        /* every image of this batch failed: go on with the next one */
    }
}

const int *vkr_loader_batch_indices(const vkr_loader *ld) { return ld ? ld->last_idx : NULL; }
int vkr_loader_steps_per_epoch(const vkr_loader *ld) { return ld ? ld->steps : 0; }

void vkr_loader_position(const vkr_loader *ld, int *epoch, int *step) {
    if (!ld) return;
    pthread_mutex_t *mu = (pthread_mutex_t *)&ld->mu;
    pthread_mutex_lock(mu);
    int64_t g = ld->consumed;
    pthread_mutex_unlock(mu);
    if (epoch) *epoch = (int)(ld->o.epoch + g / ld->steps);
    if (step) *step = (int)(g % ld->steps);
}

int vkr_loader_num_dropped(const vkr_loader *ld) { return ld ? ld->dropped : 0; }
double vkr_loader_wait_seconds(const vkr_loader *ld) { return ld ? ld->wait_s : 0; }
