/* The feature cache of stage 1: when every base layer is frozen and augmentation is off, each
 * image's pooled base features are computed once (one base pass) and every epoch trains a
 * head-only graph on them; the batches are exactly those of the uncached path (same
 * permutation, same features), so both give the same losses.  With opts.cache_dir the features
 * are kept on disk, keyed by everything they depend on. */
#include "train/fit_internal.h"
#include "vkrun_comm.h"
#include "vkrun_npy.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

vkr_status fit_open_loader(const fit_run *r, const vkr_dataset *ds, int epoch, int shuffle, int keep_rem,
                           vkr_loader **ld) {
    vkr_loader_opts o;
    memset(&o, 0, sizeof o);
    o.batch = r->a->batch;
    o.height = r->H;
    o.width = r->W;
    o.channels = r->C;
    o.interp = r->a->interp;
    o.preprocess = r->pre;
    o.epoch = epoch;
    o.epochs = 1;
    o.seed = r->a->seed;
    o.flags = (shuffle ? VKR_LOAD_SHUFFLE : 0) | (keep_rem ? VKR_LOAD_KEEP_REMAINDER : 0);
    if (shuffle && (!r->a->augment_fine_tune_only || r->stage == 2)) o.augment = r->a->augment; /* training only */
    o.strict = r->a->strict;
    o.quiet = r->a->quiet_data;
    o.shard = r->rank; /* data-parallel: this rank's share of every batch */
    o.shards = r->ranks;
    return vkr_loader_create_ex(ds, &o, ld);
}

/* Pooled base features of every image of ds, in dataset order; stops early (VKR_OK) when a
 * callback asks to: the cache is a pure function of the images. */
static vkr_status extract_features(fit_run *r, vkr_graph *g, const vkr_dataset *ds, const char *what, float **feat,
                                   float **labels) {
    int n = vkr_dataset_size(ds), K = vkr_dataset_num_classes(ds);
    int dim = r->model->layers[r->gap_layer].out_c;
    int dp = r->ranks > 1; /* each rank its share of every batch, zeros elsewhere, then summed */
    *feat = dp ? calloc((size_t)n * dim, sizeof(float)) : malloc(sizeof(float) * (size_t)n * dim);
    *labels = calloc((size_t)n * K, sizeof(float));
    float *x = malloc(sizeof(float) * (size_t)r->a->batch * r->C * r->H * r->W);
    float *t = malloc(sizeof(float) * (size_t)r->a->batch * K);
    float *out = malloc(sizeof(float) * (size_t)r->a->batch * dim);
    if (!*feat || !*labels || !x || !t || !out) {
        free(x);
        free(t);
        free(out);
        return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory for %d cached features", n);
    }
    vkr_loader *ld = NULL;
    vkr_status s = fit_open_loader(r, ds, 0, 0, 1, &ld);
    int done = 0, cnt, steps = ld ? vkr_loader_steps_per_epoch(ld) : 0;
    char label[96];
    snprintf(label, sizeof label, "features %s", what);
    double t0 = fit_now();
    for (int step = 0; !s && (!dp || step < steps) && !(s = vkr_loader_next(ld, x, t, &cnt)) && (cnt > 0 || dp) &&
                       (dp || !r->stop);
         step++) {
        const int *idx = vkr_loader_batch_indices(ld);
        if (cnt > 0) s = vkr_graph_forward(g, x, cnt, r->model->layers[r->gap_layer].name, out);
        for (int j = 0; !s && j < cnt; j++) {
            memcpy(*feat + (size_t)idx[j] * dim, out + (size_t)j * dim, sizeof(float) * dim);
            memcpy(*labels + (size_t)idx[j] * K, t + (size_t)j * K, sizeof(float) * K);
        }
        done += cnt;
        vkr_fit_step st = {label, 1, done, dp ? (int)((int64_t)n * (r->rank + 1) / r->ranks - (int64_t)n * r->rank / r->ranks) : n,
                           NAN, NAN, done, fit_now() - t0, NAN};
        fit_step_cb(r, &st);
    }
    double d = done;
    if (!s && dp && !(s = fit_dp_sum(r, &d, 1))) { /* the shards gathered: a sum over zeros elsewhere */
        done = (int)d;
        if (!(s = vkr_comm_allreduce_f32(r->a->comm, *feat, (size_t)n * dim)))
            s = vkr_comm_allreduce_f32(r->a->comm, *labels, (size_t)n * K);
    }
    if (!s && done != n && !r->stop)
        s = vkr_fail(VKR_ERR_FORMAT, "%d of %d images of %s could not be decoded while caching", n - done, n,
                     vkr_dataset_root(ds));
    vkr_loader_destroy(ld);
    free(x);
    free(t);
    free(out);
    return s;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    const unsigned char *b = p;
    for (size_t i = 0; i < n; i++) h = (h ^ b[i]) * 0x100000001b3ull;
    return h;
}

/* The cache key: the base's tensors, the input size, resize and preprocessing, and each file's
 * path, size and modification time. */
static uint64_t cache_key(const fit_run *r, const vkr_dataset *ds) {
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
    int key[5] = {r->H, r->W, r->C, (int)r->a->interp, (int)r->pre};
    h = fnv(h, key, sizeof key);
    for (int i = 0; i < vkr_dataset_size(ds); i++) {
        struct stat st;
        const char *p = vkr_dataset_path(ds, i);
        h = fnv(h, p, strlen(p) + 1);
        if (stat(p, &st) == 0) {
            int64_t meta[3] = {(int64_t)st.st_size, (int64_t)st.st_mtim.tv_sec, (int64_t)st.st_mtim.tv_nsec};
            h = fnv(h, meta, sizeof meta);
        }
    }
    return h;
}

vkr_status fit_cached_features(fit_run *r, vkr_graph *g, const vkr_dataset *ds, const char *what, float **feat,
                               float **labels) {
    const char *dir = r->a->cache_dir;
    if (!dir) return extract_features(r, g, ds, what, feat, labels);
    int n = vkr_dataset_size(ds), K = vkr_dataset_num_classes(ds);
    char path[4400];
    snprintf(path, sizeof path, "%s/features-%s-%016llx.npy", dir, what, (unsigned long long)cache_key(r, ds));
    int dim = r->model->layers[r->gap_layer].out_c;
    vkr_npy arr;
    memset(&arr, 0, sizeof arr);
    /* data-parallel: rank 0 reads the cache and broadcasts it (the others may have no such folder) */
    int have = r->rank == 0 && vkr_npy_read(path, &arr) == VKR_OK;
    if (have && !(arr.ndim == 2 && arr.shape[0] == n && arr.shape[1] == dim)) {
        vkr_npy_free(&arr);
        have = 0;
    }
    vkr_status s;
    if (r->ranks > 1) {
        if ((s = vkr_comm_bcast(r->a->comm, &have, sizeof have, 0))) return s;
        if (have && r->rank != 0 && !(arr.data = malloc(sizeof(float) * (size_t)n * dim)))
            return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
        if (have && (s = vkr_comm_bcast(r->a->comm, arr.data, sizeof(float) * (size_t)n * dim, 0))) {
            free(arr.data);
            return s;
        }
    }
    {
        if (have) {
            *feat = arr.data;
            *labels = calloc((size_t)n * K, sizeof(float));
            if (!*labels) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            for (int i = 0; i < n; i++) (*labels)[(size_t)i * K + vkr_dataset_label(ds, i)] = 1.0f;
            fit_msg(r, "features %s: read from %s", what, path);
            return VKR_OK;
        }
    }
    s = extract_features(r, g, ds, what, feat, labels);
    if (s) return s;
    if (r->stop || r->rank != 0) return VKR_OK; /* interrupted: never cache a partial result; rank 0 writes */
    struct stat st;
    if (stat(dir, &st) != 0 && mkdir(dir, 0755) != 0)
        return vkr_fail(VKR_ERR_IO, "cannot create the feature cache folder %s: %s", dir, strerror(errno));
    int64_t shape[2] = {n, dim};
    return vkr_npy_write(path, *feat, 2, shape);
}
