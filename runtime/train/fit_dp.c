/* Data-parallel training (docs/scaling.md): the ranks of opts.comm each train on their share of
 * every batch; the weight gradients are read back in buckets in backward order (the last
 * layers' first), and each bucket's sum over the ranks is started (MPI_Iallreduce) as soon as its
 * tensors are final: the backward pass is submitted in segments that end where a bucket is
 * complete (vkr_graph_grad_hook), so a bucket's sum runs while the device computes the backward
 * of the earlier layers; every rank then applies the same update (docs/scaling.md). */
#include "train/fit_internal.h"
#include "vkrun_comm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static uint64_t bucket_floats(const fit_run *r) {
    double mb = r->a->bucket_mb > 0 ? r->a->bucket_mb : 25;
    uint64_t f = (uint64_t)(mb * 1048576.0 / 4);
    return f ? f : 1;
}

void fit_share(const fit_run *r, int c, int *lo, int *hi) {
    *lo = (int)((int64_t)c * r->rank / r->ranks);
    *hi = (int)((int64_t)c * (r->rank + 1) / r->ranks);
}

vkr_status fit_dp_sum(fit_run *r, double *v, int n) {
    return r->ranks > 1 ? vkr_comm_allreduce_f64(r->a->comm, v, (size_t)n) : VKR_OK;
}

static uint64_t fnv(uint64_t h, const void *p, size_t n) {
    for (size_t i = 0; i < n; i++) h = (h ^ ((const unsigned char *)p)[i]) * 1099511628211ull;
    return h;
}

/* A digest of a dataset: its size, classes, file names (not the folder they are in). */
static uint64_t data_digest(const vkr_dataset *ds) {
    uint64_t h = 14695981039346656037ull;
    if (!ds) return h;
    int n = vkr_dataset_size(ds), k = vkr_dataset_num_classes(ds);
    h = fnv(fnv(h, &n, sizeof n), &k, sizeof k);
    for (int c = 0; c < k; c++) h = fnv(h, vkr_dataset_class_name(ds, c), strlen(vkr_dataset_class_name(ds, c)));
    for (int i = 0; i < n; i++) {
        const char *p = vkr_dataset_path(ds, i), *b = strrchr(p, '/');
        b = b ? b + 1 : p;
        h = fnv(h, b, strlen(b));
    }
    return h;
}

vkr_status fit_dp_check_data(fit_run *r) {
    if (r->ranks < 2) return VKR_OK;
    uint64_t mine[2] = {data_digest(r->train), data_digest(r->val)}, root[2] = {mine[0], mine[1]};
    vkr_status s = vkr_comm_bcast(r->a->comm, root, sizeof root, 0);
    if (s) return s;
    if (mine[0] != root[0] || mine[1] != root[1])
        return vkr_fail(VKR_ERR_INVALID, "rank %d sees other %s data than rank 0 (file names, classes or count "
                                         "differ): every rank must read the same folder",
                        r->rank, mine[0] != root[0] ? "training" : "validation");
    return VKR_OK;
}

vkr_status fit_dp_hello(fit_run *r) {
    if (r->ranks < 2) {
        if (r->a->sync_bn)
            fit_msg(r, "--sync-bn: one process, whose batch statistics are those of the whole batch already");
        return VKR_OK;
    }
    const vkr_device_info *I = vkr_context_device(r->ctx);
    char mine[512], line[768];
    snprintf(mine, sizeof mine, "%s, device %s", vkr_comm_host(r->a->comm), I ? I->name : "?");
    fit_msg(r, "data-parallel: %d processes (%s), global batch %d, gradients summed in buckets of %g MiB", r->ranks,
            vkr_comm_backend(r->a->comm), r->a->batch, bucket_floats(r) * 4 / 1048576.0);
    for (int k = 0; k < r->ranks; k++) {
        char buf[512];
        memcpy(buf, mine, sizeof buf);
        vkr_status s = vkr_comm_bcast(r->a->comm, buf, sizeof buf, k);
        if (s) return s;
        buf[sizeof buf - 1] = 0;
        fit_run tmp = *r;
        tmp.rank = k;
        int lo, hi;
        fit_share(&tmp, r->a->batch, &lo, &hi);
        snprintf(line, sizeof line, "rank %d: %s, %d of each batch of %d (images [%d, %d))", k, buf, hi - lo,
                 r->a->batch, lo, hi);
        fit_msg(r, "%s", line);
    }
    if (r->a->bn_train && r->a->sync_bn)
        fit_msg(r, "--bn-train --sync-bn: the batch statistics are synchronized across ranks (those of the global "
                   "batch, as one process computes them; two host round trips per BatchNorm layer per step)");
    else if (r->a->bn_train)
        fit_msg(r, "--bn-train: each rank normalizes with the batch statistics of its own share (per-rank, as "
                   "PyTorch DDP without SyncBatchNorm; results depend on the number of processes; --sync-bn "
                   "synchronizes them); the running statistics are averaged over the ranks before each validation "
                   "and save");
    return VKR_OK;
}

vkr_status fit_dp_stop(fit_run *r) {
    if (r->ranks < 2) return VKR_OK;
    double v = r->stop;
    vkr_status s = fit_dp_sum(r, &v, 1);
    if (!s) r->stop = v > 0;
    return s;
}

/* The sums of one step's gradients: buckets of whole tensors in backward order, closed after the
 * tensor that brings a bucket to `bucket` floats (a rule of the tensor sizes alone, so every rank
 * starts the same sums in the same order), each started as soon as its tensors are read. */
typedef struct fit_dp_bucket {
    fit_run *r;
    vkr_graph *g;
    int k;                     /* tensors */
    int have;                  /* this rank has images this step (else it sums zeros) */
    float scale;               /* its gradients are read times this (its image count) */
    int read;                  /* tensors read so far */
    uint64_t off, b0, bucket;  /* floats read, start of the open bucket, bucket size */
    int nb, waited, first[VKR_COMM_MAX_PENDING + 1];
    vkr_comm_req *req[VKR_COMM_MAX_PENDING];
} dp_sums;

/* The gradient buffer of graph g (every trained tensor, backward order). */
static vkr_status grad_buf(fit_run *r, vkr_graph *g) {
    uint64_t n = 0;
    for (int i = 0, k = vkr_graph_grad_count(g); i < k; i++) n += vkr_graph_grad_floats(g, i);
    if (r->dp_buf && r->dp_floats == n) return VKR_OK;
    free(r->dp_buf);
    r->dp_buf = malloc(sizeof(float) * (n ? n : 1));
    r->dp_floats = r->dp_buf ? n : 0;
    return r->dp_buf ? VKR_OK : vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory for %llu gradients",
                                         (unsigned long long)n);
}

/* Whether tensors [d->read, k) close a bucket. */
static int closes(const dp_sums *d, int k) {
    uint64_t o = d->off;
    for (int i = d->read; i < k; i++) {
        o += vkr_graph_grad_floats(d->g, i);
        if (o - d->b0 >= d->bucket || i == d->k - 1) return 1;
    }
    return 0;
}

/* Reads tensors [d->read, k) (zeros without images) and starts the sums of the buckets they close. */
static vkr_status advance(dp_sums *d, int k) {
    vkr_status s = VKR_OK;
    for (int i = d->read; i < k && !s; i++) {
        uint64_t n = vkr_graph_grad_floats(d->g, i);
        float *p = d->r->dp_buf + d->off;
        if (!d->have) memset(p, 0, n * sizeof(float));
        else if (!(s = vkr_graph_grad_read(d->g, i, p)))
            for (uint64_t e = 0; e < n; e++) p[e] *= d->scale;
        d->off += n;
        d->read = i + 1;
        if (!s && (d->off - d->b0 >= d->bucket || i == d->k - 1)) { /* this bucket is read: its sum starts */
            s = vkr_comm_iallreduce_f32(d->r->a->comm, d->r->dp_buf + d->b0, d->off - d->b0, &d->req[d->nb]);
            d->first[++d->nb] = i + 1;
            d->b0 = d->off;
        }
    }
    return s;
}

static int hook_cut(void *u, int k) { return closes(u, k); }
static vkr_status hook_ready(void *u, int k) {
    dp_sums *d = u;
    int nb = d->nb;
    vkr_status s = advance(d, k);
    d->r->dp_early += d->nb - nb; /* started while the device runs the rest of the backward */
    return s;
}
static vkr_status hook_progress(void *u) { /* lets MPI move the started sums along */
    dp_sums *d = u;
    int done = 1;
    while (d->waited < d->nb && done) {
        vkr_status s = vkr_comm_test(d->r->a->comm, d->req[d->waited], &done);
        if (s) return s;
        if (done) d->req[d->waited++] = NULL;
    }
    return VKR_OK;
}

/* Waits for every sum and writes the sums times `scale` back, bucket by bucket. */
static vkr_status finish(dp_sums *d, float scale) {
    vkr_status s = VKR_OK;
    uint64_t off = 0;
    for (int q = 0; q < d->nb; q++) {
        vkr_status w = q >= d->waited ? vkr_comm_wait(d->r->a->comm, d->req[q]) : VKR_OK;
        if (!s) s = w;
        for (int i = d->first[q]; i < d->first[q + 1] && !s; i++) {
            uint64_t n = vkr_graph_grad_floats(d->g, i);
            float *p = d->r->dp_buf + off;
            for (uint64_t e = 0; e < n; e++) p[e] *= scale;
            s = vkr_graph_grad_write(d->g, i, p);
            off += n;
        }
    }
    d->waited = d->nb;
    return s;
}

/* --sync-bn (vkr_graph_bn_sync): forward, every rank's (count, mean, M2) gathered (a sum of zeros
 * but for each rank's own slot: exact) and combined in rank order with Chan's formula in double,
 * the same on every rank; backward, this rank's sums come from a loss that is the mean over its n
 * images: times n, summed over the ranks, divided by n again, they are the global batch's sums
 * in this rank's scale, which the input gradient wants. */
static vkr_status bn_gather_stats(dp_sums *d, int c, double *count, float *a, float *b) {
    size_t per = 1 + 2 * (size_t)c, R = (size_t)d->r->ranks;
    double *v = calloc(R * per, sizeof(double));
    if (!v) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    double *m = v + (size_t)d->r->rank * per;
    m[0] = *count;
    for (int e = 0; e < c; e++) m[1 + e] = a[e], m[1 + c + e] = b[e];
    vkr_status s = vkr_comm_allreduce_f64(d->r->a->comm, v, R * per);
    double tot = 0;
    for (int e = 0; e < c && !s; e++) {
        double n = 0, mean = 0, m2 = 0;
        for (size_t q = 0; q < R; q++) {
            const double *w = v + q * per;
            if (!(w[0] > 0)) continue;
            double t = n + w[0], delta = w[1 + e] - mean;
            mean += delta * w[0] / t;
            m2 += w[1 + c + e] + delta * delta * n * w[0] / t;
            n = t;
        }
        a[e] = (float)mean;
        b[e] = (float)m2;
        tot = n;
    }
    free(v);
    if (!s && !(tot > 0)) s = vkr_fail(VKR_ERR_INVALID, "synchronized BatchNorm: no images on any rank");
    if (!s) *count = tot;
    return s;
}

static vkr_status bn_sync_exchange(void *u, int backward, int c, double *count, float *a, float *b) {
    dp_sums *d = u;
    if (!backward) return bn_gather_stats(d, c, count, a, b);
    double w = d->have ? d->scale : 0, *v = calloc(2 * (size_t)c + 1, sizeof(double));
    if (!v) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
    for (int e = 0; e < c; e++) v[e] = w * a[e], v[c + e] = w * b[e];
    v[2 * c] = w > 0 ? *count : 0;
    vkr_status s = vkr_comm_allreduce_f64(d->r->a->comm, v, 2 * (size_t)c + 1);
    for (int e = 0; e < c && !s && w > 0; e++) a[e] = (float)(v[e] / w), b[e] = (float)(v[c + e] / w);
    if (!s) *count = v[2 * c];
    free(v);
    return s;
}

vkr_status fit_dp_step(fit_run *r, vkr_graph *g, const float *x, const float *t, int n, int first, float *l, int *c,
                       double sums[3]) {
    vkr_status s = VKR_OK;
    *l = 0;
    *c = 0;
    if (r->ranks < 2) {
        if ((s = vkr_graph_train_step(g, x, t, n, l, c))) return s;
        sums[0] = (double)*l * n, sums[1] = *c, sums[2] = n;
        return VKR_OK;
    }
    if ((s = grad_buf(r, g))) return s;
    dp_sums d = {.r = r, .g = g, .k = vkr_graph_grad_count(g), .have = n > 0, .scale = (float)n};
    uint64_t per = r->dp_floats / (VKR_COMM_MAX_PENDING - 1) + 1, want = bucket_floats(r);
    d.bucket = per > want ? per : want;
    /* each rank's gradient is the mean over its n images: times n, summed, over all the step's
     * images it is the mean over the global batch, as one process computes it.  The sums of the
     * last layers' buckets start while the device still runs the backward of the first ones. */
    vkr_graph_grad_hook h = {&d, hook_cut, hook_ready, hook_progress};
    vkr_graph_set_first_image(g, first);
    vkr_graph_set_grad_hook(g, &h);
    vkr_graph_bn_sync sy = {&d, bn_sync_exchange};
    if (r->a->sync_bn && r->a->bn_train) s = vkr_graph_set_bn_sync(g, &sy);
    if (!s && n > 0) s = vkr_graph_backward_only(g, x, t, n, l, c);
    else if (!s) s = vkr_graph_bn_sync_idle(g); /* its exchanges, with nothing */
    vkr_graph_set_bn_sync(g, NULL);
    vkr_graph_set_grad_hook(g, NULL);
    double t0 = fit_now();
    if (!s) s = advance(&d, d.k); /* the buckets the backward did not start */
    sums[0] = n ? (double)*l * n : 0, sums[1] = *c, sums[2] = n;
    if (!s) s = fit_dp_sum(r, sums, 3); /* the step's images on all ranks */
    if (!s && !(sums[2] > 0)) s = vkr_fail(VKR_ERR_FORMAT, "a step without images on any rank (all failed to decode)");
    vkr_status w = finish(&d, s ? 0.0f : (float)(1.0 / sums[2]));
    if (!s) s = w;
    if (s) return s;
    r->dp_comm_s += fit_now() - t0;
    r->dp_steps++;
    r->dp_buckets += d.nb;
    return vkr_graph_apply_update(g);
}

vkr_status fit_dp_average_bn_stats(fit_run *r, vkr_graph *g, vkr_model *gm) {
    if (r->ranks < 2 || !r->a->bn_train) return VKR_OK;
    vkr_status s = vkr_graph_download_weights(g);
    for (int j = 0; j < gm->nlayers && !s; j++) {
        if (gm->layers[j].type != VKR_LAYER_BATCHNORM) continue;
        for (int k = 2; k < 4 && !s; k++) {
            vkr_tensor *T = vkr_model_param(gm, j, k);
            if (!T) continue;
            double *v = malloc(sizeof(double) * (T->count ? T->count : 1));
            if (!v) return vkr_fail(VKR_ERR_OUT_OF_MEMORY, "out of host memory");
            for (uint64_t e = 0; e < T->count; e++) v[e] = T->data[e];
            s = fit_dp_sum(r, v, (int)T->count);
            for (uint64_t e = 0; !s && e < T->count; e++) T->data[e] = (float)(v[e] / r->ranks);
            free(v);
        }
    }
    return s ? s : vkr_graph_upload_weights(g);
}

void fit_dp_free(fit_run *r) {
    free(r->dp_buf);
    r->dp_buf = NULL;
    r->dp_floats = 0;
}
