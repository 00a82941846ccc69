/* Data-parallel training (docs/scaling.md): the ranks of opts.comm each train on their share of
 * every batch; the weight gradients are read back in buckets in backward order (the last
 * layers' first), each bucket's sum over the ranks is started (MPI_Iallreduce) as soon as it is
 * read, so the sums of the first buckets run while the later ones are read back, and every rank
 * applies the same update.  The backward pass itself is one submission: the sums start after it
 * (no overlap of communication with the backward computation; docs/scaling.md says what that
 * costs). */
#include "train/fit_internal.h"
#include "vkrun_comm.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define BUCKET_FLOATS (25u << 18) /* 25 MiB of fp32 per bucket (PyTorch DDP's default) */

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
    if (r->ranks < 2) return VKR_OK;
    const vkr_device_info *I = vkr_context_device(r->ctx);
    char mine[512], line[768];
    snprintf(mine, sizeof mine, "%s, device %s", vkr_comm_host(r->a->comm), I ? I->name : "?");
    fit_msg(r, "data-parallel: %d processes (%s), global batch %d, gradients summed in buckets of %u MiB", r->ranks,
            vkr_comm_backend(r->a->comm), r->a->batch, BUCKET_FLOATS >> 18);
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
    return VKR_OK;
}

vkr_status fit_dp_stop(fit_run *r) {
    if (r->ranks < 2) return VKR_OK;
    double v = r->stop;
    vkr_status s = fit_dp_sum(r, &v, 1);
    if (!s) r->stop = v > 0;
    return s;
}

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

/* Reads this rank's gradients times `scale` (zeros when it had no images), sums them over the
 * ranks in buckets started as soon as they are read, and writes the sums back. */
static vkr_status sum_grads(fit_run *r, vkr_graph *g, int have, float scale) {
    vkr_status s = grad_buf(r, g);
    int k = vkr_graph_grad_count(g), nb = 0, first[VKR_COMM_MAX_PENDING + 1];
    vkr_comm_req *req[VKR_COMM_MAX_PENDING];
    uint64_t per = r->dp_floats / (VKR_COMM_MAX_PENDING - 1) + 1, bucket = per > BUCKET_FLOATS ? per : BUCKET_FLOATS;
    uint64_t off = 0, b0 = 0;
    first[0] = 0;
    for (int i = 0; i < k && !s; i++) {
        uint64_t n = vkr_graph_grad_floats(g, i);
        float *p = r->dp_buf + off;
        if (!have) memset(p, 0, n * sizeof(float));
        else if (!(s = vkr_graph_grad_read(g, i, p)) && scale != 1.0f)
            for (uint64_t e = 0; e < n; e++) p[e] *= scale;
        off += n;
        if (!s && (off - b0 >= bucket || i == k - 1)) { /* this bucket is read: its sum starts */
            s = vkr_comm_iallreduce_f32(r->a->comm, r->dp_buf + b0, off - b0, &req[nb]);
            first[++nb] = i + 1;
            b0 = off;
        }
    }
    off = 0;
    for (int q = 0; q < nb; q++) { /* in order: a bucket's sums go back while later ones still run */
        vkr_status w = vkr_comm_wait(r->a->comm, req[q]);
        if (!s) s = w;
        for (int i = first[q]; i < first[q + 1] && !s; i++) {
            s = vkr_graph_grad_write(g, i, r->dp_buf + off);
            off += vkr_graph_grad_floats(g, i);
        }
    }
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
    vkr_graph_set_first_image(g, first);
    if (n > 0 && (s = vkr_graph_backward_only(g, x, t, n, l, c))) return s;
    sums[0] = n ? (double)*l * n : 0, sums[1] = *c, sums[2] = n;
    if ((s = fit_dp_sum(r, sums, 3))) return s; /* the step's images on all ranks weigh the gradients */
    if (!(sums[2] > 0)) return vkr_fail(VKR_ERR_FORMAT, "a step without images on any rank (all failed to decode)");
    double t0 = fit_now();
    /* each rank's gradient is the mean over its n images: times n / (all images) they add up to
     * the mean over the global batch, as one process computes it */
    if ((s = sum_grads(r, g, n > 0, (float)(n / sums[2])))) return s;
    r->dp_comm_s += fit_now() - t0;
    r->dp_steps++;
    return vkr_graph_apply_update(g);
}

vkr_status fit_dp_sync_bn(fit_run *r, vkr_graph *g, vkr_model *gm) {
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
